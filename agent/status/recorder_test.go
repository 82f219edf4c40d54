package status

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// node is an alive candidate with a report of load1.
func node(name string, load1 float64, failing ...report.CheckResult) rank.NodeStatus {
	return rank.NodeStatus{
		Name:  name,
		State: rank.StateAlive,
		Report: &report.Report{Node: name, Load: report.Load{Load1: load1, Load5: load1, Load15: load1, CPUs: 4,
			MemTotal: 16 << 30, MemAvailable: 12 << 30, Users: 2}, Failing: failing},
		Score:     load1 / 4,
		Candidate: len(failing) == 0,
	}
}

func with(n rank.NodeStatus, state string) rank.NodeStatus {
	n.State = state
	n.Candidate = false
	return n
}

func snapAt(at time.Time, nodes ...rank.NodeStatus) *rank.Snapshot {
	return &rank.Snapshot{Built: at, Self: "lab1", Score: rank.DefaultScoreConfig(), Nodes: nodes}
}

func fail(name, reason string) report.CheckResult {
	return report.CheckResult{Name: name, Reason: reason}
}

func eventStrings(evs []Event) []string {
	var out []string
	for i := len(evs) - 1; i >= 0; i-- { // oldest first
		e := evs[i]
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", e.Kind, e.Node, e.Text)))
	}
	return out
}

func TestEventsFromConsecutiveSnapshots(t *testing.T) {
	r := NewRecorder(Options{})
	a, b := node("lab1", 0.1), node("lab2", 0.2)
	steps := []struct {
		nodes []rank.NodeStatus
		want  []string
	}{
		{[]rank.NodeStatus{a}, nil}, // baseline: no events
		{[]rank.NodeStatus{a, b}, []string{"joined lab2"}},
		{[]rank.NodeStatus{a, with(b, rank.StateSuspect)}, []string{"suspect lab2 misses probes"}},
		{[]rank.NodeStatus{a, with(b, rank.StateDead)}, []string{"dead lab2"}},
		{[]rank.NodeStatus{a, b}, []string{"alive lab2 was dead"}},
		{[]rank.NodeStatus{node("lab1", 0.1, fail("drain", "disk swap")), b}, []string{"drained lab1 disk swap"}},
		// A new reason for a check that already fails is no event.
		{[]rank.NodeStatus{node("lab1", 0.1, fail("drain", "disk swap 2"), fail("tmp", "/tmp 97% full")), b},
			[]string{"check-failing lab1 tmp: /tmp 97% full"}},
		{[]rank.NodeStatus{a, b}, []string{"undrained lab1", "check-recovered lab1 tmp"}},
		{[]rank.NodeStatus{a, with(b, rank.StateLeft)}, []string{"left lab2"}},
		{[]rank.NodeStatus{a}, nil}, // a left machine forgotten: no event
		{[]rank.NodeStatus{}, []string{"left lab1 no longer listed"}},
		{[]rank.NodeStatus{node("lab1", 0.1, fail("drain", "x"))}, []string{"joined lab1", "drained lab1 x"}},
	}
	seen := 0
	for i, st := range steps {
		r.Observe(snapAt(t0.Add(time.Duration(i)*time.Second), st.nodes...))
		all := r.Events(0)
		got := eventStrings(all[:len(all)-seen])
		seen = len(all)
		if !slicesEqual(got, st.want) {
			t.Fatalf("step %d: events %q, want %q", i, got, st.want)
		}
		for _, e := range all[:len(got)] {
			if !e.Time.Equal(t0.Add(time.Duration(i) * time.Second)) {
				t.Fatalf("step %d: event %v at %s, want the snapshot's time", i, e, e.Time)
			}
		}
	}
}

func TestObserveIgnoresOlderAndRepeatedSnapshots(t *testing.T) {
	r := NewRecorder(Options{})
	s := snapAt(t0, node("lab1", 1))
	r.Observe(s)
	r.Observe(s)
	r.Observe(snapAt(t0.Add(-time.Second), node("lab1", 5), node("lab2", 1)))
	if evs := r.Events(0); len(evs) != 0 {
		t.Fatalf("events %v from a repeated and an older snapshot", evs)
	}
	if h := r.History("lab1", t0.Add(-time.Hour)); len(h) != 1 || h[0].V.Load1 != 1 {
		t.Fatalf("history %+v, want the one point of load 1", h)
	}
}

func TestEventLogIsBounded(t *testing.T) {
	r := NewRecorder(Options{Events: 3})
	for i := range 5 {
		r.Record(Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: UpdateFailed, Text: fmt.Sprint(i)})
	}
	got := eventStrings(r.Events(0))
	if want := []string{"update-failed  2", "update-failed  3", "update-failed  4"}; !slicesEqual(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if got := r.Events(1); len(got) != 1 || got[0].Text != "4" {
		t.Fatalf("newest event %v, want 4", got)
	}
}

func TestRecordStampsNow(t *testing.T) {
	r := NewRecorder(Options{Now: func() time.Time { return t0 }})
	r.Record(Event{Kind: UpdateFailed, Text: "REFUSED"})
	if e := r.Events(0)[0]; !e.Time.Equal(t0) || !e.Bad() {
		t.Fatalf("event %+v", e)
	}
}

func TestClusterSeries(t *testing.T) {
	r := NewRecorder(Options{})
	r.Observe(snapAt(t0, node("a", 1), node("b", 3), node("c", 2, fail("drain", "x")), with(node("d", 9), rank.StateDead),
		rank.NodeStatus{Name: "dns", State: rank.StateAlive, Collector: true}))
	got := r.Cluster(t0.Add(-time.Minute))
	if len(got) != 1 {
		t.Fatalf("cluster points %+v", got)
	}
	want := ClusterPoint{Candidates: 2, Members: 3, Median: 2, Busiest: 3}
	if got[0].V != want {
		t.Fatalf("cluster point %+v, want %+v (the dead machine and the collector left out)", got[0].V, want)
	}
	if h := r.History("dns", t0.Add(-time.Minute)); len(h) != 0 {
		t.Fatalf("a collector has no load history: %v", h)
	}
}

func TestForgetsMachinesAfterKeep(t *testing.T) {
	r := NewRecorder(Options{Keep: time.Minute})
	r.Observe(snapAt(t0, node("a", 1), node("b", 1)))
	r.Observe(snapAt(t0.Add(30*time.Second), node("a", 1)))
	if r.History("b", t0) == nil {
		t.Fatal("b forgotten before Keep passed")
	}
	r.Observe(snapAt(t0.Add(2*time.Minute), node("a", 1)))
	if r.History("b", t0) != nil {
		t.Fatal("b still held after Keep passed")
	}
}

func TestFollowObservesChangesAndEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := agenttest.NewSource(nil)
		src.Set(snapAt(time.Now(), node("a", 1)))
		r := NewRecorder(Options{Interval: 2 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { r.Follow(ctx, src); close(done) }()
		defer func() { cancel(); <-done }()
		synctest.Wait()
		// A change is observed at once, without waiting for the tick.
		src.Set(snapAt(time.Now(), node("a", 1), node("b", 1)))
		synctest.Wait()
		if evs := r.Events(0); len(evs) != 1 || evs[0].Kind != Joined {
			t.Fatalf("events %v, want b's join at once", evs)
		}
		// The agent rebuilds its snapshot without announcing it when
		// nothing changed enough; each tick (at 2, 4, 6 s) records the one
		// published half an interval before.
		for i := range 3 {
			time.Sleep(time.Second)
			src.Replace(snapAt(time.Now(), node("a", float64(2+i)), node("b", 1)))
			time.Sleep(time.Second)
		}
		synctest.Wait()
		h := r.History("a", time.Time{})
		var loads []float32
		for _, p := range h {
			loads = append(loads, p.V.Load1)
		}
		// Slot 0 holds the snapshot of 1 s (it replaced those of 0 s).
		if !slices.Equal(loads, []float32{2, 3, 4}) {
			t.Fatalf("loads of a %v, want one point per interval: 2 3 4", loads)
		}
	})
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fillRecorder feeds n machines for a full hour of 2 s snapshots.
func fillRecorder(n int) *Recorder {
	r := NewRecorder(Options{})
	nodes := make([]rank.NodeStatus, n)
	for i := range nodes {
		nodes[i] = node(fmt.Sprintf("lab%04d", i), float64(i%8))
	}
	for i := range 1800 {
		s := snapAt(t0.Add(time.Duration(i)*2*time.Second), nodes...)
		r.Observe(s)
	}
	return r
}

// TestHistoryMemory measures the recorder's steady-state memory (rings
// full, one hour of 2 s snapshots) and keeps it under 20 KB a machine. The
// figures go to BENCHMARKS.md: go test -run HistoryMemory -v ./agent/status/
func TestHistoryMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("feeds an hour of snapshots")
	}
	for _, n := range []int{100, 1000} {
		before := heapInUse()
		r := fillRecorder(n)
		after := heapInUse()
		// The snapshot's nodes belong to the agent, not to the history.
		used := int64(after) - int64(before)
		per := used / int64(n)
		t.Logf("history of %d machines: %d KiB (%d bytes a machine)", n, used>>10, per)
		if per > 20<<10 {
			t.Errorf("%d bytes a machine, want at most 20 KiB", per)
		}
		runtime.KeepAlive(r)
	}
}

// BenchmarkObserve is the recorder's cost per snapshot (every interval
// and on every change) with rings already full.
func BenchmarkObserve(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("machines=%d", n), func(b *testing.B) {
			r := fillRecorder(n)
			nodes := r.Snapshot().Nodes
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r.Observe(snapAt(t0.Add(time.Hour+time.Duration(i)*2*time.Second), nodes...))
			}
		})
	}
}

func slicesEqual(a, b []string) bool { return strings.Join(a, "\n") == strings.Join(b, "\n") }
