package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/hostkeys"
	"github.com/peerload/peerload/internal/atomicfile"
)

func (c *cli) runKnownHosts(args []string) error {
	f := c.newFlagSet("known-hosts", "[--name NAME,...] [--ca FILE] [--port N] [--pool P] [--out FILE]", `
Print an ssh_known_hosts file for the cluster: every virtual --name, each
machine's name and each of its addresses map to that machine's own host
keys, as its agent gossips them. ssh accepts a name listed with several keys
when one of them matches, so 'ssh cslab.example.edu' verifies whichever
machine the name resolved to, and no machine needs another's private key.

With --ca (the site's SSH host CA public key) the file is one
@cert-authority line for every name and address instead.

When no machine has gossiped a host key (agents still starting, none
reads /etc/ssh/ssh_host_*_key.pub) it fails and writes nothing. --out
replaces FILE only once the whole file is written, so a failure leaves the
old one in place; a shell redirection (> FILE) empties FILE before
peerload even starts.

    peerload known-hosts --name cslab.example.edu --out /etc/ssh/ssh_known_hosts`)
	names := f.String("name", "", "virtual `NAME[,NAME]` that may land on any machine (patterns like *.cslab.example.edu allowed)")
	ca := f.String("ca", "", "SSH host CA public key `FILE`: one @cert-authority line instead of the machines' keys")
	port := f.Int("port", 22, "ssh `PORT`; other than 22 every name becomes [name]:port")
	pool := f.String("pool", "", "only machines in `POOL`")
	out := f.String("out", "", "write to `FILE` (replaced whole, mode 0644) instead of standard output")
	apiAddr := f.apiFlag()
	if err := f.parseNoArgs(args); err != nil {
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
	var keyless []string
	keys := 0
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
		if len(h.Keys) == 0 {
			keyless = append(keyless, h.Name)
		}
		keys += len(h.Keys)
		hosts = append(hosts, h)
	}
	// A file of comments alone would make ssh refuse every machine (or,
	// without StrictHostKeyChecking, trust whatever answers): write none.
	switch {
	case opt.CA == nil && keys == 0:
		return fmt.Errorf("no host keys known: none of the %d machines%s has gossiped one (an agent reads /etc/ssh/ssh_host_*_key.pub when it starts); nothing written", len(hosts), inPool(*pool))
	case opt.CA != nil && len(hosts) == 0 && len(opt.Names) == 0:
		return fmt.Errorf("no machines%s and no --name: nothing to write", inPool(*pool))
	}
	var buf bytes.Buffer
	if err := hostkeys.KnownHosts(&buf, hosts, opt); err != nil {
		return err
	}
	if opt.CA == nil && len(keyless) > 0 {
		slices.Sort(keyless)
		fmt.Fprintf(c.stderr, "peerload known-hosts: warning: no host keys known for %s\n", strings.Join(keyless, ", "))
	}
	if *out == "" {
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	return atomicfile.Write(*out, buf.Bytes(), 0o644)
}
