package peerload

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/rank"
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

// FuzzServeDNSWire feeds raw wire bytes the way the server sees them: what
// dns.Msg.Unpack refuses is skipped (the server drops it before any plugin
// runs), the rest goes through ServeDNS behind a ScrubWriter over UDP or
// TCP. Nothing may panic, and every reply must pack and answer the query's
// ID, as long as the query itself packs again.
func FuzzServeDNSWire(f *testing.F) {
	for _, seed := range wireSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	p := fuzzPeerLoad()
	f.Fuzz(func(t *testing.T, wire []byte, tcp bool) {
		m := new(dns.Msg)
		if err := m.Unpack(wire); err != nil {
			t.Skip("does not unpack; the server drops it")
		}
		_, queryErr := m.Copy().Pack()
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
		w := request.NewScrubWriter(m, rec)
		_, _ = p.ServeDNS(context.Background(), w, m)
		if rec.Msg == nil || queryErr != nil {
			return
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Errorf("reply to %v does not pack: %v", m.Question, err)
		}
		if rec.Msg.Id != m.Id {
			t.Errorf("reply ID %d, query ID %d", rec.Msg.Id, m.Id)
		}
	})
}

// wireSeeds are packed queries for the virtual names and node names with
// and without EDNS0 (DO, cookie, NSID, client subnet, padding), plus a few
// that need escaping or carry odd classes and sections.
func wireSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	add := func(m *dns.Msg) {
		b, err := m.Pack()
		if err != nil {
			f.Fatalf("seed %v: %v", m.Question, err)
		}
		seeds = append(seeds, b)
	}
	edns := func(m *dns.Msg, opts ...dns.EDNS0) *dns.Msg {
		m.SetEdns0(1232, true)
		o := m.IsEdns0()
		o.Option = append(o.Option, opts...)
		return m
	}
	names := []string{"cslab.example.edu.", "CSLab.Example.EDU.", "gpu.cslab.example.edu.",
		"lab01.cslab.example.edu.", "lab02.cs.cslab.example.edu.", "lab05.cslab.example.edu.",
		"x.y.cslab.example.edu.", "example.edu.", "other.example.org.",
		"lab.example.net.", "ns.dns.lab.example.net.", "dns.lab.example.net."}
	types := []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeANY, dns.TypeSOA, dns.TypeNS, dns.TypeAXFR, dns.TypeIXFR}
	for _, name := range names {
		for _, qt := range types {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			m.Id = 4242
			add(m)
		}
		m := new(dns.Msg)
		m.SetNotify(name)
		add(m)
	}
	for _, qt := range types {
		m := new(dns.Msg)
		m.SetQuestion("cslab.example.edu.", qt)
		add(edns(m,
			&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"},
			&dns.EDNS0_NSID{Code: dns.EDNS0NSID},
			&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(127, 0, 0, 0).To4()},
			&dns.EDNS0_PADDING{Padding: make([]byte, 12)},
		))
	}
	m := new(dns.Msg)
	m.SetQuestion("lab01.cslab.example.edu.", dns.TypeTXT)
	add(edns(m, &dns.EDNS0_LOCAL{Code: 65001, Data: []byte{0xff, 0, 1}}))

	m = new(dns.Msg)
	m.SetQuestion(`we\"ird\\name.cslab.example.edu.`, dns.TypeTXT)
	add(m)

	m = new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeA)
	m.Question[0].Qclass = dns.ClassCHAOS
	add(m)

	// Two questions, and a query carrying an answer and an authority RR.
	m = new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeA)
	m.Question = append(m.Question, dns.Question{Name: "lab01.cslab.example.edu.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	add(m)
	m = new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeAAAA)
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "cslab.example.edu.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.IPv4(127, 0, 0, 1)}}
	m.Ns = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "example.edu.", Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{"x"}}}
	add(m)

	// An UPDATE and a response, which a server may still hand to plugins.
	m = new(dns.Msg)
	m.SetUpdate("example.edu.")
	m.Insert([]dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "cslab.example.edu.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: net.IPv4(127, 0, 1, 1)}})
	add(m)
	m = new(dns.Msg)
	m.SetQuestion("cslab.example.edu.", dns.TypeA)
	m.Response = true
	add(m)
	return seeds
}

// fuzzPeerLoad serves cslab.example.edu over a cluster with a node whose
// name needs escaping, a dotted node and a drained node, and the apex of
// a zone it makes up, lab.example.net.
func fuzzPeerLoad() *PeerLoad {
	cfg := testConfig()
	cfg.names = append(cfg.names, "gpu.cslab.example.edu.", "lab.example.net.")
	p := newTestPeerLoad(cfg, clusterSnapshot())
	p.nsAddrs.Store(&[]net.IP{net.IPv4(127, 0, 0, 1), net.ParseIP("::1")})
	p.Next = test.NextHandler(dns.RcodeSuccess, nil)
	odd := testNode(`we"ird\name`, "10.0.0.99", 0.1)
	odd.Reasons = []string{"check cmd: \x00\xff\"quoted\" \\ end"}
	p.publish(testSnapshot(
		odd,
		with(testNode("lab02.cs", "10.0.0.12", 0.1), func(n *rank.NodeStatus) { n.Addr6 = netip.MustParseAddr("2001:db8::12") }),
		with(testNode("lab05", "10.0.0.15", 0.0), func(n *rank.NodeStatus) { n.Candidate = false }),
	))
	return p
}
