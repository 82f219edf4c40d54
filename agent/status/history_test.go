package status

import (
	"slices"
	"testing"
	"time"
)

func TestRingKeepsNewestSlots(t *testing.T) {
	r := newRing[int](time.Second, 4)
	for s := int64(10); s < 16; s++ {
		r.put(s, int(s))
	}
	var got []int64
	r.each(0, func(slot int64, v int) {
		if int64(v) != slot {
			t.Errorf("slot %d holds %d", slot, v)
		}
		got = append(got, slot)
	})
	if want := []int64{12, 13, 14, 15}; !slices.Equal(got, want) {
		t.Fatalf("slots %v, want %v", got, want)
	}
	r.put(11, 11) // older than the ring holds: dropped
	r.put(13, 130)
	got = got[:0]
	r.each(14, func(slot int64, v int) { got = append(got, slot) })
	if want := []int64{14, 15}; !slices.Equal(got, want) {
		t.Fatalf("from 14: %v, want %v", got, want)
	}
	if r.pts[r.index(13)] != 130 {
		t.Fatalf("slot 13 not overwritten")
	}
}

func TestRingClearsSkippedSlots(t *testing.T) {
	r := newRing[int](time.Second, 8)
	for s := int64(0); s < 8; s++ {
		r.put(s, 1)
	}
	r.put(11, 2) // slots 8..10 were never observed: a gap, not stale values
	var got []int64
	r.each(0, func(slot int64, v int) { got = append(got, slot) })
	if want := []int64{4, 5, 6, 7, 11}; !slices.Equal(got, want) {
		t.Fatalf("slots %v, want %v", got, want)
	}
	r.put(100, 3) // more than the ring skipped: only the new point
	if r.count() != 1 {
		t.Fatalf("%d slots set after a long pause, want 1", r.count())
	}
}

func TestRingNegativeTimes(t *testing.T) {
	r := newRing[int](time.Second, 3)
	if s := r.slot(time.Unix(0, -1)); s != -1 {
		t.Fatalf("slot of -1ns = %d, want -1", s)
	}
	r.put(-2, 1)
	r.put(-1, 2)
	if r.count() != 2 {
		t.Fatalf("count %d", r.count())
	}
}

// testLayout is 1 s points for 10 s, 5 s means for 60 s.
var testLayout = layout{fine: time.Second, fineN: 10, coarse: 5 * time.Second, coarseN: 12}

func TestSeriesDownsamples(t *testing.T) {
	s := newSeries[Point](testLayout)
	t0 := time.Unix(1000, 0)
	// 30 s of one point a second, load1 = the second.
	for i := range 30 {
		s.add(t0.Add(time.Duration(i)*time.Second), Point{Load1: float32(i), Candidate: float32(i % 2)})
	}
	got := s.since(t0)
	// Coarse means for the steps before the fine ring's 10 s, then the
	// fine points of seconds 20..29.
	var times []int64
	for _, p := range got {
		times = append(times, p.Time.Unix()-t0.Unix())
	}
	if want := []int64{0, 5, 10, 15, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29}; !slices.Equal(times, want) {
		t.Fatalf("times %v, want %v", times, want)
	}
	if got[0].V.Load1 != 2 || got[1].V.Load1 != 7 || got[3].V.Load1 != 17 {
		t.Fatalf("coarse means %v %v %v, want 2 7 17", got[0].V.Load1, got[1].V.Load1, got[3].V.Load1)
	}
	if got[0].V.Candidate != 0.4 || got[0].Step != 5*time.Second {
		t.Fatalf("first step: candidate fraction %v step %v, want 0.4 and 5s", got[0].V.Candidate, got[0].Step)
	}
	if got[4].V.Load1 != 20 || got[4].Step != time.Second {
		t.Fatalf("first fine point %+v", got[4])
	}
}

func TestSeriesKeepsOneHourOfSteps(t *testing.T) {
	s := newSeries[Point](testLayout)
	t0 := time.Unix(0, 0)
	for i := range 200 {
		s.add(t0.Add(time.Duration(i)*time.Second), Point{Load1: 1})
	}
	got := s.since(t0)
	// 12 full steps of 5 s (135..194 s) and the step being filled.
	if first := got[0].Time.Sub(t0); first != 135*time.Second {
		t.Fatalf("oldest point at %s, want 135s (60 s of full steps kept)", first)
	}
	// Since a time inside the fine ring: fine points only.
	if got := s.since(t0.Add(195 * time.Second)); len(got) != 5 || got[0].Step != time.Second {
		t.Fatalf("last 5 s: %d points", len(got))
	}
}

func TestSeriesLastObservationInASlotWins(t *testing.T) {
	s := newSeries[Point](testLayout)
	t0 := time.Unix(100, 0)
	s.add(t0, Point{Load1: 1})
	s.add(t0.Add(500*time.Millisecond), Point{Load1: 3})
	got := s.since(t0)
	if len(got) != 1 || got[0].V.Load1 != 3 {
		t.Fatalf("got %+v, want one point of load 3", got)
	}
	s.add(t0.Add(5*time.Second), Point{})
	s.add(t0.Add(10*time.Second), Point{}) // flushes step 5..10
	s.flush()
	var means []float32
	s.coarse.each(0, func(_ int64, v Point) { means = append(means, v.Load1) })
	if len(means) != 3 || means[0] != 2 {
		t.Fatalf("coarse means %v, want the mean of both observations (2) first", means)
	}
}

func TestChartSpanGrowsWithTheHistory(t *testing.T) {
	for _, c := range []struct{ elapsed, keep, want time.Duration }{
		{0, time.Hour, time.Minute},
		{30 * time.Second, time.Hour, time.Minute},
		{3 * time.Minute, time.Hour, 4 * time.Minute},
		{5 * time.Minute, time.Hour, 8 * time.Minute},
		{50 * time.Minute, time.Hour, time.Hour},
		{3 * time.Hour, time.Hour, time.Hour},
		{25 * time.Minute, 30 * time.Minute, 30 * time.Minute},
		{90 * time.Second, 2 * time.Minute, 2 * time.Minute},
	} {
		if got := chartSpan(c.elapsed, c.keep); got != c.want {
			t.Errorf("chartSpan(%s, %s) = %s, want %s", c.elapsed, c.keep, got, c.want)
		}
	}
	for d, want := range map[time.Duration]string{20 * time.Minute: "20 min", 15 * time.Second: "15 s", time.Hour: "1 hour"} {
		if got := minutes(d); got != want {
			t.Errorf("minutes(%s) = %q, want %q", d, got, want)
		}
	}
}
