package agent

import (
	"encoding/binary"
	"log"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// delegate is the memberlist.Delegate of an Agent. memberlist calls it
// from its packet and stream goroutines concurrently; no method blocks.
type delegate Agent

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	a := (*Agent)(d)
	if len(b) > 0 && b[0] == msgLeave {
		dec := decoder{b: b[1:]}
		if name := dec.string(maxNameBytes); dec.err == nil {
			a.mu.Lock()
			a.leaving[name] = true
			a.mu.Unlock()
		}
		return
	}
	if len(b) == 0 || b[0] != msgReport {
		a.metrics.received("invalid")
		return
	}
	r, _, err := DecodeReport(b[1:])
	if err != nil {
		a.metrics.received("invalid")
		return
	}
	a.reportsReceived.Add(1)
	// A report straight from its node proves the node is up.
	a.mu.Lock()
	wasSuspect := a.missed[r.Node] >= probeMisses
	delete(a.missed, r.Node)
	a.mu.Unlock()
	if wasSuspect {
		a.kick()
	}
	if a.apply(r, time.Now()) {
		a.metrics.received("applied")
		a.kick()
	} else {
		a.metrics.received("old")
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends every report this member holds, each with its age, so
// a member that missed a fan-out packet or just joined catches up.
func (d *delegate) LocalState(join bool) []byte {
	a := (*Agent)(d)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := []byte{msgState}
	b = binary.AppendUvarint(b, uint64(len(a.reports)))
	for _, h := range a.reports {
		r := *h.r
		r.Age = max(now.Sub(h.received), 0)
		b = AppendReport(b, &r)
	}
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	a := (*Agent)(d)
	if len(buf) == 0 || buf[0] != msgState {
		return
	}
	dec := decoder{b: buf[1:]}
	n := dec.uvarintMax(1 << 20)
	if dec.err != nil {
		return
	}
	rest := dec.b
	now := time.Now()
	applied := false
	for i := uint64(0); i < n; i++ {
		r, next, err := DecodeReport(rest)
		if err != nil {
			a.metrics.received("invalid")
			break
		}
		rest = next
		if a.apply(r, now) {
			applied = true
		}
	}
	if applied {
		a.kick()
	}
}

// eventDelegate turns membership events into snapshot rebuilds. memberlist
// calls it with its state lock held: it must not call back into memberlist.
type eventDelegate Agent

func (e *eventDelegate) NotifyJoin(n *memberlist.Node) {
	a := (*Agent)(e)
	a.mu.Lock()
	a.setMember(n)
	delete(a.leaving, n.Name)
	delete(a.missed, n.Name)
	last := a.lastSent
	a.mu.Unlock()
	if last != nil && n.Name != a.cfg.Name {
		// Greet a new member with this node's report at once, instead of
		// leaving it to wait for the next change or refresh. memberlist
		// holds its state lock here, so send from another goroutine.
		to, msg := *n, AppendReport([]byte{msgReport}, last)
		go func() { _ = a.ml.SendBestEffort(&to, msg) }()
	}
	a.kick()
}

func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	a := (*Agent)(e)
	a.mu.Lock()
	a.setMember(n)
	a.mu.Unlock()
	a.kick()
}

func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	a := (*Agent)(e)
	// memberlist's Node.State is not kept up to date; the goodbye message
	// tells a graceful leave from a failure.
	a.mu.Lock()
	state := StateDead
	if a.leaving[n.Name] {
		state = StateLeft
	}
	delete(a.leaving, n.Name)
	delete(a.missed, n.Name)
	delete(a.members, n.Name)
	a.gone[n.Name] = goneNode{state: state, at: time.Now(), node: *n, parsed: a.parseMeta(n.Meta)}
	a.mu.Unlock()
	a.kick()
}

// setMember stores a copy of n, taken while memberlist holds its state
// lock (the event delegate's calls). memberlist.Members hands out pointers
// into that state, which memberlist rewrites (Addr, Port, Meta, State)
// when an alive message arrives: reading them later races. a.mu must be
// held.
func (a *Agent) setMember(n *memberlist.Node) {
	if a.members == nil {
		a.members = make(map[string]memberlist.Node)
	}
	a.members[n.Name] = *n
}

// memberCopies returns copies of the live members (what
// memberlist.Members lists), safe to read without memberlist's lock.
func (a *Agent) memberCopies() []memberlist.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]memberlist.Node, 0, len(a.members))
	for _, n := range a.members {
		out = append(out, n)
	}
	return out
}

// debugFilter drops memberlist's [DEBUG] lines, which report every stream
// and probe.
type debugFilter struct{ l *log.Logger }

func (f debugFilter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "[DEBUG]") {
		return len(p), nil
	}
	f.l.Print(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
