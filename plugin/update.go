package peerload

import (
	"errors"

	"github.com/coredns/caddy"

	"github.com/peerload/peerload/agent"
)

// updateSpec is a parsed `update HOST:PORT { ... }` sub-block of the peerload
// block: push the same answers to a BIND server with RFC 2136.
// Placeholder until the updater lands.
type updateSpec struct{}

// parseUpdate parses an `update` sub-block; c is positioned on the "update"
// token.
func parseUpdate(c *caddy.Controller) (*updateSpec, error) {
	return nil, errors.New("update: not implemented yet")
}

// start begins pushing the top-n of pool for names through member a; the
// returned function stops it.
func (u *updateSpec) start(a *agent.Agent, names []string, top int, ttl uint32, pool string, fallback agent.Fallback) (stop func(), err error) {
	return func() {}, errors.New("update: not implemented yet")
}
