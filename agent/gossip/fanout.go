package gossip

import (
	"time"

	"github.com/peerload/peerload/agent/report"
)

// spreader sends this member's reports as it publishes them: through the
// relay grid (relay), or whole to every member (fanOut, an ablation).
// Publish calls it concurrently; it must not block.
type spreader interface {
	// publish sends r, which the table just took as this member's own;
	// begins says r begins an epoch.
	publish(r *report.Report, begins bool, now time.Time)
}

// fanOut sends every report whole to every other live member, one packet
// each, and relays nothing: the design before the relay grid, which
// BenchmarkIdeas weighs the grid against (the fanOut ablation). publish
// is called concurrently and does not block.
type fanOut struct {
	self   string
	roster *roster
	list   *lazyList
	counts *counters
}

func (f *fanOut) publish(r *report.Report, _ bool, _ time.Time) {
	whole := report.AppendReportAt([]byte{msgReport}, r, f.roster.speaking())
	ml := f.list.wait()
	for _, n := range f.roster.copies() {
		if n.Name != f.self {
			_ = send(ml, &n, kindReport, whole)
		}
	}
	f.counts.reportsSent.Add(1)
}

var (
	_ spreader = (*relay)(nil)
	_ spreader = (*fanOut)(nil)
)
