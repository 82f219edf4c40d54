package rank

import (
	"cmp"
	"fmt"
	"github.com/peerload/peerload/agent/report"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// By selects what a ranking sorts on.
type By string

const (
	ByCombined By = "combined"
	ByCPU      By = "cpu"
	ByMem      By = "mem"
)

// ParseBy turns a flag value into a By.
func ParseBy(s string) (By, error) {
	switch By(s) {
	case ByCombined, ByCPU, ByMem:
		return By(s), nil
	case "":
		return ByCombined, nil
	}
	return "", fmt.Errorf("unknown ranking %q (want cpu, mem or combined)", s)
}

// ScoreConfig weighs the parts of the combined score; see Score.
type ScoreConfig struct {
	By        By
	CPUWeight float64
	MemWeight float64
	// UserWeight is added per distinct logged-in user, so a machine with
	// people on it is a little less attractive at equal load.
	UserWeight float64
	// Delta: scores closer than this are equal and come out in random
	// order, so repeated picks spread across equally good nodes.
	Delta float64
}

// DefaultScoreConfig is the documented default score.
func DefaultScoreConfig() ScoreConfig {
	return ScoreConfig{By: ByCombined, CPUWeight: 1, MemWeight: 0.5, UserWeight: 0.02, Delta: 0.05}
}

// Score turns a load into a number; lower is better. The combined default
// (in the spirit of smarterSSH's combined order and CERN lbclient's formula):
//
//	CPUWeight·load1/cpus + MemWeight·MemUsed + UserWeight·users
//
// ByCPU uses only the CPU term (run queue per core). ByMem ranks by free
// memory, most first, as smarterSSH -m does: the score is minus the
// available memory in GiB (a machine with 12 GiB free scores -12), so
// Delta is in GiB there. Before, ByMem sorted by the share of memory in
// use, which put a small idle machine ahead of a big busy one with more
// memory free.
func Score(l report.Load, c ScoreConfig, by By) float64 {
	cpus := float64(max(l.CPUs, 1))
	cpu := l.Load1 / cpus
	switch by {
	case ByCPU:
		return cpu
	case ByMem:
		return -float64(l.MemAvailable) / (1 << 30)
	}
	return c.CPUWeight*cpu + c.MemWeight*MemUsed(l) + c.UserWeight*float64(l.Users)
}

// MemUsed is the combined score's memory term: the share of memory in
// use, 0 to 1 (0 when the total is unknown).
func MemUsed(l report.Load) float64 { return 1 - l.MemAvailableFraction() }

// Member states as shown in NodeStatus.State.
const (
	StateAlive   = "alive"
	StateSuspect = "suspect"
	StateDead    = "dead"
	StateLeft    = "left"
)

// NodeStatus is everything known about one member at snapshot time.
type NodeStatus struct {
	Name      string
	Addr4     netip.Addr
	Addr6     netip.Addr
	Gossip    string // ip:port of the gossip endpoint
	State     string
	Collector bool
	Pools     []string
	Roles     []string
	// HostKeys are the machine's ssh host public keys as gossiped
	// (agent/hostkeys encoding), nil when it has none.
	HostKeys []byte
	// Report is the latest report, nil before the first one arrived.
	Report *report.Report
	// Received is when Report arrived here, minus its Age on arrival.
	Received time.Time
	// Score is the node's score under the snapshot's ScoreConfig.
	Score float64
	// HerdLoad is the load a Policy's Herd expects on top of the report's
	// load1 (what was handed out that the report cannot show yet); Score
	// counts it. 0 without a herd.
	HerdLoad float64
	// Candidate is true when the node may be handed out; Reasons says why
	// not otherwise ("suspect", "stale report", "drain: ...", ...).
	Candidate bool
	Reasons   []string
}

// Age is how old the node's report is at t.
func (n *NodeStatus) Age(t time.Time) time.Duration {
	if n.Report == nil {
		return -1
	}
	return t.Sub(n.Received)
}

// InPool reports whether the node is tagged with pool ("" matches all).
func (n *NodeStatus) InPool(pool string) bool {
	return pool == "" || slices.Contains(n.Pools, pool)
}

// Snapshot is an immutable view of the cluster. Agents publish a new one
// whenever reports or membership change and on every sampling interval;
// readers never lock anything shared with gossip.
type Snapshot struct {
	Built time.Time
	Self  string
	Score ScoreConfig
	// Nodes holds every known member sorted by name. Never modify it.
	Nodes []NodeStatus
}

// Node returns the named node (case-insensitive), or nil.
func (s *Snapshot) Node(name string) *NodeStatus {
	for i := range s.Nodes {
		if strings.EqualFold(s.Nodes[i].Name, name) {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Alive returns every alive, non-collector member with its score, as a
// ranking that ignores load and checks (the DNS "fallback all").
func (s *Snapshot) Alive(pool string, by By) *Ranking {
	return s.rank(pool, by, func(n *NodeStatus) bool {
		return n.State == StateAlive && !n.Collector
	})
}

// Rank returns the live candidates of pool ("" for all) best first under by
// ("" for the configured default).
func (s *Snapshot) Rank(pool string, by By) *Ranking {
	return s.rank(pool, by, func(n *NodeStatus) bool { return n.Candidate })
}

func (s *Snapshot) rank(pool string, by By, keep func(*NodeStatus) bool) *Ranking {
	var nodes []NodeStatus
	for i := range s.Nodes {
		if n := &s.Nodes[i]; keep(n) && n.InPool(pool) {
			nodes = append(nodes, *n)
		}
	}
	return s.ranking(nodes, by)
}

// ranking scores nodes (copies the caller owns) under by, sorts them best
// first and groups equal scores.
func (s *Snapshot) ranking(nodes []NodeStatus, by By) *Ranking {
	if by == "" {
		by = s.Score.By
	}
	r := &Ranking{Nodes: nodes}
	for i := range r.Nodes {
		if n := &r.Nodes[i]; n.Report != nil {
			l := n.Report.Load
			l.Load1 += n.HerdLoad
			n.Score = Score(l, s.Score, by)
		}
	}
	slices.SortStableFunc(r.Nodes, func(a, b NodeStatus) int {
		if c := cmp.Compare(a.Score, b.Score); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	// Two machines that advertise one address (a cloned image, a typo) are
	// one machine to a client: only the better one keeps it, so answers
	// never repeat an address (RFC 2181 section 5.2).
	seen := make(map[netip.Addr]bool, len(r.Nodes))
	for i := range r.Nodes {
		n := &r.Nodes[i]
		for _, a := range []*netip.Addr{&n.Addr4, &n.Addr6} {
			switch {
			case !a.IsValid():
			case seen[*a]:
				*a = netip.Addr{}
			default:
				seen[*a] = true
			}
		}
	}
	// Scores closer than Delta to the first of a group are equal.
	for i := range r.Nodes {
		if i == 0 || r.Nodes[i].Score-r.Nodes[r.groups[len(r.groups)-1]].Score >= s.Score.Delta {
			r.groups = append(r.groups, i)
		}
	}
	return r
}

// Ranking is a sorted list of nodes in groups of equal score. It is
// immutable and safe for concurrent use.
type Ranking struct {
	// Nodes are best first; within a group of equal scores by name.
	Nodes  []NodeStatus
	groups []int // start index of each group of equal scores
}

// Len is the number of ranked nodes.
func (r *Ranking) Len() int { return len(r.Nodes) }

// Rank returns the 1-based rank of node i (equal scores share a rank).
func (r *Ranking) Rank(i int) int {
	g, _ := slices.BinarySearch(r.groups, i+1)
	return r.groups[g-1] + 1
}

// Pick returns the best n nodes (all when n <= 0), shuffling each group of
// equal scores with rnd so repeated picks spread across equally good nodes.
// A nil rnd uses the global source.
func (r *Ranking) Pick(n int, rnd *rand.Rand) []NodeStatus {
	if n <= 0 || n > len(r.Nodes) {
		n = len(r.Nodes)
	}
	out := make([]NodeStatus, 0, n)
	for g, start := range r.groups {
		if len(out) >= n {
			break
		}
		end := len(r.Nodes)
		if g+1 < len(r.groups) {
			end = r.groups[g+1]
		}
		group := append([]NodeStatus(nil), r.Nodes[start:end]...)
		if len(group) > 1 {
			shuffle := rand.Shuffle
			if rnd != nil {
				shuffle = rnd.Shuffle
			}
			shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
		}
		out = append(out, group[:min(len(group), n-len(out))]...)
	}
	return out
}
