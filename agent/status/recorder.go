// Package status keeps a short history of a peerload cluster in memory and
// serves it as a status page: every machine's state and load, a load chart
// per machine and for the cluster over the last hour, and the events
// (joins, deaths, drains, failing checks, DNS update failures) with their
// times.
//
// A Recorder is fed with the snapshots a member publishes (Observe, or
// Follow on an *agent.Agent); NewHandler serves what it holds. The history
// lives in fixed-size rings per machine, so its memory does not grow with
// time: one point per sampling interval for the last minutes, means over
// coarser steps beyond that, one hour in all. The long-term store is
// Prometheus (see the README's alerting section).
package status

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/watch"
)

// Options configures a Recorder. Zero fields take the documented defaults.
type Options struct {
	// Interval is the resolution of the recent history: the member's
	// sampling interval (default 2s).
	Interval time.Duration
	// Recent is how long points are kept at Interval resolution (default
	// 5m, at most 600 points).
	Recent time.Duration
	// Step is the resolution of the rest of the history (default 10s).
	Step time.Duration
	// Keep is how far back the history goes (default 1h).
	Keep time.Duration
	// Events is how many events are kept, oldest dropped first (default
	// 500).
	Events int
	// Now replaces time.Now (tests).
	Now func() time.Time
}

// maxFine bounds the fine ring, whatever the interval.
const maxFine = 600

// layout is the ring sizes Options come down to.
type layout struct {
	fine, coarse   time.Duration
	fineN, coarseN int
}

func (o *Options) withDefaults() Options {
	c := *o
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Recent <= 0 {
		c.Recent = 5 * time.Minute
	}
	if c.Step <= 0 {
		c.Step = 10 * time.Second
	}
	if c.Keep <= 0 {
		c.Keep = time.Hour
	}
	if c.Events <= 0 {
		c.Events = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (o *Options) layout() layout {
	return layout{
		fine:    o.Interval,
		fineN:   min(max(int(o.Recent/o.Interval), 1), maxFine),
		coarse:  o.Step,
		coarseN: max(int(o.Keep/o.Step), 1),
	}
}

// Recorder keeps the recent history and events of a cluster from the
// snapshots it observes. It is safe for concurrent use: one writer
// (Observe, Record) and any number of page readers.
type Recorder struct {
	opts   Options
	layout layout

	mu       sync.RWMutex
	snap     *rank.Snapshot // latest observed
	first    time.Time      // when the first snapshot was built
	machines map[string]*machine
	cluster  series[ClusterPoint]
	events   eventLog
	version  uint64 // grows with every change a reader could see
}

// machine is one member's history and what the event diff needs.
type machine struct {
	hist     series[Point]
	last     nodeState
	listed   bool      // in the latest snapshot
	lastSeen time.Time // snapshot time it was last listed
}

// NewRecorder returns an empty Recorder.
func NewRecorder(o Options) *Recorder {
	opts := o.withDefaults()
	l := opts.layout()
	return &Recorder{
		opts:     opts,
		layout:   l,
		machines: make(map[string]*machine),
		cluster:  newSeries[ClusterPoint](l),
	}
}

// Observe records a snapshot: a history point per alive machine with a
// report and one for the cluster, at s.Built, and the events that lead
// from the previous snapshot to this one. The first snapshot is the
// baseline: it yields no events. Snapshots older than the latest one are
// ignored.
func (r *Recorder) Observe(s *rank.Snapshot) {
	if s == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.snap == s || (r.snap != nil && s.Built.Before(r.snap.Built)) {
		return
	}
	first := r.snap == nil
	if first {
		r.first = s.Built
	}
	r.snap = s
	r.version++
	t := s.Built

	var loads []float64
	cp := ClusterPoint{}
	var evs []Event
	for i := range s.Nodes {
		n := &s.Nodes[i]
		m := r.machines[n.Name]
		cur := stateOf(n)
		switch {
		case m == nil:
			m = &machine{hist: newSeries[Point](r.layout)}
			r.machines[n.Name] = m
			if !first {
				evs = diff(evs, t, n.Name, nil, cur)
			}
		case first:
		case !m.listed: // back after it was forgotten: a new join
			evs = diff(evs, t, n.Name, nil, cur)
		default:
			evs = diff(evs, t, n.Name, &m.last, cur)
		}
		m.last, m.listed, m.lastSeen = cur, true, t
		if n.Candidate {
			cp.Candidates++
		}
		if n.State != rank.StateAlive || n.Report == nil {
			continue
		}
		cp.Members++
		l := n.Report.Load
		loads = append(loads, l.Load1)
		p := Point{
			Load1: float32(l.Load1), Load5: float32(l.Load5), Load15: float32(l.Load15),
			CPU: float32(l.CPUUtil), Mem: float32(1 - l.MemAvailableFraction()),
			Score: float32(n.Score), Users: float32(l.Users),
		}
		if n.Candidate {
			p.Candidate = 1
		}
		m.hist.add(t, p)
	}
	for name, m := range r.machines {
		if m.lastSeen.Equal(t) {
			continue
		}
		if m.listed && !first && (m.last.state == rank.StateAlive || m.last.state == rank.StateSuspect) {
			evs = append(evs, Event{Time: t, Kind: Left, Node: name, Text: "no longer listed"})
		}
		m.listed = false
		if t.Sub(m.lastSeen) > r.opts.Keep {
			delete(r.machines, name) // its history has run out
		}
	}
	if len(loads) > 0 {
		slices.Sort(loads)
		cp.Median = float32(median(loads))
		cp.Busiest = float32(loads[len(loads)-1])
	}
	r.cluster.add(t, cp)
	for _, e := range evs {
		r.events.add(e, r.opts.Events)
	}
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// Record adds an event that no snapshot shows, such as a DNS server
// refusing an RFC 2136 update; a zero Time is now.
func (r *Recorder) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = r.opts.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events.add(e, r.opts.Events)
	r.version++
}

// Events returns up to n events, newest first (all when n <= 0).
func (r *Recorder) Events(n int) []Event {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.events.newest(n)
}

// History returns machine name's history from since on, oldest first, or
// nil when the recorder holds none.
func (r *Recorder) History(name string, since time.Time) []Sample[Point] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.machines[name]
	if m == nil {
		return nil
	}
	return m.hist.since(since)
}

// Cluster returns the cluster's history from since on, oldest first.
func (r *Recorder) Cluster(since time.Time) []Sample[ClusterPoint] {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.cluster.since(since)
}

// Version grows with every snapshot observed and event recorded.
func (r *Recorder) Version() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}

// Snapshot returns the latest observed snapshot, nil before the first.
func (r *Recorder) Snapshot() *rank.Snapshot {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.snap
}

// Source is what Follow reads: *agent.Agent implements it.
type Source = watch.Source

// Follow observes src's snapshots until ctx ends: at once when src
// announces a change, and every Interval otherwise, so the history has a
// point per interval even while nothing changes.
func (r *Recorder) Follow(ctx context.Context, src Source) {
	watch.Run(ctx, src, watch.Options{Every: r.opts.Interval}, func(watch.Why) time.Time {
		r.Observe(src.Snapshot())
		return time.Time{}
	})
}
