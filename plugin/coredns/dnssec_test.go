package peerload

import (
	"crypto"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/dnssec"
	"github.com/coredns/coredns/plugin/pkg/cache"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// testKey is a fresh ECDSA P-256 key for zone with the SEP flag (a CSK,
// as `dnssec-keygen -f KSK -a ECDSAP256SHA256` makes).
func testKey(t testing.TB, zone string) (*dns.DNSKEY, crypto.Signer) {
	t.Helper()
	k := &dns.DNSKEY{
		Hdr:   dns.RR_Header{Name: zone, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 3600},
		Flags: dns.ZONE | dns.SEP, Protocol: 3, Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := k.Generate(256)
	if err != nil {
		t.Fatal(err)
	}
	return k, priv.(crypto.Signer)
}

// signRRset signs rrs with key, valid from an hour ago for a day.
func signRRset(t testing.TB, key *dns.DNSKEY, signer crypto.Signer, rrs []dns.RR) *dns.RRSIG {
	t.Helper()
	now := time.Now()
	sig := &dns.RRSIG{
		Hdr:       dns.RR_Header{Name: rrs[0].Header().Name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: rrs[0].Header().Ttl},
		Algorithm: key.Algorithm, KeyTag: key.KeyTag(), SignerName: key.Hdr.Name, OrigTtl: rrs[0].Header().Ttl,
		Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(24 * time.Hour).Unix()),
	}
	if err := sig.Sign(signer, rrs); err != nil {
		t.Fatal(err)
	}
	return sig
}

// signedChain is the chain a signed zone's server block builds: CoreDNS's
// dnssec plugin (with a key written and read back as `key file` does) in
// front of p, file serving the unsigned example.edu behind it.
func signedChain(t testing.TB, p *PeerLoad) (dnssec.Dnssec, *dns.DNSKEY) {
	t.Helper()
	key, signer := testKey(t, "example.edu.")
	base := filepath.Join(t.TempDir(), "Kexample.edu.+013+00000")
	priv := key.PrivateKeyString(signer)
	if err := os.WriteFile(base+".key", []byte(key.String()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".private", []byte(priv), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := dnssec.ParseKeyFile(base+".key", base+".private")
	if err != nil {
		t.Fatal(err)
	}
	p.Next = fileZone(t, "example.edu.", `$ORIGIN example.edu.
@	3600	IN	SOA	ns.example.edu. hostmaster.example.edu. 2026113001 7200 1800 86400 30
@	3600	IN	NS	ns.example.edu.
ns	3600	IN	A	192.0.2.53
www	3600	IN	A	192.0.2.80
`)
	p.refreshZones()
	return dnssec.New([]string{"example.edu."}, []*dnssec.DNSKEY{k}, false, p, cache.New[[]dns.RR](10000)), key
}

// verifySigned checks that every RRset in section is covered by an RRSIG
// of key that verifies now, and returns the RRsets' types.
func verifySigned(t *testing.T, key *dns.DNSKEY, section []dns.RR) []uint16 {
	t.Helper()
	sets := map[uint16][]dns.RR{}
	sigs := map[uint16]*dns.RRSIG{}
	for _, rr := range section {
		if s, ok := rr.(*dns.RRSIG); ok {
			sigs[s.TypeCovered] = s
			continue
		}
		sets[rr.Header().Rrtype] = append(sets[rr.Header().Rrtype], rr)
	}
	var types []uint16
	for typ, rrs := range sets {
		types = append(types, typ)
		sig := sigs[typ]
		if sig == nil {
			t.Errorf("%s RRset %v has no RRSIG", dns.TypeToString[typ], rrs)
			continue
		}
		if err := sig.Verify(key, rrs); err != nil {
			t.Errorf("RRSIG over %s %v does not verify: %v", dns.TypeToString[typ], rrs, err)
		}
		if !sig.ValidityPeriod(time.Now()) {
			t.Errorf("RRSIG over %s is not valid now: %s", dns.TypeToString[typ], sig)
		}
	}
	slices.Sort(types)
	return types
}

// TestDNSSECSignsPeerLoad: with CoreDNS's dnssec plugin in front (its
// place in cmd/coredns), peerload's shuffled A, AAAA and TXT RRsets carry
// RRSIGs that verify against the zone's key, and its NODATA and NXDOMAIN
// become signed NSEC black lies: NOERROR, the SOA and an NSEC at the
// query name whose bitmap denies the type asked.
func TestDNSSECSignsPeerLoad(t *testing.T) {
	p := newTestPeerLoad(testConfig(), clusterSnapshot())
	chain, key := signedChain(t, p)

	positive := []struct {
		qname string
		qtype uint16
		n     int
	}{
		{"cslab.example.edu.", dns.TypeA, 3},
		{"cslab.example.edu.", dns.TypeAAAA, 2},
		{"cslab.example.edu.", dns.TypeTXT, 4},
		{"lab02.cslab.example.edu.", dns.TypeA, 1},
		{"www.example.edu.", dns.TypeA, 1}, // file's, signed alike
	}
	for _, tc := range positive {
		// Shuffled orders of one RRset all verify.
		for range 20 {
			m, _ := caseResult(t, chain, test.Case{Qname: tc.qname, Qtype: tc.qtype, Do: true}, false)
			if m.Rcode != dns.RcodeSuccess || len(m.Answer) != tc.n+1 {
				t.Fatalf("%s %s: %s with %d answers, want %d records and an RRSIG", tc.qname, dns.TypeToString[tc.qtype],
					dns.RcodeToString[m.Rcode], len(m.Answer), tc.n)
			}
			verifySigned(t, key, m.Answer)
		}
	}

	negative := []struct {
		qname string
		qtype uint16
	}{
		{"cslab.example.edu.", dns.TypeMX},          // NODATA at the name
		{"lab02.cslab.example.edu.", dns.TypeAAAA},  // NODATA at a node
		{"nope.cslab.example.edu.", dns.TypeA},      // NXDOMAIN below the name
		{"a.lab01.cslab.example.edu.", dns.TypeTXT}, // NXDOMAIN below a node
		{"nothere.example.edu.", dns.TypeA},         // file's NXDOMAIN, alike
		{"CsLab.Example.Edu.", 65280},               // a private type, mixed case
	}
	for _, tc := range negative {
		m, _ := caseResult(t, chain, test.Case{Qname: tc.qname, Qtype: tc.qtype, Do: true}, false)
		if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
			t.Errorf("%s %s: %s with %d answers, want a NOERROR black lie", tc.qname, dns.TypeToString[tc.qtype],
				dns.RcodeToString[m.Rcode], len(m.Answer))
			continue
		}
		if types := verifySigned(t, key, m.Ns); !slices.Equal(types, []uint16{dns.TypeSOA, dns.TypeNSEC}) {
			t.Errorf("%s %s: authority holds %v, want SOA and NSEC", tc.qname, dns.TypeToString[tc.qtype], types)
		}
		for _, rr := range m.Ns {
			if nsec, ok := rr.(*dns.NSEC); ok {
				if !dns.IsSubDomain(nsec.Hdr.Name, tc.qname) || !dns.IsSubDomain(tc.qname, nsec.Hdr.Name) {
					t.Errorf("%s: NSEC owner %s", tc.qname, nsec.Hdr.Name)
				}
				if slices.Contains(nsec.TypeBitMap, tc.qtype) {
					t.Errorf("%s %s: NSEC bitmap %v holds the type asked", tc.qname, dns.TypeToString[tc.qtype], nsec.TypeBitMap)
				}
			}
		}
	}

	// Without DO nothing is signed.
	m, _ := caseResult(t, chain, test.Case{Qname: "cslab.example.edu.", Qtype: dns.TypeA}, false)
	if len(m.Answer) != 3 {
		t.Errorf("without DO: %v, want the 3 A records alone", m.Answer)
	}
	// DNSKEY at the apex is the dnssec plugin's.
	m, _ = caseResult(t, chain, test.Case{Qname: "example.edu.", Qtype: dns.TypeDNSKEY, Do: true}, false)
	if types := verifySigned(t, key, m.Answer); !slices.Equal(types, []uint16{dns.TypeDNSKEY}) {
		t.Errorf("DNSKEY answer %v", m.Answer)
	}
}
