package sim

import (
	"slices"
	"testing"
	"time"
)

func TestEngineRunsInTimeThenScheduleOrder(t *testing.T) {
	var e Engine
	var got []string
	add := func(at time.Duration, name string) { e.At(at, func() { got = append(got, name) }) }
	add(3*time.Second, "c")
	add(time.Second, "a1")
	add(2*time.Second, "b")
	add(time.Second, "a2") // same instant as a1, scheduled later: runs later
	e.Run(10 * time.Second)
	if want := []string{"a1", "a2", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
	if e.Now() != 10*time.Second {
		t.Errorf("clock at %v after Run(10s), want 10s", e.Now())
	}
}

func TestEngineStopsAtUntilAndKeepsLaterEvents(t *testing.T) {
	var e Engine
	var at []time.Duration
	var tick func()
	tick = func() {
		at = append(at, e.Now())
		e.After(time.Second, tick)
	}
	e.At(0, tick)
	e.Run(3 * time.Second)
	if want := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second}; !slices.Equal(at, want) {
		t.Errorf("ticks at %v, want %v", at, want)
	}
	if e.Pending() != 1 {
		t.Errorf("%d events pending, want the next tick", e.Pending())
	}
	e.Run(5 * time.Second)
	if len(at) != 6 {
		t.Errorf("%d ticks after Run(5s), want 6", len(at))
	}
}

func TestEngineNeverGoesBack(t *testing.T) {
	var e Engine
	var when time.Duration = -1
	e.At(5*time.Second, func() {
		e.At(time.Second, func() { when = e.Now() }) // in the past: runs now
	})
	e.Run(time.Minute)
	if when != 5*time.Second {
		t.Errorf("an event scheduled in the past ran at %v, want 5s", when)
	}
}
