package agenttest

import (
	"math"
	"math/rand/v2"
	"time"
)

// LoadWalk is the load model of the scale benchmarks, a teaching lab at
// the start of a class: load1 random-walks with σ per core per √second
// (σ = 0.1 on 4 cores moves it by 0.57 per 2 s sample), reflected at 0 and
// at four times the cores; load5 and load15 follow it as the kernel's
// exponential averages do. Not safe for concurrent use.
type LoadWalk struct {
	Load1, Load5, Load15 float64
	CPUs                 int
	sigma                float64
	rnd                  *rand.Rand
}

// NewLoadWalk starts a walk at load (all three averages) on cpus cores.
func NewLoadWalk(seed uint64, cpus int, sigmaPerCore, load float64) *LoadWalk {
	return &LoadWalk{Load1: load, Load5: load, Load15: load, CPUs: cpus, sigma: sigmaPerCore,
		rnd: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Step advances the walk by dt.
func (w *LoadWalk) Step(dt time.Duration) {
	s := dt.Seconds()
	top := 4 * float64(w.CPUs)
	w.Load1 += w.rnd.NormFloat64() * w.sigma * float64(w.CPUs) * math.Sqrt(s)
	if w.Load1 < 0 {
		w.Load1 = -w.Load1
	}
	if w.Load1 > top {
		w.Load1 = 2*top - w.Load1
	}
	w.Load5 += (w.Load1 - w.Load5) * (1 - math.Exp(-s/300))
	w.Load15 += (w.Load1 - w.Load15) * (1 - math.Exp(-s/900))
}
