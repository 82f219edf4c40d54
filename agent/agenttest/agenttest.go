// Package agenttest has what tests of agents share: one polling helper,
// a sampler the test drives, and loopback agents that clean up after
// themselves.
package agenttest

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/report"
)

// WaitFor polls cond until it holds, or fails the test after timeout with
// what it waited for and the last state cond described. It polls every
// 10 ms at first, backing off to 100 ms, so a condition that runs a
// program (dig, the CLI) does not load the machine. Pick a timeout above
// the slowest repair path the condition relies on (push/pull, suspicion
// timeout), never at it.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	every := 10 * time.Millisecond
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, state)
		}
		time.Sleep(every)
		every = min(2*every, 100*time.Millisecond)
	}
}

// Sampler hands out a load the test sets.
type Sampler struct {
	mu sync.Mutex
	l  report.Load
}

// NewSampler is a 4-CPU, 8 GiB node at load1 with 6 GiB available.
func NewSampler(load1 float64) *Sampler {
	return &Sampler{l: report.Load{Load1: load1, Load5: load1, Load15: load1, CPUs: 4, MemTotal: 8 << 30, MemAvailable: 6 << 30, CPUPressure: -1}}
}

// Sample implements sample.Sampler.
func (s *Sampler) Sample() (report.Load, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l, nil
}

// SetLoad1 changes the load the next sample returns.
func (s *Sampler) SetLoad1(v float64) {
	s.mu.Lock()
	s.l.Load1 = v
	s.mu.Unlock()
}

// Config is a loopback agent config (the local profile) with a fake
// sampler, a private check root and a logger that writes to t.Log under
// -v.
func Config(t testing.TB, name string, load1 float64) (*agent.Config, *Sampler) {
	t.Helper()
	c := agent.DefaultLocalConfig()
	c.Name = name
	s := NewSampler(load1)
	c.Sampler = s
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.Checks.Root = root
	c.Addr4 = netip.MustParseAddr("127.0.1.1")
	c.Logger = Logger(t, name)
	return c, s
}

// Logger writes to t.Log under -v, and nowhere once the test ended.
func Logger(t testing.TB, name string) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

type testWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && testing.Verbose() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// Start starts an agent and shuts it down when the test ends.
func Start(t testing.TB, c *agent.Config) *agent.Agent {
	t.Helper()
	a, err := agent.New(c)
	if err != nil {
		t.Fatalf("New(%s): %v", c.Name, err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	return a
}

// Candidates are a's candidates, best first.
func Candidates(a *agent.Agent) []string {
	var names []string
	for _, n := range a.Snapshot().Rank("", "").Nodes {
		names = append(names, n.Name)
	}
	return names
}

// Describe lists every node a knows with its state and reasons, for
// WaitFor's last state.
func Describe(a *agent.Agent) string {
	var st []string
	for _, n := range a.Snapshot().Nodes {
		st = append(st, fmt.Sprintf("%s:%s:%v", n.Name, n.State, n.Reasons))
	}
	return strings.Join(st, " ")
}

// WaitEverywhere waits until cond holds at every agent (each within
// timeout): gossip delivers eventually, so a test asserts only after the
// precondition holds everywhere.
func WaitEverywhere(t testing.TB, agents []*agent.Agent, timeout time.Duration, what string, cond func(a *agent.Agent) bool) {
	t.Helper()
	for _, a := range agents {
		WaitFor(t, timeout, a.Name()+": "+what, func() (bool, string) { return cond(a), Describe(a) })
	}
}

// Cluster starts n agents named node1..nodeN, node i at load1 0.1·i,
// joined to the first; mod, when set, changes each config first.
func Cluster(t testing.TB, n int, mod func(*agent.Config)) ([]*agent.Agent, []*Sampler) {
	t.Helper()
	var agents []*agent.Agent
	var samplers []*Sampler
	for i := range n {
		c, s := Config(t, fmt.Sprintf("node%d", i+1), 0.1*float64(i+1))
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		if mod != nil {
			mod(c)
		}
		agents = append(agents, Start(t, c))
		samplers = append(samplers, s)
	}
	return agents, samplers
}

// DrainFlag is a node's drain flag in memory, named Node, for tests of
// what drains (the control socket, the CLI) without an agent. Its
// methods match the agent's. Err, when set, fails SetDrain.
type DrainFlag struct {
	Node string

	mu     sync.Mutex
	on     bool
	reason string
	err    error
}

// Name is the node's name.
func (f *DrainFlag) Name() string { return f.Node }

// Drained reports the flag and its reason.
func (f *DrainFlag) Drained() (bool, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.on, f.reason
}

// SetDrain sets the flag, or fails with the error set by Fail.
func (f *DrainFlag) SetDrain(on bool, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.on, f.reason = on, reason
	return nil
}

// Fail makes every later SetDrain return err.
func (f *DrainFlag) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// LogBuffer collects what several goroutines write (a logger's output) for
// a test to read.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
