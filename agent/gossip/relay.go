package gossip

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// How reports travel. Collectors (DNS servers, updaters, proxies) answer
// users, so every report goes straight to each of them, whole, the moment
// it is taken: one hop, a few packets per report. Agents need the table
// only for top, ssh and hostfile, and a table a few seconds old does: they
// get it in two hops through a grid, in batches of compact entries.
//
// The agents (live members that are not collectors) fall into columns by
// the hash of their names (see columns). A node that publishes a report
// sends it, one packet each, to one relay in every other column (phase
// one): the relay is the column member that ranks first for the node in a
// rendezvous hash that changes every relayRotation reports, so a dead
// relay costs a column only a few reports even before memberlist notices.
// Every relay period each agent sends what it got since the last period,
// its own report included, to the members of its own column, in batches as
// large as a packet allows (phase two). Each report thus reaches every
// agent once, in (C−1) + (N/C−1) packets per node and period instead of
// N−1 per report; a relay keeps only a node's latest report, so an agent
// receives about N entries per period however fast loads change.
//
// Entries travel compact (report.Compact, 11 bytes) when the receiver can
// hold their epoch, whole (about 60 bytes) when they begin one. A receiver
// that meets an epoch it missed asks the node for its report (msgWant),
// at most once per wantEvery.

// relayRotation is how many reports a node keeps its relays for.
const relayRotation = 16

// wantEvery is how often a member asks one node for its whole report.
const wantEvery = 2 * time.Second

// columns is how many columns n agents form: a power of two near √(n/2),
// which minimises the packets plus entries each agent sends (phase one
// sends C−1 packets per report, phase two N/C−1 per period), and stays put
// while the cluster grows or shrinks a little, so members rarely disagree
// on it. Below 16 agents there is one column: every agent sends its own
// report to every other once per relay period.
func columns(n int) int {
	if n < 16 {
		return 1
	}
	return 1 << int(math.Round(math.Log2(math.Sqrt(float64(n)/2))))
}

// relayPeriod is how often an agent sends its batch to its column: the
// sampling interval times log2(n)/3.75, from one to three intervals (3.5 s
// at 100 agents and 5.3 s at 1,000 on LAN timings), trading an agent's
// freshness for bytes as the cluster grows. A sample reaches the last
// agent about one period after it was taken.
func relayPeriod(interval time.Duration, n int) time.Duration {
	f := min(max(math.Log2(float64(max(n, 1)))/3.75, 1), 3)
	return time.Duration(float64(interval) * f)
}

// column is name's column among c.
func column(name string, c int) int { return int(report.NodeID(name)) % c }

// rendezvous ranks member as origin's relay for the reports of one rotation.
func rendezvous(origin, member string, rotation uint64) uint64 {
	h := fnv.New64a()
	h.Write([]byte(origin))
	h.Write([]byte{0})
	h.Write([]byte(member))
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rotation)
	h.Write(b[:])
	return bits.RotateLeft64(h.Sum64(), 17) * 0x9E3779B97F4A7C15
}

// grid is what a member needs to send one report: the collectors (and
// members of earlier releases), its relays (one per other column) and, for
// the relay period, its column.
type grid struct {
	collectors []memberlist.Node
	relays     []memberlist.Node
	column     []memberlist.Node
	agents     int
	others     []memberlist.Node // every live member but this one (ablateFanOut)
}

// gridLocked lays out the live members for a report with sequence number
// seq. m.mu must be held.
func (m *Member) gridLocked(seq uint64) grid {
	var g grid
	var agents []*memberlist.Node
	fanOut := m.cfg.test.ablations.fanOut
	for name := range m.members {
		n := m.members[name]
		if fanOut && name != m.cfg.Name {
			g.others = append(g.others, n)
		}
		// Members of earlier releases, outside the grid, get reports as
		// collectors do.
		if meta := m.parseMetaLocked(n.Meta); meta.Collector || !meta.Relays {
			if name != m.cfg.Name {
				g.collectors = append(g.collectors, n)
			}
			continue
		}
		agents = append(agents, &n)
	}
	g.agents = len(agents)
	c := columns(len(agents))
	if m.cfg.test.ablations.oneColumn {
		c = 1
	}
	own := column(m.cfg.Name, c)
	best := make([]*memberlist.Node, c)
	score := make([]uint64, c)
	for _, n := range agents {
		if n.Name == m.cfg.Name {
			continue
		}
		col := column(n.Name, c)
		if col == own {
			g.column = append(g.column, *n)
			continue
		}
		if s := rendezvous(m.cfg.Name, n.Name, seq/relayRotation); best[col] == nil || s > score[col] {
			best[col], score[col] = n, s
		}
	}
	for _, n := range best {
		if n != nil {
			g.relays = append(g.relays, *n)
		}
	}
	return g
}

// idLocked returns the NodeID of name and whether it names name alone
// among the live members. m.mu must be held.
func (m *Member) idLocked(name string) (uint32, bool) {
	id := report.NodeID(name)
	return id, m.nameOfLocked(id) == name
}

// nameOfLocked resolves a NodeID to the one live member it names, or "".
// m.mu must be held.
func (m *Member) nameOfLocked(id uint32) string {
	if m.ids == nil {
		m.ids = make(map[uint32]string, len(m.members))
		for name := range m.members {
			nid := report.NodeID(name)
			if _, dup := m.ids[nid]; dup {
				m.ids[nid] = ""
			} else {
				m.ids[nid] = name
			}
		}
	}
	return m.ids[id]
}

// entryLocked adds the report held for name to a batch: compact when it
// continues an epoch and its ID is unambiguous, whole otherwise (or when
// whole is set). m.mu must be held.
func (m *Member) entryLocked(name string, whole bool, now time.Time, rs []*report.Report, cs []report.Compact) ([]*report.Report, []report.Compact) {
	h, ok := m.reports[name]
	if !ok {
		return rs, cs
	}
	r := *h.Report
	r.Age = max(now.Sub(h.Received), 0)
	if id, unique := m.idLocked(name); unique && !whole && !m.cfg.test.ablations.whole {
		if c, ok := report.CompactOf(&r, id); ok {
			return rs, append(cs, c)
		}
	}
	return append(rs, &r), cs
}

// publishLocked sets r's epoch and records it as this member's own report.
// m.mu must be held.
func (m *Member) publishLocked(r *report.Report, now time.Time) {
	if report.StartsEpoch(m.epoch, r) {
		r.Base = r.Seq
		m.epoch = r
	} else {
		r.Base = m.epoch.Seq
	}
	m.own = r
	m.reports[r.Node] = Held{Report: r, Received: now}
	m.pending[r.Node] = m.pending[r.Node] || r.Base == r.Seq
}

// sendReport sends r: whole to every collector, and to one relay in every
// other column, compact when it can, at the protocol every live member
// reads.
func (m *Member) sendReport(r *report.Report, now time.Time) {
	m.mu.Lock()
	g := m.gridLocked(r.Seq)
	rs, cs := m.entryLocked(r.Node, false, now, nil, nil)
	proto := m.speakingLocked()
	m.mu.Unlock()
	whole := report.AppendReportAt([]byte{msgReport}, r, proto)
	if m.cfg.test.ablations.fanOut {
		g.collectors, g.relays = g.others, nil
	}
	for i := range g.collectors {
		// A failed send is repaired by the next report.
		_ = m.ml.SendBestEffort(&g.collectors[i], whole)
	}
	if len(g.relays) > 0 {
		msg := appendBatch(msgRelay, proto, rs, cs)
		for i := range g.relays {
			_ = m.ml.SendBestEffort(&g.relays[i], msg)
		}
	}
	m.reportsSent.Add(1)
}

// appendBatch encodes a relay (typ msgRelay) or column (msgBatch) batch as
// protocol speaks it: report.AppendBatch, or from protocol 2 a framed
// batch under the message type of protocol 2.
func appendBatch(typ byte, protocol int, rs []*report.Report, cs []report.Compact) []byte {
	if protocol < report.Protocol2 {
		return report.AppendBatch([]byte{typ}, rs, cs)
	}
	if typ == msgRelay {
		typ = msgRelay2
	} else {
		typ = msgBatch2
	}
	return report.AppendFramedBatch([]byte{typ}, rs, cs)
}

// relayLoop sends this member's batch to its column once per relay period.
// Collectors relay nothing.
func (m *Member) relayLoop() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		n := 0
		for name := range m.members {
			if meta := m.parseMetaLocked(m.members[name].Meta); !meta.Collector && meta.Relays {
				n++
			}
		}
		m.mu.Unlock()
		select {
		case <-m.stop:
			return
		case <-time.After(relayPeriod(m.cfg.Interval, n)):
		}
		m.relayOnce(time.Now())
	}
}

// relayOnce sends what this member holds for relaying to its column.
func (m *Member) relayOnce(now time.Time) {
	m.mu.Lock()
	if len(m.pending) == 0 || m.cfg.test.ablations.fanOut {
		clear(m.pending)
		m.mu.Unlock()
		return
	}
	g := m.gridLocked(0)
	var rs []*report.Report
	var cs []report.Compact
	for name, whole := range m.pending {
		rs, cs = m.entryLocked(name, whole, now, rs, cs)
	}
	clear(m.pending)
	proto := m.speakingLocked()
	m.mu.Unlock()
	if len(g.column) == 0 {
		return
	}
	for _, msg := range m.batches(proto, rs, cs) {
		for i := range g.column {
			_ = m.ml.SendBestEffort(&g.column[i], msg)
		}
	}
	m.batchesSent.Add(1)
}

// batches packs whole reports and compact entries into msgBatch messages
// (msgBatch2 from protocol 2) that each fit one UDP packet.
func (m *Member) batches(protocol int, rs []*report.Report, cs []report.Compact) [][]byte {
	limit := m.batchLimit()
	perCompact := compactBytes
	if protocol >= report.Protocol2 {
		limit -= report.FramedBatchBytes(0, 0)
		perCompact += report.FramedBatchBytes(0, 1) - report.FramedBatchBytes(0, 0)
	}
	var out [][]byte
	for len(rs)+len(cs) > 0 {
		size, nr, nc := 8, 0, 0
		for nr < len(rs) {
			s := len(report.AppendReportAt(nil, rs[nr], protocol))
			if size+s > limit && nr+nc > 0 {
				break
			}
			size += s
			nr++
		}
		for nc < len(cs) && size+perCompact <= limit {
			size += perCompact
			nc++
		}
		out = append(out, appendBatch(msgBatch, protocol, rs[:nr], cs[:nc]))
		rs, cs = rs[nr:], cs[nc:]
	}
	return out
}

// compactBytes bounds one encoded compact entry.
const compactBytes = 12

// batchLimit is the largest batch message that still fits one UDP packet
// with memberlist's framing, label and encryption.
func (m *Member) batchLimit() int {
	return max(m.udpBuffer-2-len(m.cfg.Label)-64, 256)
}

// applyBatch applies the whole reports and compact entries of a batch,
// asks for the epochs it misses, and returns the names it applied, with
// whether each came whole.
func (m *Member) applyBatch(rs []*report.Report, cs []report.Compact, now time.Time) map[string]bool {
	applied := map[string]bool{}
	for _, r := range rs {
		if m.apply(r, now) {
			applied[r.Node] = true
			m.received("applied")
		} else {
			m.received("old")
		}
	}
	var want []memberlist.Node
	m.mu.Lock()
	for _, c := range cs {
		name := m.nameOfLocked(c.ID)
		if name == "" || name == m.cfg.Name {
			m.received("old")
			continue
		}
		h := m.reports[name]
		sent := now.Add(-c.Age)
		var held *report.Report
		if h.Report != nil {
			held = h.Report
		}
		r, ok := c.Rebuild(held, sent.Sub(h.Received))
		if !ok {
			if n, live := m.members[name]; live && now.Sub(m.wanted[name]) >= wantEvery {
				m.wanted[name] = now
				want = append(want, n)
			}
			m.received("no_epoch")
			continue
		}
		if !r.Newer(held) {
			m.received("old")
			continue
		}
		r.Node = name
		m.reports[name] = Held{Report: r, Received: sent}
		if m.cfg.Applied != nil {
			m.cfg.Applied(r, sent)
		}
		if _, ok := applied[name]; !ok {
			applied[name] = false
		}
		m.received("applied")
	}
	m.mu.Unlock()
	if ml := m.listNow(); len(want) > 0 && ml != nil {
		msg := report.AppendName([]byte{msgWant}, m.cfg.Name)
		for i := range want {
			_ = ml.SendBestEffort(&want[i], msg)
		}
	}
	return applied
}

// answerWant sends this member's report whole to the member that asked,
// with its age: the asker dates it from when it was published, not from
// the answer, so a report repaired late does not seem to keep its node's
// promise longer than the node made it (see repairLoop).
func (m *Member) answerWant(from string) {
	m.mu.Lock()
	n, live := m.members[from]
	var own *report.Report
	if m.own != nil {
		r := *m.own
		r.Age = max(time.Since(m.reports[m.cfg.Name].Received), 0)
		own = &r
	}
	proto := m.speakingLocked()
	m.mu.Unlock()
	ml := m.listNow()
	if !live || own == nil || from == m.cfg.Name || ml == nil {
		return
	}
	_ = ml.SendBestEffort(&n, report.AppendReportAt([]byte{msgReport}, own, proto))
}
