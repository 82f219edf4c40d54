package rfc2136

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/rank"
)

// Policy is what the updater publishes for a name: the choice every
// integration makes, plus hysteresis.
type Policy struct {
	rank.Policy
	// Margin is the hysteresis: a node in the published set is replaced by
	// a better one only when the challenger's score is lower by more than
	// Margin. A node that stops being a candidate is replaced at once.
	Margin float64
}

// Decide returns the addresses name should hold at now given the cluster
// snapshot,
// the addresses it holds now (prev) and what fallback keep remembers
// (kept), and what to remember next. keep is true when nothing should be
// written: there is no snapshot yet, or a fallback other than none has
// nothing to hand out. An updater cannot tell its own isolation (or its
// start, before any report arrived) from an empty cluster, so only
// fallback none ever blanks the name.
//
// Selection is deterministic (best score, then name) so equal scores never
// flap, and sticky: the nodes behind prev stay while they are candidates
// and no outsider beats them by more than Margin.
func Decide(snap *rank.Snapshot, prev []netip.Addr, kept rank.Kept, p Policy, now time.Time) (addrs []netip.Addr, next rank.Kept, keep bool) {
	if snap == nil {
		return nil, kept, true
	}
	choice, next := p.Choose(snap, kept, now)
	if choice.Fallback && choice.Ranking.Len() == 0 && p.Fallback != rank.FallbackNone {
		return nil, next, true
	}
	top := max(p.Top, 1)
	cands := slices.Clone(choice.Ranking.Nodes)
	// Deterministic order: score, then name (Rank already sorts so; keep
	// it explicit because the fallback ranking is the same shape).
	slices.SortStableFunc(cands, func(a, b rank.NodeStatus) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})

	held := map[netip.Addr]bool{}
	for _, a := range sortedAddrs(prev) {
		held[a] = true
	}
	var members, others []rank.NodeStatus
	for _, n := range cands {
		if held[n.Addr4.Unmap()] || (n.Addr6.IsValid() && held[n.Addr6]) {
			members = append(members, n)
		} else if nodeAddrs(n) != nil {
			others = append(others, n)
		}
	}
	if len(members) > top {
		members = members[:top]
	}
	// Fill free places with the best outsiders.
	for len(members) < top && len(others) > 0 {
		members = append(members, others[0])
		others = others[1:]
	}
	// Swap the worst member for the best outsider while the outsider is
	// clearly better.
	for len(others) > 0 {
		worst := 0
		for i := range members {
			if members[i].Score > members[worst].Score {
				worst = i
			}
		}
		if members[worst].Score-others[0].Score <= p.Margin {
			break
		}
		members[worst], others = others[0], others[1:]
	}
	for _, n := range members {
		addrs = append(addrs, nodeAddrs(n)...)
	}
	return sortedAddrs(addrs), next, false
}

// heldNames are the names of snap's nodes behind addrs: the machines a
// name hands out.
func heldNames(snap *rank.Snapshot, addrs []netip.Addr) []string {
	var out []string
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if (n.Addr4.IsValid() && slices.Contains(addrs, n.Addr4.Unmap())) || (n.Addr6.IsValid() && slices.Contains(addrs, n.Addr6)) {
			out = append(out, n.Name)
		}
	}
	return out
}

// nodeAddrs is what DNS hands out for n.
func nodeAddrs(n rank.NodeStatus) []netip.Addr {
	var out []netip.Addr
	if n.Addr4.IsValid() {
		out = append(out, n.Addr4.Unmap())
	}
	if n.Addr6.IsValid() {
		out = append(out, n.Addr6)
	}
	return out
}

// RolePrefix starts every updater role tag.
const RolePrefix = "nsupdate:"

// Role is the tag an updater for name in zone carries in agent.Config.Roles
// (and so in its node meta): "nsupdate:<zone>/<name>", both fully
// qualified and lower case. It must be in the Config before agent.New.
func Role(zone, name string) string {
	return RolePrefix + dns.CanonicalName(zone) + "/" + dns.CanonicalName(name)
}

// Active reports whether self is the one updater that writes the name
// behind role: among the live members carrying role (self always counts),
// the one with the lowest name is active. Everyone else stays passive and
// takes over when that member leaves or is declared dead. A suspect member
// still counts, so a short network hiccup does not make two writers.
func Active(snap *rank.Snapshot, self, role string) bool {
	if snap == nil {
		return true
	}
	for _, n := range snap.Nodes {
		if n.Name == self || (n.State != rank.StateAlive && n.State != rank.StateSuspect) || !slices.Contains(n.Roles, role) {
			continue
		}
		if n.Name < self {
			return false
		}
	}
	return true
}
