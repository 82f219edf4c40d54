package sim

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Random streams: every purpose draws from its own PCG stream of the seed,
// so that changing one (say, a policy's choices) never shifts another (the
// workload every policy is measured on).
const (
	streamWorkload uint64 = iota + 1
	streamPolicy
	streamGossip
)

func newRand(seed, stream uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, stream)) }

// login is one user logging in through DNS.
type login struct {
	at       time.Duration
	work     float64 // CPU seconds
	resolver int
	burst    bool
	measured bool
}

// span is one background session: a CPU-bound process on one machine.
type span struct{ start, end time.Duration }

// workload is everything that happens regardless of placement: the same
// for every policy, so that they are compared on identical days.
type workload struct {
	logins []login
	// background holds each machine's background sessions by start.
	background [][]span
	// bursts are the start times of measured bursts.
	bursts []time.Duration
	// samplePhase and tickPhase desynchronise the machines' agents and
	// kernels.
	samplePhase, tickPhase []time.Duration
	end                    time.Duration
}

func newWorkload(c *Config) *workload {
	rnd := newRand(c.Seed, streamWorkload)
	measureEnd := c.Warmup + c.Duration
	w := &workload{end: measureEnd + c.Tail}
	exp := func(mean time.Duration) time.Duration {
		return time.Duration(rnd.ExpFloat64() * float64(mean))
	}
	newLogin := func(at time.Duration, burst bool) login {
		return login{
			at:       at,
			work:     rnd.ExpFloat64() * c.SessionWork.Seconds(),
			resolver: rnd.IntN(c.Resolvers),
			burst:    burst,
			measured: at >= c.Warmup && at < measureEnd,
		}
	}

	// Logins outside bursts: a Poisson process.
	mean := time.Duration(float64(time.Second) / c.loginRate())
	for t := exp(mean); t < w.end; t += exp(mean) {
		w.logins = append(w.logins, newLogin(t, false))
	}
	// Bursts: a class logs in over BurstSpread every BurstEvery.
	if c.Burst > 0 {
		for b := c.BurstEvery; b < w.end; b += c.BurstEvery {
			if b >= c.Warmup && b < measureEnd {
				w.bursts = append(w.bursts, b)
			}
			for range c.Burst {
				w.logins = append(w.logins, newLogin(b+time.Duration(rnd.Float64()*float64(c.BurstSpread)), true))
			}
		}
	}
	sortLogins(w.logins)

	// Background: each machine's rate is drawn uniformly between none and
	// twice the mean (some machines are popular), normalised so the lab's
	// total is exact. Sessions already running at the start are a stationary
	// draw (Poisson count, memoryless remaining life).
	weights := make([]float64, c.Machines)
	sum := 0.0
	for i := range weights {
		weights[i] = 2 * rnd.Float64()
		sum += weights[i]
	}
	w.background = make([][]span, c.Machines)
	for i := range c.Machines {
		m := c.backgroundMean() * weights[i] * float64(c.Machines) / sum
		var spans []span
		for range poisson(rnd, m) {
			spans = append(spans, span{0, exp(c.BackgroundLife)})
		}
		if m > 0 {
			gap := time.Duration(float64(c.BackgroundLife) / m)
			for t := exp(gap); t < w.end; t += exp(gap) {
				spans = append(spans, span{t, t + exp(c.BackgroundLife)})
			}
		}
		w.background[i] = spans
	}

	w.samplePhase = make([]time.Duration, c.Machines)
	w.tickPhase = make([]time.Duration, c.Machines)
	for i := range c.Machines {
		w.samplePhase[i] = time.Duration(rnd.Int64N(int64(c.Interval)))
		w.tickPhase[i] = time.Duration(rnd.Int64N(int64(LoadFreq)))
	}
	return w
}

// poisson draws a Poisson-distributed count with the given mean (Knuth's
// method for the small means of a lab, a normal approximation beyond).
func poisson(rnd *rand.Rand, mean float64) int {
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rnd.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rnd.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func sortLogins(ls []login) {
	// Stable, so equal times keep their generation order.
	slices.SortStableFunc(ls, func(a, b login) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return 0
	})
}
