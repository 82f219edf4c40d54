package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/hostkeys"
)

func (c *cli) runKnownHosts(args []string) error {
	f := c.newFlagSet("known-hosts", "[--name NAME,...] [--ca FILE] [--port N] [--pool P]", `
Print an ssh_known_hosts file for the cluster: every virtual --name, each
machine's name and each of its addresses map to that machine's own host
keys, as its agent gossips them. ssh accepts a name listed with several keys
when one of them matches, so 'ssh cslab.example.edu' verifies whichever
machine the name resolved to, and no machine needs another's private key.

With --ca (the site's SSH host CA public key) the file is one
@cert-authority line for every name and address instead.

    peerload known-hosts --name cslab.example.edu > /etc/ssh/ssh_known_hosts`)
	names := f.String("name", "", "virtual `NAME[,NAME]` that may land on any machine (patterns like *.cslab.example.edu allowed)")
	ca := f.String("ca", "", "SSH host CA public key `FILE`: one @cert-authority line instead of the machines' keys")
	port := f.Int("port", 22, "ssh `PORT`; other than 22 every name becomes [name]:port")
	pool := f.String("pool", "", "only machines in `POOL`")
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	opt := hostkeys.Options{Names: splitList(*names)}
	if *port != 22 {
		opt.Port = *port
	}
	if *ca != "" {
		b, err := os.ReadFile(*ca)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		k, err := hostkeys.ParseKey(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("--ca %s: %w", *ca, err)
		}
		opt.CA = &k
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewClient(*apiAddr).Nodes(ctx, *pool, "")
	if err != nil {
		return err
	}
	var hosts []hostkeys.Host
	for _, n := range resp.Nodes {
		if n.Collector {
			continue
		}
		h := hostkeys.Host{Name: n.Name}
		for _, s := range []string{n.Addr4, n.Addr6} {
			if a, err := netip.ParseAddr(s); err == nil {
				h.Addrs = append(h.Addrs, a)
			}
		}
		for _, s := range n.HostKeys {
			if k, err := hostkeys.ParseKey(s); err == nil {
				h.Keys = append(h.Keys, k)
			}
		}
		hosts = append(hosts, h)
	}
	return hostkeys.KnownHosts(c.stdout, hosts, opt)
}
