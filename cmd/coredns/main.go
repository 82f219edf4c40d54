// Command coredns is CoreDNS with the peerload plugin and a curated set of
// stock plugins: enough to serve a zone (file, hosts, transfer), sign it
// online (dnssec), forward everything else, and run it in production
// (errors, log, health, ready, prometheus, cache, reload, acl). Build it
// with `make build`; it writes bin/coredns.
//
// A stock CoreDNS build gets the plugin from one plugin.cfg line, before
// `file`:
//
//	peerload:github.com/peerload/peerload/plugin/coredns
package main

import (
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	"github.com/peerload/peerload/internal/buildinfo"

	// The curated stock plugins; keep directives below in step.
	_ "github.com/coredns/coredns/plugin/acl"
	_ "github.com/coredns/coredns/plugin/any"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/chaos"
	_ "github.com/coredns/coredns/plugin/debug"
	_ "github.com/coredns/coredns/plugin/dnssec"
	_ "github.com/coredns/coredns/plugin/dnstap"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/metadata"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/minimal"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/root"
	_ "github.com/coredns/coredns/plugin/transfer"
	_ "github.com/coredns/coredns/plugin/whoami"

	_ "github.com/peerload/peerload/plugin/coredns"
)

// directives are the compiled-in plugins in CoreDNS's stock order (see
// core/dnsserver/zdirectives.go), with peerload right before file: it
// answers the virtual names inside a zone that file serves, and hands
// everything else down to file. dnssec comes before both, so in a signed
// zone it signs peerload's answers and denials as it signs file's.
var directives = []string{
	"root",
	"metadata",
	"reload",
	"bind",
	"debug",
	"ready",
	"health",
	"prometheus",
	"errors",
	"log",
	"dnstap",
	"any",
	"chaos",
	"loadbalance",
	"rewrite",
	"acl",
	"cache",
	"dnssec",
	"minimal",
	"transfer",
	"hosts",
	"peerload",
	"file",
	"forward",
	"whoami",
}

func init() {
	// Only what is compiled in: a Corefile naming another plugin fails
	// with "unknown directive" instead of a confusing missing plugin.
	dnsserver.Directives = directives
}

// setVersion makes `coredns -version` (and the banner at start) name the
// peerload build besides CoreDNS's own version:
//
//	CoreDNS-1.15.0+peerload-v0.3.0
//	linux/amd64, go1.26.8, peerload commit 1a2b3c4d5e6f
func setVersion() {
	caddy.AppVersion = coremain.CoreVersion + "+peerload-" + buildinfo.Version()
	coremain.GitCommit = "peerload commit " + buildinfo.Commit()
}

func main() {
	setVersion()
	coremain.Run()
}
