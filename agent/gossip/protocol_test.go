package gossip_test

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/report"
)

// TestProtocolFollowsTheOldestMember: three releases in one cluster. Three
// agents write protocol 3 (a release two ahead), a collector reads
// protocol 2 and writes 1 (this release), and a node speaks as 0.1.0 does
// (it advertises nothing). While the 0.1.0 node is live everyone speaks
// protocol 1 and it receives nothing it cannot read; once it is gone the
// agents speak 2, which the collector reads; once the collector is gone,
// 3. Reports reach every member at every step, and nobody counts a
// message it could not read.
func TestProtocolFollowsTheOldestMember(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := startSimTuned(t, 0, 0, 2*time.Second, 1, nil, nil, nil)
		var mu sync.Mutex
		invalid := map[string]int{}
		counter := func(name string) func(string) {
			return func(result string) {
				if result == "invalid" || result == "unknown" {
					mu.Lock()
					invalid[name]++
					mu.Unlock()
				}
			}
		}
		var agents []*gossip.Member
		for i := range 3 {
			name := fmt.Sprintf("next%d", i)
			m, _ := sc.newMemberWith(t, name, false, nil, func(c *gossip.Config) { gossip.SetProtocols(c, 3, 3) }, counter(name))
			sc.members, sc.names = append(sc.members, m), append(sc.names, name)
			agents = append(agents, m)
		}
		col, _ := sc.newMemberWith(t, "col", true, nil, func(c *gossip.Config) { gossip.SetProtocols(c, report.Protocol2, report.Protocol1) }, counter("col"))
		sc.members, sc.names = append(sc.members, col), append(sc.names, "col")
		for _, m := range sc.members[1:] {
			if _, err := m.Join([]string{sc.members[0].GossipAddr()}); err != nil {
				t.Fatal(err)
			}
		}
		old := newOldNode(t, sc, "old")
		everyone := func(n int) {
			t.Helper()
			agenttest.WaitFor(t, 30*time.Second, fmt.Sprintf("every member to list %d", n), func() (bool, string) {
				for _, m := range sc.members {
					if m.NumMembers() != n {
						return false, fmt.Sprintf("%d members", m.NumMembers())
					}
				}
				return true, ""
			})
		}
		speaks := func(want int) {
			t.Helper()
			for _, m := range agents {
				if got := m.Stats().Protocol; got != want {
					t.Fatalf("an agent speaks protocol %d, want %d", got, want)
				}
			}
		}
		seq := uint64(0)
		// publishAll publishes a new report of every agent (its own epoch
		// and then compact entries) and waits until every member holds
		// it.
		publishAll := func(step string) {
			t.Helper()
			for range 3 {
				seq++
				for i, m := range agents {
					m.Publish(&report.Report{Node: sc.names[i], Generation: 1, Seq: seq, Lifetime: 17 * time.Second,
						Load: report.Load{Load1: float64(seq), Load5: 1, Load15: 1, CPUs: 4, MemTotal: 16 << 30, MemAvailable: 8 << 30, CPUPressure: -1}}, time.Now())
				}
				for _, m := range sc.members {
					for i := range agents {
						agenttest.WaitFor(t, 10*time.Second, step+": every report everywhere", func() (bool, string) {
							if m == agents[i] {
								return true, ""
							}
							return holds(m, sc.names[i], seq)
						})
					}
				}
			}
		}

		everyone(5)
		speaks(report.Protocol1)
		publishAll("with 0.1.0")
		old.mu.Lock()
		newer, seen := old.newer, old.seen[1]+old.seen[5]+old.seen[6]
		old.mu.Unlock()
		if newer > 0 || seen == 0 {
			t.Errorf("the 0.1.0 node got %d messages, %d of them in a format 0.1.0 does not read", seen, newer)
		}
		if bad := old.unknown(); bad != nil {
			t.Errorf("the 0.1.0 node received message types it does not know: %v", bad)
		}

		_ = old.ml.Leave(time.Second)
		_ = old.ml.Shutdown()
		everyone(4)
		speaks(report.Protocol2)
		publishAll("with this release")

		_ = col.Leave(time.Second)
		_ = col.Shutdown()
		sc.members = sc.members[:3]
		everyone(3)
		speaks(3)
		publishAll("next releases only")

		mu.Lock()
		defer mu.Unlock()
		if len(invalid) > 0 {
			t.Errorf("members counted messages they could not read: %v", invalid)
		}
	})
}
