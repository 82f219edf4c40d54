package rank

import (
	"fmt"
	"slices"
	"time"

	"github.com/peerload/peerload/agent/herd"
)

// Fallback says what an integration hands out when no machine of its pool
// is a candidate.
type Fallback string

const (
	// FallbackKeep hands out the machines of the last live selection that
	// may come back: those since found dead, suspect or with a stale report
	// (a partition, a crashed agent), never those that left, were drained
	// or fail a check. With none left, nothing is handed out. Default.
	FallbackKeep Fallback = "keep"
	// FallbackAll hands out every alive member, ignoring load and checks.
	FallbackAll Fallback = "all"
	// FallbackNone hands out nothing.
	FallbackNone Fallback = "none"
)

// ParseFallback turns a flag or Corefile value into a Fallback.
func ParseFallback(s string) (Fallback, error) {
	switch Fallback(s) {
	case FallbackKeep, FallbackAll, FallbackNone:
		return Fallback(s), nil
	case "":
		return FallbackKeep, nil
	}
	return "", fmt.Errorf("unknown fallback %q (want keep, all or none)", s)
}

// ParseHerd turns a flag or property value (on, off; "" for the default,
// on) into whether a Policy counts its hand-outs in a Herd.
func ParseHerd(s string) (bool, error) {
	switch s {
	case "on", "":
		return true, nil
	case "off":
		return false, nil
	}
	return false, fmt.Errorf("herd: %q is neither on nor off", s)
}

// Policy is how every integration (the CoreDNS plugin, the RFC 2136
// updater, the Caddy modules) chooses machines from a snapshot, so that
// they all hand out the same ones.
type Policy struct {
	// Pool restricts the choice to one pool ("" for all machines).
	Pool string
	// By is the ranking ("" for the snapshot's default).
	By By
	// Top is how many machines a full answer holds (at least 1).
	Top int
	// Fallback says what to hand out when no machine is a candidate.
	Fallback Fallback
	// Herd, when set, is what the policy's user handed out (it records
	// every answer with Herd.Handed or Herd.HandedOut): Choose adds to each
	// machine's load what its report cannot show yet of those hand-outs,
	// so a burst of logins spreads instead of landing on the machines that
	// looked best a moment ago. nil ranks on the reports alone.
	Herd *herd.Herd
}

// Choice is what a Policy chose from one snapshot.
type Choice struct {
	// Ranking holds every chosen machine best first, in groups of equal
	// score; take the first Top with Pick (ties shuffled) or in order.
	Ranking *Ranking
	// Fallback is true when no machine was a candidate and Ranking comes
	// from the policy's fallback.
	Fallback bool
}

// Kept is what FallbackKeep remembers between two choices: the last live
// choice's top machines as they were then. The zero value remembers
// nothing. Callers store the Kept a Choose returns and hand it to the next
// one; it is immutable.
type Kept []NodeStatus

// Choose ranks snap's candidates under p at now (the time the herd's
// hand-outs are seen from). With none, it applies the fallback, using kept
// for FallbackKeep. It returns what to keep for the next call.
func (p Policy) Choose(snap *Snapshot, kept Kept, now time.Time) (Choice, Kept) {
	if p.Herd != nil {
		snap = withHerd(snap, p.Herd, now)
	}
	live := snap.Rank(p.Pool, p.By)
	if live.Len() > 0 {
		return Choice{Ranking: live}, p.keep(snap, live, kept)
	}
	switch p.Fallback {
	case FallbackAll:
		return Choice{Ranking: snap.Alive(p.Pool, p.By), Fallback: true}, kept
	case FallbackNone:
		return Choice{Ranking: &Ranking{}, Fallback: true}, kept
	}
	// A kept machine the snapshot forgot (dead long enough) is handed out
	// as it was last seen: a collector cut off from the whole cluster keeps
	// answering with the machines it knew.
	var nodes []NodeStatus
	for _, k := range kept {
		n := snap.Node(k.Name)
		if n == nil {
			n = &k
		}
		if mayReturn(n) && n.InPool(p.Pool) {
			nodes = append(nodes, *n)
		}
	}
	return Choice{Ranking: snap.ranking(nodes, p.By), Fallback: true}, kept
}

// keep is the live choice's top machines, followed by the machines kept
// before that dropped out without leaving on purpose (they may be back
// soon, and a partition can take every machine out of a collector's view
// at once), Top names at most.
func (p Policy) keep(snap *Snapshot, live *Ranking, kept Kept) Kept {
	top := max(p.Top, 1)
	next := make(Kept, 0, top)
	next = append(next, live.Nodes[:min(top, live.Len())]...)
	for _, k := range kept {
		if len(next) >= top {
			break
		}
		if slices.ContainsFunc(next, func(x NodeStatus) bool { return x.Name == k.Name }) {
			continue
		}
		switch n := snap.Node(k.Name); {
		case n == nil: // forgotten by now: as last seen
			next = append(next, k)
		case !n.Candidate && mayReturn(n):
			next = append(next, *n)
		}
	}
	return next
}

// mayReturn reports whether a machine that is no candidate is out only by
// accident (dead, suspect, stale), not because it left, was drained or
// fails a check.
func mayReturn(n *NodeStatus) bool {
	return !n.Collector && n.State != StateLeft && (n.Report == nil || len(n.Report.Failing) == 0)
}

// withHerd returns a copy of s in which every node with a report carries
// in HerdLoad the load h.Extra says its report misses, which Rank adds to
// the report's load1, so that it scores, groups and orders the nodes as if
// their reports had caught up. s itself is not modified. Ranking by
// memory ignores the extra load, which is CPU.
func withHerd(s *Snapshot, h *herd.Herd, now time.Time) *Snapshot {
	out := *s
	out.Nodes = slices.Clone(s.Nodes)
	for i := range out.Nodes {
		if n := &out.Nodes[i]; n.Report != nil {
			n.HerdLoad = h.Extra(n.Name, n.Received, now)
		}
	}
	return &out
}
