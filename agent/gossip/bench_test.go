package gossip_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// BenchmarkScale runs the real gossip code (memberlist with the LAN
// profile, AES-GCM and a label, this package's relay) for N agents and two
// collectors in one process, over an in-memory network with a LAN's
// latency (0.1–0.5 ms a packet), under the class-start load model
// (agenttest.LoadWalk, σ = 0.1 per core per second on 4 cores, sampled
// every 2 s and published as agents do). Over a window of 60 s it measures
// what every member puts on the wire (IP and UDP/TCP headers included)
// and, for every report published, how long after its sample the last
// collector and the last agent held it (or a newer one), and what every
// member sent by kind (Stats.Sent) per second and agent, as on the wire:
// probe, report, relay, repair and greeting with IPv4 and UDP headers per
// packet, pushpull as the streams' bytes, and tcp-overhead-B/s/agent for
// TCP's headers (the in-memory network has no control segments), so that
// the kinds and TCP's headers add up to all-B/s/agent (what every member,
// collectors too, sent, divided by the agents). Then it kills a node a
// collector probes and times until the collector stops counting it. Set
// PEERLOAD_SCALE_N (e.g. "100,1000") and PEERLOAD_SCALE_WINDOW to choose.
// Clusters above 300 run with their time stretched fourfold
// (PEERLOAD_SCALE_DILATION; see startSim): one process on two shared cores
// cannot keep a thousand members' timers in real time, and members it
// starves would time each other out.
// Run: go test -run '^$' -bench '^BenchmarkScale$' -benchtime 1x ./agent/gossip/
func BenchmarkScale(b *testing.B) {
	sizes := []int{1000}
	if s := os.Getenv("PEERLOAD_SCALE_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 2 {
				b.Fatalf("PEERLOAD_SCALE_N: %q is not a cluster size", f)
			}
			sizes = append(sizes, n)
		}
	}
	window := 60 * time.Second
	if s := os.Getenv("PEERLOAD_SCALE_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("PEERLOAD_SCALE_WINDOW: %v", err)
		}
		window = d
	}
	// A thousand members hold a few hundred MB of state between them: the
	// default GC target would spend the cores the members need.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	for _, n := range sizes {
		dilation := 1
		if n > 300 {
			dilation = 4
		}
		if s := os.Getenv("PEERLOAD_SCALE_DILATION"); s != "" {
			d, err := strconv.Atoi(s)
			if err != nil || d < 1 {
				b.Fatalf("PEERLOAD_SCALE_DILATION: %q is not a factor of 1 or more", s)
			}
			dilation = d
		}
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				benchScale(b, n, dilation, window)
			}
		})
	}
}

// tracker follows every report published in the window until the last
// agent and the last collector hold it or a newer one.
type tracker struct {
	mu        sync.Mutex
	agents    int
	held      [][]uint64 // observer -> origin -> highest seq held
	published []map[uint64]*tracked
	open      bool
	toAgents  []float64 // seconds from sample to the last agent
	toColls   []float64
	index     map[string]int
}

type tracked struct {
	taken             time.Time
	agentsLeft, colls int
}

func (tr *tracker) applied(observer int, r *report.Report, _ time.Time) {
	origin, ok := tr.index[r.Node]
	if !ok {
		return
	}
	now := time.Now()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	h := &tr.held[observer][origin]
	for s := *h + 1; s <= r.Seq; s++ {
		p := tr.published[origin][s]
		if p == nil {
			continue
		}
		if observer < tr.agents {
			p.agentsLeft--
			if p.agentsLeft == 0 {
				tr.toAgents = append(tr.toAgents, now.Sub(p.taken).Seconds())
			}
		} else {
			p.colls--
			if p.colls == 0 {
				tr.toColls = append(tr.toColls, now.Sub(p.taken).Seconds())
			}
		}
	}
	*h = max(*h, r.Seq)
}

func (tr *tracker) publish(origin int, seq uint64, taken time.Time, collectors int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.open {
		tr.published[origin][seq] = &tracked{taken: taken, agentsLeft: tr.agents - 1, colls: collectors}
	}
}

// scaleRun is a running simulated cluster with its load driver.
type scaleRun struct {
	sc          *simCluster
	tr          *tracker
	n           int
	collectors  int
	everySample atomic.Bool // publish every sample, not only those that matter
	stop        chan struct{}
	wg          sync.WaitGroup
	closed      sync.Once
}

// close stops the load driver and shuts every member down; it is safe to
// call twice.
func (run *scaleRun) close() {
	run.closed.Do(func() {
		close(run.stop)
		run.wg.Wait()
		for _, m := range run.sc.members {
			_ = m.Shutdown()
		}
	})
}

// scaleStats is one measurement window.
type scaleStats struct {
	agentBytes, collBytes []float64 // sorted, bytes per second each
	toAgents, toColls     []float64 // sorted, seconds from sample to the last one
	published             int
	window                time.Duration
	// late is how late a timer fired in the window (sorted, in the
	// simulation's time), and faithful how late it may fire before the
	// figures stop describing a real cluster (see timerWatch).
	late     []time.Duration
	faithful time.Duration
	// allBytes is what every member (agents and collectors) put on the
	// wire, per second and agent, and kinds the same by kind (see
	// wireByKind); what they miss of allBytes is TCP's headers.
	allBytes float64
	kinds    map[string]float64
}

// timerWatch measures how late timers fire while a simulation runs: it
// sets a timer every period and records how long after its due time its
// goroutine ran. Every member's timers (memberlist's probes and gossip,
// the relay) share this process's runtime, so a machine too busy to run
// them on time shows here: timeouts then fire on members that were only
// waiting for a core, their suspicions and refutations are rumours every
// member retransmits, and the bytes measured describe the starved
// machine, not a cluster. That is how the same build gave figures a
// third apart an hour apart.
type timerWatch struct {
	stop chan struct{}
	done chan struct{}
	late []time.Duration
}

func watchTimers(period time.Duration) *timerWatch {
	w := &timerWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTimer(period)
		defer t.Stop()
		due := time.Now().Add(period)
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
			}
			now := time.Now()
			w.late = append(w.late, now.Sub(due))
			due = now.Add(period)
			t.Reset(period)
		}
	}()
	return w
}

// end stops the watch and returns the lateness it saw, sorted, divided by
// dilation (the simulation's time).
func (w *timerWatch) end(dilation time.Duration) []time.Duration {
	close(w.stop)
	<-w.done
	for i := range w.late {
		w.late[i] /= dilation
	}
	slices.Sort(w.late)
	return w.late
}

// starved reports whether the window's timers fired so late that the
// simulation no longer describes a real cluster: at its 99th percentile,
// later than a tenth of memberlist's probe timeout.
func (st scaleStats) starved() bool {
	return len(st.late) == 0 || pctDuration(st.late, 99) > st.faithful
}

// wireByKind is what the members sent of each kind between two reads of
// their Stats, as on the wire: IPv4 and UDP headers (ipUDPHeaders) added
// to every packet; a stream's bytes without TCP's headers, which are not
// the member's to count.
func wireByKind(before, after []gossip.Stats) map[string]uint64 {
	out := map[string]uint64{}
	for i := range after {
		for _, k := range gossip.Kinds() {
			a, b := after[i].Sent[k], before[i].Sent[k]
			out[k] += a.Bytes - b.Bytes + (a.Packets-b.Packets)*ipUDPHeaders
		}
	}
	return out
}

func stats(members []*gossip.Member) []gossip.Stats {
	out := make([]gossip.Stats, len(members))
	for i, m := range members {
		out[i] = m.Stats()
	}
	return out
}

// startScale starts a cluster of n agents and two collectors, each
// member's Config passed to tune when it is set, and drives their load.
func startScale(b *testing.B, n, dilation int, tune func(*gossip.Config)) *scaleRun {
	const collectors = 2
	tr := &tracker{agents: n, index: map[string]int{}}
	for range n + collectors {
		tr.held = append(tr.held, make([]uint64, n))
	}
	for i := range n {
		tr.published = append(tr.published, map[uint64]*tracked{})
		tr.index[fmt.Sprintf("node%04d", i)] = i
	}
	start := time.Now()
	sc := startSimTuned(b, n, collectors, agent.DefaultConfig().Interval, dilation, tr.applied, nil, tune)
	b.Logf("N=%d: %d members joined and converged in %s", n, n+collectors, time.Since(start).Round(time.Second))
	run := &scaleRun{sc: sc, tr: tr, n: n, collectors: collectors, stop: make(chan struct{})}
	b.Cleanup(run.close)

	// Every agent samples its walk every 2 s at its own phase and
	// publishes as an agent does: on a change that matters, or after the
	// 15 s refresh.
	base := sc.config()
	score := rank.DefaultScoreConfig()
	for i := range n {
		run.wg.Add(1)
		go func() {
			defer run.wg.Done()
			walk := agenttest.NewLoadWalk(uint64(i), 4, 0.1, 0.5+float64(i%8)/2)
			step := base.Interval / sc.dilation // the walk runs in real time
			var last *report.Report
			var sentAt time.Time
			seq := uint64(0)
			select {
			case <-time.After(rand.N(base.Interval)):
			case <-run.stop:
				return
			}
			t := time.NewTicker(base.Interval)
			defer t.Stop()
			for {
				walk.Step(step)
				now := time.Now()
				r := &report.Report{Node: sc.names[i], Generation: 1, Lifetime: base.RefreshInterval + base.Interval,
					Load: report.Load{Load1: walk.Load1, Load5: walk.Load5, Load15: walk.Load15, CPUs: 4,
						CPUUtil: min(walk.Load1/4, 1), MemTotal: 16 << 30, MemAvailable: 12 << 30, CPUPressure: -1}}
				if last == nil || now.Sub(sentAt) >= base.RefreshInterval || run.everySample.Load() || agent.Matters(last, r, score) {
					seq++
					r.Seq = seq
					tr.publish(i, seq, now, collectors)
					sc.members[i].Publish(r, now)
					last, sentAt = r, now
				}
				select {
				case <-run.stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	return run
}

// measure opens the tracker for window, then waits for the window's last
// reports to land (settle) and returns what it saw.
func (run *scaleRun) measure(window, settle time.Duration) scaleStats {
	sc, tr := run.sc, run.tr
	k := sc.dilation
	window, settle = window*k, settle*k
	sent0 := make([]uint64, len(sc.members))
	for i := range sc.members {
		sent0[i] = sc.memSent(i)
	}
	stats0 := stats(sc.members)
	tr.mu.Lock()
	tr.open = true
	for i := range tr.published {
		clear(tr.published[i])
	}
	tr.toAgents, tr.toColls = nil, nil
	tr.mu.Unlock()
	t0 := time.Now()
	watch := watchTimers(10 * time.Millisecond)
	time.Sleep(window)
	tr.mu.Lock()
	tr.open = false
	tr.mu.Unlock()
	stats1 := stats(sc.members)
	elapsed := time.Since(t0).Seconds()
	st := scaleStats{window: window / k, late: watch.end(k), faithful: sc.ml.ProbeTimeout / k / 10, kinds: map[string]float64{}}
	for i := range sc.members {
		bps := float64(sc.memSent(i)-sent0[i]) / elapsed * float64(k)
		if i < run.n {
			st.agentBytes = append(st.agentBytes, bps)
		} else {
			st.collBytes = append(st.collBytes, bps)
		}
		st.allBytes += bps / float64(run.n)
	}
	for kind, v := range wireByKind(stats0, stats1) {
		st.kinds[kind] = float64(v) / elapsed * float64(k) / float64(run.n)
	}
	time.Sleep(settle)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, m := range tr.published {
		st.published += len(m)
	}
	for _, v := range tr.toAgents {
		st.toAgents = append(st.toAgents, v/float64(k))
	}
	for _, v := range tr.toColls {
		st.toColls = append(st.toColls, v/float64(k))
	}
	for _, l := range [][]float64{st.agentBytes, st.collBytes, st.toAgents, st.toColls} {
		slices.Sort(l)
	}
	return st
}

// report reports the window's figures, or, when the machine starved the
// simulation (see starved), only how late its timers fired: such figures
// would differ from run to run with the machine's other work.
func (st scaleStats) report(b *testing.B, prefix string) {
	b.ReportMetric(float64(pctDuration(st.late, 50))/1e6, prefix+"timer-late-p50-ms")
	b.ReportMetric(float64(pctDuration(st.late, 99))/1e6, prefix+"timer-late-p99-ms")
	if st.starved() {
		b.Logf("%stimers fired up to %s late (99th percentile, in the simulation's time), more than the %s a faithful simulation allows: the machine was too busy, so the window's figures are withheld",
			prefix, pctDuration(st.late, 99), st.faithful)
		b.ReportMetric(1, prefix+"starved")
		return
	}
	b.ReportMetric(median(st.agentBytes), prefix+"B/s/agent")
	b.ReportMetric(pct(st.agentBytes, 99), prefix+"p99-B/s/agent")
	b.ReportMetric(median(st.collBytes), prefix+"B/s/collector")
	b.ReportMetric(pct(st.toColls, 50), prefix+"collector-p50-s")
	b.ReportMetric(pct(st.toColls, 99), prefix+"collector-p99-s")
	b.ReportMetric(pct(st.toAgents, 50), prefix+"agent-p50-s")
	b.ReportMetric(pct(st.toAgents, 99), prefix+"agent-p99-s")
	b.ReportMetric(float64(len(st.toAgents))/float64(max(st.published, 1))*100, prefix+"agent-complete-%")
	b.ReportMetric(float64(st.published)/float64(len(st.agentBytes))/st.window.Seconds(), prefix+"reports/node/s")
}

// reportKinds reports what every member sent, per second and agent, by
// kind, and the TCP headers the kinds leave out: together they are
// all-B/s/agent.
func (st scaleStats) reportKinds(b *testing.B) {
	b.ReportMetric(st.allBytes, "all-B/s/agent")
	rest := st.allBytes
	for _, k := range gossip.Kinds() {
		b.ReportMetric(st.kinds[k], k+"-B/s/agent")
		rest -= st.kinds[k]
	}
	b.ReportMetric(rest, "tcp-overhead-B/s/agent")
}

func benchScale(b *testing.B, n, dilation int, window time.Duration) {
	run := startScale(b, n, dilation, nil)
	sc := run.sc
	base := sc.config()
	// A collector probes its ten best candidates as agent.probeLoop does.
	col := sc.members[n]
	probed := sc.names[:10]
	probeEvery(&run.wg, run.stop, col, probed, base.Memberlist.ProbeInterval)
	// Steady state: past the refresh interval, and past the time every
	// member needs to retransmit the "alive" rumours of the joins.
	drain := rumourDrain(base.Memberlist, n+2) * sc.dilation
	b.Logf("N=%d: waiting %s for the joins' rumours to drain", n, max(drain, base.RefreshInterval).Round(time.Second))
	time.Sleep(max(drain, base.RefreshInterval))
	susp0, ref0 := sc.rumours.suspicions.Load(), sc.rumours.refutations.Load()
	st := run.measure(window, 10*time.Second)
	susp, ref := sc.rumours.suspicions.Load()-susp0, sc.rumours.refutations.Load()-ref0
	// Members the starved simulation wrongly declared dead would void
	// its figures: count them.
	flaps := len(col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Gone)

	// A probed node dies: the collector must stop counting it.
	victim := 5
	killed := time.Now()
	_ = sc.members[victim].Shutdown()
	agenttest.WaitFor(b, 30*time.Second*sc.dilation, "the collector to see the killed node suspect or gone", func() (bool, string) {
		for _, m := range col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Members {
			if m.Name == sc.names[victim] {
				return m.Suspect, "alive"
			}
		}
		return true, ""
	})
	st.report(b, "")
	if !st.starved() {
		st.reportKinds(b)
		b.ReportMetric(time.Since(killed).Seconds()/float64(sc.dilation), "kill-out-s")
	}
	b.ReportMetric(float64(sc.dilation), "dilation")
	b.ReportMetric(float64(flaps), "members-lost")
	// Packets a member too busy to read them lost (the simulation runs
	// every member on two cores; a real machine's socket buffer would
	// rarely overflow).
	b.ReportMetric(float64(sc.net.overflow.Load()), "overflow-packets")
	// Failure-detection rumours in the measured window: each costs every
	// member a dozen retransmissions.
	b.ReportMetric(float64(susp), "window-suspicions")
	b.ReportMetric(float64(ref), "window-refutations")
}

// BenchmarkIdeas weighs each idea of the design on a simulated cluster of
// 100 agents and two collectors (as BenchmarkScale): it starts the cluster
// once per variant, with one idea off from the start, lets it settle for
// 20 s and reports the same figures over a 30 s window, prefixed with the
// variant: design (all on), fanout (every report whole to every member:
// the design before), whole (relays carry whole reports, no compact
// entries), onecolumn (no grid: every agent sends its batch to every
// agent), fullpp (the periodic push/pull carries every report) and
// everysample (publish every sample, not only those that can move a rank).
// Run: go test -run '^$' -bench '^BenchmarkIdeas$' -benchtime 1x ./agent/gossip/
func BenchmarkIdeas(b *testing.B) {
	variants := []struct {
		name  string
		bits  uint32
		every bool
	}{
		{"design", 0, false},
		{"fanout", gossip.AblateFanOut, false},
		{"whole", gossip.AblateWhole, false},
		{"onecolumn", gossip.AblateOneColumn, false},
		{"fullpp", gossip.AblateFullPushPull, false},
		{"everysample", 0, true},
	}
	for range b.N {
		for _, v := range variants {
			run := startScale(b, 100, 1, func(c *gossip.Config) { gossip.SetAblations(c, v.bits) })
			run.everySample.Store(v.every)
			time.Sleep(20 * time.Second)
			run.measure(30*time.Second, 10*time.Second).report(b, v.name+"-")
			// The next variant's cluster gets the cores to itself.
			run.close()
		}
	}
}

// config is the agents' LAN configuration with every timing dilated as
// the simulation's.
func (sc *simCluster) config() *agent.Config {
	c := agent.DefaultConfig()
	c.Interval *= sc.dilation
	c.RefreshInterval *= sc.dilation
	c.Memberlist.ProbeInterval *= sc.dilation
	return c
}

func (sc *simCluster) memSent(i int) uint64 { return sc.transports[i].sent.Load() }

// rumourDrain is how long a member of a cluster of n that all joined
// moments ago keeps sending the joins' "alive" rumours: memberlist queues
// each of the n rumours for RetransmitMult·⌈log10(n+1)⌉ transmissions and
// sends at most GossipNodes packets of UDPBufferSize per GossipInterval
// (about 90 bytes a rumour with this project's node meta). A boot of a
// thousand machines thus costs each one minutes of rumours, and a window
// that overlaps them measures the boot, not the steady state.
func rumourDrain(ml *memberlist.Config, n int) time.Duration {
	const rumourBytes = 90
	transmits := ml.RetransmitMult * int(math.Ceil(math.Log10(float64(n+1))))
	perInterval := ml.GossipNodes * ml.UDPBufferSize
	return time.Duration(n*transmits*rumourBytes/perInterval+1) * ml.GossipInterval
}

// probeEvery makes collector col probe names every period, as
// agent.probeLoop does, until stop is closed; wg counts the goroutine.
func probeEvery(wg *sync.WaitGroup, stop <-chan struct{}, col *gossip.Member, names []string, period time.Duration) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			col.Probe(names)
		}
	}()
}

func median(sorted []float64) float64 { return pct(sorted, 50) }

func pctDuration(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return -1
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}
