package gossip_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/report"
)

// BenchmarkMembershipSpread times how fast membership news spreads at
// several memberlist gossip intervals, one simulated cluster after the
// other (as BenchmarkScale: N agents and two collectors, LAN profile,
// AES-GCM and a label, an in-memory network with a LAN's latency; every
// collector probes ten agents every probe interval as agent.probeLoop
// does). Loads travel by reports and the relay, not by memberlist's
// gossip; what that gossip still carries is the rumours of joins, leaves
// and failures, so this is what a longer interval costs. For each
// interval, EVENTS times each:
//   - join: a new agent joins one of three seeds; until every agent lists
//     it, and every collector counts it as a candidate (listed, its report
//     held, not suspect);
//   - leave: an agent leaves as the daemon does on TERM (Leave with the
//     daemon's leaveTimeout, then Shutdown); until no agent lists it and no
//     collector counts it;
//   - fail: a probed agent stops dead (kill -9); until no agent lists it
//     (memberlist declared it dead there) and no collector counts it;
//
// then once, heal: the cluster is cut in two halves (packets and streams)
// until each side has declared the other dead, and healed; from the heal
// until every member lists every member (issue 8: within 10 s).
// Figures are seconds over every observer of every event (p50, p99) and
// the slowest event's last observer (max). PEERLOAD_SPREAD_INTERVALS
// (default "200ms,500ms,1s"; "1sx6" also sets memberlist's GossipNodes
// to 6), PEERLOAD_SPREAD_N (default 100) and
// PEERLOAD_SPREAD_EVENTS (default 5) choose.
// Run: go test -run '^$' -bench '^BenchmarkMembershipSpread$' -benchtime 1x -timeout 60m ./agent/gossip/
func BenchmarkMembershipSpread(b *testing.B) {
	spec := "200ms,500ms,1s"
	if s := os.Getenv("PEERLOAD_SPREAD_INTERVALS"); s != "" {
		spec = s
	}
	type variant struct {
		interval time.Duration
		nodes    int // memberlist's GossipNodes; 0 keeps the profile's
	}
	var variants []variant
	for _, f := range strings.Split(spec, ",") {
		iv, nodes, _ := strings.Cut(f, "x")
		d, err := time.ParseDuration(iv)
		if err != nil || d <= 0 {
			b.Fatalf("PEERLOAD_SPREAD_INTERVALS: %q is not an interval (optionally xNODES)", f)
		}
		v := variant{interval: d}
		if nodes != "" {
			if v.nodes, err = strconv.Atoi(nodes); err != nil || v.nodes < 1 {
				b.Fatalf("PEERLOAD_SPREAD_INTERVALS: %q: bad gossip node count", f)
			}
		}
		variants = append(variants, v)
	}
	n, events := envInt(b, "PEERLOAD_SPREAD_N", 100), envInt(b, "PEERLOAD_SPREAD_EVENTS", 5)
	for range b.N {
		for _, v := range variants {
			name := "gossip=" + v.interval.String()
			if v.nodes > 0 {
				name += "x" + strconv.Itoa(v.nodes)
			}
			b.Run(name, func(b *testing.B) { benchSpread(b, n, events, v.interval, v.nodes) })
		}
	}
}

func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s: %q is not a positive number", name, s)
	}
	return v
}

// spreadMember is a live member of the spread benchmark's cluster.
type spreadMember struct {
	m         *gossip.Member
	addr      string
	collector bool
}

// spreadTimes are the seconds from events to each observer, by role, and
// the slowest event's last observer.
type spreadTimes struct {
	agents, colls []float64
	last          float64
	missing       int // observers the news had not reached at the deadline
}

func (st *spreadTimes) report(b *testing.B, name string) {
	slices.Sort(st.agents)
	slices.Sort(st.colls)
	b.ReportMetric(pct(st.agents, 50), name+"-agents-p50-s")
	b.ReportMetric(pct(st.agents, 99), name+"-agents-p99-s")
	b.ReportMetric(pct(st.colls, 50), name+"-colls-p50-s")
	b.ReportMetric(pct(st.colls, 99), name+"-colls-p99-s")
	b.ReportMetric(st.last, name+"-last-max-s")
	b.ReportMetric(float64(st.missing), name+"-missing")
}

// watch polls the observers every 10 ms from t0 until done holds for each
// of them (agents) or doneColl does (collectors; nil: done too), or until
// timeout, and adds the times to st.
func (st *spreadTimes) watch(obs []spreadMember, t0 time.Time, timeout time.Duration, done, doneColl func(*gossip.Member) bool) {
	if doneColl == nil {
		doneColl = done
	}
	pending := slices.Clone(obs)
	last := 0.0
	for len(pending) > 0 && time.Since(t0) < timeout {
		pending = slices.DeleteFunc(pending, func(o spreadMember) bool {
			f := done
			if o.collector {
				f = doneColl
			}
			if !f(o.m) {
				return false
			}
			s := time.Since(t0).Seconds()
			if o.collector {
				st.colls = append(st.colls, s)
			} else {
				st.agents = append(st.agents, s)
			}
			last = max(last, s)
			return true
		})
		time.Sleep(10 * time.Millisecond)
	}
	st.missing += len(pending)
	if len(pending) > 0 {
		last = timeout.Seconds()
	}
	st.last = max(st.last, last)
}

func benchSpread(b *testing.B, n, events int, gossipInterval time.Duration, gossipNodes int) {
	sc := startSimTuned(b, n, 2, agent.DefaultConfig().Interval, 1, nil, func(ml *memberlist.Config) {
		ml.GossipInterval = gossipInterval
		if gossipNodes > 0 {
			ml.GossipNodes = gossipNodes
		}
	}, nil)
	live := make([]spreadMember, len(sc.members))
	for i, m := range sc.members {
		live[i] = spreadMember{m: m, addr: sc.transports[i].addr, collector: i >= n}
	}
	for i := range n {
		sc.publish(i, 1+float64(i)/100)
	}
	// Victims: failures among the probed agents (collectors' top ten),
	// leaves among the rest; the first three agents are the seeds.
	probed := sc.names[:10]
	var victimsFail, victimsLeave []int
	for i := 3; i < 10 && len(victimsFail) < events; i++ {
		victimsFail = append(victimsFail, i)
	}
	for i := 10; i < n && len(victimsLeave) < events; i++ {
		victimsLeave = append(victimsLeave, i)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for _, col := range sc.members[n:] {
		probeEvery(&wg, stop, col, probed, sc.ml.ProbeInterval)
	}
	// memberlist sends the least-sent rumours first, so what is left of
	// the joins' queues delays an event's rumour little: half a minute is
	// enough even where the queues take longer to drain.
	drain := min(max(rumourDrain(sc.ml, n+2), 10*time.Second), 30*time.Second)
	b.Logf("gossip %s: %d members up; waiting %s for the joins' rumours to drain", gossipInterval, n+2, drain.Round(time.Second))
	time.Sleep(drain)
	without := func(idx int) []spreadMember {
		return slices.DeleteFunc(slices.Clone(live), func(o spreadMember) bool { return o.m == sc.members[idx] })
	}
	listed := func(name string) func(*gossip.Member) bool {
		return func(m *gossip.Member) bool { l, _ := gossip.Lists(m, name); return l }
	}
	counted := func(name string) func(*gossip.Member) bool {
		return func(m *gossip.Member) bool { _, c := gossip.Lists(m, name); return c }
	}
	not := func(f func(*gossip.Member) bool) func(*gossip.Member) bool {
		return func(m *gossip.Member) bool { return !f(m) }
	}
	const deadline = 90 * time.Second
	pause := func() { time.Sleep(2 * time.Second) } // the last event's retransmissions fade

	var join spreadTimes
	for e := range events {
		name := fmt.Sprintf("new%02d", e)
		m, tr := sc.newMember(b, name, false, nil)
		m.Publish(&report.Report{Node: name, Generation: 1, Seq: 1, Lifetime: 17 * time.Second,
			Load: report.Load{Load1: 0.5, Load5: 1, Load15: 1, CPUs: 4, MemTotal: 16 << 30, MemAvailable: 8 << 30, CPUPressure: -1}}, time.Now())
		t0 := time.Now()
		if _, err := m.Join([]string{sc.members[e%3].GossipAddr()}); err != nil {
			b.Fatalf("%s: join: %v", name, err)
		}
		obs := slices.Clone(live)
		join.watch(obs, t0, deadline, listed(name), counted(name))
		live = append(live, spreadMember{m: m, addr: tr.addr})
		pause()
	}
	leaveTimeout := min(time.Second, 10*gossipInterval) // cmd/peerload's leaveTimeout
	var leave spreadTimes
	for _, v := range victimsLeave {
		obs := without(v)
		t0 := time.Now()
		go func() {
			_ = sc.members[v].Leave(leaveTimeout)
			_ = sc.members[v].Shutdown()
		}()
		leave.watch(obs, t0, deadline, not(listed(sc.names[v])), not(counted(sc.names[v])))
		live = obs
		pause()
	}
	var fail spreadTimes
	for _, v := range victimsFail {
		obs := without(v)
		t0 := time.Now()
		_ = sc.members[v].Shutdown()
		fail.watch(obs, t0, deadline, not(listed(sc.names[v])), not(counted(sc.names[v])))
		live = obs
		pause()
	}

	// Partition: two halves, a collector in each; wait until each side
	// has declared the other dead, then heal.
	side := map[string]int{}
	count := [2]int{}
	for i, o := range live {
		s := i % 2
		side[o.addr] = s
		count[s]++
	}
	sc.net.setCut(func(from, to string) bool { return side[from] != side[to] })
	tCut := time.Now()
	var split spreadTimes
	split.watch(live, tCut, 3*time.Minute, func(m *gossip.Member) bool {
		for _, o := range live {
			if o.m == m {
				return gossip.Listed(m) == count[side[o.addr]]
			}
		}
		return false
	}, nil)
	if split.missing > 0 {
		b.Fatalf("gossip %s: %d members still list the other side 3 min after the cut", gossipInterval, split.missing)
	}
	pause()
	sc.net.setCut(nil)
	var heal spreadTimes
	all := len(live)
	heal.watch(live, time.Now(), deadline, func(m *gossip.Member) bool { return gossip.Listed(m) == all }, nil)
	join.report(b, "join")
	leave.report(b, "leave")
	fail.report(b, "fail")
	b.ReportMetric(split.last, "split-s")
	b.ReportMetric(heal.last, "heal-s")
	b.ReportMetric(float64(heal.missing), "heal-missing")
	b.ReportMetric(float64(sc.net.overflow.Load()), "overflow-packets")
}
