package sim

import (
	"math"
	"time"
)

// herdModel is what a variant knows of the load its hand-outs add, per
// machine index: O(machines) state, as a product herd must keep.
type herdModel interface {
	// extra is the load machine i's latest report, received at r, does not
	// show yet of what was handed out, at now.
	extra(i int, r, now time.Duration) float64
	// handed records that an answer with weight w (already split over its
	// names) and TTL ttl named machine i at now.
	handed(i int, w float64, ttl, now time.Duration)
	// observe sees machine i's report received at r with users logged in.
	observe(i int, users int, r time.Duration)
}

// herdForget drops a hand-out no report has caught up with after this long
// (agent/herd's Forget).
const herdForget = 5 * time.Minute

// decayingHerd is agent/herd's model on machine indexes: a hand-out at h
// counts fully until a report received after it, then decays as
// weight·e^(−(r−h)/decay) with the report time r. Unlike agent/herd it
// keeps every pending hand-out (no merging), and it can bound what one
// machine carries: a hand-out adds at most what is left up to limit.
type decayingHerd struct {
	decay float64 // seconds
	limit float64 // 0: none
	nodes []decayingNode
}

type decayingNode struct {
	settled float64
	seen    time.Duration
	pending []handout
}

type handout struct {
	at     time.Duration
	weight float64
	ttl    time.Duration
}

func newDecayingHerd(machines int, decay time.Duration, limit float64) *decayingHerd {
	return &decayingHerd{decay: decay.Seconds(), limit: limit, nodes: make([]decayingNode, machines)}
}

func (h *decayingHerd) extra(i int, r, now time.Duration) float64 {
	n := &h.nodes[i]
	h.settle(n, r, now)
	e := n.settled
	for _, p := range n.pending {
		e += p.weight
	}
	return e
}

func (h *decayingHerd) handed(i int, w float64, ttl, now time.Duration) {
	n := &h.nodes[i]
	if h.limit > 0 {
		held := n.settled
		for _, p := range n.pending {
			held += p.weight
		}
		w = min(w, max(0, h.limit-held))
		if w == 0 {
			return
		}
	}
	if h.limit > 0 && mergeable(n.pending, ttl, now) {
		n.pending[len(n.pending)-1].weight += w
		return
	}
	k := len(n.pending)
	for k > 0 && n.pending[k-1].at > now {
		k--
	}
	n.pending = append(n.pending, handout{})
	copy(n.pending[k+1:], n.pending[k:])
	n.pending[k] = handout{at: now, weight: w, ttl: ttl}
}

func (h *decayingHerd) observe(int, int, time.Duration) {}

// settle is agent/herd's settle on durations.
func (h *decayingHerd) settle(n *decayingNode, r, now time.Duration) {
	if r > n.seen {
		if n.seen != 0 {
			n.settled *= math.Exp(-(r - n.seen).Seconds() / h.decay)
		}
		k := 0
		for k < len(n.pending) && n.pending[k].at <= r {
			n.settled += n.pending[k].weight * math.Exp(-(r-n.pending[k].at).Seconds()/h.decay)
			k++
		}
		n.pending = n.pending[:copy(n.pending, n.pending[k:])]
		n.seen = r
	}
	cut := now - herdForget
	k := 0
	for k < len(n.pending) && n.pending[k].at < cut {
		k++
	}
	n.pending = n.pending[:copy(n.pending, n.pending[k:])]
	if n.seen < cut {
		n.settled = 0
	}
	if n.settled < 1e-3 {
		n.settled = 0
	}
}

// seenHerd lets the reports say which hand-outs were used. A hand-out is
// a promise of logins over its TTL (resolvers hand the cached answer out
// until it expires): the part of it after the machine's latest report r
// and after now − seenWithin is still to come or not yet reported,
// weight·(h+TTL−max(h, r, now−seenWithin))/TTL; nothing once that is past
// h+TTL. What did arrive shows in the
// reports as new users at once, and in load1 only with its one-minute lag:
// lag is the arrivals the latest report's load1 misses, Σ a·e^(−(r−t)/decay)
// over arrivals a reported at t. A hand-out nobody used (a client that
// ignores caching, a flood) is forgotten one TTL after it, whatever the
// query rate.
type seenHerd struct {
	decay      float64 // seconds
	limit      float64
	departures bool
	nodes      []seenNode
}

type seenNode struct {
	pending []handout
	lag     float64
	lagAt   time.Duration
	users   int
	known   bool
}

func newSeenHerd(machines int, decay time.Duration, limit float64, departures bool) *seenHerd {
	return &seenHerd{decay: decay.Seconds(), limit: limit, departures: departures, nodes: make([]seenNode, machines)}
}

// seenWithin is how soon a login shows in a report: the agent reports
// within one sampling interval of a change in users (2 s), plus gossip,
// with room to spare. A login expected longer ago than that which no
// report shows did not happen.
const seenWithin = 5 * time.Second

// expected is the part of hand-out p that the latest report, received at
// r, cannot show at now: the logins still to come from resolvers' copies,
// and those of the last seenWithin.
func (p handout) expected(r, now time.Duration) float64 {
	from := max(p.at, r, now-seenWithin)
	if p.ttl <= 0 {
		if p.at >= from && p.at > r {
			return p.weight
		}
		return 0
	}
	left := p.at + p.ttl - from
	return p.weight * min(1, max(0, left.Seconds()/p.ttl.Seconds()))
}

func (h *seenHerd) prune(n *seenNode, r, now time.Duration) {
	k := 0
	for _, p := range n.pending {
		if p.at+p.ttl >= max(r, now-seenWithin) && p.at >= now-herdForget {
			n.pending[k] = p
			k++
		}
	}
	n.pending = n.pending[:k]
}

func (h *seenHerd) pendingLoad(n *seenNode, r, now time.Duration) float64 {
	e := 0.0
	for _, p := range n.pending {
		e += p.expected(r, now)
	}
	return e
}

func (h *seenHerd) extra(i int, r, now time.Duration) float64 {
	n := &h.nodes[i]
	h.prune(n, r, now)
	return h.pendingLoad(n, r, now) + n.lag
}

func (h *seenHerd) handed(i int, w float64, ttl, now time.Duration) {
	n := &h.nodes[i]
	if h.limit > 0 {
		w = min(w, max(0, h.limit-h.pendingLoad(n, n.lagAt, now)))
		if w == 0 {
			return
		}
	}
	if h.limit > 0 && mergeable(n.pending, ttl, now) {
		n.pending[len(n.pending)-1].weight += w
		return
	}
	n.pending = append(n.pending, handout{at: now, weight: w, ttl: ttl})
}

// mergeWithin is how close a hand-out must follow the last one to be
// merged into it. A bounded herd tops a machine up by slivers as its load
// decays; under a flood those would pile up by the thousand (agent/herd
// merges beyond 16 instead).
const mergeWithin = 100 * time.Millisecond

func mergeable(pending []handout, ttl, now time.Duration) bool {
	if len(pending) == 0 {
		return false
	}
	last := pending[len(pending)-1]
	return last.ttl == ttl && now >= last.at && now-last.at <= mergeWithin
}

func (h *seenHerd) observe(i int, users int, r time.Duration) {
	n := &h.nodes[i]
	d := users - n.users
	if !n.known {
		d = 0
	}
	n.users, n.known = users, true
	if d < 0 && !h.departures {
		d = 0
	}
	n.lag = n.lag*math.Exp(-(r-n.lagAt).Seconds()/h.decay) + float64(d)
	n.lagAt = r
	if math.Abs(n.lag) < 1e-3 {
		n.lag = 0
	}
}

// decayingCount is a count that forgets with time constant tau: the
// events of about the last tau. Two of them with the same tau divide into
// a ratio of rates.
type decayingCount struct {
	v  float64
	at time.Duration
}

func (c *decayingCount) add(x float64, now, tau time.Duration) {
	c.v = c.value(now, tau) + x
	c.at = now
}

func (c *decayingCount) value(now, tau time.Duration) float64 {
	return c.v * math.Exp(-(now-c.at).Seconds()/tau.Seconds())
}
