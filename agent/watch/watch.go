// Package watch is the one loop every reader of an agent's snapshots
// runs: rebuild what it derives from the latest snapshot (DNS answers, a
// reverse proxy's choice, the updater's records, the status history) at
// once, whenever the agent announces a change, on a clock, and when the
// reader's own signal fires. It imports only the snapshot type, so the
// libraries that read agents (agent/rfc2136, agent/status) stay free of
// the agent and its gossip.
package watch

import (
	"context"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// Source is what Run reads: *agent.Agent implements it.
type Source interface {
	Snapshot() *rank.Snapshot
	// Subscribe returns a coalesced notification channel of new
	// snapshots (closed, or never signalled again, once the source shut
	// down) and a function that cancels it.
	Subscribe() (<-chan struct{}, func())
}

// Why says what made Run call rebuild.
type Why int

const (
	Start  Why = iota // the first call
	Change            // the source announced a new snapshot
	Tick              // Options.Every passed
	Signal            // Options.Signal fired
	Due               // the time rebuild returned came
)

// Options are when Run calls rebuild besides a change of the source.
type Options struct {
	// Every, when positive, calls rebuild that often (with Tick).
	Every time.Duration
	// Signal, when set, calls rebuild whenever it receives (with Signal).
	Signal <-chan struct{}
}

// Run calls rebuild at once, then whenever src announces a change, and as
// opts says, until ctx ends. rebuild reads src.Snapshot() when it needs
// it (notifications are coalesced: it reads the latest, never one per
// change; a wake for the clock or a signal may need none). It may return
// a time to be called again at (with Due; zero for none); a later call
// replaces it. rebuild runs on Run's goroutine only, and Run returns once
// ctx ended, after rebuild returned.
func Run(ctx context.Context, src Source, opts Options, rebuild func(why Why) (next time.Time)) {
	notify, cancel := src.Subscribe()
	defer cancel()
	var tick <-chan time.Time
	if opts.Every > 0 {
		t := time.NewTicker(opts.Every)
		defer t.Stop()
		tick = t.C
	}
	due := time.NewTimer(time.Hour)
	due.Stop()
	defer due.Stop()
	why := Start
	for {
		next := rebuild(why)
		if ctx.Err() != nil {
			return
		}
		due.Stop()
		if !next.IsZero() {
			due.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-notify:
			if !ok {
				notify = nil // shut down: no more changes
			}
			why = Change
		case <-tick:
			why = Tick
		case <-opts.Signal:
			why = Signal
		case <-due.C:
			why = Due
		}
	}
}
