package rfc2136

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// node is a candidate lab machine 127.0.1.<i> with the given score.
func node(i int, score float64) rank.NodeStatus {
	return rank.NodeStatus{
		Name:      fmt.Sprintf("lab%02d", i),
		Addr4:     netip.AddrFrom4([4]byte{127, 0, 1, byte(i)}),
		State:     rank.StateAlive,
		Score:     score,
		Candidate: true,
	}
}

func snapOf(nodes ...rank.NodeStatus) *rank.Snapshot {
	s := &rank.Snapshot{Score: rank.DefaultScoreConfig()}
	s.Nodes = append(s.Nodes, nodes...)
	slices.SortFunc(s.Nodes, func(a, b rank.NodeStatus) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	return s
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestDecideHysteresis(t *testing.T) {
	p := Policy{Policy: rank.Policy{Top: 2}, Margin: 0.1}
	tests := []struct {
		name string
		snap *rank.Snapshot
		prev []netip.Addr
		want []netip.Addr
		keep bool
	}{
		{"first pick is the top-N", snapOf(node(1, 0.5), node(2, 0.1), node(3, 0.2), node(4, 0.9)), nil,
			addrs("127.0.1.2", "127.0.1.3"), false},
		{"small wobble keeps members", snapOf(node(1, 0.25), node(2, 0.1), node(3, 0.3), node(4, 0.9)),
			addrs("127.0.1.2", "127.0.1.3"), addrs("127.0.1.2", "127.0.1.3"), false},
		{"challenger better by more than margin replaces the worst", snapOf(node(1, 0.05), node(2, 0.1), node(3, 0.3), node(4, 0.9)),
			addrs("127.0.1.2", "127.0.1.3"), addrs("127.0.1.1", "127.0.1.2"), false},
		{"member leaving the candidates is replaced", snapOf(node(1, 0.9), node(2, 0.1), node(4, 0.8)),
			addrs("127.0.1.2", "127.0.1.3"), addrs("127.0.1.2", "127.0.1.4"), false},
		{"order in prev is ignored", snapOf(node(2, 0.1), node(3, 0.2)),
			addrs("127.0.1.3", "127.0.1.2"), addrs("127.0.1.2", "127.0.1.3"), false},
		{"fewer nodes than top", snapOf(node(3, 0.2)), nil, addrs("127.0.1.3"), false},
		{"stale address in prev is dropped", snapOf(node(2, 0.1), node(3, 0.2)),
			addrs("127.0.1.2", "127.0.1.9"), addrs("127.0.1.2", "127.0.1.3"), false},
		{"empty cluster keeps (default fallback)", snapOf(), addrs("127.0.1.2"), nil, true},
		{"nil snapshot keeps", nil, addrs("127.0.1.2"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, keep := Decide(tt.snap, tt.prev, nil, p, time.Time{})
			if keep != tt.keep || !slices.Equal(got, tt.want) {
				t.Fatalf("Decide = %v keep=%v, want %v keep=%v", got, keep, tt.want, tt.keep)
			}
		})
	}
}

func TestDecideDeterministicOnTies(t *testing.T) {
	s := snapOf(node(1, 0.2), node(2, 0.2), node(3, 0.2), node(4, 0.2))
	for range 50 {
		got, _, _ := Decide(s, nil, nil, Policy{Policy: rank.Policy{Top: 2}}, time.Time{})
		if !slices.Equal(got, addrs("127.0.1.1", "127.0.1.2")) {
			t.Fatalf("tie broken randomly: %v", got)
		}
	}
}

func TestDecideNoMarginIsExactTop(t *testing.T) {
	s := snapOf(node(1, 0.19), node(2, 0.2))
	got, _, _ := Decide(s, addrs("127.0.1.2"), nil, Policy{Policy: rank.Policy{Top: 1}, Margin: 0}, time.Time{})
	if !slices.Equal(got, addrs("127.0.1.1")) {
		t.Fatalf("got %v", got)
	}
}

func TestDecideFallback(t *testing.T) {
	down := node(1, 0.1)
	down.Candidate = false
	down.Reasons = []string{"drain: maintenance"}
	coll := node(9, 0)
	coll.Collector, coll.Candidate = true, false
	s := snapOf(down, coll)
	prev := addrs("127.0.1.3")

	if got, _, keep := Decide(s, prev, nil, Policy{Policy: rank.Policy{Top: 1, Fallback: rank.FallbackKeep}}, time.Time{}); !keep || got != nil {
		t.Errorf("keep: got %v keep=%v", got, keep)
	}
	if got, _, keep := Decide(s, prev, nil, Policy{Policy: rank.Policy{Top: 1, Fallback: rank.FallbackNone}}, time.Time{}); keep || len(got) != 0 {
		t.Errorf("none: got %v keep=%v, want delete", got, keep)
	}
	if got, _, keep := Decide(s, prev, nil, Policy{Policy: rank.Policy{Top: 1, Fallback: rank.FallbackAll}}, time.Time{}); keep || !slices.Equal(got, addrs("127.0.1.1")) {
		t.Errorf("all: got %v keep=%v, want the alive non-collector", got, keep)
	}
	// all with nobody alive at all still never blanks the name.
	if got, _, keep := Decide(snapOf(coll), prev, nil, Policy{Policy: rank.Policy{Top: 1, Fallback: rank.FallbackAll}}, time.Time{}); !keep {
		t.Errorf("all, nobody alive: got %v keep=%v, want keep", got, keep)
	}
}

func TestDecideDualStackAndPool(t *testing.T) {
	a := node(1, 0.1)
	a.Addr6 = netip.MustParseAddr("fd00::1")
	a.Pools = []string{"gpu"}
	b := node(2, 0.0)
	s := snapOf(a, b)
	got, _, _ := Decide(s, nil, nil, Policy{Policy: rank.Policy{Top: 1, Pool: "gpu"}}, time.Time{})
	if !slices.Equal(got, addrs("127.0.1.1", "fd00::1")) {
		t.Fatalf("got %v", got)
	}
}

func TestActive(t *testing.T) {
	role := Role("Example.EDU", "cslab.example.edu")
	if role != "nsupdate:example.edu./cslab.example.edu." {
		t.Fatalf("Role = %q", role)
	}
	upd := func(name, state string, roles ...string) rank.NodeStatus {
		return rank.NodeStatus{Name: name, State: state, Collector: true, Roles: roles}
	}
	tests := []struct {
		name string
		snap *rank.Snapshot
		self string
		want bool
	}{
		{"alone", snapOf(upd("dns2", rank.StateAlive, role)), "dns2", true},
		{"lower name wins", snapOf(upd("dns1", rank.StateAlive, role), upd("dns2", rank.StateAlive, role)), "dns2", false},
		{"lowest is active", snapOf(upd("dns1", rank.StateAlive, role), upd("dns2", rank.StateAlive, role)), "dns1", true},
		{"suspect still counts", snapOf(upd("dns1", rank.StateSuspect, role), upd("dns2", rank.StateAlive, role)), "dns2", false},
		{"dead one is ignored", snapOf(upd("dns1", rank.StateDead, role), upd("dns2", rank.StateAlive, role)), "dns2", true},
		{"left one is ignored", snapOf(upd("dns1", rank.StateLeft, role), upd("dns2", rank.StateAlive, role)), "dns2", true},
		{"other role is ignored", snapOf(upd("dns1", rank.StateAlive, Role("example.edu", "other.example.edu")), upd("dns2", rank.StateAlive, role)), "dns2", true},
		{"self missing from the snapshot", snapOf(upd("dns3", rank.StateAlive, role)), "dns2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Active(tt.snap, tt.self, role); got != tt.want {
				t.Fatalf("Active = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestDecideKeepHandsOutOnlyWhatMayReturn: with fallback keep the name
// holds the last live choice's machines that may come back (dead), never
// one that was drained.
func TestDecideKeepHandsOutOnlyWhatMayReturn(t *testing.T) {
	p := Policy{Policy: rank.Policy{Top: 2, Fallback: rank.FallbackKeep}}
	got, kept, _ := Decide(snapOf(node(1, 0.1), node(2, 0.2), node(3, 0.3)), nil, nil, p, time.Time{})
	if !slices.Equal(got, addrs("127.0.1.1", "127.0.1.2")) {
		t.Fatalf("live = %v", got)
	}
	dead, drained := node(1, 0.1), node(2, 0.2)
	dead.State, dead.Candidate = rank.StateDead, false
	drained.Candidate = false
	drained.Report = &report.Report{Node: drained.Name, Failing: []report.CheckResult{{Name: "drain", Reason: "disk"}}}
	got, _, keep := Decide(snapOf(dead, drained), got, kept, p, time.Time{})
	if keep || !slices.Equal(got, addrs("127.0.1.1")) {
		t.Fatalf("keep = %v (keep=%v), want only the dead lab01", got, keep)
	}
}
