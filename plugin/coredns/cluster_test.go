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
	"github.com/peerload/peerload/agent/collector"
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

// recordAgents makes the plugin's members start real agents and record their
// configurations for the duration of the test.
func recordAgents(t *testing.T) func() []*agent.Config {
	t.Helper()
	var (
		mu   sync.Mutex
		cfgs []*agent.Config
	)
	members.NewAgent = func(cfg *agent.Config) (*agent.Agent, error) {
		mu.Lock()
		c := *cfg
		cfgs = append(cfgs, &c)
		mu.Unlock()
		return agent.New(cfg)
	}
	t.Cleanup(func() { members.NewAgent = agent.New })
	return func() []*agent.Config {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(cfgs)
	}
}

func registered(bind string) bool {
	_, n := members.Running(bind)
	return n > 0
}

// agentConfig is the agent configuration the plugin's member runs for
// spec.
func agentConfig(spec memberSpec) (*agent.Config, error) {
	return collector.Config(spec, "coredns", defaultPort)
}

// TestMemberRefcount: blocks (and a reloaded instance) with one bind
// address share one running member; the last release leaves and frees the
// port so a new member can bind it again.
func TestMemberRefcount(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Name: "coredns-test"}
	var l1, l2 attachLog
	h1, err := startMember(spec, l1.attach)
	if err != nil {
		t.Fatal(err)
	}
	// A reload: the new instance acquires before the old one releases.
	h2, err := startMember(spec, l2.attach)
	if err != nil {
		t.Fatalf("second acquire on the same bind: %v", err)
	}
	a1, _, _ := l1.last()
	a2, own2, _ := l2.last()
	if a1 != a2 || a1 == nil {
		t.Fatal("same bind address, different members")
	}
	if !own2 {
		t.Error("unchanged settings, but the reloaded block was not attached as owner")
	}
	if err := h1.Release(); err != nil {
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
	if err := h1.Release(); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if err := h2.Release(); err != nil {
		t.Fatal(err)
	}
	if registered(spec.Bind) {
		t.Fatal("released member still registered")
	}
	if _, err := a2.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
		t.Errorf("last release: agent still running (join error %v)", err)
	}
	// The port is free again: a fresh member starts on it.
	h3, err := startMember(spec, nil)
	if err != nil {
		t.Fatalf("acquire after full release: %v", err)
	}
	if h3.Agent() == a1 {
		t.Fatal("got the shut down agent back")
	}
	if err := h3.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestReloadRestartsOnTheRestartSettings runs pairs of Corefiles that
// differ in one property in CoreDNS's reload order (the new instance
// starts, then the old one shuts down): the member restarts for exactly
// the settings collector.RestartSettings names, as in the Caddy modules
// and nsupdate, and keeps running (port, membership, reports) for the
// others. A Corefile has no join file.
func TestReloadRestartsOnTheRestartSettings(t *testing.T) {
	k1, k2 := writeKeyring(t, "k1", mustKey(t)), writeKeyring(t, "k2", mustKey(t))
	otherBind := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	for _, tc := range []struct {
		setting   string
		old, next string // properties
		restarts  bool
	}{
		{"bind", "", "bind " + otherBind, true},
		{"name", "name ns-a", "name ns-b", true},
		{"join", "join 127.0.0.1:1", "join 127.0.0.1:2", false},
		{"keyring rotated", "keyring " + k1, "keyring " + k2, false},
		{"keyring off", "keyring " + k1, "", true},
		{"label", "label red", "label blue", true},
		{"allow", "allow 127.0.0.0/8", "allow 127.0.0.1/32", true},
		{"stale", "stale 10s", "stale 20s", true},
		{"profile", "", "profile lan", true},
		{"roles", "", "update 127.0.0.1:1 {\nzone example.edu\ninsecure-no-tsig\n}", true},
		{"top", "top 2", "top 3", false},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			bind := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
			start := func(props string) (func() error, *agent.Agent) {
				t.Helper()
				if !strings.Contains(props, "profile") {
					props += "\nprofile local"
				}
				if !strings.Contains(props, "bind") {
					props += "\nbind " + bind
				}
				cfg, err := parse(testController("peerload cslab.example.edu {\n" + props + "\n}"))
				if err != nil {
					t.Fatal(err)
				}
				begin, stop := cfg.lifecycle(newPeerLoad(cfg))
				if err := begin(); err != nil {
					t.Fatal(err)
				}
				a, _ := members.Running(cfg.member.Bind)
				return stop, a
			}
			stopOld, oldAgent := start(tc.old)
			stopNew, _ := start(tc.next)
			t.Cleanup(func() { _ = stopNew() })
			if err := stopOld(); err != nil {
				t.Fatal(err)
			}
			nextBind := bind
			if tc.setting == "bind" {
				nextBind = otherBind
			}
			a, n := members.Running(nextBind)
			if a == nil || n != 1 {
				t.Fatalf("after the reload: agent %v, %d holds; want one running", a, n)
			}
			if restarted := a != oldAgent; restarted != tc.restarts {
				t.Fatalf("member restarted: %v, want %v", restarted, tc.restarts)
			}
			if tc.restarts {
				if _, err := oldAgent.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
					t.Errorf("old agent still running (join error %v)", err)
				}
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
	h1, err := startMember(old, (&config{}).attach(oldP))
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPeerLoad(testConfig(), nil)
	h2, err := startMember(next, (&config{}).attach(p))
	if err != nil {
		_ = h1.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Release() })
	if err := h1.Release(); err != nil {
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
	h1, err := startMember(old, (&config{}).attach(newTestPeerLoad(testConfig(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	running := h1.Agent()

	// The reload names another file holding the new key first (rotation).
	next := old
	next.Keyring = writeKeyring(t, "keyring.new", newKey, oldKey)
	h2, err := startMember(next, (&config{}).attach(p))
	if err != nil {
		_ = h1.Release()
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Release() })
	if err := h1.Release(); err != nil {
		t.Fatal(err)
	}
	if h2.Agent() != running || len(configs()) != 1 {
		t.Fatalf("keyring change restarted the member (%d agents started)", len(configs()))
	}
	waitAnswer(t, p, h2, "127.0.1.1")
}

// TestMemberReloadKeyringError: a keyring that cannot be read when the
// reload applies it fails the acquisition (CoreDNS keeps the old
// configuration) and leaves the running member untouched.
func TestMemberReloadKeyringError(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Keyring: writeKeyring(t, "keyring", mustKey(t))}
	h1, err := startMember(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h1.Release() })
	next := spec
	next.Keyring = filepath.Join(t.TempDir(), "missing")
	var l attachLog
	h2, err := startMember(next, l.attach)
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("acquire with a missing keyring: handle %v, error %v; want an error naming the file", h2, err)
	}
	if _, _, live := l.last(); live != 0 {
		t.Error("failed acquisition left the block attached")
	}
	if err := h1.Release(); err != nil {
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
	if _, err := startMember(spec, l.attach); err == nil || !strings.Contains(err.Error(), "refused") {
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
	h, err := startMember(spec, (&config{}).attach(p))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Release() })
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
func waitAnswer(t *testing.T, p *PeerLoad, h *collector.Handle, want string) {
	t.Helper()
	agenttest.WaitFor(t, 15*time.Second, "an answer from the cluster", func() (bool, string) {
		var snap *rank.Snapshot
		if a := h.Agent(); a != nil {
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
