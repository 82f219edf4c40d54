package sim

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// session is one login placed by DNS: a CPU-bound process with work CPU
// seconds to do.
type session struct {
	start    time.Duration
	work     float64
	finishV  float64 // the machine's virtual time at which it is done
	measured bool
}

// machine is one lab machine: its processes shared under processor
// sharing, its kernel's load average and its agent's last report.
type machine struct {
	idx   int
	name  string
	cores float64
	bg    int // background sessions running
	sess  []*session
	// v is the CPU time each runnable process has received since the
	// start (all get the same share): a session is done when v reaches
	// its finishV.
	v    float64
	last time.Duration
	gen  uint64 // invalidates a scheduled completion
	load LoadAvg
	// The agent's state: what it last sent and when.
	sent   *report.Report
	sentAt time.Duration
	seq    uint64
}

// processes is the run queue: background and placed sessions alike.
func (m *machine) processes() int { return m.bg + len(m.sess) }

// rate is the share of a core each runnable process gets.
func (m *machine) rate() float64 {
	if n := float64(m.processes()); n > m.cores {
		return m.cores / n
	}
	return 1
}

func (m *machine) advance(now time.Duration) {
	m.v += m.rate() * (now - m.last).Seconds()
	m.last = now
}

// lab is one run of one policy over the shared workload.
type lab struct {
	cfg *Config
	w   *workload
	eng Engine
	ms  []*machine
	col *collector
	pol policy
	// rnd makes the policy's and the resolvers' random choices; gossip
	// draws report delays.
	rnd, gossip *rand.Rand
	resolvers   []resolverCache

	res    Result
	slow   []float64
	trace  [][]int
	ratios []float64 // busiest ÷ mean at every burst sample
	peaks  []float64 // the highest ratio of each burst
}

// resolverCache is one caching resolver's copy of the answer.
type resolverCache struct {
	set     []int
	expires time.Duration
	valid   bool
}

// completionEpsilon is the CPU time (seconds) below which a session counts
// as done, absorbing float rounding of completion times.
const completionEpsilon = 1e-6

func runPolicy(cfg *Config, w *workload, name string) Result {
	l := newLab(cfg, w, name)
	l.eng.Run(w.end)
	// Measured sessions still running at the end count with the time
	// they have taken so far (a lower bound).
	for _, m := range l.ms {
		m.advance(l.eng.Now())
		for _, s := range m.sess {
			if s.measured {
				l.slow = append(l.slow, (l.eng.Now()-s.start).Seconds()/s.work)
				l.res.Unfinished++
			}
		}
	}
	l.finish()
	return l.res
}

// newLab sets up one run of policy name over w, every event scheduled.
func newLab(cfg *Config, w *workload, name string) *lab {
	l := &lab{
		cfg:       cfg,
		w:         w,
		rnd:       newRand(cfg.choiceSeed(), streamPolicy),
		gossip:    newRand(cfg.choiceSeed(), streamGossip),
		resolvers: make([]resolverCache, cfg.Resolvers),
		res:       Result{Policy: name},
	}
	l.ms = make([]*machine, cfg.Machines)
	for i := range l.ms {
		l.ms[i] = &machine{idx: i, name: machineName(i, cfg.Machines), cores: float64(cfg.Cores)}
	}
	l.col = newCollector(cfg, l.ms)
	l.pol = newPolicy(name, l)

	for i, m := range l.ms {
		l.startKernel(m, w.tickPhase[i])
		l.startAgent(m, w.samplePhase[i])
		for _, s := range w.background[i] {
			l.eng.At(s.start, func() { l.changeBackground(m, +1) })
			l.eng.At(s.end, func() { l.changeBackground(m, -1) })
		}
	}
	for i := range w.logins {
		lg := &w.logins[i]
		l.eng.At(lg.at, func() { l.login(lg) })
	}
	for _, b := range w.bursts {
		l.watchBurst(b)
	}
	if cfg.TraceEvery > 0 {
		var sample func()
		sample = func() {
			row := make([]int, len(l.ms))
			for i, m := range l.ms {
				row[i] = m.processes()
			}
			l.trace = append(l.trace, row)
			l.eng.After(cfg.TraceEvery, sample)
		}
		l.eng.At(0, sample)
	}
	return l
}

// startKernel folds the run queue into the load average every LoadFreq.
func (l *lab) startKernel(m *machine, phase time.Duration) {
	var tick func()
	tick = func() {
		m.load.Tick(m.processes())
		l.eng.After(LoadFreq, tick)
	}
	l.eng.At(phase, tick)
}

// startAgent samples every Interval and sends a report when it matters or
// Refresh has passed, as the real agent does; it reaches the DNS server
// after a gossip delay.
func (l *lab) startAgent(m *machine, phase time.Duration) {
	var sample func()
	sample = func() {
		now := l.eng.Now()
		r := l.sample(m)
		if m.sent == nil || now-m.sentAt >= l.cfg.Refresh || reportMatters(r, m.sent, l.cfg.Score) {
			m.seq++
			r.Seq = m.seq
			m.sent, m.sentAt = r, now
			delay := time.Duration(l.gossip.ExpFloat64() * float64(l.cfg.GossipDelay) / math.Ln2)
			l.eng.After(delay, func() { l.col.receive(m.idx, r, l.eng.Now()) })
		}
		l.eng.After(l.cfg.Interval, sample)
	}
	l.eng.At(phase, sample)
}

// sample is what the agent reads from /proc: the kernel's load average,
// logged-in users (every session is one user) and memory.
func (l *lab) sample(m *machine) *report.Report {
	n := m.processes()
	used := l.cfg.MemBase + uint64(n)*l.cfg.MemPerSession
	var load report.Load
	load.Load1, load.Load5, load.Load15 = m.load.Proc()
	load.CPUs = l.cfg.Cores
	load.CPUUtil = min(1, float64(n)/m.cores)
	load.MemTotal = l.cfg.MemTotal
	load.MemAvailable = l.cfg.MemTotal - min(used, l.cfg.MemTotal)
	load.Users = n
	load.Uptime = l.eng.Now()
	return &report.Report{Node: m.name, Generation: 1, Lifetime: l.cfg.Refresh + l.cfg.Interval, Load: load}
}

// reportMatters mirrors the agent's rule for sending a report before the
// refresh period: users or CPUs changed, or the CPU or memory term of the
// score moved by half the tie delta (the agent's mattersLocked).
func reportMatters(r, last *report.Report, sc rank.ScoreConfig) bool {
	if r.Load.CPUs != last.Load.CPUs || r.Load.Users != last.Load.Users {
		return true
	}
	half := sc.Delta / 2
	return math.Abs(rank.Score(r.Load, sc, rank.ByCPU)-rank.Score(last.Load, sc, rank.ByCPU)) >= half ||
		math.Abs(rank.MemUsed(r.Load)-rank.MemUsed(last.Load)) >= half
}

func (l *lab) changeBackground(m *machine, delta int) {
	m.advance(l.eng.Now())
	m.bg += delta
	l.reschedule(m)
}

// login resolves the name through the login's resolver, takes the first
// address and starts the session there.
func (l *lab) login(lg *login) {
	now := l.eng.Now()
	var idx int
	if d, ok := l.pol.(directPolicy); ok {
		idx = d.place()
	} else {
		set := l.lookup(lg.resolver, now)
		if len(set) == 0 { // nothing to hand out: the user picks any machine
			idx = l.rnd.IntN(len(l.ms))
		} else {
			// The resolver hands out its set in a random order; the
			// client takes the first address.
			idx = set[l.rnd.IntN(len(set))]
		}
	}
	m := l.ms[idx]
	m.advance(now)
	m.sess = append(m.sess, &session{start: now, work: lg.work, finishV: m.v + lg.work, measured: lg.measured})
	if lg.measured {
		l.res.Sessions++
	}
	l.reschedule(m)
}

// lookup answers from the resolver's cache, asking the DNS server when the
// cached answer expired.
func (l *lab) lookup(r int, now time.Duration) []int {
	c := &l.resolvers[r]
	if !c.valid || now >= c.expires {
		ttl := l.cfg.TTL
		if p, ok := l.pol.(resolverPolicy); ok {
			c.set, ttl = p.answerResolver(r, now)
		} else {
			c.set = l.pol.answer(now)
		}
		c.expires = now + ttl
		c.valid = true
		l.res.Queries++
	}
	return c.set
}

// reschedule plans the machine's next session completion after its run
// queue changed.
func (l *lab) reschedule(m *machine) {
	m.gen++
	if len(m.sess) == 0 {
		return
	}
	next := math.Inf(1)
	for _, s := range m.sess {
		next = min(next, s.finishV)
	}
	gen := m.gen
	dt := max(0, (next-m.v)/m.rate())
	l.eng.After(time.Duration(math.Ceil(dt*1e9)), func() {
		if m.gen == gen {
			l.complete(m)
		}
	})
}

func (l *lab) complete(m *machine) {
	now := l.eng.Now()
	m.advance(now)
	kept := m.sess[:0]
	for _, s := range m.sess {
		if s.finishV-m.v > completionEpsilon {
			kept = append(kept, s)
			continue
		}
		if s.measured {
			l.slow = append(l.slow, max(1, (now-s.start).Seconds()/s.work))
		}
	}
	clear(m.sess[len(kept):])
	m.sess = kept
	l.reschedule(m)
}

// burstSample is how often the busiest machine is compared with the mean
// during a burst, and burstTail how long after the burst's last login.
const (
	burstSample = 5 * time.Second
	burstTail   = time.Minute
)

// watchBurst samples sessions per machine from the burst's first login to
// burstTail after its last.
func (l *lab) watchBurst(start time.Duration) {
	peak := 0.0
	for t := start; t <= start+l.cfg.BurstSpread+burstTail; t += burstSample {
		last := t+burstSample > start+l.cfg.BurstSpread+burstTail
		l.eng.At(t, func() {
			busiest, total := 0, 0
			for _, m := range l.ms {
				n := m.processes()
				busiest = max(busiest, n)
				total += n
			}
			if total > 0 {
				r := float64(busiest) * float64(len(l.ms)) / float64(total)
				l.ratios = append(l.ratios, r)
				peak = max(peak, r)
			}
			if last {
				l.peaks = append(l.peaks, peak)
			}
		})
	}
}
