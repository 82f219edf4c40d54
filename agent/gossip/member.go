// Package gossip is a cluster member that spreads load reports with
// hashicorp/memberlist: membership, encryption, labels and allow lists,
// report fan-out and anti-entropy, and direct probes of the members that
// matter. It knows nothing of how reports are ranked or handed out.
package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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
	// goroutines with the member's lock held: it must not block and must
	// not call back into the Member.
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

// Message types on the wire, the first byte of every user message.
const (
	msgReport byte = 1 // one whole Report, sent by its node
	msgState  byte = 2 // push/pull state: every report a member holds
	msgLeave  byte = 3 // a member's goodbye, so others show it as left
	msgHello  byte = 4 // a member's name and address, sent to members it meets
	msgRelay  byte = 5 // a batch with its sender's report, to relay to a column
	msgBatch  byte = 6 // a batch of reports relayed to a column
	msgWant   byte = 7 // a member's name: it asks for the receiver's report (a missed epoch, an overdue report)
	// Protocol 2 (report.Protocol2): sent only while every live member
	// advertises it (see speakingLocked).
	msgRelay2 byte = 8 // msgRelay as a framed batch
	msgBatch2 byte = 9 // msgBatch as a framed batch
)

// Message types are only ever appended: a type a member does not know
// comes from a later release and is dropped (counted "unknown"), and a
// sender uses a new one only with members that advertise its protocol.

// probeMisses is how many probe rounds in a row a member must miss to
// become suspect here: a busy moment is not a failure, two in a row is (a
// round is missed only when pingAttempts pings went unanswered, and a miss
// is probed again at once). With LAN timings (a round a second, 500 ms to
// answer) a killed node is suspect 1.3–2.3 s after it died.
const probeMisses = 2

// Member is one cluster member. Every method is safe for concurrent use;
// Leave and Shutdown are safe to call twice.
type Member struct {
	cfg Config
	log *slog.Logger
	ml  *memberlist.Memberlist
	// closing is set when this member starts to leave or shut down.
	closing atomic.Bool
	// created is closed once New is done and ml is set (nil when
	// memberlist failed to start): memberlist calls the delegates from
	// inside Create, and what they start must wait for it (see list).
	created   chan struct{}
	transport *countingTransport
	keyring   *memberlist.Keyring
	meta      []byte
	addr      string // ip:port others reach this member at, fixed at start
	onChange  func()

	// mu guards everything below it.
	mu       sync.Mutex
	join     []string
	joinFile []string
	reports  map[string]Held
	// gone are the members that left or failed, newest state per name:
	// shown by View for forgetGone, and those that failed kept for
	// reconnectTimeout (see reconnectLoop).
	gone    map[string]Gone
	leaving map[string]bool // members that said goodbye before leaving
	missed  map[string]int  // probe rounds in a row a member did not answer
	// members are copies of the live (alive or suspect) memberlist nodes,
	// kept by the event delegate; see setMember.
	members map[string]memberlist.Node
	own     *report.Report // the last report this member published
	epoch   *report.Report // the report that began own's epoch
	metas   map[string]report.Meta
	// strangers are the members that greeted this one before memberlist
	// told of them (name to address); greeting is true while
	// greetStrangers runs.
	strangers map[string]string
	greeting  bool
	// folded maps each live member's lower-cased name to its name.
	folded map[string]string
	// ids resolves compact entries' node IDs; nil when membership changed.
	ids map[uint32]string
	// pending are the nodes whose latest report goes in the next batch to
	// this member's column, true when it must go whole.
	pending map[string]bool
	wanted  map[string]time.Time // when this member last asked a node for its report

	udpBuffer       int
	reportsSent     atomic.Uint64
	batchesSent     atomic.Uint64
	reportsReceived atomic.Uint64
	received        func(result string)

	stop     chan struct{}
	wg       sync.WaitGroup
	leave    sync.Once
	shutdown sync.Once
	leaveErr error
}

// Held is a report as this member holds it.
type Held struct {
	Report *report.Report
	// Received is the local arrival time minus the report's age on
	// arrival: when the report was sent, on this member's clock.
	Received time.Time
}

// Gone is a member that left or failed.
type Gone struct {
	Node  Node
	State string // "left" or "dead"
	At    time.Time
}

// Node is a member as memberlist knows it, with its meta decoded.
type Node struct {
	Name   string
	Gossip string // ip:port of its gossip endpoint
	Meta   report.Meta
	// Suspect is true when it missed probeMisses probe rounds in a row here.
	Suspect bool
}

// New starts gossip on the bind address and keeps trying to join cfg.Join
// and cfg.JoinFile in the background. received, when set, counts incoming
// reports by result (applied, old, invalid).
func New(cfg *Config, received func(result string)) (*Member, error) {
	m := &Member{
		cfg:       *cfg,
		log:       cfg.Logger,
		onChange:  cfg.OnChange,
		join:      slices.Clone(cfg.Join),
		reports:   make(map[string]Held),
		gone:      make(map[string]Gone),
		leaving:   make(map[string]bool),
		missed:    make(map[string]int),
		members:   make(map[string]memberlist.Node),
		metas:     make(map[string]report.Meta),
		strangers: make(map[string]string),
		pending:   make(map[string]bool),
		folded:    make(map[string]string),
		wanted:    make(map[string]time.Time),
		received:  received,
		stop:      make(chan struct{}),
		created:   make(chan struct{}),
	}
	defer close(m.created)
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.onChange == nil {
		m.onChange = func() {}
	}
	if m.received == nil {
		m.received = func(string) {}
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
	if cfg.JoinFile != "" {
		var err error
		if m.joinFile, err = ReadJoinFile(cfg.JoinFile); err != nil {
			return nil, err
		}
	}
	m.cfg.Meta.Relays = true
	mlc, err := m.memberlistConfig()
	if err != nil {
		return nil, err
	}
	if m.meta, err = report.AppendMeta(m.cfg.Meta); err != nil {
		m.transport.Shutdown()
		return nil, err
	}
	m.ml, err = memberlist.Create(mlc)
	if err != nil {
		m.transport.Shutdown()
		return nil, fmt.Errorf("start gossip: %w", err)
	}
	m.udpBuffer = mlc.UDPBufferSize
	m.wg.Add(2)
	go m.joinLoop()
	go m.reconnectLoop()
	m.wg.Add(1)
	if m.cfg.Meta.Collector {
		go m.repairLoop()
	} else {
		go m.relayLoop()
	}
	return m, nil
}

// list is memberlist once Create returned, nil if it failed. The
// delegates run from inside Create as soon as its listeners are up (a
// member that joins at once, a greeting): what they start in goroutines
// must reach memberlist through list, never m.ml.
func (m *Member) list() *memberlist.Memberlist {
	<-m.created
	return m.ml
}

// listNow is memberlist for the delegates themselves, which must not
// block: nil while Create has not returned (a message that arrives that
// early is answered by the next report or push/pull).
func (m *Member) listNow() *memberlist.Memberlist {
	select {
	case <-m.created:
		return m.ml
	default:
		return nil
	}
}

// memberlistConfig builds memberlist's config and this member's transport.
func (m *Member) memberlistConfig() (*memberlist.Config, error) {
	c := &m.cfg
	mlc := *c.Memberlist
	mlc.Name = c.Name
	mlc.BindAddr = c.BindAddr
	mlc.BindPort = c.BindPort
	mlc.AdvertisePort = c.BindPort
	mlc.Delegate = (*delegate)(m)
	mlc.Events = (*eventDelegate)(m)
	mlc.Alive = (*aliveDelegate)(m)
	mlc.Merge = (*aliveDelegate)(m)
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

// joinLoop keeps trying the configured join addresses until one answers,
// backing off to 30 s, and tries again whenever this member finds itself
// alone (PeerMon's machines.txt behaviour after a partition).
func (m *Member) joinLoop() {
	defer m.wg.Done()
	wait := time.Duration(0)
	lastErr := ""
	for {
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
		addrs := m.joinAddrs()
		if len(addrs) == 0 {
			return
		}
		if m.ml.NumMembers() > 1 {
			wait = 30 * time.Second
			continue
		}
		// One line per change of state, so a join that keeps failing for
		// the same reason does not fill the log.
		n, err := m.ml.Join(addrs)
		if err == nil {
			m.log.Info("joined the cluster", "answered", n, "members", m.ml.NumMembers())
			lastErr, wait = "", 30*time.Second
			continue
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			m.log.Warn("cannot join the cluster yet; retrying", "cause", joinCause(lastErr, m.keyring != nil),
				"tried", strings.Join(addrs, ","), "err", strings.ReplaceAll(lastErr, "\n", "; "))
		}
		wait = min(max(wait*2, time.Second), 30*time.Second)
	}
}

// reconnectTimeout is how long a member that failed is still tried (see
// reconnectLoop), as Serf's reconnect_timeout; View forgets it then.
const reconnectTimeout = 24 * time.Hour

// reconnectLoop heals partitions. memberlist declares the members it cannot
// reach dead, gossips to the dead only for a while and pushes and pulls
// state only with live members, so after a cut longer than failure
// detection the two sides would never speak again. As Serf does, every two
// probe intervals this member joins one failed member, with a chance of
// failed to live members, so that the cluster as a whole tries each failed
// member about once an interval (and after a cut through the middle,
// every member tries every time). The first exchange across a healed cut
// tells each side that the other holds it dead; both refute that with a
// new incarnation, and the next exchange merges them.
func (m *Member) reconnectLoop() {
	defer m.wg.Done()
	t := time.NewTicker(2 * m.cfg.Memberlist.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		if addr := m.reconnectTarget(time.Now()); addr != "" {
			// A failure is the normal case (the member is still down)
			// and memberlist logs it as a debug line.
			_, _ = m.ml.Join([]string{addr})
		}
	}
}

// reconnectTarget picks the address of a failed member for reconnectLoop
// to try now, or "" (none failed, or not this member's turn).
func (m *Member) reconnectTarget(now time.Time) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var addrs []string
	for _, g := range m.gone {
		if g.State == StateDead && now.Sub(g.At) <= reconnectTimeout {
			addrs = append(addrs, g.Node.Gossip)
		}
	}
	if len(addrs) == 0 || rand.Float64()*float64(max(len(m.members), 1)) >= float64(len(addrs)) {
		return ""
	}
	return addrs[rand.IntN(len(addrs))]
}

// joinAddrs is what joinLoop tries: the join list and join file, less this
// member's own address.
func (m *Member) joinAddrs() []string {
	m.mu.Lock()
	addrs := append(slices.Clone(m.join), m.joinFile...)
	m.mu.Unlock()
	return slices.DeleteFunc(addrs, func(s string) bool { return s == m.GossipAddr() })
}

// WantsPeers reports whether this member was told to join anyone.
func (m *Member) WantsPeers() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.join)+len(m.joinFile) > 0
}

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
	m.mu.Lock()
	m.join, m.joinFile = slices.Clone(join), fromFile
	m.mu.Unlock()
	return nil
}

// Publish makes r this member's report: it sets r's epoch (r.Base), sends
// r straight to every collector and to this member's relays (see
// relay.go), holds it for this member's column and for push/pull, and
// greets members that join later with it.
func (m *Member) Publish(r *report.Report, now time.Time) {
	m.mu.Lock()
	m.publishLocked(r, now)
	m.mu.Unlock()
	m.sendReport(r, now)
	m.onChange()
}

// apply stores r if it is newer than what is held for its node.
func (m *Member) apply(r *report.Report, now time.Time) bool {
	if r.Node == m.cfg.Name {
		return false // only this member speaks for itself
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if h, ok := m.reports[r.Node]; ok && !r.Newer(h.Report) {
		return false
	}
	m.reports[r.Node] = Held{Report: r, Received: now.Add(-r.Age)}
	if m.cfg.Applied != nil {
		m.cfg.Applied(r, now.Add(-r.Age))
	}
	return true
}

// View is a copy of what this member knows, taken at one instant.
type View struct {
	Self    string
	Members []Node          // live members (alive or suspect), this one included
	Gone    []Gone          // members that left or failed, newest state per name
	Reports map[string]Held // by node name, members or not
}

// View copies what this member knows. forget says when to drop what is
// no longer needed: a gone member after forgetGone (one that failed is
// only hidden then, and kept for reconnectLoop until reconnectTimeout),
// and a report of a node that is neither a live member nor shown as gone
// once forgetReport(held) says so.
func (m *Member) View(now time.Time, forgetGone time.Duration, forgetReport func(Held) bool) View {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := View{Self: m.cfg.Name, Reports: make(map[string]Held, len(m.reports))}
	for _, n := range m.members {
		v.Members = append(v.Members, m.nodeLocked(&n))
	}
	shown := make(map[string]bool, len(m.gone))
	for name, g := range m.gone {
		_, live := m.members[name]
		switch age := now.Sub(g.At); {
		case live || age > reconnectTimeout || age > forgetGone && g.State != StateDead:
			delete(m.gone, name)
		case age <= forgetGone:
			shown[name] = true
			v.Gone = append(v.Gone, g)
		}
	}
	for name, h := range m.reports {
		_, live := m.members[name]
		gone := shown[name]
		// A report can arrive before gossip tells this member that its
		// node joined: keep it until it expires, then forget it.
		if !live && !gone && name != m.cfg.Name && forgetReport(h) {
			delete(m.reports, name)
			continue
		}
		v.Reports[name] = h
	}
	return v
}

// nodeLocked converts a memberlist node. m.mu must be held.
func (m *Member) nodeLocked(n *memberlist.Node) Node {
	return Node{
		Name:    n.Name,
		Gossip:  net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		Meta:    m.parseMetaLocked(n.Meta),
		Suspect: m.missed[n.Name] >= probeMisses,
	}
}

// parseMetaLocked decodes node meta, caching by content. A member whose
// meta cannot be understood is never a candidate. m.mu must be held.
func (m *Member) parseMetaLocked(b []byte) report.Meta {
	if v, ok := m.metas[string(b)]; ok {
		return v
	}
	v, err := report.DecodeMeta(b)
	if err != nil {
		v = report.Meta{Collector: true}
	}
	if len(m.metas) > 4096 {
		clear(m.metas)
	}
	m.metas[string(b)] = v
	return v
}

// Stats is what this member's gossip has sent and received so far.
type Stats struct {
	// Packets and Bytes count every UDP packet and every byte written on
	// streams, as they leave this member (encryption and labels included).
	Packets uint64
	Bytes   uint64
	// ReportsSent counts reports published, ReportsReceived reports
	// received straight from their node.
	ReportsSent     uint64
	ReportsReceived uint64
	// BatchesSent counts relay periods in which this member sent its
	// column a batch.
	BatchesSent uint64
	// Protocol is the protocol this member speaks now: the lowest any
	// live member advertises (see speakingLocked).
	Protocol int
	// Refused counts packets and streams dropped by the allow list.
	Refused uint64
}

// Stats reports what gossip has sent and received so far.
func (m *Member) Stats() Stats {
	return Stats{
		Packets:         m.transport.packets.Load(),
		Bytes:           m.transport.bytes.Load(),
		ReportsSent:     m.reportsSent.Load(),
		ReportsReceived: m.reportsReceived.Load(),
		BatchesSent:     m.batchesSent.Load(),
		Refused:         m.transport.refused.Load(),
		Protocol:        m.speaking(),
	}
}

// speaking is speakingLocked for callers without m.mu.
func (m *Member) speaking() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.speakingLocked()
}

// speakingLocked is the protocol this member writes to the members it
// chooses (reports to collectors, batches to its column): the lowest
// protocol any live member advertises, itself included, capped by what
// this member writes (report.Speaking). A member learns another's
// advertisement with its membership, before it sends to it, so a newer
// format never reaches a member that does not read it; a member that
// restarts on an older release is sent the newer format only until its
// alive message arrives, and what it missed is repaired like a lost
// packet. m.mu must be held.
func (m *Member) speakingLocked() int {
	advertised := make([]uint8, 0, len(m.members))
	for _, n := range m.members {
		advertised = append(advertised, n.DMax)
	}
	return report.Speaking(m.cfg.test.protocolWrite, advertised)
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
		for _, n := range m.memberCopies() {
			if n.Name != m.cfg.Name {
				_ = m.ml.SendBestEffort(&n, bye)
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

// setMember stores a copy of n, taken while memberlist holds its state
// lock (the event delegate's calls). memberlist.Members hands out pointers
// into that state, which memberlist rewrites (Addr, Port, Meta, State)
// when an alive message arrives: reading them later races. m.mu must be
// held.
func (m *Member) setMember(n *memberlist.Node) {
	if _, ok := m.members[n.Name]; !ok {
		m.ids = nil
		if _, taken := m.folded[strings.ToLower(n.Name)]; !taken {
			m.folded[strings.ToLower(n.Name)] = n.Name
		}
	}
	m.members[n.Name] = *n
}

// memberCopies returns copies of the live members (what
// memberlist.Members lists), safe to read without memberlist's lock.
func (m *Member) memberCopies() []memberlist.Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]memberlist.Node, 0, len(m.members))
	for _, n := range m.members {
		out = append(out, n)
	}
	return out
}

// joinCause names why a join failed, from memberlist's error text: the
// joining side of a label or key mismatch or an allow list sees only a
// closed connection, so it says which settings to compare.
func joinCause(err string, encrypted bool) string {
	switch {
	case strings.Contains(err, "only in case"):
		return "name clash"
	case strings.Contains(err, "no installed keys could decrypt"), strings.Contains(err, "encryption is not configured"),
		strings.Contains(err, "remote state is not encrypted"):
		return "key mismatch"
	case strings.Contains(err, "connection refused"):
		return "refused: nothing listens there"
	case strings.Contains(err, "i/o timeout"), strings.Contains(err, "deadline exceeded"):
		return "timeout: the member is down or a firewall drops gossip"
	case strings.Contains(err, "EOF"), strings.Contains(err, "connection reset"):
		if encrypted {
			return "the member closed the connection: another --label or --keyring, or this address is outside its --allow"
		}
		return "the member closed the connection: another --label, a --keyring there, or this address is outside its --allow"
	}
	return "unknown"
}
