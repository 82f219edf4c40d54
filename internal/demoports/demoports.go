// Package demoports is the one place the demo's fixed ports are written
// down for Go. The demo (`make run`: scripts/demo.sh with
// Corefile.example and Caddyfile.example) listens on them at its address;
// the tests that run a demo, or check that its ports are free, take them
// from here, and TestDemoFilesAgree holds the script and the two examples,
// which cannot import Go, to the same numbers.
//
// Everything else the tests start listens on a port the kernel chose
// (port 0, or test.freePort): only the demo, which people run by hand
// and read about in the README, has fixed ports.
package demoports

import "fmt"

// Machines is how many lab machines the demo runs (lab01..lab04).
const Machines = 4

// The lab machines' ports: labNN gossips on FirstGossip+NN-1 (UDP and
// TCP) and serves its API and status page on FirstAPI+NN-1 (TCP). lab01's
// are peerload's defaults, so `peerload top` on the demo machine finds it.
const (
	FirstGossip = 7946
	FirstAPI    = 1981
)

// CoreDNS's ports (Corefile.example).
const (
	DNS            = 1053 // UDP and TCP
	CoreDNSGossip  = 7950 // UDP and TCP
	CoreDNSHealth  = 8091
	CoreDNSReady   = 8181
	CoreDNSMetrics = 9153
)

// Caddy's ports (Caddyfile.example).
const (
	CaddyGossip = 7951 // UDP and TCP
	CaddySticky = 8080 // a new session goes to the least-loaded machine, then stays
	CaddyBest   = 8081 // every request to one of the best machines
	CaddyAdmin  = 2019
)

// Gossip is lab machine i's gossip port (i from 1).
func Gossip(i int) int { return FirstGossip + i - 1 }

// API is lab machine i's API port (i from 1).
func API(i int) int { return FirstAPI + i - 1 }

// Port is one port the demo listens on.
type Port struct {
	Proto string // "tcp" or "udp"
	Port  int
	What  string
}

func (p Port) String() string { return fmt.Sprintf("%d/%s (%s)", p.Port, p.Proto, p.What) }

// All lists every port the whole demo (agents, CoreDNS and Caddy) listens
// on.
func All() []Port {
	var ports []Port
	both := func(port int, what string) {
		ports = append(ports, Port{"tcp", port, what}, Port{"udp", port, what})
	}
	for i := 1; i <= Machines; i++ {
		both(Gossip(i), fmt.Sprintf("gossip of lab%02d", i))
	}
	for i := 1; i <= Machines; i++ {
		ports = append(ports, Port{"tcp", API(i), fmt.Sprintf("API of lab%02d", i)})
	}
	both(CoreDNSGossip, "gossip of CoreDNS")
	both(DNS, "DNS")
	ports = append(ports,
		Port{"tcp", CoreDNSHealth, "CoreDNS health"}, Port{"tcp", CoreDNSReady, "CoreDNS ready"}, Port{"tcp", CoreDNSMetrics, "CoreDNS metrics"})
	both(CaddyGossip, "gossip of Caddy")
	ports = append(ports,
		Port{"tcp", CaddySticky, "Caddy sticky site"}, Port{"tcp", CaddyBest, "Caddy site"}, Port{"tcp", CaddyAdmin, "Caddy admin"})
	return ports
}
