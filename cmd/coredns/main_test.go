package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
)

// TestDirectivesMatchPlugins keeps the directive list and the compiled-in
// plugins in step: every registered plugin has a place in the order and
// every directive names a registered plugin.
func TestDirectivesMatchPlugins(t *testing.T) {
	var registered []string
	for _, p := range caddy.ListPlugins()["others"] {
		if name, ok := strings.CutPrefix(p, "dns."); ok {
			registered = append(registered, name)
		}
	}
	if len(registered) == 0 {
		t.Fatal("no dns plugins registered")
	}
	for _, p := range registered {
		if !slices.Contains(dnsserver.Directives, p) {
			t.Errorf("plugin %q is compiled in but has no place in the directives", p)
		}
	}
	for _, d := range dnsserver.Directives {
		if !slices.Contains(registered, d) {
			t.Errorf("directive %q names no compiled-in plugin", d)
		}
	}
}

// TestDirectivesOrder checks the positions that matter: peerload answers
// before file and after dnssec (which signs what peerload writes), and the
// order is a subsequence of CoreDNS's stock order.
func TestDirectivesOrder(t *testing.T) {
	pl, file := slices.Index(directives, "peerload"), slices.Index(directives, "file")
	if pl < 0 || file < 0 || pl+1 != file {
		t.Fatalf("peerload at %d, file at %d: peerload must come right before file", pl, file)
	}
	if sec := slices.Index(directives, "dnssec"); sec < 0 || sec > pl {
		t.Fatalf("dnssec at %d, peerload at %d: dnssec must come before peerload to sign its replies", sec, pl)
	}
	stock := []string{"root", "metadata", "reload", "bind", "debug", "ready", "health", "prometheus", "errors", "log",
		"dnstap", "any", "chaos", "loadbalance", "rewrite", "acl", "cache", "dnssec", "minimal", "transfer", "hosts", "file", "forward", "whoami"}
	var got []string
	for _, d := range directives {
		if d != "peerload" {
			got = append(got, d)
		}
	}
	if !slices.Equal(got, stock) {
		t.Errorf("directives without peerload = %v, want the stock order %v", got, stock)
	}
}

// TestVersion: the version output names the peerload build.
func TestVersion(t *testing.T) {
	setVersion()
	if !strings.HasPrefix(caddy.AppVersion, "1.") || !strings.Contains(caddy.AppVersion, "+peerload-dev") {
		t.Errorf("AppVersion = %q, want CoreDNS's version +peerload-VERSION", caddy.AppVersion)
	}
	if !strings.HasPrefix(coremain.GitCommit, "peerload commit ") || len(coremain.GitCommit) <= len("peerload commit ") {
		t.Errorf("GitCommit = %q", coremain.GitCommit)
	}
}
