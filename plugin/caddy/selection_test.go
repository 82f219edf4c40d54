package peerload

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// machine is a synthetic snapshot node: a 4-CPU candidate at load1 with
// its address, unless changed by opts.
func machine(name, addr string, load1 float64, opts ...func(*rank.NodeStatus)) rank.NodeStatus {
	n := rank.NodeStatus{
		Name:      name,
		State:     rank.StateAlive,
		Candidate: true,
		Report: &report.Report{Node: name, Load: report.Load{
			Load1: load1, CPUs: 4, MemTotal: 8 << 30, MemAvailable: 6 << 30,
		}},
		Received: time.Now(),
	}
	if addr != "" {
		a := netip.MustParseAddr(addr)
		if a.Is4() {
			n.Addr4 = a
		} else {
			n.Addr6 = a
		}
	}
	for _, o := range opts {
		o(&n)
	}
	return n
}

func drained(n *rank.NodeStatus) {
	n.Candidate = false
	n.Reasons = []string{"drain: maintenance"}
	n.Report.Failing = []report.CheckResult{{Name: "drain", Reason: "maintenance"}}
}

func dead(n *rank.NodeStatus) {
	n.Candidate = false
	n.State = rank.StateDead
	n.Reasons = []string{rank.StateDead}
}

func inPool(pools ...string) func(*rank.NodeStatus) {
	return func(n *rank.NodeStatus) { n.Pools = pools }
}

func snapshotOfNodes(nodes ...rank.NodeStatus) *rank.Snapshot {
	s := &rank.Snapshot{Built: time.Now(), Score: rank.DefaultScoreConfig(), Nodes: slices.Clone(nodes)}
	slices.SortFunc(s.Nodes, func(a, b rank.NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return s
}

func upstreams(dials ...string) reverseproxy.UpstreamPool {
	pool := make(reverseproxy.UpstreamPool, len(dials))
	for i, d := range dials {
		pool[i] = &reverseproxy.Upstream{Dial: d}
	}
	return pool
}

// availableExcept is an availability verdict: every upstream but the
// listed dial addresses.
func availableExcept(down ...string) func(*reverseproxy.Upstream) bool {
	return func(u *reverseproxy.Upstream) bool { return !slices.Contains(down, u.Dial) }
}

var allAvailable = availableExcept()

// counts picks n times and counts the dial addresses picked ("" for none).
func counts(c *choice, pool reverseproxy.UpstreamPool, top, n int, avail func(*reverseproxy.Upstream) bool) map[string]int {
	got := map[string]int{}
	for range n {
		u, _, _ := c.pick(pool, top, avail, nil)
		if u == nil {
			got[""]++
			continue
		}
		got[u.Dial]++
	}
	return got
}

var policyTop1 = rank.Policy{Top: 1, Fallback: rank.FallbackKeep}

func TestPickBest(t *testing.T) {
	snap := snapshotOfNodes(
		machine("lab01", "10.0.0.1", 3.0),
		machine("lab02", "10.0.0.2", 0.4),
		machine("lab03", "10.0.0.3", 2.0),
	)
	c := buildChoice(policyTop1, snap, emptyChoice, "", time.Now())
	pool := upstreams("10.0.0.1:8888", "10.0.0.2:8888", "10.0.0.3:8888")
	if got := counts(c, pool, 1, 100, allAvailable); got["10.0.0.2:8888"] != 100 {
		t.Fatalf("picks %v, want every one on lab02 (the least loaded)", got)
	}
	// The best is down in the proxy's view: the next best.
	if got := counts(c, pool, 1, 100, availableExcept("10.0.0.2:8888")); got["10.0.0.3:8888"] != 100 {
		t.Fatalf("picks with lab02 unavailable %v, want every one on lab03", got)
	}
	if u, _, chosen := c.pick(pool, 1, allAvailable, nil); !chosen || u == nil {
		t.Fatalf("pick = %v, chosen %v; want a chosen machine", u, chosen)
	}
}

// Equal machines share the picks; with 3000 picks over three, each
// expects 1000 (σ ≈ 26): the bounds are more than 7σ away.
func TestPickTiesAtRandom(t *testing.T) {
	snap := snapshotOfNodes(
		machine("a", "10.0.0.1", 1.0),
		machine("b", "10.0.0.2", 1.0),
		machine("c", "10.0.0.3", 1.01), // within the score delta: equal
		machine("d", "10.0.0.4", 3.0),
	)
	c := buildChoice(policyTop1, snap, emptyChoice, "", time.Now())
	pool := upstreams("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80")
	got := counts(c, pool, 1, 3000, allAvailable)
	for _, d := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		if got[d] < 800 || got[d] > 1200 {
			t.Errorf("%s picked %d times of 3000, want about 1000: %v", d, got[d], got)
		}
	}
	if got["10.0.0.4:80"] != 0 {
		t.Errorf("the busier machine was picked: %v", got)
	}
}

// With top 2 the best machine takes half the picks and the two equal
// second-best share the other half, as often as Ranking.Pick puts each
// among the top two. 4000 picks: 2000 (σ ≈ 32) and 1000 (σ ≈ 27).
func TestPickTopSpreads(t *testing.T) {
	snap := snapshotOfNodes(
		machine("a", "10.0.0.1", 0.2),
		machine("b", "10.0.0.2", 1.0),
		machine("c", "10.0.0.3", 1.0),
		machine("d", "10.0.0.4", 3.0),
	)
	c := buildChoice(rank.Policy{Top: 2}, snap, emptyChoice, "", time.Now())
	pool := upstreams("10.0.0.4:80", "10.0.0.3:80", "10.0.0.2:80", "10.0.0.1:80")
	got := counts(c, pool, 2, 4000, allAvailable)
	want := map[string][2]int{"10.0.0.1:80": {1700, 2300}, "10.0.0.2:80": {750, 1250}, "10.0.0.3:80": {750, 1250}, "10.0.0.4:80": {0, 0}}
	for d, r := range want {
		if got[d] < r[0] || got[d] > r[1] {
			t.Errorf("%s picked %d times of 4000, want %d..%d: %v", d, got[d], r[0], r[1], got)
		}
	}
	// Top larger than the machines available: all of them, evenly.
	got = counts(c, pool, 8, 4000, availableExcept("10.0.0.4:80"))
	for _, d := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"} {
		if got[d] < 1100 || got[d] > 1570 {
			t.Errorf("top 8 of 3: %s picked %d times of 4000, want about 1333: %v", d, got[d], got)
		}
	}
}

func TestPickNeverHandsOutMachinesLeftOut(t *testing.T) {
	snap := snapshotOfNodes(
		machine("lab01", "10.0.0.1", 0.1, drained),
		machine("lab02", "10.0.0.2", 2.0),
		machine("lab03", "10.0.0.3", 0.1, dead),
	)
	c := buildChoice(policyTop1, snap, emptyChoice, "", time.Now())
	pool := upstreams("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	if got := counts(c, pool, 1, 200, allAvailable); got["10.0.0.2:80"] != 200 {
		t.Fatalf("picks %v, want only lab02 (lab01 drained, lab03 dead)", got)
	}
	// The only candidate unavailable: nothing, rather than a drained or
	// dead machine.
	if u, _, _ := c.pick(pool, 1, availableExcept("10.0.0.2:80"), nil); u != nil {
		t.Fatalf("picked %s with only left-out machines available, want none", u.Dial)
	}
}

func TestPickUnknownUpstreams(t *testing.T) {
	pool := upstreams("10.9.0.1:80", "10.9.0.2:80")
	// Before the member heard anything: random among available.
	got := counts(emptyChoice, pool, 1, 2000, allAvailable)
	if got["10.9.0.1:80"] < 800 || got["10.9.0.2:80"] < 800 {
		t.Fatalf("picks without data %v, want both about 1000", got)
	}
	if u, _, chosen := emptyChoice.pick(pool, 1, allAvailable, nil); u == nil || chosen {
		t.Fatalf("pick without data = %v, chosen %v; want a random one, not chosen", u, chosen)
	}
	if u, _, _ := emptyChoice.pick(pool, 1, availableExcept("10.9.0.1:80", "10.9.0.2:80"), nil); u != nil {
		t.Fatalf("picked %s with nothing available", u.Dial)
	}

	// A backup server the cluster does not know serves only when no
	// chosen machine is available.
	snap := snapshotOfNodes(machine("lab01", "10.0.0.1", 0.5), machine("lab02", "10.0.0.2", 0.5, drained))
	c := buildChoice(policyTop1, snap, emptyChoice, "", time.Now())
	pool = upstreams("10.0.0.1:80", "10.0.0.2:80", "backup.example.edu:80")
	if got := counts(c, pool, 1, 100, allAvailable); got["10.0.0.1:80"] != 100 {
		t.Fatalf("picks %v, want every one on lab01", got)
	}
	if got := counts(c, pool, 1, 100, availableExcept("10.0.0.1:80")); got["backup.example.edu:80"] != 100 {
		t.Fatalf("picks with lab01 down %v, want every one on the backup (lab02 is drained)", got)
	}
}

// Upstreams may name a machine by address (IPv4, IPv6) or by name, also
// as the first labels of a longer name, in any case, with a network.
func TestPickMatchesHosts(t *testing.T) {
	snap := snapshotOfNodes(
		machine("lab01", "10.0.0.1", 3.0),
		machine("lab02", "", 2.0),
		machine("lab03.cs", "2001:db8::3", 1.0),
		machine("lab04", "10.0.0.4", 0.5, drained),
	)
	c := buildChoice(policyTop1, snap, emptyChoice, "", time.Now())
	tests := []struct {
		host   string
		index  int32 // in c.nodes (best first: lab03.cs, lab02, lab01); -1 known, not chosen
		known  bool
		dialed string
	}{
		{"10.0.0.1", 2, true, "10.0.0.1:80"},
		{"2001:db8::3", 0, true, "[2001:db8::3]:80"},
		{"2001:DB8:0::3", 0, true, "[2001:DB8:0::3]:80"},
		{"lab02", 1, true, "lab02:80"},
		{"LAB02.example.edu", 1, true, "LAB02.example.edu:80"},
		{"lab03.cs.example.edu", 0, true, "tcp/lab03.cs.example.edu:80"},
		{"lab04.example.edu", -1, true, "lab04.example.edu:80"},
		{"10.0.0.4", -1, true, "10.0.0.4:80"},
		{"lab05", 0, false, "lab05:80"},
		{"10.0.0.9", 0, false, "10.0.0.9:80"},
		{"", 0, false, "unix//run/lab.sock"},
		{"{http.request.host}", 0, false, "{http.request.host}:80"},
	}
	for _, tc := range tests {
		if h := dialHost(tc.dialed); h != tc.host {
			t.Errorf("dialHost(%q) = %q, want %q", tc.dialed, h, tc.host)
		}
		i, known := c.lookup(tc.host)
		if known != tc.known || (known && i != tc.index) {
			t.Errorf("lookup(%q) = %d, %v; want %d, %v", tc.host, i, known, tc.index, tc.known)
		}
	}
}

func TestPickFallback(t *testing.T) {
	live := snapshotOfNodes(machine("lab01", "10.0.0.1", 0.5), machine("lab02", "10.0.0.2", 2.0), machine("lab03", "10.0.0.3", 2.5))
	allDown := snapshotOfNodes(
		machine("lab01", "10.0.0.1", 0.5, dead),
		machine("lab02", "10.0.0.2", 2.0, drained),
		machine("lab03", "10.0.0.3", 2.5, dead),
	)
	pool := upstreams("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")

	// keep: the last live choice's top machines that may come back (lab01
	// is dead; lab02, drained, may not).
	keep := rank.Policy{Top: 2, Fallback: rank.FallbackKeep}
	c := buildChoice(keep, allDown, buildChoice(keep, live, emptyChoice, "", time.Now()), "", time.Now())
	if !c.fallback {
		t.Fatal("choice without candidates is not marked fallback")
	}
	if got := counts(c, pool, 2, 100, allAvailable); got["10.0.0.1:80"] != 100 {
		t.Fatalf("fallback keep picks %v, want every one on lab01 (kept, dead); never drained lab02", got)
	}

	// none: nothing, not even at random (every upstream is known).
	none := rank.Policy{Top: 1, Fallback: rank.FallbackNone}
	c = buildChoice(none, allDown, buildChoice(none, live, emptyChoice, "", time.Now()), "", time.Now())
	if u, _, _ := c.pick(pool, 1, allAvailable, nil); u != nil {
		t.Fatalf("fallback none picked %s", u.Dial)
	}

	// all: every alive machine, load and checks ignored (lab02).
	all := rank.Policy{Top: 1, Fallback: rank.FallbackAll}
	c = buildChoice(all, allDown, emptyChoice, "", time.Now())
	if got := counts(c, pool, 1, 100, allAvailable); got["10.0.0.2:80"] != 100 {
		t.Fatalf("fallback all picks %v, want every one on lab02 (the only alive one)", got)
	}
}

func TestPickPool(t *testing.T) {
	snap := snapshotOfNodes(
		machine("gpu1", "10.0.0.1", 2.0, inPool("gpu")),
		machine("gpu2", "10.0.0.2", 3.0, inPool("gpu")),
		machine("cpu1", "10.0.0.3", 0.1, inPool("cpu")),
	)
	c := buildChoice(rank.Policy{Pool: "gpu", Top: 1}, snap, emptyChoice, "", time.Now())
	pool := upstreams("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80")
	if got := counts(c, pool, 1, 100, allAvailable); got["10.0.0.1:80"] != 100 {
		t.Fatalf("pool gpu picks %v, want every one on gpu1", got)
	}
	if c.candidates != 2 {
		t.Errorf("candidates = %d, want the 2 of the pool", c.candidates)
	}
}

func TestGetUpstreams(t *testing.T) {
	u := &Upstreams{}
	u.policy = rank.Policy{Top: 3}
	u.cur.Store(emptyChoice)
	if got, err := u.GetUpstreams(nil); err == nil || len(got) != 0 {
		t.Fatalf("GetUpstreams without data = %v, %v; want an error so the proxy uses its static upstreams", got, err)
	}

	snap := snapshotOfNodes(
		machine("a", "10.0.0.1", 0.2),
		machine("b", "10.0.0.2", 1.0),
		machine("c", "10.0.0.3", 1.0),
		machine("d", "10.0.0.4", 1.0),
		machine("e", "", 0.1), // no address: never handed out
		machine("f", "2001:db8::6", 3.0),
	)
	u.cur.Store(buildChoice(u.policy, snap, emptyChoice, "8888", time.Now()))
	seen := map[string]int{}
	orders := map[string]bool{}
	var prev []*reverseproxy.Upstream
	for range 600 {
		got, err := u.GetUpstreams(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Dial != "10.0.0.1:8888" {
			t.Fatalf("GetUpstreams = %v, want 3, the best (a) first", got)
		}
		var dials []string
		for i, x := range got {
			dials = append(dials, x.Dial)
			if i > 0 {
				seen[x.Dial]++
			}
			if prev != nil && slices.Contains(prev, x) {
				t.Fatal("GetUpstreams handed out an upstream of an earlier call: the proxy provisions them per request")
			}
		}
		orders[strings.Join(dials, " ")] = true
		prev = got
	}
	// b, c, d are equal: the two places after a go to each about
	// 2/3 of the time (400 of 600, σ ≈ 12).
	for _, d := range []string{"10.0.0.2:8888", "10.0.0.3:8888", "10.0.0.4:8888"} {
		if seen[d] < 320 || seen[d] > 480 {
			t.Errorf("%s handed out %d times of 600, want about 400: %v", d, seen[d], seen)
		}
	}
	if len(orders) < 6 {
		t.Errorf("%d distinct orders of the equal machines, want all 6: %v", len(orders), orders)
	}

	// IPv6 addresses are bracketed.
	u.policy.Top = 6
	u.cur.Store(buildChoice(u.policy, snap, emptyChoice, "8888", time.Now()))
	got, _ := u.GetUpstreams(nil)
	if last := got[len(got)-1].Dial; len(got) != 5 || last != "[2001:db8::6]:8888" {
		t.Fatalf("top 6 = %v, want the 5 with an address, f last as [2001:db8::6]:8888", got)
	}
}

func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{5, 50} {
		var nodes []rank.NodeStatus
		var dials []string
		for i := range n {
			addr := fmt.Sprintf("10.0.%d.%d", i/250, i%250+1)
			// Five equally good machines, the rest busier.
			nodes = append(nodes, machine(fmt.Sprintf("lab%03d", i), addr, 1.0+float64(max(i-4, 0))))
			dials = append(dials, addr+":8888")
		}
		pool := upstreams(dials...)
		for _, u := range pool {
			u.Host = new(reverseproxy.Host) // as the proxy provisions them
		}
		s := &Selection{}
		s.policy = rank.Policy{Top: 1}
		s.cur.Store(buildChoice(s.policy, snapshotOfNodes(nodes...), emptyChoice, "", time.Now()))
		b.Run(fmt.Sprintf("peerload/upstreams=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s.Select(pool, nil, nil) == nil {
					b.Fatal("nothing selected")
				}
			}
		})
		// A pool in a new order on every request (dynamic upstreams):
		// every host looked up.
		b.Run(fmt.Sprintf("peerload-lookup/upstreams=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			c := s.cur.Load()
			for b.Loop() {
				if u, _, _ := c.pick(pool, 1, (*reverseproxy.Upstream).Available, nil); u == nil {
					b.Fatal("nothing selected")
				}
			}
		})
		b.Run(fmt.Sprintf("random/upstreams=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			r := reverseproxy.RandomSelection{}
			for b.Loop() {
				if r.Select(pool, nil, nil) == nil {
					b.Fatal("nothing selected")
				}
			}
		})
	}
}

// Select looks a static pool's hosts up once per choice: the cached
// answer follows a new choice, and another pool (dynamic upstreams, in a
// new order) is looked up afresh.
func TestSelectCachesPoolHosts(t *testing.T) {
	s := &Selection{}
	s.policy = rank.Policy{Top: 1}
	first := snapshotOfNodes(machine("lab01", "10.0.0.1", 0.5), machine("lab02", "10.0.0.2", 2.0))
	s.cur.Store(buildChoice(s.policy, first, emptyChoice, "", time.Now()))
	static := upstreams("10.0.0.1:80", "10.0.0.2:80", "backup:80")
	for _, u := range static {
		u.Host = new(reverseproxy.Host)
	}
	for range 3 {
		if u := s.Select(static, nil, nil); u != static[0] {
			t.Fatalf("Select = %v, want lab01", u)
		}
	}
	if h := s.hosts.Load(); h == nil || h.c != s.cur.Load() || !slices.Equal(h.where, []int32{0, 1, unknown}) {
		t.Fatalf("cached hosts %+v, want lab01, lab02, unknown under the current choice", h)
	}

	// lab02 becomes the best: the next request follows.
	second := snapshotOfNodes(machine("lab01", "10.0.0.1", 3.0), machine("lab02", "10.0.0.2", 0.5))
	s.cur.Store(buildChoice(s.policy, second, s.cur.Load(), "", time.Now()))
	if u := s.Select(static, nil, nil); u != static[1] {
		t.Fatalf("Select after the load change = %v, want lab02", u)
	}

	// The same upstreams in another order, as a new list: looked up.
	other := upstreams("10.0.0.2:80", "10.0.0.1:80")
	for _, u := range other {
		u.Host = new(reverseproxy.Host)
	}
	if s.poolHosts(s.cur.Load(), other) != nil {
		t.Fatal("a different pool was answered from the cache")
	}
	if u := s.Select(other, nil, nil); u != other[0] {
		t.Fatalf("Select on the reordered pool = %v, want lab02", u)
	}
}
