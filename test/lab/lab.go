// Package lab builds a small computer lab out of Linux network namespaces
// for peerload's integration tests and benchmarks: every test host is a
// namespace with one veth link into a bridge, and the bridge itself lives
// in a dedicated "switch" namespace. Nothing is connected to the host's own
// namespace, so no lab packet can reach a real network, and faults
// (partitions, packet loss) are nftables rules in the switch namespace.
//
// Hosts get addresses from 10.77.0.0/16, configured inside their namespace
// only. Each host runs real programs through `ip netns exec`: a `peerload
// agent` with its own fake proc root, state dir and the lab's AES keyring
// and label (AddAgent), CoreDNS with the plugin (AddCoreDNS), BIND named
// (AddNamed) and `peerload nsupdate` (AddNsupdate). The test process itself
// talks to hosts through sockets opened inside their namespace (Host.Do,
// Host.HTTP, Host.Exchange).
//
// Everything a lab creates is named after a random run id: namespaces are
// pl-<id>-<host> and pl-<id>-switch, files live in
// $TMPDIR/peerload-lab/<id>. t.Cleanup removes all of it; when a test
// process was killed before it could clean up, the next New sweeps the
// namespaces, processes and files of runs whose owner process is gone.
//
// The lab needs root, ip (iproute2) and nft (nftables): New skips the test
// without them, and fails it when $CI is set.
//
// A test or benchmark builds what it needs and drives it:
//
//	l := lab.New(t, lab.Options{})
//	agents := l.AddAgents("h", 10, lab.AgentOptions{})  // h1..h10, LAN timings
//	dns := l.AddCoreDNS("dns", lab.CoreDNSOptions{Top: 3})
//	client := l.AddHost("client")
//	m, err := client.Lookup(dns.Server(), lab.VName, dnspkg.TypeA)
//	l.Partition(hostsA, hostsB) // or l.Loss(10); then l.Heal()
//	agents[0].Process.Kill()     // kill -9; Process.Start brings it back
package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Subnet holds every lab address. Hosts added without an address get the
// next free one from AutoPrefix; strangers and special hosts can be put
// anywhere else in Subnet with AddHostAt.
var (
	Subnet     = netip.MustParsePrefix("10.77.0.0/16")
	AutoPrefix = netip.MustParsePrefix("10.77.0.0/17")
)

// StartupTimeout bounds waiting for a lab to come up (members joined,
// servers answering): a precondition, not behaviour under test. It is
// generous because on an overloaded machine the kernel drops packets
// between namespaces (the per-CPU backlog overflows while softirq work
// waits for a CPU), and memberlist's join retries back off to 30 s.
const StartupTimeout = 2 * time.Minute

// netnsDir is where `ip netns add` mounts named namespaces.
const netnsDir = "/run/netns"

// Options configure a lab. The zero value is a lab with gossip encryption
// (one fresh keyring), a cluster label and no allow list.
type Options struct {
	// Allow is --allow for every member (CIDRs); empty allows any source.
	Allow []string
	// Label is the gossip cluster label of every member; empty picks
	// "peerload-lab".
	Label string
	// NoKeyring runs gossip in clear text.
	NoKeyring bool
	// PinNeighbors gives every pair of hosts permanent neighbour (ARP)
	// entries as hosts are added, so no packet waits on ARP. The kernel's
	// neighbour table is shared by all namespaces and holds 1,024 dynamic
	// entries: another lab or benchmark running at the same time can fill
	// it, and then this lab's hosts fail with "no route to host". It costs
	// one `ip` run per host already there, so it suits labs of tens of
	// hosts; a large lab calls Lab.PinNeighbors once instead.
	PinNeighbors bool
}

// Lab is one run's set of namespaces, processes and files.
type Lab struct {
	// ID is the run id in every name the lab creates.
	ID string
	// Dir holds every host's files; removed at cleanup.
	Dir string
	// Keyring is the gossip keyring file of the members ("" when
	// Options.NoKeyring).
	Keyring string
	// Label is the members' gossip cluster label.
	Label string
	// Allow is the members' --allow list.
	Allow []string

	t        testing.TB
	pin      bool
	ip, nft  string
	peerload string
	switchNS string
	owner    string
	start    time.Time

	mu       sync.Mutex
	hosts    []*Host
	used     map[netip.Addr]bool
	next     netip.Addr
	procs    []*Process
	crashes  []string
	agents   []*Agent
	groups   [][]*Host
	loss     int
	torndown bool
}

// Host is one network namespace with one link into the lab's switch.
type Host struct {
	// Name is the test's name for the host (also the agent's node name).
	Name string
	// NS is the namespace name, pl-<id>-<Name>.
	NS string
	// Addr is the host's IPv4 address on the lab network.
	Addr netip.Addr
	// Dir is the host's private directory (proc root, state, logs).
	Dir string

	lab      *Lab
	port     string // the host's interface name on the switch side
	mac      string // the MAC address of its eth0, derived from Addr
	httpOnce sync.Once
	http     *http.Client
}

var validName = regexp.MustCompile(`^[a-z][a-z0-9]{0,14}$`)

// New builds an empty lab (the switch namespace with its bridge) after
// sweeping what crashed runs left behind. Everything is removed in
// t.Cleanup.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	RequireRoot(t)
	l := &Lab{
		t:        t,
		ip:       RequireProgram(t, "ip"),
		nft:      RequireProgram(t, "nft"),
		peerload: BinPath(t, "peerload"),
		start:    time.Now(),
		used:     map[netip.Addr]bool{},
		next:     AutoPrefix.Addr(),
		Label:    opts.Label,
		Allow:    slices.Clone(opts.Allow),
		pin:      opts.PinNeighbors,
	}
	if l.Label == "" {
		l.Label = "peerload-lab"
	}
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatalf("lab: run id: %v", err)
	}
	l.ID = hex.EncodeToString(id[:])
	base := filepath.Join(os.TempDir(), "peerload-lab")
	l.Dir = filepath.Join(base, l.ID)
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	// The owner file exists before any namespace does, so a sweep by a
	// concurrent run never takes this run's namespaces for leftovers.
	l.owner = filepath.Join(base, l.ID+".owner")
	self, err := processIdentity(os.Getpid())
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	if err := os.WriteFile(l.owner, []byte(self), 0o644); err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(l.teardown)
	l.sweep(base)

	l.switchNS = fmt.Sprintf("pl-%s-switch", l.ID)
	l.run(l.ip, "netns", "add", l.switchNS)
	l.ipBatch(l.switchNS,
		"link set lo up",
		"link add br0 type bridge",
		"link set br0 up",
	)
	// The bridge forward chain is where faults go; it starts empty.
	l.applyFaults()

	if !opts.NoKeyring {
		l.Keyring = filepath.Join(l.Dir, "keyring")
		res := runCommand(context.Background(), l.peerload, "keygen", "--out", l.Keyring)
		if res.Code != 0 {
			t.Fatalf("lab: peerload keygen: %s", res)
		}
	}
	return l
}

// T is the test the lab belongs to.
func (l *Lab) T() testing.TB { return l.t }

// AddHost adds a host with the next free address of AutoPrefix.
func (l *Lab) AddHost(name string) *Host {
	l.t.Helper()
	l.mu.Lock()
	for l.used[l.next] || !usable(l.next) {
		l.next = l.next.Next()
	}
	addr := l.next
	l.mu.Unlock()
	if !AutoPrefix.Contains(addr) {
		l.t.Fatalf("lab: out of addresses in %s", AutoPrefix)
	}
	return l.AddHostAt(name, addr)
}

// usable reports whether addr is a host address of a /24 (not .0, not .255).
func usable(addr netip.Addr) bool {
	b := addr.As4()
	return b[3] != 0 && b[3] != 255
}

// AddHostAt adds a host with the given address in Subnet. Names are 1 to
// 15 lower-case letters and digits, starting with a letter.
func (l *Lab) AddHostAt(name string, addr netip.Addr) *Host {
	l.t.Helper()
	if !validName.MatchString(name) || name == "switch" {
		l.t.Fatalf("lab: host name %q: want 1-15 lower-case letters and digits, starting with a letter, not \"switch\"", name)
	}
	if !addr.Is4() || !Subnet.Contains(addr) || !usable(addr) {
		l.t.Fatalf("lab: host %s: address %s is not a host address in %s", name, addr, Subnet)
	}
	l.mu.Lock()
	for _, h := range l.hosts {
		if h.Name == name {
			l.mu.Unlock()
			l.t.Fatalf("lab: host %s added twice", name)
		}
	}
	if l.used[addr] {
		l.mu.Unlock()
		l.t.Fatalf("lab: host %s: address %s already in use", name, addr)
	}
	h := &Host{
		Name: name,
		NS:   fmt.Sprintf("pl-%s-%s", l.ID, name),
		Addr: addr,
		Dir:  filepath.Join(l.Dir, name),
		lab:  l,
		port: "v" + strconv.Itoa(len(l.hosts)),
		mac:  macOf(addr),
	}
	l.used[addr] = true
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()

	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	l.run(l.ip, "netns", "add", h.NS)
	// The veth pair is made in the switch namespace and its other end
	// moved straight into the host's: it never exists in the host's own
	// namespace, not even for a moment.
	l.ipBatch(l.switchNS,
		fmt.Sprintf("link add %s type veth peer name eth0 address %s netns %s", h.port, h.mac, h.NS),
		fmt.Sprintf("link set %s master br0 up", h.port),
	)
	l.ipBatch(h.NS,
		"link set lo up",
		fmt.Sprintf("addr add %s/%d dev eth0", addr, Subnet.Bits()),
		"link set eth0 up",
	)
	if l.pin {
		l.pinHost(h)
	}
	return h
}

// macOf is a locally administered MAC address made of a lab address:
// 02:4c:<the four bytes of addr>. Knowing every MAC up front lets the lab
// pin neighbour entries without asking each host.
func macOf(addr netip.Addr) string {
	b := addr.As4()
	return fmt.Sprintf("02:4c:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3])
}

// pinHost gives h permanent neighbour entries for every other host and
// every other host one for h.
func (l *Lab) pinHost(h *Host) {
	l.t.Helper()
	var own []string
	for _, o := range l.Hosts() {
		if o == h {
			continue
		}
		own = append(own, neighCmd(o))
		l.ipBatch(o.NS, neighCmd(h))
	}
	if len(own) > 0 {
		l.ipBatch(h.NS, own...)
	}
}

// neighCmd is the ip command that pins h's address to its MAC on eth0.
func neighCmd(h *Host) string {
	return fmt.Sprintf("neigh replace %s lladdr %s dev eth0 nud permanent", h.Addr, h.mac)
}

// Hosts returns every host in the order they were added.
func (l *Lab) Hosts() []*Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.hosts)
}

// Host returns the host called name, or nil.
func (l *Lab) Host(name string) *Host {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (h *Host) nsPath() string { return filepath.Join(netnsDir, h.NS) }

// Lab is the lab the host belongs to.
func (h *Host) Lab() *Lab { return h.lab }

// String is the host's name and address.
func (h *Host) String() string { return fmt.Sprintf("%s(%s)", h.Name, h.Addr) }

// Result is the outcome of running a program to its end.
type Result struct {
	Stdout, Stderr string
	// Code is the exit code; -1 when it could not be started or was killed.
	Code int
	// Err is why the program could not be run (not a non-zero exit).
	Err error
}

// Lines are the non-empty lines of Stdout.
func (r Result) Lines() []string {
	var out []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func (r Result) String() string {
	s := fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	if r.Err != nil {
		s += ", error " + r.Err.Error()
	}
	return s
}

// RunCommand runs a program to its end, at most 60 s or until ctx ends,
// with env added to the test's environment, and collects its output.
func RunCommand(ctx context.Context, env []string, name string, args ...string) Result {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.Code = exit.ExitCode()
	default:
		res.Code, res.Err = -1, err
	}
	return res
}

// runCommand is RunCommand without extra environment.
func runCommand(ctx context.Context, name string, args ...string) Result {
	return RunCommand(ctx, nil, name, args...)
}

// Run runs a program inside the host's namespace to its end (at most 60 s)
// and returns its output; it never fails the test itself.
func (h *Host) Run(ctx context.Context, name string, args ...string) Result {
	return runCommand(ctx, h.lab.ip, append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Peerload runs bin/peerload with args inside the host's namespace, e.g.
// ("status", "--json") or ("drain", "--reason", "test"): the host's own
// agent answers on 127.0.0.1:1981 and its control socket.
func (h *Host) Peerload(args ...string) Result {
	return RunCommand(context.Background(), []string{"PEERLOAD_API=", "PEERLOAD_CONTROL=" + h.ControlSocket()},
		h.lab.ip, append([]string{"netns", "exec", h.NS, h.lab.peerload}, args...)...)
}

// ControlSocket is the control socket of the host's agent (drain and
// undrain), in the host's directory.
func (h *Host) ControlSocket() string { return filepath.Join(h.Dir, "control.sock") }

// run runs a setup command and fails the test when it fails.
func (l *Lab) run(name string, args ...string) {
	l.t.Helper()
	if res := runCommand(context.Background(), name, args...); res.Code != 0 {
		l.t.Fatalf("lab: %s %s: %s", name, strings.Join(args, " "), res)
	}
}

// ipBatch runs ip commands in one namespace with one `ip -n NS -batch -`.
func (l *Lab) ipBatch(ns string, cmds ...string) {
	l.t.Helper()
	cmd := exec.Command(l.ip, "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("lab: ip -n %s -batch (%s): %v: %s", ns, strings.Join(cmds, "; "), err, out)
	}
}

// teardown stops every process, deletes every namespace and removes the
// lab's files. Processes that exited without being told to fail the test.
func (l *Lab) teardown() {
	l.mu.Lock()
	if l.torndown {
		l.mu.Unlock()
		return
	}
	l.torndown = true
	procs := slices.Clone(l.procs)
	hosts := slices.Clone(l.hosts)
	l.mu.Unlock()

	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.Kill() }()
	}
	wg.Wait()
	if crashes := l.Crashes(); len(crashes) > 0 {
		l.t.Errorf("lab: %d process(es) exited without being stopped:\n%s", len(crashes), strings.Join(crashes, "\n"))
	}
	if l.t.Failed() {
		for _, p := range procs {
			l.t.Logf("log of %s (last lines):\n%s", p.Name, p.LogTail(40))
		}
	}
	for _, h := range hosts {
		deleteNetns(l.ip, h.NS)
		_ = os.RemoveAll(filepath.Join(netnsEtc, h.NS)) // AddClient's resolv.conf
	}
	if l.switchNS != "" {
		deleteNetns(l.ip, l.switchNS)
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		l.t.Errorf("lab: remove %s: %v", l.Dir, err)
	}
	_ = os.Remove(l.owner)
}

// deleteNetns kills what still runs in a namespace (only processes a lab
// started live there) and deletes it.
func deleteNetns(ip, ns string) {
	res := runCommand(context.Background(), ip, "netns", "pids", ns)
	for _, f := range strings.Fields(res.Stdout) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			if p, err := os.FindProcess(pid); err == nil {
				_ = p.Kill()
			}
		}
	}
	runCommand(context.Background(), ip, "netns", "delete", ns)
}

// Crashes lists the processes that exited without the lab being asked to
// stop them, with the end of their log.
func (l *Lab) Crashes() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.crashes)
}

var leftoverNS = regexp.MustCompile(`^pl-([0-9a-f]{8})-[a-z0-9]+$`)

// sweep removes what runs whose test process died left behind: their
// namespaces (and the processes still running in them) and their files.
// A run is left alone while its owner process lives, and a namespace only
// goes when it is older than this run.
func (l *Lab) sweep(base string) {
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		m := leftoverNS.FindStringSubmatch(e.Name())
		if m == nil || m[1] == l.ID || ownerAlive(filepath.Join(base, m[1]+".owner")) {
			continue
		}
		if st, err := os.Stat(filepath.Join(netnsDir, e.Name())); err != nil || !st.ModTime().Before(l.start) {
			continue
		}
		l.t.Logf("lab: removing namespace %s left by a crashed run", e.Name())
		deleteNetns(l.ip, e.Name())
	}
	entries, _ = os.ReadDir(netnsEtc)
	for _, e := range entries {
		m := leftoverNS.FindStringSubmatch(e.Name())
		if m == nil || m[1] == l.ID || ownerAlive(filepath.Join(base, m[1]+".owner")) {
			continue
		}
		if _, err := os.Stat(filepath.Join(netnsDir, e.Name())); err == nil {
			continue // its namespace is still there (newer than this run)
		}
		l.t.Logf("lab: removing %s left by a crashed run", filepath.Join(netnsEtc, e.Name()))
		_ = os.RemoveAll(filepath.Join(netnsEtc, e.Name()))
	}
	entries, _ = os.ReadDir(base)
	for _, e := range entries {
		id := strings.TrimSuffix(e.Name(), ".owner")
		if id == l.ID || len(id) != 8 || ownerAlive(filepath.Join(base, id+".owner")) {
			continue
		}
		l.t.Logf("lab: removing %s left by a crashed run", filepath.Join(base, e.Name()))
		_ = os.RemoveAll(filepath.Join(base, e.Name()))
	}
}

// processIdentity is "pid starttime": a pid alone may be reused.
func processIdentity(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", err
	}
	// Fields after the command (which may hold spaces) start after ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: no command field", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return fmt.Sprintf("%d %s", pid, f[19]), nil
}

// ownerAlive reports whether the process named in an owner file still runs.
func ownerAlive(path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return false
	}
	id, err := processIdentity(pid)
	return err == nil && id == string(b)
}
