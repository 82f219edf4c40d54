package herd

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// lab is a snapshot of machines with 4 CPUs and the given load1, all
// candidates with reports received at t0.
func lab(load1 ...float64) *rank.Snapshot {
	s := &rank.Snapshot{Built: t0, Score: rank.DefaultScoreConfig()}
	for i, l := range load1 {
		r := &report.Report{Node: string(rune('a' + i)), Load: report.Load{Load1: l, CPUs: 4}}
		s.Nodes = append(s.Nodes, rank.NodeStatus{Name: r.Node, State: rank.StateAlive, Report: r, Received: t0, Candidate: true})
	}
	return s
}

// answers gives n top-1 answers a second apart, as a collector would,
// and returns the names handed out.
func answers(s *rank.Snapshot, h *Herd, n int) []string {
	rnd := rand.New(rand.NewPCG(1, 2))
	var out []string
	for i := range n {
		now := t0.Add(time.Duration(i+1) * time.Second)
		snap := s
		if h != nil {
			snap = h.Adjust(s, now)
		}
		best := snap.Rank("", "").Pick(1, rnd)[0].Name
		if h != nil {
			h.Handed([]string{best}, now)
		}
		out = append(out, best)
	}
	return out
}

// Without a herd every answer until the next report names the machine
// that looked best; with one, a burst spreads.
func TestAdjustSpreadsABurst(t *testing.T) {
	s := lab(0, 1, 1, 1, 1)
	plain := answers(s, nil, 5)
	for _, n := range plain {
		if n != "a" {
			t.Fatalf("without herd: answers %v, want a every time", plain)
		}
	}
	herd := answers(s, New(Config{Weight: 2}), 5)
	seen := map[string]bool{}
	for _, n := range herd {
		seen[n] = true
	}
	if len(seen) != 5 {
		t.Errorf("with herd: answers %v, want five different machines", herd)
	}
}

func TestAdjustLeavesTheSnapshotAlone(t *testing.T) {
	s := lab(0.5, 1)
	h := New(Config{Weight: 1})
	h.Handed([]string{"a"}, t0.Add(time.Second))
	adj := h.Adjust(s, t0.Add(time.Second))
	if got := s.Nodes[0].Report.Load.Load1; got != 0.5 {
		t.Errorf("input load1 changed to %v", got)
	}
	if got := adj.Nodes[0].Report.Load.Load1; got != 1.5 {
		t.Errorf("adjusted load1 = %v, want 1.5", got)
	}
	if want := rank.Score(adj.Nodes[0].Report.Load, s.Score, s.Score.By); adj.Nodes[0].Score != want {
		t.Errorf("adjusted score = %v, want %v", adj.Nodes[0].Score, want)
	}
	if adj.Nodes[1].Report != s.Nodes[1].Report {
		t.Error("a node never handed out got a copy of its report")
	}
	if r := adj.Rank("", ""); r.Nodes[0].Name != "b" {
		t.Errorf("adjusted ranking starts with %s, want b", r.Nodes[0].Name)
	}
}
