package herd

import (
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9 {
		t.Errorf("%s = %.12f, want %.12f", what, got, want)
	}
}

func TestExtraNeverHanded(t *testing.T) {
	h := New(Config{})
	near(t, "Extra", h.Extra("lab01", t0, t0), 0)
}

func TestDefaults(t *testing.T) {
	if got := New(Config{}).Config(); got != DefaultConfig() {
		t.Errorf("New(Config{}).Config() = %+v, want %+v", got, DefaultConfig())
	}
}

// An answer's weight is split over its names and counts fully until a
// report sampled after the hand-out arrives; from then on it decays with
// the report's age relative to the hand-out, as load1 catches up.
func TestExtraSplitsAndDecays(t *testing.T) {
	h := New(Config{Weight: 3, Decay: time.Minute})
	h.Handed([]string{"a", "b", "c"}, t0)
	near(t, "Extra(old report)", h.Extra("a", t0.Add(-time.Second), t0.Add(time.Second)), 1)
	near(t, "Extra(report at hand-out)", h.Extra("b", t0, t0), 1)
	near(t, "Extra(report 30s later)", h.Extra("a", t0.Add(30*time.Second), t0.Add(31*time.Second)), math.Exp(-0.5))
	near(t, "Extra(report 60s later)", h.Extra("a", t0.Add(time.Minute), t0.Add(time.Minute)), math.Exp(-1))
	// An older report than one already seen changes nothing.
	near(t, "Extra(report older than seen)", h.Extra("a", t0.Add(10*time.Second), t0.Add(time.Minute)), math.Exp(-1))
	near(t, "Extra(other name)", h.Extra("d", t0, t0), 0)
}

func TestExtraMixesSeenAndUnseen(t *testing.T) {
	h := New(Config{Weight: 1, Decay: time.Minute, Max: 10})
	h.Handed([]string{"a"}, t0)
	h.Handed([]string{"a"}, t0.Add(20*time.Second))
	h.Handed([]string{"a"}, t0.Add(40*time.Second))
	// A report sampled at 30 s has seen two hand-outs (30 s and 10 s
	// old), not the third.
	want := math.Exp(-0.5) + math.Exp(-10.0/60) + 1
	near(t, "Extra", h.Extra("a", t0.Add(30*time.Second), t0.Add(41*time.Second)), want)
	// At 90 s every hand-out is seen.
	want = math.Exp(-1.5) + math.Exp(-70.0/60) + math.Exp(-50.0/60)
	near(t, "Extra later", h.Extra("a", t0.Add(90*time.Second), t0.Add(90*time.Second)), want)
}

func TestForget(t *testing.T) {
	h := New(Config{Weight: 1, Decay: time.Minute, Forget: 5 * time.Minute})
	h.Handed([]string{"a"}, t0)
	near(t, "Extra before Forget", h.Extra("a", time.Time{}, t0.Add(5*time.Minute)), 1)
	near(t, "Extra after Forget without reports", h.Extra("a", time.Time{}, t0.Add(5*time.Minute+time.Second)), 0)

	h.Handed([]string{"b"}, t0)
	h.Extra("b", t0.Add(time.Second), t0.Add(time.Second))
	near(t, "Extra once the last report is older than Forget", h.Extra("b", t0.Add(time.Second), t0.Add(6*time.Minute)), 0)
}

// More unseen hand-outs than a node keeps merge without losing weight.
func TestManyUnseenHandOutsKeepTheirWeight(t *testing.T) {
	h := New(Config{Weight: 1, Max: 1000})
	for i := range 100 {
		h.Handed([]string{"a"}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	near(t, "Extra", h.Extra("a", t0.Add(-time.Second), t0.Add(time.Second)), 100)
}

// A flood of answers counts up to Max and no further, so a report or two
// later the count is as small as after a few logins.
func TestMaxBoundsAFlood(t *testing.T) {
	h := New(Config{Weight: 1, Decay: time.Minute, Max: 2})
	for i := range 10000 {
		h.Handed([]string{"a"}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	near(t, "Extra during the flood", h.Extra("a", t0.Add(-time.Second), t0.Add(10*time.Second)), 2)
	// A report 15 s after the flood began has seen the first two
	// hand-outs only (the rest were not counted).
	r := t0.Add(15 * time.Second)
	near(t, "Extra after a report", h.Extra("a", r, r), math.Exp(-15.0/60)+math.Exp(-14.999/60))
	// Room that decay made is counted again.
	h.Handed([]string{"a"}, r)
	near(t, "Extra after one more answer", h.Extra("a", r, r), 2)
}

func TestHandedOutOfOrderStaysOrdered(t *testing.T) {
	h := New(Config{Weight: 1, Decay: time.Minute})
	h.Handed([]string{"a"}, t0.Add(time.Minute))
	h.Handed([]string{"a"}, t0) // a second collector's clock, say
	near(t, "Extra", h.Extra("a", t0.Add(30*time.Second), t0.Add(time.Minute)), 1+math.Exp(-0.5))
}

func TestNoAllocationsOnTheAnswerPath(t *testing.T) {
	h := New(Config{})
	names := []string{"lab01", "lab02", "lab03"}
	h.Handed(names, t0)
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		for _, n := range names {
			h.Extra(n, now.Add(-time.Second), now)
		}
		h.Handed(names, now)
	})
	if allocs != 0 {
		t.Errorf("Extra and Handed allocate %.1f times per answer, want 0", allocs)
	}
}

// Collectors call Handed and Extra from many goroutines (one per DNS
// query); in a bubble with a fake clock the outcome is exact.
func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{Weight: 1, Decay: time.Minute, Max: 1000})
		start := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 10 {
					h.Handed([]string{"a", "b"}, time.Now())
					_ = h.Extra("a", start.Add(-time.Second), time.Now())
					time.Sleep(time.Second)
				}
			})
		}
		wg.Wait()
		// 80 answers of two names, none seen by a report: 40 each.
		near(t, "Extra(a)", h.Extra("a", start.Add(-time.Second), time.Now()), 40)
		// A report sampled after all of them: each decays by its age.
		r := time.Now()
		want := 0.0
		for i := range 10 {
			want += 8 * 0.5 * math.Exp(-(r.Sub(start.Add(time.Duration(i)*time.Second))).Seconds()/60)
		}
		near(t, "Extra(b) after a report", h.Extra("b", r, r), want)
	})
}

func BenchmarkAnswer(b *testing.B) {
	h := New(Config{})
	names := []string{"lab01", "lab02", "lab03"}
	now := t0
	for b.Loop() {
		now = now.Add(time.Millisecond)
		for _, n := range names {
			h.Extra(n, now.Add(-2*time.Second), now)
		}
		h.Handed(names, now)
	}
}

// Changed fires once for any number of hand-outs, and again at most once
// per ChangeInterval however many follow.
func TestChangedIsCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{})
		got := 0
		drain := func() {
			synctest.Wait()
			for {
				select {
				case <-h.Changed():
					got++
				default:
					return
				}
			}
		}
		h.Handed([]string{"a"}, time.Now())
		drain()
		if got != 1 {
			t.Fatalf("first hand-out: %d values on Changed, want 1", got)
		}
		for range 100 {
			h.Handed([]string{"a"}, time.Now())
			time.Sleep(ChangeInterval / 50)
		}
		drain()
		// 100 hand-outs over 2 intervals: one value per interval.
		if got < 2 || got > 4 {
			t.Errorf("100 hand-outs over %s gave %d values on Changed, want 2 to 4", 2*ChangeInterval, got)
		}
		time.Sleep(ChangeInterval)
		drain()
		n := got
		time.Sleep(10 * ChangeInterval)
		drain()
		if got != n {
			t.Errorf("%d values on Changed with nothing handed out", got-n)
		}
	})
}
