// Package peerload holds Caddy modules that send web sessions to the
// least-loaded machines of a peerload cluster, from the same gossip and
// with the same choice as the CoreDNS plugin:
//
//   - http.reverse_proxy.upstreams.peerload (`dynamic peerload`) hands the
//     reverse proxy the best machines of a pool, best first;
//   - http.reverse_proxy.selection_policies.peerload (`lb_policy
//     peerload`) picks, among the upstreams the proxy has available, the
//     one on the least-loaded machine, random among equals.
//
// Both join the cluster as a collector member that hears every machine's
// load report and is never a candidate itself. A small app, `peerload`,
// which Caddy loads on demand, starts those members when the
// configuration starts. See README.md.
package peerload

import (
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"

	"github.com/peerload/peerload/agent/collector"
)

func init() {
	caddy.RegisterModule(new(App))
	caddy.RegisterModule(new(Upstreams))
	caddy.RegisterModule(new(Selection))
}

// appID is the ID of the App.
const appID = "peerload"

// App starts the cluster members of one configuration's peerload modules
// when the configuration starts. It has no settings: the modules load it
// (ctx.App) and hand it their hold on a member. Starting members here
// rather than in the modules' Provision keeps `caddy validate` from
// binding gossip ports or joining a cluster, and starts a reloaded
// configuration's new member only once Caddy commits to running it.
type App struct {
	mu      sync.Mutex
	uses    []memberUse
	started bool
}

// memberUse is one module's hold on a member, with the settings it gives
// it.
type memberUse struct {
	h    *collector.Handle
	spec collector.Spec
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  appID,
		New: func() caddy.Module { return new(App) },
	}
}

// use adds a module's hold on a member. Modules of one configuration that
// share a bind address share a member, so they must give it the same
// settings.
func (a *App) use(h *collector.Handle, spec collector.Spec) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, u := range a.uses {
		if u.spec.Bind != spec.Bind {
			continue
		}
		if diff := collector.Differences(u.spec, spec); len(diff) > 0 {
			return fmt.Errorf("bind %s: %s differs from another peerload module of this configuration on the same bind address; "+
				"modules sharing a bind address share one cluster member, so give its settings identically (import one snippet) or use another bind", spec.Bind, diff[0])
		}
	}
	a.uses = append(a.uses, memberUse{h: h, spec: spec})
	if a.started {
		return h.Start()
	}
	return nil
}

// Start implements caddy.App: it starts every member the configuration's
// modules use, or applies a reload's join list and keyring to those that
// already run.
func (a *App) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.started = true
	for _, u := range a.uses {
		if err := u.h.Start(); err != nil {
			return err
		}
	}
	return nil
}

// Stop implements caddy.App. The members stop when the last module
// using them is cleaned up, after the next configuration took them over.
func (a *App) Stop() error { return nil }

// Interface guards
var (
	_ caddy.App    = (*App)(nil)
	_ caddy.Module = (*App)(nil)
)
