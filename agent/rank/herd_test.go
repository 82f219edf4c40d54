package rank

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/report"
)

var herdT0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// herdLab is a snapshot of machines with 4 CPUs and the given load1, all
// candidates with reports received at herdT0.
func herdLab(load1 ...float64) *Snapshot {
	s := &Snapshot{Built: herdT0, Score: DefaultScoreConfig()}
	for i, l := range load1 {
		r := &report.Report{Node: string(rune('a' + i)), Load: report.Load{Load1: l, CPUs: 4}}
		s.Nodes = append(s.Nodes, NodeStatus{Name: r.Node, State: StateAlive, Report: r, Received: herdT0, Candidate: true})
	}
	return s
}

// herdAnswers gives n top-1 answers a second apart under p, as a
// collector would, and returns the names handed out.
func herdAnswers(s *Snapshot, p Policy, n int) []string {
	rnd := rand.New(rand.NewPCG(1, 2))
	var out []string
	for i := range n {
		now := herdT0.Add(time.Duration(i+1) * time.Second)
		c, _ := p.Choose(s, nil, now)
		best := c.Ranking.Pick(1, rnd)[0].Name
		if p.Herd != nil {
			p.Herd.Handed([]string{best}, now)
		}
		out = append(out, best)
	}
	return out
}

// Without a herd every answer until the next report names the machine
// that looked best; with one, a burst spreads.
func TestHerdSpreadsABurst(t *testing.T) {
	s := herdLab(0, 1, 1, 1, 1)
	plain := herdAnswers(s, Policy{Top: 1}, 5)
	for _, n := range plain {
		if n != "a" {
			t.Fatalf("without herd: answers %v, want a every time", plain)
		}
	}
	spread := herdAnswers(s, Policy{Top: 1, Herd: herd.New(herd.Config{Weight: 2})}, 5)
	seen := map[string]bool{}
	for _, n := range spread {
		seen[n] = true
	}
	if len(seen) != 5 {
		t.Errorf("with herd: answers %v, want five different machines", spread)
	}
}

func TestHerdLeavesTheSnapshotAlone(t *testing.T) {
	s := herdLab(0.5, 1)
	h := herd.New(herd.Config{Weight: 1})
	now := herdT0.Add(time.Second)
	h.Handed([]string{"a"}, now)
	adj := withHerd(s, h, now)
	if got := s.Nodes[0].HerdLoad; got != 0 {
		t.Errorf("input node's herd load changed to %v", got)
	}
	if got := adj.Nodes[0].HerdLoad; got != 1 {
		t.Errorf("herd load = %v, want 1", got)
	}
	if adj.Nodes[0].Report != s.Nodes[0].Report || adj.Nodes[0].Report.Load.Load1 != 0.5 {
		t.Error("the herd changed the report")
	}
	c, _ := Policy{Top: 1, Herd: h}.Choose(s, nil, now)
	if r := c.Ranking; r.Nodes[0].Name != "b" {
		t.Errorf("the herd's ranking starts with %s, want b", r.Nodes[0].Name)
	}
	l := s.Nodes[0].Report.Load
	l.Load1 += 1
	if want := Score(l, s.Score, s.Score.By); c.Ranking.Nodes[1].Score != want {
		t.Errorf("a's score = %v, want %v (its load with the herd's)", c.Ranking.Nodes[1].Score, want)
	}
}
