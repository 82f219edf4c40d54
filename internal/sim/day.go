package sim

import "time"

// Day is the workload Run measures every policy on, exported so that it
// can be replayed on real processes: the namespace lab's class-start test
// (test/classstart_test.go) logs the same users in at the same times
// through real agents, CoreDNS and BIND resolvers, and compares what it
// measures with what Run predicts for the same Config.
type Day struct {
	// Logins are every login placed by DNS, in time order.
	Logins []DayLogin
	// Background holds each machine's background sessions (CPU-bound
	// processes DNS does not place), by start.
	Background [][]DaySpan
	// Bursts are the start times of the measured bursts.
	Bursts []time.Duration
	// TickPhase is when each machine's kernel first folds its run queue
	// into the load average (then every LoadFreq).
	TickPhase []time.Duration
	// End is when the run stops; measured logins still running then count
	// with the time they took so far.
	End time.Duration
}

// DayLogin is one user logging in through DNS.
type DayLogin struct {
	At time.Duration
	// Work is the CPU seconds of the login's one CPU-bound process.
	Work float64
	// Resolver is the caching resolver the user's machine asks (0-based).
	Resolver int
	// Burst is set for a class's logins; Measured for those the
	// slowdown counts (at or after Warmup, before Warmup+Duration).
	Burst, Measured bool
}

// DaySpan is one background session on one machine.
type DaySpan struct{ Start, End time.Duration }

// The busiest/mean sampling of a burst (Result.BusiestRatio): every
// BurstSample from the burst's start to BurstTail after its last login
// (Config.BurstSpread after the start).
const (
	BurstSample = burstSample
	BurstTail   = burstTail
)

// NewDay returns the day Run would simulate for cfg.
func NewDay(cfg Config) (*Day, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := newWorkload(&cfg)
	d := &Day{
		Logins:     make([]DayLogin, len(w.logins)),
		Background: make([][]DaySpan, len(w.background)),
		Bursts:     append([]time.Duration(nil), w.bursts...),
		TickPhase:  append([]time.Duration(nil), w.tickPhase...),
		End:        w.end,
	}
	for i, lg := range w.logins {
		d.Logins[i] = DayLogin{At: lg.at, Work: lg.work, Resolver: lg.resolver, Burst: lg.burst, Measured: lg.measured}
	}
	for i, spans := range w.background {
		for _, s := range spans {
			d.Background[i] = append(d.Background[i], DaySpan{Start: s.start, End: s.end})
		}
	}
	return d, nil
}
