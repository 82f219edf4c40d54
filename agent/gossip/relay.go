package gossip

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/bits"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// How reports travel. Collectors (DNS servers, updaters, proxies) answer
// users, so every report goes straight to each of them the moment it is
// taken: one hop, one packet per collector, as a compact entry while it
// continues an epoch. Agents need the table
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
// Entries travel compact (report.Compact) when the receiver can hold their
// epoch, whole when they begin one. A receiver that meets an epoch it
// missed asks the node for its report (msgWant), at most once per
// wantEvery.

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
// sampling interval times log2(n)/3.75, from one to three intervals,
// trading an agent's freshness for bytes as the cluster grows. A sample
// reaches the last agent about one period after it was taken.
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

// relay spreads this member's reports through the grid and relays what
// reaches it to its column. publish is called from Publish, receive from
// memberlist's packet goroutines, concurrently, and neither blocks; loop
// runs in its own goroutine.
type relay struct {
	self     string
	interval time.Duration
	table    *table
	roster   *roster
	wants    *wants
	list     *lazyList
	received func(result string)
	counts   *counters
	// columns is how many columns the agents form: columns, or one under
	// the oneColumn ablation.
	columns func(agents int) int
	// compactID is the node ID a node's compact entries go under and
	// whether they may: roster.id, or never under the whole ablation.
	compactID func(name string) (uint32, bool)
	// batchLimit is the largest batch message that still fits one UDP
	// packet with memberlist's framing, label and encryption.
	batchLimit int
	// column is whether this member relays to a column: an agent's does,
	// a collector's only receives.
	column bool

	mu sync.Mutex
	// pending are the nodes whose latest report goes in the next batch to
	// this member's column, true when it must go whole.
	pending map[string]bool
}

// wholeOnly is relay.compactID under the whole ablation.
func wholeOnly(string) (uint32, bool) { return 0, false }

// oneColumn is relay.columns under the oneColumn ablation.
func oneColumn(int) int { return 1 }

// batchLimit is relay.batchLimit for memberlist's UDP buffer size and the
// cluster label.
func batchLimit(udpBuffer int, label string) int {
	return max(udpBuffer-2-len(label)-64, 256)
}

// grid is what a member needs to send one report: the collectors, the
// members of builds before the relay grid (unaware of it), its relays
// (one per other column) and, for the relay period, its column.
type grid struct {
	collectors []memberlist.Node
	unaware    []memberlist.Node
	relays     []memberlist.Node
	column     []memberlist.Node
}

// grid lays the live members out for a report with sequence number seq.
func (l *relay) grid(seq uint64) grid {
	var g grid
	var agents []memberlist.Node
	g.collectors, g.unaware, agents = l.roster.roles()
	c := l.columns(len(agents))
	own := column(l.self, c)
	best := make([]*memberlist.Node, c)
	score := make([]uint64, c)
	for i := range agents {
		n := &agents[i]
		if n.Name == l.self {
			continue
		}
		col := column(n.Name, c)
		if col == own {
			g.column = append(g.column, *n)
			continue
		}
		if s := rendezvous(l.self, n.Name, seq/relayRotation); best[col] == nil || s > score[col] {
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

// entry adds the report held for name to a batch: compact when it
// continues an epoch and its ID is unambiguous, whole otherwise (or when
// whole is set).
func (l *relay) entry(name string, whole bool, now time.Time, rs []*report.Report, cs []report.Compact) ([]*report.Report, []report.Compact) {
	id, compact := l.compactID(name)
	return l.table.entry(name, id, compact && !whole, now, rs, cs)
}

// publish sends r, this member's report just published, to every
// collector and to one relay in every other column, in one relay message
// at the protocol every live member reads: a compact entry when r
// continues an epoch, whole when it begins one. Every field a collector
// ranks by either travels in the entry or begins an epoch when it changes
// (report.StartsEpoch), so a collector that holds the epoch rebuilds the
// report exactly, and one that missed it asks (msgWant), as an agent does.
// r goes in this member's next batch to its column, whole when it begins
// an epoch.
func (l *relay) publish(r *report.Report, begins bool, now time.Time) {
	l.mu.Lock()
	l.pending[r.Node] = l.pending[r.Node] || begins
	l.mu.Unlock()
	g := l.grid(r.Seq)
	rs, cs := l.entry(r.Node, false, now, nil, nil)
	proto := l.roster.speaking()
	msg := appendBatch(msgRelay, proto, rs, cs)
	ml := l.list.wait()
	// A failed send is repaired by the next report, or by the repairer of
	// a collector that waits past r's lifetime.
	for i := range g.collectors {
		_ = send(ml, &g.collectors[i], kindReport, msg)
	}
	for i := range g.relays {
		_ = send(ml, &g.relays[i], kindRelay, msg)
	}
	if len(g.unaware) > 0 {
		whole := report.AppendReportAt([]byte{msgReport}, r, proto)
		for i := range g.unaware {
			_ = send(ml, &g.unaware[i], kindReport, whole)
		}
	}
	l.counts.reportsSent.Add(1)
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

// loop sends this member's batch to its column once per relay period
// until stop is closed. Collectors relay nothing and do not run it.
func (l *relay) loop(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(relayPeriod(l.interval, l.roster.agents())):
		}
		l.once(time.Now())
	}
}

// once sends what this member holds for relaying to its column.
func (l *relay) once(now time.Time) {
	l.mu.Lock()
	pending := l.pending
	if len(pending) == 0 {
		l.mu.Unlock()
		return
	}
	l.pending = make(map[string]bool, len(pending))
	l.mu.Unlock()
	g := l.grid(0)
	var rs []*report.Report
	var cs []report.Compact
	for name, whole := range pending {
		rs, cs = l.entry(name, whole, now, rs, cs)
	}
	proto := l.roster.speaking()
	if len(g.column) == 0 {
		return
	}
	ml := l.list.wait()
	for _, msg := range l.batches(proto, rs, cs) {
		for i := range g.column {
			_ = send(ml, &g.column[i], kindRelay, msg)
		}
	}
	l.counts.batchesSent.Add(1)
}

// batches packs whole reports and compact entries into msgBatch messages
// (msgBatch2 from protocol 2) that each fit one UDP packet.
func (l *relay) batches(protocol int, rs []*report.Report, cs []report.Compact) [][]byte {
	limit := l.batchLimit
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

// receive applies a batch's whole reports and compact entries, asks for
// the epochs it misses, and reports whether it applied any. What a relay
// sent (relayed) goes in an agent's next batch to its column, whole when
// it came whole.
func (l *relay) receive(rs []*report.Report, cs []report.Compact, relayed bool, now time.Time) bool {
	applied := map[string]bool{}
	for _, r := range rs {
		if l.table.apply(r, now) {
			applied[r.Node] = true
			l.received(resultApplied)
		} else {
			l.received(resultOld)
		}
	}
	var want []memberlist.Node
	for _, c := range cs {
		name := l.roster.nameOf(c.ID)
		if name == "" || name == l.self {
			l.received(resultOld)
			continue
		}
		result := l.table.applyCompact(name, c, now)
		switch result {
		case resultNoEpoch:
			if n, live := l.roster.node(name); live && l.wants.due(name, now, wantEvery) {
				want = append(want, n)
			}
		case resultApplied:
			if _, ok := applied[name]; !ok {
				applied[name] = false
			}
		}
		l.received(result)
	}
	l.wants.ask(want)
	if len(applied) == 0 {
		return false
	}
	if relayed && l.column {
		l.mu.Lock()
		for name, whole := range applied {
			l.pending[name] = l.pending[name] || whole
		}
		l.mu.Unlock()
	}
	return true
}
