// Command caddy is Caddy with its standard modules and peerload's: the
// upstream source `dynamic peerload` and the selection policy `lb_policy
// peerload`, which send web sessions to the least-loaded machines of a
// peerload cluster. Build it with `make build`; it writes bin/caddy.
//
// It is what xcaddy builds from
//
//	xcaddy build --with github.com/peerload/peerload/plugin/caddy
//
// for a stock Caddy with the modules.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in the official build.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/peerload/peerload/plugin/caddy"
)

func main() {
	caddycmd.Main()
}
