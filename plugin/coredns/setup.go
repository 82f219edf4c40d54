package peerload

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/rfc2136"
)

const pluginName = "peerload"

var log = clog.NewWithPlugin(pluginName)

func init() { plugin.Register(pluginName, setup) }

// Defaults of the Corefile properties. top 8 and ttl 5 come from the
// simulator (README, "Choosing top and TTL"): with the herd they keep a
// class that logs in at once within a few per cent of the oracle on every
// lab simulated, at a few queries a second per resolver at most.
const (
	defaultTop  = 8
	defaultTTL  = 5
	defaultPort = 7947
	defaultBind = "0.0.0.0:7947"
	maxTop      = 64
	maxTTL      = 86400
)

// config is one parsed peerload block: the answers it gives (names, top,
// ttl, pool, by, fallback) and the cluster member it reads them from.
type config struct {
	names    []string // lower-case FQDNs
	zones    []string // the server block's zones
	top      int
	ttl      uint32
	pool     string
	by       rank.By
	fallback rank.Fallback
	// herd counts what the block hands out, so a burst of logins spreads
	// (see rank.Policy.Herd); `herd off` ranks on the reports alone.
	herd   bool
	member *memberSpec // shared by every block of one Corefile with the same bind
	update *updateSpec
}

// policy is how the block chooses machines, shared with every integration,
// counting its hand-outs in h (nil: herd off).
func (c *config) policy(h *herd.Herd) rank.Policy {
	return rank.Policy{Pool: c.pool, By: c.by, Top: c.top, Fallback: c.fallback, Herd: h}
}

// memberSpec is what makes up the gossip member a peerload block runs. All
// blocks with the same bind address share one member, so these settings are
// given once (or identically) per bind address.
type memberSpec = collector.Spec

func setup(c *caddy.Controller) error {
	cfg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}

	p := newPeerLoad(cfg)
	start, stop := cfg.lifecycle(p)
	c.OnStartup(func() error {
		p.setServers(serverLabels(dnsserver.GetConfig(c)))
		ns := boundAddrs(dnsserver.GetConfig(c))
		p.nsAddrs.Store(&ns)
		return start()
	})
	c.OnShutdown(stop)

	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		p.Next = next
		return p
	})
	return nil
}

// lifecycle is the block's OnStartup and OnShutdown work: acquire the
// member of its bind address and attach the handler (and updater) to it;
// release it. On a reload the new instance's start runs before the old
// instance's stop (see member).
func (cfg *config) lifecycle(p *PeerLoad) (start, stop func() error) {
	var mem *collector.Handle
	start = func() error {
		h, err := startMember(*cfg.member, cfg.attach(p))
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		mem = h
		return nil
	}
	stop = func() error {
		if mem == nil {
			return nil
		}
		err := mem.Release()
		mem = nil
		if err != nil {
			return plugin.Error(pluginName, err)
		}
		return nil
	}
	return start, stop
}

// attach is how the block uses its member's agent: the handler answers from
// it, and the block's updater runs on it once it is the block's own (runs
// the block's settings, so it carries the updater's role). The member calls
// it again with the new agent when it restarts after a reload.
func (cfg *config) attach(p *PeerLoad) collector.AttachFunc {
	return func(a *agent.Agent, own bool) (func(), error) {
		if a == nil {
			// The member could not restart: the block keeps its last
			// answers and is not ready (its agent stopped) until a later
			// reload starts one.
			return nil, nil
		}
		stopWatch := p.watch(a)
		if cfg.update == nil || !own {
			return stopWatch, nil
		}
		stopUpdate, err := cfg.update.start(a, cfg.updaterConfig())
		if err != nil {
			stopWatch()
			return nil, fmt.Errorf("update: %w", err)
		}
		return func() {
			stopUpdate()
			stopWatch()
		}, nil
	}
}

// serverLabels are the values the `server` metric label takes for queries
// of this server block (what metrics.WithServer returns), so gauges set
// outside a query carry the same label.
func serverLabels(sc *dnsserver.Config) []string {
	hosts := sc.ListenHosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	transport := sc.Transport
	if transport == "" {
		transport = "dns"
	}
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, transport+"://"+net.JoinHostPort(h, sc.Port))
	}
	return out
}

// memberSpecsKey keys the per-Corefile map bind address → *memberSpec in
// the caddy instance storage.
type memberSpecsKey struct{}

// updaterConfig is the RFC 2136 configuration of the block's update
// sub-block, with the block's own answer settings.
func (cfg *config) updaterConfig() rfc2136.Config {
	return cfg.update.config(cfg.names, cfg.top, cfg.ttl, cfg.pool, cfg.by, cfg.fallback, cfg.herd)
}

func parse(c *caddy.Controller) (*config, error) {
	cfg := &config{
		top:      defaultTop,
		ttl:      defaultTTL,
		by:       rank.ByCombined,
		fallback: rank.FallbackKeep,
		herd:     true,
	}
	spec := memberSpec{}
	var root string
	if sc := dnsserver.GetConfig(c); sc != nil {
		root = sc.Root
	}

	i := 0
	for c.Next() {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		i++

		args := c.RemainingArgs()
		if len(args) == 0 {
			return nil, c.Errf("at least one name is required, e.g. 'peerload cslab.example.edu'")
		}
		cfg.zones = plugin.OriginsFromArgsOrServerBlock(nil, c.ServerBlockKeys)
		for _, a := range args {
			name := strings.ToLower(dns.Fqdn(a))
			if _, ok := dns.IsDomainName(name); !ok || name == "." {
				return nil, c.Errf("invalid name '%s'", a)
			}
			if plugin.Zones(cfg.zones).Matches(name) == "" {
				return nil, c.Errf("name '%s' is not inside the zones of this server block (%s)", a, strings.Join(cfg.zones, ", "))
			}
			if slices.Contains(cfg.names, name) {
				return nil, c.Errf("name '%s' given twice", a)
			}
			cfg.names = append(cfg.names, name)
		}

		for c.NextBlock() {
			switch prop := c.Val(); prop {
			case "top":
				n, err := intArg(c, 1, maxTop)
				if err != nil {
					return nil, err
				}
				cfg.top = n
			case "ttl":
				n, err := intArg(c, 0, maxTTL)
				if err != nil {
					return nil, err
				}
				cfg.ttl = uint32(n)
			case "pool":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if err := agent.ValidatePool(v); err != nil {
					return nil, c.Errf("pool: %v", err)
				}
				cfg.pool = v
			case "by":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				by, err := rank.ParseBy(v)
				if err != nil {
					return nil, c.Errf("by: %v", err)
				}
				cfg.by = by
			case "fallback":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				fb, err := rank.ParseFallback(v)
				if err != nil {
					return nil, c.Errf("fallback: %v", err)
				}
				cfg.fallback = fb
			case "herd":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if cfg.herd, err = rank.ParseHerd(v); err != nil {
					return nil, c.Errf("%v", err)
				}
			case "name":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				spec.Name = v
			case "bind":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if err := checkHostPort(v, true); err != nil {
					return nil, c.Errf("bind: %v", err)
				}
				spec.Bind = v
			case "join":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range args {
					if err := checkHostPort(a, false); err != nil {
						return nil, c.Errf("join: %v", err)
					}
				}
				spec.Join = append(spec.Join, args...)
			case "keyring":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				if !filepath.IsAbs(v) && root != "" {
					v = filepath.Join(root, v)
				}
				if err := collector.CheckKeyring(v); err != nil {
					return nil, c.Errf("%v", err)
				}
				spec.Keyring = v
			case "label":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				spec.Label = v
			case "allow":
				args := c.RemainingArgs()
				if len(args) == 0 {
					return nil, c.ArgErr()
				}
				for _, a := range args {
					pfx, err := netip.ParsePrefix(a)
					if err != nil {
						return nil, c.Errf("allow: '%s' is not a CIDR prefix: %v", a, err)
					}
					spec.Allow = append(spec.Allow, pfx.Masked())
				}
			case "stale":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				d, err := time.ParseDuration(v)
				if err != nil {
					return nil, c.Errf("stale: invalid duration '%s': %v", v, err)
				}
				if d <= 0 {
					return nil, c.Errf("stale: duration must be positive, got '%s'", v)
				}
				spec.Stale = d
			case "profile":
				v, err := oneArg(c)
				if err != nil {
					return nil, err
				}
				spec.Profile = v
			case "update":
				if cfg.update != nil {
					return nil, c.Errf("update given twice")
				}
				u, err := parseUpdate(c)
				if err != nil {
					return nil, err
				}
				cfg.update = u
				spec.Roles = append(spec.Roles, u.roles(cfg.names)...)
			default:
				return nil, c.Errf("unknown property '%s'", prop)
			}
		}
	}

	if cfg.update != nil {
		if err := cfg.updaterConfig().Validate(); err != nil {
			return nil, c.Errf("update: %v", err)
		}
	}
	if spec.Bind == "" {
		spec.Bind = defaultBind
	}
	merged, err := mergeMemberSpec(c, spec)
	if err != nil {
		return nil, err
	}
	// The member's settings follow the agent library's rules, checked
	// there and reported here by property name.
	if err := collector.Check(*merged, "coredns", defaultPort); err != nil {
		return nil, c.Errf("%v", err)
	}
	cfg.member = merged
	return cfg, nil
}

// mergeMemberSpec folds spec into the member of the same bind address that
// other peerload blocks of this Corefile configured: a setting given in one
// block applies to all; giving it differently twice is an error.
func mergeMemberSpec(c *caddy.Controller, spec memberSpec) (*memberSpec, error) {
	specs, _ := c.Get(memberSpecsKey{}).(map[string]*memberSpec)
	if specs == nil {
		specs = map[string]*memberSpec{}
		c.Set(memberSpecsKey{}, specs)
	}
	have, ok := specs[spec.Bind]
	if !ok {
		s := spec
		specs[spec.Bind] = &s
		return &s, nil
	}
	conflict := func(what string) error {
		return c.Errf("bind %s: %s differs from another peerload block using the same bind address; "+
			"blocks sharing a bind address share one cluster member, so give it once or identically", spec.Bind, what)
	}
	mergeString := func(dst *string, v, what string) error {
		switch {
		case v == "" || v == *dst:
		case *dst == "":
			*dst = v
		default:
			return conflict(what)
		}
		return nil
	}
	if err := mergeString(&have.Name, spec.Name, "name"); err != nil {
		return nil, err
	}
	if err := mergeString(&have.Keyring, spec.Keyring, "keyring"); err != nil {
		return nil, err
	}
	if err := mergeString(&have.Label, spec.Label, "label"); err != nil {
		return nil, err
	}
	if err := mergeString(&have.Profile, spec.Profile, "profile"); err != nil {
		return nil, err
	}
	switch {
	case len(spec.Join) == 0 || slices.Equal(spec.Join, have.Join):
	case len(have.Join) == 0:
		have.Join = spec.Join
	default:
		return nil, conflict("join")
	}
	switch {
	case len(spec.Allow) == 0 || reflect.DeepEqual(spec.Allow, have.Allow):
	case len(have.Allow) == 0:
		have.Allow = spec.Allow
	default:
		return nil, conflict("allow")
	}
	for _, r := range spec.Roles {
		if !slices.Contains(have.Roles, r) {
			have.Roles = append(have.Roles, r)
		}
	}
	switch {
	case spec.Stale == 0 || spec.Stale == have.Stale:
	case have.Stale == 0:
		have.Stale = spec.Stale
	default:
		return nil, conflict("stale")
	}
	return have, nil
}

func oneArg(c *caddy.Controller) (string, error) {
	args := c.RemainingArgs()
	if len(args) != 1 {
		return "", c.ArgErr()
	}
	return args[0], nil
}

func intArg(c *caddy.Controller, lo, hi int) (int, error) {
	prop := c.Val()
	v, err := oneArg(c)
	if err != nil {
		return 0, err
	}
	n, err := collector.ParseInt(prop, v, lo, hi)
	if err != nil {
		return 0, c.Errf("%v", err)
	}
	return n, nil
}

// checkHostPort validates host:port; with ipOnly the host must be an IP
// address and port 0 (any free port) is allowed, as for a bind address.
func checkHostPort(s string, ipOnly bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("'%s' is not host:port: %w", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > math.MaxUint16 || (p == 0 && !ipOnly) {
		return fmt.Errorf("'%s': bad port '%s'", s, port)
	}
	if host == "" {
		return errors.New("'" + s + "': empty host")
	}
	if ipOnly {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("'%s': host is not an IP address", s)
		}
	}
	return nil
}
