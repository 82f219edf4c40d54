// The shared harness every integration test reuses: finding binaries, free
// loopback ports, fake proc roots with a settable load, starting
// `peerload agent` processes, deadline polling and dig.

package test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/test/lab"
)

// binPath returns the absolute path of a built binary (e.g. "peerload",
// "coredns") and fails the test when it is missing: run `make build`.
func binPath(t testing.TB, name string) string {
	t.Helper()
	return lab.BinPath(t, name)
}

// peerloadBin is binPath(t, "peerload").
func peerloadBin(t testing.TB) string {
	t.Helper()
	return binPath(t, "peerload")
}

// requireProgram returns the path of an external program (dig, nsupdate,
// named, ...). When it is missing the test fails if $CI is set, else it is
// skipped.
func requireProgram(t testing.TB, name string) string {
	t.Helper()
	return lab.RequireProgram(t, name)
}

var (
	portMu   sync.Mutex
	portUsed = map[int]bool{}
)

// freePort returns a loopback port that is free for both TCP and UDP right
// now (gossip uses both on one port) and that no other caller of freePort
// in this test binary has received.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		if portUsed[port] {
			continue
		}
		portUsed[port] = true
		return port
	}
	t.Fatal("free port: no port free for both TCP and UDP after 100 tries")
	return 0
}

// freePorts returns n distinct free ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	return ports
}

// waitFor is agenttest.WaitFor, with cond's message as the state.
func waitFor(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	agenttest.WaitFor(t, timeout, "the condition", cond)
}

// fakeProc is a generated proc root with a settable load (lab.FakeProc).
type fakeProc = lab.FakeProc

// newFakeProc writes a proc root for a node with cpus CPUs, 16 GiB of
// memory (12 GiB available) and load 0.10.
func newFakeProc(t testing.TB, cpus int) *fakeProc {
	t.Helper()
	return lab.NewFakeProc(t, cpus)
}

// agentOptions describes one `peerload agent` process. Zero ports are
// picked free; empty directories are made under t.TempDir().
type agentOptions struct {
	Name       string
	Advertise  string // --advertise, e.g. 127.0.1.1
	GossipPort int
	APIPort    int
	Join       []string // host:port
	Proc       *fakeProc
	StateDir   string
	Root       string   // --root for the health checks (gets a tmp/ dir)
	Pools      []string // --pool
	Collector  bool
	Profile    string   // --profile; "" is local
	Extra      []string // more flags, appended last
}

// agentProc is a running (or stopped) `peerload agent` child process.
type agentProc struct {
	Opts agentOptions
	t    testing.TB

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// lockedBuffer collects a child's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startAgent fills in the defaults of opts and starts the agent; the process
// is killed in t.Cleanup and its log printed when the test failed. Its
// timings are the local profile unless opts.Profile says otherwise.
func startAgent(t testing.TB, opts agentOptions) *agentProc {
	t.Helper()
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("node%d", freePort(t))
	}
	if opts.GossipPort == 0 {
		opts.GossipPort = freePort(t)
	}
	if opts.APIPort == 0 {
		opts.APIPort = freePort(t)
	}
	if opts.Proc == nil && !opts.Collector {
		opts.Proc = newFakeProc(t, 4)
	}
	if opts.StateDir == "" {
		opts.StateDir = filepath.Join(t.TempDir(), "state")
	}
	if opts.Root == "" {
		opts.Root = filepath.Join(t.TempDir(), "root")
	}
	if err := os.MkdirAll(filepath.Join(opts.Root, "tmp"), 0o755); err != nil {
		t.Fatalf("agent root: %v", err)
	}
	a := &agentProc{Opts: opts, t: t, log: &lockedBuffer{}}
	a.Start()
	t.Cleanup(func() {
		a.Kill()
		if t.Failed() {
			t.Logf("log of agent %s:\n%s", a.Opts.Name, a.Log())
		}
	})
	return a
}

// Args are the command line flags of the agent.
func (a *agentProc) Args() []string {
	o := a.Opts
	args := []string{"agent",
		"--name", o.Name,
		"--bind", fmt.Sprintf("127.0.0.1:%d", o.GossipPort),
		"--api", fmt.Sprintf("127.0.0.1:%d", o.APIPort),
		"--state-dir", o.StateDir,
		"--control", filepath.Join(o.StateDir, "control.sock"),
		"--root", o.Root,
		"--ssh-port", "0",
		"--profile", cmp.Or(o.Profile, "local"),
	}
	if o.Proc != nil {
		args = append(args, "--proc", o.Proc.Dir)
	}
	if o.Advertise != "" {
		args = append(args, "--advertise", o.Advertise)
	}
	if len(o.Join) > 0 {
		args = append(args, "--join", strings.Join(o.Join, ","))
	}
	if len(o.Pools) > 0 {
		args = append(args, "--pool", strings.Join(o.Pools, ","))
	}
	if o.Collector {
		args = append(args, "--collector")
	}
	return append(args, o.Extra...)
}

// Start (re)starts the process with the same options; it fails the test if
// the agent is already running.
func (a *agentProc) Start() {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		select {
		case <-a.done:
		default:
			a.t.Fatalf("agent %s already running", a.Opts.Name)
		}
	}
	cmd := exec.Command(peerloadBin(a.t), a.Args()...)
	fmt.Fprintf(a.log, "--- start %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout = a.log
	cmd.Stderr = a.log
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("start agent %s: %v", a.Opts.Name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(a.log, "--- exit: %v\n", err)
		close(done)
	}()
	a.cmd, a.done = cmd, done
}

// signal sends sig and waits up to timeout for the exit; it reports whether
// the process exited.
func (a *agentProc) signal(sig syscall.Signal, timeout time.Duration) bool {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return true
	}
	return signalWait(cmd, done, sig, timeout)
}

// signalWait sends sig to a child process unless it already exited (done
// is closed when it has) and reports whether it exits within timeout.
func signalWait(cmd *exec.Cmd, done <-chan struct{}, sig syscall.Signal, timeout time.Duration) bool {
	return lab.SignalWait(cmd, done, sig, timeout)
}

// Kill sends SIGKILL (a crash: no leave message) and waits for the exit.
func (a *agentProc) Kill() { a.signal(syscall.SIGKILL, 10*time.Second) }

// Stop sends SIGTERM (graceful leave) and fails the test unless the agent
// exits within 10 s; it then dumps its goroutines into the log and kills it.
func (a *agentProc) Stop() {
	a.t.Helper()
	if !a.signal(syscall.SIGTERM, 10*time.Second) {
		a.mu.Lock()
		cmd, done := a.cmd, a.done
		a.mu.Unlock()
		dumpAndKill(cmd.Process, done)
		a.t.Fatalf("agent %s did not exit within 10s of SIGTERM", a.Opts.Name)
	}
}

// dumpAndKill ends a Go child process that hangs: SIGQUIT first, so the Go
// runtime writes every goroutine's stack to the child's log (the failure
// message shows where it hung), then SIGKILL if it is still there 3 s
// later. It returns once the process has exited (done is closed).
func dumpAndKill(p *os.Process, done <-chan struct{}) {
	_ = p.Signal(syscall.SIGQUIT)
	select {
	case <-done:
		return
	case <-time.After(3 * time.Second):
	}
	_ = p.Kill()
	<-done
}

// Signal sends sig (e.g. SIGHUP) without waiting.
func (a *agentProc) Signal(sig syscall.Signal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		_ = a.cmd.Process.Signal(sig)
	}
}

// Exited reports whether the process has exited, and its exit code (-1 when
// killed by a signal).
func (a *agentProc) Exited() (bool, int) {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	select {
	case <-done:
		return true, cmd.ProcessState.ExitCode()
	default:
		return false, 0
	}
}

// Gossip is the agent's gossip host:port (for --join).
func (a *agentProc) Gossip() string { return fmt.Sprintf("127.0.0.1:%d", a.Opts.GossipPort) }

// API is the agent's local API host:port (for --api).
func (a *agentProc) API() string { return fmt.Sprintf("127.0.0.1:%d", a.Opts.APIPort) }

// Control is the agent's control socket (drain, undrain): control.sock in
// its state dir.
func (a *agentProc) Control() string { return filepath.Join(a.Opts.StateDir, "control.sock") }

// Log is everything the process wrote so far.
func (a *agentProc) Log() string { return a.log.String() }

// startCluster starts n agents named <prefix>1..n advertising 127.0.1.1..n,
// each joining the first, and waits until every one lists all n in
// `peerload top -n n`.
func startCluster(t testing.TB, prefix string, n int) []*agentProc {
	t.Helper()
	return startClusterAdvertising(t, prefix, n, func(i int) string { return fmt.Sprintf("127.0.1.%d", i+1) })
}

// startClusterAdvertising is startCluster with the --advertise value of
// the i-th agent (from 0) given by advertise.
func startClusterAdvertising(t testing.TB, prefix string, n int, advertise func(i int) string) []*agentProc {
	t.Helper()
	agents := make([]*agentProc, n)
	for i := range agents {
		opts := agentOptions{
			Name:      fmt.Sprintf("%s%d", prefix, i+1),
			Advertise: advertise(i),
		}
		if i > 0 {
			opts.Join = []string{agents[0].Gossip()}
		}
		agents[i] = startAgent(t, opts)
	}
	// Runs before the agents are killed (cleanups run last-in first-out):
	// what every member thought of the cluster when the test failed.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, a := range agents {
			if exited, _ := a.Exited(); !exited {
				t.Logf("status at %s:\n%s", a.Opts.Name, runPeerload(t, "status", "--api", a.API()))
			}
		}
	})
	// Start-up, not behaviour under test: a join broadcast lost on a busy
	// machine is repaired by the next push/pull (30 s in bin/peerload).
	for _, a := range agents {
		waitFor(t, 45*time.Second, func() (bool, string) {
			res := runPeerload(t, "top", "-n", strconv.Itoa(n), "--api", a.API())
			got := res.Lines()
			return res.Code == 0 && len(got) == n, fmt.Sprintf("top at %s: %s", a.Opts.Name, res)
		})
	}
	return agents
}

// cmdResult is the outcome of running a program.
type cmdResult = lab.Result

// runCmd runs a program with a 30 s limit and returns its output and exit
// code; only a failure to start it fails the test.
func runCmd(t testing.TB, env []string, name string, args ...string) cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := lab.RunCommand(ctx, env, name, args...)
	if res.Err != nil {
		t.Fatalf("run %s %s: %v", name, strings.Join(args, " "), res.Err)
	}
	return res
}

// runPeerload runs bin/peerload with args (PEERLOAD_API cleared so only
// --api counts).
func runPeerload(t testing.TB, args ...string) cmdResult {
	t.Helper()
	return runCmd(t, []string{"PEERLOAD_API="}, peerloadBin(t), args...)
}

// runDig runs `dig @server -p port +tries=1 +time=2 args...` and returns
// its output; it skips (or fails under $CI) when dig is missing and fails
// the test when dig exits non-zero.
func runDig(t testing.TB, server string, port int, args ...string) string {
	t.Helper()
	dig := requireProgram(t, "dig")
	full := append([]string{"@" + server, "-p", strconv.Itoa(port), "+tries=1", "+time=2"}, args...)
	res := runCmd(t, nil, dig, full...)
	if res.Code != 0 {
		t.Fatalf("dig %s: %s", strings.Join(full, " "), res)
	}
	return res.Stdout
}

// digShort runs dig with +short and returns the answer lines sorted as dig
// printed them (empty for NODATA/NXDOMAIN).
func digShort(t testing.TB, server string, port int, args ...string) []string {
	t.Helper()
	out := runDig(t, server, port, append([]string{"+short"}, args...)...)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
