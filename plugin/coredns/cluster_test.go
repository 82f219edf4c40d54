package peerload

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// recordAgents makes the plugin's members start real agents and record
// their configurations for the duration of the test.
func recordAgents(t *testing.T) func() []*agent.Config {
	t.Helper()
	var started func() []*agent.Config
	members.NewAgent, started = agenttest.RecordStarts()
	t.Cleanup(func() { members.NewAgent = agent.New })
	return started
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

// TestReloadRestartsOnTheRestartSettings runs pairs of Corefiles that
// differ in one property in CoreDNS's reload order (the new instance
// starts, then the old one shuts down): the member restarts for exactly
// the settings collector.RestartSettings names, as in the Caddy modules
// and nsupdate, and keeps running (port, membership, reports) for the
// others. A Corefile has no join file.
func TestReloadRestartsOnTheRestartSettings(t *testing.T) {
	k1, k2 := agenttest.Keyring(t, "k1", agenttest.Key(t)), agenttest.Keyring(t, "k2", agenttest.Key(t))
	otherBind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
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
			bind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
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
	old := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Join: []string{lab.GossipAddr()}, Label: "red"}
	next := old
	next.Label = "blue"

	p, _, h := reloadMember(t, old, next)
	waitAnswer(t, p, h, "127.0.1.1")
}

// reloadMember runs a block on old, then, in CoreDNS's reload order, a
// block on next (started before the old one stops). It returns the new
// block's handler and hold, and the agent the old block ran on.
func reloadMember(t *testing.T, old, next memberSpec) (*PeerLoad, *agent.Agent, *collector.Handle) {
	t.Helper()
	h1, err := startMember(old, (&config{}).attach(newTestPeerLoad(testConfig(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	ran := h1.Agent()
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
	return p, ran, h2
}

// TestMemberReloadKeyringInPlace: a keyring change is installed in the
// running agent (no restart, membership kept); through real gossip the
// member then hears a cluster that uses the new key only.
func TestMemberReloadKeyringInPlace(t *testing.T) {
	configs := recordAgents(t)
	oldKey, newKey := agenttest.Key(t), agenttest.Key(t)
	lab := startLab(t, func(c *agent.Config) { c.Keys = [][]byte{newKey} })
	keyring := agenttest.Keyring(t, "keyring", oldKey)
	old := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Join: []string{lab.GossipAddr()}, Keyring: keyring}
	// The reload names another file holding the new key first (rotation).
	next := old
	next.Keyring = agenttest.Keyring(t, "keyring.new", newKey, oldKey)
	p, running, h2 := reloadMember(t, old, next)
	if h2.Agent() != running || len(configs()) != 1 {
		t.Fatalf("keyring change restarted the member (%d agents started)", len(configs()))
	}
	waitAnswer(t, p, h2, "127.0.1.1")
}

// TestMemberAttachError: a block that cannot attach (its updater refuses)
// fails its acquisition and does not keep a member running.
func TestMemberAttachError(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))}
	refuse := func(*agent.Agent, bool) (func(), error) { return nil, fmt.Errorf("update: refused") }
	if _, err := startMember(spec, refuse); err == nil || !strings.Contains(err.Error(), "refused") {
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
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Join: []string{lab.GossipAddr()}}
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

type fixedSampler struct{ l report.Load }

func (f fixedSampler) Sample() (report.Load, error) { return f.l, nil }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
