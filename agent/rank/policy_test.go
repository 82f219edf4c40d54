package rank

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/report"
)

func node(name, addr string, load1 float64, mod ...func(*NodeStatus)) NodeStatus {
	n := NodeStatus{
		Name: name, Addr4: netip.MustParseAddr(addr), State: StateAlive, Candidate: true,
		Report: &report.Report{Node: name, Load: report.Load{Load1: load1, CPUs: 1}},
	}
	for _, m := range mod {
		m(&n)
	}
	return n
}

func snap(built time.Time, nodes ...NodeStatus) *Snapshot {
	return &Snapshot{Built: built, Score: ScoreConfig{By: ByCPU, Delta: 0.01}, Nodes: nodes}
}

func names(r *Ranking) []string {
	var out []string
	for _, n := range r.Nodes {
		out = append(out, n.Name)
	}
	return out
}

func out(state string, failing ...report.CheckResult) func(*NodeStatus) {
	return func(n *NodeStatus) {
		n.State, n.Candidate = state, false
		if len(failing) > 0 {
			r := *n.Report
			r.Failing = failing
			n.Report = &r
		}
	}
}

// TestKeepDefinition: fallback keep hands out the last live top machines
// that may come back (dead, suspect, stale, or forgotten by the
// snapshot), never those that left, were drained or fail a check, with
// their current reports.
func TestKeepDefinition(t *testing.T) {
	t0 := time.Now()
	p := Policy{Top: 4, Fallback: FallbackKeep}
	live := snap(t0, node("a", "10.0.0.1", 0.1), node("b", "10.0.0.2", 0.2), node("c", "10.0.0.3", 0.3),
		node("d", "10.0.0.4", 0.4), node("e", "10.0.0.5", 0.5), node("f", "10.0.0.6", 0.6))
	c, kept := p.Choose(live, nil, time.Time{})
	if c.Fallback || !slices.Equal(names(c.Ranking), []string{"a", "b", "c", "d", "e", "f"}) {
		t.Fatalf("live choice = %v fallback %v", names(c.Ranking), c.Fallback)
	}
	// d dies: the live top-4 is now a b c e (kept holds Top machines, the
	// live ones first).
	c, kept = p.Choose(snap(t0, node("a", "10.0.0.1", 0.1), node("b", "10.0.0.2", 0.2), node("c", "10.0.0.3", 0.3),
		node("d", "10.0.0.4", 0.4, out(StateDead)), node("e", "10.0.0.5", 0.5)), kept, time.Time{})
	if c.Fallback || len(kept) != 4 || kept[3].Name != "e" {
		t.Fatalf("kept after d died = %v", kept)
	}
	// Now nothing is a candidate: a is dead, b left, c drained, e fails a
	// check; only a may come back.
	t1 := t0.Add(time.Minute)
	later := node("a", "10.0.0.1", 0.9, out(StateDead))
	c, kept2 := p.Choose(snap(t1, later, node("b", "10.0.0.2", 0.2, out(StateLeft)),
		node("c", "10.0.0.3", 0.3, out(StateAlive, report.CheckResult{Name: "drain", Reason: "disk"})),
		node("e", "10.0.0.5", 0.5, out(StateAlive, report.CheckResult{Name: "tmp", Reason: "full"}))), kept, time.Time{})
	if !c.Fallback || !slices.Equal(names(c.Ranking), []string{"a"}) {
		t.Fatalf("keep = %v (fallback %v), want [a]", names(c.Ranking), c.Fallback)
	}
	if c.Ranking.Nodes[0].Report.Load.Load1 != 0.9 {
		t.Errorf("kept a carries its old report, want the current one")
	}
	if !slices.EqualFunc(kept2, kept, func(x, y NodeStatus) bool { return x.Name == y.Name }) {
		t.Errorf("a fallback choice changed what is kept: %v -> %v", kept, kept2)
	}
	// The snapshot forgot everyone (a collector cut off from the cluster):
	// the kept machines that may return are handed out as last seen.
	c, _ = p.Choose(snap(t1), kept, time.Time{})
	if !c.Fallback || !slices.Equal(names(c.Ranking), []string{"a", "b", "c", "e"}) {
		t.Errorf("keep with an empty snapshot = %v, want a b c e as last seen", names(c.Ranking))
	}
}

func TestFallbackAllAndNone(t *testing.T) {
	s := snap(time.Now(), node("a", "10.0.0.1", 0.1, out(StateAlive, report.CheckResult{Name: "tmp"})),
		node("b", "10.0.0.2", 0.2, out(StateDead)), node("col", "10.0.0.9", 0, func(n *NodeStatus) { n.Collector, n.Candidate = true, false }))
	if c, _ := (Policy{Top: 2, Fallback: FallbackAll}).Choose(s, nil, time.Time{}); !c.Fallback || !slices.Equal(names(c.Ranking), []string{"a"}) {
		t.Errorf("all = %v", names(c.Ranking))
	}
	if c, _ := (Policy{Top: 2, Fallback: FallbackNone}).Choose(s, nil, time.Time{}); !c.Fallback || c.Ranking.Len() != 0 {
		t.Errorf("none = %v", names(c.Ranking))
	}
}

// TestRankingNeverRepeatsAnAddress: of two machines advertising one
// address, only the better one keeps it.
func TestRankingNeverRepeatsAnAddress(t *testing.T) {
	s := snap(time.Now(), node("a", "10.0.0.1", 0.5), node("clone", "10.0.0.1", 0.1), node("b", "10.0.0.2", 0.3))
	r := s.Rank("", "")
	var addrs []string
	for _, n := range r.Nodes {
		if n.Addr4.IsValid() {
			addrs = append(addrs, n.Name+"="+n.Addr4.String())
		}
	}
	if !slices.Equal(addrs, []string{"clone=10.0.0.1", "b=10.0.0.2"}) {
		t.Errorf("addresses = %v", addrs)
	}
}
