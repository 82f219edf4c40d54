package agent

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// agentMetrics are the agent's Prometheus collectors. They live in the
// Registerer the caller passes (one registry per agent), so many agents can
// run in one process.
type agentMetrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	load          *prometheus.GaugeVec
	cpus          prometheus.Gauge
	cpuUtil       prometheus.Gauge
	memTotal      prometheus.Gauge
	memAvail      prometheus.Gauge
	swapUsed      prometheus.Gauge
	pressure      prometheus.Gauge
	users         prometheus.Gauge
	checkOK       *prometheus.GaugeVec
	members       *prometheus.GaugeVec
	candidates    prometheus.Gauge
	poolCands     *prometheus.GaugeVec
	receivedTotal *prometheus.CounterVec
	delay         prometheus.Histogram
}

func newAgentMetrics(a *Agent, reg prometheus.Registerer) *agentMetrics {
	m := &agentMetrics{reg: reg}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "peerload", Name: name, Help: help})
		m.collectors = append(m.collectors, g)
		return g
	}
	m.load = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "peerload", Name: "node_load", Help: "This node's load average."}, []string{"period"})
	m.checkOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "peerload", Name: "check_ok", Help: "1 when this node's health check passes."}, []string{"check"})
	m.members = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "peerload", Name: "members", Help: "Known cluster members by state."}, []string{"state"})
	m.receivedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "peerload", Name: "reports_received_total", Help: "Load reports received, by result (applied, old, invalid, no_epoch: a compact entry of an epoch this member missed, unknown: a message type of a later release)."}, []string{"result"})
	m.poolCands = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "peerload", Name: "pool_candidates", Help: "Live candidates in each pool (for the too-few-candidates alert)."}, []string{"pool"})
	m.delay = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "peerload", Name: "report_delay_seconds",
		Help:    "How long other nodes' reports took to arrive here, from their node's sample (relay waits included).",
		Buckets: []float64{0.01, 0.05, 0.1, 0.3, 1, 2, 5, 10, 30}})
	m.collectors = append(m.collectors, m.load, m.checkOK, m.members, m.receivedTotal, m.poolCands, m.delay)
	m.cpus = gauge("node_cpus", "CPUs of this node.")
	m.cpuUtil = gauge("node_cpu_utilization_ratio", "Busy fraction of this node's CPUs over the last interval.")
	m.memTotal = gauge("node_memory_total_bytes", "Memory of this node.")
	m.memAvail = gauge("node_memory_available_bytes", "Available memory of this node.")
	m.swapUsed = gauge("node_swap_used_bytes", "Swap in use on this node.")
	m.pressure = gauge("node_cpu_pressure_percent", "CPU pressure (some avg10) of this node; -1 without PSI.")
	m.users = gauge("node_users", "Distinct logged-in human users on this node.")
	m.candidates = gauge("candidates", "Live candidates in the cluster.")
	m.collectors = append(m.collectors,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "peerload", Name: "gossip_packets_sent_total", Help: "UDP packets gossip sent."},
			func() float64 { return float64(a.member.Stats().Packets) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "peerload", Name: "gossip_bytes_sent_total", Help: "Bytes gossip sent, packets and streams."},
			func() float64 { return float64(a.member.Stats().Bytes) }),
		newSentCollector(func() gossip.Stats { return a.member.Stats() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "peerload", Name: "reports_sent_total", Help: "Load reports this node published."},
			func() float64 { return float64(a.member.Stats().ReportsSent) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "peerload", Name: "gossip_protocol", Help: "The wire protocol this member speaks: the lowest any live member advertises (1 while a 0.1.0 member is live)."},
			func() float64 { return float64(a.member.Stats().Protocol) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "peerload", Name: "gossip_encrypted", Help: "1 when gossip is encrypted with a keyring, 0 when it is clear text."},
			func() float64 { return float64(btoi(a.member.Encrypted())) }),
	)
	return m
}

// register registers the collectors, once the agent's member runs (the
// gossip counters read it).
func (m *agentMetrics) register() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		_ = m.reg.Register(c)
	}
}

func (m *agentMetrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *agentMetrics) observeSample(l report.Load, checks []report.CheckResult) {
	m.load.WithLabelValues("1").Set(l.Load1)
	m.load.WithLabelValues("5").Set(l.Load5)
	m.load.WithLabelValues("15").Set(l.Load15)
	m.cpus.Set(float64(l.CPUs))
	m.cpuUtil.Set(l.CPUUtil)
	m.memTotal.Set(float64(l.MemTotal))
	m.memAvail.Set(float64(l.MemAvailable))
	m.swapUsed.Set(float64(l.SwapUsed))
	m.pressure.Set(l.CPUPressure)
	m.users.Set(float64(l.Users))
	for _, c := range checks {
		v := 0.0
		if c.OK {
			v = 1
		}
		m.checkOK.WithLabelValues(c.Name).Set(v)
	}
}

func (m *agentMetrics) observeSnapshot(s *rank.Snapshot) {
	counts := map[string]int{rank.StateAlive: 0, rank.StateSuspect: 0, rank.StateDead: 0, rank.StateLeft: 0}
	candidates := 0
	pools := map[string]int{}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		counts[n.State]++
		if n.Candidate {
			candidates++
		}
		for _, p := range n.Pools {
			pools[p] += btoi(n.Candidate)
		}
	}
	m.poolCands.Reset()
	for p, c := range pools {
		m.poolCands.WithLabelValues(p).Set(float64(c))
	}
	for st, n := range counts {
		m.members.WithLabelValues(st).Set(float64(n))
	}
	m.candidates.Set(float64(candidates))
}

func (m *agentMetrics) received(result string) { m.receivedTotal.WithLabelValues(result).Inc() }

// applied observes a report's delay; gossip calls it with its lock held.
func (m *agentMetrics) applied(_ *report.Report, sent time.Time) {
	m.delay.Observe(max(time.Since(sent), 0).Seconds())
}

// sentCollector exports what gossip sent by kind (gossip.Kinds), which
// the member counts: bytes of every kind, summing to
// peerload_gossip_bytes_sent_total, and packets of every kind but push/pull
// (streams), summing to peerload_gossip_packets_sent_total.
type sentCollector struct {
	stats          func() gossip.Stats
	bytes, packets *prometheus.Desc
}

func newSentCollector(stats func() gossip.Stats) *sentCollector {
	return &sentCollector{
		stats: stats,
		bytes: prometheus.NewDesc("peerload_gossip_bytes_sent_by_kind_total",
			"Bytes gossip sent, by kind: probe (memberlist's pings, acks and membership rumours, collectors' probes), report (reports to collectors), relay (relay batches), repair (requests for missed reports and the answers), greeting (hellos, goodbyes), pushpull (TCP streams).",
			[]string{"kind"}, nil),
		packets: prometheus.NewDesc("peerload_gossip_packets_sent_by_kind_total",
			"UDP packets gossip sent, by kind (as peerload_gossip_bytes_sent_by_kind_total, without pushpull).",
			[]string{"kind"}, nil),
	}
}

func (c *sentCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.bytes
	ch <- c.packets
}

func (c *sentCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, k := range gossip.Kinds() {
		s := st.Sent[k]
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes), k)
		if k != gossip.KindPushPull {
			ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(s.Packets), k)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
