package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// How a collector recovers a report it missed. A node sends each report
// to a collector once, in one packet, and a node under a steady load sends
// only its refresh: left alone, a lost refresh is repaired by nothing but
// the next one, so two lost in a row leave the collector with a report
// past twice its lifetime, and a live node out of its answers until a
// third one gets through. Every report promises the next within its
// lifetime, so a collector that holds a report past that promise knows it
// missed one (or the node is down or wedged) and asks the node for its
// latest with msgWant, which every release answers with the node's own
// report whole. Nothing new goes on the wire, and nothing is sent while
// reports arrive on time.

// repairTries is how many times a collector asks a node for an overdue
// report before a receiver calls it stale (once twice its lifetime has
// passed): it asks again every lifetime/repairTries while the report stays
// overdue, so one lost request or answer costs an eighth of a lifetime.
const repairTries = 8

// repairer asks, once per probe interval, for the reports this member
// holds past their lifetime. Collectors run it: they hand out nodes, and
// their reports come straight from the nodes. Agents get reports through
// the relay grid and do not ask, so a dead node is not asked by every
// agent of a large lab before memberlist declares it dead. It has no
// state of its own (wants remembers whom it asked when); loop runs in its
// own goroutine.
type repairer struct {
	table  *table
	roster *roster
	wants  *wants
	// every is memberlist's probe interval.
	every time.Duration
}

// loop calls once every r.every until stop is closed.
func (r *repairer) loop(stop <-chan struct{}) { tick(stop, r.every, r.once) }

// once sends msgWant to every live member whose report is overdue at now
// and was not asked for within a repairTries-th of its lifetime.
func (r *repairer) once(now time.Time) {
	var ask []memberlist.Node
	for name, lifetime := range r.table.overdue(now) {
		n, live := r.roster.node(name)
		if !live || !r.wants.due(name, now, lifetime/repairTries) {
			continue
		}
		ask = append(ask, n)
	}
	r.wants.ask(ask)
}
