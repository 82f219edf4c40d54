package gossip

import (
	"math/rand/v2"
	"time"
)

// reconnectTimeout is how long a member that failed is still tried (see
// reconnector), as Serf's reconnect_timeout; View forgets it then.
const reconnectTimeout = 24 * time.Hour

// reconnector heals partitions. memberlist declares the members it cannot
// reach dead, gossips to the dead only for a while and pushes and pulls
// state only with live members, so after a cut longer than failure
// detection the two sides would never speak again. As Serf does, every two
// probe intervals this member joins one failed member, with a chance of
// failed to live members, so that the cluster as a whole tries each failed
// member about once an interval (and after a cut through the middle,
// every member tries every time). The first exchange across a healed cut
// tells each side that the other holds it dead; both refute that with a
// new incarnation, and the next exchange merges them. It has no state of
// its own: the failed members are the roster's. loop runs in its own
// goroutine; target may be called concurrently.
type reconnector struct {
	roster *roster
	list   *lazyList
	// every is how often loop tries: two probe intervals.
	every time.Duration
}

// loop joins a failed member every r.every until stop is closed.
func (r *reconnector) loop(stop <-chan struct{}) { tick(stop, r.every, r.once) }

// once joins the failed member target picks, if any.
func (r *reconnector) once(now time.Time) {
	if addr := r.target(now); addr != "" {
		// A failure is the normal case (the member is still down) and
		// memberlist logs it as a debug line.
		_, _ = r.list.wait().Join([]string{addr})
	}
}

// target picks the address of a failed member to try now, or "" (none
// failed, or not this member's turn).
func (r *reconnector) target(now time.Time) string {
	addrs, live := r.roster.failed(now)
	if len(addrs) == 0 || rand.Float64()*float64(max(live, 1)) >= float64(len(addrs)) {
		return ""
	}
	return addrs[rand.IntN(len(addrs))]
}
