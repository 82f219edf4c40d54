package gossip

import (
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// How a collector recovers a report it missed. A node sends each report
// to a collector once, in one packet, and a node under a steady load sends
// only its refresh: left alone, a lost refresh is repaired by nothing but
// the next one, so two lost in a row leave the collector with a report
// past twice its lifetime, and a live node out of its answers until a
// third one gets through. Every report promises the next within its
// lifetime, so a collector that holds a report past that promise knows it
// missed one (or the node is down or wedged) and asks the node for its
// latest with msgWant, which every release answers with the node's own
// report whole. Nothing new goes on the wire, and nothing is sent while
// reports arrive on time.

// repairTries is how many times a collector asks a node for an overdue
// report before a receiver calls it stale (once twice its lifetime has
// passed): it asks again every lifetime/repairTries while the report stays
// overdue, so one lost request or answer costs an eighth of a lifetime.
const repairTries = 8

// repairLoop asks, once per probe interval, for the reports this member
// holds past their lifetime. Collectors run it: they hand out nodes, and
// their reports come straight from the nodes. Agents get reports through
// the relay grid and do not ask, so a dead node is not asked by every
// agent of a large lab before memberlist declares it dead.
func (m *Member) repairLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.Memberlist.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.repairOnce(time.Now())
	}
}

// repairOnce sends msgWant to every live member whose report is overdue
// at now and was not asked for within a repairTries-th of its lifetime.
func (m *Member) repairOnce(now time.Time) {
	m.mu.Lock()
	var ask []memberlist.Node
	for name, n := range m.members {
		h, ok := m.reports[name]
		if !ok || name == m.cfg.Name || !overdue(h, now) || now.Sub(m.wanted[name]) < h.Report.Lifetime/repairTries {
			continue
		}
		m.wanted[name] = now
		ask = append(ask, n)
	}
	m.mu.Unlock()
	if len(ask) == 0 {
		return
	}
	msg := report.AppendName([]byte{msgWant}, m.cfg.Name)
	for i := range ask {
		// A lost request or answer is asked again (see repairTries).
		_ = m.ml.SendBestEffort(&ask[i], msg)
	}
}

// overdue reports whether the node that sent h promised another report by
// now. A report without a lifetime (version 1) promises nothing.
func overdue(h Held, now time.Time) bool {
	return h.Report.Lifetime > 0 && now.Sub(h.Received) > h.Report.Lifetime
}
