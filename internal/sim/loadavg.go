package sim

import "time"

// The kernel's fixed-point load average (include/linux/sched/loadavg.h).
const (
	// FShift is the number of bits of precision.
	FShift = 11
	// Fixed1 is 1.0 in fixed point.
	Fixed1 = 1 << FShift
	// Exp1, Exp5 and Exp15 are 1/exp(5s/1min), 1/exp(5s/5min) and
	// 1/exp(5s/15min) in fixed point.
	Exp1  = 1884
	Exp5  = 2014
	Exp15 = 2037
	// LoadFreq is how often the kernel folds the run queue into the
	// averages (5 s; the kernel adds one tick, which this model leaves out).
	LoadFreq = 5 * time.Second
)

// CalcLoad is kernel/sched/loadavg.c's calc_load: the exponentially damped
// average load·exp + active·(Fixed1 − exp), rounded up while the load
// rises. active is the number of runnable tasks times Fixed1.
func CalcLoad(load, exp, active uint64) uint64 {
	newload := load*exp + active*(Fixed1-exp)
	if active >= load {
		newload += Fixed1 - 1
	}
	return newload / Fixed1
}

// LoadAvg is one machine's avenrun[]: the 1, 5 and 15 minute averages.
type LoadAvg [3]uint64

// Tick folds the current number of runnable tasks into the averages, as
// calc_global_load does every LoadFreq.
func (l *LoadAvg) Tick(active int) {
	a := uint64(max(active, 0)) * Fixed1
	l[0] = CalcLoad(l[0], Exp1, a)
	l[1] = CalcLoad(l[1], Exp5, a)
	l[2] = CalcLoad(l[2], Exp15, a)
}

// Proc returns the three averages as /proc/loadavg prints them (two
// decimals, rounded: LOAD_INT and LOAD_FRAC of avenrun + FIXED_1/200) and
// as the agent parses them.
func (l *LoadAvg) Proc() (load1, load5, load15 float64) {
	f := func(x uint64) float64 {
		x += Fixed1 / 200
		i := x >> FShift
		frac := ((x & (Fixed1 - 1)) * 100) >> FShift
		return float64(i*100+frac) / 100 // as strconv parses "%d.%02d"
	}
	return f(l[0]), f(l[1]), f(l[2])
}
