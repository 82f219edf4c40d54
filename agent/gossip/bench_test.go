package gossip_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
// every 2 s and published as agents do). Over a window of 60 s it
// measures what every member puts on the wire (IP and UDP/TCP headers
// included) and, for every report published, how long after its sample
// the last collector and the last agent held it (or a newer one). Then it
// kills a node a collector probes and times until the collector stops
// counting it. Set PEERLOAD_SCALE_N (e.g. "1000") and
// PEERLOAD_SCALE_WINDOW to choose.
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
	for _, n := range sizes {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				benchScale(b, n, window)
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

func benchScale(b *testing.B, n int, window time.Duration) {
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
	sc := startSim(b, n, collectors, agent.DefaultConfig().Interval, tr.applied)
	b.Logf("N=%d: %d members joined and converged in %s", n, n+collectors, time.Since(start).Round(time.Second))

	// Every agent samples its walk every 2 s at its own phase and
	// publishes as an agent does: on a change that matters, or after the
	// 15 s refresh.
	base := agent.DefaultConfig()
	score := rank.DefaultScoreConfig()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			walk := agenttest.NewLoadWalk(uint64(i), 4, 0.1, 0.5+float64(i%8)/2)
			var last *report.Report
			var sentAt time.Time
			seq := uint64(0)
			select {
			case <-time.After(rand.N(base.Interval)):
			case <-stop:
				return
			}
			t := time.NewTicker(base.Interval)
			defer t.Stop()
			for {
				walk.Step(base.Interval)
				now := time.Now()
				r := &report.Report{Node: sc.names[i], Generation: 1, Lifetime: base.RefreshInterval + base.Interval,
					Load: report.Load{Load1: walk.Load1, Load5: walk.Load5, Load15: walk.Load15, CPUs: 4,
						CPUUtil: min(walk.Load1/4, 1), MemTotal: 16 << 30, MemAvailable: 12 << 30, CPUPressure: -1}}
				if last == nil || now.Sub(sentAt) >= base.RefreshInterval || agent.Matters(last, r, score) {
					seq++
					r.Seq = seq
					tr.publish(i, seq, now, collectors)
					sc.members[i].Publish(r, now)
					last, sentAt = r, now
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// Collectors probe their ten best candidates as agent.probeLoop does.
	col := sc.members[n]
	probed := []string{sc.names[0], sc.names[1], sc.names[2], sc.names[3], sc.names[4],
		sc.names[5], sc.names[6], sc.names[7], sc.names[8], sc.names[9]}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(base.Memberlist.ProbeInterval / 2)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			col.Probe(probed)
		}
	}()

	warm := 2 * base.RefreshInterval
	time.Sleep(warm)
	sent0 := make([]uint64, len(sc.members))
	for i := range sc.members {
		sent0[i] = sc.memSent(i)
	}
	tr.mu.Lock()
	tr.open = true
	tr.mu.Unlock()
	t0 := time.Now()
	time.Sleep(window)
	tr.mu.Lock()
	tr.open = false
	tr.mu.Unlock()
	elapsed := time.Since(t0).Seconds()
	var agentBytes, collBytes []float64
	for i := range sc.members {
		bps := float64(sc.memSent(i)-sent0[i]) / elapsed
		if i < n {
			agentBytes = append(agentBytes, bps)
		} else {
			collBytes = append(collBytes, bps)
		}
	}
	time.Sleep(15 * time.Second) // the last reports of the window land

	// A probed node dies: the collector must stop counting it.
	victim := 5
	killed := time.Now()
	_ = sc.members[victim].Shutdown()
	agenttest.WaitFor(b, 30*time.Second, "the collector to see the killed node suspect or gone", func() (bool, string) {
		for _, m := range col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Members {
			if m.Name == sc.names[victim] {
				return m.Suspect, "alive"
			}
		}
		return true, ""
	})
	out := time.Since(killed).Seconds()

	tr.mu.Lock()
	defer tr.mu.Unlock()
	total := 0
	for _, m := range tr.published {
		total += len(m)
	}
	slices.Sort(tr.toAgents)
	slices.Sort(tr.toColls)
	slices.Sort(agentBytes)
	slices.Sort(collBytes)
	b.ReportMetric(median(agentBytes), "B/s/agent")
	b.ReportMetric(agentBytes[len(agentBytes)*99/100], "p99-B/s/agent")
	b.ReportMetric(median(collBytes), "B/s/collector")
	b.ReportMetric(pct(tr.toColls, 50), "collector-p50-s")
	b.ReportMetric(pct(tr.toColls, 99), "collector-p99-s")
	b.ReportMetric(pct(tr.toAgents, 50), "agent-p50-s")
	b.ReportMetric(pct(tr.toAgents, 99), "agent-p99-s")
	b.ReportMetric(float64(len(tr.toAgents))/float64(max(total, 1))*100, "agent-complete-%")
	b.ReportMetric(float64(len(tr.toColls))/float64(max(total, 1))*100, "collector-complete-%")
	b.ReportMetric(float64(total)/float64(n)/window.Seconds(), "reports/node/s")
	b.ReportMetric(out, "kill-out-s")
}

func (sc *simCluster) memSent(i int) uint64 { return sc.transports[i].sent.Load() }

func median(sorted []float64) float64 { return pct(sorted, 50) }

func pct(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	return sorted[int(float64(len(sorted)-1)*p/100)]
}
