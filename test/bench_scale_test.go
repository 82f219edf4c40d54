package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/test/lab"
)

// BenchmarkLabScale is the scale benchmark on real processes, tried as a
// new user would: N `peerload agent` processes (LAN defaults, the lab's AES
// keyring and label), each in its own network namespace with its own proc
// root, one collector agent and two CoreDNS servers (one answering the
// whole lab, one the "gpu" pool of N/10 machines). Every load1
// random-walks as agenttest.LoadWalk (σ = 0.1 per core per second, 4
// cores), written to the proc roots every second.
//
// After a 30 s settle it measures over 60 s: bytes each host sent (its
// interface counters: every packet once, IP and UDP/TCP headers included,
// Ethernet's not), what every member (agents, collector, CoreDNS) sent
// by kind from its own counters (see sentByKind), agent CPU (the scheduler's
// run time) and RSS. Over the next 45 s it polls every agent's table once a
// second, which gives each sample's time (every sample is stamped: the
// agents' uptime is a clock file) and, to ±0.5 s, when the last agent held
// it (or a newer one); the collector's table, polled every 100 ms
// throughout, gives when the collector held it. Then, under 20 queries/s to each CoreDNS, it kills -9
// the first machine of each answer and times the last answer with it.
// N defaults to 100 (PEERLOAD_LAB_N).
// Run: make build && PEERLOAD_BIN=$PWD/bin go test -run '^$' -bench '^BenchmarkLabScale$' -benchtime 1x ./test/
func BenchmarkLabScale(b *testing.B) {
	n := 100
	if s := os.Getenv("PEERLOAD_LAB_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 10 {
			b.Fatalf("PEERLOAD_LAB_N: %q is not a cluster size of 10 or more", s)
		}
		n = v
	}
	for range b.N {
		benchLabScale(b, n)
	}
}

// labNode is what the benchmark reads of one node in /v1/nodes.
type labNode struct {
	Name      string  `json:"name"`
	Candidate bool    `json:"candidate"`
	ReportAge float64 `json:"report_age_seconds"`
	Report    *struct {
		Seq    uint64  `json:"seq"`
		Uptime float64 `json:"uptime_seconds"`
	} `json:"report"`
}

func labNodes(h *lab.Host) ([]labNode, time.Time, error) {
	body, err := h.Get(lab.AgentAPI, "/v1/nodes")
	at := time.Now()
	if err != nil {
		return nil, at, err
	}
	var v struct {
		Nodes []labNode `json:"nodes"`
	}
	return v.Nodes, at, json.Unmarshal(body, &v)
}

type sampleKey struct {
	node string
	seq  uint64
}

func benchLabScale(b *testing.B, n int) {
	l := lab.New(b, lab.Options{})
	clock, clockStart := l.StartSampleClock()
	gpu := n / 10
	agents := make([]*lab.Agent, n)
	walks := make([]*agenttest.LoadWalk, n)
	index := map[string]int{}
	for i := range n {
		opts := lab.AgentOptions{CPUs: 4, NoStart: true}
		if i >= n-gpu {
			opts.Pools = []string{"gpu"}
		}
		a := l.AddAgent(fmt.Sprintf("h%d", i+1), opts)
		a.UseSampleClock(clock)
		walks[i] = agenttest.NewLoadWalk(uint64(i), 4, 0.1, 0.5+float64(i%8)/2)
		if err := a.Proc.WriteLoad(walks[i].Load1, walks[i].Load5, walks[i].Load15); err != nil {
			b.Fatal(err)
		}
		agents[i], index[a.Name] = a, i
	}
	col := l.AddAgent("col", lab.AgentOptions{Collector: true, NoStart: true})
	client := l.AddHost("client")
	l.PinNeighbors(l.Hosts())
	for _, a := range agents {
		a.Process.Start()
	}
	col.Process.Start()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	wg.Add(1)
	go func() { // the load model
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			for i, w := range walks {
				w.Step(time.Second)
				_ = agents[i].Proc.WriteLoad(w.Load1, w.Load5, w.Load15)
			}
		}
	}()
	all := lab.Names(agents...)
	lab.WaitView(b, 3*time.Minute, col, lab.SeesCandidates(all...))
	dnsAll := l.AddCoreDNS("dns", lab.CoreDNSOptions{Top: 3})
	dnsGPU := l.AddCoreDNS("dnsgpu", lab.CoreDNSOptions{Top: 3, Extra: []string{"pool gpu"}})
	l.PinNeighbors([]*lab.Host{dnsAll.Host, dnsGPU.Host})
	for _, a := range agents {
		lab.WaitView(b, 3*time.Minute, a, lab.SeesCandidates(all...))
	}
	b.Logf("%d agents, a collector and two CoreDNS converged; settling 30 s", n)
	time.Sleep(30 * time.Second)

	// The collector's table gives when the collector got each sample
	// (the poll time less the report's age); every agent's own table, polled
	// below, gives the sample's time (its uptime stamp). A collector holds
	// a report rebuilt from a compact entry, whose uptime is its epoch's
	// advanced by whole seconds, not the node's stamp.
	var mu sync.Mutex
	taken := map[sampleKey]time.Time{}
	atCollector := map[sampleKey]time.Time{}
	polling := true
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			nodes, at, err := labNodes(col.Host)
			if err != nil {
				continue
			}
			mu.Lock()
			if polling {
				for _, nd := range nodes {
					if nd.Report == nil {
						continue
					}
					k := sampleKey{nd.Name, nd.Report.Seq}
					if _, ok := atCollector[k]; !ok {
						atCollector[k] = at.Add(-time.Duration(nd.ReportAge * float64(time.Second)))
					}
				}
			}
			mu.Unlock()
		}
	}()

	hosts := append([]*lab.Host{col.Host, dnsAll.Host, dnsGPU.Host}, hostsOf(agents)...)
	apis := make([]string, len(hosts))
	for i := range hosts {
		apis[i] = lab.AgentAPI
	}
	apis[1], apis[2] = lab.CoreDNSMetrics, lab.CoreDNSMetrics
	// counters reads every host's interface counters and, right after,
	// what its member counted by kind: read host by host, both cover the
	// same window to a few milliseconds, and the rest of the interface
	// counters is TCP's alone, not the skew between two passes.
	counters := func() ([]lab.Counters, [][]float64) {
		out := make([]lab.Counters, len(hosts))
		kinds := make([][]float64, len(hosts))
		for i, h := range hosts {
			c, err := h.Counters()
			if err != nil {
				b.Fatal(err)
			}
			out[i], kinds[i] = c, sentByKind(b, h, apis[i])
		}
		return out, kinds
	}
	cpu := func() []float64 {
		out := make([]float64, n)
		for i, a := range agents {
			s, err := lab.ProcSched(a.Process.PID())
			if err != nil {
				b.Fatal(err)
			}
			out[i] = s.CPU
		}
		return out
	}
	const window = 60 * time.Second
	c0, s0 := counters()
	cpu0, t0 := cpu(), time.Now()
	time.Sleep(window)
	c1, s1 := counters()
	cpu1, elapsed := cpu(), time.Since(t0).Seconds()
	var agentBps, cpuPct, rssMB, anonMB []float64
	for i := range hosts[3:] {
		agentBps = append(agentBps, float64(c1[3+i].IPBytes()-c0[3+i].IPBytes())/elapsed)
		cpuPct = append(cpuPct, (cpu1[i]-cpu0[i])/elapsed*100)
		mem, err := lab.ReadMemory(agents[i].Process.PID())
		if err != nil {
			b.Fatal(err)
		}
		rssMB = append(rssMB, float64(mem.RSS)/1024)
		anonMB = append(anonMB, float64(mem.Anon)/1024)
	}
	bps := func(i int) float64 { return float64(c1[i].IPBytes()-c0[i].IPBytes()) / elapsed }
	// Every host's bytes and its member's by kind, per second and agent.
	wire, kinds := 0.0, make([]float64, len(gossip.Kinds()))
	for i := range hosts {
		wire += bps(i) / float64(n)
		for k := range kinds {
			kinds[k] += (s1[i][k] - s0[i][k]) / elapsed / float64(n)
		}
	}

	// Every agent's table, once a second for 45 s: when did each sample
	// (or a newer one of its node) reach the last agent?
	type seen struct {
		seq uint64
		at  time.Time // midpoint between the poll that saw it and the one before
	}
	held := make([]map[string][]seen, n)
	last := make([]time.Time, n)
	for i := range held {
		held[i] = map[string][]seen{}
	}
	const agentWindow = 45 * time.Second
	tA := time.Now()
	for round := 0; time.Since(tA) < agentWindow; round++ {
		roundStart := tA.Add(time.Duration(round) * time.Second)
		for j, a := range agents {
			time.Sleep(time.Until(roundStart.Add(time.Duration(j) * time.Second / time.Duration(n))))
			nodes, at, err := labNodes(a.Host)
			if err != nil {
				continue
			}
			mid := at
			if !last[j].IsZero() {
				mid = last[j].Add(at.Sub(last[j]) / 2)
			}
			last[j] = at
			for _, nd := range nodes {
				if nd.Report != nil && nd.Name == a.Name {
					// An agent samples every 2 s at most and is polled
					// every second: its own table holds every sample.
					k := sampleKey{nd.Name, nd.Report.Seq}
					mu.Lock()
					if _, ok := taken[k]; !ok {
						taken[k] = clockStart.Add(time.Duration(nd.Report.Uptime * float64(time.Millisecond)))
					}
					mu.Unlock()
				}
				if nd.Report == nil || nd.Name == a.Name {
					continue
				}
				s := held[j][nd.Name]
				if len(s) == 0 || s[len(s)-1].seq < nd.Report.Seq {
					held[j][nd.Name] = append(s, seen{nd.Report.Seq, mid})
				}
			}
		}
	}
	time.Sleep(2 * time.Second)
	mu.Lock()
	polling = false
	var toCollector, toAgents []float64
	complete, tracked := 0, 0
	for k, when := range taken {
		if at, ok := atCollector[k]; ok {
			toCollector = append(toCollector, at.Sub(when).Seconds())
		}
		origin, ok := index[k.node]
		if !ok || when.Before(tA.Add(2*time.Second)) || when.After(tA.Add(agentWindow-10*time.Second)) {
			continue
		}
		tracked++
		var worst time.Duration
		reached := true
		for j := range agents {
			if j == origin {
				continue
			}
			s := held[j][k.node]
			i, _ := slices.BinarySearchFunc(s, k.seq, func(x seen, seq uint64) int { return int(x.seq) - int(seq) })
			if i == len(s) {
				reached = false
				break
			}
			worst = max(worst, s[i].at.Sub(when))
		}
		if reached {
			complete++
			toAgents = append(toAgents, worst.Seconds())
		}
	}
	mu.Unlock()

	// Kill -9 the first machine of each answer under a steady query load.
	victim := func(c *lab.CoreDNS) *lab.Agent {
		m, err := client.Lookup(c.Server(), lab.VName, dns.TypeA)
		if err != nil || len(lab.AnswerAddrs(m)) == 0 {
			b.Fatalf("no answer from %s: %v", c.Name, err)
		}
		first := lab.AnswerAddrs(m)[0]
		for _, a := range agents {
			if a.Addr.String() == first {
				return a
			}
		}
		b.Fatalf("%s answered %s, no agent's address", c.Name, first)
		return nil
	}
	var killed [2]time.Time
	var vAll, vGPU *lab.Agent
	gpuInTop10 := false
	results := make([]lab.LoadResult, 2)
	var kw sync.WaitGroup
	for i, c := range []*lab.CoreDNS{dnsAll, dnsGPU} {
		kw.Add(1)
		go func() {
			defer kw.Done()
			results[i], _ = client.RunDNSLoad(context.Background(), lab.DNSLoad{Server: c.Server(), Qname: lab.VName, Qtype: dns.TypeA, Rate: 20, Count: 20 * 15})
		}()
	}
	time.Sleep(4 * time.Second)
	// The victims are the first machines of answers taken right now: the
	// top moves every few seconds under this load.
	vAll = victim(dnsAll)
	killed[0] = time.Now()
	vAll.Process.Kill()
	vGPU = victim(dnsGPU)
	if top, err := col.Top(10); err == nil {
		gpuInTop10 = slices.Contains(top, vGPU.Name)
	}
	killed[1] = time.Now()
	vGPU.Process.Kill()
	kw.Wait()
	out := func(res lab.LoadResult, v *lab.Agent, at time.Time) float64 {
		var lastSent time.Time
		for _, a := range res.Answers {
			if slices.Contains(a.Addrs, v.Addr.String()) && a.Sent.After(lastSent) {
				lastSent = a.Sent
			}
		}
		return max(lastSent.Sub(at), 0).Seconds()
	}

	slices.Sort(agentBps)
	slices.Sort(cpuPct)
	slices.Sort(rssMB)
	slices.Sort(anonMB)
	slices.Sort(toCollector)
	slices.Sort(toAgents)
	b.Logf("killed %s (first for the lab) and %s (first of pool gpu, in the lab's top 10: %v)", vAll.Name, vGPU.Name, gpuInTop10)
	b.Logf("DNS while killing: lab %s; gpu %s", results[0], results[1])
	b.ReportMetric(percentile(agentBps, 50), "B/s/agent")
	b.ReportMetric(percentile(agentBps, 99), "p99-B/s/agent")
	b.ReportMetric(bps(0), "B/s/collector")
	b.ReportMetric((bps(1)+bps(2))/2, "B/s/coredns")
	b.ReportMetric(percentile(toCollector, 50), "collector-p50-s")
	b.ReportMetric(percentile(toCollector, 99), "collector-p99-s")
	b.ReportMetric(percentile(toAgents, 50), "agent-p50-s")
	b.ReportMetric(percentile(toAgents, 99), "agent-p99-s")
	b.ReportMetric(float64(complete)/float64(max(tracked, 1))*100, "agent-complete-%")
	b.ReportMetric(percentile(cpuPct, 50), "CPU-%")
	b.ReportMetric(percentile(rssMB, 50), "RSS-MB")
	b.ReportMetric(rssMB[len(rssMB)-1], "max-RSS-MB")
	b.ReportMetric(percentile(anonMB, 50), "anon-RSS-MB")
	b.ReportMetric(out(results[0], vAll, killed[0]), "kill-top-s")
	b.ReportMetric(out(results[1], vGPU, killed[1]), "kill-pool-s")
	reportLabKinds(b, wire, kinds)
}

// ipUDPHeaders is what the wire adds to a UDP packet: IPv4's header and
// UDP's (Ethernet's is not counted).
const ipUDPHeaders = 20 + 8

// sentByKind reads what h's gossip member sent of each kind
// (gossip.Kinds) from its /metrics at api, as on the wire: a kind's bytes
// plus IPv4 and UDP headers for each of its packets; pushpull is the bytes
// written on TCP streams, without TCP's headers and control segments,
// which are the kernel's.
func sentByKind(b *testing.B, h *lab.Host, api string) []float64 {
	m, err := h.Metrics(api)
	if err != nil {
		b.Fatal(err)
	}
	var out []float64
	for _, k := range gossip.Kinds() {
		bytes := m.Value("peerload_gossip_bytes_sent_by_kind_total", "kind", k)
		packets := m.Value("peerload_gossip_packets_sent_by_kind_total", "kind", k)
		if bytes < 0 || packets < 0 {
			b.Fatalf("%s: no gossip counters by kind at %s/metrics", h.Name, api)
		}
		out = append(out, bytes+ipUDPHeaders*packets)
	}
	return out
}

// reportLabKinds reports wire (every byte the lab's hosts put on the wire,
// per second and agent: issue 24's headline figure) split by kind, and as
// tcp-overhead-B/s/agent what the kinds leave out of it: TCP's headers and
// control segments (handshakes, acks, FINs) of the push/pulls. The kinds and
// that rest add up to all-B/s/agent.
func reportLabKinds(b *testing.B, wire float64, kinds []float64) {
	b.ReportMetric(wire, "all-B/s/agent")
	rest := wire
	for k, name := range gossip.Kinds() {
		b.ReportMetric(kinds[k], name+"-B/s/agent")
		rest -= kinds[k]
	}
	b.ReportMetric(rest, "tcp-overhead-B/s/agent")
}

// hostsOf is the hosts the agents run on.
func hostsOf(agents []*lab.Agent) []*lab.Host {
	out := make([]*lab.Host, len(agents))
	for i, a := range agents {
		out[i] = a.Host
	}
	return out
}
