package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/peerload/peerload/agent/agenttest"
)

// newDrained is lab01, drained for reason.
func newDrained(reason string) *agenttest.DrainFlag {
	f := &agenttest.DrainFlag{Node: "lab01"}
	_ = f.SetDrain(true, reason)
	return f
}

// startControl listens on cfg and serves target until the test ends.
func startControl(t *testing.T, cfg ControlConfig, target Drainer) *ControlSocket {
	t.Helper()
	s, err := ListenControl(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(target) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if _, err := os.Stat(cfg.Path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s still there after Close: %v", cfg.Path, err)
		}
	})
	return s
}

func TestControlDrainUndrain(t *testing.T) {
	var log agenttest.LogBuffer
	target := &agenttest.DrainFlag{Node: "lab01"}
	path := filepath.Join(t.TempDir(), "run", "control.sock")
	s := startControl(t, ControlConfig{Path: path, Logger: slog.New(slog.NewTextHandler(&log, nil))}, target)
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 || st.Mode().Type() != os.ModeSocket {
		t.Fatalf("socket without a group: %v %v, want a socket with mode 0600", st.Mode(), err)
	}
	me := userName(os.Getuid())
	c := NewControlClient(s.Path())
	ctx := context.Background()

	steps := []struct {
		do      func() (*DrainResponse, error)
		drained bool
		reason  string
		changed bool
		logged  string
	}{
		{func() (*DrainResponse, error) { return c.Drain(ctx, "disk replacement") }, true, "disk replacement", true,
			`msg=drained reason="disk replacement" by="` + me + ` (uid ` + strconv.Itoa(os.Getuid())},
		{func() (*DrainResponse, error) { return c.Drain(ctx, "disk replacement") }, true, "disk replacement", false, "was_drained=true"},
		{func() (*DrainResponse, error) { return c.Undrain(ctx) }, false, "", true, `msg=undrained by="` + me},
		{func() (*DrainResponse, error) { return c.Undrain(ctx) }, false, "", false, `msg="undrain: was not drained"`},
		{func() (*DrainResponse, error) { return c.Drain(ctx, "") }, true, "drained by " + me, true, `reason="drained by ` + me},
	}
	for i, st := range steps {
		d, err := st.do()
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if d.Node != "lab01" || d.Drained != st.drained || d.Reason != st.reason || d.Changed != st.changed {
			t.Errorf("step %d: %+v, want drained %v reason %q changed %v", i, d, st.drained, st.reason, st.changed)
		}
		if on, reason := target.Drained(); on != st.drained || reason != st.reason {
			t.Errorf("step %d: target %v %q", i, on, reason)
		}
		if !strings.Contains(log.String(), st.logged) {
			t.Errorf("step %d: log lacks %q:\n%s", i, st.logged, log.String())
		}
	}

	for _, bad := range []struct{ reason, want string }{
		{strings.Repeat("x", 121), "longer than 120 bytes"},
		{"two\nlines", "one line"},
	} {
		if _, err := c.Drain(ctx, bad.reason); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("drain %q: %v, want %q", bad.reason, err, bad.want)
		}
	}
	target.Fail(errors.New("state dir is read-only"))
	if _, err := c.Undrain(ctx); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("undrain with a failing setter: %v", err)
	}
}

func TestControlSocketFile(t *testing.T) {
	dir := t.TempDir()

	// An agent killed with -9 leaves its socket: the next one replaces it.
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	startControl(t, ControlConfig{Path: stale}, &agenttest.DrainFlag{Node: "lab01"})

	// A live agent's socket, a file that is no socket, a path too long
	// for a socket and a group that does not exist are refused.
	notSocket := filepath.Join(dir, "file")
	os.WriteFile(notSocket, nil, 0o644)
	for _, tt := range []struct {
		cfg  ControlConfig
		want string
	}{
		{ControlConfig{Path: stale}, "another agent listens on " + stale},
		{ControlConfig{Path: notSocket}, notSocket + " exists and is not a socket"},
		{ControlConfig{Path: filepath.Join(dir, strings.Repeat("s", 90)+".sock")}, "is longer than 77 bytes"},
		{ControlConfig{Path: filepath.Join(dir, "g.sock"), Group: "no-such-group-peerload"}, `group "no-such-group-peerload" does not exist`},
		{ControlConfig{Path: ""}, "empty path"},
	} {
		if _, err := ListenControl(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ListenControl(%+v) = %v, want %q", tt.cfg, err, tt.want)
		}
	}
	// A path longer than a socket address holds (a deep TMPDIR) works.
	deep := filepath.Join(dir, strings.Repeat("d", 60), strings.Repeat("e", 60), "control.sock")
	target := &agenttest.DrainFlag{Node: "lab01"}
	startControl(t, ControlConfig{Path: deep}, target)
	if d, err := NewControlClient(deep).Drain(context.Background(), "deep"); err != nil || !d.Drained {
		t.Errorf("drain through %d-byte path: %+v %v", len(deep), d, err)
	}

	// The default group need not exist: then only root.
	s := startControl(t, ControlConfig{Path: filepath.Join(dir, "opt.sock"), Group: "no-such-group-peerload", GroupOptional: true}, &agenttest.DrainFlag{Node: "lab01"})
	if s.Group() != "" {
		t.Errorf("missing optional group: Group() = %q", s.Group())
	}

	// Where a sandbox forbids chown, the socket is open to all and the
	// peer credentials decide alone.
	chown = func(string, int, int) error { return &os.PathError{Op: "chown", Err: syscall.EPERM} }
	sandboxed := filepath.Join(dir, "sandboxed.sock")
	s = startControl(t, ControlConfig{Path: sandboxed, Group: "nogroup"}, &agenttest.DrainFlag{Node: "lab01"})
	chown = os.Chown
	if st, err := os.Stat(sandboxed); err != nil || st.Mode().Perm() != 0o666 || !s.OpenToAll() || s.Group() != "nogroup" {
		t.Errorf("socket where chown is forbidden: %v %v, open to all %v; want mode 0666", st.Mode(), err, s.OpenToAll())
	}

	if os.Geteuid() != 0 {
		t.Log("not root: the group's ownership of the socket is not tested")
		return
	}
	grp := filepath.Join(dir, "grp.sock")
	s = startControl(t, ControlConfig{Path: grp, Group: "nogroup"}, &agenttest.DrainFlag{Node: "lab01"})
	st, err := os.Stat(grp)
	if err != nil {
		t.Fatal(err)
	}
	if gid := st.Sys().(*syscall.Stat_t).Gid; st.Mode().Perm() != 0o660 || gid != 65534 || s.Group() != "nogroup" {
		t.Errorf("socket with group nogroup: mode %v gid %d group %q", st.Mode().Perm(), gid, s.Group())
	}
}

// TestControlAllowed decides who may drain from the credentials the
// kernel reports.
func TestControlAllowed(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	nobodyUID, _ := strconv.Atoi(nobody.Uid)
	nobodyGID, _ := strconv.Atoi(nobody.Gid)
	rootOnly := &ControlSocket{gid: -1}
	group := &ControlSocket{gid: nobodyGID, group: "nogroup"}
	other := &ControlSocket{gid: 4242, group: "admins"}
	for _, tt := range []struct {
		s    *ControlSocket
		p    peer
		want bool
	}{
		{rootOnly, peer{ok: true, uid: 0, gid: 0}, true},
		{rootOnly, peer{ok: true, uid: os.Geteuid(), gid: 12345}, true},
		{rootOnly, peer{ok: true, uid: nobodyUID, gid: nobodyGID}, false},
		{rootOnly, peer{ok: false, uid: 0}, false},
		{group, peer{ok: true, uid: 31337, gid: nobodyGID}, true}, // primary group
		{group, peer{ok: true, uid: nobodyUID, gid: 31337}, true}, // the user database
		{group, peer{ok: true, uid: 31337, gid: 31337}, false},
		{other, peer{ok: true, uid: nobodyUID, gid: nobodyGID}, false},
	} {
		if got := tt.s.allowed(tt.p); got != tt.want {
			t.Errorf("group %q, %+v: allowed %v, want %v", tt.s.group, tt.p, got, tt.want)
		}
	}
	// The groups a process holds count: the kernel checks the socket's
	// file mode against them.
	held, err := os.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if got := processGroups(os.Getpid()); fmt.Sprint(got) != fmt.Sprint(held) {
		t.Errorf("processGroups(self) = %v, want %v", got, held)
	}
}

// TestControlHelperProcess is the client side of TestControlAsNobody, run in
// a child process with another user's credentials; otherwise it does
// nothing.
func TestControlHelperProcess(t *testing.T) {
	action, path := os.Getenv("PEERLOAD_CONTROL_HELPER"), os.Getenv("PEERLOAD_CONTROL_SOCKET")
	if action == "" {
		return
	}
	c := NewControlClient(path)
	var d *DrainResponse
	var err error
	if action == "drain" {
		d, err = c.Drain(context.Background(), "student prank")
	} else {
		d, err = c.Undrain(context.Background())
	}
	if err != nil {
		var de *DeniedError
		fmt.Printf("denied=%v error: %v\n", errors.As(err, &de), err)
		os.Exit(3)
	}
	fmt.Printf("ok drained=%v reason=%q\n", d.Drained, d.Reason)
	os.Exit(0)
}

// TestControlAsNobody runs drain and undrain as the user nobody in a child
// process: refused with one clear line by the socket's file mode, refused
// by the peer credentials when the file mode is too open, allowed once
// nobody's group is the control group, and logged either way.
func TestControlAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	group, err := user.LookupGroupId(nobody.Gid)
	if err != nil {
		t.Fatal(err)
	}

	// nobody must reach the socket's directory and run a copy of this
	// test binary (go test keeps it in a private directory).
	dir, err := os.MkdirTemp("", "plctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "api.test")
	copyExecutable(t, bin)

	as := func(action, sock string) (string, int) {
		cmd := exec.Command(bin, "-test.run=^TestControlHelperProcess$")
		cmd.Env = append(os.Environ(), "PEERLOAD_CONTROL_HELPER="+action, "PEERLOAD_CONTROL_SOCKET="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("run as nobody: %v", err)
		}
		return strings.TrimSpace(string(out)), cmd.ProcessState.ExitCode()
	}

	var log agenttest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	target := newDrained("disk replacement")

	// Root only: the file mode keeps nobody out, and the client says who may.
	sock := filepath.Join(dir, "root.sock")
	s := startControl(t, ControlConfig{Path: sock, Logger: logger}, target)
	rootOnly := "denied=true error: " + DeniedMessage("", nobody.Username)
	for _, action := range []string{"drain", "undrain"} {
		if out, code := as(action, sock); code != 3 || out != rootOnly {
			t.Errorf("%s as nobody on a root-only socket: exit %d %q, want %q", action, code, out, rootOnly)
		}
	}
	// A socket opened to everyone by mistake: the peer credentials refuse.
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{"drain", "undrain"} {
		if out, code := as(action, sock); code != 3 || out != rootOnly {
			t.Errorf("%s as nobody past the file mode: exit %d %q, want %q", action, code, out, rootOnly)
		}
	}
	if on, reason := target.Drained(); !on || reason != "disk replacement" {
		t.Errorf("nobody changed the drain flag: %v %q", on, reason)
	}
	if want := fmt.Sprintf(`msg="control: refused" request="POST /v1/undrain" by="%s (uid %d`, nobody.Username, uid); !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
	s.Close()

	// A group nobody is not in: the message names the group and how to join.
	other := filepath.Join(dir, "other.sock")
	startControl(t, ControlConfig{Path: other, Group: "daemon", Logger: logger}, target)
	want := "denied=true error: " + DeniedMessage("daemon", nobody.Username)
	if out, code := as("drain", other); code != 3 || out != want {
		t.Errorf("drain as nobody, group daemon: exit %d %q, want %q", code, out, want)
	}

	// nobody's own group is the control group: allowed, and logged.
	mine := filepath.Join(dir, "group.sock")
	startControl(t, ControlConfig{Path: mine, Group: group.Name, Logger: logger}, target)
	if out, code := as("undrain", mine); code != 0 || out != `ok drained=false reason=""` {
		t.Errorf("undrain as nobody in group %s: exit %d %q", group.Name, code, out)
	}
	if out, code := as("drain", mine); code != 0 || out != `ok drained=true reason="student prank"` {
		t.Errorf("drain as nobody in group %s: exit %d %q", group.Name, code, out)
	}
	if want := fmt.Sprintf(`msg=drained reason="student prank" by="%s (uid %d`, nobody.Username, uid); !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, log.String())
	}
}

// copyExecutable copies the running test binary to path, mode 0755.
func copyExecutable(t *testing.T, path string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestControlNotRunning: no agent, or a socket nobody listens on, is one
// line saying so.
func TestControlNotRunning(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sock")
	if _, err := NewControlClient(missing).Drain(context.Background(), ""); err == nil ||
		err.Error() != "no control socket at "+missing+": is `peerload agent` running on this machine, and is this its --control socket?" {
		t.Errorf("drain without a socket: %v", err)
	}
	dead := filepath.Join(dir, "dead.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: dead, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := NewControlClient(dead).Undrain(context.Background()); err == nil || !strings.Contains(err.Error(), "nothing listens on the control socket "+dead) {
		t.Errorf("undrain on a dead socket: %v", err)
	}
}
