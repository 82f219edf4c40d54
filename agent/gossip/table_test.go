package gossip

import (
	"testing"
	"time"

	"github.com/peerload/peerload/agent/report"
)

func testReport(node string, seq uint64, load1 float64) *report.Report {
	return &report.Report{Node: node, Generation: 1, Seq: seq, Lifetime: 10 * time.Second,
		Load: report.Load{Load1: load1, Load5: 1, Load15: 1, CPUs: 4, MemTotal: 16 << 30, MemAvailable: 8 << 30, CPUPressure: -1}}
}

// TestTableEpochsAndCompactEntries: a node's first report begins an epoch
// and the next continues it; a receiver that holds the epoch rebuilds the
// next from its compact entry, one that does not asks (no_epoch), and
// nobody applies an old report or one in this member's name.
func TestTableEpochsAndCompactEntries(t *testing.T) {
	now := time.Now()
	a, b, c := newTable("a", nil), newTable("b", nil), newTable("c", nil)
	r1 := testReport("a", 1, 1)
	if !a.publish(r1, now) || r1.Base != 1 {
		t.Fatalf("first report: begins epoch false or Base %d, want true and 1", r1.Base)
	}
	r2 := testReport("a", 2, 1.5)
	if a.publish(r2, now) || r2.Base != 1 {
		t.Fatalf("second report: begins epoch true or Base %d, want false and 1", r2.Base)
	}
	if got := a.own(); got != r2 {
		t.Fatalf("own is seq %d, want 2", got.Seq)
	}
	if !b.apply(r1, now) || b.apply(r1, now) {
		t.Fatal("b must apply a's first report once")
	}
	if b.apply(testReport("b", 9, 1), now) {
		t.Fatal("b applied a report in its own name")
	}
	rs, cs := a.entry("a", report.NodeID("a"), true, now, nil, nil)
	if len(rs) != 0 || len(cs) != 1 {
		t.Fatalf("entry of a continued epoch: %d whole, %d compact, want 0 and 1", len(rs), len(cs))
	}
	if got := c.applyCompact("a", cs[0], now); got != resultNoEpoch {
		t.Fatalf("c without the epoch: %s, want %s", got, resultNoEpoch)
	}
	if got := b.applyCompact("a", cs[0], now); got != resultApplied {
		t.Fatalf("b with the epoch: %s, want %s", got, resultApplied)
	}
	if got := b.applyCompact("a", cs[0], now); got != resultOld {
		t.Fatalf("b again: %s, want %s", got, resultOld)
	}
	if h, _ := b.aged("a", now); h.Seq != 2 || h.Load.Load1 != 1.5 {
		t.Fatalf("b holds seq %d load1 %v, want 2 and 1.5", h.Seq, h.Load.Load1)
	}
	if rs, cs := a.entry("a", 0, false, now, nil, nil); len(rs) != 1 || len(cs) != 0 {
		t.Fatalf("entry that must go whole: %d whole, %d compact", len(rs), len(cs))
	}
}

// TestTableOverdueAndForget: a report is overdue once its lifetime has
// passed (this member's own never is), the periodic state carries only
// this member's report, and view forgets only what keep does not hold
// and forget says to.
func TestTableOverdueAndForget(t *testing.T) {
	t0 := time.Now()
	tb := newTable("self", nil)
	tb.publish(testReport("self", 1, 1), t0)
	tb.apply(testReport("x", 1, 1), t0)
	tb.apply(testReport("y", 1, 1), t0)
	if got := tb.overdue(t0.Add(5 * time.Second)); len(got) != 0 {
		t.Fatalf("overdue within the lifetime: %v", got)
	}
	got := tb.overdue(t0.Add(11 * time.Second))
	if len(got) != 2 || got["x"] != 10*time.Second || got["y"] != 10*time.Second {
		t.Fatalf("overdue past the lifetime: %v, want x and y with 10s", got)
	}
	if own := tb.ownState(t0.Add(time.Second)); len(own) != 1 || own[0].Node != "self" || own[0].Age != time.Second {
		t.Fatalf("ownState: %+v", own)
	}
	if all := tb.allState(t0); len(all) != 3 {
		t.Fatalf("allState holds %d reports, want 3", len(all))
	}
	v := tb.view(func(name string) bool { return name == "x" }, func(Held) bool { return true })
	if _, ok := v["y"]; ok || len(v) != 2 {
		t.Fatalf("view kept %v, want self and x", v)
	}
	if len(tb.allState(t0)) != 2 {
		t.Fatal("view did not forget y")
	}
}
