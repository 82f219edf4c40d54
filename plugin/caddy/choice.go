package peerload

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/watch"
)

// choice is what a module needs per request, precomputed from one
// snapshot by the module's watcher and published with an atomic pointer:
// the request path never touches gossip and never locks. It is immutable
// once published.
type choice struct {
	// nodes are the machines the policy chose (the live candidates, or
	// the fallback's machines), best first.
	nodes []chosenNode
	// fallback is true when nodes come from the policy's fallback.
	fallback bool
	// hosts maps every machine of the pool the snapshot knows, by address
	// (Addr4, Addr6 as text) and by lower-case name, to its index in
	// nodes, or to -1 when it was not chosen (drained, failing a check,
	// dead...).
	hosts map[string]int32
	// withAddr are the indexes of the nodes with an address, in order.
	withAddr []int32

	kept       rank.Kept // what fallback keep remembers for the next build
	newest     time.Time // when the newest report held was sent
	alive      int       // alive members, collectors included
	candidates int       // live candidates of the pool
}

// chosenNode is one chosen machine.
type chosenNode struct {
	name string
	// group numbers the groups of equal score (Ranking.Rank): machines of
	// one group are equally good and picked at random among themselves.
	group int32
	// dial is addr:port of the machine's service for the upstream source
	// (Addr4, else Addr6), "" when it advertises no address or the module
	// has no port.
	dial string
	// tally is the machine's record in the module's herd (nil with herd
	// off), handed its handed_out_total counter: what handing it out
	// updates.
	tally  *herd.Tally
	handed prometheus.Counter
}

// emptyChoice is what a module uses before its member has data.
var emptyChoice = &choice{hosts: map[string]int32{}}

// buildChoice chooses from snap under p at now and precomputes what
// requests need; prev is the choice published before (its kept machines
// carry over). port, when set, makes each node's dial address.
func buildChoice(p rank.Policy, snap *rank.Snapshot, prev *choice, port string, now time.Time) *choice {
	c := &choice{hosts: map[string]int32{}, kept: prev.kept, newest: prev.newest}
	if snap == nil {
		return c
	}
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if n.State == rank.StateAlive {
			c.alive++
		}
		if n.Report != nil && n.Received.After(c.newest) {
			c.newest = n.Received
		}
		if n.Collector || !n.InPool(p.Pool) {
			continue
		}
		if n.Candidate {
			c.candidates++
		}
		for _, k := range nodeKeys(n) {
			c.hosts[k] = -1
		}
	}
	ch, kept := p.Choose(snap, prev.kept, now)
	c.kept, c.fallback = kept, ch.Fallback
	r := ch.Ranking
	c.nodes = make([]chosenNode, r.Len())
	for i := range r.Nodes {
		n := &r.Nodes[i]
		cn := chosenNode{name: n.Name, group: int32(r.Rank(i)), handed: handedTotal.WithLabelValues(n.Name)}
		if p.Herd != nil {
			cn.tally = p.Herd.Tally(n.Name)
		}
		addr := n.Addr4
		if !addr.IsValid() {
			addr = n.Addr6
		}
		if addr.IsValid() && port != "" {
			cn.dial = net.JoinHostPort(addr.String(), port)
			c.withAddr = append(c.withAddr, int32(i))
		}
		c.nodes[i] = cn
		// A better machine keeps an address or name it shares with a
		// worse one (the ranking already took duplicate addresses from
		// the worse one).
		for _, k := range nodeKeys(n) {
			if j, ok := c.hosts[k]; !ok || j < 0 {
				c.hosts[k] = int32(i)
			}
		}
	}
	return c
}

// handedOut records that one request was given the machines nodes[i] for
// every i in idx.
func (c *choice) handedOut(h *herd.Herd, idx []int32) {
	if len(idx) == 0 {
		return
	}
	var buf [maxTop]*herd.Tally
	var order [maxTop]int
	ts := buf[:0]
	for k, i := range idx[:min(len(idx), maxTop)] {
		n := &c.nodes[i]
		n.handed.Inc()
		ts = append(ts, n.tally)
		order[k] = k
	}
	if h != nil {
		h.HandedOut(ts, order[:len(ts)], time.Now())
	}
}

// nodeKeys are the hosts an upstream may name a machine by: its
// addresses and its lower-case name.
func nodeKeys(n *rank.NodeStatus) []string {
	keys := make([]string, 0, 3)
	for _, a := range []netip.Addr{n.Addr4, n.Addr6} {
		if a.IsValid() {
			keys = append(keys, a.String())
		}
	}
	return append(keys, strings.ToLower(n.Name))
}

// lookup finds the machine an upstream's host names: an address, the
// machine's name, or a name below it (lab01.cs.example.edu is lab01 when
// no machine is called lab01.cs.example.edu or lab01.cs). It returns the
// index in nodes (-1: known, not chosen) and whether the machine is known.
func (c *choice) lookup(host string) (int32, bool) {
	if i, ok := c.hosts[host]; ok {
		return i, true
	}
	if host == "" {
		return 0, false
	}
	if a, err := netip.ParseAddr(host); err == nil {
		i, ok := c.hosts[a.Unmap().WithZone("").String()]
		return i, ok
	}
	name := strings.ToLower(host)
	for {
		if i, ok := c.hosts[name]; ok {
			return i, true
		}
		dot := strings.LastIndexByte(name, '.')
		if dot <= 0 {
			return 0, false
		}
		name = name[:dot]
	}
}

// chooser keeps a module's choice current from its cluster member; both
// modules embed one.
type chooser struct {
	policy  rank.Policy
	port    string // the upstream source's service port, "" for the policy
	bind    string // the member's bind address
	member  *collector.Handle
	metrics prometheus.Registerer // the configuration's registry
	cur     atomic.Pointer[choice]
}

// begin acquires the member of cl for a module being provisioned and
// hands it to the configuration's peerload app, which starts it. The
// keyring is read here, as the member will, so that `caddy validate` and
// a reload report a missing or bad file by property rather than failing
// at start.
func (c *chooser) begin(ctx caddy.Context, cl *Cluster, defaultTop int, port string) error {
	if err := collector.CheckKeyring(cl.Keyring); err != nil {
		return err
	}
	c.policy, c.port = cl.rankPolicy(defaultTop), port
	c.cur.Store(emptyChoice)
	c.metrics = ctx.GetMetricsRegistry()
	if err := registerMetrics(c.metrics); err != nil {
		return err
	}
	appMod, err := ctx.App(appID)
	if err != nil {
		return err
	}
	spec := cl.spec()
	c.bind = spec.Bind
	memberMetrics(c.bind).addTarget(c.metrics)
	c.member = members.Acquire(spec, c.attach)
	if err := appMod.(*App).use(c.member, spec); err != nil {
		c.end()
		return err
	}
	return nil
}

// end lets go of the member, which stops watching it (safe to call
// twice, and after a failed begin).
func (c *chooser) end() {
	if c.member == nil {
		return
	}
	if err := c.member.Release(); err != nil {
		logger().Error("stop cluster member", zap.String("bind", c.bind), zap.Error(err))
	}
	memberMetrics(c.bind).removeTarget(c.metrics)
	c.member = nil
}

// attach watches the agent a (see collector.AttachFunc): the choice is
// built from it at once and kept current until detached. A nil agent (the
// member could not restart) leaves the module with no machines.
func (c *chooser) attach(a *agent.Agent, _ bool) (func(), error) {
	if a == nil {
		c.publish(nil)
		return nil, nil
	}
	snap := a.Snapshot()
	c.publish(snap)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.watch(ctx, a, snap) })
	return func() {
		cancel()
		wg.Wait()
	}, nil
}

// clockRefresh is how often the watcher updates what depends on the clock
// alone (the snapshot age gauge); changes of membership, candidates or
// reports arrive by notification.
const clockRefresh = 5 * time.Second

// watch keeps the published choice current from a until ctx ends: it
// rebuilds it whenever the agent announces a change and after hand-outs
// the herd counted (at most every herd.ChangeInterval). last is the
// snapshot published before.
func (c *chooser) watch(ctx context.Context, a *agent.Agent, last *rank.Snapshot) {
	var handed <-chan struct{}
	if c.policy.Herd != nil {
		handed = c.policy.Herd.Changed()
	}
	watch.Run(ctx, a, watch.Options{Every: clockRefresh, Signal: handed}, func(why watch.Why) time.Time {
		if snap := a.Snapshot(); snap != last || snap == nil || why == watch.Signal {
			c.publish(snap)
			last = snap
		}
		c.observeAge(time.Now())
		return time.Time{}
	})
}

// publish builds the choice from snap and makes it the one requests read.
// Only the watcher (or a test) calls it.
func (c *chooser) publish(snap *rank.Snapshot) {
	ch := buildChoice(c.policy, snap, c.cur.Load(), c.port, time.Now())
	c.cur.Store(ch)
	if c.bind == "" {
		return
	}
	candidatesGauge.WithLabelValues(c.bind, c.policy.Pool).Set(float64(ch.candidates))
	membersGauge.WithLabelValues(c.bind).Set(float64(ch.alive))
}

// observeAge sets the snapshot age gauge: how old the newest report the
// choice holds is at now. It stays unset until the first report arrives.
func (c *chooser) observeAge(now time.Time) {
	ch := c.cur.Load()
	if ch.newest.IsZero() || c.bind == "" {
		return
	}
	snapshotAgeGauge.WithLabelValues(c.bind).Set(max(now.Sub(ch.newest).Seconds(), 0))
}
