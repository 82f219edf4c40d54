package agent

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/rank"
)

// rebuildLoop publishes a new snapshot when reports, membership or probe
// results change (they kick it), and every half interval so that stale
// reports leave the candidates promptly. An agent (not a collector)
// rebuilds at most every quarter interval: its table feeds top, ssh and
// hostfile, which a few hundred milliseconds do not hurt, while batches
// arrive several times a second in a large cluster. Collectors answer
// users and rebuild on every change.
func (a *Agent) rebuildLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Interval / 2)
	defer t.Stop()
	var gap time.Duration
	if !a.cfg.Collector {
		gap = a.cfg.Interval / 4
	}
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		case <-a.rebuild:
		}
		a.publish(time.Now())
		if gap > 0 {
			select {
			case <-a.stop:
				return
			case <-time.After(gap):
			}
		}
	}
}

// publish builds and stores a snapshot, and tells subscribers when it
// differs from the last one they heard of.
func (a *Agent) publish(now time.Time) {
	s := a.build(now)
	a.snap.Store(s)
	a.metrics.observeSnapshot(s)
	h := fnv.New64a()
	var buf []byte
	for i := range s.Nodes {
		n := &s.Nodes[i]
		buf = append(buf[:0], n.Name...)
		buf = append(buf, 0)
		buf = append(buf, n.State...)
		buf = strconv.AppendBool(buf, n.Candidate)
		for _, r := range n.Reasons {
			buf = append(buf, r...)
			buf = append(buf, 0)
		}
		if n.Report != nil {
			buf = binary.AppendUvarint(buf, n.Report.Generation)
			buf = binary.AppendUvarint(buf, n.Report.Seq)
		}
		h.Write(buf)
	}
	fp := h.Sum64()
	a.mu.Lock()
	changed := fp != a.fingerprint
	a.fingerprint = fp
	a.mu.Unlock()
	if !changed {
		return
	}
	a.subsMu.Lock()
	for _, ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	a.subsMu.Unlock()
}

// build ranks what the member knows into a snapshot.
func (a *Agent) build(now time.Time) *rank.Snapshot {
	a.mu.Lock()
	score := a.score
	a.mu.Unlock()
	stale := func(h gossip.Held) bool { return now.Sub(h.Received) > a.cfg.staleAfter(h.Report) }
	v := a.member.View(now, a.cfg.ForgetAfter, stale)
	s := &rank.Snapshot{Built: now, Self: a.cfg.Name, Score: score}
	add := func(n *gossip.Node, state string) {
		m := n.Meta
		ns := rank.NodeStatus{
			Name:      n.Name,
			Addr4:     m.Addr4,
			Addr6:     m.Addr6,
			Gossip:    n.Gossip,
			State:     state,
			Collector: m.Collector,
			Pools:     m.Pools,
			Roles:     m.Roles,
			HostKeys:  m.HostKeys,
		}
		if h, ok := v.Reports[n.Name]; ok {
			ns.Report, ns.Received = h.Report, h.Received
			ns.Score = rank.Score(h.Report.Load, score, score.By)
		}
		switch {
		case m.Collector:
			ns.Reasons = append(ns.Reasons, "collector")
		case state != rank.StateAlive:
			ns.Reasons = append(ns.Reasons, state)
		case ns.Report == nil:
			ns.Reasons = append(ns.Reasons, "no report yet")
		case stale(gossip.Held{Report: ns.Report, Received: ns.Received}):
			ns.Reasons = append(ns.Reasons, fmt.Sprintf("stale report (%s old)", now.Sub(ns.Received).Round(time.Second)))
		}
		if ns.Report != nil && !m.Collector {
			for _, f := range ns.Report.Failing {
				ns.Reasons = append(ns.Reasons, f.Name+": "+f.Reason)
			}
		}
		ns.Candidate = len(ns.Reasons) == 0
		s.Nodes = append(s.Nodes, ns)
	}
	for i := range v.Members {
		state := rank.StateAlive
		if v.Members[i].Suspect {
			state = rank.StateSuspect
		}
		add(&v.Members[i], state)
	}
	for i := range v.Gone {
		add(&v.Gone[i].Node, v.Gone[i].State)
	}
	slices.SortFunc(s.Nodes, func(x, y rank.NodeStatus) int { return strings.Compare(x.Name, y.Name) })
	a.warnSharedAddrs(s)
	return s
}

// warnSharedAddrs logs, once per address and set of machines, when live
// machines advertise one address (a cloned image, a typo in --advertise):
// answers hand the address out once, for the better machine only.
func (a *Agent) warnSharedAddrs(s *rank.Snapshot) {
	by := map[netip.Addr][]string{}
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if n.Collector || n.State == rank.StateDead || n.State == rank.StateLeft {
			continue
		}
		for _, ip := range []netip.Addr{n.Addr4, n.Addr6} {
			if ip.IsValid() {
				by[ip] = append(by[ip], n.Name)
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for ip, names := range by {
		key := ip.String() + " " + strings.Join(names, ",")
		if len(names) > 1 && !a.warned[key] {
			a.warned[key] = true
			a.log.Warn("machines advertise the same address; answers hand it out once", "addr", ip, "machines", strings.Join(names, ", "))
		}
	}
}
