package peerload

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

func init() { clog.Discard() }

var testBuilt = time.Unix(1_700_000_000, 0)

// testNode is a live candidate with 4 CPUs, 16 GiB (12 GiB available) and
// the given load1: its combined score is load1/4 + 0.125 + 0.04 (users), so loads 0.2
// apart land in different groups (Delta 0.05).
func testNode(name, addr4 string, load1 float64) rank.NodeStatus {
	n := rank.NodeStatus{
		Name:   name,
		Gossip: addr4 + ":7946",
		State:  rank.StateAlive,
		Report: &report.Report{Node: name, Generation: 1, Seq: 1, Load: report.Load{
			Load1: load1, Load5: load1, Load15: load1, CPUs: 4, CPUUtil: load1 / 4,
			MemTotal: 16 << 30, MemAvailable: 12 << 30, CPUPressure: -1, Users: 2, Uptime: time.Hour,
		}},
		Received:  testBuilt.Add(-time.Second),
		Candidate: true,
	}
	if addr4 != "" {
		n.Addr4 = netip.MustParseAddr(addr4)
	}
	return n
}

func with(n rank.NodeStatus, f func(*rank.NodeStatus)) rank.NodeStatus {
	f(&n)
	return n
}

func testSnapshot(nodes ...rank.NodeStatus) *rank.Snapshot {
	nodes = slices.Clone(nodes)
	slices.SortFunc(nodes, func(a, b rank.NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return &rank.Snapshot{Built: testBuilt, Self: "coredns-test", Score: rank.DefaultScoreConfig(), Nodes: nodes}
}

func testConfig() *config {
	return &config{
		names:    []string{"cslab.example.edu."},
		zones:    []string{"example.edu."},
		top:      3,
		ttl:      30,
		by:       rank.ByCombined,
		fallback: rank.FallbackKeep,
		member:   &memberSpec{Bind: defaultBind},
	}
}

// nextHandler marks queries peerload handed on with rcode REFUSED.
var nextHandler = test.NextHandler(dns.RcodeRefused, nil)

func newTestPeerLoad(cfg *config, snap *rank.Snapshot) *PeerLoad {
	p := newPeerLoad(cfg)
	p.Next = nextHandler
	if snap != nil {
		p.publish(snap)
	}
	return p
}

// clusterSnapshot: lab01..lab03 are the best three with distinct scores,
// lab04 is worse, lab05 is drained, lab06 suspect, coredns a collector.
func clusterSnapshot() *rank.Snapshot {
	return testSnapshot(
		with(testNode("lab01", "10.0.0.11", 0.1), func(n *rank.NodeStatus) { n.Addr6 = netip.MustParseAddr("2001:db8::11") }),
		testNode("lab02", "10.0.0.12", 0.5),
		with(testNode("lab03", "10.0.0.13", 0.9), func(n *rank.NodeStatus) { n.Addr6 = netip.MustParseAddr("2001:db8::13") }),
		testNode("lab04", "10.0.0.14", 2.0),
		with(testNode("lab05", "10.0.0.15", 0.0), func(n *rank.NodeStatus) {
			n.Candidate = false
			n.Reasons = []string{"drain: maintenance"}
		}),
		with(testNode("lab06", "10.0.0.16", 0.0), func(n *rank.NodeStatus) {
			n.State = rank.StateSuspect
			n.Candidate = false
			// As agent's snapshot lists them: failing checks among the reasons.
			n.Reasons = []string{"suspect", "ssh: port 22 not listening"}
			n.Report.Failing = []report.CheckResult{{Name: "ssh", Reason: "port 22 not listening"}}
		}),
		with(testNode("coredns-ns1", "10.0.0.2", 0), func(n *rank.NodeStatus) {
			n.Collector = true
			n.Candidate = false
			n.Report = nil
		}),
	)
}

func soaCase() dns.RR {
	return test.SOA("example.edu.	30	IN	SOA	ns.dns.example.edu. hostmaster.example.edu. 1 7200 1800 86400 30")
}

func TestServeDNS(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	if p.Name() != "peerload" {
		t.Errorf("Name() = %q", p.Name())
	}
	top3 := []dns.RR{
		test.A("cslab.example.edu.	30	IN	A	10.0.0.11"),
		test.A("cslab.example.edu.	30	IN	A	10.0.0.12"),
		test.A("cslab.example.edu.	30	IN	A	10.0.0.13"),
	}
	tests := []test.Case{
		{Qname: "cslab.example.edu.", Qtype: dns.TypeA, Answer: top3},
		// Case-insensitive and case-preserving.
		{
			Qname: "CsLaB.Example.EDU.", Qtype: dns.TypeA,
			Answer: []dns.RR{
				test.A("CsLaB.Example.EDU.	30	IN	A	10.0.0.11"),
				test.A("CsLaB.Example.EDU.	30	IN	A	10.0.0.12"),
				test.A("CsLaB.Example.EDU.	30	IN	A	10.0.0.13"),
			},
		},
		{
			Qname: "cslab.example.edu.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{
				test.AAAA("cslab.example.edu.	30	IN	AAAA	2001:db8::11"),
				test.AAAA("cslab.example.edu.	30	IN	AAAA	2001:db8::13"),
			},
		},
		{
			Qname: "cslab.example.edu.", Qtype: dns.TypeTXT,
			Answer: []dns.RR{
				test.TXT(`cslab.example.edu.	30	IN	TXT	"node=lab01" "addr=10.0.0.11" "rank=1" "score=0.19" "load1=0.10" "cpus=4" "cpu=2%" "mem_avail=75%" "users=2" "age=1s"`),
				test.TXT(`cslab.example.edu.	30	IN	TXT	"node=lab02" "addr=10.0.0.12" "rank=2" "score=0.29" "load1=0.50" "cpus=4" "cpu=12%" "mem_avail=75%" "users=2" "age=1s"`),
				test.TXT(`cslab.example.edu.	30	IN	TXT	"node=lab03" "addr=10.0.0.13" "rank=3" "score=0.39" "load1=0.90" "cpus=4" "cpu=22%" "mem_avail=75%" "users=2" "age=1s"`),
				test.TXT(`cslab.example.edu.	30	IN	TXT	"node=lab04" "addr=10.0.0.14" "rank=4" "score=0.67" "load1=2.00" "cpus=4" "cpu=50%" "mem_avail=75%" "users=2" "age=1s"`),
			},
		},
		// Any other type for an owned name is NODATA with the SOA.
		{Qname: "cslab.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soaCase()}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeSOA, Ns: []dns.RR{soaCase()}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeNS, Ns: []dns.RR{soaCase()}},
		// ANY over UDP: one RRset, the addresses (RFC 8482).
		{Qname: "cslab.example.edu.", Qtype: dns.TypeANY, Answer: top3},
		{
			Qname: "lab01.cslab.example.edu.", Qtype: dns.TypeANY,
			Answer: []dns.RR{test.A("lab01.cslab.example.edu.	30	IN	A	10.0.0.11")},
		},
		// Per-node names, candidates or not.
		{
			Qname: "lab02.cslab.example.edu.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("lab02.cslab.example.edu.	30	IN	A	10.0.0.12")},
		},
		{
			Qname: "LAB05.cslab.example.edu.", Qtype: dns.TypeA,
			Answer: []dns.RR{test.A("LAB05.cslab.example.edu.	30	IN	A	10.0.0.15")},
		},
		{
			Qname: "lab01.cslab.example.edu.", Qtype: dns.TypeAAAA,
			Answer: []dns.RR{test.AAAA("lab01.cslab.example.edu.	30	IN	AAAA	2001:db8::11")},
		},
		{Qname: "lab02.cslab.example.edu.", Qtype: dns.TypeAAAA, Ns: []dns.RR{soaCase()}},
		{Qname: "lab02.cslab.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soaCase()}},
		// Unknown nodes and the collector are NXDOMAIN.
		{Qname: "nope.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaCase()}},
		{Qname: "coredns-ns1.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaCase()}},
		{Qname: "a.lab01.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soaCase()}},
		// Names not owned go to the next plugin.
		{Qname: "www.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "xcslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
		{Qname: "example.edu.", Qtype: dns.TypeSOA, Rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.Qname+"/"+dns.TypeToString[tc.Qtype], func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			code, err := p.ServeDNS(context.Background(), rec, tc.Msg())
			if err != nil {
				t.Fatalf("ServeDNS: %v", err)
			}
			if tc.Rcode == dns.RcodeRefused {
				if code != dns.RcodeRefused || rec.Msg != nil {
					t.Fatalf("expected the query to reach the next plugin, got code %d, msg %v", code, rec.Msg)
				}
				return
			}
			if code != dns.RcodeSuccess {
				t.Fatalf("returned code %d, want success (written)", code)
			}
			resp := rec.Msg
			if !resp.Authoritative {
				t.Error("AA not set")
			}
			if tc.Qtype == dns.TypeTXT {
				// TXT comes in rank order: compare before sorting.
				for i, rr := range resp.Answer {
					if i < len(tc.Answer) && rr.String() != tc.Answer[i].String() {
						t.Errorf("TXT %d = %s\nwant %s", i, rr, tc.Answer[i])
					}
				}
			}
			if err := test.SortAndCheck(resp, tc); err != nil {
				t.Error(err)
			}
			for _, rr := range resp.Ns {
				if soa, ok := rr.(*dns.SOA); ok && (soa.Serial != fallbackSerial || soa.Minttl != 30 || soa.Hdr.Name != "example.edu.") {
					t.Errorf("SOA = %s, want serial %d, minimum 30, apex example.edu.", soa, fallbackSerial)
				}
			}
		})
	}
}

func TestServeDNSNodeTXT(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	for _, tc := range []struct {
		qname string
		want  []string
	}{
		{"lab01.cslab.example.edu.", strings.Fields(
			"node=lab01 state=alive candidate=true addr=10.0.0.11 addr6=2001:db8::11 gossip=10.0.0.11:7946 score=0.19 " +
				"load1=0.10 load5=0.10 load15=0.10 cpus=4 cpu=2% mem_avail=75% mem_total=16.0Gi swap_used=0B users=2 uptime=1h0m0s age=1s"),
		},
		{"lab05.cslab.example.edu.", append(strings.Fields(
			"node=lab05 state=alive candidate=false addr=10.0.0.15 gossip=10.0.0.15:7946 score=0.17 "+
				"load1=0.00 load5=0.00 load15=0.00 cpus=4 cpu=0% mem_avail=75% mem_total=16.0Gi swap_used=0B users=2 uptime=1h0m0s age=1s"),
			"reason=drain: maintenance",
		)},
		{"lab06.cslab.example.edu.", append(strings.Fields(
			"node=lab06 state=suspect candidate=false addr=10.0.0.16 gossip=10.0.0.16:7946 score=0.17 "+
				"load1=0.00 load5=0.00 load15=0.00 cpus=4 cpu=0% mem_avail=75% mem_total=16.0Gi swap_used=0B users=2 uptime=1h0m0s age=1s"),
			"reason=suspect",
			"check=ssh: port 22 not listening",
		)},
	} {
		m := new(dns.Msg)
		m.SetQuestion(tc.qname, dns.TypeTXT)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := p.ServeDNS(context.Background(), rec, m); err != nil {
			t.Fatal(err)
		}
		if len(rec.Msg.Answer) != 1 {
			t.Fatalf("%s TXT: %d answers, want 1: %v", tc.qname, len(rec.Msg.Answer), rec.Msg)
		}
		got := rec.Msg.Answer[0].(*dns.TXT).Txt
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s TXT =\n%q\nwant\n%q", tc.qname, got, tc.want)
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Errorf("%s: reply does not pack: %v", tc.qname, err)
		}
	}
}

// query runs one query through p and returns the reply.
func query(t *testing.T, p *PeerLoad, qname string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	code, err := p.ServeDNS(context.Background(), rec, m)
	if err != nil || code != dns.RcodeSuccess || rec.Msg == nil {
		t.Fatalf("%s %s: code %d, err %v, msg %v", qname, dns.TypeToString[qtype], code, err, rec.Msg)
	}
	return rec.Msg
}

func answerIPs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	return out
}

// failing makes a node fail a check, as its report says.
func failing(check, reason string) func(n *rank.NodeStatus) {
	return func(n *rank.NodeStatus) {
		r := *n.Report
		r.Failing = []report.CheckResult{{Name: check, Reason: reason}}
		n.Report, n.Candidate, n.Reasons = &r, false, []string{check + ": " + reason}
	}
}

func TestFallback(t *testing.T) {
	healthy := testSnapshot(testNode("lab01", "10.0.0.11", 0.1), testNode("lab02", "10.0.0.12", 0.5))
	// Every node alive but none a candidate (e.g. all failing a check),
	// plus a collector that must never be handed out.
	noCandidates := testSnapshot(
		with(testNode("lab01", "10.0.0.11", 0.1), failing("tmp", "full")),
		with(testNode("lab03", "10.0.0.13", 0.1), failing("tmp", "full")),
		with(testNode("lab04", "10.0.0.14", 0.1), func(n *rank.NodeStatus) { n.State, n.Candidate = rank.StateDead, false }),
		with(testNode("coredns-ns1", "10.0.0.2", 0), func(n *rank.NodeStatus) { n.Collector, n.Candidate = true, false }),
	)
	for _, tc := range []struct {
		fallback rank.Fallback
		primed   bool     // a healthy snapshot came first
		wantIPs  []string // sorted
		wantTTL  uint32
		wantTXT  string // a word every TXT record carries
	}{
		{rank.FallbackKeep, true, []string{"10.0.0.12"}, 5, "fallback=keep"}, // lab01 fails a check now; lab02 vanished, kept as last seen
		{rank.FallbackKeep, false, nil, 0, ""},
		{rank.FallbackAll, true, []string{"10.0.0.11", "10.0.0.13"}, 5, "fallback=all"},
		{rank.FallbackAll, false, []string{"10.0.0.11", "10.0.0.13"}, 5, "fallback=all"},
		{rank.FallbackNone, true, nil, 0, ""},
	} {
		t.Run(fmt.Sprintf("%s/primed=%v", tc.fallback, tc.primed), func(t *testing.T) {
			cfg := testConfig()
			cfg.fallback = tc.fallback
			p := newTestPeerLoad(cfg, nil)
			if tc.primed {
				p.publish(healthy)
			}
			p.publish(noCandidates)
			for _, qtype := range []uint16{dns.TypeA, dns.TypeTXT} {
				m := query(t, p, "cslab.example.edu.", qtype)
				if m.Rcode != dns.RcodeSuccess {
					t.Fatalf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode])
				}
				if tc.wantIPs == nil {
					if len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
						t.Fatalf("%s: want NODATA with SOA, got %v", dns.TypeToString[qtype], m)
					}
					continue
				}
				for _, rr := range m.Answer {
					if rr.Header().Ttl != tc.wantTTL {
						t.Errorf("TTL %d, want %d: %s", rr.Header().Ttl, tc.wantTTL, rr)
					}
					if txt, ok := rr.(*dns.TXT); ok && !strings.Contains(strings.Join(txt.Txt, " "), tc.wantTXT) {
						t.Errorf("TXT %q lacks %q", txt.Txt, tc.wantTXT)
					}
				}
				if qtype == dns.TypeA {
					got := answerIPs(m)
					slices.Sort(got)
					if !slices.Equal(got, tc.wantIPs) {
						t.Errorf("A = %v, want %v", got, tc.wantIPs)
					}
				} else if len(m.Answer) != len(tc.wantIPs) {
					t.Errorf("%d TXT records, want %d", len(m.Answer), len(tc.wantIPs))
				}
			}
			// Candidates come back: the fallback ends.
			p.publish(healthy)
			m := query(t, p, "cslab.example.edu.", dns.TypeA)
			if len(m.Answer) != 2 || m.Answer[0].Header().Ttl != 30 {
				t.Errorf("after recovery: %v", m.Answer)
			}
		})
	}
}

// TestKeepSurvivesSeveralSnapshots: keep remembers the last good set over
// any number of snapshots without candidates.
func TestKeepSurvivesSeveralSnapshots(t *testing.T) {
	p := newTestPeerLoad(testConfig(), testSnapshot(testNode("lab01", "10.0.0.11", 0.1)))
	for range 3 {
		p.publish(testSnapshot())
	}
	if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.11"}) {
		t.Errorf("A = %v, want the kept 10.0.0.11", got)
	}
}

// TestEqualScoresShuffle: equally good nodes come out in varying order, the
// better group always first, and top-N of a larger equal group spreads over
// all of them.
func TestEqualScoresShuffle(t *testing.T) {
	snap := testSnapshot(
		testNode("best", "10.0.0.1", 0.0),
		testNode("eq1", "10.0.1.1", 1.0), testNode("eq2", "10.0.1.2", 1.0), testNode("eq3", "10.0.1.3", 1.01),
		testNode("eq4", "10.0.1.4", 1.0), testNode("eq5", "10.0.1.5", 0.99),
		testNode("worst", "10.0.2.1", 3.0),
	)
	cfg := testConfig()
	cfg.top = 6
	p := newTestPeerLoad(cfg, snap)
	orders := map[string]bool{}
	for range 200 {
		ips := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA))
		if len(ips) != 6 || ips[0] != "10.0.0.1" {
			t.Fatalf("answer %v: want 6 records with the best node first", ips)
		}
		if slices.Contains(ips, "10.0.2.1") {
			t.Fatalf("answer %v holds the worst node", ips)
		}
		orders[strings.Join(ips, " ")] = true
	}
	if len(orders) < 10 {
		t.Errorf("only %d distinct orders in 200 answers: equal scores are not shuffled", len(orders))
	}

	cfg = testConfig()
	cfg.top = 2
	p = newTestPeerLoad(cfg, snap)
	seen := map[string]int{}
	for range 400 {
		ips := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA))
		if len(ips) != 2 || ips[0] != "10.0.0.1" {
			t.Fatalf("answer %v: want the best node and one of the equal ones", ips)
		}
		seen[ips[1]]++
	}
	if len(seen) != 5 {
		t.Errorf("second place went to %v, want all 5 equally good nodes", seen)
	}
}

func TestTruncation(t *testing.T) {
	var nodes []rank.NodeStatus
	for i := range 20 {
		nodes = append(nodes, testNode(fmt.Sprintf("lab%02d", i), fmt.Sprintf("10.0.0.%d", 10+i), float64(i)/10))
	}
	cfg := testConfig()
	cfg.top = 20
	p := newTestPeerLoad(cfg, testSnapshot(nodes...))

	for _, tc := range []struct {
		name      string
		qtype     uint16
		bufsize   uint16 // 0: no EDNS
		tcp       bool
		truncated bool
	}{
		{"udp no edns TXT", dns.TypeTXT, 0, false, true},
		{"udp edns 1232 TXT", dns.TypeTXT, 1232, false, true},
		{"udp edns 4096 TXT", dns.TypeTXT, 4096, false, false},
		{"tcp TXT", dns.TypeTXT, 0, true, false},
		{"udp no edns A", dns.TypeA, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("cslab.example.edu.", tc.qtype)
			if tc.bufsize > 0 {
				m.SetEdns0(tc.bufsize, false)
			}
			rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tc.tcp})
			// The server wraps every writer like this before the plugins run.
			w := request.NewScrubWriter(m, rec)
			if _, err := p.ServeDNS(context.Background(), w, m); err != nil {
				t.Fatal(err)
			}
			resp := rec.Msg
			if resp.Truncated != tc.truncated {
				t.Errorf("TC = %v, want %v (%d answers, %d bytes)", resp.Truncated, tc.truncated, len(resp.Answer), resp.Len())
			}
			limit := 512
			switch {
			case tc.tcp:
				limit = dns.MaxMsgSize
			case tc.bufsize > 0:
				limit = int(tc.bufsize)
			}
			if resp.Len() > limit {
				t.Errorf("reply of %d bytes exceeds %d", resp.Len(), limit)
			}
			if tc.bufsize > 0 && resp.IsEdns0() == nil {
				t.Error("reply lacks the OPT record")
			}
			if !tc.truncated && len(resp.Answer) != 20 {
				t.Errorf("%d answers, want 20", len(resp.Answer))
			}
		})
	}
}

func TestNestedNamesAndDottedNodes(t *testing.T) {
	cfg := testConfig()
	cfg.names = []string{"cslab.example.edu.", "gpu.cslab.example.edu."}
	p := newTestPeerLoad(cfg, testSnapshot(testNode("lab01", "10.0.0.11", 0.1), testNode("lab02.cs", "10.0.0.12", 0.2)))

	// The longer virtual name wins over being a node below the shorter.
	if m := query(t, p, "gpu.cslab.example.edu.", dns.TypeA); len(m.Answer) != 2 {
		t.Errorf("gpu.cslab A: %v", m)
	}
	if m := query(t, p, "lab02.cs.cslab.example.edu.", dns.TypeA); !slices.Equal(answerIPs(m), []string{"10.0.0.12"}) {
		t.Errorf("dotted node name: %v", m)
	}
	// cs.cslab.example.edu exists as an empty non-terminal: NODATA.
	if m := query(t, p, "cs.cslab.example.edu.", dns.TypeA); m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("empty non-terminal: %v", m)
	}
}

func TestPoolAndBy(t *testing.T) {
	cfg := testConfig()
	cfg.pool = "gpu"
	cfg.by = rank.ByMem
	p := newTestPeerLoad(cfg, testSnapshot(
		with(testNode("g1", "10.0.0.1", 3.0), func(n *rank.NodeStatus) { n.Pools = []string{"gpu"} }),
		with(testNode("g2", "10.0.0.2", 0.0), func(n *rank.NodeStatus) {
			n.Pools = []string{"gpu", "cslab"}
			n.Report.Load.MemAvailable = 2 << 30
		}),
		testNode("plain", "10.0.0.3", 0.0),
	))
	if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Errorf("pool gpu by mem: A = %v, want g1 (more memory free) then g2", got)
	}
	if m := query(t, p, "plain.cslab.example.edu.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("node outside the pool: rcode %s, want NXDOMAIN", dns.RcodeToString[m.Rcode])
	}
}

func TestNoSnapshotYet(t *testing.T) {
	p := newTestPeerLoad(testConfig(), nil)
	if p.Ready() {
		t.Error("ready before any snapshot")
	}
	m := query(t, p, "cslab.example.edu.", dns.TypeA)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("before the first snapshot: want NODATA with SOA, got %v", m)
	}
}

func TestReady(t *testing.T) {
	p := newTestPeerLoad(testConfig(), nil)
	// Only the collector itself: joined nothing yet.
	p.publish(testSnapshot(with(testNode("coredns", "127.0.0.1", 0), func(n *rank.NodeStatus) { n.Collector, n.Report = true, nil })))
	if p.Ready() {
		t.Error("ready without any report")
	}
	p.publish(clusterSnapshot())
	if !p.Ready() {
		t.Error("not ready with reports")
	}
}

func TestRootZoneApex(t *testing.T) {
	cfg := testConfig()
	cfg.zones = []string{"."}
	p := newTestPeerLoad(cfg, clusterSnapshot())
	m := query(t, p, "nope.cslab.example.edu.", dns.TypeA)
	soa, ok := m.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Name != "cslab.example.edu." || soa.Ns != "ns.dns.cslab.example.edu." {
		t.Errorf("SOA in a root server block = %v, want the name as apex", m.Ns)
	}
}

func TestNonINClassGoesNext(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	m := new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if code, _ := p.ServeDNS(context.Background(), rec, m); code != dns.RcodeRefused {
		t.Errorf("CH query: code %d, want it handed to the next plugin", code)
	}
}

func TestWatch(t *testing.T) {
	src := agenttest.NewSource(testSnapshot(testNode("lab01", "10.0.0.11", 0.1)))
	p := newTestPeerLoad(testConfig(), nil)
	stop := p.watch(src)
	defer stop()
	waitAnswer := func(want []string) {
		t.Helper()
		agenttest.WaitFor(t, 5*time.Second, fmt.Sprintf("A = %v", want), func() (bool, string) {
			got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA))
			slices.Sort(got)
			return slices.Equal(got, want), fmt.Sprint(got)
		})
	}
	waitAnswer([]string{"10.0.0.11"})
	src.Set(testSnapshot(testNode("lab01", "10.0.0.11", 0.1), testNode("lab02", "10.0.0.12", 0.1)))
	waitAnswer([]string{"10.0.0.11", "10.0.0.12"})
}

// TestAttr: one RFC 1464 attribute=value per character-string, the name
// quoted with backquotes, the value as it is (first unquoted "=" ends the
// name), cut to 255 bytes, escaped for the presentation format.
func TestAttr(t *testing.T) {
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name, value string
		want        string // presentation format, as in dns.TXT.Txt
		wire        string // the character-string on the wire
	}{
		{"node", "lab01", "node=lab01", "node=lab01"},
		{"reason", "drain: a=b c", "reason=drain: a=b c", "reason=drain: a=b c"},
		{"a=b", "c", "a`=b=c", "a`=b=c"},
		{"back`quote", "v", "back``quote=v", "back``quote=v"},
		{" pad ", "v", "` pad` =v", "` pad` =v"},
		{"q", `"x" \ y`, `q=\"x\" \\ y`, `q="x" \ y`},
		{"c", "\x01\xff", `c=\001\255`, "c=\x01\xff"},
		{"long", long, "long=" + long[:250], "long=" + long[:250]},
		// A cut never splits a UTF-8 sequence.
		{"u", strings.Repeat("a", 251) + "é", "u=" + strings.Repeat("a", 251) + `\195\169`, "u=" + strings.Repeat("a", 251) + "é"},
		{"u", strings.Repeat("a", 252) + "é", "u=" + strings.Repeat("a", 252), "u=" + strings.Repeat("a", 252)},
	} {
		got := attr(tc.name, tc.value)
		if got != tc.want {
			t.Errorf("attr(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
		}
		rr := &dns.TXT{Hdr: hdr("a.", dns.TypeTXT, 1), Txt: []string{got}}
		buf := make([]byte, 512)
		off, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			t.Fatalf("pack %q: %v", got, err)
		}
		// RDATA: one length byte, then the string.
		rdata := buf[off-len(tc.wire)-1 : off]
		if int(rdata[0]) != len(tc.wire) || string(rdata[1:]) != tc.wire {
			t.Errorf("attr(%q, %q) on the wire %q, want %q", tc.name, tc.value, rdata[1:], tc.wire)
		}
		back, _, err := dns.UnpackRR(buf[:off], 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.(*dns.TXT).Txt; !slices.Equal(got, rr.Txt) {
			t.Errorf("round trip %q, want %q", got, rr.Txt)
		}
	}
}

// parseRFC1464 splits one character-string (wire form) into attribute and
// value as RFC 1464 reads it: the first "=" not quoted by a backquote ends
// the name; a backquote quotes the next character.
func parseRFC1464(s string) (name, value string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '`' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '=':
			return b.String(), s[i+1:], b.Len() > 0
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

// TestTXTReadsBack: every character-string of the name's and a node's TXT
// is one attribute=value that an RFC 1464 reader splits back into what
// went in, node names with spaces and "=" included.
func TestTXTReadsBack(t *testing.T) {
	odd := "lab 07=x`y"
	p := newTestPeerLoad(testConfig(), testSnapshot(
		testNode("lab01", "10.0.0.11", 0.1),
		with(testNode(odd, "10.0.0.17", 0.5), func(n *rank.NodeStatus) { n.Reasons = []string{"why=this"} }),
	))
	m := query(t, p, "cslab.example.edu.", dns.TypeTXT)
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	back := new(dns.Msg)
	if err := back.Unpack(wire); err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, rr := range back.Answer {
		attrs := map[string]string{}
		for _, s := range rr.(*dns.TXT).Txt {
			raw := unescapeTXT(t, s)
			name, value, ok := parseRFC1464(raw)
			if !ok {
				t.Fatalf("%q is not attribute=value", raw)
			}
			if _, dup := attrs[name]; dup {
				t.Errorf("attribute %q twice in %q", name, rr)
			}
			attrs[name] = value
		}
		for _, want := range []string{"node", "addr", "rank", "score", "load1", "cpus", "cpu", "mem_avail", "users", "age"} {
			if _, ok := attrs[want]; !ok {
				t.Errorf("%s lacks %s=", rr, want)
			}
		}
		nodes = append(nodes, attrs["node"])
	}
	if !slices.Equal(nodes, []string{"lab01", odd}) {
		t.Errorf("node= values %q, want %q", nodes, []string{"lab01", odd})
	}
}

// unescapeTXT turns one miekg/dns TXT string (presentation escapes) into
// the bytes on the wire.
func unescapeTXT(t *testing.T, s string) string {
	t.Helper()
	buf := make([]byte, 1024)
	off, err := dns.PackRR(&dns.TXT{Hdr: hdr("a.", dns.TypeTXT, 1), Txt: []string{s}}, buf, 0, nil, false)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	// "a." is 3 bytes, type, class, TTL and RDLENGTH 10 more; then one
	// length byte and the string.
	return string(buf[14:off])
}

func TestHumanBytes(t *testing.T) {
	for in, want := range map[uint64]string{0: "0B", 1023: "1023B", 1024: "1.0Ki", 16 << 30: "16.0Gi", 3 << 40: "3.0Ti"} {
		if got := humanBytes(in); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

// metricValue reads a counter or gauge.
func metricValue(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Counter != nil:
		return d.Counter.GetValue()
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	}
	t.Fatalf("metric %v is neither counter nor gauge", m.Desc())
	return 0
}

func TestMetrics(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	before := metricValue(t, requestsTotal.WithLabelValues("", "TXT"))
	nx := metricValue(t, answersTotal.WithLabelValues("", outcomeNXDomain))
	query(t, p, "cslab.example.edu.", dns.TypeTXT)
	query(t, p, "nope.cslab.example.edu.", dns.TypeTXT)
	if got := metricValue(t, requestsTotal.WithLabelValues("", "TXT")) - before; got != 2 {
		t.Errorf("requests_total{qtype=TXT} grew by %v, want 2", got)
	}
	if got := metricValue(t, answersTotal.WithLabelValues("", outcomeNXDomain)) - nx; got != 1 {
		t.Errorf("answers_total{outcome=nxdomain} grew by %v, want 1", got)
	}
	if got := metricValue(t, candidatesGauge.WithLabelValues("", "cslab.example.edu.")); got != 4 {
		t.Errorf("candidates = %v, want 4", got)
	}
	if got := metricValue(t, membersGauge.WithLabelValues("")); got != 6 {
		t.Errorf("members = %v, want 6 alive", got)
	}
	if got := metricValue(t, snapshotAgeGauge.WithLabelValues("")); got <= 0 {
		t.Errorf("snapshot age = %v, want > 0 for a snapshot built in the past", got)
	}
}

// soaPlugin is a next plugin that serves one SOA record, as `file` does
// for its zone, and refuses everything else.
func soaPlugin(soa string, authoritative bool) plugin.Handler {
	rr := test.SOA(soa)
	return plugin.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if r.Question[0].Qtype != dns.TypeSOA || !strings.EqualFold(r.Question[0].Name, rr.Header().Name) {
			return dns.RcodeRefused, nil
		}
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = authoritative
		m.Answer = []dns.RR{dns.Copy(rr)}
		if err := w.WriteMsg(m); err != nil {
			return dns.RcodeServerFailure, err
		}
		return dns.RcodeSuccess, nil
	})
}

// negativeSOA returns the SOA of the NXDOMAIN and of the NODATA answer,
// failing unless both carry exactly one.
func negativeSOA(t *testing.T, p *PeerLoad) (nx, nodata string) {
	t.Helper()
	for _, q := range []struct {
		name  string
		qtype uint16
		rcode int
		out   *string
	}{
		{"nope.cslab.example.edu.", dns.TypeA, dns.RcodeNameError, &nx},
		{"cslab.example.edu.", dns.TypeMX, dns.RcodeSuccess, &nodata},
	} {
		m := query(t, p, q.name, q.qtype)
		if m.Rcode != q.rcode || len(m.Answer) != 0 || len(m.Ns) != 1 || m.Ns[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("%s %s: want %s with one SOA, got %v", q.name, dns.TypeToString[q.qtype], dns.RcodeToString[q.rcode], m)
		}
		*q.out = m.Ns[0].String()
	}
	return nx, nodata
}

func TestNegativeAnswersCarryTheZoneSOA(t *testing.T) {
	for _, tc := range []struct {
		name string
		soa  string // what the next plugin serves
		want string // the SOA of negative answers
	}{
		// The TTL of a negative answer is min(SOA TTL, MINIMUM): RFC 2308.
		{"ttl above minimum",
			"example.edu.	3600	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 300",
			"example.edu.	300	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 300"},
		{"ttl below minimum",
			"example.edu.	60	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 3600",
			"example.edu.	60	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 3600"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPeerLoad(testConfig(), clusterSnapshot())
			p.Next = soaPlugin(tc.soa, true)
			if !p.refreshZones() {
				t.Fatal("refreshZones found no SOA in the chain")
			}
			want := test.SOA(tc.want).String()
			nx, nodata := negativeSOA(t, p)
			if nx != want || nodata != want {
				t.Errorf("negative answers carry\n%s\n%s\nwant\n%s", nx, nodata, want)
			}
			// A new snapshot changes nothing about the SOA.
			next := clusterSnapshot()
			next.Built = testBuilt.Add(time.Minute)
			p.publish(next)
			if nx, _ := negativeSOA(t, p); nx != want {
				t.Errorf("after a new snapshot: %s, want %s", nx, want)
			}
		})
	}
}

func TestNegativeAnswersFallbackSOA(t *testing.T) {
	want := soaCase().String()
	for _, tc := range []struct {
		name string
		next plugin.Handler
	}{
		{"no next plugin", nil},
		{"next refuses", nextHandler},
		{"not authoritative", soaPlugin("example.edu.	3600	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 300", false)},
		{"another zone", soaPlugin("example.org.	3600	IN	SOA	ns1.example.org. admin.example.org. 2026112401 7200 3600 1209600 300", true)},
		{"panics", plugin.HandlerFunc(func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) { panic("boom") })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPeerLoad(testConfig(), clusterSnapshot())
			p.Next = tc.next
			if p.refreshZones() {
				t.Fatal("refreshZones claims the chain served an SOA")
			}
			nx, nodata := negativeSOA(t, p)
			// The serial is fixed: later snapshots answer the same SOA.
			next := clusterSnapshot()
			next.Built = testBuilt.Add(time.Hour)
			p.publish(next)
			later, _ := negativeSOA(t, p)
			if nx != want || nodata != want || later != want {
				t.Errorf("negative answers carry\n%s\n%s\n%s\nwant\n%s", nx, nodata, later, want)
			}
		})
	}
}

// TestWatchFindsTheZoneSOA: the watcher asks the chain for the SOA when it
// starts.
func TestWatchFindsTheZoneSOA(t *testing.T) {
	src := agenttest.NewSource(clusterSnapshot())
	p := newTestPeerLoad(testConfig(), nil)
	p.Next = soaPlugin("example.edu.	3600	IN	SOA	ns1.example.edu. admin.example.edu. 2026112401 7200 3600 1209600 300", true)
	stop := p.watch(src)
	defer stop()
	agenttest.WaitFor(t, 5*time.Second, "the next plugin's SOA in negative answers", func() (bool, string) {
		m := query(t, p, "nope.cslab.example.edu.", dns.TypeA)
		soa, ok := m.Ns[0].(*dns.SOA)
		return ok && soa.Serial == 2026112401, fmt.Sprint(m.Ns)
	})
}

// TestNodeTXTShowsChecksOnce: agent's snapshot lists a failing check among
// the reasons as well; the TXT record shows it once, as a check, and the
// other reasons as reasons.
func TestNodeTXTShowsChecksOnce(t *testing.T) {
	p := newTestPeerLoad(testConfig(), testSnapshot(
		with(testNode("lab01", "10.0.0.11", 0.1), func(n *rank.NodeStatus) {
			n.Candidate = false
			n.Reasons = []string{"stale report (40s old)", "drain: drained: test", "tmp: /tmp 99% full"}
			n.Report.Failing = []report.CheckResult{
				{Name: "drain", Reason: "drained: test"},
				{Name: "tmp", Reason: "/tmp 99% full"},
			}
		}),
	))
	txt := query(t, p, "lab01.cslab.example.edu.", dns.TypeTXT).Answer[0].(*dns.TXT).Txt
	got := txt[len(txt)-3:]
	want := []string{"reason=stale report (40s old)", "check=drain: drained: test", "check=tmp: /tmp 99% full"}
	if !slices.Equal(got, want) {
		t.Errorf("TXT after the load words = %q, want %q", got, want)
	}
}

// TestPickByFamily: A and AAAA answers each hold the top nodes that have
// an address of that family, however the other family's nodes rank.
func TestPickByFamily(t *testing.T) {
	v6only := func(name, addr6 string, load1 float64) rank.NodeStatus {
		return with(testNode(name, "", load1), func(n *rank.NodeStatus) { n.Addr6 = netip.MustParseAddr(addr6) })
	}
	snap := testSnapshot(
		v6only("v6a", "2001:db8::a", 0.0),
		v6only("v6b", "2001:db8::b", 0.4),
		testNode("v4a", "10.0.0.1", 0.8),
		with(testNode("dual", "10.0.0.2", 1.2), func(n *rank.NodeStatus) { n.Addr6 = netip.MustParseAddr("2001:db8::2") }),
		testNode("v4b", "10.0.0.3", 1.6),
		testNode("v4c", "10.0.0.4", 2.4),
	)
	cfg := testConfig()
	cfg.top = 2
	p := newTestPeerLoad(cfg, snap)
	for _, tc := range []struct {
		qtype uint16
		want  []string
	}{
		{dns.TypeA, []string{"10.0.0.1", "10.0.0.2"}},
		{dns.TypeAAAA, []string{"2001:db8::a", "2001:db8::b"}},
	} {
		if got := answerIPs(query(t, p, "cslab.example.edu.", tc.qtype)); !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v, want %v", dns.TypeToString[tc.qtype], got, tc.want)
		}
	}
	cfg = testConfig()
	cfg.top = 3
	p = newTestPeerLoad(cfg, snap)
	if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA)); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
		t.Errorf("top 3 A = %v, want the three best IPv4 nodes", got)
	}
	if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeAAAA)); !slices.Equal(got, []string{"2001:db8::a", "2001:db8::b", "2001:db8::2"}) {
		t.Errorf("top 3 AAAA = %v, want the three best IPv6 nodes", got)
	}

	// Equal scores still share the load within a family: an IPv6-only
	// node in the group takes no IPv4 place.
	snap = testSnapshot(
		v6only("best6", "2001:db8::1", 0.0),
		testNode("eq1", "10.0.1.1", 1.0), testNode("eq2", "10.0.1.2", 1.0), testNode("eq3", "10.0.1.3", 1.0),
		v6only("eq6", "2001:db8::6", 1.0),
		testNode("worst", "10.0.2.1", 3.0),
	)
	cfg = testConfig()
	cfg.top = 2
	p = newTestPeerLoad(cfg, snap)
	seen := map[string]int{}
	for range 300 {
		ips := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA))
		if len(ips) != 2 || slices.Contains(ips, "10.0.2.1") {
			t.Fatalf("A = %v, want two of the equal IPv4 nodes", ips)
		}
		seen[ips[0]]++
	}
	if len(seen) != 3 {
		t.Errorf("first place went to %v, want all 3 equally good IPv4 nodes", seen)
	}
}

// countingSource hands out a new snapshot pointer on every call, as the
// agent publishes one on every rebuild, and counts the calls.
type countingSource struct {
	*agenttest.Source
	calls atomic.Int32
}

func (c *countingSource) Snapshot() *rank.Snapshot {
	c.calls.Add(1)
	s := *c.Source.Snapshot()
	return &s
}

// TestWatchRebuildsOnNotification: without a notification the watcher
// leaves the answers alone for clockRefresh; a notification rebuilds them.
// It runs on synctest's clock: the absence of a rebuild is asserted over
// fake time, not slept through.
func TestWatchRebuildsOnNotification(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &countingSource{Source: agenttest.NewSource(testSnapshot(testNode("lab01", "10.0.0.11", 0.1)))}
		p := newTestPeerLoad(testConfig(), nil)
		stop := p.watch(src)
		defer stop()
		synctest.Wait()
		if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA)); len(got) != 1 {
			t.Fatalf("first answers = %v", got)
		}
		time.Sleep(clockRefresh - time.Millisecond)
		synctest.Wait()
		if n := src.calls.Load(); n != 1 {
			t.Errorf("%d snapshot reads without a notification within %s, want 1", n, clockRefresh)
		}
		src.Set(testSnapshot(testNode("lab01", "10.0.0.11", 0.1), testNode("lab02", "10.0.0.12", 0.1)))
		synctest.Wait()
		if got := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA)); len(got) != 2 {
			t.Errorf("after a notification A = %v, want 2 records", got)
		}
	})
}

// TestSnapshotAgeIsReportAge: the age gauge is the age of the newest
// report, and a snapshot without reports leaves it growing.
func TestSnapshotAgeIsReportAge(t *testing.T) {
	newest := time.Now().Add(-7 * time.Second)
	p := newTestPeerLoad(testConfig(), testSnapshot(
		with(testNode("lab01", "10.0.0.11", 0.1), func(n *rank.NodeStatus) { n.Received = newest.Add(-time.Minute) }),
		with(testNode("lab02", "10.0.0.12", 0.1), func(n *rank.NodeStatus) { n.Received = newest }),
	))
	check := func(when string) {
		t.Helper()
		want := time.Since(newest).Seconds()
		if got := metricValue(t, snapshotAgeGauge.WithLabelValues("")); got < want-1 || got > want {
			t.Errorf("%s: snapshot age = %.1f s, want the newest report's age %.1f s", when, got, want)
		}
	}
	check("with reports")
	p.publish(testSnapshot(with(testNode("lab01", "10.0.0.11", 0.1), func(n *rank.NodeStatus) { n.Report = nil })))
	check("after a snapshot without reports")
}

// TestTXTCap: the name's TXT lists the best maxTXTRecords machines in rank
// order however many there are, and never so many bytes that a TCP reply
// (with a DNSSEC signature) would be truncated; the candidates gauge
// still counts all of them.
func TestTXTCap(t *testing.T) {
	long := strings.Repeat("n", 200)
	for _, tc := range []struct {
		name    string
		node    func(i int) string
		reasons int // of one node, lab000 (not a candidate)
		want    int
	}{
		{"short names", func(i int) string { return fmt.Sprintf("lab%03d", i) }, 0, maxTXTRecords},
		{"long names", func(i int) string { return fmt.Sprintf("%s%03d", long, i) }, 0, maxTXTRecords},
		{"many reasons", func(i int) string { return fmt.Sprintf("lab%03d", i) }, 2000, maxTXTRecords},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []rank.NodeStatus
			for i := range 100 {
				nodes = append(nodes, testNode(tc.node(i), fmt.Sprintf("10.0.%d.%d", i/200, 1+i%200), float64(i)*0.3))
			}
			for i := range tc.reasons {
				nodes[0].Reasons = append(nodes[0].Reasons, fmt.Sprintf("reason %d: %s", i, long))
			}
			if tc.reasons > 0 {
				nodes[0].Candidate = false
			}
			p := newTestPeerLoad(testConfig(), testSnapshot(nodes...))
			server := metricValue(t, candidatesGauge.WithLabelValues("", "cslab.example.edu."))
			if wantCand := float64(100 - min(tc.reasons, 1)); server != wantCand {
				t.Errorf("candidates gauge %v, want %v", server, wantCand)
			}
			m := tcpQuery(t, p, "cslab.example.edu.", dns.TypeTXT)
			if len(m.Answer) != tc.want {
				t.Fatalf("%d TXT records, want %d", len(m.Answer), tc.want)
			}
			for i, rr := range m.Answer {
				if want := "rank=" + strconv.Itoa(i+1); !slices.Contains(rr.(*dns.TXT).Txt, want) {
					t.Fatalf("TXT %d lacks %s: %v", i, want, rr)
				}
			}
			for _, qname := range []string{"cslab.example.edu.", strings.ToLower(nodes[0].Name) + ".cslab.example.edu."} {
				m := tcpQuery(t, p, qname, dns.TypeTXT)
				// What the server does to a TCP reply: truncate to 64 KiB,
				// after an RRSIG of the largest key (RSA-4096) is added.
				m.Answer = append(m.Answer, &dns.RRSIG{Hdr: hdr(qname, dns.TypeRRSIG, 30), SignerName: "example.edu.",
					Signature: strings.Repeat("A", 684)})
				m.Truncate(dns.MaxMsgSize)
				if m.Truncated {
					t.Errorf("%s TXT over TCP is truncated (%d bytes)", qname, m.Len())
				}
			}
		})
	}
}

// tcpQuery runs one query through p over TCP and returns the reply.
func tcpQuery(t *testing.T, p *PeerLoad, qname string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
	if _, err := p.ServeDNS(context.Background(), rec, m); err != nil || rec.Msg == nil {
		t.Fatalf("%s %s over TCP: %v, %v", qname, dns.TypeToString[qtype], err, rec.Msg)
	}
	return rec.Msg
}

// TestTruncationPointMatchesBIND: a reply too large for the client's
// buffer is compressed (RFC 1035 section 4.1.4) before anything is cut,
// so TC is set exactly when BIND sets it. The sizes are BIND 9.18's for
// 40 A records at cslab.example.edu (dig +ignore +nocookie), the same
// bytes; test/ compares against a running named. Where TC is set BIND
// leaves the answer empty under EDNS, while CoreDNS keeps the records
// that fit (RFC 2181 section 9 allows both).
func TestTruncationPointMatchesBIND(t *testing.T) {
	var nodes []rank.NodeStatus
	for i := range 40 {
		nodes = append(nodes, testNode(fmt.Sprintf("lab%02d", i), fmt.Sprintf("10.0.0.%d", 10+i), 0))
	}
	cfg := testConfig()
	cfg.top = 40
	p := newTestPeerLoad(cfg, testSnapshot(nodes...))
	for _, tc := range []struct {
		bufsize   uint16 // 0: no EDNS
		answers   int
		truncated bool
		size      int // on the wire
	}{
		{0, 29, true, 499}, // BIND: 29 records, 499 bytes
		{1232, 40, false, 686},
		{700, 40, false, 686},
		{600, 34, true, 590}, // BIND: TC, no records
	} {
		m := new(dns.Msg)
		m.SetQuestion("cslab.example.edu.", dns.TypeA)
		if tc.bufsize > 0 {
			m.SetEdns0(tc.bufsize, false)
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := p.ServeDNS(context.Background(), request.NewScrubWriter(m, rec), m); err != nil {
			t.Fatal(err)
		}
		wire, err := rec.Msg.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Msg.Answer) != tc.answers || rec.Msg.Truncated != tc.truncated || len(wire) != tc.size {
			t.Errorf("bufsize %d: %d answers, TC %v, %d bytes; want %d, %v, %d", tc.bufsize,
				len(rec.Msg.Answer), rec.Msg.Truncated, len(wire), tc.answers, tc.truncated, tc.size)
		}
	}
}
