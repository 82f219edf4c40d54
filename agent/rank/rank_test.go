package rank

import (
	"github.com/peerload/peerload/agent/report"

	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

func TestScore(t *testing.T) {
	sc := DefaultScoreConfig()
	l := report.Load{Load1: 2, CPUs: 4, MemTotal: 10 << 30, MemAvailable: 6 << 30, Users: 3}
	cases := []struct {
		by   By
		want float64
	}{
		{ByCPU, 0.5},
		{ByMem, -6}, // GiB free, most first
		{ByCombined, 1*0.5 + 0.5*0.4 + 0.02*3},
	}
	for _, c := range cases {
		if got := Score(l, sc, c.by); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Score(%s) = %v, want %v", c.by, got, c.want)
		}
	}
	// smarterSSH -m: more memory free ranks first, whatever the total.
	big := report.Load{MemTotal: 64 << 30, MemAvailable: 16 << 30} // 75 % in use, 16 GiB free
	small := report.Load{MemTotal: 8 << 30, MemAvailable: 6 << 30} // 25 % in use, 6 GiB free
	if Score(big, sc, ByMem) >= Score(small, sc, ByMem) {
		t.Errorf("by mem: 16 GiB free scores %v, not better than 6 GiB free (%v)", Score(big, sc, ByMem), Score(small, sc, ByMem))
	}
	if got := MemUsed(big); math.Abs(got-0.75) > 1e-9 {
		t.Errorf("MemUsed = %v, want 0.75", got)
	}
	// Unknown memory and zero CPUs must not divide by zero or favour a node.
	if got := Score(report.Load{Load1: 1}, sc, ByCombined); got != 1 {
		t.Errorf("Score with no CPUs/memory = %v, want 1", got)
	}
}

func snapshotOf(delta float64, scores map[string]float64) *Snapshot {
	s := &Snapshot{Built: time.Now(), Score: ScoreConfig{By: ByCPU, Delta: delta}}
	for name, sc := range scores {
		s.Nodes = append(s.Nodes, NodeStatus{
			Name: name, State: StateAlive, Candidate: true,
			Report: &report.Report{Node: name, Load: report.Load{Load1: sc, CPUs: 1}},
		})
	}
	return s
}

func TestRankOrdersAndGroupsTies(t *testing.T) {
	s := snapshotOf(0.05, map[string]float64{"a": 0.50, "b": 0.10, "c": 0.12, "d": 0.90, "e": 0.14})
	r := s.Rank("", "")
	var got []string
	for _, n := range r.Nodes {
		got = append(got, n.Name)
	}
	if fmt.Sprint(got) != "[b c e a d]" {
		t.Fatalf("order %v", got)
	}
	// b and c are within 0.05 of b; e is 0.04 from b too, so all three tie.
	for i, want := range []int{1, 1, 1, 4, 5} {
		if r.Rank(i) != want {
			t.Errorf("Rank(%d) = %d, want %d", i, r.Rank(i), want)
		}
	}
}

func TestPickSpreadsEqualNodes(t *testing.T) {
	s := snapshotOf(0.05, map[string]float64{"a": 0.10, "b": 0.11, "c": 0.12, "d": 0.90})
	r := s.Rank("", "")
	rnd := rand.New(rand.NewPCG(1, 2))
	firsts := map[string]int{}
	for range 300 {
		p := r.Pick(1, rnd)
		firsts[p[0].Name]++
	}
	for _, n := range []string{"a", "b", "c"} {
		if firsts[n] < 50 {
			t.Errorf("equal node %s picked first %d/300 times; picks %v", n, firsts[n], firsts)
		}
	}
	if firsts["d"] != 0 {
		t.Errorf("worse node d picked first %d times", firsts["d"])
	}
	// All four: d is always last.
	for range 20 {
		p := r.Pick(0, rnd)
		if len(p) != 4 || p[3].Name != "d" {
			t.Fatalf("Pick(0) = %v", p)
		}
	}
	if got := r.Pick(10, nil); len(got) != 4 {
		t.Errorf("Pick(10) returned %d nodes", len(got))
	}
}

func TestRankZeroDeltaKeepsStrictOrder(t *testing.T) {
	s := snapshotOf(0, map[string]float64{"a": 0.10, "b": 0.11})
	for range 50 {
		if p := s.Rank("", "").Pick(1, nil); p[0].Name != "a" {
			t.Fatal("with delta 0 the better node must always come first")
		}
	}
}

func TestRankFiltersPoolAndCandidates(t *testing.T) {
	s := snapshotOf(0.05, map[string]float64{"a": 0.1, "b": 0.2, "c": 0.3})
	s.Nodes[0].Pools = []string{"gpu"}
	s.Nodes[1].Candidate = false
	s.Nodes[1].Reasons = []string{"drain: drained"}
	s.Nodes[2].Collector = true
	var gpu, all int
	gpu = s.Rank("gpu", "").Len()
	all = s.Rank("", "").Len()
	if gpu > 1 || all != 2 {
		t.Errorf("gpu=%d all=%d", gpu, all)
	}
	if s.Rank("nosuchpool", "").Len() != 0 {
		t.Error("unknown pool must be empty")
	}
	if got := s.Alive("", "").Len(); got != 2 {
		t.Errorf("Alive (ignores checks, not collectors) = %d, want 2", got)
	}
}

func TestParseByAndFallback(t *testing.T) {
	for _, s := range []string{"cpu", "mem", "combined", ""} {
		if _, err := ParseBy(s); err != nil {
			t.Errorf("ParseBy(%q): %v", s, err)
		}
	}
	if _, err := ParseBy("disk"); err == nil {
		t.Error("ParseBy(disk) succeeded")
	}
	for _, s := range []string{"keep", "all", "none", ""} {
		if _, err := ParseFallback(s); err != nil {
			t.Errorf("ParseFallback(%q): %v", s, err)
		}
	}
	if _, err := ParseFallback("some"); err == nil {
		t.Error("ParseFallback(some) succeeded")
	}
}
