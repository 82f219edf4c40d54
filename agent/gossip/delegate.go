package gossip

import (
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
			m.mu.Unlock()
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
	default:
		m.received("invalid")
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends every report this member holds, each with its age, so
// a member that missed a fan-out packet or just joined catches up.
func (d *delegate) LocalState(join bool) []byte {
	m := (*Member)(d)
	now := time.Now()
	m.mu.Lock()
	reports := make([]*report.Report, 0, len(m.reports))
	for _, h := range m.reports {
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
	delete(m.gone, n.Name)
	own := m.own
	m.mu.Unlock()
	if own != nil && n.Name != m.cfg.Name {
		// Greet a new member with this node's report at once, instead of
		// leaving it to wait for the next change or refresh. memberlist
		// holds its state lock here, so send from another goroutine.
		to, msg := *n, report.AppendReport([]byte{msgReport}, own)
		go func() { _ = m.ml.SendBestEffort(&to, msg) }()
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
	m.gone[n.Name] = Gone{Node: m.nodeLocked(n), State: state, At: time.Now()}
	m.mu.Unlock()
	m.onChange()
}

// States of a gone member.
const (
	StateDead = "dead"
	StateLeft = "left"
)
