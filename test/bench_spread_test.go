package test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/test/lab"
)

// BenchmarkLabMembershipSpread times, on real processes, how fast
// membership news reaches every member's view: N `peerload agent`
// processes (LAN defaults, the lab's keyring and label) and a collector,
// each in its own network namespace. Loads travel by reports and the
// relay; memberlist's gossip carries only the rumours of joins, leaves and
// failures, and this is what its interval costs. EVENTS times each (default
// 2), one after the other:
//   - join: a new agent starts; until every agent counts it as a candidate
//     (`peerload top` can hand it out) and the collector does;
//   - leave: an agent gets TERM (it leaves gracefully); until no agent and
//     not the collector counts it;
//   - fail: an agent is killed with -9; the same.
//
// The machines under test are in pool "spread" (so the views polled are
// small, and the collector probes them as it probes any answer set's top).
// Every member's view is polled every 0.5 s; a time is the midpoint
// between the poll that saw the change and the one before (±0.25 s).
// PEERLOAD_SPREAD_BINS lists the peerload binaries to compare, one lab
// each, as name=path (e.g. "200ms=/tmp/a/peerload,1s=/tmp/b/peerload";
// default: the lab's binary); PEERLOAD_LAB_N sizes the lab (default 100).
// Run: make build && PEERLOAD_BIN=$PWD/bin go test -run '^$' -bench '^BenchmarkLabMembershipSpread$' -benchtime 1x -timeout 60m ./test/
func BenchmarkLabMembershipSpread(b *testing.B) {
	n := envInt("PEERLOAD_LAB_N", 100)
	events := envInt("PEERLOAD_SPREAD_EVENTS", 2)
	type variant struct{ name, bin string }
	variants := []variant{{"default", ""}}
	if s := os.Getenv("PEERLOAD_SPREAD_BINS"); s != "" {
		variants = nil
		for _, f := range strings.Split(s, ",") {
			name, bin, ok := strings.Cut(f, "=")
			if !ok {
				b.Fatalf("PEERLOAD_SPREAD_BINS: %q is not name=path", f)
			}
			variants = append(variants, variant{name, bin})
		}
	}
	for range b.N {
		for _, v := range variants {
			b.Run(v.name, func(b *testing.B) { benchLabSpread(b, n, events, v.bin) })
		}
	}
}

// labSpread are the seconds from events to each observer, by role, the
// slowest event's last observer, and the observers never reached.
type labSpread struct {
	agents, colls []float64
	last          float64
	missing       int
}

func (st *labSpread) report(b *testing.B, name string) {
	slices.Sort(st.agents)
	slices.Sort(st.colls)
	b.ReportMetric(percentile(st.agents, 50), name+"-agents-p50-s")
	b.ReportMetric(percentile(st.agents, 99), name+"-agents-p99-s")
	b.ReportMetric(percentile(st.colls, 50), name+"-colls-p50-s")
	b.ReportMetric(st.last, name+"-last-max-s")
	b.ReportMetric(float64(st.missing), name+"-missing")
}

// watch polls every observer's view of pool "spread" every 0.5 s from t0
// until node's being a candidate there equals want, or until timeout.
func (st *labSpread) watch(b *testing.B, obs []*lab.Agent, t0 time.Time, node string, want bool, timeout time.Duration) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, o := range obs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the observers' polls over the period.
			time.Sleep(time.Duration(i) * 500 * time.Millisecond / time.Duration(len(obs)))
			prev := t0
			for time.Since(t0) < timeout {
				body, err := o.Get(lab.AgentAPI, "/v1/nodes?pool=spread")
				at := time.Now()
				var v lab.View
				if err == nil && json.Unmarshal(body, &v) == nil {
					n := v.Node(node)
					if (n != nil && n.Candidate) == want {
						s := (prev.Sub(t0) + at.Sub(t0)).Seconds() / 2
						mu.Lock()
						if o.Opts.Collector {
							st.colls = append(st.colls, s)
						} else {
							st.agents = append(st.agents, s)
						}
						st.last = max(st.last, s)
						mu.Unlock()
						return
					}
				}
				prev = at
				time.Sleep(500 * time.Millisecond)
			}
			mu.Lock()
			st.missing++
			st.last = timeout.Seconds()
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func benchLabSpread(b *testing.B, n, events int, bin string) {
	l := lab.New(b, lab.Options{})
	spread := []string{"spread"}
	agents := make([]*lab.Agent, n)
	for i := range n {
		opts := lab.AgentOptions{NoStart: true, Bin: bin}
		if i >= n-2*events {
			opts.Pools = spread
		}
		agents[i] = l.AddAgent(fmt.Sprintf("h%d", i+1), opts)
	}
	col := l.AddAgent("col", lab.AgentOptions{Collector: true, NoStart: true, Bin: bin})
	joiners := make([]*lab.Agent, events)
	for e := range joiners {
		joiners[e] = l.AddAgent(fmt.Sprintf("new%d", e+1), lab.AgentOptions{NoStart: true, Bin: bin, Pools: spread})
	}
	l.PinNeighbors(l.Hosts())
	for _, a := range append(agents, col) {
		a.Process.Start()
	}
	all := lab.Names(agents...)
	lab.WaitView(b, 3*time.Minute, col, lab.SeesCandidates(all...))
	for _, a := range agents {
		lab.WaitView(b, 3*time.Minute, a, lab.SeesCandidates(all...))
	}
	// Past the joins' rumours and a refresh interval.
	b.Logf("%d agents and a collector converged; settling 30 s", n)
	time.Sleep(30 * time.Second)

	const deadline = 90 * time.Second
	obs := append(slices.Clone(agents), col)
	var join, leave, fail labSpread
	for _, j := range joiners {
		t0 := time.Now()
		j.Process.Start()
		join.watch(b, obs, t0, j.Name, true, deadline)
		obs = append(obs, j)
		time.Sleep(2 * time.Second)
	}
	for e := range events {
		v := agents[n-2*events+e]
		obs = slices.DeleteFunc(obs, func(o *lab.Agent) bool { return o == v })
		t0 := time.Now()
		go func() { _ = v.Process.Stop(10 * time.Second) }()
		leave.watch(b, obs, t0, v.Name, false, deadline)
		time.Sleep(2 * time.Second)
	}
	for e := range events {
		v := agents[n-events+e]
		obs = slices.DeleteFunc(obs, func(o *lab.Agent) bool { return o == v })
		t0 := time.Now()
		v.Process.Kill()
		fail.watch(b, obs, t0, v.Name, false, deadline)
		time.Sleep(2 * time.Second)
	}
	join.report(b, "join")
	leave.report(b, "leave")
	fail.report(b, "fail")
}
