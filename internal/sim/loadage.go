package sim

import (
	"math"
	"time"
)

// ageReader reads a machine's load1 by its age (Dahlin 2000): load1 is the
// run queue q damped with a one-minute time constant, so two reports of it
// Δ apart give the run queue that moved the average between them,
//
//	q = (L₂ − L₁·e^(−Δ/τ)) / (1 − e^(−Δ/τ)),
//
// and at now, age a after the latest report, the kernel's average has moved
// on to q + (L₂ − q)·e^(−a/τ). The earlier report is the newest at least
// ageSpan older than the latest, so that the two straddle several of the
// kernel's 5 s updates and its two-decimal rounding does not dominate.
type ageReader struct {
	tau   float64 // seconds
	nodes []ageNode
}

// ageSpan is the least time between the two reports a trend is read from;
// ageRing how many reports a machine keeps to find one that old.
const (
	ageSpan = 10 * time.Second
	ageRing = 8
)

type ageSample struct {
	load1 float64
	at    time.Duration
}

type ageNode struct {
	ring [ageRing]ageSample
	n    int // samples held, newest at ring[(n-1)%ageRing]
}

func newAgeReader(machines int, tau time.Duration) *ageReader {
	return &ageReader{tau: tau.Seconds(), nodes: make([]ageNode, machines)}
}

func (a *ageReader) observe(i int, load1 float64, r time.Duration) {
	n := &a.nodes[i]
	n.ring[n.n%ageRing] = ageSample{load1, r}
	n.n++
}

// runQueue is the run queue machine i's last reports imply, and the latest
// report; ok is false without two reports ageSpan apart.
func (a *ageReader) runQueue(i int) (q float64, last ageSample, ok bool) {
	n := &a.nodes[i]
	if n.n == 0 {
		return 0, ageSample{}, false
	}
	last = n.ring[(n.n-1)%ageRing]
	for k := n.n - 2; k >= 0 && k > n.n-1-ageRing; k-- {
		prev := n.ring[k%ageRing]
		d := (last.at - prev.at).Seconds()
		if d < ageSpan.Seconds() {
			continue
		}
		e := math.Exp(-d / a.tau)
		return max(0, (last.load1-prev.load1*e)/(1-e)), last, true
	}
	return last.load1, last, false
}

// load1 is machine i's load average extrapolated to now.
func (a *ageReader) load1(i int, now time.Duration) float64 {
	q, last, ok := a.runQueue(i)
	if !ok {
		return last.load1
	}
	return q + (last.load1-q)*math.Exp(-(now-last.at).Seconds()/a.tau)
}
