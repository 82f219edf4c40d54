package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/peerload/peerload/agent/agenttest"
)

// What users' machines resolve through: BIND named as a caching resolver
// (AddResolver), BIND as the primary of a static zone (AddStaticZone), and
// clients whose C library asks one resolver (AddClient, Host.Resolve).

// BIND is a host running named with a configuration of the lab's.
type BIND struct {
	*Host
	Process *Process
	// Conf is named.conf.
	Conf string
	// ready is the question named must answer (NOERROR, with an answer)
	// before Start returns.
	readyName string
}

// namedOptions are the options every lab named shares: its files in
// dir, IPv4 on listen only, no DNSSEC validation, and answers in random
// order (BIND 9.18's built-in default, said explicitly: a distribution's
// named.conf.options or an older BIND may say cyclic or fixed).
func namedOptions(dir string, listen netip.Addr, recursion bool) string {
	rec := "recursion no;"
	if recursion {
		rec = "recursion yes;\n\tallow-recursion { any; };"
	}
	return fmt.Sprintf(`options {
	directory "%[1]s";
	listen-on port 53 { %[2]s; };
	listen-on-v6 { none; };
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	allow-query { any; };
	%[3]s
	notify no;
	dnssec-validation no;
	rrset-order { order random; };
};
controls { };
`, dir, listen, rec)
}

// AddResolver adds a host called name running named as a caching
// recursive resolver that forwards each zone of forward to its server
// (`type forward; forward only;`), caches answers for their TTL and hands
// each RRset out in a random order. It waits until named answers the SOA
// of every forwarded zone (through the zone's server), so both are up.
func (l *Lab) AddResolver(name string, forward map[string]netip.Addr) *BIND {
	l.t.Helper()
	h := l.AddHost(name)
	var b strings.Builder
	b.WriteString(namedOptions(h.Dir, h.Addr, true))
	zones := slices.Sorted(func(yield func(string) bool) {
		for z := range forward {
			if !yield(z) {
				return
			}
		}
	})
	for _, z := range zones {
		fmt.Fprintf(&b, "zone %q {\n\ttype forward;\n\tforward only;\n\tforwarders { %s; };\n};\n", z, forward[z])
	}
	n := l.startBIND(h, b.String(), "")
	for _, z := range zones {
		n.waitAnswer(z, dns.TypeSOA)
	}
	return n
}

// AddStaticZone adds a host called name running named as the primary of
// zone, in which rrname holds the A records addrs (TTL 30, as ZoneFile
// writes them): classic round-robin DNS. It waits until named answers.
func (l *Lab) AddStaticZone(name, zone, rrname string, addrs ...string) *BIND {
	l.t.Helper()
	h := l.AddHost(name)
	zf := filepath.Join(h.Dir, "db."+zone)
	if err := os.WriteFile(zf, []byte(ZoneFile(zone, rrname, 1, h.Addr.String(), addrs...)), 0o644); err != nil {
		l.t.Fatal(err)
	}
	conf := namedOptions(h.Dir, h.Addr, false) + fmt.Sprintf("zone %q {\n\ttype primary;\n\tfile %q;\n};\n", zone, zf)
	n := l.startBIND(h, conf, zone)
	n.waitAnswer(rrname, dns.TypeA)
	return n
}

// startBIND writes named.conf and starts named on h.
func (l *Lab) startBIND(h *Host, conf, zone string) *BIND {
	l.t.Helper()
	bin := RequireProgram(l.t, "named")
	path := filepath.Join(h.Dir, "named.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	n := &BIND{Host: h, Conf: conf}
	n.Process = h.NewProcess("named", bin, "-g", "-4", "-n", "1", "-c", path)
	n.Process.Start()
	if zone != "" {
		n.waitAnswer(zone, dns.TypeSOA)
	}
	return n
}

// waitAnswer waits (StartupTimeout) until named answers qname/qtype with
// NOERROR and at least one record, asked from its own host.
func (n *BIND) waitAnswer(qname string, qtype uint16) {
	t := n.lab.t
	t.Helper()
	agenttest.WaitFor(t, StartupTimeout, fmt.Sprintf("named on %s to answer %s %s", n.Name, qname, dns.TypeToString[qtype]), func() (bool, string) {
		if !n.Process.Running() {
			t.Fatalf("lab: named on %s exited at start:\n%s\nnamed.conf:\n%s", n.Name, n.Process.LogTail(30), n.Conf)
		}
		m, err := n.Lookup(n.Server(), qname, qtype)
		if err != nil {
			return false, err.Error()
		}
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0, fmt.Sprintf("answer %s, %d records", dns.RcodeToString[m.Rcode], len(m.Answer))
	})
}

// Server is named's DNS address.
func (n *BIND) Server() netip.AddrPort { return netip.AddrPortFrom(n.Addr, 53) }

// netnsEtc is where `ip netns exec NS` finds files it bind-mounts over
// /etc for the command it runs: /etc/netns/NS/resolv.conf becomes the
// command's /etc/resolv.conf.
const netnsEtc = "/etc/netns"

// AddClient adds a host called name whose C library resolves names
// through resolver only, as a user's machine does: commands it runs
// (Host.Run, Host.Resolve) see a resolv.conf naming resolver and an
// nsswitch.conf whose hosts come from files and DNS, so no nscd,
// systemd-resolved or mDNS on this machine answers instead. The files go
// with the lab.
func (l *Lab) AddClient(name string, resolver netip.Addr) *Host {
	l.t.Helper()
	h := l.AddHost(name)
	dir := filepath.Join(netnsEtc, h.NS)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	files := map[string]string{
		"resolv.conf":   fmt.Sprintf("# peerload lab %s\nnameserver %s\n", l.ID, resolver),
		"nsswitch.conf": "hosts: files dns\n",
		"hosts":         "127.0.0.1 localhost\n",
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			l.t.Fatalf("lab: %v", err)
		}
	}
	return h
}

// Resolve looks name up as ssh does, through the C library
// (getaddrinfo, here `getent ahostsv4`), inside the host, and returns the
// addresses in the order the library gave them: a client connects to the
// first. It fails when the lookup does (getent exits 2 for a name that
// does not resolve) or takes longer than timeout.
func (h *Host) Resolve(ctx context.Context, getent, name string, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := h.Run(ctx, getent, "ahostsv4", name)
	if res.Code != 0 || res.Err != nil {
		return nil, fmt.Errorf("getent ahostsv4 %s on %s: %s", name, h.Name, res)
	}
	// Each address comes once per socket type (STREAM, DGRAM, RAW).
	var out []string
	for _, line := range res.Lines() {
		f := strings.Fields(line)
		if len(f) > 0 && !slices.Contains(out, f[0]) {
			out = append(out, f[0])
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("getent ahostsv4 %s on %s: no address in %q", name, h.Name, res.Stdout)
	}
	return out, nil
}
