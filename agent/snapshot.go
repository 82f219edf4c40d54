package agent

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// rebuildLoop publishes a new snapshot when reports, membership or probe
// results change (they kick it), and every half interval so that stale
// reports leave the candidates promptly.
func (a *Agent) rebuildLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Interval / 2)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		case <-a.rebuild:
		}
		a.publish(time.Now())
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

func (a *Agent) build(now time.Time) *Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	members := a.members
	s := &Snapshot{Built: now, Self: a.cfg.Name, Score: a.score}
	seen := make(map[string]bool, len(members))
	add := func(n *memberlist.Node, state string, m nodeMeta) {
		seen[n.Name] = true
		ns := NodeStatus{
			Name:      n.Name,
			Addr4:     m.Addr4,
			Addr6:     m.Addr6,
			Gossip:    net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
			State:     state,
			Collector: m.Collector,
			Pools:     m.Pools,
			Roles:     m.Roles,
		}
		if h, ok := a.reports[n.Name]; ok {
			ns.Report, ns.Received = h.r, h.received
			ns.Score = Score(h.r.Load, a.score, a.score.By)
		}
		switch {
		case m.Collector:
			ns.Reasons = append(ns.Reasons, "collector")
		case state != StateAlive:
			ns.Reasons = append(ns.Reasons, state)
		case ns.Report == nil:
			ns.Reasons = append(ns.Reasons, "no report yet")
		case now.Sub(ns.Received) > a.cfg.StaleAfter:
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
	for _, n := range members {
		// memberlist does not expose its suspect state; ours comes from
		// probeLoop's pings.
		state := StateAlive
		if a.missed[n.Name] >= probeMisses {
			state = StateSuspect
		}
		delete(a.gone, n.Name)
		add(&n, state, a.parseMeta(n.Meta))
	}
	for name, g := range a.gone {
		if now.Sub(g.at) > a.cfg.StaleAfter {
			delete(a.gone, name)
			delete(a.reports, name)
			continue
		}
		if !seen[name] {
			add(&g.node, g.state, g.parsed)
		}
	}
	for name, h := range a.reports {
		// A report can arrive before gossip tells this member that its
		// node joined: keep it until it is stale, then forget it.
		if !seen[name] && name != a.cfg.Name && now.Sub(h.received) > a.cfg.StaleAfter {
			delete(a.reports, name)
		}
	}
	slices.SortFunc(s.Nodes, func(x, y NodeStatus) int { return strings.Compare(x.Name, y.Name) })
	return s
}
