package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The control socket carries every request that changes something on this
// machine (today drain and undrain). It is a Unix socket, not the HTTP
// API: a browser cannot reach it, file permissions keep strangers from
// connecting, and the kernel tells the agent who connected (SO_PEERCRED),
// so each change is checked and logged with the person who made it.
//
//	GET  /v1/drain                    this node's drain state
//	POST /v1/drain   {"reason": R}    drain this node
//	POST /v1/undrain                  undrain this node
//
// Allowed callers: root, the agent's own user, and members of the control
// group (ControlConfig.Group). The socket is mode 0660 with that group,
// 0600 without one, and 0666 where a sandbox forbids giving it to the group
// (the peer credentials are checked on every request either way).

// DefaultControlGroup is the group allowed to drain and undrain when the
// agent is not told otherwise, if it exists.
const DefaultControlGroup = "peerload-admin"

// maxSocketPath is the longest path a Unix socket can be bound to or
// reached at on Linux (sun_path is 108 bytes with the terminating NUL).
const maxSocketPath = 107

// socketAddr returns a name for path that fits in a socket address: path
// itself, or for a longer path (a deep TMPDIR) the same file through an
// open handle of its directory, /proc/self/fd/N/NAME, valid until done is
// called.
func socketAddr(path string) (addr string, done func(), err error) {
	if len(path) <= maxSocketPath {
		return path, func() {}, nil
	}
	fd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	addr = fmt.Sprintf("/proc/self/fd/%d/%s", fd, filepath.Base(path))
	if len(addr) > maxSocketPath {
		unix.Close(fd)
		return "", nil, fmt.Errorf("socket name %s is longer than %d bytes", filepath.Base(path), maxSocketPath-30)
	}
	return addr, func() { unix.Close(fd) }, nil
}

// maxDrainReason bounds a drain reason: it travels in every report.
const maxDrainReason = 120

// Drainer is what the control socket acts on; *agent.Agent is one.
type Drainer interface {
	Name() string
	Drained() (bool, string)
	SetDrain(on bool, reason string) error
}

// ControlConfig says where the control socket lives and who may use it.
type ControlConfig struct {
	// Path is the socket's file name; its directory is created (0755) when
	// missing.
	Path string
	// Group (a name or a numeric id) may use the socket besides root and
	// the agent's own user. Empty: nobody else.
	Group string
	// GroupOptional makes a Group that does not exist mean "nobody else"
	// instead of an error (for the default group).
	GroupOptional bool
	// Logger receives one line per change and per refused caller.
	Logger *slog.Logger
}

// ControlSocket is a listening control socket. Create it with
// ListenControl before the agent starts (a bad path fails first), then
// Serve the agent on it.
type ControlSocket struct {
	path      string
	group     string // name shown in messages, "" for root only
	gid       int    // -1 for root only
	openToAll bool   // mode 0666: the group could not be set
	log       *slog.Logger
	ln        *net.UnixListener
	srv       *http.Server
	closeOnce sync.Once

	mu     sync.Mutex // one change at a time, so "changed" is true
	target Drainer
}

// ListenControl creates the control socket: checks the path, resolves the
// group, removes a socket left by an agent that died, listens, and sets
// the file's group and mode.
func ListenControl(cfg ControlConfig) (*ControlSocket, error) {
	s := &ControlSocket{path: cfg.Path, gid: -1, log: cfg.Logger}
	if s.log == nil {
		s.log = slog.Default()
	}
	if cfg.Path == "" {
		return nil, errors.New("empty path")
	}
	if cfg.Group != "" {
		gid, name, err := lookupGroup(cfg.Group)
		switch {
		case err == nil:
			s.gid, s.group = gid, name
		case !cfg.GroupOptional:
			return nil, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(cfg.Path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStaleSocket(cfg.Path); err != nil {
		return nil, err
	}
	addr, done, err := socketAddr(cfg.Path)
	if err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	done()
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, err
	}
	// Close removes the file by its real name: addr may be gone by then.
	ln.SetUnlinkOnClose(false)
	mode := os.FileMode(0o600)
	if s.gid >= 0 {
		mode = 0o660
		switch err := chownGroup(cfg.Path, s.gid); {
		case errors.Is(err, syscall.EPERM):
			// A sandbox that forbids chown (systemd's
			// SystemCallFilter=~@privileged): every local user may
			// connect, and the peer credentials decide.
			mode, s.openToAll = 0o666, true
		case err != nil:
			ln.Close()
			os.Remove(cfg.Path)
			return nil, fmt.Errorf("give the socket to group %s: %w", s.group, err)
		}
	}
	if err := os.Chmod(cfg.Path, mode); err != nil {
		ln.Close()
		os.Remove(cfg.Path)
		return nil, err
	}
	s.ln = ln
	return s, nil
}

// chown changes a file's owner; tests replace it.
var chown = os.Chown

// chownGroup gives path to group gid unless it already belongs to it (an
// agent whose own group, or whose directory's setgid group, is gid needs
// no chown).
func chownGroup(path string, gid int) error {
	if st, err := os.Stat(path); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Gid) == gid {
			return nil
		}
	}
	return chown(path, -1, gid)
}

// lookupGroup resolves a group name or number.
func lookupGroup(g string) (int, string, error) {
	var grp *user.Group
	var err error
	if _, numErr := strconv.Atoi(g); numErr == nil {
		grp, err = user.LookupGroupId(g)
	} else {
		grp, err = user.LookupGroup(g)
	}
	if err != nil {
		return 0, "", fmt.Errorf("group %q does not exist", g)
	}
	gid, err := strconv.Atoi(grp.Gid)
	if err != nil {
		return 0, "", fmt.Errorf("group %q: id %q is not a number", g, grp.Gid)
	}
	return gid, grp.Name, nil
}

// removeStaleSocket removes a socket nobody listens on any more (an agent
// killed with -9), and refuses to touch anything else.
func removeStaleSocket(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	addr, done, err := socketAddr(path)
	if err != nil {
		return err
	}
	defer done()
	conn, err := net.DialTimeout("unix", addr, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("another agent listens on %s", path)
	}
	return os.Remove(path)
}

// Path is the socket's file name.
func (s *ControlSocket) Path() string { return s.path }

// Group is the group that may use the socket besides root, "" for none.
func (s *ControlSocket) Group() string { return s.group }

// OpenToAll reports whether the socket file lets every local user connect
// (mode 0666) because it could not be given to its group; the peer
// credentials still decide who may change anything.
func (s *ControlSocket) OpenToAll() bool { return s.openToAll }

// Serve answers requests for target until Close; it returns nil then.
func (s *ControlSocket) Serve(target Drainer) error {
	s.mu.Lock()
	s.target = target
	s.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/drain", s.drain)
	mux.HandleFunc("/v1/undrain", s.undrain)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s", r.URL.Path))
	})
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerOf(c))
		},
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	err := srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// Close stops serving and removes the socket file; safe to call twice.
func (s *ControlSocket) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err = srv.Shutdown(ctx)
		}
		if e := s.ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
			err = e
		}
		if e := os.Remove(s.path); e != nil && !errors.Is(e, os.ErrNotExist) && err == nil {
			err = e
		}
	})
	return err
}

// peer is who is at the other end of a control connection.
type peer struct {
	ok            bool // the kernel told us
	pid, uid, gid int
}

type peerKey struct{}

// peerOf asks the kernel for the credentials of the process that connected.
func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var cred *syscall.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return peer{}
	}
	return peer{ok: true, pid: int(cred.Pid), uid: int(cred.Uid), gid: int(cred.Gid)}
}

// String names the peer for the log: "alice (uid 1000, pid 4242)".
func (p peer) String() string {
	if !p.ok {
		return "unknown caller"
	}
	return fmt.Sprintf("%s (uid %d, pid %d)", userName(p.uid), p.uid, p.pid)
}

// userName is the login name of uid, or "uid N" when it has none.
func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// allowed reports whether p may use the socket: root, the agent's own
// user, or a member of the control group (its primary group, the groups
// its process holds, or the groups the user database lists).
func (s *ControlSocket) allowed(p peer) bool {
	switch {
	case !p.ok:
		return false
	case p.uid == 0 || p.uid == os.Geteuid():
		return true
	case s.gid < 0:
		return false
	case p.gid == s.gid || slices.Contains(processGroups(p.pid), s.gid):
		return true
	}
	u, err := user.LookupId(strconv.Itoa(p.uid))
	if err != nil {
		return false
	}
	ids, err := u.GroupIds()
	return err == nil && slices.Contains(ids, strconv.Itoa(s.gid))
}

// processGroups reads the supplementary groups of a process (the
// "Groups:" line of /proc/PID/status), which is what the kernel checks
// file permissions against.
func processGroups(pid int) []int {
	if pid <= 0 {
		return nil
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var out []int
		for _, field := range strings.Fields(rest) {
			if g, err := strconv.Atoi(field); err == nil {
				out = append(out, g)
			}
		}
		return out
	}
	return nil
}

// DeniedMessage is the one line a caller who may not drain reads: who may,
// and how to become one of them.
func DeniedMessage(group, who string) string {
	if group == "" {
		return "only root may drain or undrain this machine (an admin can let a group do it too: peerload agent --control-group GROUP)"
	}
	return fmt.Sprintf("only root and members of group %s may drain or undrain this machine; ask an admin to add you (usermod -aG %s %s), then log in again",
		group, group, who)
}

// authorize answers 403 with DeniedMessage, and logs the attempt, unless
// the caller is allowed; it returns the caller.
func (s *ControlSocket) authorize(w http.ResponseWriter, r *http.Request) (peer, bool) {
	p, _ := r.Context().Value(peerKey{}).(peer)
	if s.allowed(p) {
		return p, true
	}
	s.log.Warn("control: refused", "request", r.Method+" "+r.URL.Path, "by", p.String())
	who := "USER"
	if p.ok {
		who = userName(p.uid)
	}
	writeError(w, http.StatusForbidden, DeniedMessage(s.group, who))
	return p, false
}

func (s *ControlSocket) drain(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead, http.MethodPost) {
		return
	}
	p, ok := s.authorize(w, r)
	if !ok {
		return
	}
	if r.Method != http.MethodPost {
		s.writeState(w, false)
		return
	}
	reason, err := drainReason(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if reason == "" {
		reason = "drained by " + userName(p.uid)
	}
	s.change(w, p, true, reason)
}

func (s *ControlSocket) undrain(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	p, ok := s.authorize(w, r)
	if !ok {
		return
	}
	s.change(w, p, false, "")
}

// change sets the drain flag, logs who changed it, and answers with the
// new state and whether it changed.
func (s *ControlSocket) change(w http.ResponseWriter, p peer, on bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	was, oldReason := s.target.Drained()
	if err := s.target.SetDrain(on, reason); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	changed := was != on || (on && oldReason != reason)
	switch {
	case on:
		s.log.Info("drained", "reason", reason, "by", p.String(), "was_drained", was)
	case was:
		s.log.Info("undrained", "by", p.String(), "reason_was", oldReason)
	default:
		s.log.Info("undrain: was not drained", "by", p.String())
	}
	s.writeStateLocked(w, changed)
}

func (s *ControlSocket) writeState(w http.ResponseWriter, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writeStateLocked(w, changed)
}

func (s *ControlSocket) writeStateLocked(w http.ResponseWriter, changed bool) {
	on, reason := s.target.Drained()
	writeJSON(w, http.StatusOK, DrainResponse{Node: s.target.Name(), Drained: on, Reason: reason, Changed: changed})
}

// drainReason reads the reason of a drain request: a JSON body
// {"reason": "..."}, one line of at most maxDrainReason bytes.
func drainReason(r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 4096)
	var body struct {
		Reason string `json:"reason"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("body: %v", err)
	}
	if len(body.Reason) > maxDrainReason {
		return "", fmt.Errorf("reason: longer than %d bytes", maxDrainReason)
	}
	if strings.ContainsAny(body.Reason, "\r\n\x00") {
		return "", errors.New("reason: must be one line")
	}
	return strings.TrimSpace(body.Reason), nil
}
