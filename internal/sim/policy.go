package sim

import (
	"time"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
)

// policy is the DNS server side of a placement policy: the addresses
// (machine indexes) of one answer to a query at now.
type policy interface {
	answer(now time.Duration) []int
}

// directPolicy places a login without DNS.
type directPolicy interface {
	place() int
}

func newPolicy(name string, l *lab) policy {
	switch name {
	case PolicyRoundRobin:
		return &roundRobin{n: len(l.ms)}
	case PolicyRandom:
		return &randomPick{l: l}
	case PolicyPeerMon:
		p := &peerMon{l: l}
		p.start()
		return p
	case PolicyLbnamed:
		return &lbnamed{l: l, extra: make([]float64, len(l.ms)), answered: make([]time.Time, len(l.ms))}
	case PolicyPeerloadNoHerd:
		return &peerload{l: l}
	case PolicyPeerload, PolicyPeerloadHerd:
		return &peerload{l: l, herd: herd.New(l.cfg.Herd)}
	case PolicyOracle:
		return &oracle{l: l}
	}
	if v, err := ParseVariant(name); err == nil {
		return newVariantPolicy(v, l)
	}
	panic("sim: unknown policy " + name) // Validate rejects it first
}

// roundRobin answers every machine, rotating the order per answer (BIND's
// cyclic order).
type roundRobin struct{ n, next int }

func (p *roundRobin) answer(time.Duration) []int {
	out := make([]int, p.n)
	for i := range out {
		out[i] = (p.next + i) % p.n
	}
	p.next = (p.next + 1) % p.n
	return out
}

// randomPick is a user picking a machine blindly, without DNS: the
// baseline of PeerMon's speed-ups.
type randomPick struct{ l *lab }

func (p *randomPick) answer(time.Duration) []int { return nil }
func (p *randomPick) place() int                 { return p.l.rnd.IntN(len(p.l.ms)) }

// peerMon is PeerMon's DNS set-up: a cron job writes the best PeerMonTop
// machines into the zone every PeerMonEvery; between runs the zone does
// not change.
type peerMon struct {
	l   *lab
	set []int
}

func (p *peerMon) start() {
	var cron func()
	cron = func() {
		snap := p.l.col.snapshot(p.l.eng.Now())
		if r := snap.Rank("", ""); r.Len() > 0 {
			p.set = p.l.col.indexes(r.Pick(p.l.cfg.PeerMonTop, p.l.rnd))
		}
		p.l.eng.After(p.l.cfg.PeerMonEvery, cron)
	}
	// The first run once every agent has reported.
	p.l.eng.At(p.l.cfg.Interval+time.Second, cron)
}

func (p *peerMon) answer(time.Duration) []int { return p.set }

// lbnamed answers the single best machine and adds LbnamedIncrement to
// its load per answer until its next report (lbcd's "weight plus
// increment times connections since the last poll").
type lbnamed struct {
	l        *lab
	extra    []float64
	answered []time.Time
}

func (p *lbnamed) answer(now time.Duration) []int {
	snap := p.l.col.snapshot(now)
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if n.Report == nil {
			continue
		}
		if n.Received.After(p.answered[i]) {
			p.extra[i] = 0
		}
		if p.extra[i] > 0 {
			r := *n.Report
			r.Load.Load1 += p.extra[i]
			n.Report = &r
		}
	}
	picked := p.l.col.indexes(snap.Rank("", "").Pick(1, p.l.rnd))
	for _, i := range picked {
		p.extra[i] += p.l.cfg.LbnamedIncrement
		p.answered[i] = epoch.Add(now)
	}
	return picked
}

// peerload is the CoreDNS plugin's answer: rank.Policy.Choose (the one
// selection every integration uses, with its fallback) and the best Top of
// the choice, each group of equal scores shuffled. With a herd the policy
// adds the load of earlier hand-outs the reports do not show yet, and the
// answer records what it hands out.
type peerload struct {
	l    *lab
	herd *herd.Herd
	kept rank.Kept
}

func (p *peerload) answer(now time.Duration) []int {
	snap := p.l.col.snapshot(now)
	pol := rank.Policy{Top: p.l.cfg.Top, Fallback: p.l.cfg.Fallback, Herd: p.herd}
	var choice rank.Choice
	choice, p.kept = pol.Choose(snap, p.kept, epoch.Add(now))
	picked := choice.Ranking.Pick(p.l.cfg.Top, p.l.rnd)
	if p.herd != nil && len(picked) > 0 {
		names := make([]string, len(picked))
		for i, n := range picked {
			names[i] = n.Name
		}
		p.herd.Handed(names, epoch.Add(now))
	}
	return p.l.col.indexes(picked)
}

// oracle knows every machine's run queue at the instant of a login and
// picks the shortest (ties to the lowest index): the bound no policy that
// learns load through samples, gossip and DNS caches can reach.
type oracle struct{ l *lab }

func (p *oracle) answer(time.Duration) []int { return nil }
func (p *oracle) place() int {
	best := 0
	for i, m := range p.l.ms {
		if m.processes() < p.l.ms[best].processes() {
			best = i
		}
	}
	return best
}
