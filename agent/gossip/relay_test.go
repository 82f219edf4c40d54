package gossip_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/report"
)

// simCluster is a cluster of gossip members on one memNet.
type simCluster struct {
	// dilation stretches every timing of the simulation (see dilate).
	dilation   time.Duration
	net        *memNet
	transports []*memTransport
	members    []*gossip.Member
	names      []string
	seq        []uint64
	// rumours counts memberlist's failure-detection rumours.
	rumours rumourCounter
	// ml and interval are every member's memberlist timings and
	// sampling interval, dilated.
	ml       *memberlist.Config
	interval time.Duration
	// tuneMember, when set, is applied to every member's Config.
	tuneMember func(*gossip.Config)
}

// rumourCounter counts memberlist's log lines about suspicions (a member
// suspected another) and refutations (a suspected member said it is
// alive): each starts a rumour every member retransmits, and a starved
// simulation makes many. It is every member's slog handler: the member
// routes memberlist's lines through its Logger.
type rumourCounter struct{ suspicions, refutations atomic.Uint64 }

func (c *rumourCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (c *rumourCounter) Handle(_ context.Context, r slog.Record) error {
	switch {
	case strings.HasPrefix(r.Message, "Suspect "):
		c.suspicions.Add(1)
	case strings.HasPrefix(r.Message, "Refuting a suspect"):
		c.refutations.Add(1)
	}
	return nil
}

func (c *rumourCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *rumourCounter) WithGroup(string) slog.Handler      { return c }

// startSim starts agents (and collectors, named col0...) on a memNet with
// the LAN profile's memberlist timings (robust on a busy machine) and the
// given sampling interval, each joined to the first, and waits until every
// member lists every other. Every timing, the network's latency included,
// is stretched by dilation (1: none): a simulation that runs slower than
// real time on a busy machine keeps its members' timeouts honest, and its
// results are read back at real speed (latency ÷ dilation, bytes per
// second × dilation).
func startSim(t testing.TB, agents, collectors int, interval time.Duration, dilation int, applied func(observer int, r *report.Report, sent time.Time)) *simCluster {
	t.Helper()
	return startSimTuned(t, agents, collectors, interval, dilation, applied, nil, nil)
}

// startSimTuned is startSim with tune, when set, applied to every
// member's memberlist timings after dilation (a test that must rule out
// a repair path switches it off), and tuneMember, when set, to every
// member's Config (a benchmark that switches an idea off).
func startSimTuned(t testing.TB, agents, collectors int, interval time.Duration, dilation int, applied func(observer int, r *report.Report, sent time.Time), tune func(*memberlist.Config), tuneMember func(*gossip.Config)) *simCluster {
	t.Helper()
	k := time.Duration(max(dilation, 1))
	sc := &simCluster{dilation: k, net: newMemNet(), seq: make([]uint64, agents), tuneMember: tuneMember}
	lat := sc.net.latency
	sc.net.latency = func() time.Duration { return k * lat() }
	sc.ml = agent.DefaultConfig().Memberlist
	for _, d := range []*time.Duration{&sc.ml.ProbeInterval, &sc.ml.ProbeTimeout, &sc.ml.GossipInterval, &sc.ml.PushPullInterval,
		&sc.ml.TCPTimeout, &sc.ml.GossipToTheDeadTime} {
		*d *= k
	}
	if tune != nil {
		tune(sc.ml)
	}
	sc.interval = interval * k
	for i := range agents + collectors {
		if i%100 == 99 {
			fmt.Fprintf(os.Stderr, "sim: %d members joined\n", i)
		}
		name := fmt.Sprintf("node%04d", i)
		if i >= agents {
			name = fmt.Sprintf("col%d", i-agents)
		}
		var onApplied func(*report.Report, time.Time)
		if applied != nil {
			onApplied = func(r *report.Report, sent time.Time) { applied(i, r, sent) }
		}
		m, tr := sc.newMember(t, name, i >= agents, onApplied)
		sc.transports = append(sc.transports, tr)
		if i > 0 {
			// Join in small steps, as machines boot, so no member's
			// handoff queue overflows with a thousand greetings at once.
			agenttest.WaitFor(t, time.Minute, name+" to join", func() (bool, string) {
				_, err := m.Join([]string{sc.members[0].GossipAddr()})
				return err == nil, fmt.Sprint(err)
			})
		}
		sc.members = append(sc.members, m)
		sc.names = append(sc.names, name)
	}
	// Joining hundreds of members within a minute overflows memberlist's
	// broadcast queues, as a lab that boots at once does; its periodic
	// push/pull (minutes at this size) would repair it. A member that
	// lists too few does one push/pull with a random member now instead.
	n := len(sc.members)
	agenttest.WaitFor(t, 5*time.Minute, fmt.Sprintf("all %d members to list each other", n), func() (bool, string) {
		short, state := 0, ""
		for _, m := range sc.members {
			if got := m.NumMembers(); got != n {
				short++
				state = fmt.Sprintf("%d members list fewer than %d (one lists %d)", short, n, got)
				_, _ = m.Join([]string{sc.members[rand.N(n)].GossipAddr()})
			}
		}
		return short == 0, state
	})
	return sc
}

// newMember starts a member of the simulation on its network, joined to
// no one, with the cluster's key, label and timings.
func (sc *simCluster) newMember(t testing.TB, name string, collector bool, applied func(*report.Report, time.Time)) (*gossip.Member, *memTransport) {
	t.Helper()
	return sc.newMemberWith(t, name, collector, applied, nil, nil)
}

// newMemberWith is newMember with tune, when set, applied to the member's
// Config and received counting what it receives.
func (sc *simCluster) newMemberWith(t testing.TB, name string, collector bool, applied func(*report.Report, time.Time), tune func(*gossip.Config), received func(string)) (*gossip.Member, *memTransport) {
	t.Helper()
	mlc := *sc.ml
	tr := sc.net.NewTransport()
	mlc.Transport = tr
	key := make([]byte, 32)
	key[0] = 9
	cfg := &gossip.Config{
		Name:       name,
		Meta:       report.Meta{Collector: collector},
		Keys:       [][]byte{key},
		Label:      "peerload-lab",
		Memberlist: &mlc,
		Interval:   sc.interval,
		Applied:    applied,
		Logger:     slog.New(&sc.rumours),
	}
	if sc.tuneMember != nil {
		sc.tuneMember(cfg)
	}
	if tune != nil {
		tune(cfg)
	}
	m, err := gossip.New(cfg, received)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m, tr
}

// publish makes agent i publish load1.
func (sc *simCluster) publish(i int, load1 float64) *report.Report {
	sc.seq[i]++
	r := &report.Report{Node: sc.names[i], Generation: 1, Seq: sc.seq[i], Lifetime: 17 * time.Second,
		Load: report.Load{Load1: load1, Load5: 1, Load15: 1, CPUs: 4, MemTotal: 16 << 30, MemAvailable: 8 << 30, CPUPressure: -1}}
	sc.members[i].Publish(r, time.Now())
	return r
}

// refresh republishes every agent's load load1 + i/100 every period until
// the returned function is called.
func (sc *simCluster) refresh(period time.Duration, load1 float64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			for i := range sc.seq {
				sc.publish(i, load1+float64(i)/100)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// holds reports whether member m holds node's report seq or newer.
func holds(m *gossip.Member, node string, seq uint64) (bool, string) {
	v := m.View(time.Now(), time.Hour, func(gossip.Held) bool { return false })
	h, ok := v.Reports[node]
	if !ok {
		return false, v.Self + " holds nothing of " + node
	}
	return h.Report.Seq >= seq, fmt.Sprintf("%s holds %s seq %d, want %d", v.Self, node, h.Report.Seq, seq)
}

// TestRelayReachesEveryMember: in a cluster of 20 agents (four columns) and
// two collectors, reports reach every member: at the collectors straight
// away, through the relays (whole at an epoch's start, compact
// after) at the agents, with the hot fields intact.
func TestRelayReachesEveryMember(t *testing.T) {
	var mu sync.Mutex
	compact := 0
	sc := startSim(t, 20, 2, 250*time.Millisecond, 1, func(_ int, r *report.Report, _ time.Time) {
		if r.Base != r.Seq {
			mu.Lock()
			compact++
			mu.Unlock()
		}
	})
	for round := range 3 {
		var last []*report.Report
		for i := range 20 {
			last = append(last, sc.publish(i, float64(round)+float64(i)/100))
		}
		// As agents do, every node publishes again after a refresh
		// interval (here 2 s), which repairs a batch a member missed.
		stop := sc.refresh(2*time.Second, float64(round))
		for _, m := range sc.members {
			for _, r := range last {
				// A member a starved machine made look dead comes back
				// at the latest with memberlist's push/pull (30 s).
				agenttest.WaitFor(t, 90*time.Second, "a report to reach every member", func() (bool, string) {
					if v := m.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }); v.Self == r.Node {
						return true, ""
					}
					return holds(m, r.Node, r.Seq)
				})
			}
		}
		stop()
	}
	v := sc.members[17].View(time.Now(), time.Hour, func(gossip.Held) bool { return false })
	if h := v.Reports["node0013"].Report; h.Load.Load1 != 2.13 || h.Load.MemAvailable>>20 != 8<<10 || h.Load.CPUs != 4 {
		t.Errorf("node0017 rebuilt node0013's report as %+v", h)
	}
	mu.Lock()
	defer mu.Unlock()
	if compact == 0 {
		t.Error("no report travelled compact")
	}
}

// TestMissedEpochIsAskedFor: a member that holds another epoch of a node
// asks the node for its report and then applies its compact entries.
func TestMissedEpochIsAskedFor(t *testing.T) {
	sc := startSim(t, 3, 0, 250*time.Millisecond, 1, nil)
	r := sc.publish(0, 1)
	for _, m := range sc.members[1:] {
		agenttest.WaitFor(t, 5*time.Second, "the first report everywhere", func() (bool, string) { return holds(m, r.Node, r.Seq) })
	}
	// Node 0 restarts (generation 2) while its packets are lost, long
	// enough for the batch with the new epoch's whole report to go; its
	// next report travels compact.
	from := sc.members[0].GossipAddr()
	sc.net.setDrop(func(src, _ string) bool { return src == from })
	before := sc.members[0].Stats().BatchesSent
	sc.members[0].Publish(&report.Report{Node: sc.names[0], Generation: 2, Seq: 1, Lifetime: time.Second,
		Load: report.Load{Load1: 1, CPUs: 4, CPUPressure: -1}}, time.Now())
	agenttest.WaitFor(t, 5*time.Second, "node 0 to send its batch", func() (bool, string) {
		return sc.members[0].Stats().BatchesSent > before, ""
	})
	sc.net.setDrop(nil)
	sc.members[0].Publish(&report.Report{Node: sc.names[0], Generation: 2, Seq: 2, Lifetime: time.Second,
		Load: report.Load{Load1: 3, CPUs: 4, CPUPressure: -1}}, time.Now())
	for _, m := range sc.members[1:] {
		agenttest.WaitFor(t, 5*time.Second, "generation 2 everywhere", func() (bool, string) {
			v := m.View(time.Now(), time.Hour, func(gossip.Held) bool { return false })
			h := v.Reports[r.Node].Report
			return h.Generation == 2 && h.Seq == 2 && h.Load.Load1 == 3, fmt.Sprintf("%+v", h)
		})
	}
}

// TestColumnsAndPeriod pins the grid's shape: one column below 16 agents,
// 4 at 16, 8 at 100, 16 at 1,000, and a relay period that grows with log2 N.
func TestColumnsAndPeriod(t *testing.T) {
	for n, want := range map[int]int{1: 1, 15: 1, 16: 4, 100: 8, 1000: 16} {
		if got := gossip.Columns(n); got != want {
			t.Errorf("columns(%d) = %d, want %d", n, got, want)
		}
	}
	for n, want := range map[int]time.Duration{4: 2 * time.Second, 10: 2 * time.Second, 100: 3543 * time.Millisecond, 1000: 5315 * time.Millisecond, 100000: 6 * time.Second} {
		if got := gossip.RelayPeriod(2*time.Second, n).Round(time.Millisecond); got != want {
			t.Errorf("relayPeriod(2s, %d) = %s, want %s", n, got, want)
		}
	}
}

// TestCollectorsGetCompactEntries: a node sends a collector the report
// that begins an epoch whole and the reports that continue it as compact
// entries, which the collector rebuilds with every field it ranks by; a
// collector that missed an epoch's start asks for it.
func TestCollectorsGetCompactEntries(t *testing.T) {
	sc := startSim(t, 2, 1, 250*time.Millisecond, 1, nil)
	node, col := sc.members[0], sc.members[2]
	from, to := node.GossipAddr(), col.GossipAddr()
	var mu sync.Mutex
	var sizes []int
	watch := func(src, dst string, size int) {
		if src == from && dst == to {
			mu.Lock()
			sizes = append(sizes, size)
			mu.Unlock()
		}
	}
	sc.net.watch.Store(&watch)
	// largest is the largest packet the node sent the collector since the
	// last call.
	largest := func() int {
		mu.Lock()
		defer mu.Unlock()
		m := slices.Max(append(sizes, 0))
		sizes = nil
		return m
	}
	publish := func(gen, seq uint64, l report.Load) *report.Report {
		l.CPUs, l.MemTotal, l.Load5, l.Load15, l.CPUPressure = 4, 16<<30, 1, 1, -1
		r := &report.Report{Node: sc.names[0], Generation: gen, Seq: seq, Lifetime: 17 * time.Second, Load: l}
		node.Publish(r, time.Now())
		return r
	}
	held := func(name string) report.Load {
		return col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Reports[name].Report.Load
	}

	r := publish(1, 1, report.Load{Load1: 1, CPUUtil: 0.25, MemAvailable: 8 << 30, Users: 3})
	agenttest.WaitFor(t, 10*time.Second, "the first report at the collector", func() (bool, string) { return holds(col, r.Node, r.Seq) })
	whole := largest()
	r = publish(1, 2, report.Load{Load1: 2.57, CPUUtil: 0.52, MemAvailable: 5 << 30, Users: 3})
	agenttest.WaitFor(t, 10*time.Second, "the second report at the collector", func() (bool, string) { return holds(col, r.Node, r.Seq) })
	if compact := largest(); compact > whole-25 {
		t.Errorf("the report that continues an epoch took a packet of %d bytes to the collector, the one that began it %d: not compact", compact, whole)
	}
	l := held(r.Node)
	if l.Load1 != 2.57 || math.Abs(l.CPUUtil-0.52) > 0.002 || math.Abs(float64(l.MemAvailable)-5<<30) > 1<<18 || l.Users != 3 || l.CPUs != 4 {
		t.Errorf("the collector rebuilt %+v", l)
	}

	// The node restarts (generation 2) while its packets to the collector
	// are lost: the collector misses the new epoch's whole report, gets
	// the next as a compact entry and asks for the report.
	sc.net.setDrop(func(src, dst string) bool { return src == from && dst == to })
	publish(2, 1, report.Load{Load1: 1, Users: 1, MemAvailable: 8 << 30})
	sc.net.setDrop(nil)
	r = publish(2, 2, report.Load{Load1: 3.5, Users: 1, MemAvailable: 8 << 30})
	agenttest.WaitFor(t, 10*time.Second, "generation 2 at the collector", func() (bool, string) {
		h := col.View(time.Now(), time.Hour, func(gossip.Held) bool { return false }).Reports[r.Node].Report
		return h.Generation == 2 && h.Seq == 2, fmt.Sprintf("the collector holds generation %d seq %d", h.Generation, h.Seq)
	})
	if l := held(r.Node); l.Load1 != 3.5 || l.Users != 1 {
		t.Errorf("the collector holds %+v after the new epoch", l)
	}
}
