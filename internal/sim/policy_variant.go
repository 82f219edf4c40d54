package sim

import (
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// resolverPolicy answers one resolver and says how long it may cache the
// answer (the lab's TTL for every other policy).
type resolverPolicy interface {
	answerResolver(resolver int, now time.Duration) ([]int, time.Duration)
}

// variantPolicy is a Variant of the CoreDNS plugin's answer: the same
// ranking, selection and fallback (rank.Policy.Choose), with its own herd,
// load reading, order and TTL.
type variantPolicy struct {
	l    *lab
	v    Variant
	herd herdModel // nil for plain
	age  *ageReader
	kept rank.Kept

	// arrivals counts the users the reports show logging in, answers the
	// answers given, both over about rateWindow: their ratio is the logins
	// one answer serves.
	arrivals, answers decayingCount
	users             []int
	known             []bool
	// lastQuery is when each resolver last asked (adaptive TTL).
	lastQuery []time.Duration
	asked     []bool
	// written is the zone's set (Write).
	written []int
}

func newVariantPolicy(v Variant, l *lab) *variantPolicy {
	n := len(l.ms)
	p := &variantPolicy{l: l, v: v, users: make([]int, n), known: make([]bool, n),
		lastQuery: make([]time.Duration, l.cfg.Resolvers), asked: make([]bool, l.cfg.Resolvers)}
	switch v.Herd {
	case "herd":
		p.herd = newDecayingHerd(n, v.Decay, v.Cap)
	case "seen":
		p.herd = newSeenHerd(n, v.Decay, v.Cap, v.Departures)
	}
	if v.Age {
		p.age = newAgeReader(n, time.Minute)
	}
	l.col.observers = append(l.col.observers, p.observe)
	if v.Write > 0 {
		var write func()
		write = func() {
			p.written, _ = p.choose(p.l.eng.Now())
			p.l.eng.After(v.Write, write)
		}
		// The first write once every agent has reported, as PeerMon's.
		l.eng.At(l.cfg.Interval+time.Second, write)
	}
	return p
}

func (p *variantPolicy) observe(i int, r *report.Report, now time.Duration) {
	u := r.Load.Users
	if p.known[i] && u > p.users[i] {
		p.arrivals.add(float64(u-p.users[i]), now, rateWindow)
	}
	p.users[i], p.known[i] = u, true
	if p.herd != nil {
		p.herd.observe(i, u, now)
	}
	if p.age != nil {
		p.age.observe(i, r.Load.Load1, now)
	}
}

func (p *variantPolicy) answer(now time.Duration) []int {
	set, _ := p.answerResolver(0, now)
	return set
}

func (p *variantPolicy) answerResolver(resolver int, now time.Duration) ([]int, time.Duration) {
	p.lastQuery[resolver], p.asked[resolver] = now, true
	if p.v.Write > 0 {
		return p.written, p.v.ttl(p.l.cfg)
	}
	p.answers.add(1, now, rateWindow)
	return p.choose(now)
}

// choose is one answer (or one write) and its TTL; it tells the herd.
func (p *variantPolicy) choose(now time.Duration) ([]int, time.Duration) {
	snap := p.adjust(p.l.col.snapshot(now), now)
	top := p.v.top(p.l.cfg)
	pol := rank.Policy{Top: top, Fallback: p.l.cfg.Fallback}
	var choice rank.Choice
	choice, p.kept = pol.Choose(snap, p.kept, epoch.Add(now))
	var picked []rank.NodeStatus
	if p.v.BestOfTwo > 0 {
		picked = p.bestOfTwo(choice.Ranking, top)
	} else {
		picked = choice.Ranking.Pick(top, p.l.rnd)
	}
	set := p.l.col.indexes(picked)
	ttl := p.ttl(picked, now)
	if p.herd != nil && len(set) > 0 {
		w, life := p.weight(ttl, now), ttl
		if p.v.Write > 0 {
			life = p.v.Write + ttl
			if p.v.RateWeight {
				w = min(MaxWeight, p.loginRate(now)*p.v.Write.Seconds())
			}
		}
		for _, i := range set {
			p.herd.handed(i, w/float64(len(set)), life, now)
		}
	}
	return set, ttl
}

// adjust is the product herd's adjustment with the variant's load reading: every reported
// load1 read by its age (Age) plus the herd's extra load.
func (p *variantPolicy) adjust(s *rank.Snapshot, now time.Duration) *rank.Snapshot {
	if p.herd == nil && p.age == nil {
		return s
	}
	for i := range s.Nodes { // s is the collector's fresh copy
		n := &s.Nodes[i]
		if n.Report == nil {
			continue
		}
		load1 := n.Report.Load.Load1
		if p.age != nil {
			load1 = p.age.load1(i, now)
		}
		if p.herd != nil {
			load1 += p.herd.extra(i, n.Received.Sub(epoch), now)
		}
		load1 = max(0, load1)
		if load1 == n.Report.Load.Load1 {
			continue
		}
		r := *n.Report
		r.Load.Load1 = load1
		n.Report = &r
		n.Score = rank.Score(r.Load, s.Score, s.Score.By)
	}
	return s
}

// weight is the load one answer with this TTL is expected to add.
func (p *variantPolicy) weight(ttl, now time.Duration) float64 {
	switch {
	case p.v.RateWeight:
		q := p.answers.value(now, rateWindow)
		if q <= 0 {
			return p.v.Weight
		}
		return min(MaxWeight, p.arrivals.value(now, rateWindow)/q)
	case p.v.WeightPerTTL > 0:
		return max(1, p.v.WeightPerTTL*ttl.Seconds())
	}
	return p.v.Weight
}

// loginRate is the logins per second the reports show, over rateWindow.
func (p *variantPolicy) loginRate(now time.Duration) float64 {
	return p.arrivals.value(now, rateWindow) / rateWindow.Seconds()
}

// ttl is the answer's TTL: fixed, or (MaxTTL > 0) its headroom, the free
// cores of its machines with the herd's load, divided by the rate at
// which one resolver's users log in (the login rate ÷ the resolvers that
// asked within the last herdForget).
func (p *variantPolicy) ttl(picked []rank.NodeStatus, now time.Duration) time.Duration {
	if p.v.MaxTTL <= 0 {
		return p.v.ttl(p.l.cfg)
	}
	free := 0.0
	for _, n := range picked {
		if n.Report != nil {
			free += max(0, float64(n.Report.Load.CPUs)-n.Report.Load.Load1)
		}
	}
	active := 0
	for r, t := range p.lastQuery {
		if p.asked[r] && now-t <= herdForget {
			active++
		}
	}
	rate := p.loginRate(now) / float64(max(active, 1))
	if rate <= 0 {
		return p.v.MaxTTL
	}
	t := time.Duration(free / rate * float64(time.Second))
	return min(p.v.MaxTTL, max(p.v.MinTTL, t))
}

// bestOfTwo fills top addresses, each the better (lower score, ties to the
// better ranked) of two drawn at random from the best BestOfTwo machines
// not yet chosen; with one left, that one.
func (p *variantPolicy) bestOfTwo(r *rank.Ranking, top int) []rank.NodeStatus {
	k := min(max(p.v.BestOfTwo, top), r.Len())
	pool := make([]int, k)
	for i := range pool {
		pool[i] = i
	}
	out := make([]rank.NodeStatus, 0, min(top, k))
	for len(out) < top && len(pool) > 0 {
		a := p.l.rnd.IntN(len(pool))
		pick := a
		if len(pool) > 1 {
			b := p.l.rnd.IntN(len(pool) - 1)
			if b >= a {
				b++
			}
			if pool[b] < pool[a] { // ranked better: lower score or equal and first
				pick = b
			}
		}
		out = append(out, r.Nodes[pool[pick]])
		pool = append(pool[:pick], pool[pick+1:]...)
	}
	return out
}
