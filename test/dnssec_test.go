package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zoneKey is a DNSSEC key the real dnssec-keygen made for a zone: its
// files' base path (for the dnssec plugin's `key file`) and its DNSKEY
// (for a trust anchor).
type zoneKey struct {
	Base   string
	DNSKEY *dns.DNSKEY
}

// dnssecKeygen runs dnssec-keygen in dir with args (the zone last) and
// reads the key it wrote.
func dnssecKeygen(t *testing.T, dir string, args ...string) zoneKey {
	t.Helper()
	keygen := requireProgram(t, "dnssec-keygen")
	res := runCmd(t, nil, keygen, append([]string{"-q", "-K", dir}, args...)...)
	if res.Code != 0 {
		t.Fatalf("dnssec-keygen %s: %s", strings.Join(args, " "), res)
	}
	base := filepath.Join(dir, strings.TrimSpace(res.Stdout))
	b, err := os.ReadFile(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%s.key: %v", base, err)
		}
		if k, ok := rr.(*dns.DNSKEY); ok {
			return zoneKey{Base: base, DNSKEY: k}
		}
	}
	t.Fatalf("%s.key holds no DNSKEY:\n%s", base, b)
	return zoneKey{}
}

// writeTrustAnchors writes a delv trust-anchors file trusting keys.
func writeTrustAnchors(t *testing.T, dir string, keys ...zoneKey) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("trust-anchors {\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "\t%s static-key %d %d %d \"%s\";\n", k.DNSKEY.Hdr.Name, k.DNSKEY.Flags, k.DNSKEY.Protocol,
			k.DNSKEY.Algorithm, k.DNSKEY.PublicKey)
	}
	b.WriteString("};\n")
	path := filepath.Join(dir, "trust-anchors.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// delvResult is what delv concluded about one query.
type delvResult struct {
	Validated bool     // "; fully validated"
	Negative  bool     // "; negative response, fully validated"
	Records   []string // the answer's records but RRSIGs, "TYPE DATA", sorted
	Out       string
}

// runDelv asks delv at 127.0.0.1:port for qname/qtype, validating from the
// trust anchor of zone in anchors (no other trust: +root=zone).
func runDelv(t *testing.T, port int, anchors, zone, qname, qtype string) delvResult {
	t.Helper()
	delv := requireProgram(t, "delv")
	res := runCmd(t, nil, delv, "@127.0.0.1", "-p", strconv.Itoa(port), "-a", anchors, "+root="+zone, qname, qtype)
	r := delvResult{Out: res.Stdout + res.Stderr}
	for _, line := range strings.Split(res.Stdout, "\n") {
		switch {
		case line == "; fully validated":
			r.Validated = true
		case line == "; negative response, fully validated":
			r.Negative = true
		case line == "" || strings.HasPrefix(line, ";"):
		default:
			f := strings.Fields(line)
			if len(f) >= 5 && f[3] != "RRSIG" {
				r.Records = append(r.Records, f[3]+" "+strings.Join(f[4:], " "))
			}
		}
	}
	slices.Sort(r.Records)
	return r
}

// wantValidated fails unless delv validated a positive answer of qname
// whose records (sorted "TYPE DATA") satisfy ok.
func wantValidated(t *testing.T, port int, anchors, zone, qname, qtype string, ok func([]string) bool) []string {
	t.Helper()
	var r delvResult
	waitFor(t, 15*time.Second, func() (bool, string) {
		r = runDelv(t, port, anchors, zone, qname, qtype)
		return r.Validated && ok(r.Records), fmt.Sprintf("delv %s %s: validated %v, records %q:\n%s", qname, qtype, r.Validated, r.Records, r.Out)
	})
	return r.Records
}

// wantNegative fails unless delv validated a negative answer (NODATA, or
// NXDOMAIN: CoreDNS's NSEC black lies make both a NODATA proof).
func wantNegative(t *testing.T, port int, anchors, zone, qname, qtype string) {
	t.Helper()
	if r := runDelv(t, port, anchors, zone, qname, qtype); !r.Negative || len(r.Records) != 0 {
		t.Errorf("delv %s %s: want a validated negative answer, got\n%s", qname, qtype, r.Out)
	}
}

// recordsOf is a check that every record is of type typ with data in
// want, and there are n of them.
func recordsOf(typ string, n int, want ...string) func([]string) bool {
	return func(recs []string) bool {
		if len(recs) != n {
			return false
		}
		for _, r := range recs {
			data, ok := strings.CutPrefix(r, typ+" ")
			if !ok || (len(want) > 0 && !slices.Contains(want, data)) {
				return false
			}
		}
		return true
	}
}

// dualStack advertises 127.0.1.N and 2001:db8::N (documentation
// addresses: only handed out in answers, never contacted).
func dualStack(i int) string { return fmt.Sprintf("127.0.1.%d,2001:db8::%d", i+1, i+1) }

// TestDNSSEC validates the virtual name end to end with delv against
// trust anchors made here by dnssec-keygen, in both modes:
//
//   - CoreDNS: the dnssec plugin (in its cmd/coredns place, before
//     peerload) signs peerload's A, AAAA and TXT answers and turns its
//     NODATA and NXDOMAIN into signed NSEC black lies, in a zone file
//     serves unsigned, in a zone whose apex the name is with SOA and NS
//     from a zone file, and in one where peerload makes SOA and NS up;
//   - BIND: named signs the zone with dnssec-policy and inline signing,
//     and signs every RFC 2136 update `peerload nsupdate` sends.
func TestDNSSEC(t *testing.T) {
	requireProgram(t, "delv")
	requireProgram(t, "dnssec-keygen")
	agents := startClusterAdvertising(t, "lab", 3, dualStack)
	addrs4 := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}
	addrs6 := []string{"2001:db8::1", "2001:db8::2", "2001:db8::3"}

	t.Run("CoreDNS", func(t *testing.T) {
		dir := t.TempDir()
		eduKey := dnssecKeygen(t, dir, "-a", "ECDSAP256SHA256", "-f", "KSK", "example.edu")
		labKey := dnssecKeygen(t, dir, "-a", "ECDSAP256SHA256", "-f", "KSK", "lab.example.org")
		gpuKey := dnssecKeygen(t, dir, "-a", "ECDSAP256SHA256", "-f", "KSK", "gpu.example.org")
		anchors := writeTrustAnchors(t, dir, eduKey, labKey, gpuKey)
		zone, err := filepath.Abs(filepath.Join("..", "zones", "db.example.edu"))
		if err != nil {
			t.Fatal(err)
		}
		gpuZone := filepath.Join(dir, "db.gpu.example.org")
		if err := os.WriteFile(gpuZone, []byte(`$ORIGIN gpu.example.org.
@	300	IN	SOA	ns1.example.org. hostmaster.example.org. 2026113001 7200 1800 86400 60
@	300	IN	NS	ns1.example.org.
@	300	IN	MX	10 mail.example.org.
`), 0o644); err != nil {
			t.Fatal(err)
		}
		ports := freePorts(t, 3)
		c := &corednsProc{DNSPort: ports[0], ReadyAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
		member := fmt.Sprintf("127.0.0.1:%d", ports[2])
		// Three zones on one port, one cluster member (same bind): the
		// name in a zone file serves, the name as the apex of a zone a
		// file serves (SOA, NS, MX from there), and the name as the apex
		// of a zone nothing else serves.
		runCoreDNS(t, c, fmt.Sprintf(`example.edu:%[1]d {
    bind 127.0.0.1
    ready %[2]s
    dnssec {
        key file %[3]s
    }
    peerload cslab.example.edu {
        top 2
        bind %[4]s
        join %[5]s
        profile local
    }
    file %[6]s
}
gpu.example.org:%[1]d {
    bind 127.0.0.1
    dnssec {
        key file %[7]s
    }
    peerload gpu.example.org {
        top 2
        bind %[4]s
    }
    file %[8]s
}
lab.example.org:%[1]d {
    bind 127.0.0.1
    dnssec {
        key file %[9]s
    }
    peerload lab.example.org {
        top 2
        bind %[4]s
    }
}
`, c.DNSPort, c.ReadyAddr, eduKey.Base, member, agents[0].Gossip(), zone, gpuKey.Base, gpuZone, labKey.Base))
		port := c.DNSPort

		for _, name := range []struct{ qname, zone string }{
			{"cslab.example.edu", "example.edu"},
			{"gpu.example.org", "gpu.example.org"},
			{"lab.example.org", "lab.example.org"},
		} {
			t.Run(name.qname, func(t *testing.T) {
				q, z := name.qname, name.zone
				wantValidated(t, port, anchors, z, q, "A", recordsOf("A", 2, addrs4...))
				wantValidated(t, port, anchors, z, q, "AAAA", recordsOf("AAAA", 2, addrs6...))
				txt := wantValidated(t, port, anchors, z, q, "TXT", recordsOf("TXT", 3))
				for _, rec := range txt {
					attrs, err := parseTXTAttrs(strings.TrimPrefix(rec, "TXT "))
					if err != nil || !strings.HasPrefix(attrs["node"], "lab") || attrs["rank"] == "" {
						t.Errorf("TXT %s: %v %v", rec, attrs, err)
					}
				}
				wantValidated(t, port, anchors, z, "lab2."+q, "A", recordsOf("A", 1, "127.0.1.2"))
				wantNegative(t, port, anchors, z, q, "SRV")            // NODATA at the name
				wantNegative(t, port, anchors, z, "lab2."+q, "MX")     // NODATA at a machine
				wantNegative(t, port, anchors, z, "nope."+q, "A")      // NXDOMAIN below the name
				wantNegative(t, port, anchors, z, "a.lab2."+q, "AAAA") // NXDOMAIN below a machine
			})
		}
		t.Run("zone file data", func(t *testing.T) {
			wantValidated(t, port, anchors, "example.edu", "www.example.edu", "A", recordsOf("A", 1, "192.0.2.80"))
			wantNegative(t, port, anchors, "example.edu", "nothere.example.edu", "A")
		})
		t.Run("apex from the zone file", func(t *testing.T) {
			z := "gpu.example.org"
			wantValidated(t, port, anchors, z, z, "SOA", recordsOf("SOA", 1, "ns1.example.org. hostmaster.example.org. 2026113001 7200 1800 86400 60"))
			wantValidated(t, port, anchors, z, z, "NS", recordsOf("NS", 1, "ns1.example.org."))
			wantValidated(t, port, anchors, z, z, "MX", recordsOf("MX", 1, "10 mail.example.org."))
		})
		t.Run("apex made up", func(t *testing.T) {
			z := "lab.example.org"
			wantValidated(t, port, anchors, z, z, "SOA", recordsOf("SOA", 1, "ns.dns.lab.example.org. hostmaster.lab.example.org. 1 7200 1800 86400 5"))
			wantValidated(t, port, anchors, z, z, "NS", recordsOf("NS", 1, "ns.dns.lab.example.org."))
			// The name server the SOA and NS name exists, at the address
			// the server block is bound to.
			wantValidated(t, port, anchors, z, "ns.dns."+z, "A", recordsOf("A", 1, "127.0.0.1"))
			wantNegative(t, port, anchors, z, "ns.dns."+z, "AAAA")
		})
		t.Run("without DO nothing changes", func(t *testing.T) {
			waitFor(t, 15*time.Second, func() (bool, string) {
				out := runDig(t, "127.0.0.1", port, "+nodnssec", "cslab.example.edu", "A")
				return strings.Count(out, "\tA\t") == 2 && !strings.Contains(out, "RRSIG"), "want 2 unsigned A records:\n" + out
			})
			out := runDig(t, "127.0.0.1", port, "+nodnssec", "nope.cslab.example.edu", "A")
			if !strings.Contains(out, "status: NXDOMAIN") || strings.Contains(out, "NSEC") {
				t.Errorf("without DO: want a plain NXDOMAIN, got\n%s", out)
			}
		})
	})

	t.Run("BIND", func(t *testing.T) {
		named := startSignedNamed(t, "example.edu", "cslab.example.edu")
		anchors := writeTrustAnchors(t, t.TempDir(), named.zoneKey)
		startNsupdate(t, "upd1", named.namedServer, agents[0].Gossip(), "--tsig-key", named.KeyFile, "--top", "2")
		port := named.Port
		q, z := "cslab.example.edu", "example.edu"
		// The A and AAAA records are the updater's, signed by named as
		// they arrive; the TXT record at the name is the zone file's.
		wantValidated(t, port, anchors, z, q, "A", recordsOf("A", 2, addrs4...))
		wantValidated(t, port, anchors, z, q, "AAAA", recordsOf("AAAA", 2, addrs6...))
		wantValidated(t, port, anchors, z, q, "TXT", recordsOf("TXT", 1, `"purpose=peerload virtual name"`))
		wantNegative(t, port, anchors, z, q, "MX")
		wantNegative(t, port, anchors, z, "nope."+q, "A")
		// A change of the best two is a new UPDATE, signed again.
		setLoads(t, agents, 8, 0.1, 0.1)
		wantValidated(t, port, anchors, z, q, "A", recordsOf("A", 2, "127.0.1.2", "127.0.1.3"))
		wantValidated(t, port, anchors, z, q, "AAAA", recordsOf("AAAA", 2, "2001:db8::2", "2001:db8::3"))
		setLoads(t, agents, 0.1, 0.1, 0.1)
	})
}

// signedNamed is a namedServer whose zone named signs itself, with the
// key the test made.
type signedNamed struct {
	*namedServer
	zoneKey zoneKey
}

// startSignedNamed starts named for zone, signed by dnssec-policy with
// inline signing and a CSK that dnssec-keygen makes for that policy here,
// with updates of name's A and AAAA records granted to a tsig-keygen key
// and a TXT record at name; it waits until named serves the zone signed
// with that key.
func startSignedNamed(t *testing.T, zone, name string) *signedNamed {
	t.Helper()
	n := newNamed(t, zone, name, `dnssec-policy "peerload-test" {
	keys { csk key-directory lifetime unlimited algorithm ecdsap256sha256; };
};`, `	key-directory "keys";
	dnssec-policy "peerload-test";
	inline-signing yes;`)
	keys := filepath.Join(n.Dir, "keys") // key-directory "keys" is relative to named's directory
	if err := os.Mkdir(keys, 0o755); err != nil {
		t.Fatal(err)
	}
	zf := fmt.Sprintf("$TTL 300\n@ IN SOA ns.%[1]s. hostmaster.%[1]s. 1 3600 600 86400 30\n@ IN NS ns.%[1]s.\nns IN A 127.0.0.1\n"+
		"%[2]s. 30 IN TXT \"purpose=peerload virtual name\"\n", zone, strings.TrimSuffix(name, "."))
	if err := os.WriteFile(filepath.Join(n.Dir, "db."+zone), []byte(zf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The key for the policy, made before named starts, which uses it
	// rather than making its own: the trust anchor is the test's.
	key := dnssecKeygen(t, keys, "-k", "peerload-test", "-l", filepath.Join(n.Dir, "named.conf"), zone)
	n.Start()
	waitFor(t, 20*time.Second, func() (bool, string) {
		keys := strings.Join(digShort(t, "127.0.0.1", n.Port, zone, "DNSKEY"), "\n")
		soa := runDig(t, "127.0.0.1", n.Port, "+dnssec", zone, "SOA")
		return strings.Contains(strings.ReplaceAll(keys, " ", ""), key.DNSKEY.PublicKey) && strings.Contains(soa, "RRSIG"),
			"named serving the zone signed with the test's key:\n" + keys + "\n" + soa
	})
	return &signedNamed{namedServer: n, zoneKey: key}
}
