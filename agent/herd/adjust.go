package herd

import (
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// Adjust returns a copy of s in which every node with a report carries the
// load Extra says its report misses, added to Load1, so that s.Rank scores,
// groups and orders the nodes as if their reports had caught up. Nodes the
// Herd never handed out share their report with s; s itself is not
// modified. Ranking by memory ignores the extra load, which is CPU.
func (h *Herd) Adjust(s *rank.Snapshot, now time.Time) *rank.Snapshot {
	out := *s
	out.Nodes = make([]rank.NodeStatus, len(s.Nodes))
	copy(out.Nodes, s.Nodes)
	for i := range out.Nodes {
		n := &out.Nodes[i]
		if n.Report == nil {
			continue
		}
		e := h.Extra(n.Name, n.Received, now)
		if e == 0 {
			continue
		}
		r := *n.Report
		r.Load.Load1 += e
		n.Report = &r
		n.Score = rank.Score(r.Load, s.Score, s.Score.By)
	}
	return &out
}
