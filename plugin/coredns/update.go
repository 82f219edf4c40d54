package peerload

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/coredns/caddy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/rfc2136"
)

// updateSpec is a parsed `update HOST:PORT { ... }` sub-block of the peerload
// block: push the same answers to a primary DNS server (BIND) with RFC 2136
// dynamic updates, for resolvers that do not ask CoreDNS.
//
//	update HOST:PORT {
//	    zone ZONE
//	    tsig-key FILE [KEYNAME]
//	    resync DURATION
//	    margin SCORE
//	    min-interval DURATION
//	    timeout DURATION
//	    insecure-no-tsig
//	    allow-md5
//	}
type updateSpec struct {
	server   string
	zone     string
	keyFile  string
	keyName  string
	key      *rfc2136.Key
	insecure bool
	allowMD5 bool
	resync   time.Duration
	margin   float64
	minIntv  time.Duration
	timeout  time.Duration
}

// parseUpdate parses an `update` sub-block; c is positioned on the "update"
// token. The TSIG key file is read here so a bad key fails at start.
func parseUpdate(c *caddy.Controller) (*updateSpec, error) {
	u := &updateSpec{}
	args := c.RemainingArgs()
	if len(args) != 1 {
		return nil, c.ArgErr()
	}
	u.server = args[0]
	if _, _, err := net.SplitHostPort(u.server); err != nil {
		u.server = net.JoinHostPort(args[0], "53")
		if _, _, err := net.SplitHostPort(u.server); err != nil {
			return nil, c.Errf("update: server '%s' is not HOST:PORT", args[0])
		}
	}
	if !c.NextArg() || c.Val() != "{" {
		return nil, c.Errf("update %s: needs a block with at least zone and tsig-key", args[0])
	}
	closed := false
	for c.Next() {
		prop := c.Val()
		if prop == "}" {
			closed = true
			break
		}
		vals := c.RemainingArgs()
		one := func() (string, error) {
			if len(vals) != 1 {
				return "", c.ArgErr()
			}
			return vals[0], nil
		}
		dur := func() (time.Duration, error) {
			v, err := one()
			if err != nil {
				return 0, err
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				return 0, c.Errf("update: %s: invalid duration '%s': %v", prop, v, err)
			}
			if d <= 0 {
				return 0, c.Errf("update: %s: duration must be positive, got '%s'", prop, v)
			}
			return d, nil
		}
		var err error
		switch prop {
		case "zone":
			u.zone, err = one()
		case "tsig-key":
			if len(vals) < 1 || len(vals) > 2 {
				return nil, c.ArgErr()
			}
			u.keyFile = vals[0]
			if len(vals) == 2 {
				u.keyName = vals[1]
			}
		case "resync":
			u.resync, err = dur()
		case "min-interval":
			u.minIntv, err = dur()
		case "timeout":
			u.timeout, err = dur()
		case "margin":
			var v string
			if v, err = one(); err == nil {
				u.margin, err = strconv.ParseFloat(v, 64)
				if err != nil || u.margin < 0 {
					return nil, c.Errf("update: margin '%s' must be a non-negative number", v)
				}
				if u.margin == 0 {
					u.margin = -1 // an explicit 0 means no hysteresis
				}
			}
		case "insecure-no-tsig":
			if len(vals) != 0 {
				return nil, c.ArgErr()
			}
			u.insecure = true
		case "allow-md5":
			if len(vals) != 0 {
				return nil, c.ArgErr()
			}
			u.allowMD5 = true
		default:
			return nil, c.Errf("update: unknown property '%s'", prop)
		}
		if err != nil {
			return nil, err
		}
	}
	if !closed {
		return nil, c.EOFErr()
	}
	if u.zone == "" {
		return nil, c.Errf("update %s: zone is required", u.server)
	}
	switch {
	case u.keyFile != "" && u.insecure:
		return nil, c.Errf("update %s: tsig-key and insecure-no-tsig exclude each other", u.server)
	case u.keyFile != "":
		k, err := rfc2136.ReadKeyFile(u.keyFile, u.keyName, u.allowMD5)
		if err != nil {
			return nil, c.Errf("update %s: %v", u.server, err)
		}
		u.key = &k
	case !u.insecure:
		return nil, c.Errf("update %s: tsig-key FILE is required (make one with tsig-keygen), or insecure-no-tsig to send unsigned updates", u.server)
	}
	return u, nil
}

// roles are the tags the cluster member must carry (agent.Config.Roles,
// set before agent.New) so that of several CoreDNS servers updating the
// same names exactly one writes.
func (u *updateSpec) roles(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = rfc2136.Role(u.zone, n)
	}
	return out
}

// config is the updater configuration for a peerload block's names and
// answer settings (top, ttl, pool, by, fallback, herd), so BIND receives what the
// plugin itself answers.
func (u *updateSpec) config(names []string, top int, ttl uint32, pool string, by rank.By, fallback rank.Fallback, herd bool) rfc2136.Config {
	return rfc2136.Config{
		Server: u.server, Zone: u.zone, Names: names, Top: top, TTL: ttl, Pool: pool, By: by, Fallback: fallback, NoHerd: !herd,
		Key: u.key, Insecure: u.insecure, Resync: u.resync, Margin: u.margin, MinInterval: u.minIntv,
		Timeout: u.timeout, Logger: slog.New(clogHandler{}), Registerer: prometheus.DefaultRegisterer,
	}
}

// start begins pushing updates as uc says through member a; the returned
// function stops it and waits until it has stopped.
func (u *updateSpec) start(a *agent.Agent, uc rfc2136.Config) (stop func(), err error) {
	up, err := rfc2136.New(uc)
	if err != nil {
		return nil, err
	}
	if err := up.CheckRoles(a); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := up.Run(ctx, a); err != nil {
			log.Errorf("update %s: %v", u.server, err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
		})
	}, nil
}
