package peerload

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// defaultUpstreamsTop is how many machines the upstream source hands out
// by default: as many as a DNS answer holds.
const defaultUpstreamsTop = 8

// errNoMachine is what GetUpstreams returns when there is no machine to
// hand out, so that the reverse proxy falls back to its static upstreams.
var errNoMachine = errors.New("peerload: no machine to hand out")

// Upstreams is an upstream source that hands the reverse proxy the best
// machines of a peerload cluster's pool, best first, at Port: the live
// candidates (alive, fresh report, every health check passing, not
// drained), or what the fallback keeps when there are none. Machines of
// equal score come out in a fresh random order on every call, and when
// Top cuts through such a group every call takes a random part of it, as
// DNS answers do. Caddy's default lb_policy (random) then spreads new
// requests over the top machines like DNS clients; `lb_policy peerload`
// or `first` takes the best available one.
//
// It returns an error (the reverse proxy then uses its static upstreams,
// if any) when there is no machine to hand out: before the member has
// heard any report, or when no machine is a candidate and the fallback
// gives none.
type Upstreams struct {
	Cluster

	// Port is the port of the service on every machine (required).
	Port int `json:"port,omitempty"`

	chooser
}

// CaddyModule returns the Caddy module information.
func (*Upstreams) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.peerload",
		New: func() caddy.Module { return new(Upstreams) },
	}
}

// Provision implements caddy.Provisioner: it checks the settings, joins
// the member of its bind address (started with the configuration) and
// starts watching it.
func (u *Upstreams) Provision(ctx caddy.Context) error {
	if err := u.Validate(); err != nil {
		return err
	}
	return u.begin(ctx, &u.Cluster, defaultUpstreamsTop, strconv.Itoa(u.Port))
}

// Validate implements caddy.Validator.
func (u *Upstreams) Validate() error {
	if u.Port < 1 || u.Port > 65535 {
		return fmt.Errorf("port: the service port (1 to 65535) is required, got %d", u.Port)
	}
	return u.validate()
}

// Cleanup implements caddy.CleanerUpper: it lets go of the member, which
// stops once no configuration uses it.
func (u *Upstreams) Cleanup() error {
	u.end()
	return nil
}

// GetUpstreams implements reverseproxy.UpstreamSource: the best Top
// machines with an address, best first, equal ones shuffled. The list and
// its upstreams are new on every call: the proxy provisions them per
// request.
func (u *Upstreams) GetUpstreams(*http.Request) ([]*reverseproxy.Upstream, error) {
	c := u.cur.Load()
	if len(c.withAddr) == 0 {
		listedNone.Inc()
		return nil, errNoMachine
	}
	if c.fallback {
		listedFallback.Inc()
	} else {
		listedCandidates.Inc()
	}
	top := min(u.policy.Top, len(c.withAddr))
	out := make([]*reverseproxy.Upstream, 0, top)
	idx := c.withAddr
	var handedBuf [maxTop]int32
	handed := handedBuf[:0]
	for start := 0; start < len(idx) && len(out) < top; {
		end := start + 1
		for end < len(idx) && c.nodes[idx[end]].group == c.nodes[idx[start]].group {
			end++
		}
		// A group of equal machines: as many of them as still fit, each
		// time a random choice in a random order (partial Fisher-Yates
		// over a copy, never over the published choice).
		var buf [maxTop]int32
		group := append(buf[:0], idx[start:end]...)
		for k := 0; k < len(group) && len(out) < top; k++ {
			j := k + rand.IntN(len(group)-k)
			group[k], group[j] = group[j], group[k]
			out = append(out, &reverseproxy.Upstream{Dial: c.nodes[group[k]].dial})
			handed = append(handed, group[k])
		}
		start = end
	}
	c.handedOut(u.policy.Herd, handed)
	return out, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Upstreams)(nil)
	_ caddy.Validator             = (*Upstreams)(nil)
	_ caddy.CleanerUpper          = (*Upstreams)(nil)
	_ reverseproxy.UpstreamSource = (*Upstreams)(nil)
)
