package gossip_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
)

// suspects lists the members col holds as suspect.
func suspects(col *gossip.Member) []string {
	var out []string
	for _, m := range col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Members {
		if m.Suspect {
			out = append(out, m.Name)
		}
	}
	return out
}

// TestProbeToleratesLossAndCatchesTheDead: with 10 % of all packets lost
// (a ping round trip fails 19 % of the time), 40 probe rounds of ten
// agents never make a live one suspect; 30 % loss (a round trip fails
// 51 % of the time) leaves at most a rare one suspect; and an agent that
// dies is suspect after the next Probe call.
func TestProbeToleratesLossAndCatchesTheDead(t *testing.T) {
	sc := startSim(t, 10, 1, 2*time.Second, 1, nil)
	col := sc.members[10]
	probed := sc.names[:10]

	for _, loss := range []float64{0.10, 0.30} {
		sc.net.setDrop(func(_, _ string) bool { return rand.Float64() < loss })
		rounds, wrong := 40, 0
		for range rounds {
			col.Probe(probed)
			if s := suspects(col); len(s) > 0 {
				wrong++
				t.Logf("%.0f %% loss: suspect %v", 100*loss, s)
			}
		}
		sc.net.setDrop(nil)
		col.Probe(probed) // a suspect that answers is no longer one
		// At 10 %: a node-round-pair fails with 0.19^8 ≈ 2e-6, so 400 of
		// them never do. At 30 %: 0.51^8 ≈ 0.005, about 2 in 400.
		if limit := map[float64]int{0.10: 0, 0.30: 10}[loss]; wrong > limit {
			t.Errorf("%.0f %% loss: a live node was suspect after %d of %d rounds (want at most %d)", 100*loss, wrong, rounds, limit)
		}
		if s := suspects(col); len(s) > 0 {
			t.Fatalf("without loss, %v still suspect", s)
		}
	}

	// A dead node misses the next call's two rounds, one right after the
	// other, and is suspect when it returns.
	if err := sc.members[3].Shutdown(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	col.Probe(probed)
	if s := suspects(col); len(s) != 1 || s[0] != sc.names[3] {
		t.Fatalf("after one Probe call with %s dead, suspect: %v", sc.names[3], s)
	}
	t.Logf("dead node suspect after one Probe call of %.2fs", time.Since(start).Seconds())
}

// TestReconnectTriesFailedMembersOnly: a member that failed is what
// the reconnector joins, one that left never is.
func TestReconnectTriesFailedMembersOnly(t *testing.T) {
	sc := startSim(t, 3, 0, 2*time.Second, 1, nil)
	m := sc.members[0]
	goneAs := func(name, state string) func() (bool, string) {
		return func() (bool, string) {
			for _, g := range m.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Gone {
				if g.Node.Name == name {
					return g.State == state, g.State
				}
			}
			return false, "not gone"
		}
	}
	dead, left := sc.members[2], sc.members[1]
	if err := dead.Shutdown(); err != nil {
		t.Fatal(err)
	}
	agenttest.WaitFor(t, time.Minute, sc.names[2]+" to be dead at "+sc.names[0], goneAs(sc.names[2], gossip.StateDead))
	if err := left.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	agenttest.WaitFor(t, 30*time.Second, sc.names[1]+" to have left at "+sc.names[0], goneAs(sc.names[1], gossip.StateLeft))
	// One failed member and one live (this one): every call picks it.
	for range 20 {
		if got := gossip.ReconnectTarget(m); got != dead.GossipAddr() {
			t.Fatalf("reconnect target %q, want the failed %s (%s) and never the one that left (%s)",
				got, sc.names[2], dead.GossipAddr(), left.GossipAddr())
		}
	}
}

// TestStrangersCostOnePushPull: a member greeted by twenty members that
// memberlist has not told it of (as when a lab boots faster than the
// "alive" rumours spread) learns them all with one push/pull, not one
// each: a push/pull carries the whole membership.
func TestStrangersCostOnePushPull(t *testing.T) {
	sc := startSim(t, 20, 0, 2*time.Second, 1, nil)
	a, tr := sc.newMember(t, "stranger", false, nil)
	for i, m := range sc.members {
		gossip.Hello(a, sc.names[i], m.GossipAddr())
	}
	agenttest.WaitFor(t, 20*time.Second, "the stranger to list all 21 members", func() (bool, string) {
		return a.NumMembers() == 21, fmt.Sprintf("lists %d", a.NumMembers())
	})
	// Its own periodic push/pull is 30 s away: every stream it opened
	// answered a greeting.
	if d := tr.dials.Load(); d != 1 {
		t.Errorf("the stranger opened %d push/pulls for 20 greetings, want 1", d)
	}
}
