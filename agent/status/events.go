package status

import (
	"slices"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// Kind says what happened in an Event.
type Kind string

// Kinds the recorder derives from consecutive snapshots, and the kinds
// collectors record from outside (Recorder.Record).
const (
	Joined         Kind = "joined"
	Left           Kind = "left"
	Dead           Kind = "dead"
	Suspect        Kind = "suspect"
	Alive          Kind = "alive"
	Drained        Kind = "drained"
	Undrained      Kind = "undrained"
	CheckFailing   Kind = "check-failing"
	CheckRecovered Kind = "check-recovered"
	// UpdateFailed is an RFC 2136 update (or resync) the DNS server
	// refused or did not answer; UpdateRecovered is the first success
	// after failures.
	UpdateFailed    Kind = "update-failed"
	UpdateRecovered Kind = "update-recovered"
)

// Event is one thing that happened in the cluster, as seen by this member.
type Event struct {
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Node is the machine it happened to, empty for the cluster or a
	// collector's own events.
	Node string `json:"node,omitempty"`
	// Text says more in one line: a check's reason, a server's answer.
	Text string `json:"text,omitempty"`
}

// Bad reports whether the event takes something away (a machine, a
// check, an update), for the page's colours.
func (e Event) Bad() bool {
	switch e.Kind {
	case Left, Dead, Suspect, Drained, CheckFailing, UpdateFailed:
		return true
	}
	return false
}

// eventLog keeps the newest cap events in a ring.
type eventLog struct {
	evs  []Event
	next int // where the next event goes once full
}

func (l *eventLog) add(e Event, limit int) {
	if len(l.evs) < limit {
		l.evs = append(l.evs, e)
		return
	}
	l.evs[l.next] = e
	l.next = (l.next + 1) % limit
}

// newest returns up to n events, newest first (all when n <= 0).
func (l *eventLog) newest(n int) []Event {
	if n <= 0 || n > len(l.evs) {
		n = len(l.evs)
	}
	out := make([]Event, 0, n)
	for i := 0; i < n; i++ {
		j := (l.next - 1 - i + 2*len(l.evs)) % len(l.evs)
		out = append(out, l.evs[j])
	}
	return out
}

// drainCheck is the name of the agent's drain check (agent/checks.go):
// its failing and recovering are Drained and Undrained.
const drainCheck = "drain"

// nodeState is what the event diff remembers of a machine between two
// snapshots.
type nodeState struct {
	state   string
	failing []report.CheckResult // by name, from the latest report
}

func stateOf(n *rank.NodeStatus) nodeState {
	ns := nodeState{state: n.State}
	if n.Report != nil {
		ns.failing = slices.Clone(n.Report.Failing)
		slices.SortFunc(ns.failing, func(a, b report.CheckResult) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
	}
	return ns
}

// diff appends the events that lead from prev to cur for node name at t.
// A first sighting (prev nil) is a join; failing checks of a joining
// machine are reported too, so a machine that arrives drained says so.
func diff(out []Event, t time.Time, name string, prev *nodeState, cur nodeState) []Event {
	ev := func(k Kind, text string) { out = append(out, Event{Time: t, Kind: k, Node: name, Text: text}) }
	var was nodeState
	if prev == nil {
		ev(Joined, "")
		was = nodeState{state: rank.StateAlive}
	} else {
		was = *prev
	}
	if cur.state != was.state {
		switch cur.state {
		case rank.StateAlive:
			if prev != nil {
				ev(Alive, "was "+was.state)
			}
		case rank.StateSuspect:
			ev(Suspect, "misses probes")
		case rank.StateDead:
			ev(Dead, "")
		case rank.StateLeft:
			ev(Left, "")
		}
	}
	// Both lists are sorted by name: walk them together.
	i, j := 0, 0
	for i < len(was.failing) || j < len(cur.failing) {
		switch {
		case j == len(cur.failing) || (i < len(was.failing) && was.failing[i].Name < cur.failing[j].Name):
			c := was.failing[i]
			if c.Name == drainCheck {
				ev(Undrained, "")
			} else {
				ev(CheckRecovered, c.Name)
			}
			i++
		case i == len(was.failing) || cur.failing[j].Name < was.failing[i].Name:
			c := cur.failing[j]
			if c.Name == drainCheck {
				ev(Drained, strings.TrimPrefix(c.Reason, "drained: "))
			} else {
				ev(CheckFailing, c.Name+": "+c.Reason)
			}
			j++
		default: // failing before and now; a new reason is no event
			i++
			j++
		}
	}
	return out
}
