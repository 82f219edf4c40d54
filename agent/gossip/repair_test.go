package gossip_test

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/report"
)

// noPushPull switches memberlist's periodic push/pull off, the one other
// path by which a node's own report reaches a collector, so that only the
// repair can bring back a lost one.
func noPushPull(c *memberlist.Config) { c.PushPullInterval = 0 }

// TestCollectorRepairsALostRefresh: a node under a steady load sends only
// its refresh; the refresh and the answer to the collector's first
// request for it are lost on their way to the collector. The collector
// asks again and holds the refresh within its first report's lifetime,
// an eighth of a lifetime for the lost answer, the probe-interval ticks
// of the two requests and the network: before the node's next refresh
// and long before the report would turn stale. The answer carries the
// report's age, so the collector dates it from when the node published
// it. Timers decide all of it, so it runs on synctest's clock, with LAN
// timings.
func TestCollectorRepairsALostRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := startSimTuned(t, 2, 1, 2*time.Second, 1, nil, noPushPull, nil)
		col, node := sc.members[2], sc.members[0]
		tick := sc.ml.ProbeInterval
		refresh := 15 * time.Second

		r1 := sc.publish(0, 1)
		sent := time.Now()
		agenttest.WaitFor(t, time.Second, "the first report at the collector", func() (bool, string) { return holds(col, r1.Node, r1.Seq) })
		life := r1.Lifetime

		time.Sleep(refresh - time.Since(sent))
		from, to := node.GossipAddr(), col.GossipAddr()
		sc.net.setDrop(func(src, dst string) bool { return src == from && dst == to })
		r2 := sc.publish(0, 1) // the refresh, lost
		next := time.Now().Add(refresh)
		// The collector's first request goes out within a tick of r1's
		// lifetime; its answer is lost too.
		time.Sleep(time.Until(sent.Add(life + tick + tick/2)))
		sc.net.setDrop(nil)
		if ok, state := holds(col, r2.Node, r2.Seq); ok {
			t.Fatalf("the collector holds the lost refresh before any request could be answered: %s", state)
		}

		// Ticks are a probe interval apart: the first request goes out
		// within one of r1's lifetime, the second within one of an
		// eighth of a lifetime after it; one more covers the network.
		deadline := sent.Add(life + life/8 + 3*tick)
		if !deadline.Before(next) || !deadline.Before(sent.Add(2*life)) {
			t.Fatalf("the deadline %s is not before the next refresh (%s) and staleness (%s)", deadline.Sub(sent), next.Sub(sent), 2*life)
		}
		agenttest.WaitFor(t, time.Until(deadline), "the collector to ask again for the lost refresh", func() (bool, string) {
			return holds(col, r2.Node, r2.Seq)
		})
		t.Logf("refresh recovered %s after the report before it (lifetime %s)", time.Since(sent), life)
		// The answer carries the report's age: the collector dates it
		// from when the node published it, not from the answer.
		v := col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false })
		if got, want := v.Reports[r2.Node].Received.Sub(sent), next.Add(-refresh).Sub(sent); got < want-time.Second || got > want+time.Second {
			t.Errorf("the repaired report counts as sent %s after the one before it, want %s", got, want)
		}
	})
}

// TestCollectorAsksNothingOnTime: while reports arrive within their
// lifetime, a collector sends no request at all.
func TestCollectorAsksNothingOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := startSimTuned(t, 2, 1, 2*time.Second, 1, nil, noPushPull, nil)
		old := newOldNode(t, sc, "old")
		agenttest.WaitFor(t, 10*time.Second, "the collector to list the old node", func() (bool, string) {
			return sc.members[2].NumMembers() == 4, fmt.Sprint(sc.members[2].NumMembers())
		})
		for range 4 {
			sc.publish(0, 1)
			sc.publish(1, 1)
			old.publish(t, sc.members[2])
			time.Sleep(15 * time.Second)
		}
		if n := old.wants(); n != 0 {
			t.Errorf("the collector asked a node whose reports came on time %d times", n)
		}
	})
}

// TestCollectorRepairsAnOldNode: a node of release 0.1.0 (which answers
// msgWant with its own report, aged 0, and knows message types 1 to 7)
// loses a refresh to a new collector; the collector gets it from the node
// by asking, and never sends it a message type it does not know.
func TestCollectorRepairsAnOldNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := startSimTuned(t, 1, 1, 2*time.Second, 1, nil, noPushPull, nil)
		col := sc.members[1]
		old := newOldNode(t, sc, "old")
		agenttest.WaitFor(t, 10*time.Second, "every member to list the old node", func() (bool, string) {
			return col.NumMembers() == 3 && sc.members[0].NumMembers() == 3, fmt.Sprint(col.NumMembers())
		})
		r1 := old.publish(t, col)
		sent := time.Now()
		agenttest.WaitFor(t, time.Second, "the old node's report at the collector", func() (bool, string) { return holds(col, "old", r1.Seq) })
		time.Sleep(15 * time.Second)
		r2 := old.publish(t, nil) // its refresh, lost
		agenttest.WaitFor(t, time.Until(sent.Add(r1.Lifetime+2*sc.ml.ProbeInterval)), "the collector to get the old node's lost refresh",
			func() (bool, string) { return holds(col, "old", r2.Seq) })
		if bad := old.unknown(); bad != nil {
			t.Errorf("the old node received message types it does not know: %v", bad)
		}
	})
}

// oldNode is a member as release 0.1.0 speaks (git show
// e50cb2b:agent/gossip/relay.go): memberlist with meta version 1 that
// relays, and a delegate that answers msgWant with its own report whole,
// aged 0. It records every user message type it receives.
type oldNode struct {
	name string
	ml   *memberlist.Memberlist
	mu   sync.Mutex
	own  *report.Report
	seen map[byte]int
	// newer counts messages of a type 0.1.0 knows in a format it does not
	// read (a report above version 3, a batch not in AppendBatch's bytes).
	newer int
}

// Message types of release 0.1.0.
const (
	oldMsgReport  = 1
	oldMsgWant    = 7
	oldMaxMsgType = 7
)

func newOldNode(t *testing.T, sc *simCluster, name string) *oldNode {
	t.Helper()
	o := &oldNode{name: name, seen: map[byte]int{}}
	meta, err := report.AppendMeta(report.Meta{Relays: true})
	if err != nil {
		t.Fatal(err)
	}
	mlc := *sc.ml
	mlc.Name = name
	mlc.Transport = sc.net.NewTransport()
	mlc.LogOutput = io.Discard
	mlc.Logger = nil
	mlc.Label = "peerload-lab"
	key := make([]byte, 32)
	key[0] = 9
	if mlc.Keyring, err = memberlist.NewKeyring(nil, key); err != nil {
		t.Fatal(err)
	}
	mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	mlc.Delegate = &oldDelegate{o: o, meta: meta}
	mlc.Events, mlc.Alive, mlc.Merge = nil, nil, nil
	if o.ml, err = memberlist.Create(&mlc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.ml.Shutdown() })
	if _, err := o.ml.Join([]string{sc.members[0].GossipAddr()}); err != nil {
		t.Fatal(err)
	}
	return o
}

// publish makes the old node's next report its own and sends it to to
// (none: the report is lost).
func (o *oldNode) publish(t *testing.T, to *gossip.Member) *report.Report {
	t.Helper()
	o.mu.Lock()
	seq := uint64(1)
	if o.own != nil {
		seq = o.own.Seq + 1
	}
	r := &report.Report{Node: o.name, Generation: 1, Seq: seq, Base: 1, Lifetime: 17 * time.Second,
		Load: report.Load{Load1: 1, Load5: 1, Load15: 1, CPUs: 4, MemTotal: 16 << 30, MemAvailable: 8 << 30, CPUPressure: -1}}
	o.own = r
	o.mu.Unlock()
	if to != nil {
		if err := o.send(to.GossipAddr(), r); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (o *oldNode) send(addr string, r *report.Report) error {
	for _, n := range o.ml.Members() {
		if n.Address() == addr {
			return o.ml.SendBestEffort(n, report.AppendReport([]byte{oldMsgReport}, r))
		}
	}
	return fmt.Errorf("old node: no member at %s", addr)
}

func (o *oldNode) wants() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seen[oldMsgWant]
}

// unknown lists the message types received that release 0.1.0 does not
// know, with their counts.
func (o *oldNode) unknown() map[byte]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out map[byte]int
	for typ, n := range o.seen {
		if typ == 0 || typ > oldMaxMsgType {
			if out == nil {
				out = map[byte]int{}
			}
			out[typ] = n
		}
	}
	return out
}

// readBy010 reports whether 0.1.0's strict decoders read message b in
// full: a report of version 1 to 3, a batch in exactly AppendBatch's bytes.
func readBy010(b []byte) bool {
	switch b[0] {
	case 1:
		return len(b) > 1 && b[1] >= 1 && b[1] <= 3
	case 5, 6:
		w, c, err := report.DecodeBatch(b[1:])
		return err == nil && bytes.Equal(report.AppendBatch(nil, w, c), b[1:])
	}
	return true
}

type oldDelegate struct {
	o    *oldNode
	meta []byte
}

func (d *oldDelegate) NodeMeta(int) []byte { return d.meta }

func (d *oldDelegate) NotifyMsg(b []byte) {
	o := d.o
	if len(b) == 0 {
		return
	}
	o.mu.Lock()
	o.seen[b[0]]++
	if !readBy010(b) {
		o.newer++
	}
	own := o.own
	o.mu.Unlock()
	if b[0] != oldMsgWant || own == nil {
		return
	}
	from, err := report.DecodeName(b[1:])
	if err != nil {
		return
	}
	for _, n := range o.ml.Members() {
		if n.Name == from {
			_ = o.ml.SendBestEffort(n, report.AppendReport([]byte{oldMsgReport}, own))
		}
	}
}

func (d *oldDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *oldDelegate) LocalState(bool) []byte          { return nil }
func (d *oldDelegate) MergeRemoteState([]byte, bool)   {}
