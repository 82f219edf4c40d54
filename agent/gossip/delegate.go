package gossip

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// delegate is the memberlist.Delegate of a Member. memberlist calls it
// from its packet and stream goroutines concurrently; no method blocks.
type delegate Member

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	m := (*Member)(d)
	if len(b) == 0 {
		m.received("invalid")
		return
	}
	switch b[0] {
	case msgLeave:
		if name, err := report.DecodeName(b[1:]); err == nil {
			m.mu.Lock()
			m.leaving[name] = true
			// The goodbye may arrive after memberlist already reported the
			// node gone (packets are handled concurrently): it left.
			g, gone := m.gone[name]
			if gone && g.State == StateDead {
				g.State = StateLeft
				m.gone[name] = g
			}
			m.mu.Unlock()
			if gone {
				m.onChange()
			}
		}
	case msgReport:
		r, _, err := report.DecodeReport(b[1:])
		if err != nil {
			m.received("invalid")
			return
		}
		m.reportsReceived.Add(1)
		// A report straight from its node proves the node is up.
		m.mu.Lock()
		wasSuspect := m.missed[r.Node] >= probeMisses
		delete(m.missed, r.Node)
		m.mu.Unlock()
		applied := m.apply(r, time.Now())
		if applied {
			m.received("applied")
		} else {
			m.received("old")
		}
		if applied || wasSuspect {
			m.onChange()
		}
	case msgRelay, msgBatch, msgRelay2, msgBatch2:
		decode := report.DecodeBatch
		if b[0] == msgRelay2 || b[0] == msgBatch2 {
			decode = report.DecodeFramedBatch
		}
		// What decoded is applied even when a part did not.
		rs, cs, err := decode(b[1:])
		if err != nil {
			m.received("invalid")
		}
		now := time.Now()
		relayed := b[0] == msgRelay || b[0] == msgRelay2
		if relayed {
			// A report straight from its node proves the node is up.
			m.mu.Lock()
			for _, r := range rs {
				delete(m.missed, r.Node)
			}
			for _, c := range cs {
				delete(m.missed, m.nameOfLocked(c.ID))
			}
			m.mu.Unlock()
		}
		applied := m.applyBatch(rs, cs, now)
		if len(applied) == 0 {
			return
		}
		if relayed {
			m.mu.Lock()
			for name, whole := range applied {
				m.pending[name] = m.pending[name] || whole
			}
			m.mu.Unlock()
		}
		m.onChange()
	case msgWant:
		if name, err := report.DecodeName(b[1:]); err == nil {
			m.answerWant(name)
		}
	case msgHello:
		name, rest, err := report.DecodeHello(b[1:])
		if err != nil {
			m.received("invalid")
			return
		}
		m.hello(name, rest)
	default:
		// A later release's message type: it sends one only to members
		// that advertise its protocol, so this is a member that restarted
		// on an older release before its alive message spread.
		m.received("unknown")
	}
}

// hello answers a member that introduced itself: when memberlist has not
// told this member of it yet, its "alive" rumour has not arrived (or never
// will), and a push/pull with it makes it a member here. A push/pull
// carries the whole membership both ways, so greetStrangers waits first
// for the rumour to spread, and does one push/pull at a time for all the
// strangers, since one brings every member the other side knows.
func (m *Member) hello(name, addr string) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || name == m.cfg.Name || !m.transport.allowedIP(ap.Addr().Unmap()) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, known := m.members[name]; known {
		return
	}
	m.strangers[name] = addr
	if !m.greeting {
		m.greeting = true
		go m.greetStrangers()
	}
}

// greetStrangers waits helloWait, forgets the strangers memberlist has
// told of meanwhile, and pushes/pulls with one of the others; then again,
// until none is left. When a lab of 1,000 boots, newcomers greet every
// member faster than their rumours spread: a push/pull per greeting was
// one per pair of machines, a million exchanges of 90 kB.
func (m *Member) greetStrangers() {
	for {
		m.mu.Lock()
		wait := m.helloWaitLocked()
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-time.After(wait):
		}
		m.mu.Lock()
		addr := ""
		for name, a := range m.strangers {
			delete(m.strangers, name)
			if _, known := m.members[name]; !known {
				addr = a
				break
			}
		}
		if addr == "" {
			m.greeting = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		if ml := m.list(); ml != nil && !m.stopped() {
			_, _ = ml.Join([]string{addr})
		}
	}
}

// helloWaitLocked is how long a rumour takes to reach most members: two
// gossip rounds plus one per doubling of the cluster (250 ms for 4 members
// on the local profile, 2.4 s for 1,000 on LAN timings). m.mu must be held.
func (m *Member) helloWaitLocked() time.Duration {
	rounds := 2 + math.Ceil(math.Log2(float64(len(m.members)+1)))
	return time.Duration(rounds) * m.cfg.Memberlist.GossipInterval
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends, when a member joins, every report this member holds,
// each with its age, so the newcomer ranks everyone at once; in the
// periodic push/pull only this member's own report, since reports reach
// every member within a relay period (relay.go) and a member that misses an
// epoch asks its node (msgWant).
func (d *delegate) LocalState(join bool) []byte {
	m := (*Member)(d)
	now := time.Now()
	m.mu.Lock()
	reports := make([]*report.Report, 0, len(m.reports))
	for name, h := range m.reports {
		if !join && name != m.cfg.Name && !m.cfg.test.ablations.fullPushPull {
			continue
		}
		r := *h.Report
		r.Age = max(now.Sub(h.Received), 0)
		reports = append(reports, &r)
	}
	m.mu.Unlock()
	return report.AppendState([]byte{msgState}, reports)
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	m := (*Member)(d)
	if len(buf) == 0 || buf[0] != msgState {
		return
	}
	reports, err := report.DecodeState(buf[1:])
	if err != nil {
		m.received("invalid")
	}
	now := time.Now()
	applied := false
	for _, r := range reports {
		if m.apply(r, now) {
			applied = true
		}
	}
	if applied {
		m.onChange()
	}
}

// eventDelegate keeps the member copies and tells the owner of changes.
// memberlist calls it with its state lock held: it must not call back into
// memberlist.
type eventDelegate Member

func (e *eventDelegate) NotifyJoin(n *memberlist.Node) {
	m := (*Member)(e)
	m.mu.Lock()
	m.setMember(n)
	delete(m.leaving, n.Name)
	delete(m.missed, n.Name)
	if g, back := m.gone[n.Name]; back && g.State == StateDead {
		m.log.Debug("a member that had failed is back", "member", n.Name)
	}
	delete(m.gone, n.Name)
	own, proto := m.own, m.speakingLocked()
	m.mu.Unlock()
	if n.Name != m.cfg.Name {
		// Greet a new member with this member's name and address (so it
		// learns of this one even if memberlist's rumour misses it) and
		// report (instead of leaving it to wait for the next change or
		// refresh). memberlist holds its state lock here, so send from
		// another goroutine.
		to := *n
		msgs := [][]byte{report.AppendHello([]byte{msgHello}, m.cfg.Name, m.addr)}
		if own != nil {
			msgs = append(msgs, report.AppendReportAt([]byte{msgReport}, own, proto))
		}
		go func() {
			ml := m.list()
			if ml == nil {
				return
			}
			for _, msg := range msgs {
				_ = ml.SendBestEffort(&to, msg)
			}
		}()
	}
	m.onChange()
}

func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	m := (*Member)(e)
	m.mu.Lock()
	m.setMember(n)
	m.mu.Unlock()
	m.onChange()
}

func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	m := (*Member)(e)
	// memberlist's Node.State is not kept up to date; the goodbye message
	// tells a graceful leave from a failure.
	m.mu.Lock()
	state := StateDead
	if m.leaving[n.Name] {
		state = StateLeft
	}
	delete(m.leaving, n.Name)
	delete(m.missed, n.Name)
	delete(m.members, n.Name)
	if m.folded[strings.ToLower(n.Name)] == n.Name {
		delete(m.folded, strings.ToLower(n.Name))
	}
	m.ids = nil
	m.gone[n.Name] = Gone{Node: m.nodeLocked(n), State: state, At: time.Now()}
	m.mu.Unlock()
	m.onChange()
}

// States of a gone member.
const (
	StateDead = "dead"
	StateLeft = "left"
)

// aliveDelegate keeps out a member whose name differs from a live
// member's only in case: DNS (and ssh) cannot tell lab01 from LAB01, so
// only the first one stays. As memberlist's MergeDelegate it fails the
// join of a member whose own name clashes, so the newcomer learns why.
// memberlist calls it with its state lock held.
type aliveDelegate Member

func (d *aliveDelegate) NotifyAlive(peer *memberlist.Node) error {
	if other := (*Member)(d).caseTwin(peer.Name); other != "" {
		return fmt.Errorf("member %q differs from member %q only in case; names must differ as DNS names", peer.Name, other)
	}
	return nil
}

func (d *aliveDelegate) NotifyMerge(peers []*memberlist.Node) error {
	self := (*Member)(d).cfg.Name
	for _, p := range peers {
		if p.Name != self && strings.EqualFold(p.Name, self) {
			return fmt.Errorf("member %q already exists: this member's name %q differs only in case; names must differ as DNS names", p.Name, self)
		}
	}
	return nil
}

// caseTwin is the name of this member or a live member that equals name
// but for case, or "". memberlist asks for every alive message and every
// node of every push/pull, so it is a map lookup, not a scan.
func (m *Member) caseTwin(name string) string {
	if name != m.cfg.Name && strings.EqualFold(name, m.cfg.Name) {
		return m.cfg.Name
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if other, ok := m.folded[strings.ToLower(name)]; ok && other != name {
		return other
	}
	return ""
}
