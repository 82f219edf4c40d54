package sim

import (
	"math"
	"testing"
	"time"
)

// The constants are the kernel's: 1/exp(5s/1min), 1/exp(5s/5min) and
// 1/exp(5s/15min) in 11-bit fixed point, rounded.
func TestExpConstants(t *testing.T) {
	for _, c := range []struct {
		got    uint64
		window time.Duration
	}{{Exp1, time.Minute}, {Exp5, 5 * time.Minute}, {Exp15, 15 * time.Minute}} {
		want := math.Round(Fixed1 / math.Exp(LoadFreq.Seconds()/c.window.Seconds()))
		if float64(c.got) != want {
			t.Errorf("EXP for %v = %d, want %v", c.window, c.got, want)
		}
	}
}

// kernelCalcLoad is calc_load from kernel/sched/loadavg.c, transcribed
// with C's unsigned long arithmetic spelled out.
func kernelCalcLoad(load, exp, active uint64) uint64 {
	var newload uint64 = load*exp + active*(1<<11-exp)
	if active >= load {
		newload += (1 << 11) - 1
	}
	return newload / (1 << 11)
}

func TestCalcLoadIsTheKernels(t *testing.T) {
	load := uint64(0)
	// A day of a run queue going up and down, compared tick by tick.
	for i := range 17280 {
		n := uint64((i / 60) % 9) // 0..8 runnable, changing every 5 minutes
		got := CalcLoad(load, Exp1, n*Fixed1)
		want := kernelCalcLoad(load, Exp1, n*Fixed1)
		if got != want {
			t.Fatalf("tick %d: CalcLoad(%d, EXP_1, %d) = %d, kernel %d", i, load, n, got, want)
		}
		load = got
	}
}

// /proc/loadavg after one busy process starts on an idle machine: 0.08
// after the first 5 s (the kernel rounds up while rising), then
// approaching 1 − e^(−t/1min).
func TestLoad1FollowsTheDampedRunQueue(t *testing.T) {
	var l LoadAvg
	l.Tick(1)
	if l1, _, _ := l.Proc(); l1 != 0.08 {
		t.Errorf("load1 after one tick with one runnable = %v, want 0.08", l1)
	}
	l = LoadAvg{}
	for range 12 { // one minute
		l.Tick(4)
	}
	l1, l5, l15 := l.Proc()
	if want := 4 * (1 - math.Exp(-1)); math.Abs(l1-want) > 0.02 {
		t.Errorf("load1 after 1 min of 4 runnable = %v, want %.3f ± 0.02", l1, want)
	}
	if want := 4 * (1 - math.Exp(-1.0/5)); math.Abs(l5-want) > 0.02 {
		t.Errorf("load5 = %v, want %.3f ± 0.02", l5, want)
	}
	if want := 4 * (1 - math.Exp(-1.0/15)); math.Abs(l15-want) > 0.02 {
		t.Errorf("load15 = %v, want %.3f ± 0.02", l15, want)
	}
	for range 720 { // an hour: the average reaches the run queue
		l.Tick(3)
	}
	if l1, _, _ := l.Proc(); l1 != 3 {
		t.Errorf("load1 after an hour of 3 runnable = %v, want 3", l1)
	}
	for range 12 {
		l.Tick(0)
	}
	if l1, _, _ := l.Proc(); math.Abs(l1-3*math.Exp(-1)) > 0.02 {
		t.Errorf("load1 a minute after the run queue emptied = %v, want %.3f ± 0.02", l1, 3*math.Exp(-1))
	}
}
