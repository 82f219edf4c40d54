package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/peerload/peerload/agent/agenttest"
)

// The DNS names of the lab: CoreDNS and named serve Zone, and peerload
// keeps VName on the least-loaded machines.
const (
	Zone  = "example.edu"
	VName = "cslab.example.edu"
)

// CoreDNS's local endpoints on its host's loopback.
const (
	CoreDNSReady   = "127.0.0.1:8181"
	CoreDNSMetrics = "127.0.0.1:9153"
)

// CoreDNSOptions describe a CoreDNS host. The zero value answers VName in
// Zone with the top 3 at TTL 30 and joins the lab's seeds with the lab's
// keyring, label and allow list.
type CoreDNSOptions struct {
	Top, TTL int
	// Zone and Name override the zone served and the virtual name in it.
	Zone, Name string
	// PluginDefaults leaves top and ttl out of the Corefile, so the
	// block runs with whatever the plugin ships (Top and TTL are ignored).
	PluginDefaults bool
	// Join overrides the seeds (host:port).
	Join []string
	// Keyring, Label and Allow override the lab's ("-": none).
	Keyring, Label string
	Allow          []string
	// Extra lines inside the peerload block, e.g. "fallback all".
	Extra []string
	// Bin is the CoreDNS binary to run (another release's, see
	// BuildRelease); empty runs the lab's.
	Bin string
}

// CoreDNS is a host running bin/coredns with the peerload plugin on port 53.
type CoreDNS struct {
	*Host
	Process  *Process
	Corefile string
}

// AddCoreDNS adds a host called name running CoreDNS for Zone, with
// peerload answering VName in front of a minimal zone file, and waits until
// /ready answers (the member joined and holds reports).
func (l *Lab) AddCoreDNS(name string, opts CoreDNSOptions) *CoreDNS {
	l.t.Helper()
	h := l.AddHost(name)
	if opts.Top == 0 {
		opts.Top = 3
	}
	if opts.TTL == 0 {
		opts.TTL = 30
	}
	if opts.Zone == "" {
		opts.Zone = Zone
	}
	if opts.Name == "" {
		opts.Name = VName
	}
	join := opts.Join
	if join == nil {
		join = l.Seeds()
	}
	zf := filepath.Join(h.Dir, "db."+opts.Zone)
	if err := os.WriteFile(zf, []byte(ZoneFile(opts.Zone, "", 1, h.Addr.String())), 0o644); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s:53 {\n    bind %s 127.0.0.1\n    errors\n    ready %s\n    prometheus %s\n", opts.Zone, h.Addr, CoreDNSReady, CoreDNSMetrics)
	fmt.Fprintf(&b, "    peerload %s {\n        name %s\n        bind %s\n", opts.Name, name, gossipAddr(h))
	if !opts.PluginDefaults {
		fmt.Fprintf(&b, "        top %d\n        ttl %d\n", opts.Top, opts.TTL)
	}
	if len(join) > 0 {
		fmt.Fprintf(&b, "        join %s\n", strings.Join(join, " "))
	}
	flags := l.memberFlags(opts.Keyring, opts.Label, opts.Allow)
	for i := 0; i+1 < len(flags); i += 2 {
		v := flags[i+1]
		if flags[i] == "--allow" {
			v = strings.ReplaceAll(v, ",", " ")
		}
		fmt.Fprintf(&b, "        %s %s\n", strings.TrimPrefix(flags[i], "--"), v)
	}
	for _, e := range opts.Extra {
		fmt.Fprintf(&b, "        %s\n", e)
	}
	fmt.Fprintf(&b, "    }\n    file %s\n}\n", zf)
	c := &CoreDNS{Host: h, Corefile: b.String()}
	cf := filepath.Join(h.Dir, "Corefile")
	if err := os.WriteFile(cf, []byte(c.Corefile), 0o644); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	bin := opts.Bin
	if bin == "" {
		bin = BinPath(l.t, "coredns")
	}
	c.Process = h.NewProcess("coredns", bin, "-conf", cf)
	c.Process.MetricsAddr = CoreDNSMetrics
	c.Start()
	return c
}

// Start starts CoreDNS (again) and waits for /ready (StartupTimeout).
func (c *CoreDNS) Start() {
	t := c.lab.t
	t.Helper()
	c.Process.Start()
	agenttest.WaitFor(t, StartupTimeout, "coredns on "+c.Name+" to be ready", func() (bool, string) {
		if !c.Process.Running() {
			t.Fatalf("lab: coredns on %s exited at start:\n%s\nCorefile:\n%s", c.Name, c.Process.LogTail(30), c.Corefile)
		}
		_, err := c.Get(CoreDNSReady, "/ready")
		return err == nil, fmt.Sprintf("coredns on %s ready: %v", c.Name, err)
	})
}

// Server is CoreDNS's DNS address.
func (c *CoreDNS) Server() netip.AddrPort { return netip.AddrPortFrom(c.Addr, 53) }

// ZoneFile is a zone file for zone with serial: SOA, NS ns.<zone> at
// nsAddr, and name (when not empty) holding the A records addrs at TTL 30.
func ZoneFile(zone, name string, serial int, nsAddr string, addrs ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "$TTL 300\n@ IN SOA ns.%[1]s. hostmaster.%[1]s. %[2]d 3600 600 86400 30\n@ IN NS ns.%[1]s.\nns IN A %[3]s\n", zone, serial, nsAddr)
	for _, a := range addrs {
		fmt.Fprintf(&b, "%s. 30 IN A %s\n", strings.TrimSuffix(name, "."), a)
	}
	return b.String()
}

// NamedConfig is a named.conf for a primary of zone (file dir/db.<zone>)
// listening on listen:port, granting the TSIG key keyName (included from
// dir/update.key) updates of name's A and AAAA records. options are more
// top-level statements and zoneOptions more statements of the zone (e.g.
// dnssec-policy for a signed zone); both may be empty.
func NamedConfig(dir, listen string, port int, zone, keyName, name, options, zoneOptions string) string {
	return fmt.Sprintf(`include "%[1]s/update.key";
options {
	directory "%[1]s";
	listen-on port %[2]d { %[6]s; };
	listen-on-v6 { none; };
	pid-file "%[1]s/named.pid";
	session-keyfile "%[1]s/session.key";
	managed-keys-directory "%[1]s";
	recursion no;
	notify no;
	dnssec-validation no;
};
controls { };
%[7]s
zone "%[3]s" {
	type primary;
	file "%[1]s/db.%[3]s";
	update-policy { grant %[4]s name %[5]s. A AAAA; };
%[8]s
};
`, dir, port, zone, keyName, strings.TrimSuffix(name, "."), listen, options, zoneOptions)
}

// NewTSIGKey writes a key made by the real tsig-keygen to dir/update.key
// and returns the file's path.
func NewTSIGKey(t testing.TB, dir, keyName string) string {
	t.Helper()
	keygen := RequireProgram(t, "tsig-keygen")
	res := runCommand(t.Context(), keygen, "-a", "hmac-sha256", keyName)
	if res.Code != 0 {
		t.Fatalf("tsig-keygen: %s", res)
	}
	path := filepath.Join(dir, "update.key")
	if err := os.WriteFile(path, []byte(res.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Named is a host running BIND named as the primary of Zone on port 53,
// granting updates of VName to a TSIG key made by tsig-keygen.
type Named struct {
	*Host
	Process *Process
	KeyFile string
	KeyName string
}

// AddNamed adds a host called name running named, with VName holding the
// A records initial, and waits until it answers.
func (l *Lab) AddNamed(name string, initial ...string) *Named {
	l.t.Helper()
	bin := RequireProgram(l.t, "named")
	h := l.AddHost(name)
	n := &Named{Host: h, KeyName: "peerload-update"}
	n.KeyFile = NewTSIGKey(l.t, h.Dir, n.KeyName)
	conf := filepath.Join(h.Dir, "named.conf")
	if err := os.WriteFile(conf, []byte(NamedConfig(h.Dir, h.Addr.String(), 53, Zone, n.KeyName, VName, "", "")), 0o644); err != nil {
		l.t.Fatal(err)
	}
	zf := filepath.Join(h.Dir, "db."+Zone)
	if err := os.WriteFile(zf, []byte(ZoneFile(Zone, VName, 1, h.Addr.String(), initial...)), 0o644); err != nil {
		l.t.Fatal(err)
	}
	n.Process = h.NewProcess("named", bin, "-g", "-4", "-n", "1", "-c", conf)
	n.Start()
	return n
}

// Start starts named (again) and waits until it answers SOA
// (StartupTimeout).
func (n *Named) Start() {
	t := n.lab.t
	t.Helper()
	n.Process.Start()
	agenttest.WaitFor(t, StartupTimeout, "named on "+n.Name+" to answer", func() (bool, string) {
		if !n.Process.Running() {
			t.Fatalf("lab: named on %s exited at start:\n%s", n.Name, n.Process.LogTail(30))
		}
		m, err := n.Lookup(n.Server(), Zone, dns.TypeSOA)
		return err == nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0, fmt.Sprintf("named SOA: %v %v", m, err)
	})
}

// Stop stops named with SIGTERM (a clean shutdown that keeps the journal).
func (n *Named) Stop() {
	n.lab.t.Helper()
	if err := n.Process.Stop(15 * time.Second); err != nil {
		n.lab.t.Fatalf("lab: %v", err)
	}
}

// Server is named's DNS address.
func (n *Named) Server() netip.AddrPort { return netip.AddrPortFrom(n.Addr, 53) }

// Records asks named (from its own host) for VName's A records, sorted.
func (n *Named) Records() ([]string, error) {
	m, err := n.Lookup(n.Server(), VName, dns.TypeA)
	if err != nil {
		return nil, err
	}
	if m.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("named answered %s", dns.RcodeToString[m.Rcode])
	}
	return AnswerAddrs(m), nil
}

// NsupdateAPI is where a lab nsupdate serves its read-only API.
const NsupdateAPI = "127.0.0.1:1991"

// Nsupdate is a host running `peerload nsupdate` against a Named.
type Nsupdate struct {
	*Host
	Process *Process
}

// AddNsupdate adds a host called name running `peerload nsupdate` that
// keeps VName in named on the best machines, with the TSIG key, the lab's
// seeds, keyring, label and allow list, and extra flags last (e.g. "--top",
// "2").
func (l *Lab) AddNsupdate(name string, n *Named, extra ...string) *Nsupdate {
	l.t.Helper()
	h := l.AddHost(name)
	args := []string{"nsupdate",
		"--node-name", name,
		"--bind", gossipAddr(h),
		"--api", NsupdateAPI,
		"--server", n.Server().String(),
		"--zone", Zone,
		"--name", VName,
		"--tsig-key", n.KeyFile,
	}
	if seeds := l.Seeds(); len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	args = append(args, l.memberFlags("", "", nil)...)
	args = append(args, extra...)
	u := &Nsupdate{Host: h}
	u.Process = h.NewProcess("nsupdate", l.peerload, args...)
	u.Process.MetricsAddr = NsupdateAPI
	u.Process.Start()
	return u
}

// View asks the updater's API for every node it knows.
func (u *Nsupdate) View() (View, error) {
	var v View
	return v, u.getJSON(NsupdateAPI, "/v1/nodes", &v)
}

// Exchange sends m to server from inside the host over UDP and waits up to
// timeout for the answer.
func (h *Host) Exchange(m *dns.Msg, server netip.AddrPort, timeout time.Duration) (*dns.Msg, error) {
	var conn net.Conn
	if err := h.Do(func() error {
		var err error
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(server))
		return err
	}); err != nil {
		return nil, err
	}
	defer conn.Close()
	c := &dns.Client{Timeout: timeout}
	r, _, err := c.ExchangeWithConn(m, &dns.Conn{Conn: conn})
	return r, err
}

// Lookup asks server for qname/qtype from inside the host (2 s limit),
// with EDNS0 and a 4096-byte buffer so that a TXT list of a whole lab fits;
// a truncated answer is an error.
func (h *Host) Lookup(server netip.AddrPort, qname string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), qtype)
	m.SetEdns0(4096, false)
	r, err := h.Exchange(m, server, 2*time.Second)
	if err == nil && r.Truncated {
		return r, fmt.Errorf("%s %s from %s: truncated", qname, dns.TypeToString[qtype], server)
	}
	return r, err
}

// AnswerAddrs are the A and AAAA addresses in an answer, sorted.
func AnswerAddrs(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		}
	}
	slices.Sort(out)
	return out
}

// TXTNodes are the node= values of the TXT records in an answer, in
// order: the candidates a CoreDNS member ranks for VName TXT.
func TXTNodes(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		for _, s := range txt.Txt {
			for _, w := range strings.Fields(s) {
				if v, ok := strings.CutPrefix(w, "node="); ok {
					out = append(out, v)
				}
			}
		}
	}
	return out
}
