package gossip

import (
	"sync"
	"time"

	"github.com/peerload/peerload/agent/report"
)

// table is the report table: the latest report this member holds of each
// node, its own included, with when each was sent on this member's clock,
// and the epoch of this member's own reports. It knows nothing of
// membership or of how reports travel. Its methods are called
// concurrently (memberlist's packet and stream goroutines, Publish, the
// loops) and never block; applied is called with the table's lock held.
type table struct {
	self string
	// applied is Config.Applied (a no-op when unset).
	applied func(r *report.Report, sent time.Time)

	mu      sync.Mutex
	reports map[string]Held
	// epoch is the report that began the epoch of this member's latest.
	epoch *report.Report
}

// Held is a report as this member holds it.
type Held struct {
	Report *report.Report
	// Received is the local arrival time minus the report's age on
	// arrival: when the report was sent, on this member's clock.
	Received time.Time
}

func newTable(self string, applied func(*report.Report, time.Time)) *table {
	if applied == nil {
		applied = func(*report.Report, time.Time) {}
	}
	return &table{self: self, applied: applied, reports: make(map[string]Held)}
}

// publish sets r's epoch (r.Base) and holds r as this member's own
// report; it reports whether r begins an epoch.
func (t *table) publish(r *report.Report, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if report.StartsEpoch(t.epoch, r) {
		r.Base = r.Seq
		t.epoch = r
	} else {
		r.Base = t.epoch.Seq
	}
	t.reports[r.Node] = Held{Report: r, Received: now}
	return r.Base == r.Seq
}

// own is the last report this member published, nil before the first.
func (t *table) own() *report.Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reports[t.self].Report
}

// apply holds r if it is newer than what is held for its node.
func (t *table) apply(r *report.Report, now time.Time) bool {
	if r.Node == t.self {
		return false // only this member speaks for itself
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.reports[r.Node]; ok && !r.Newer(h.Report) {
		return false
	}
	sent := now.Add(-r.Age)
	t.reports[r.Node] = Held{Report: r, Received: sent}
	t.applied(r, sent)
	return true
}

// applyCompact rebuilds node name's compact entry c on the report held
// for it and holds the result if it is newer.
func (t *table) applyCompact(name string, c report.Compact, now time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.reports[name]
	sent := now.Add(-c.Age)
	r, ok := c.Rebuild(h.Report, sent.Sub(h.Received))
	if !ok {
		return resultNoEpoch
	}
	if !r.Newer(h.Report) {
		return resultOld
	}
	r.Node = name
	t.reports[name] = Held{Report: r, Received: sent}
	t.applied(r, sent)
	return resultApplied
}

// aged is a copy of the report held for name with its age at now.
func (t *table) aged(name string, now time.Time) (*report.Report, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.agedLocked(name, now)
}

func (t *table) agedLocked(name string, now time.Time) (*report.Report, bool) {
	h, ok := t.reports[name]
	if !ok {
		return nil, false
	}
	r := *h.Report
	r.Age = max(now.Sub(h.Received), 0)
	return &r, true
}

// entry adds the report held for name, aged at now, to a batch: as a
// compact entry under id when compact is set and it continues an epoch,
// whole otherwise.
func (t *table) entry(name string, id uint32, compact bool, now time.Time, rs []*report.Report, cs []report.Compact) ([]*report.Report, []report.Compact) {
	r, ok := t.aged(name, now)
	if !ok {
		return rs, cs
	}
	if compact {
		if c, ok := report.CompactOf(r, id); ok {
			return rs, append(cs, c)
		}
	}
	return append(rs, r), cs
}

// ownState is this member's own report aged at now, alone.
func (t *table) ownState(now time.Time) []*report.Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r, ok := t.agedLocked(t.self, now); ok {
		return []*report.Report{r}
	}
	return nil
}

// allState is every report held, each aged at now.
func (t *table) allState(now time.Time) []*report.Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]*report.Report, 0, len(t.reports))
	for name := range t.reports {
		r, _ := t.agedLocked(name, now)
		out = append(out, r)
	}
	return out
}

// overdue lists the nodes, this member aside, whose reports are overdue
// at now (see overdue), with each report's lifetime.
func (t *table) overdue(now time.Time) map[string]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out map[string]time.Duration
	for name, h := range t.reports {
		if name == t.self || !overdue(h, now) {
			continue
		}
		if out == nil {
			out = make(map[string]time.Duration)
		}
		out[name] = h.Report.Lifetime
	}
	return out
}

// overdue reports whether the node that sent h promised another report by
// now. A report without a lifetime (version 1) promises nothing.
func overdue(h Held, now time.Time) bool {
	return h.Report.Lifetime > 0 && now.Sub(h.Received) > h.Report.Lifetime
}

// view copies the table. It first forgets the report of every node but
// this member for which keep is false and forget(held) is true.
func (t *table) view(keep func(name string) bool, forget func(Held) bool) map[string]Held {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Held, len(t.reports))
	for name, h := range t.reports {
		if name != t.self && !keep(name) && forget(h) {
			delete(t.reports, name)
			continue
		}
		out[name] = h
	}
	return out
}
