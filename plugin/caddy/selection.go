package peerload

import (
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// defaultSelectionTop is how many of the best available upstreams the
// selection policy picks among by default: the best one, random among
// equals.
const defaultSelectionTop = 1

// Selection is a load balancing selection policy that picks, among the
// upstreams the reverse proxy has available (its health checks, circuit
// breaker and request limits decide that), the one on the least-loaded
// machine of a peerload cluster:
//
//  1. The upstreams on machines the policy chose (the live candidates of
//     the pool, or the fallback's machines when there are none), ranked:
//     with Top 1 the best one, random among machines of equal score; with
//     Top N a random one of the best N.
//  2. If none of those is available: a random available upstream on no
//     machine the cluster knows (a backup server, or every upstream while
//     the member has not heard any report yet).
//  3. Otherwise none: every available upstream is on a machine that must
//     not get new sessions (drained, failing a check, dead, or left out by
//     the fallback). The proxy retries within lb_try_duration, then
//     answers 502 or 503.
//
// An upstream's host is matched to a machine by address (what the agent
// advertises) or by the machine's name, also as the first labels of a
// longer name (lab01.cs.example.edu is machine lab01).
//
// As the fallback of `lb_policy cookie`, it sends each new session to the
// best machine and the cookie keeps it there while loads change.
type Selection struct {
	Cluster

	chooser
	hosts atomic.Pointer[poolHosts]
}

// CaddyModule returns the Caddy module information.
func (*Selection) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.selection_policies.peerload",
		New: func() caddy.Module { return new(Selection) },
	}
}

// Provision implements caddy.Provisioner: it checks the settings, joins
// the member of its bind address (started with the configuration) and
// starts watching it.
func (s *Selection) Provision(ctx caddy.Context) error {
	if err := s.Validate(); err != nil {
		return err
	}
	return s.begin(ctx, &s.Cluster, defaultSelectionTop, "")
}

// Validate implements caddy.Validator.
func (s *Selection) Validate() error { return s.validate() }

// Cleanup implements caddy.CleanerUpper: it lets go of the member, which
// stops once no configuration uses it.
func (s *Selection) Cleanup() error {
	s.end()
	return nil
}

// Select implements reverseproxy.Selector.
func (s *Selection) Select(pool reverseproxy.UpstreamPool, _ *http.Request, _ http.ResponseWriter) *reverseproxy.Upstream {
	c := s.cur.Load()
	u, node, chosen := c.pick(pool, s.policy.Top, (*reverseproxy.Upstream).Available, s.poolHosts(c, pool))
	switch {
	case u == nil:
		selectedNone.Inc()
	case !chosen:
		selectedRandom.Inc()
	case c.fallback:
		selectedFallback.Inc()
	default:
		selectedBest.Inc()
	}
	if chosen {
		c.handedOut(s.policy.Herd, []int32{node})
	}
	return u
}

// poolHosts says which machine each upstream of one pool is on under one
// choice: the index in choice.nodes, notChosen, or unknown.
type poolHosts struct {
	c     *choice
	dials []string
	where []int32
}

// where values for upstreams on no chosen machine.
const (
	notChosen int32 = -1 // a machine the cluster knows
	unknown   int32 = -2 // no machine the cluster knows
)

// poolHosts is where pool's upstreams are under c, or nil when pick must
// look them up. The proxy hands a static pool (upstreams listed in the
// configuration) to every request, so its hosts are looked up once per
// choice rather than once per request: the cache is rebuilt when the
// choice changed and the pool did not. A pool that differs (dynamic
// upstreams in a new order) is looked up per request, allocating nothing.
func (s *Selection) poolHosts(c *choice, pool reverseproxy.UpstreamPool) []int32 {
	h := s.hosts.Load()
	same := h != nil && len(h.dials) == len(pool)
	for i := 0; same && i < len(pool); i++ {
		same = h.dials[i] == pool[i].Dial
	}
	switch {
	case same && h.c == c:
		return h.where
	case h != nil && !same:
		return nil
	}
	h = &poolHosts{c: c, dials: make([]string, len(pool)), where: make([]int32, len(pool))}
	for i, u := range pool {
		h.dials[i] = u.Dial
		h.where[i] = unknown
		if k, known := c.lookup(dialHost(u.Dial)); known {
			h.where[i] = k
		}
	}
	s.hosts.Store(h)
	return h.where
}

// ranked is an available upstream on a chosen machine.
type ranked struct {
	i int32 // index in choice.nodes
	u *reverseproxy.Upstream
}

// pick is the selection's rule (see Selection): an available upstream on
// a chosen machine (chosen true; node is its index in c.nodes), else a
// random available one on a machine the cluster does not know, else nil. available is the proxy's
// verdict on an upstream (Upstream.Available; tests decide it); where,
// when not nil, is where each upstream is (see poolHosts). It allocates
// nothing for pools of up to 64 upstreams.
func (c *choice) pick(pool reverseproxy.UpstreamPool, top int, available func(*reverseproxy.Upstream) bool, where []int32) (u *reverseproxy.Upstream, node int32, chosen bool) {
	var buf [64]ranked
	cands := buf[:0]
	var other *reverseproxy.Upstream
	nOther := 0
	for k, u := range pool {
		var i int32
		var known bool
		if where != nil {
			i = where[k]
			known = i != unknown
		} else {
			i, known = c.lookup(dialHost(u.Dial))
		}
		switch {
		case known && i < 0:
		case !available(u):
		case known:
			cands = append(cands, ranked{i, u})
		default:
			// Reservoir sampling, as Caddy's random policy.
			if nOther++; rand.IntN(nOther) == 0 {
				other = u
			}
		}
	}
	if len(cands) == 0 {
		return other, -1, false
	}
	if top <= 1 {
		// The best group's upstreams, by reservoir sampling.
		var best ranked
		g, n := int32(-1), 0
		for _, r := range cands {
			switch grp := c.nodes[r.i].group; {
			case g < 0 || grp < g:
				best, g, n = r, grp, 1
			case grp == g:
				if n++; rand.IntN(n) == 0 {
					best = r
				}
			}
		}
		return best.u, best.i, true
	}
	slices.SortFunc(cands, func(a, b ranked) int { return int(a.i - b.i) })
	// A random one of the best top: those of the groups wholly inside
	// the top with equal chances, and the group the top cuts through
	// sharing the places left (so each of its members is among the top as
	// often as in Ranking.Pick).
	n := min(top, len(cands))
	g := c.nodes[cands[n-1].i].group
	before := 0
	for c.nodes[cands[before].i].group != g {
		before++
	}
	if k := rand.IntN(n); k < before {
		return cands[k].u, cands[k].i, true
	}
	end := n
	for end < len(cands) && c.nodes[cands[end].i].group == g {
		end++
	}
	r := cands[before+rand.IntN(end-before)]
	return r.u, r.i, true
}

// dialHost is the host of an upstream's dial address ("10.0.0.1:8888",
// "[2001:db8::1]:8888", "lab01:8888", "tcp/lab01:8888"); a placeholder or
// a Unix socket names no machine.
func dialHost(dial string) string {
	if i := strings.IndexByte(dial, '/'); i >= 0 {
		if strings.HasPrefix(dial, "unix") {
			return ""
		}
		dial = dial[i+1:]
	}
	host, _, err := net.SplitHostPort(dial)
	if err != nil {
		return dial
	}
	return host
}

// Interface guards
var (
	_ caddy.Provisioner     = (*Selection)(nil)
	_ caddy.Validator       = (*Selection)(nil)
	_ caddy.CleanerUpper    = (*Selection)(nil)
	_ reverseproxy.Selector = (*Selection)(nil)
)
