package peerload

import (
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/rank"
)

// benchPeerLoad answers for five equally loaded candidates, top 5, so every
// answer shuffles: the setup of scripts/bench-dns.sh.
func benchPeerLoad() (*PeerLoad, *rank.Snapshot) {
	var nodes []rank.NodeStatus
	for i := range 5 {
		nodes = append(nodes, testNode(fmt.Sprintf("lab%02d", i), fmt.Sprintf("10.0.0.%d", 10+i), 0.5))
	}
	cfg := testConfig()
	cfg.top = 5
	cfg.herd = true // as shipped
	snap := testSnapshot(nodes...)
	return newTestPeerLoad(cfg, snap), snap
}

// packWriter packs the reply the way dns.Server's writer does (into a
// fresh buffer), so the benchmark counts what the wire costs too.
type packWriter struct {
	test.ResponseWriter
	n int
}

func (w *packWriter) WriteMsg(m *dns.Msg) error {
	b, err := m.Pack()
	w.n = len(b)
	return err
}

// BenchmarkServeDNS measures the answer path alone (the writer drops the
// reply).
func BenchmarkServeDNS(b *testing.B) { benchServe(b, "cslab.example.edu.", dns.TypeA) }

// BenchmarkServeDNSNXDomain is the negative answer path: the SOA comes
// from the published set, copied per reply.
func BenchmarkServeDNSNXDomain(b *testing.B) { benchServe(b, "nope.cslab.example.edu.", dns.TypeA) }

func benchServe(b *testing.B, qname string, qtype uint16) {
	p, _ := benchPeerLoad()
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	w := &test.ResponseWriter{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ServeDNS(ctx, w, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeDNSPacked is BenchmarkServeDNS through CoreDNS's
// ScrubWriter with the reply packed, as in the server.
func BenchmarkServeDNSPacked(b *testing.B) {
	p, _ := benchPeerLoad()
	m := new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeA)
	pw := &packWriter{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ServeDNS(ctx, request.NewScrubWriter(m, pw), m); err != nil {
			b.Fatal(err)
		}
	}
	if pw.n == 0 {
		b.Fatal("nothing packed")
	}
}

// BenchmarkPublish is the snapshot rebuild the watcher does on every
// snapshot notification and once a second, for 5 and 500 nodes (distinct
// loads, so the ranking has many groups).
func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{5, 500} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			var nodes []rank.NodeStatus
			for i := range n {
				nodes = append(nodes, testNode(fmt.Sprintf("lab%03d", i), fmt.Sprintf("10.0.%d.%d", i/250, 1+i%250), float64(i%40)/10))
			}
			cfg := testConfig()
			cfg.top = 5
			snap := testSnapshot(nodes...)
			p := newTestPeerLoad(cfg, snap)
			b.ReportAllocs()
			for b.Loop() {
				p.publish(snap)
			}
		})
	}
}

// BenchmarkRankingPick is the alternative the precomputed groups replace:
// rank.Ranking.Pick on every query.
func BenchmarkRankingPick(b *testing.B) {
	var nodes []rank.NodeStatus
	for i := range 5 {
		nodes = append(nodes, testNode(fmt.Sprintf("lab%02d", i), fmt.Sprintf("10.0.0.%d", 10+i), 0.5))
	}
	r := testSnapshot(nodes...).Rank("", rank.ByCombined)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Pick(5, nil)
	}
}

// BenchmarkServeDNSSigned is BenchmarkServeDNS with DO set behind
// CoreDNS's dnssec plugin, as in a signed zone: the five shuffled records
// come in 120 orders, each signed once and then served from the plugin's
// signature cache (its key is the RRset in answer order). file-www is a
// static record of the same zone through the same chain, for comparison.
func BenchmarkServeDNSSigned(b *testing.B) {
	for _, qname := range []string{"cslab.example.edu.", "www.example.edu."} {
		name := "peerload"
		if qname == "www.example.edu." {
			name = "file-www"
		}
		b.Run(name, func(b *testing.B) {
			p, _ := benchPeerLoad()
			chain, _ := signedChain(b, p)
			m := new(dns.Msg)
			m.SetQuestion(qname, dns.TypeA)
			m.SetEdns0(1232, true)
			w := &test.ResponseWriter{}
			ctx := context.Background()
			for range 5000 { // sign every order first: the steady state
				if _, err := chain.ServeDNS(ctx, w, m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := chain.ServeDNS(ctx, w, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
