package sim

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// epoch is the wall-clock time of simulated time 0 (snapshots, reports
// and the herd work with time.Time).
var epoch = time.Date(2026, time.January, 5, 8, 0, 0, 0, time.UTC)

// collector is the DNS server's view of the cluster: the latest report of
// every machine as gossip delivered it, turned into a real rank.Snapshot.
type collector struct {
	cfg      *Config
	nodes    []rank.NodeStatus // name, address, state; Report filled in
	received []time.Time
	index    map[string]int
	// observers see every report kept, as it arrives.
	observers []func(i int, r *report.Report, now time.Duration)
}

func machineName(i, n int) string {
	return fmt.Sprintf("lab%0*d", len(strconv.Itoa(n)), i+1)
}

func newCollector(cfg *Config, ms []*machine) *collector {
	c := &collector{cfg: cfg, index: make(map[string]int, len(ms))}
	for i, m := range ms {
		c.nodes = append(c.nodes, rank.NodeStatus{
			Name:  m.name,
			Addr4: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}),
			State: rank.StateAlive,
		})
		c.index[m.name] = i
	}
	c.received = make([]time.Time, len(ms))
	return c
}

// receive keeps r if it is newer than what is held, as the agent does.
func (c *collector) receive(i int, r *report.Report, now time.Duration) {
	if old := c.nodes[i].Report; old != nil && old.Seq >= r.Seq {
		return
	}
	c.nodes[i].Report = r
	c.received[i] = epoch.Add(now)
	for _, o := range c.observers {
		o(i, r, now)
	}
}

// snapshot is what the DNS server's agent would publish at now: every
// machine alive, a candidate while its report is younger than twice the
// lifetime it promised.
func (c *collector) snapshot(now time.Duration) *rank.Snapshot {
	t := epoch.Add(now)
	s := &rank.Snapshot{Built: t, Self: "dns", Score: c.cfg.Score, Nodes: make([]rank.NodeStatus, len(c.nodes))}
	for i, n := range c.nodes {
		n.Received = c.received[i]
		switch {
		case n.Report == nil:
			n.Reasons = []string{"no report yet"}
		case t.Sub(n.Received) > 2*n.Report.Lifetime:
			n.Reasons = []string{"stale report"}
		default:
			n.Score = rank.Score(n.Report.Load, c.cfg.Score, c.cfg.Score.By)
		}
		n.Candidate = len(n.Reasons) == 0
		s.Nodes[i] = n
	}
	return s
}

// indexes maps picked nodes back to machines.
func (c *collector) indexes(nodes []rank.NodeStatus) []int {
	out := make([]int, len(nodes))
	for i, n := range nodes {
		out[i] = c.index[n.Name]
	}
	return out
}
