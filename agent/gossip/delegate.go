package gossip

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// delegate is a member's memberlist.Delegate: it hands every user message
// to the part that handles it and carries the report table in push/pull.
// memberlist calls it from its packet and stream goroutines concurrently;
// no method blocks.
type delegate struct {
	meta     []byte
	table    *table
	roster   *roster
	probes   *prober
	relay    *relay
	wants    *wants
	greeter  *greeter
	counts   *counters
	received func(result string)
	onChange func()
	// periodic is what the periodic push/pull carries: table.ownState, or
	// table.allState under the fullPushPull ablation.
	periodic func(now time.Time) []*report.Report
}

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	if len(b) == 0 {
		d.received(resultInvalid)
		return
	}
	switch b[0] {
	case msgLeave:
		if name, err := report.DecodeName(b[1:]); err == nil && d.roster.goodbye(name) {
			d.onChange()
		}
	case msgReport:
		r, _, err := report.DecodeReport(b[1:])
		if err != nil {
			d.received(resultInvalid)
			return
		}
		d.counts.reportsReceived.Add(1)
		// A report straight from its node proves the node is up.
		wasSuspect := d.probes.heard(r.Node)
		applied := d.table.apply(r, time.Now())
		if applied {
			d.received(resultApplied)
		} else {
			d.received(resultOld)
		}
		if applied || wasSuspect {
			d.onChange()
		}
	case msgRelay, msgBatch, msgRelay2, msgBatch2:
		decode := report.DecodeBatch
		if b[0] == msgRelay2 || b[0] == msgBatch2 {
			decode = report.DecodeFramedBatch
		}
		// What decoded is applied even when a part did not.
		rs, cs, err := decode(b[1:])
		if err != nil {
			d.received(resultInvalid)
		}
		relayed := b[0] == msgRelay || b[0] == msgRelay2
		wasSuspect := false
		if relayed {
			// A report straight from its node proves the node is up.
			d.counts.reportsReceived.Add(1)
			wasSuspect = d.probes.heardBatch(rs, cs)
		}
		if d.relay.receive(rs, cs, relayed, time.Now()) || wasSuspect {
			d.onChange()
		}
	case msgWant:
		if name, err := report.DecodeName(b[1:]); err == nil {
			d.wants.answer(name)
		}
	case msgHello:
		name, rest, err := report.DecodeHello(b[1:])
		if err != nil {
			d.received(resultInvalid)
			return
		}
		d.greeter.hello(name, rest)
	default:
		// A later release's message type: it sends one only to members
		// that advertise its protocol, so this is a member that restarted
		// on an older release before its alive message spread.
		d.received(resultUnknown)
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends, when a member joins, every report this member holds,
// each with its age, so the newcomer ranks everyone at once; in the
// periodic push/pull only this member's own report, since reports reach
// every member within a relay period (relay.go) and a member that misses an
// epoch asks its node (msgWant).
func (d *delegate) LocalState(join bool) []byte {
	now := time.Now()
	var reports []*report.Report
	if join {
		reports = d.table.allState(now)
	} else {
		reports = d.periodic(now)
	}
	return report.AppendState([]byte{msgState}, reports)
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 || buf[0] != msgState {
		return
	}
	reports, err := report.DecodeState(buf[1:])
	if err != nil {
		d.received(resultInvalid)
	}
	now := time.Now()
	applied := false
	for _, r := range reports {
		if d.table.apply(r, now) {
			applied = true
		}
	}
	if applied {
		d.onChange()
	}
}

// eventDelegate keeps the roster, forgets the probe rounds of members that
// come and go, greets newcomers and tells the owner of changes. memberlist
// calls it with its state lock held: it must not block or call back into
// memberlist.
type eventDelegate struct {
	roster   *roster
	probes   *prober
	greeter  *greeter
	log      *slog.Logger
	onChange func()
}

func (e *eventDelegate) NotifyJoin(n *memberlist.Node) {
	if e.roster.joined(n) {
		e.log.Debug("a member that had failed is back", "member", n.Name)
	}
	e.probes.forget(n.Name)
	e.greeter.greet(n)
	e.onChange()
}

func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	e.roster.updated(n)
	e.onChange()
}

func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	e.probes.forget(n.Name)
	e.roster.left(n, time.Now())
	e.onChange()
}

// aliveDelegate keeps out a member whose name differs from a live
// member's only in case: DNS (and ssh) cannot tell lab01 from LAB01, so
// only the first one stays. As memberlist's MergeDelegate it fails the
// join of a member whose own name clashes, so the newcomer learns why.
// memberlist calls it with its state lock held: it must not block.
type aliveDelegate struct {
	self   string
	roster *roster
}

func (d *aliveDelegate) NotifyAlive(peer *memberlist.Node) error {
	if other := d.roster.caseTwin(peer.Name); other != "" {
		return fmt.Errorf("member %q differs from member %q only in case; names must differ as DNS names", peer.Name, other)
	}
	return nil
}

func (d *aliveDelegate) NotifyMerge(peers []*memberlist.Node) error {
	for _, p := range peers {
		if p.Name != d.self && strings.EqualFold(p.Name, d.self) {
			return fmt.Errorf("member %q already exists: this member's name %q differs only in case; names must differ as DNS names", p.Name, d.self)
		}
	}
	return nil
}

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*eventDelegate)(nil)
	_ memberlist.AliveDelegate = (*aliveDelegate)(nil)
	_ memberlist.MergeDelegate = (*aliveDelegate)(nil)
)
