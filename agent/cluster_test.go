package agent_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
)

type testCluster struct {
	agents   []*agent.Agent
	samplers []*agenttest.Sampler
}

// startCluster starts n agents named node1..noden joined to the first.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	agents, samplers := agenttest.Cluster(t, n, nil)
	return &testCluster{agents: agents, samplers: samplers}
}

func (tc *testCluster) waitCandidates(t *testing.T, want int, except ...*agent.Agent) {
	t.Helper()
	for _, a := range tc.agents {
		if containsAgent(except, a) {
			continue
		}
		agenttest.WaitFor(t, 10*time.Second, a.Name()+" to see "+fmt.Sprint(want)+" candidates", func() (bool, string) {
			c := agenttest.Candidates(a)
			return len(c) == want, fmt.Sprint(c)
		})
	}
}

func containsAgent(list []*agent.Agent, a *agent.Agent) bool {
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
		got := agenttest.Candidates(a)
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
	tc.samplers[0].SetLoad1(16) // node1: from best to worst
	for _, a := range tc.agents {
		agenttest.WaitFor(t, 3*time.Second, a.Name()+" to rank node1 last", func() (bool, string) {
			c := agenttest.Candidates(a)
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
	if n == nil || n.State == rank.StateAlive || n.Candidate {
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
	agenttest.WaitFor(t, 5*time.Second, "node3 to be shown as left", func() (bool, string) {
		n := tc.agents[0].Snapshot().Node("node3")
		if n == nil {
			return false, "missing"
		}
		return n.State == rank.StateLeft, n.State
	})
}

func TestCollectorIsNeverCandidate(t *testing.T) {
	tc := startCluster(t, 3)
	c, _ := agenttest.Config(t, "dns", 0)
	c.Collector = true
	c.Sampler = nil
	c.Join = []string{tc.agents[0].GossipAddr()}
	col := agenttest.Start(t, c)
	tc.waitCandidates(t, 3)
	agenttest.WaitFor(t, 5*time.Second, "collector to hear 3 candidates", func() (bool, string) {
		got := agenttest.Candidates(col)
		return len(got) == 3, fmt.Sprint(got)
	})
	if err := col.WaitReady(context.Background()); err != nil {
		t.Fatal(err)
	}
	everyone := append(tc.agents, col)
	agenttest.WaitEverywhere(t, everyone, 5*time.Second, "to list the collector", func(a *agent.Agent) bool {
		return a.Snapshot().Node("dns") != nil
	})
	for _, a := range everyone {
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
	if n == nil || n.State != rank.StateAlive || !strings.Contains(strings.Join(n.Reasons, ";"), "maintenance") {
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
	c, _ := agenttest.Config(t, "phoenix", 5)
	c.StateDir = dir
	c.Join = []string{tc.agents[0].GossipAddr()}
	first := agenttest.Start(t, c)
	agenttest.WaitFor(t, 5*time.Second, "phoenix to report", func() (bool, string) {
		n := tc.agents[0].Snapshot().Node("phoenix")
		return n != nil && n.Candidate, fmt.Sprint(n)
	})
	_ = first.Leave(time.Second)
	_ = first.Shutdown()

	c2, s2 := agenttest.Config(t, "phoenix", 0.01)
	c2.StateDir = dir
	c2.Join = c.Join
	s2.SetLoad1(0.01)
	agenttest.Start(t, c2)
	agenttest.WaitFor(t, 5*time.Second, "restarted phoenix (new generation, seq from 1) to rank first", func() (bool, string) {
		got := agenttest.Candidates(tc.agents[0])
		return len(got) == 3 && got[0] == "phoenix", fmt.Sprint(got)
	})
}

func TestSecurityKeepsStrangersOut(t *testing.T) {
	key := func(b byte) []byte { k := make([]byte, 32); k[0] = b; return k }
	cases := []struct {
		name   string
		member func(*agent.Config)
		outsid func(*agent.Config)
	}{
		{"wrong key", func(c *agent.Config) { c.Keys = [][]byte{key(1)} }, func(c *agent.Config) { c.Keys = [][]byte{key(2)} }},
		{"key vs no key", func(c *agent.Config) { c.Keys = [][]byte{key(1)} }, func(c *agent.Config) {}},
		{"wrong label", func(c *agent.Config) { c.Label = "cslab" }, func(c *agent.Config) { c.Label = "physlab" }},
		{"disallowed CIDR", func(c *agent.Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} }, func(c *agent.Config) { c.BindAddr = "127.0.0.2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c1, _ := agenttest.Config(t, "member", 1)
			tc.member(c1)
			a := agenttest.Start(t, c1)
			c2, _ := agenttest.Config(t, "stranger", 0)
			tc.outsid(c2)
			b := agenttest.Start(t, c2)
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
	c1, _ := agenttest.Config(t, "a", 1)
	c1.Keys, c1.Label = [][]byte{k}, "cslab"
	a := agenttest.Start(t, c1)
	c2, _ := agenttest.Config(t, "b", 1)
	c2.Keys, c2.Label = [][]byte{k}, "cslab"
	c2.Join = []string{a.GossipAddr()}
	agenttest.Start(t, c2)
	agenttest.WaitFor(t, 5*time.Second, "encrypted pair to see each other", func() (bool, string) {
		got := agenttest.Candidates(a)
		return len(got) == 2, fmt.Sprint(got)
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*agent.Config)
		want string
	}{
		{"no name", func(c *agent.Config) { c.Name = "" }, "Name: name is empty"},
		{"name with spaces", func(c *agent.Config) { c.Name = "bad name/with spaces" }, "Name: name \"bad name/with spaces\" is not a host name"},
		{"bad bind", func(c *agent.Config) { c.BindAddr = "nowhere" }, "BindAddr: \"nowhere\" is not an IP address"},
		{"v6 as v4", func(c *agent.Config) { c.Addr4 = netip.MustParseAddr("::1") }, "Addr4: ::1 is not an IPv4 address"},
		{"advertise 0.0.0.0", func(c *agent.Config) { c.Addr4 = netip.MustParseAddr("0.0.0.0") }, "Addr4: 0.0.0.0 is the unspecified address"},
		{"advertise ::", func(c *agent.Config) { c.Addr6 = netip.MustParseAddr("::") }, "Addr6: :: is the unspecified address"},
		{"advertise broadcast", func(c *agent.Config) { c.Addr4 = netip.MustParseAddr("255.255.255.255") }, "broadcast"},
		{"advertise multicast", func(c *agent.Config) { c.Addr4 = netip.MustParseAddr("224.0.0.1") }, "multicast"},
		{"pool with space", func(c *agent.Config) { c.Pools = []string{"a b"} }, "Pools: pool \"a b\" is not a DNS label"},
		{"own address outside allow", func(c *agent.Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} },
			"Allow: this member's own address 127.0.0.1 is outside the allow list"},
		{"refresh < interval", func(c *agent.Config) { c.RefreshInterval = time.Millisecond }, "RefreshInterval: 1ms is shorter"},
		{"negative stale cap", func(c *agent.Config) { c.StaleAfter = -time.Second }, "StaleAfter: must not be negative"},
		{"bad by", func(c *agent.Config) { c.Score.By = "disk" }, "Score.By: unknown ranking"},
		{"NaN weight", func(c *agent.Config) { c.Score.MemWeight = math.NaN() }, "Score.MemWeight"},
		{"missing keyring", func(c *agent.Config) { c.KeyringFile = "/nonexistent/keyring" }, "/nonexistent/keyring"},
		{"missing join file", func(c *agent.Config) { c.JoinFile = "/nonexistent/machines.txt" }, "machines.txt"},
		{"missing proc", func(c *agent.Config) { c.Sampler = nil; c.ProcRoot = "/nonexistent/proc" }, "/nonexistent/proc"},
		{"huge meta", func(c *agent.Config) {
			for i := range 40 {
				c.Pools = append(c.Pools, fmt.Sprintf("pool-with-a-long-name-%02d", i))
			}
		}, "node meta"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := agenttest.Config(t, "x", 0)
			c.Logger = slog.New(slog.DiscardHandler)
			tc.mod(c)
			a, err := agent.New(c)
			if err == nil {
				a.Shutdown()
				t.Fatalf("agent.New succeeded, want error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestUnencryptedWarns(t *testing.T) {
	c, _ := agenttest.Config(t, "loud", 0)
	var buf strings.Builder
	var mu sync.Mutex
	c.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), nil))
	agenttest.Start(t, c)
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
	slow := func(c *agent.Config) {
		c.Memberlist.ProbeInterval = 300 * time.Millisecond
		c.Memberlist.ProbeTimeout = 150 * time.Millisecond
		c.Memberlist.SuspicionMult = 30 // memberlist alone: ~10 s and more
	}
	var agents []*agent.Agent
	for i := range 3 {
		c, _ := agenttest.Config(t, fmt.Sprintf("n%d", i), float64(i))
		slow(c)
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, agenttest.Start(t, c))
	}
	c, _ := agenttest.Config(t, "dns", 0)
	slow(c)
	c.Collector, c.Sampler, c.ProbeTop = true, nil, 3
	c.Join = []string{agents[0].GossipAddr()}
	col := agenttest.Start(t, c)
	agenttest.WaitFor(t, 5*time.Second, "collector to see 3 candidates", func() (bool, string) {
		return len(agenttest.Candidates(col)) == 3, fmt.Sprint(agenttest.Candidates(col))
	})
	start := time.Now()
	_ = agents[0].Shutdown()
	agenttest.WaitFor(t, 3*time.Second, "collector to drop n0", func() (bool, string) {
		got := agenttest.Candidates(col)
		return len(got) == 2, fmt.Sprint(got)
	})
	took := time.Since(start)
	t.Logf("dropped after %s", took)
	if n := col.Snapshot().Node("n0"); n == nil || n.State != rank.StateSuspect {
		t.Errorf("n0 should be suspect, is %+v", n)
	}
}

// TestNewMemberIsCandidateEverywhereAtOnce: a node that joins a quiet
// cluster (no load changes, long refresh and push/pull periods) becomes a
// candidate on every member right away, not at the next refresh.
func TestNewMemberIsCandidateEverywhereAtOnce(t *testing.T) {
	// Nothing periodic can help within the test: no refresh, no push/pull.
	quiet := func(c *agent.Config) {
		c.RefreshInterval = time.Minute
		c.Memberlist.PushPullInterval = 10 * time.Minute
	}
	var agents []*agent.Agent
	for i := range 3 {
		c, _ := agenttest.Config(t, fmt.Sprintf("q%d", i), 0.5)
		quiet(c)
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, agenttest.Start(t, c))
	}
	agenttest.WaitEverywhere(t, agents, 10*time.Second, "3 candidates", func(a *agent.Agent) bool {
		return len(agenttest.Candidates(a)) == 3
	})
	c, _ := agenttest.Config(t, "q3", 0.5)
	quiet(c)
	c.Join = []string{agents[0].GossipAddr()}
	agents = append(agents, agenttest.Start(t, c))
	// The guarantee: a candidate at every member within 1 s of the join.
	// It rests on direct messages (the newcomer's hello and report to each
	// member it meets), not on any periodic repair.
	deadline := time.Now().Add(time.Second)
	for _, a := range agents {
		agenttest.WaitFor(t, time.Until(deadline), a.Name()+" to list the newcomer q3 as a candidate", func() (bool, string) {
			return len(agenttest.Candidates(a)) == 4, agenttest.Describe(a)
		})
	}
}

// TestNameCaseClashIsRefused: DNS cannot tell lab01 from LAB01, so a
// member whose name differs from a live member's only in case cannot join,
// and says why.
func TestNameCaseClashIsRefused(t *testing.T) {
	c, _ := agenttest.Config(t, "lab01", 0.1)
	first := agenttest.Start(t, c)
	c2, _ := agenttest.Config(t, "LAB01", 0.2)
	second := agenttest.Start(t, c2)
	_, err := second.Join([]string{first.GossipAddr()})
	if err == nil || !strings.Contains(err.Error(), "differs only in case") {
		t.Fatalf("join of LAB01 to lab01 = %v, want a case clash", err)
	}
	if n := first.Snapshot().Node("LAB01"); n != nil && n.Name == "LAB01" {
		t.Errorf("lab01 lists LAB01: %+v", n)
	}
}

// TestSharedAddressWarnsOnce: two machines advertising one address are
// logged once, and answers carry the address once.
func TestSharedAddressWarnsOnce(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	c1, _ := agenttest.Config(t, "twin1", 0.1)
	c1.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), nil))
	a := agenttest.Start(t, c1)
	c2, _ := agenttest.Config(t, "twin2", 0.5) // the same 127.0.1.1
	c2.Join = []string{a.GossipAddr()}
	agenttest.Start(t, c2)
	agenttest.WaitFor(t, 10*time.Second, "twin1 to log the shared address", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(buf.String(), "machines advertise the same address"), buf.String()
	})
	agenttest.WaitFor(t, 10*time.Second, "twin1 to rank both twins", func() (bool, string) {
		return len(agenttest.Candidates(a)) == 2, agenttest.Describe(a)
	})
	r := a.Snapshot().Rank("", "")
	if r.Len() != 2 || r.Nodes[0].Addr4 != netip.MustParseAddr("127.0.1.1") || r.Nodes[1].Addr4.IsValid() {
		t.Errorf("ranking = %+v, want the address on the better machine only", r.Nodes)
	}
	mu.Lock()
	n := strings.Count(buf.String(), "machines advertise the same address")
	mu.Unlock()
	if n != 1 {
		t.Errorf("warned %d times, want once", n)
	}
}

// logBuffer is a logger whose lines a test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.buf.Write(p)
	}), nil))
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestJoinTroubleIsNamed: a join that keeps failing says why, once, at
// WARN; the refusing side of an allow list says so too; a join that works
// says so at INFO.
func TestJoinTroubleIsNamed(t *testing.T) {
	key := func(b byte) []byte { k := make([]byte, 16); k[0] = b; return k }
	cases := []struct {
		name          string
		member, outsd func(*agent.Config)
		joiner, owner string // in the stranger's and the member's log
	}{
		{"wrong key", func(c *agent.Config) { c.Keys = [][]byte{key(1)} }, func(c *agent.Config) { c.Keys = [][]byte{key(2)} },
			"cause=\"key mismatch\"", ""},
		{"wrong label", func(c *agent.Config) { c.Label = "cslab" }, func(c *agent.Config) { c.Label = "physlab" },
			"another --label", "unacceptable label"},
		{"outside allow", func(c *agent.Config) { c.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} },
			func(c *agent.Config) { c.BindAddr = "127.0.0.2" }, "cannot join the cluster yet", "refused gossip from outside the allow list\" from=127.0.0.2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var memberLog, strangerLog logBuffer
			c1, _ := agenttest.Config(t, "member", 1)
			tc.member(c1)
			c1.Logger = memberLog.logger()
			a := agenttest.Start(t, c1)
			c2, _ := agenttest.Config(t, "stranger", 0)
			tc.outsd(c2)
			c2.Logger = strangerLog.logger()
			c2.Join = []string{a.GossipAddr()}
			agenttest.Start(t, c2)
			agenttest.WaitFor(t, 10*time.Second, "the stranger to say why it cannot join", func() (bool, string) {
				s := strangerLog.String()
				return strings.Contains(s, "level=WARN msg=\"cannot join the cluster yet; retrying\"") && strings.Contains(s, tc.joiner), s
			})
			if tc.owner != "" {
				agenttest.WaitFor(t, 10*time.Second, "the member to say what it refused", func() (bool, string) {
					return strings.Contains(memberLog.String(), tc.owner), memberLog.String()
				})
			}
		})
	}
	t.Run("joined", func(t *testing.T) {
		var log logBuffer
		c1, _ := agenttest.Config(t, "a", 1)
		a := agenttest.Start(t, c1)
		c2, _ := agenttest.Config(t, "b", 1)
		c2.Logger = log.logger()
		c2.Join = []string{a.GossipAddr()}
		agenttest.Start(t, c2)
		agenttest.WaitFor(t, 10*time.Second, "b to say it joined", func() (bool, string) {
			return strings.Contains(log.String(), "level=INFO msg=\"joined the cluster\""), log.String()
		})
	})
}
