package peerload

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/rank"
)

// fileZone is CoreDNS's file plugin serving one zone from text, as a
// Corefile's `file` would.
func fileZone(t testing.TB, origin, text string) file.File {
	t.Helper()
	z, err := file.Parse(strings.NewReader(text), origin, "db."+origin, 0)
	if err != nil {
		t.Fatalf("zone %s: %v", origin, err)
	}
	return file.File{Zones: file.Zones{Z: map[string]*file.Zone{origin: z}, Names: []string{origin}}}
}

// apexZone is the zone of a virtual name that is its own apex: SOA, NS
// (one in-zone name server with its address) and an MX.
const apexZone = `$ORIGIN cslab.example.edu.
@	300	IN	SOA	ns1.example.edu. hostmaster.example.edu. 2026113001 7200 1800 86400 60
@	300	IN	NS	ns.cslab.example.edu.
@	300	IN	MX	10 mail.example.edu.
ns	300	IN	A	192.0.2.53
`

// exampleZone is the zone a virtual name lives in (testConfig's).
const exampleZone = `$ORIGIN example.edu.
@	300	IN	SOA	ns1.example.edu. hostmaster.example.edu. 2026113001 7200 1800 86400 60
@	300	IN	NS	ns1.example.edu.
ns1	300	IN	A	192.0.2.53
`

// apexConfig is one virtual name that is the apex of its server block.
func apexConfig() *config {
	cfg := testConfig()
	cfg.zones = []string{"cslab.example.edu."}
	return cfg
}

// caseResult runs tc through p over UDP or TCP. It returns the written
// reply, or nil and the rcode when p (or the plugin after it) left the
// writing to the server.
func caseResult(t *testing.T, p plugin.Handler, tc test.Case, tcp bool) (*dns.Msg, int) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
	code, err := p.ServeDNS(context.Background(), rec, tc.Msg())
	if err != nil {
		t.Fatalf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
	}
	return rec.Msg, code
}

// checkCases runs a test.Case table through p and checks every reply
// with test.SortAndCheck.
func checkCases(t *testing.T, p plugin.Handler, cases []test.Case, tcp bool) {
	t.Helper()
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/tcp=%v", tc.Qname, dns.TypeToString[tc.Qtype], tcp), func(t *testing.T) {
			m, code := caseResult(t, p, tc, tcp)
			if m == nil {
				t.Fatalf("no reply written (code %s)", dns.RcodeToString[code])
			}
			if err := test.SortAndCheck(m, tc); err != nil {
				t.Error(err)
			}
			if !m.Authoritative {
				t.Error("AA not set")
			}
		})
	}
}

// TestApexSynthesized: a virtual name that is the apex of a zone nothing
// after peerload serves answers SOA and NS itself, and the name server
// they name, ns.dns.<apex>, with the server's addresses, so no answer
// contradicts another.
func TestApexSynthesized(t *testing.T) {
	p := newTestPeerLoad(apexConfig(), clusterSnapshot())
	p.Next = nil
	p.nsAddrs.Store(&[]net.IP{net.ParseIP("192.0.2.53").To4(), net.ParseIP("2001:db8::53")})
	if p.refreshZones() {
		t.Fatal("a zone without a next plugin counts as served")
	}
	soa := test.SOA("cslab.example.edu.	30	IN	SOA	ns.dns.cslab.example.edu. hostmaster.cslab.example.edu. 1 7200 1800 86400 30")
	ns := test.NS("cslab.example.edu.	30	IN	NS	ns.dns.cslab.example.edu.")
	a := []dns.RR{
		test.A("cslab.example.edu.	30	IN	A	10.0.0.11"),
		test.A("cslab.example.edu.	30	IN	A	10.0.0.12"),
		test.A("cslab.example.edu.	30	IN	A	10.0.0.13"),
	}
	checkCases(t, p, []test.Case{
		{Qname: "cslab.example.edu.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeNS, Answer: []dns.RR{ns}},
		{Qname: "CSLAB.example.edu.", Qtype: dns.TypeNS, Answer: []dns.RR{test.NS("CSLAB.example.edu.	30	IN	NS	ns.dns.cslab.example.edu.")}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeA, Answer: a},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeANY, Answer: a},
		{Qname: "ns.dns.cslab.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns.dns.cslab.example.edu.	30	IN	A	192.0.2.53")}},
		{Qname: "ns.dns.cslab.example.edu.", Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA("ns.dns.cslab.example.edu.	30	IN	AAAA	2001:db8::53")}},
		{Qname: "ns.dns.cslab.example.edu.", Qtype: dns.TypeANY, Answer: []dns.RR{test.A("ns.dns.cslab.example.edu.	30	IN	A	192.0.2.53")}},
		{Qname: "ns.dns.cslab.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "dns.cslab.example.edu.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
		{Qname: "ns.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
		{Qname: "lab01.cslab.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("lab01.cslab.example.edu.	30	IN	A	10.0.0.11")}},
	}, false)
	// Over TCP ANY holds every RRset at the name.
	for qname, want := range map[string]map[uint16]int{
		"cslab.example.edu.":        {dns.TypeSOA: 1, dns.TypeNS: 1, dns.TypeA: 3, dns.TypeAAAA: 2, dns.TypeTXT: 4},
		"ns.dns.cslab.example.edu.": {dns.TypeA: 1, dns.TypeAAAA: 1},
	} {
		m, _ := caseResult(t, p, test.Case{Qname: qname, Qtype: dns.TypeANY}, true)
		if got := typeCounts(m); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("ANY %s over TCP: %v, want %v", qname, got, want)
		}
	}
}

// typeCounts counts the answer records of m by type.
func typeCounts(m *dns.Msg) map[uint16]int {
	got := map[uint16]int{}
	for _, rr := range m.Answer {
		got[rr.Header().Rrtype]++
	}
	return got
}

// TestApexServed: when the next plugin (file) serves the zone whose apex
// the virtual name is, SOA, NS, the other types at the apex, names below
// it that are no machine, transfers and NOTIFY come from the zone.
func TestApexServed(t *testing.T) {
	p := newTestPeerLoad(apexConfig(), clusterSnapshot())
	p.Next = fileZone(t, "cslab.example.edu.", apexZone)
	if !p.refreshZones() {
		t.Fatal("file serves the zone, but refreshZones found no SOA")
	}
	soa := test.SOA("cslab.example.edu.	300	IN	SOA	ns1.example.edu. hostmaster.example.edu. 2026113001 7200 1800 86400 60")
	ns := test.NS("cslab.example.edu.	300	IN	NS	ns.cslab.example.edu.")
	negSOA := test.SOA("cslab.example.edu.	60	IN	SOA	ns1.example.edu. hostmaster.example.edu. 2026113001 7200 1800 86400 60")
	checkCases(t, p, []test.Case{
		{Qname: "cslab.example.edu.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}, Ns: []dns.RR{ns}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeNS, Answer: []dns.RR{ns}, Extra: []dns.RR{test.A("ns.cslab.example.edu.	300	IN	A	192.0.2.53")}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeMX, Answer: []dns.RR{test.MX("cslab.example.edu.	300	IN	MX	10 mail.example.edu.")}, Ns: []dns.RR{ns}},
		{Qname: "cslab.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("cslab.example.edu.	30	IN	A	10.0.0.11"),
			test.A("cslab.example.edu.	30	IN	A	10.0.0.12"),
			test.A("cslab.example.edu.	30	IN	A	10.0.0.13"),
		}},
		// peerload's own NODATA carries the zone's SOA.
		{Qname: "lab02.cslab.example.edu.", Qtype: dns.TypeAAAA, Ns: []dns.RR{negSOA}},
		{Qname: "lab02.cslab.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("lab02.cslab.example.edu.	30	IN	A	10.0.0.12")}},
		{Qname: "ns.cslab.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns.cslab.example.edu.	300	IN	A	192.0.2.53")}, Ns: []dns.RR{ns}},
		{Qname: "nope.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
		// The made-up name server exists only in a synthesized zone.
		{Qname: "ns.dns.cslab.example.edu.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{soa}},
	}, false)

	// Transfers are file's to answer (REFUSED without a transfer plugin),
	// and NOTIFY too (dropped unless it is a secondary of the zone).
	for _, tc := range []struct {
		qtype  uint16
		opcode int
	}{{dns.TypeAXFR, dns.OpcodeQuery}, {dns.TypeIXFR, dns.OpcodeQuery}, {dns.TypeSOA, dns.OpcodeNotify}} {
		m := new(dns.Msg)
		m.SetQuestion("cslab.example.edu.", tc.qtype)
		m.Opcode = tc.opcode
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
		code, _ := p.ServeDNS(context.Background(), rec, m)
		wantCode := dns.RcodeRefused
		if tc.opcode == dns.OpcodeNotify {
			wantCode = dns.RcodeSuccess // file drops it
		}
		if rec.Msg != nil || code != wantCode {
			t.Errorf("%s %s: code %s, reply %v; want file's %s without a reply", dns.OpcodeToString[tc.opcode],
				dns.TypeToString[tc.qtype], dns.RcodeToString[code], rec.Msg, dns.RcodeToString[wantCode])
		}
	}
}

// TestOpcodesAndTransfers: NOTIFY for a virtual name inside a zone is
// NOTAUTH as BIND answers it (the name is no zone), the apex of a zone
// peerload makes up acknowledges it as a primary does; AXFR and IXFR are
// REFUSED as file refuses them without a transfer plugin; other opcodes
// and names go on down the chain.
func TestOpcodesAndTransfers(t *testing.T) {
	inZone := newTestPeerLoad(testConfig(), clusterSnapshot())
	apex := newTestPeerLoad(apexConfig(), clusterSnapshot())
	apex.Next = nil
	for _, tc := range []struct {
		p      *PeerLoad
		qname  string
		qtype  uint16
		opcode int
		rcode  int  // of the reply peerload writes; -1: handed to the next plugin
		aa     bool // the reply is authoritative
	}{
		{inZone, "cslab.example.edu.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotAuth, false},
		{inZone, "lab01.cslab.example.edu.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotAuth, false},
		{inZone, "cslab.example.edu.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused, false},
		{inZone, "cslab.example.edu.", dns.TypeIXFR, dns.OpcodeQuery, dns.RcodeRefused, false},
		{inZone, "lab01.cslab.example.edu.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused, false},
		{inZone, "www.example.edu.", dns.TypeSOA, dns.OpcodeNotify, -1, false},
		{inZone, "example.edu.", dns.TypeAXFR, dns.OpcodeQuery, -1, false},
		{inZone, "cslab.example.edu.", dns.TypeA, dns.OpcodeUpdate, -1, false},
		{inZone, "cslab.example.edu.", dns.TypeA, dns.OpcodeStatus, -1, false},
		{apex, "cslab.example.edu.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeSuccess, true},
		{apex, "lab01.cslab.example.edu.", dns.TypeSOA, dns.OpcodeNotify, dns.RcodeNotAuth, false},
		{apex, "cslab.example.edu.", dns.TypeAXFR, dns.OpcodeQuery, dns.RcodeRefused, false},
		{apex, "cslab.example.edu.", dns.TypeIXFR, dns.OpcodeQuery, dns.RcodeRefused, false},
	} {
		name := fmt.Sprintf("%s/%s/%s/apex=%v", dns.OpcodeToString[tc.opcode], tc.qname, dns.TypeToString[tc.qtype], tc.p == apex)
		t.Run(name, func(t *testing.T) {
			for _, tcp := range []bool{false, true} {
				m := new(dns.Msg)
				m.SetQuestion(tc.qname, tc.qtype)
				m.Opcode = tc.opcode
				rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: tcp})
				code, _ := tc.p.ServeDNS(context.Background(), rec, m)
				if tc.rcode < 0 {
					if rec.Msg != nil || code != dns.RcodeRefused {
						t.Fatalf("tcp=%v: want the query handed on, got code %d, reply %v", tcp, code, rec.Msg)
					}
					continue
				}
				r := rec.Msg
				if r == nil {
					t.Fatalf("tcp=%v: no reply (code %d)", tcp, code)
				}
				if r.Rcode != tc.rcode || r.Authoritative != tc.aa || r.Opcode != tc.opcode || len(r.Answer) != 0 || len(r.Ns) != 0 {
					t.Errorf("tcp=%v: reply %s aa=%v opcode %s, %d answers, %d authority; want %s aa=%v, empty", tcp,
						dns.RcodeToString[r.Rcode], r.Authoritative, dns.OpcodeToString[r.Opcode], len(r.Answer), len(r.Ns),
						dns.RcodeToString[tc.rcode], tc.aa)
				}
			}
		})
	}
}

// TestANY: RFC 8482. Over UDP ANY is one RRset, the addresses first (the
// AAAA when a name has no IPv4 address); over TCP every RRset at the name.
func TestANY(t *testing.T) {
	p := newTestPeerLoad(testConfig(), testSnapshot(
		testNode("lab01", "10.0.0.11", 0.1),
		with(testNode("v6only", "", 0.5), func(n *rank.NodeStatus) { n.Addr6 = mustAddr("2001:db8::6") }),
	))
	for _, tc := range []struct {
		qname string
		tcp   bool
		want  map[uint16]int // records per type
	}{
		{"cslab.example.edu.", false, map[uint16]int{dns.TypeA: 1}},
		{"cslab.example.edu.", true, map[uint16]int{dns.TypeA: 1, dns.TypeAAAA: 1, dns.TypeTXT: 2}},
		{"lab01.cslab.example.edu.", false, map[uint16]int{dns.TypeA: 1}},
		{"lab01.cslab.example.edu.", true, map[uint16]int{dns.TypeA: 1, dns.TypeTXT: 1}},
		{"v6only.cslab.example.edu.", false, map[uint16]int{dns.TypeAAAA: 1}},
		{"v6only.cslab.example.edu.", true, map[uint16]int{dns.TypeAAAA: 1, dns.TypeTXT: 1}},
	} {
		m, _ := caseResult(t, p, test.Case{Qname: tc.qname, Qtype: dns.TypeANY}, tc.tcp)
		got := typeCounts(m)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || m.Rcode != dns.RcodeSuccess {
			t.Errorf("ANY %s tcp=%v: %s %v, want NOERROR %v", tc.qname, tc.tcp, dns.RcodeToString[m.Rcode], got, tc.want)
		}
	}
}

// TestPresignedZoneDetected: zone data signed offline (an RRSIG on the
// SOA) is recognised, so the plugin can say why its answers fail to
// validate there.
func TestPresignedZoneDetected(t *testing.T) {
	key, signer := testKey(t, "example.edu.")
	soa := test.SOA("example.edu.	3600	IN	SOA	ns1.example.edu. admin.example.edu. 2026113001 7200 3600 1209600 300")
	sig := signRRset(t, key, signer, []dns.RR{soa})
	for _, tc := range []struct {
		zone   string
		signed bool
	}{
		{soa.String() + "\n", false},
		{soa.String() + "\n" + sig.String() + "\n", true},
	} {
		p := newTestPeerLoad(testConfig(), clusterSnapshot())
		p.Next = fileZone(t, "example.edu.", tc.zone)
		p.refreshZones()
		if d := (*p.zoneData.Load())["example.edu."]; !d.served || d.signed != tc.signed {
			t.Errorf("zone %q: served %v signed %v, want served, signed %v", tc.zone, d.served, d.signed, tc.signed)
		}
	}
}

// TestZoneSynthesized: a virtual name inside a zone nothing after peerload
// serves (no file plugin) gets negative answers with a made-up SOA that
// names ns.dns.<zone> as the zone's primary (RFC 1035 section 3.3.13). The
// same server answers that name with its addresses and the zone's own SOA
// and NS, instead of failing them (SERVFAIL from an empty chain); other
// names of the zone stay with the chain.
func TestZoneSynthesized(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	p.Next = nil
	p.nsAddrs.Store(&[]net.IP{net.ParseIP("192.0.2.53").To4(), net.ParseIP("2001:db8::53")})
	if p.refreshZones() {
		t.Fatal("a zone without a next plugin counts as served")
	}
	soa := test.SOA("example.edu.	30	IN	SOA	ns.dns.example.edu. hostmaster.example.edu. 1 7200 1800 86400 30")
	ns := test.NS("example.edu.	30	IN	NS	ns.dns.example.edu.")
	checkCases(t, p, []test.Case{
		{Qname: "cslab.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "example.edu.", Qtype: dns.TypeSOA, Answer: []dns.RR{soa}},
		{Qname: "example.edu.", Qtype: dns.TypeNS, Answer: []dns.RR{ns}},
		{Qname: "example.edu.", Qtype: dns.TypeANY, Answer: []dns.RR{soa}},
		{Qname: "example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "ns.dns.example.edu.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns.dns.example.edu.	30	IN	A	192.0.2.53")}},
		{Qname: "ns.dns.example.edu.", Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA("ns.dns.example.edu.	30	IN	AAAA	2001:db8::53")}},
		{Qname: "ns.dns.example.edu.", Qtype: dns.TypeMX, Ns: []dns.RR{soa}},
		{Qname: "dns.example.edu.", Qtype: dns.TypeA, Ns: []dns.RR{soa}},
	}, false)
	if m, _ := caseResult(t, p, test.Case{Qname: "example.edu.", Qtype: dns.TypeANY}, true); fmt.Sprint(typeCounts(m)) != fmt.Sprint(map[uint16]int{dns.TypeSOA: 1, dns.TypeNS: 1}) {
		t.Errorf("ANY example.edu. over TCP: %v, want the SOA and the NS", m)
	}
	if m, _ := caseResult(t, p, test.Case{Qname: "example.edu.", Qtype: dns.TypeAXFR}, true); m == nil || m.Rcode != dns.RcodeRefused {
		t.Errorf("AXFR example.edu.: %v, want REFUSED", m)
	}
	// Names peerload does not make up are the chain's.
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := p.ServeDNS(context.Background(), rec, test.Case{Qname: "www.example.edu.", Qtype: dns.TypeA}.Msg()); err == nil || rec.Msg != nil {
		t.Errorf("www.example.edu. answered by peerload: %v %v", err, rec.Msg)
	}

	// With the zone served by file, its apex and name servers are file's.
	served := newTestPeerLoad(testConfig(), clusterSnapshot())
	served.Next = fileZone(t, "example.edu.", exampleZone)
	if !served.refreshZones() {
		t.Fatal("file serves the zone, but refreshZones found no SOA")
	}
	for _, q := range []string{"example.edu.", "ns.dns.example.edu."} {
		m, _ := caseResult(t, served, test.Case{Qname: q, Qtype: dns.TypeSOA}, false)
		if m != nil && len(m.Answer) > 0 && strings.HasPrefix(m.Answer[0].(*dns.SOA).Ns, "ns.dns.") {
			t.Errorf("%s SOA with file behind: peerload's made-up %v", q, m.Answer[0])
		}
	}
}
