// Package gossip is a cluster member that spreads load reports with
// hashicorp/memberlist: membership, encryption, labels and allow lists,
// report fan-out and anti-entropy, and direct probes of the members that
// matter. It knows nothing of how reports are ranked or handed out.
package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// Config is everything a Member needs. The agent fills it from its own
// Config; Member validates nothing a caller could have checked first.
type Config struct {
	// Name is this member's unique name.
	Name string
	// BindAddr and BindPort are where gossip listens, UDP and TCP. Port 0
	// picks a free port.
	BindAddr string
	BindPort int
	// Advertise, when set, is the ip:port other members reach this one at.
	Advertise string
	// Meta is what other members learn of this one with its membership:
	// whether it is a collector, the addresses it hands out, pools, roles.
	Meta report.Meta
	// Join and JoinFile list members to join (see Member.Reload).
	Join     []string
	JoinFile string
	// Keys are the gossip encryption keys, the first one primary; none
	// means clear text.
	Keys [][]byte
	// Label is memberlist's cluster label.
	Label string
	// Allow restricts gossip, packets and streams, to these networks.
	Allow []netip.Prefix
	// Memberlist is the base memberlist configuration; New overwrites what
	// it owns (name, addresses, delegates, keys, label, CIDRs, transport).
	Memberlist *memberlist.Config
	// Logger receives the member's and memberlist's log lines.
	Logger *slog.Logger
	// Interval is the agent's sampling interval; the relay period grows
	// from it with the cluster (see relayPeriod). 0 means 2 s.
	Interval time.Duration
	// Applied, when set, is called with every report of another node this
	// member applies (newer than what it held) and when that report was
	// sent, on this member's clock. It is called from memberlist's
	// goroutines with the report table's lock held: it must not block and
	// must not call back into the Member.
	Applied func(r *report.Report, sent time.Time)
	// OnChange is called whenever reports, membership or probe results
	// change. It is called from memberlist's goroutines, sometimes with
	// memberlist's state lock held: it must not block and must not call
	// back into the Member.
	OnChange func()

	// test is what only tests and benchmarks set.
	test testOptions
}

// ErrShutdown is returned by calls on a member that was shut down.
var ErrShutdown = errors.New("gossip: shut down")

// Member is one cluster member: it wires the report table, the roster of
// members and the protocols around them (greeter, prober, relay, wants,
// repairer, reconnector) to memberlist, and owns their lifecycle. Every
// method is safe for concurrent use; Leave and Shutdown are safe to call
// twice.
type Member struct {
	cfg  Config
	log  *slog.Logger
	ml   *memberlist.Memberlist
	list *lazyList
	// closing is set when this member starts to leave or shut down.
	closing   atomic.Bool
	transport *countingTransport
	keyring   *memberlist.Keyring
	addr      string // ip:port others reach this member at, fixed at start
	onChange  func()

	table     *table
	roster    *roster
	probes    *prober
	greeter   *greeter
	reconnect *reconnector
	spread    spreader
	counts    counters

	stop     chan struct{}
	wg       sync.WaitGroup
	leave    sync.Once
	shutdown sync.Once
	leaveErr error
}

// counters are what Stats reports of this member's traffic, added to by
// every part from any goroutine.
type counters struct {
	reportsSent, batchesSent, reportsReceived atomic.Uint64
}

// New starts gossip on the bind address and keeps trying to join cfg.Join
// and cfg.JoinFile in the background. received, when set, counts incoming
// reports and messages by result (applied, old, no_epoch, invalid,
// unknown; see messages.go).
func New(cfg *Config, received func(result string)) (*Member, error) {
	m := &Member{
		cfg:      *cfg,
		log:      cfg.Logger,
		onChange: cfg.OnChange,
		list:     newLazyList(),
		stop:     make(chan struct{}),
	}
	// Whatever happens, release what the delegates started.
	defer func() { m.list.set(m.ml) }()
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.onChange == nil {
		m.onChange = func() {}
	}
	if received == nil {
		received = func(string) {}
	}
	if m.cfg.Interval <= 0 {
		m.cfg.Interval = 2 * time.Second
	}
	if m.cfg.test.protocolMax == 0 {
		m.cfg.test.protocolMax = report.ProtocolMax
	}
	if m.cfg.test.protocolWrite == 0 {
		m.cfg.test.protocolWrite = report.ProtocolWrite
	}
	var joinFile []string
	if cfg.JoinFile != "" {
		var err error
		if joinFile, err = ReadJoinFile(cfg.JoinFile); err != nil {
			return nil, err
		}
	}
	m.cfg.Meta.Relays = true
	mlc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	meta, err := report.AppendMeta(m.cfg.Meta)
	if err != nil {
		m.transport.Shutdown()
		return nil, err
	}
	loop := m.wire(mlc, meta, received)
	m.greeter.setJoin(cfg.Join, joinFile)
	m.ml, err = memberlist.Create(mlc)
	if err != nil {
		m.transport.Shutdown()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	m.run(m.greeter.loop)
	m.run(func() { m.reconnect.loop(m.stop) })
	if loop != nil {
		m.run(func() { loop(m.stop) })
	}
	return m, nil
}

// run runs f in a goroutine that Shutdown waits for.
func (m *Member) run(f func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// tick calls f with the time (read when f runs, not when the tick was
// due) every period until stop is closed: the loops of the parts that act
// on a clock.
func tick(stop <-chan struct{}, period time.Duration, f func(now time.Time)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			f(time.Now())
		}
	}
}

// wire builds the parts of the member, each with pointers to the parts it
// uses, and sets them as mlc's delegates. It returns what the member runs
// besides joining and reconnecting: the relay's loop for an agent, the
// repairer's for a collector (nil with the fanOut ablation). The
// ablations choose, here and only here, which implementation a part gets.
func (m *Member) wire(mlc *memberlist.Config, meta []byte, received func(string)) (loop func(stop <-chan struct{})) {
	c := &m.cfg
	ab := c.test.ablations
	m.table = newTable(c.Name, c.Applied)
	m.roster = newRoster(c.Name, c.test.protocolWrite)
	m.probes = newProber(c.Name, m.roster, m.list, mlc.ProbeTimeout, m.onChange)
	wants := newWants(c.Name, m.table, m.roster, m.list)
	m.greeter = &greeter{
		self:           c.Name,
		addr:           m.addr,
		gossipInterval: mlc.GossipInterval,
		encrypted:      m.keyring != nil,
		allowed:        m.transport.allowedIP,
		table:          m.table,
		roster:         m.roster,
		list:           m.list,
		log:            m.log,
		stop:           m.stop,
		strangers:      make(map[string]string),
	}
	m.reconnect = &reconnector{roster: m.roster, list: m.list, every: 2 * mlc.ProbeInterval}
	rl := &relay{
		self:       c.Name,
		interval:   c.Interval,
		table:      m.table,
		roster:     m.roster,
		wants:      wants,
		list:       m.list,
		received:   received,
		counts:     &m.counts,
		columns:    columns,
		compactID:  m.roster.id,
		batchLimit: batchLimit(mlc.UDPBufferSize, c.Label),
		column:     !c.Meta.Collector,
		pending:    make(map[string]bool),
	}
	if ab.oneColumn {
		rl.columns = oneColumn
	}
	if ab.whole {
		rl.compactID = wholeOnly
	}
	m.spread, loop = rl, rl.loop
	if ab.fanOut {
		m.spread = &fanOut{self: c.Name, roster: m.roster, list: m.list, counts: &m.counts}
		loop = nil
	}
	if c.Meta.Collector {
		rp := &repairer{table: m.table, roster: m.roster, wants: wants, every: mlc.ProbeInterval}
		loop = rp.loop
	}
	d := &delegate{
		meta:     meta,
		table:    m.table,
		roster:   m.roster,
		probes:   m.probes,
		relay:    rl,
		wants:    wants,
		greeter:  m.greeter,
		counts:   &m.counts,
		received: received,
		onChange: m.onChange,
		periodic: m.table.ownState,
	}
	if ab.fullPushPull {
		d.periodic = m.table.allState
	}
	mlc.Delegate = d
	mlc.Events = &eventDelegate{roster: m.roster, probes: m.probes, greeter: m.greeter, log: m.log, onChange: m.onChange}
	alive := &aliveDelegate{self: c.Name, roster: m.roster}
	mlc.Alive, mlc.Merge = alive, alive
	return loop
}

// memberlistConfig builds memberlist's config, but for the delegates (see
// wire), and this member's transport.
func (m *Member) memberlistConfig() (*memberlist.Config, error) {
	c := &m.cfg
	mlc := *c.Memberlist
	mlc.Name = c.Name
	mlc.BindAddr = c.BindAddr
	mlc.BindPort = c.BindPort
	mlc.AdvertisePort = c.BindPort
	mlc.Label = c.Label
	// The delegate version range advertises the protocol this member
	// reads (report.ProtocolMax) to every member with its alive messages;
	// senders speak the lowest one any live member advertises. 0.1.0
	// advertises [0, 0] and current 0. memberlist refuses a push/pull when
	// a member's current version is outside the range every member
	// accepts, so minimum and current stay 0 for good: only the maximum
	// says anything.
	mlc.DelegateProtocolMin, mlc.DelegateProtocolVersion = 0, 0
	mlc.DelegateProtocolMax = uint8(c.test.protocolMax)
	mlc.LogOutput = nil
	mlc.Logger = newMemberlistLogger(m.log, &m.closing)
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if err != nil {
			return nil, fmt.Errorf("gossip advertise %q: %w", c.Advertise, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("gossip advertise %q: bad port", c.Advertise)
		}
		mlc.AdvertiseAddr, mlc.AdvertisePort = host, p
	}
	mlc.SecretKey = nil
	mlc.Keyring = nil
	if len(c.Keys) > 0 {
		kr, err := memberlist.NewKeyring(c.Keys, c.Keys[0])
		if err != nil {
			return nil, fmt.Errorf("keyring: %w", err)
		}
		mlc.Keyring = kr
		m.keyring = kr
		mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	}
	mlc.CIDRsAllowed = nil
	for _, p := range c.Allow {
		mlc.CIDRsAllowed = append(mlc.CIDRsAllowed, net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}

	var nt memberlist.NodeAwareTransport
	if t, ok := c.Memberlist.Transport.(memberlist.NodeAwareTransport); ok && t != nil {
		nt = t // a simulation's in-memory network
	} else {
		t, err := listen(net.ParseIP(c.BindAddr), c.BindPort, m.log)
		if err != nil {
			return nil, err
		}
		if c.BindPort == 0 {
			mlc.BindPort = t.Port()
			if c.Advertise == "" {
				mlc.AdvertisePort = mlc.BindPort
			}
		}
		nt = t
	}
	m.transport = newCountingTransport(nt, c.Allow, m.log)
	mlc.Transport = m.transport

	ip, port, err := nt.FinalAdvertiseAddr(mlc.AdvertiseAddr, mlc.AdvertisePort)
	if err != nil {
		m.transport.Shutdown()
		return nil, fmt.Errorf("advertise address: %w", err)
	}
	m.addr = net.JoinHostPort(ip.String(), strconv.Itoa(port))
	if adv, ok := netip.AddrFromSlice(ip); ok && len(c.Allow) > 0 && !m.transport.allowedIP(adv.Unmap()) {
		m.transport.Shutdown()
		return nil, fmt.Errorf("this member's own address %s is outside the allow list", adv.Unmap())
	}
	// The IPv4 address a member advertises defaults to its gossip address.
	if ip4, ok := netip.AddrFromSlice(ip.To4()); ok && !c.Meta.Addr4.IsValid() && !ip4.IsUnspecified() {
		c.Meta.Addr4 = ip4
	}
	return &mlc, nil
}

// Join contacts the given host:port members now and returns how many
// answered.
func (m *Member) Join(addrs []string) (int, error) {
	if m.stopped() {
		return 0, ErrShutdown
	}
	n, err := m.ml.Join(addrs)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("join %s: %w", strings.Join(addrs, ","), err)
	}
	return n, nil
}

// WantsPeers reports whether this member was told to join anyone.
func (m *Member) WantsPeers() bool { return m.greeter.wantsPeers() }

// NumMembers is how many live members memberlist knows, this one included.
func (m *Member) NumMembers() int { return m.ml.NumMembers() }

// GossipAddr is the ip:port other members reach this one at.
func (m *Member) GossipAddr() string { return m.addr }

// Encrypted reports whether gossip is encrypted.
func (m *Member) Encrypted() bool { return m.keyring != nil }

// Reload replaces the join list and join file and, when keys is not nil,
// installs the keys (the first becomes primary) and removes the ones no
// longer listed. Without a keyring at start there is nothing to rotate: the
// member must restart to encrypt.
func (m *Member) Reload(join []string, joinFile string, keys [][]byte) error {
	if m.stopped() {
		return ErrShutdown
	}
	var fromFile []string
	if joinFile != "" {
		var err error
		if fromFile, err = ReadJoinFile(joinFile); err != nil {
			return err
		}
	}
	if len(keys) > 0 {
		kr := m.keyring
		if kr == nil {
			return errors.New("keyring: gossip was started without a key; restart to enable encryption")
		}
		for _, k := range keys {
			if err := kr.AddKey(k); err != nil {
				return fmt.Errorf("keyring: %w", err)
			}
		}
		if err := kr.UseKey(keys[0]); err != nil {
			return fmt.Errorf("keyring: %w", err)
		}
		for _, k := range kr.GetKeys() {
			if !slices.ContainsFunc(keys, func(n []byte) bool { return string(n) == string(k) }) {
				_ = kr.RemoveKey(k)
			}
		}
	}
	m.greeter.setJoin(join, fromFile)
	return nil
}

// Publish makes r this member's report: it sets r's epoch (r.Base), sends
// r straight to every collector and to this member's relays (see
// relay.go), holds it for this member's column and for push/pull, and
// greets members that join later with it.
func (m *Member) Publish(r *report.Report, now time.Time) {
	begins := m.table.publish(r, now)
	m.spread.publish(r, begins, now)
	m.onChange()
}

// Probe pings the named members (and the ones already missing pings)
// once, concurrently, and a member that missed that round again at once,
// until it answers or has missed probeMisses rounds in a row: then it is
// suspect here until it answers a ping or sends a report. Collectors call
// it once per probe interval with their best candidates, so a dead node
// leaves their answers within seconds, before memberlist's suspicion
// timeout (which grows with the cluster).
func (m *Member) Probe(names []string) { m.probes.probe(names) }

// Answering pings nodes now, concurrently, and reports which answered
// within memberlist's probe timeout (this member always answers). The
// CLI's picks go through it, so `ssh $(peerload top)` never lands on a
// machine that died a moment ago, without every agent pinging the best
// machines all the time. A node that does not answer is only left out of
// that answer (one lost packet is no failure); one that answers is no
// longer counted as missing probe rounds.
func (m *Member) Answering(nodes []Node) []bool { return m.probes.answering(nodes) }

// View is a copy of what this member knows.
type View struct {
	Self    string
	Members []Node          // live members (alive or suspect), this one included
	Gone    []Gone          // members that left or failed, newest state per name
	Reports map[string]Held // by node name, members or not
}

// View copies what this member knows. forget says when to drop what is
// no longer needed: a gone member after forgetGone (one that failed is
// only hidden then, and kept for the reconnector until reconnectTimeout),
// and a report of a node that is neither a live member nor shown as gone
// once forgetReport(held) says so. A report can arrive before gossip
// tells this member that its node joined: it is kept until it expires.
func (m *Member) View(now time.Time, forgetGone time.Duration, forgetReport func(Held) bool) View {
	members, gone, keep := m.roster.view(now, forgetGone)
	m.probes.mark(members)
	reports := m.table.view(func(name string) bool { return keep[name] }, forgetReport)
	return View{Self: m.cfg.Name, Members: members, Gone: gone, Reports: reports}
}

// Stats is what this member's gossip has sent and received so far.
type Stats struct {
	// Packets and Bytes count every UDP packet and every byte written on
	// streams, as they leave this member (encryption and labels included).
	Packets uint64
	Bytes   uint64
	// Sent splits them by kind (Kinds: KindProbe, KindReport, ...): the
	// kinds' packets and bytes add up to Packets and Bytes exactly.
	Sent map[string]Traffic
	// ReportsSent counts reports published, ReportsReceived reports
	// received straight from their node.
	ReportsSent     uint64
	ReportsReceived uint64
	// BatchesSent counts relay periods in which this member sent its
	// column a batch.
	BatchesSent uint64
	// Protocol is the protocol this member speaks now: the lowest any
	// live member advertises (see roster.speaking).
	Protocol int
	// Refused counts packets and streams dropped by the allow list.
	Refused uint64
}

// Stats reports what gossip has sent and received so far.
func (m *Member) Stats() Stats {
	sent := m.transport.sent()
	var packets, bytes uint64
	for _, s := range sent {
		packets += s.Packets
		bytes += s.Bytes
	}
	return Stats{
		Packets:         packets,
		Bytes:           bytes,
		Sent:            sent,
		ReportsSent:     m.counts.reportsSent.Load(),
		ReportsReceived: m.counts.reportsReceived.Load(),
		BatchesSent:     m.counts.batchesSent.Load(),
		Refused:         m.transport.refused.Load(),
		Protocol:        m.roster.speaking(),
	}
}

// Leave tells the cluster this member is leaving and waits up to timeout
// for the message to spread.
func (m *Member) Leave(timeout time.Duration) error {
	m.closing.Store(true)
	m.leave.Do(func() {
		if m.stopped() {
			m.leaveErr = ErrShutdown
			return
		}
		bye := report.AppendName([]byte{msgLeave}, m.cfg.Name)
		for _, n := range m.roster.copies() {
			if n.Name != m.cfg.Name {
				_ = send(m.ml, &n, kindGreeting, bye)
			}
		}
		if err := m.ml.Leave(timeout); err != nil {
			m.leaveErr = fmt.Errorf("leave: %w", err)
		}
	})
	return m.leaveErr
}

// Shutdown stops gossip and every goroutine of the member. Without a Leave
// first, the others see this member fail.
func (m *Member) Shutdown() error {
	var err error
	m.closing.Store(true)
	m.shutdown.Do(func() {
		close(m.stop)
		m.wg.Wait()
		if e := m.ml.Shutdown(); e != nil {
			err = fmt.Errorf("shutdown: %w", e)
		}
	})
	return err
}

func (m *Member) stopped() bool {
	select {
	case <-m.stop:
		return true
	default:
		return false
	}
}

// Stopped is closed when Shutdown begins.
func (m *Member) Stopped() <-chan struct{} { return m.stop }
