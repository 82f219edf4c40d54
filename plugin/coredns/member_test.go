package peerload

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// freeLoopbackPort returns a port free for TCP and UDP on 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// attachLog records what a member attaches a block to.
type attachLog struct {
	mu      sync.Mutex
	agents  []*agent.Agent
	own     []bool
	live    int // attached and not yet detached
	failErr error
}

func (l *attachLog) attach(a *agent.Agent, own bool) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failErr != nil {
		return nil, l.failErr
	}
	l.agents = append(l.agents, a)
	l.own = append(l.own, own)
	l.live++
	return func() {
		l.mu.Lock()
		l.live--
		l.mu.Unlock()
	}, nil
}

// last is the latest agent and own flag, and how many attachments are live.
func (l *attachLog) last() (*agent.Agent, bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.agents) == 0 {
		return nil, false, l.live
	}
	return l.agents[len(l.agents)-1], l.own[len(l.own)-1], l.live
}

// recordAgents makes acquireMember start real agents and record their
// configurations for the duration of the test.
func recordAgents(t *testing.T) func() []*agent.Config {
	t.Helper()
	var (
		mu   sync.Mutex
		cfgs []*agent.Config
	)
	newAgent = func(cfg *agent.Config) (*agent.Agent, error) {
		mu.Lock()
		c := *cfg
		cfgs = append(cfgs, &c)
		mu.Unlock()
		return agent.New(cfg)
	}
	t.Cleanup(func() { newAgent = agent.New })
	return func() []*agent.Config {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(cfgs)
	}
}

func registered(bind string) bool {
	members.Lock()
	defer members.Unlock()
	_, ok := members.m[bind]
	return ok
}

// TestMemberRefcount: blocks (and a reloaded instance) with one bind
// address share one running member; the last release leaves and frees the
// port so a new member can bind it again.
func TestMemberRefcount(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Name: "coredns-test"}
	var l1, l2 attachLog
	h1, err := acquireMember(spec, l1.attach)
	if err != nil {
		t.Fatal(err)
	}
	// A reload: the new instance acquires before the old one releases.
	h2, err := acquireMember(spec, l2.attach)
	if err != nil {
		t.Fatalf("second acquire on the same bind: %v", err)
	}
	a1, _, _ := l1.last()
	a2, own2, _ := l2.last()
	if h1.m != h2.m || a1 != a2 || a1 == nil {
		t.Fatal("same bind address, different members")
	}
	if !own2 {
		t.Error("unchanged settings, but the reloaded block was not attached as owner")
	}
	if err := releaseMember(h1); err != nil {
		t.Fatal(err)
	}
	if _, _, live := l1.last(); live != 0 {
		t.Error("released block still attached")
	}
	if !a2.Ready() && a2.Snapshot() == nil {
		t.Fatal("member stopped while still referenced")
	}
	if _, err := a2.Join(nil); err == agent.ErrShutdown {
		t.Fatal("member shut down while still referenced")
	}
	if err := releaseMember(h1); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if err := releaseMember(h2); err != nil {
		t.Fatal(err)
	}
	if registered(spec.Bind) {
		t.Fatal("released member still registered")
	}
	if _, err := a2.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
		t.Errorf("last release: agent still running (join error %v)", err)
	}
	// The port is free again: a fresh member starts on it.
	h3, err := acquireMember(spec, nil)
	if err != nil {
		t.Fatalf("acquire after full release: %v", err)
	}
	if h3.agent() == a1 {
		t.Fatal("got the shut down agent back")
	}
	if err := releaseMember(h3); err != nil {
		t.Fatal(err)
	}
}

// TestMemberReloadRestarts: a reload that changes a setting the running
// agent cannot change keeps the new block on the old agent (not as owner)
// until the old configuration is released, then restarts the member with
// the new settings on the same port and re-attaches the block to it.
func TestMemberReloadRestarts(t *testing.T) {
	keyring := writeKeyring(t, "keyring", mustKey(t))
	for _, tc := range []struct {
		setting   string
		old, next func(*memberSpec)
		check     func(*agent.Config) bool
	}{
		{"name", func(s *memberSpec) { s.Name = "ns-old" }, func(s *memberSpec) { s.Name = "ns-new" },
			func(c *agent.Config) bool { return c.Name == "ns-new" }},
		{"label", func(s *memberSpec) { s.Label = "red" }, func(s *memberSpec) { s.Label = "blue" },
			func(c *agent.Config) bool { return c.Label == "blue" }},
		{"allow", func(s *memberSpec) {}, func(s *memberSpec) { s.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} },
			func(c *agent.Config) bool {
				return slices.Equal(c.Allow, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
			}},
		{"stale", func(s *memberSpec) { s.Stale = 10 * time.Second }, func(s *memberSpec) { s.Stale = 20 * time.Second },
			func(c *agent.Config) bool { return c.StaleAfter == 20*time.Second }},
		{"update roles", func(s *memberSpec) {}, func(s *memberSpec) { s.Roles = []string{"nsupdate:example.edu./cslab.example.edu."} },
			func(c *agent.Config) bool {
				return slices.Equal(c.Roles, []string{"nsupdate:example.edu./cslab.example.edu."})
			}},
		{"keyring (encryption on/off)", func(s *memberSpec) {}, func(s *memberSpec) { s.Keyring = keyring },
			func(c *agent.Config) bool { return c.KeyringFile == keyring }},
		{"keyring (encryption on/off)", func(s *memberSpec) { s.Keyring = keyring }, func(s *memberSpec) { s.Keyring = "" },
			func(c *agent.Config) bool { return c.KeyringFile == "" }},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			configs := recordAgents(t)
			old := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Name: "ns"}
			tc.old(&old)
			next := old
			tc.next(&next)
			if got := restartSettings(old, next); !slices.Equal(got, []string{tc.setting}) {
				t.Fatalf("restartSettings = %v, want [%s]", got, tc.setting)
			}
			var oldLog, newLog attachLog
			h1, err := acquireMember(old, oldLog.attach)
			if err != nil {
				t.Fatal(err)
			}
			h2, err := acquireMember(next, newLog.attach)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = releaseMember(h2) })
			oldAgent, _, _ := oldLog.last()
			if a, own, _ := newLog.last(); a != oldAgent || own {
				t.Fatalf("before the old instance lets go: new block on %p (own %v), want the running %p, not own", a, own, oldAgent)
			}
			if n := len(configs()); n != 1 {
				t.Fatalf("%d agents started before the release, want 1 (the port is still bound)", n)
			}
			if err := releaseMember(h1); err != nil {
				t.Fatal(err)
			}
			cfgs := configs()
			if len(cfgs) != 2 || !tc.check(cfgs[1]) {
				t.Fatalf("after the release: %d agents started, last config %+v; want a second one with the new %s", len(cfgs), cfgs[len(cfgs)-1], tc.setting)
			}
			a, own, live := newLog.last()
			if a == oldAgent || a == nil || !own || live != 1 {
				t.Fatalf("new block attached to %p (old %p), own %v, %d live attachments; want the new agent, own, 1", a, oldAgent, own, live)
			}
			if h2.agent() != a {
				t.Error("member does not run the agent the block is attached to")
			}
			if _, err := oldAgent.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
				t.Errorf("old agent still running (join error %v)", err)
			}
			if a.GossipAddr() != old.Bind {
				t.Errorf("new agent gossips on %s, want the same bind %s", a.GossipAddr(), old.Bind)
			}
			if tc.setting == "name" && a.Name() != "ns-new" {
				t.Errorf("new agent's name %q", a.Name())
			}
			// Settings equal again: a further reload shares the new agent.
			var thirdLog attachLog
			h3, err := acquireMember(next, thirdLog.attach)
			if err != nil {
				t.Fatal(err)
			}
			if err := releaseMember(h2); err != nil {
				t.Fatal(err)
			}
			if b, own, _ := thirdLog.last(); b != a || !own || len(configs()) != 2 {
				t.Error("unchanged settings restarted the member")
			}
			if err := releaseMember(h3); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMemberReloadLabelTakesEffect: through real gossip, a member whose
// label keeps it out of a cluster hears it after a reload with the
// cluster's label, and the handler answers from the restarted member.
func TestMemberReloadLabelTakesEffect(t *testing.T) {
	lab := startLab(t, func(c *agent.Config) { c.Label = "blue" })
	old := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Join: []string{lab.GossipAddr()}, Label: "red"}
	next := old
	next.Label = "blue"

	oldP := newTestPeerLoad(testConfig(), nil)
	h1, err := acquireMember(old, (&config{}).attach(oldP))
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPeerLoad(testConfig(), nil)
	h2, err := acquireMember(next, (&config{}).attach(p))
	if err != nil {
		_ = releaseMember(h1)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseMember(h2) })
	if err := releaseMember(h1); err != nil {
		t.Fatal(err)
	}
	waitAnswer(t, p, h2, "127.0.1.1")
}

// TestMemberReloadKeyringInPlace: a keyring change is installed in the
// running agent (no restart, membership kept); through real gossip the
// member then hears a cluster that uses the new key only.
func TestMemberReloadKeyringInPlace(t *testing.T) {
	configs := recordAgents(t)
	oldKey, newKey := mustKey(t), mustKey(t)
	lab := startLab(t, func(c *agent.Config) { c.Keys = [][]byte{newKey} })
	keyring := writeKeyring(t, "keyring", oldKey)
	old := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Join: []string{lab.GossipAddr()}, Keyring: keyring}
	p := newTestPeerLoad(testConfig(), nil)
	h1, err := acquireMember(old, (&config{}).attach(newTestPeerLoad(testConfig(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	running := h1.agent()

	// The reload names another file holding the new key first (rotation).
	next := old
	next.Keyring = writeKeyring(t, "keyring.new", newKey, oldKey)
	h2, err := acquireMember(next, (&config{}).attach(p))
	if err != nil {
		_ = releaseMember(h1)
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseMember(h2) })
	if err := releaseMember(h1); err != nil {
		t.Fatal(err)
	}
	if h2.agent() != running || len(configs()) != 1 {
		t.Fatalf("keyring change restarted the member (%d agents started)", len(configs()))
	}
	waitAnswer(t, p, h2, "127.0.1.1")
}

// TestMemberReloadKeyringError: a keyring that cannot be read when the
// reload applies it fails the acquisition (CoreDNS keeps the old
// configuration) and leaves the running member untouched.
func TestMemberReloadKeyringError(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Keyring: writeKeyring(t, "keyring", mustKey(t))}
	h1, err := acquireMember(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseMember(h1) })
	next := spec
	next.Keyring = filepath.Join(t.TempDir(), "missing")
	var l attachLog
	h2, err := acquireMember(next, l.attach)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("acquire with a missing keyring: handle %v, error %v; want an error naming the file", h2, err)
	}
	if _, _, live := l.last(); live != 0 {
		t.Error("failed acquisition left the block attached")
	}
	if err := releaseMember(h1); err != nil {
		t.Fatal(err)
	}
	if registered(spec.Bind) {
		t.Error("failed acquisition kept a reference: member still registered after the last release")
	}
}

// TestMemberAttachError: a block that cannot attach (its updater refuses)
// fails its acquisition and does not keep a member running.
func TestMemberAttachError(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))}
	l := attachLog{failErr: fmt.Errorf("update: refused")}
	if _, err := acquireMember(spec, l.attach); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v, want the attach error", err)
	}
	if registered(spec.Bind) {
		t.Fatal("member kept running without a block")
	}
}

// TestMemberHearsCluster runs a real collector member next to an in-process
// agent and checks the handler's answers and readiness follow it.
func TestMemberHearsCluster(t *testing.T) {
	lab := startLab(t, nil)
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Join: []string{lab.GossipAddr()}}
	p := newTestPeerLoad(testConfig(), nil)
	h, err := acquireMember(spec, (&config{}).attach(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = releaseMember(h) })
	waitAnswer(t, p, h, "127.0.1.1")
}

// startLab starts an in-process candidate lab01 advertising 127.0.1.1.
func startLab(t *testing.T, edit func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.DefaultLocalConfig()
	cfg.Name = "lab01"
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Addr4 = mustAddr("127.0.1.1")
	cfg.Sampler = fixedSampler{report.Load{Load1: 0.5, CPUs: 4, MemTotal: 8 << 30, MemAvailable: 4 << 30, CPUPressure: -1}}
	if edit != nil {
		edit(cfg)
	}
	lab, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Shutdown() })
	return lab
}

// waitAnswer waits until p is ready and answers the virtual name with want
// only (never the collector itself).
func waitAnswer(t *testing.T, p *PeerLoad, h *memberHandle, want string) {
	t.Helper()
	agenttest.WaitFor(t, 15*time.Second, "an answer from the cluster", func() (bool, string) {
		var snap *rank.Snapshot
		if a := h.agent(); a != nil {
			snap = a.Snapshot()
		}
		return p.Ready() && len(answerIPs(query(t, p, "cslab.example.edu.", 1))) > 0, fmt.Sprintf("ready %v, snapshot %+v", p.Ready(), snap)
	})
	if got := answerIPs(query(t, p, "cslab.example.edu.", 1)); len(got) != 1 || got[0] != want {
		t.Errorf("A = %v, want only %s", got, want)
	}
}

func mustKey(t *testing.T) []byte {
	t.Helper()
	k, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeKeyring(t *testing.T, name string, keys ...[]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := gossip.WriteKeyring(path, keys); err != nil {
		t.Fatal(err)
	}
	return path
}

type fixedSampler struct{ l report.Load }

func (f fixedSampler) Sample() (report.Load, error) { return f.l, nil }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
