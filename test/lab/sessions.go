package lab

import (
	"math"
	"slices"
	"time"

	"github.com/peerload/peerload/internal/sim"
)

// The session model of the class-start test: what runs on each lab machine
// and so what its fake /proc shows. It is written apart from internal/sim
// on purpose, from the kernel's and the simulator's definitions, so that
// the lab checks the simulator instead of repeating it.

// KernelTick is how often the kernel folds the run queue into the load
// averages (LOAD_FREQ, 5 s).
const KernelTick = 5 * time.Second

// loadDecay is e^(−5 s/1 min), e^(−5 s/5 min) and e^(−5 s/15 min): what is
// left of the 1, 5 and 15 minute averages after one KernelTick.
var loadDecay = [3]float64{math.Exp(-5.0 / 60), math.Exp(-5.0 / 300), math.Exp(-5.0 / 900)}

// FoldLoad is one kernel tick of the load averages with n runnable tasks:
// load·e^(−5/T) + n·(1 − e^(−5/T)) for T = 1, 5 and 15 minutes.
func FoldLoad(load [3]float64, n int) [3]float64 {
	for i, e := range loadDecay {
		load[i] = load[i]*e + float64(n)*(1-e)
	}
	return load
}

// Session is one CPU-bound process a login started on a machine.
type Session struct {
	// Start is when it started, End when it finished (0 while running).
	Start, End time.Duration
	// Work is the CPU seconds it needs; alone on a core it takes that long.
	Work float64
	// Measured sessions count in the mean slowdown (sim.DayLogin.Measured).
	Measured bool
	// finishV is the machine's CPU time per process at which it is done.
	finishV float64
}

// Slowdown is the session's runtime ÷ its work, at least 1; for one still
// running at now, the time it took so far ÷ its work (a lower bound that
// may be below 1), as the simulator counts both.
func (s *Session) Slowdown(now time.Duration) float64 {
	if s.End == 0 {
		return (now - s.Start).Seconds() / s.Work
	}
	return max(1, (s.End-s.Start).Seconds()/s.Work)
}

// completionEpsilon is the CPU time (seconds) below which a session counts
// as done, absorbing float rounding.
const completionEpsilon = 1e-6

// Machine is one machine's run queue and load averages. Its CPU-bound
// processes share its cores (processor sharing: with n of them on c
// cores each runs at min(1, c/n) of a core, so a session's remaining work
// drains at that rate), and every KernelTick, from its own phase on, the
// load averages move toward n as the kernel's calc_load moves them.
// Background processes have a lifetime, not an amount of work: they come
// and go with AddBackground. Time only moves forward, with AdvanceTo.
type Machine struct {
	Cores int

	load     [3]float64
	bg       int
	running  []*Session
	v        float64 // CPU seconds each runnable process has had
	now      time.Duration
	nextTick time.Duration
}

// NewMachine is an idle machine at time 0 (load averages 0, as after a
// boot) whose kernel first ticks at tickPhase.
func NewMachine(cores int, tickPhase time.Duration) *Machine {
	return &Machine{Cores: max(cores, 1), nextTick: tickPhase}
}

// Runnable is the run queue: background processes and sessions.
func (m *Machine) Runnable() int { return m.bg + len(m.running) }

// Load is the 1, 5 and 15 minute load averages now.
func (m *Machine) Load() [3]float64 { return m.load }

// Now is the time the machine has been advanced to.
func (m *Machine) Now() time.Duration { return m.now }

// Running returns the sessions still running.
func (m *Machine) Running() []*Session { return slices.Clone(m.running) }

// rate is the share of a core each runnable process gets.
func (m *Machine) rate() float64 {
	if n := m.Runnable(); n > m.Cores {
		return float64(m.Cores) / float64(n)
	}
	return 1
}

// AdvanceTo runs the machine up to t (no earlier than Now): sessions
// finish and the kernel ticks in time order, a finish before a tick at the
// same instant.
func (m *Machine) AdvanceTo(t time.Duration) {
	for m.now < t || m.nextTick <= t {
		next, tick := t, false
		if m.nextTick <= next {
			next, tick = m.nextTick, true
		}
		rate := m.rate()
		if len(m.running) > 0 {
			minV := math.Inf(1)
			for _, s := range m.running {
				minV = min(minV, s.finishV)
			}
			done := m.now + time.Duration(math.Ceil(max(0, minV-m.v)/rate*1e9))
			if done < next {
				next, tick = done, false
			}
		}
		m.v += rate * (next - m.now).Seconds()
		m.now = next
		m.finish()
		if tick {
			m.load = FoldLoad(m.load, m.Runnable())
			m.nextTick += KernelTick
		}
	}
}

// finish ends the sessions whose work is done.
func (m *Machine) finish() {
	kept := m.running[:0]
	for _, s := range m.running {
		if s.finishV-m.v > completionEpsilon {
			kept = append(kept, s)
			continue
		}
		s.End = m.now
	}
	clear(m.running[len(kept):])
	m.running = kept
}

// Place starts a session of work CPU seconds now.
func (m *Machine) Place(work float64, measured bool) *Session {
	s := &Session{Start: m.now, Work: work, Measured: measured, finishV: m.v + work}
	m.running = append(m.running, s)
	return s
}

// AddBackground starts (delta > 0) or ends (delta < 0) background
// processes now.
func (m *Machine) AddBackground(delta int) { m.bg = max(0, m.bg+delta) }

// Model is one arm of the class-start test: a lab of Machines living one
// simulated day (sim.NewDay) — its background sessions and kernel phases —
// while the test places the day's logins wherever DNS sent them. It keeps
// what the simulator measures: busiest/mean during every burst and every
// placed session for the slowdown.
type Model struct {
	Machines []*Machine

	day    *sim.Day
	now    time.Duration
	events []modelEvent
	next   int
	// ratios holds, per burst of day.Bursts, busiest/mean at each sample.
	ratios   [][]float64
	sessions []*Session
}

// modelEvent is a background process starting or ending on a machine, or
// (machine −1) a busiest/mean sample of burst delta.
type modelEvent struct {
	at      time.Duration
	machine int
	delta   int
}

// NewModel is the day's lab with cores per machine at time 0; spread is
// how long a burst's logins take to arrive (sim.Config.BurstSpread).
func NewModel(day *sim.Day, cores int, spread time.Duration) *Model {
	m := &Model{day: day, ratios: make([][]float64, len(day.Bursts))}
	for i := range day.Background {
		m.Machines = append(m.Machines, NewMachine(cores, day.TickPhase[i]))
		for _, s := range day.Background[i] {
			m.events = append(m.events, modelEvent{s.Start, i, +1}, modelEvent{s.End, i, -1})
		}
	}
	for b, start := range day.Bursts {
		for t := start; t <= start+spread+sim.BurstTail; t += sim.BurstSample {
			m.events = append(m.events, modelEvent{t, -1, b})
		}
	}
	// Background changes before samples at one instant, as the
	// simulator schedules them.
	slices.SortStableFunc(m.events, func(a, b modelEvent) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		switch {
		case a.machine >= 0 && b.machine < 0:
			return -1
		case a.machine < 0 && b.machine >= 0:
			return 1
		}
		return 0
	})
	return m
}

// Now is the time the model has been advanced to.
func (m *Model) Now() time.Duration { return m.now }

// AdvanceTo runs every machine, background change and sample up to t.
func (m *Model) AdvanceTo(t time.Duration) {
	for m.next < len(m.events) && m.events[m.next].at <= t {
		e := m.events[m.next]
		m.next++
		if e.machine >= 0 {
			mc := m.Machines[e.machine]
			mc.AdvanceTo(e.at)
			mc.AddBackground(e.delta)
			continue
		}
		busiest, total := 0, 0
		for _, mc := range m.Machines {
			mc.AdvanceTo(e.at)
			n := mc.Runnable()
			busiest = max(busiest, n)
			total += n
		}
		if total > 0 {
			m.ratios[e.delta] = append(m.ratios[e.delta], float64(busiest)*float64(len(m.Machines))/float64(total))
		}
	}
	for _, mc := range m.Machines {
		mc.AdvanceTo(t)
	}
	m.now = max(m.now, t)
}

// Place starts a login's session on machine i at the model's time.
func (m *Model) Place(i int, work float64, measured bool) *Session {
	s := m.Machines[i].Place(work, measured)
	m.sessions = append(m.sessions, s)
	return s
}

// BurstRatios are busiest/mean at every sample of burst b (sim.Day.Bursts
// order) taken so far.
func (m *Model) BurstRatios(b int) []float64 { return slices.Clone(m.ratios[b]) }

// MeanSlowdown is the mean slowdown at the model's time of the measured
// sessions placed, and how many there are.
func (m *Model) MeanSlowdown() (float64, int) {
	sum, n := 0.0, 0
	for _, s := range m.sessions {
		if s.Measured {
			sum += s.Slowdown(m.now)
			n++
		}
	}
	if n == 0 {
		return 0, 0
	}
	return sum / float64(n), n
}

// Unfinished counts the measured sessions still running.
func (m *Model) Unfinished() int {
	n := 0
	for _, s := range m.sessions {
		if s.Measured && s.End == 0 {
			n++
		}
	}
	return n
}

// Mean is the mean of xs (0 for none).
func Mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
