// Package herd makes a collector count what it hands out, so that a burst
// of logins spreads over many machines instead of landing on the few that
// looked best a moment ago.
//
// Why it is needed: a machine's report shows its one-minute load average,
// which the kernel damps with a one-minute time constant. A login that
// starts a CPU-bound process raises the run queue at once but load1 only by
// 1−e^(−t/1min) of it after t, so for tens of seconds after a collector
// hands a machine out, that machine still looks idle and keeps being handed
// out. A Herd remembers every hand-out and adds the load the machine's
// latest report cannot show yet: a hand-out at h, seen from a report
// sampled at r, still misses Weight·e^(−(r−h)/Decay) (all of it while
// r ≤ h). As the machine's reports catch up the expected load decays to
// nothing, so a hand-out nobody used is forgotten within a few Decays and
// one that was used is replaced by the real load.
//
// Contract for whatever hands machines out (rank.Policy with a Herd: the
// CoreDNS plugin, the RFC 2136 updater, the Caddy modules, the agent's
// API): before ranking, raise each node's load1 by Extra; after choosing,
// record what was given out with Handed (by name) or HandedOut (by Tally,
// for answer paths that must not look names up). Every method is safe for
// concurrent use; Extra, Handed and HandedOut do not allocate once a name
// has been seen, and hold one mutex for a few arithmetic operations per
// name. Changed tells a watcher that hand-outs happened, so it can rank
// again.
package herd

import (
	"math"
	"sync"
	"time"
)

// Config tunes a Herd.
type Config struct {
	// Weight is the load (runnable processes, the unit of load1) one
	// answer is expected to add, split evenly over the names it holds.
	// 1 is one CPU-bound login per answer, right when every login asks
	// the server; caching resolvers hand one answer to several logins.
	// The default, 2: at the shipped TTL any weight from 1 to 4 does as
	// well in `peerload simulate`, and 2 is what a 30 s TTL wants. 0
	// takes the default.
	Weight float64
	// Decay is the time constant with which reports catch up with a
	// hand-out: the kernel's one-minute average (default 1 min).
	Decay time.Duration
	// Forget drops a hand-out that no report has caught up with after this
	// long, e.g. because the node stopped reporting (default 5 min).
	Forget time.Duration
	// Max bounds the load a node's hand-outs may add: hand-outs past it
	// are not counted. Logins are few; a flood of queries (a client
	// without a cache, a monitor, an attack) is not logins, and without a
	// bound it would pile up load on paper that takes many Decays to
	// forget, while the machines' real order is lost. At the bound every
	// machine is raised alike, so answers follow the reports again, and
	// a report or two after the flood the count is small again
	// (default 2).
	Max float64
}

// DefaultConfig is the documented default.
func DefaultConfig() Config {
	return Config{Weight: 2, Decay: time.Minute, Forget: 5 * time.Minute, Max: 2}
}

// maxPending bounds the hand-outs a node keeps that no report has seen;
// beyond it the two oldest merge: counted fully until the newer of them
// is seen, then decaying exactly as the two would.
const maxPending = 16

// handout is one hand-out (or merged run of them) no report has caught up
// with yet.
type handout struct {
	at     time.Time
	weight float64
	// decaying is the weight that decays from at once seen: weight for a
	// single hand-out, less for a merged run whose older part is older.
	decaying float64
}

// Tally is what a Herd knows about one name. Herd.Tally hands out a
// pointer to it so that an answer path can record hand-outs by index.
type Tally struct {
	// settled is the load still missing from a report sampled at seen,
	// of the hand-outs at or before seen.
	settled float64
	seen    time.Time
	// pending are the hand-outs after seen, oldest first.
	pending [maxPending]handout
	n       int
}

// Herd counts hand-outs per name. The zero value is not usable; call New.
type Herd struct {
	cfg     Config
	decay   float64 // seconds
	changed chan struct{}
	mu      sync.Mutex
	nodes   map[string]*Tally
	// told is when changed was last sent; later sends wait for
	// ChangeInterval after it (a timer is due when delayed is set).
	told    time.Time
	delayed bool
}

// ChangeInterval is the least time between two values on Changed: a burst
// of logins is ranked again between any two of its answers, a flood of
// queries costs ten rankings a second.
const ChangeInterval = 100 * time.Millisecond

// New returns a Herd with cfg's zero fields set to their defaults.
func New(cfg Config) *Herd {
	d := DefaultConfig()
	if cfg.Weight <= 0 {
		cfg.Weight = d.Weight
	}
	if cfg.Decay <= 0 {
		cfg.Decay = d.Decay
	}
	if cfg.Forget <= 0 {
		cfg.Forget = d.Forget
	}
	if cfg.Max <= 0 {
		cfg.Max = d.Max
	}
	return &Herd{cfg: cfg, decay: cfg.Decay.Seconds(), changed: make(chan struct{}, 1), nodes: make(map[string]*Tally)}
}

// Config returns the configuration in use (defaults filled in).
func (h *Herd) Config() Config { return h.cfg }

// Changed receives a value after hand-outs were recorded (coalesced: one
// value stands for any number of them, at most one per ChangeInterval). A
// front end that precomputes its answers ranks again when it fires.
func (h *Herd) Changed() <-chan struct{} { return h.changed }

// Tally returns the record of name, creating it. The pointer stays valid
// for the Herd's life.
func (h *Herd) Tally(name string) *Tally {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tally(name)
}

func (h *Herd) tally(name string) *Tally {
	n := h.nodes[name]
	if n == nil {
		n = &Tally{}
		h.nodes[name] = n
	}
	return n
}

// Handed records that one answer holding names was given out at now.
func (h *Herd) Handed(names []string, now time.Time) {
	if len(names) == 0 {
		return
	}
	w := h.cfg.Weight / float64(len(names))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range names {
		h.add(h.tally(name), w, now)
	}
	h.notify()
}

// HandedOut records that one answer holding ts[i] for every i in order was
// given out at now: Handed for a caller that keeps Tallies, not names.
func (h *Herd) HandedOut(ts []*Tally, order []int, now time.Time) {
	if len(order) == 0 {
		return
	}
	w := h.cfg.Weight / float64(len(order))
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, i := range order {
		h.add(ts[i], w, now)
	}
	h.notify()
}

// notify sends on changed now, or once ChangeInterval has passed since the
// last send; h.mu is held. It reads the clock, not the hand-outs' times,
// which a caller (the simulator) may set.
func (h *Herd) notify() {
	if h.delayed {
		return
	}
	if wait := ChangeInterval - time.Since(h.told); wait > 0 {
		h.delayed = true
		time.AfterFunc(wait, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.delayed = false
			h.send()
		})
		return
	}
	h.send()
}

func (h *Herd) send() {
	h.told = time.Now()
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// add records a hand-out of weight w at now, as much of it as Max leaves
// room for; h.mu is held.
func (h *Herd) add(n *Tally, w float64, now time.Time) {
	total := n.settled
	for _, p := range n.pending[:n.n] {
		total += p.weight
	}
	if w = min(w, h.cfg.Max-total); w <= 0 {
		return
	}
	if n.n == maxPending {
		// Merge the two oldest (see maxPending).
		p0, p1 := n.pending[0], &n.pending[1]
		p1.weight += p0.weight
		p1.decaying += p0.decaying * math.Exp(-p1.at.Sub(p0.at).Seconds()/h.decay)
		copy(n.pending[:], n.pending[1:n.n])
		n.n--
	}
	// Hand-outs arrive in time order from one collector; keep the queue
	// ordered anyway so settle can stop at the first unseen one.
	i := n.n
	for i > 0 && n.pending[i-1].at.After(now) {
		n.pending[i] = n.pending[i-1]
		i--
	}
	n.pending[i] = handout{at: now, weight: w, decaying: w}
	n.n++
}

// Extra is the load name's latest report, sampled at reportTime (for a
// snapshot node: its Received time), does not show yet of what was handed
// out, at now. It is 0 for a name never handed out.
func (h *Herd) Extra(name string, reportTime, now time.Time) float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.nodes[name]
	if n == nil {
		return 0
	}
	h.settle(n, reportTime, now)
	e := n.settled
	for _, p := range n.pending[:n.n] {
		e += p.weight
	}
	return e
}

// settle moves the hand-outs a report sampled at r has seen into settled,
// decaying everything to r, and forgets what is older than Forget.
func (h *Herd) settle(n *Tally, r, now time.Time) {
	if r.After(n.seen) {
		if !n.seen.IsZero() {
			n.settled *= math.Exp(-r.Sub(n.seen).Seconds() / h.decay)
		}
		k := 0
		for k < n.n && !n.pending[k].at.After(r) {
			p := n.pending[k]
			n.settled += p.decaying * math.Exp(-r.Sub(p.at).Seconds()/h.decay)
			k++
		}
		copy(n.pending[:], n.pending[k:n.n])
		n.n -= k
		n.seen = r
	}
	cut := now.Add(-h.cfg.Forget)
	k := 0
	for k < n.n && n.pending[k].at.Before(cut) {
		k++
	}
	copy(n.pending[:], n.pending[k:n.n])
	n.n -= k
	if n.seen.Before(cut) {
		n.settled = 0
	}
	if n.settled < 1e-3 {
		n.settled = 0
	}
}
