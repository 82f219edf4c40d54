// Package sim is a deterministic discrete-event simulation of a lab behind
// a DNS name: machines with cores and background load, logins arriving as a
// Poisson process plus class-start bursts, the kernel's load average,
// agents sampling and gossiping it, resolvers caching answers for the TTL,
// and clients that take the first address. Placement policies are compared
// side by side on the same workload; the peerload policies rank with the
// project's real score, ranking, selection and fallback code.
package sim

import (
	"container/heap"
	"time"
)

// Engine runs events in time order; events at the same instant run in the
// order they were scheduled, so a run depends on nothing but its inputs.
type Engine struct {
	now time.Duration
	seq uint64
	q   eventQueue
}

type event struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = event{}
	*q = old[:len(old)-1]
	return e
}

// Now is the simulated time since the start of the run.
func (e *Engine) Now() time.Duration { return e.now }

// At schedules fn at t; a time in the past means now (time never runs
// backwards).
func (e *Engine) At(t time.Duration, fn func()) {
	t = max(t, e.now)
	e.seq++
	heap.Push(&e.q, event{at: t, seq: e.seq, fn: fn})
}

// After schedules fn d after now.
func (e *Engine) After(d time.Duration, fn func()) { e.At(e.now+d, fn) }

// Run executes every event due at or before until, in order, then leaves
// the clock at until. Events scheduled later stay queued.
func (e *Engine) Run(until time.Duration) {
	for len(e.q) > 0 && e.q[0].at <= until {
		ev := heap.Pop(&e.q).(event)
		e.now = ev.at
		ev.fn()
	}
	e.now = max(e.now, until)
}

// Pending is the number of queued events.
func (e *Engine) Pending() int { return len(e.q) }
