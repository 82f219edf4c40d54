package peerload

import (
	"context"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent"
)

// FuzzServeDNS sends random names, types, classes and EDNS0 options through
// ServeDNS the way the server does (behind a ScrubWriter, over UDP or TCP)
// against a cluster with odd node names and fallbacks; nothing may panic
// and every reply must pack.
func FuzzServeDNS(f *testing.F) {
	f.Add("cslab.example.edu.", uint16(dns.TypeA), uint16(dns.ClassINET), uint16(0), false, []byte(nil), false)
	f.Add("CSLAB.example.edu.", uint16(dns.TypeTXT), uint16(dns.ClassINET), uint16(512), true, []byte{0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8}, false)
	f.Add("lab01.cslab.example.edu.", uint16(dns.TypeTXT), uint16(dns.ClassINET), uint16(1232), false, []byte(nil), true)
	f.Add("x.y.cslab.example.edu.", uint16(dns.TypeAAAA), uint16(dns.ClassANY), uint16(65535), true, []byte{0, 3, 0, 0}, false)
	f.Add("we\\ird.cslab.example.edu.", uint16(dns.TypeANY), uint16(dns.ClassCHAOS), uint16(1), false, []byte{255, 255, 0, 1, 9}, false)
	f.Add("", uint16(0), uint16(0), uint16(0), false, []byte(nil), false)
	f.Add("lab\x00.cslab.example.edu", uint16(dns.TypeA), uint16(dns.ClassINET), uint16(0), false, []byte(nil), false)

	p := fuzzPeerLoad()
	f.Fuzz(func(t *testing.T, name string, qtype, qclass, bufsize uint16, do bool, opts []byte, tcp bool) {
		m := new(dns.Msg)
		m.Id = 1
		m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: qclass}}
		if bufsize > 0 || do || len(opts) > 0 {
			o := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
			o.SetUDPSize(bufsize)
			if do {
				o.SetDo()
			}
			// Options as code(2) length(2) data, as on the wire.
			for len(opts) >= 4 {
				code := uint16(opts[0])<<8 | uint16(opts[1])
				n := min(int(opts[2])<<8|int(opts[3]), len(opts)-4)
				o.Option = append(o.Option, &dns.EDNS0_LOCAL{Code: code, Data: opts[4 : 4+n]})
				opts = opts[4+n:]
			}
			m.Extra = append(m.Extra, o)
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
		w := request.NewScrubWriter(m, rec)
		_, _ = p.ServeDNS(context.Background(), w, m)
		if rec.Msg != nil {
			if _, err := rec.Msg.Pack(); err != nil && dns.IsFqdn(name) {
				if _, ok := dns.IsDomainName(name); ok {
					t.Errorf("reply to %q %d does not pack: %v", name, qtype, err)
				}
			}
		}
	})
}

// fuzzPeerLoad serves cslab.example.edu over a cluster with a node whose
// name needs escaping, a dotted node and a drained node.
func fuzzPeerLoad() *PeerLoad {
	cfg := testConfig()
	cfg.names = append(cfg.names, "gpu.cslab.example.edu.")
	p := newTestPeerLoad(cfg, clusterSnapshot())
	p.Next = test.NextHandler(dns.RcodeSuccess, nil)
	odd := testNode(`we"ird\name`, "10.0.0.99", 0.1)
	odd.Reasons = []string{"check cmd: \x00\xff\"quoted\" \\ end"}
	p.publish(testSnapshot(
		odd,
		with(testNode("lab02.cs", "10.0.0.12", 0.1), func(n *agent.NodeStatus) { n.Addr6 = netip.MustParseAddr("2001:db8::12") }),
		with(testNode("lab05", "10.0.0.15", 0.0), func(n *agent.NodeStatus) { n.Candidate = false }),
	))
	return p
}
