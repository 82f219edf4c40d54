package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// digReply is the header of a reply as dig prints it.
type digReply struct {
	Opcode, Status string
	Flags          []string
	Answer         int
	Size           int // MSG SIZE rcvd
	Out            string
}

var (
	digHeader = regexp.MustCompile(`opcode: (\w+), status: (\w+)`)
	digFlags  = regexp.MustCompile(`;; flags:([a-z ]*); QUERY: \d+, ANSWER: (\d+)`)
	digSize   = regexp.MustCompile(`MSG SIZE +rcvd: (\d+)`)
)

// digFull runs dig (without TCP fallback, cookies or retries) and parses
// the reply's header.
func digFull(t *testing.T, port int, args ...string) digReply {
	t.Helper()
	out := runDig(t, "127.0.0.1", port, append([]string{"+ignore", "+nocookie"}, args...)...)
	r := digReply{Out: out}
	if m := digHeader.FindStringSubmatch(out); m != nil {
		r.Opcode, r.Status = m[1], m[2]
	}
	if m := digFlags.FindStringSubmatch(out); m != nil {
		r.Flags = strings.Fields(m[1])
		r.Answer, _ = strconv.Atoi(m[2])
	}
	if m := digSize.FindStringSubmatch(out); m != nil {
		r.Size, _ = strconv.Atoi(m[1])
	}
	if r.Status == "" {
		t.Fatalf("dig %s: no reply header in\n%s", strings.Join(args, " "), out)
	}
	return r
}

func (r digReply) has(flag string) bool { return slices.Contains(r.Flags, flag) }

// kdigTransfer runs a zone transfer with kdig (which names the server's
// error plainly) and returns its output.
func kdigTransfer(t *testing.T, port int, qname, qtype string) string {
	t.Helper()
	kdig := requireProgram(t, "kdig")
	res := runCmd(t, nil, kdig, "@127.0.0.1", "-p", strconv.Itoa(port), "+tcp", "+timeout=2", "+retry=0", qname, qtype)
	return res.Stdout + res.Stderr
}

// TestDNSConformance drives bin/coredns with dig and kdig, next to a real
// named holding the same records, through what a DNS engineer checks
// besides the answers themselves: ANY (RFC 8482), NOTIFY and zone
// transfers at the names peerload owns, and where replies are truncated.
func TestDNSConformance(t *testing.T) {
	requireProgram(t, "dig")
	requireProgram(t, "kdig")
	agents := startCluster(t, "lab", 5)
	ports := freePorts(t, 3)
	c := &corednsProc{DNSPort: ports[0], ReadyAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	member := fmt.Sprintf("127.0.0.1:%d", ports[2])
	zone, err := filepath.Abs(filepath.Join("..", "zones", "db.example.edu"))
	if err != nil {
		t.Fatal(err)
	}
	runCoreDNS(t, c, fmt.Sprintf(`example.edu:%[1]d {
    bind 127.0.0.1
    ready %[2]s
    peerload cslab.example.edu {
        top 5
        bind %[3]s
        join %[4]s
        profile local
    }
    file %[5]s
}
lab.example.org:%[1]d {
    bind 127.0.0.1
    peerload lab.example.org {
        bind %[3]s
    }
}
`, c.DNSPort, c.ReadyAddr, member, agents[0].Gossip(), zone))
	port := c.DNSPort
	fiveTXT(t, port)

	t.Run("ANY", func(t *testing.T) {
		// RFC 8482: over UDP one RRset (the addresses), over TCP all.
		udp := digFull(t, port, "+notcp", "cslab.example.edu", "ANY")
		if udp.Status != "NOERROR" || udp.Answer == 0 || strings.Contains(udp.Out, "\tTXT\t") || strings.Contains(udp.Out, "\tAAAA\t") {
			t.Errorf("ANY over UDP: want NOERROR with the A records alone, got\n%s", udp.Out)
		}
		waitFor(t, 15*time.Second, func() (bool, string) {
			tcp := digFull(t, port, "+tcp", "cslab.example.edu", "ANY")
			return tcp.Status == "NOERROR" && tcp.Answer == 10 && strings.Count(tcp.Out, "\tTXT\t") == 5,
				"ANY over TCP: want NOERROR with 5 A and 5 TXT records, got\n" + tcp.Out
		})
		if node := digFull(t, port, "+notcp", "lab3.cslab.example.edu", "ANY"); node.Answer != 1 || !strings.Contains(node.Out, "127.0.1.3") {
			t.Errorf("ANY at a machine: want its A record, got\n%s", node.Out)
		}
	})

	// named holds the same records where it can: the TXT answer CoreDNS
	// gives now, in a zone example.edu it is the primary of.
	named := startNamed(t, "example.edu", "cslab.example.edu")
	txt := fiveTXT(t, port)
	loadTXT(t, named, txt)

	t.Run("NOTIFY", func(t *testing.T) {
		// The name is no zone: NOTAUTH, as BIND answers it.
		for _, srv := range []int{port, named.Port} {
			r := digFull(t, srv, "+opcode=notify", "+norecurse", "cslab.example.edu", "SOA")
			if r.Opcode != "NOTIFY" || r.Status != "NOTAUTH" || r.has("aa") || r.Answer != 0 {
				t.Errorf("NOTIFY cslab.example.edu to port %d: want NOTAUTH, got\n%s", srv, r.Out)
			}
		}
		// The apex of a zone peerload makes up acknowledges it, as BIND
		// does for a zone it is the primary of.
		for _, q := range []struct {
			port int
			zone string
		}{{port, "lab.example.org"}, {named.Port, "example.edu"}} {
			r := digFull(t, q.port, "+opcode=notify", "+norecurse", q.zone, "SOA")
			if r.Opcode != "NOTIFY" || r.Status != "NOERROR" || !r.has("aa") || r.Answer != 0 {
				t.Errorf("NOTIFY %s to port %d: want an authoritative NOERROR, got\n%s", q.zone, q.port, r.Out)
			}
		}
	})

	t.Run("AXFR and IXFR", func(t *testing.T) {
		// REFUSED, as file refuses transfers of its own names (www) without
		// a transfer plugin; BIND says NOTAUTH for a name that is no zone.
		for _, q := range []struct{ qname, qtype string }{
			{"cslab.example.edu", "AXFR"}, {"cslab.example.edu", "IXFR=1"}, {"lab3.cslab.example.edu", "AXFR"},
			{"lab.example.org", "AXFR"}, {"lab.example.org", "IXFR=1"}, {"www.example.edu", "AXFR"},
		} {
			if out := kdigTransfer(t, port, q.qname, q.qtype); !strings.Contains(out, "'REFUSED'") {
				t.Errorf("%s %s: want REFUSED, got\n%s", q.qtype, q.qname, out)
			}
		}
		if out := kdigTransfer(t, named.Port, "cslab.example.edu", "AXFR"); !strings.Contains(out, "'NOTAUTH'") {
			t.Errorf("BIND AXFR cslab.example.edu: want NOTAUTH, got\n%s", out)
		}
	})

	t.Run("truncation point matches BIND", func(t *testing.T) {
		// The five TXT records fit 512 bytes neither compressed nor not,
		// and need compression to fit the buffer that holds them
		// compressed: TC must come at the same buffer size as from BIND,
		// which always compresses. The comparison holds while CoreDNS
		// answers the records named holds (as long: words such as age=
		// change, and a machine on a busy host may drop out for a
		// moment), so an attempt in which they changed is repeated with
		// named given the new ones.
		for attempt := 1; ; attempt++ {
			if now := fiveTXT(t, port); totalLen(now) != totalLen(txt) {
				txt = now
				loadTXT(t, named, txt)
			}
			mismatch := compareTruncation(t, port, named.Port)
			if mismatch == "" {
				return
			}
			if now := fiveTXT(t, port); totalLen(now) == totalLen(txt) || attempt == 5 {
				t.Fatalf("with the same records as named (attempt %d):\n%s", attempt, mismatch)
			}
		}
	})
}

// fiveTXT waits until CoreDNS's TXT answer (over TCP) holds all five
// machines and returns it.
func fiveTXT(t *testing.T, port int) []string {
	t.Helper()
	var txt []string
	waitFor(t, 15*time.Second, func() (bool, string) {
		txt = digShort(t, "127.0.0.1", port, "+tcp", "cslab.example.edu", "TXT")
		return len(txt) == 5, fmt.Sprintf("TXT = %q, want 5 machines", txt)
	})
	return txt
}

// compareTruncation queries CoreDNS and named for the name's TXT records at
// buffer sizes around the size of the compressed answer and describes
// every difference from what the test expects ("" when none).
func compareTruncation(t *testing.T, port, namedPort int) string {
	t.Helper()
	bind := digFull(t, namedPort, "+tcp", "+bufsize=4096", "cslab.example.edu", "TXT")
	plain := digFull(t, port, "+tcp", "+bufsize=4096", "cslab.example.edu", "TXT") // fits: not compressed
	full := bind.Size                                                              // compressed, with the OPT record
	if bind.Answer != 5 || plain.Answer != 5 || full <= 512 || plain.Size <= full {
		return fmt.Sprintf("TXT: BIND %d records in %d bytes, CoreDNS %d uncompressed in %d bytes; the test needs 5 records "+
			"above 512 bytes that only fit compressed:\n%s", bind.Answer, full, plain.Answer, plain.Size, bind.Out)
	}
	mismatch := ""
	for _, q := range []struct {
		bufsize int // 0: no EDNS
		tc      bool
	}{{0, true}, {512, true}, {full - 1, true}, {full, false}, {1232, false}} {
		args := []string{"+noedns"}
		if q.bufsize > 0 {
			args = []string{"+bufsize=" + strconv.Itoa(q.bufsize)}
		}
		args = append(args, "cslab.example.edu", "TXT")
		cr, br := digFull(t, port, args...), digFull(t, namedPort, args...)
		if cr.has("tc") != q.tc || br.has("tc") != q.tc {
			mismatch += fmt.Sprintf("bufsize %d: TC from CoreDNS %v, from BIND %v, want %v\n", q.bufsize, cr.has("tc"), br.has("tc"), q.tc)
		}
		if !q.tc && (cr.Answer != 5 || cr.Size > q.bufsize) {
			mismatch += fmt.Sprintf("bufsize %d: CoreDNS sent %d records in %d bytes, want all 5 within the buffer\n", q.bufsize, cr.Answer, cr.Size)
		}
		if q.bufsize == 0 && cr.Answer != br.Answer {
			mismatch += fmt.Sprintf("without EDNS CoreDNS keeps %d records before TC, BIND %d\n", cr.Answer, br.Answer)
		}
	}
	return mismatch
}

// totalLen is the summed length of lines.
func totalLen(lines []string) int {
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	return n
}

// loadTXT makes named hold txt (dig +short lines) as the TXT records of
// its name: the zone file is rewritten with a new serial and named
// restarted, then it is asked until it serves them.
func loadTXT(t *testing.T, n *namedServer, txt []string) {
	t.Helper()
	n.Stop()
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 300\n@ IN SOA ns.%[1]s. hostmaster.%[1]s. %[2]d 3600 600 86400 30\n@ IN NS ns.%[1]s.\nns IN A 127.0.0.1\n",
		n.Zone, time.Now().Unix())
	for _, l := range txt {
		fmt.Fprintf(&b, "%s. 30 IN TXT %s\n", n.Name, l)
	}
	zf := filepath.Join(n.Dir, "db."+n.Zone)
	if err := os.WriteFile(zf, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(zf + ".jnl"); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n.Start()
	waitFor(t, 10*time.Second, func() (bool, string) {
		got := digShort(t, "127.0.0.1", n.Port, "+tcp", n.Name, "TXT")
		return len(got) == len(txt), fmt.Sprintf("named TXT = %q, want %d records", got, len(txt))
	})
}
