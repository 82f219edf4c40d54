package agent

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeSampler hands out a load the test sets.
type fakeSampler struct {
	mu sync.Mutex
	l  Load
}

func newFakeSampler(load1 float64) *fakeSampler {
	return &fakeSampler{l: Load{Load1: load1, Load5: load1, Load15: load1, CPUs: 4, MemTotal: 8 << 30, MemAvailable: 6 << 30, CPUPressure: -1}}
}

func (f *fakeSampler) Sample() (Load, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.l, nil
}

func (f *fakeSampler) setLoad1(v float64) {
	f.mu.Lock()
	f.l.Load1 = v
	f.mu.Unlock()
}

// testWriter sends log lines to t.Log while the test runs.
type testWriter struct {
	t    *testing.T
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

// testConfig is a loopback agent config with a fake sampler and a private
// check root.
func testConfig(t *testing.T, name string, load1 float64) (*Config, *fakeSampler) {
	t.Helper()
	c := DefaultLocalConfig()
	c.Name = name
	s := newFakeSampler(load1)
	c.Sampler = s
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.Checks.Root = root
	c.Addr4 = netip.MustParseAddr("127.0.1.1")
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	c.Logger = log.New(w, name+": ", 0)
	return c, s
}

func startAgent(t *testing.T, c *Config) *Agent {
	t.Helper()
	a, err := New(c)
	if err != nil {
		t.Fatalf("New(%s): %v", c.Name, err)
	}
	t.Cleanup(func() { _ = a.Shutdown() })
	return a
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last state: %s", timeout, what, last)
}

func candidates(a *Agent) []string {
	var names []string
	for _, n := range a.Snapshot().Rank("", "").Nodes {
		names = append(names, n.Name)
	}
	return names
}

type testCluster struct {
	agents   []*Agent
	samplers []*fakeSampler
}

// startCluster starts n agents named node1..noden joined to the first.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	tc := &testCluster{}
	for i := range n {
		c, s := testConfig(t, fmt.Sprintf("node%d", i+1), 0.1*float64(i+1))
		if i > 0 {
			c.Join = []string{tc.agents[0].GossipAddr()}
		}
		tc.agents = append(tc.agents, startAgent(t, c))
		tc.samplers = append(tc.samplers, s)
	}
	return tc
}

func (tc *testCluster) waitCandidates(t *testing.T, want int, except ...*Agent) {
	t.Helper()
	for _, a := range tc.agents {
		if containsAgent(except, a) {
			continue
		}
		waitFor(t, 10*time.Second, a.Name()+" to see "+fmt.Sprint(want)+" candidates", func() (bool, string) {
			c := candidates(a)
			return len(c) == want, fmt.Sprint(c)
		})
	}
}

func containsAgent(list []*Agent, a *Agent) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

func TestClusterAllSeeAll(t *testing.T) {
	tc := startCluster(t, 5)
	tc.waitCandidates(t, 5)
	for _, a := range tc.agents {
		got := candidates(a)
		want := []string{"node1", "node2", "node3", "node4", "node5"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s ranks %v, want %v (lowest load first)", a.Name(), got, want)
		}
		if !a.Ready() {
			t.Errorf("%s not ready", a.Name())
		}
	}
}

func TestClusterLoadChangeMovesRankEverywhere(t *testing.T) {
	tc := startCluster(t, 5)
	tc.waitCandidates(t, 5)
	start := time.Now()
	tc.samplers[0].setLoad1(16) // node1: from best to worst
	for _, a := range tc.agents {
		waitFor(t, 3*time.Second, a.Name()+" to rank node1 last", func() (bool, string) {
			c := candidates(a)
			return len(c) == 5 && c[4] == "node1", fmt.Sprint(c)
		})
	}
	t.Logf("load change reached all members in %s", time.Since(start))
}

func TestClusterStoppedNodeLeavesCandidates(t *testing.T) {
	tc := startCluster(t, 5)
	tc.waitCandidates(t, 5)
	victim := tc.agents[4]
	start := time.Now()
	_ = victim.Shutdown() // no Leave: the others must detect the failure
	tc.waitCandidates(t, 4, victim)
	t.Logf("failed node left the candidates in %s", time.Since(start))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failed node took %s to leave the candidates", d)
	}
	n := tc.agents[0].Snapshot().Node("node5")
	if n == nil || n.State == StateAlive || n.Candidate {
		t.Errorf("node5 after failure: %+v", n)
	}
}

func TestClusterLeaveIsGraceful(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitCandidates(t, 3)
	if err := tc.agents[2].Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := tc.agents[2].Leave(time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	_ = tc.agents[2].Shutdown()
	_ = tc.agents[2].Shutdown()
	tc.waitCandidates(t, 2, tc.agents[2])
	waitFor(t, 5*time.Second, "node3 to be shown as left", func() (bool, string) {
		n := tc.agents[0].Snapshot().Node("node3")
		if n == nil {
			return false, "missing"
		}
		return n.State == StateLeft, n.State
	})
}

func TestCollectorIsNeverCandidate(t *testing.T) {
	tc := startCluster(t, 3)
	c, _ := testConfig(t, "dns", 0)
	c.Collector = true
	c.Sampler = nil
	c.Join = []string{tc.agents[0].GossipAddr()}
	col := startAgent(t, c)
	tc.waitCandidates(t, 3)
	waitFor(t, 5*time.Second, "collector to hear 3 candidates", func() (bool, string) {
		got := candidates(col)
		return len(got) == 3, fmt.Sprint(got)
	})
	if err := col.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range append(tc.agents, col) {
		if n := a.Snapshot().Node("dns"); n == nil || n.Candidate || !n.Collector {
			t.Errorf("%s sees collector as %+v", a.Name(), n)
		}
		if a.Snapshot().Alive("", "").Len() != 3 {
			t.Errorf("%s: Alive includes the collector", a.Name())
		}
	}
	if err := col.SetDrain(true, "x"); err == nil {
		t.Error("SetDrain on a collector succeeded")
	}
}

func TestDrainTakesNodeOut(t *testing.T) {
	tc := startCluster(t, 3)
	tc.waitCandidates(t, 3)
	if err := tc.agents[1].SetDrain(true, "maintenance"); err != nil {
		t.Fatal(err)
	}
	tc.waitCandidates(t, 2)
	n := tc.agents[0].Snapshot().Node("node2")
	if n == nil || n.State != StateAlive || !strings.Contains(strings.Join(n.Reasons, ";"), "maintenance") {
		t.Errorf("drained node2 as seen by node1: %+v", n)
	}
	if err := tc.agents[1].SetDrain(false, ""); err != nil {
		t.Fatal(err)
	}
	tc.waitCandidates(t, 3)
}

func TestRestartSupersedesOldReports(t *testing.T) {
	tc := startCluster(t, 2)
	tc.waitCandidates(t, 2)
	dir := t.TempDir()
	c, _ := testConfig(t, "phoenix", 5)
	c.StateDir = dir
	c.Join = []string{tc.agents[0].GossipAddr()}
	first := startAgent(t, c)
	waitFor(t, 5*time.Second, "phoenix to report", func() (bool, string) {
		n := tc.agents[0].Snapshot().Node("phoenix")
		return n != nil && n.Candidate, fmt.Sprint(n)
	})
	_ = first.Leave(time.Second)
	_ = first.Shutdown()

	c2, s2 := testConfig(t, "phoenix", 0.01)
	c2.StateDir = dir
	c2.Join = c.Join
	s2.setLoad1(0.01)
	startAgent(t, c2)
	waitFor(t, 5*time.Second, "restarted phoenix (new generation, seq from 1) to rank first", func() (bool, string) {
		got := candidates(tc.agents[0])
		return len(got) == 3 && got[0] == "phoenix", fmt.Sprint(got)
	})
}

func TestSecurityKeepsStrangersOut(t *testing.T) {
	key := func(b byte) []byte { k := make([]byte, 32); k[0] = b; return k }
	cases := []struct {
		name   string
		member func(*Config)
		outsid func(*Config)
	}{
		{"wrong key", func(c *Config) { c.Keys = [][]byte{key(1)} }, func(c *Config) { c.Keys = [][]byte{key(2)} }},
		{"key vs no key", func(c *Config) { c.Keys = [][]byte{key(1)} }, func(c *Config) {}},
		{"wrong label", func(c *Config) { c.Label = "cslab" }, func(c *Config) { c.Label = "physlab" }},
		{"disallowed CIDR", func(c *Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }, func(c *Config) { c.BindAddr = "127.0.0.2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, _ := testConfig(t, "member", 1)
			tc.member(c1)
			a := startAgent(t, c1)
			c2, _ := testConfig(t, "stranger", 0)
			tc.outsid(c2)
			b := startAgent(t, c2)
			if n, err := b.Join([]string{a.GossipAddr()}); err == nil {
				t.Errorf("stranger joined %d members", n)
			}
			// Give any stray packet time to land, then make sure neither side
			// lists the other.
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if a.Snapshot().Node("stranger") != nil || b.Snapshot().Node("member") != nil {
					t.Fatalf("clusters merged")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func TestSameKeyAndLabelJoin(t *testing.T) {
	k := make([]byte, 16)
	k[3] = 7
	c1, _ := testConfig(t, "a", 1)
	c1.Keys, c1.Label = [][]byte{k}, "cslab"
	a := startAgent(t, c1)
	c2, _ := testConfig(t, "b", 1)
	c2.Keys, c2.Label = [][]byte{k}, "cslab"
	c2.Join = []string{a.GossipAddr()}
	startAgent(t, c2)
	waitFor(t, 5*time.Second, "encrypted pair to see each other", func() (bool, string) {
		got := candidates(a)
		return len(got) == 2, fmt.Sprint(got)
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "name is empty"},
		{"bad bind", func(c *Config) { c.BindAddr = "nowhere" }, "bind address"},
		{"v6 as v4", func(c *Config) { c.Addr4 = netip.MustParseAddr("::1") }, "not IPv4"},
		{"refresh < interval", func(c *Config) { c.RefreshInterval = time.Millisecond }, "refresh interval"},
		{"stale < refresh", func(c *Config) { c.StaleAfter = c.RefreshInterval }, "stale-after"},
		{"bad by", func(c *Config) { c.Score.By = "disk" }, "unknown ranking"},
		{"missing keyring", func(c *Config) { c.KeyringFile = "/nonexistent/keyring" }, "/nonexistent/keyring"},
		{"missing join file", func(c *Config) { c.JoinFile = "/nonexistent/machines.txt" }, "machines.txt"},
		{"missing proc", func(c *Config) { c.Sampler = nil; c.ProcRoot = "/nonexistent/proc" }, "/nonexistent/proc"},
		{"huge meta", func(c *Config) {
			for i := range 40 {
				c.Pools = append(c.Pools, fmt.Sprintf("pool-with-a-long-name-%02d", i))
			}
		}, "node meta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := testConfig(t, "x", 0)
			c.Logger = log.New(io.Discard, "", 0)
			tc.mod(c)
			a, err := New(c)
			if err == nil {
				a.Shutdown()
				t.Fatalf("New succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestUnencryptedWarns(t *testing.T) {
	c, _ := testConfig(t, "loud", 0)
	var buf strings.Builder
	var mu sync.Mutex
	c.Logger = log.New(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), "", 0)
	startAgent(t, c)
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "NOT encrypted") || strings.Count(buf.String(), "NOT encrypted") != 1 {
		t.Errorf("want exactly one encryption warning, log was:\n%s", buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestProbeTopDetectsFailureBeforeMemberlist: with memberlist's suspicion
// stretched to many seconds, a collector that pings its best candidates
// still drops a killed node within about a second.
func TestProbeTopDetectsFailureBeforeMemberlist(t *testing.T) {
	slow := func(c *Config) {
		c.Memberlist.ProbeInterval = 300 * time.Millisecond
		c.Memberlist.ProbeTimeout = 150 * time.Millisecond
		c.Memberlist.SuspicionMult = 30 // memberlist alone: ~10 s and more
	}
	var agents []*Agent
	for i := range 3 {
		c, _ := testConfig(t, fmt.Sprintf("n%d", i), float64(i))
		slow(c)
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, startAgent(t, c))
	}
	c, _ := testConfig(t, "dns", 0)
	slow(c)
	c.Collector, c.Sampler, c.ProbeTop = true, nil, 3
	c.Join = []string{agents[0].GossipAddr()}
	col := startAgent(t, c)
	waitFor(t, 5*time.Second, "collector to see 3 candidates", func() (bool, string) {
		return len(candidates(col)) == 3, fmt.Sprint(candidates(col))
	})
	start := time.Now()
	_ = agents[0].Shutdown()
	waitFor(t, 3*time.Second, "collector to drop n0", func() (bool, string) {
		got := candidates(col)
		return len(got) == 2, fmt.Sprint(got)
	})
	took := time.Since(start)
	t.Logf("dropped after %s", took)
	if n := col.Snapshot().Node("n0"); n == nil || n.State != StateSuspect {
		t.Errorf("n0 should be suspect, is %+v", n)
	}
}

// TestAPITopSkipsNodeThatJustDied: /v1/top pings what it hands out, so a
// machine killed a moment ago is not returned even while memberlist (with
// a long suspicion timeout here) still lists it as alive.
func TestAPITopSkipsNodeThatJustDied(t *testing.T) {
	var agents []*Agent
	for i := range 3 {
		c, _ := testConfig(t, fmt.Sprintf("m%d", i), float64(i))
		c.Memberlist.SuspicionMult = 50
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, startAgent(t, c))
	}
	waitFor(t, 5*time.Second, "3 candidates at m2", func() (bool, string) {
		return len(candidates(agents[2])) == 3, fmt.Sprint(candidates(agents[2]))
	})
	srv := httptest.NewServer(NewAPIHandler(agents[2], prometheus.NewRegistry()))
	defer srv.Close()
	_ = agents[0].Shutdown() // the best node dies without a word
	if got := candidates(agents[2]); len(got) != 3 {
		t.Fatalf("memberlist already dropped m0 (%v); the test needs it still listed", got)
	}
	resp, err := NewClient(srv.Listener.Addr().String()).Top(context.Background(), 3, "", "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range resp.Nodes {
		names = append(names, n.Name)
	}
	if fmt.Sprint(names) != "[m1 m2]" {
		t.Errorf("top 3 right after m0 died = %v, want [m1 m2]", names)
	}
}

// TestNewMemberIsCandidateEverywhereAtOnce: a node that joins a quiet
// cluster (no load changes, long refresh and push/pull periods) becomes a
// candidate on every member right away, not at the next refresh.
func TestNewMemberIsCandidateEverywhereAtOnce(t *testing.T) {
	quiet := func(c *Config) {
		c.RefreshInterval, c.StaleAfter = 30*time.Second, 90*time.Second
		c.Memberlist.PushPullInterval = time.Minute
	}
	var agents []*Agent
	for i := range 4 {
		c, _ := testConfig(t, fmt.Sprintf("q%d", i), 0.5)
		quiet(c)
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, startAgent(t, c))
		if i == 2 {
			for _, a := range agents {
				waitFor(t, 5*time.Second, a.Name()+" to see 3", func() (bool, string) {
					var st []string
					for _, n := range a.Snapshot().Nodes {
						st = append(st, fmt.Sprintf("%s:%s:%v:%v", n.Name, n.State, n.Report != nil, n.Reasons))
					}
					return len(candidates(a)) == 3, fmt.Sprint(st)
				})
			}
		}
	}
	for _, a := range agents {
		waitFor(t, 3*time.Second, a.Name()+" to list the newcomer q3", func() (bool, string) {
			var st []string
			for _, n := range a.Snapshot().Nodes {
				st = append(st, fmt.Sprintf("%s:%s:%v", n.Name, n.State, n.Reasons))
			}
			return len(candidates(a)) == 4, fmt.Sprint(st)
		})
	}
}
