package gossip_test

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
)

// TestSentByKind: two agents and a collector on the in-memory network,
// with the cluster's key and label, send every kind of message: a report
// (to the collector, and in a batch to the other agent), the collector's
// request for it once overdue and the answer, the collector's probes, the
// greetings and push/pulls of a newcomer, an agent's goodbye, and
// memberlist's own traffic all along. Each member's counts by kind must
// add up exactly to what its transport handed the network, each kind
// must be counted by the member that sent it, and the network must never
// see a tagged node name. Timers decide when things happen, so it runs on
// synctest's clock.
func TestSentByKind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := startSim(t, 2, 1, 2*time.Second, 1, nil)
		node, other, col := sc.members[0], sc.members[1], sc.members[2]
		sent := func(m *gossip.Member, kind string) gossip.Traffic { return m.Stats().Sent[kind] }

		r := sc.publish(0, 1)
		agenttest.WaitFor(t, 10*time.Second, "the report at the other agent, in a batch", func() (bool, string) {
			return holds(other, r.Node, r.Seq)
		})
		// No refresh follows: past the report's lifetime the collector
		// asks for it, and the node answers.
		agenttest.WaitFor(t, r.Lifetime+10*time.Second, "the node to answer the collector's request", func() (bool, string) {
			asked, answered := sent(col, gossip.KindRepair), sent(node, gossip.KindRepair)
			return asked.Packets > 0 && answered.Packets > 0, fmt.Sprintf("asked %d, answered %d", asked.Packets, answered.Packets)
		})
		col.Probe([]string{sc.names[0], sc.names[1]})

		greeted := make([]uint64, len(sc.members))
		for i, m := range sc.members {
			greeted[i] = sent(m, gossip.KindGreeting).Packets
		}
		late, lateTr := sc.newMember(t, "late", false, nil)
		if _, err := late.Join([]string{col.GossipAddr()}); err != nil {
			t.Fatal(err)
		}
		// Every member says hello; the node, which holds a report of its
		// own, sends it too.
		agenttest.WaitFor(t, 10*time.Second, "every member to greet the newcomer", func() (bool, string) {
			for i, m := range sc.members {
				want := greeted[i] + 1
				if m == node {
					want++
				}
				if g := sent(m, gossip.KindGreeting); g.Packets < want {
					return false, fmt.Sprintf("%s sent the newcomer %d greetings, want %d", sc.names[i], g.Packets-greeted[i], want-greeted[i])
				}
			}
			return true, ""
		})
		if got := sent(node, gossip.KindGreeting).Packets - greeted[0]; got != 2 {
			t.Errorf("the node greeted the newcomer with %d packets, want its hello and its report", got)
		}
		beforeLeave := sent(other, gossip.KindGreeting).Packets
		if err := other.Leave(time.Second); err != nil {
			t.Fatal(err)
		}
		if got := sent(other, gossip.KindGreeting).Packets - beforeLeave; got != 3 {
			t.Errorf("the leaving agent sent %d goodbyes, want one to each of the three others", got)
		}
		members := append(slices.Clone(sc.members), late)
		transports := append(slices.Clone(sc.transports), lateTr)
		for _, m := range members {
			_ = m.Shutdown()
		}
		// memberlist's probe rounds in flight end within a probe
		// interval and timeout of the shutdown, and every goroutine must
		// end inside the bubble; what was on its way out is then counted
		// on both sides.
		time.Sleep(sc.ml.ProbeInterval + sc.ml.ProbeTimeout)
		synctest.Wait()

		names := append(slices.Clone(sc.names), "late", "")
		for i, m := range members {
			tr, st := transports[i], m.Stats()
			var packets, bytes uint64
			for _, k := range gossip.Kinds() {
				packets += st.Sent[k].Packets
				bytes += st.Sent[k].Bytes
			}
			if packets != st.Packets || bytes != st.Bytes {
				t.Errorf("member %d: kinds add up to %d packets, %d bytes; Stats says %d, %d", i, packets, bytes, st.Packets, st.Bytes)
			}
			if wire := tr.udpBytes.Load() + tr.streamBytes.Load(); bytes != wire || packets != tr.udpPackets.Load() {
				t.Errorf("member %d: kinds add up to %d packets, %d bytes; the network carried %d packets, %d bytes", i, packets, bytes, tr.udpPackets.Load(), wire)
			}
			if st.Sent[gossip.KindPushPull].Bytes != tr.streamBytes.Load() || st.Sent[gossip.KindPushPull].Packets != 0 {
				t.Errorf("member %d: push/pull %+v, the network carried %d stream bytes", i, st.Sent[gossip.KindPushPull], tr.streamBytes.Load())
			}
			tr.names.Range(func(k, _ any) bool {
				if !slices.Contains(names, k.(string)) {
					t.Errorf("member %d addressed a packet to %q, no member's name", i, k)
				}
				return true
			})
		}

		// Who sent what: the node published one report and had one
		// collector.
		want := []struct {
			who   string
			m     *gossip.Member
			kind  string
			check func(gossip.Traffic) bool
		}{
			{"the node", node, gossip.KindReport, func(s gossip.Traffic) bool { return s.Packets == 1 }},
			{"the node", node, gossip.KindRelay, func(s gossip.Traffic) bool { return s.Packets > 0 }},
			{"the node", node, gossip.KindRepair, func(s gossip.Traffic) bool { return s.Packets > 0 }},
			{"the node", node, gossip.KindProbe, func(s gossip.Traffic) bool { return s.Packets > 0 }},
			{"the node", node, gossip.KindPushPull, func(s gossip.Traffic) bool { return s.Bytes > 0 }},
			{"the other agent", other, gossip.KindReport, func(s gossip.Traffic) bool { return s.Packets == 0 }},
			{"the collector", col, gossip.KindRepair, func(s gossip.Traffic) bool { return s.Packets > 0 }},
			{"the collector", col, gossip.KindReport, func(s gossip.Traffic) bool { return s.Packets == 0 }},
			{"the collector", col, gossip.KindRelay, func(s gossip.Traffic) bool { return s.Packets == 0 }},
			{"the newcomer", late, gossip.KindPushPull, func(s gossip.Traffic) bool { return s.Bytes > 0 }},
		}
		for _, w := range want {
			if s := w.m.Stats().Sent[w.kind]; !w.check(s) {
				t.Errorf("%s sent %s: %+v", w.who, w.kind, s)
			}
		}
	})
}
