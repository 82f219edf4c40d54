package peerload

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
)

// Defaults of the properties.
const (
	// defaultBind keeps clear of an agent (7946) and of the CoreDNS
	// plugin's member (7947) on the same machine.
	defaultPort = 7948
	defaultBind = "0.0.0.0:7948"
	maxTop      = 64
)

// Cluster is what both modules share: the cluster member they read the
// machines' load from, and how they choose among the machines, with the
// property names of the CoreDNS plugin so that one cluster is configured
// alike in a Corefile and a Caddyfile. Every module with the same Bind
// shares one member, also across config reloads.
type Cluster struct {
	// Pool restricts the choice to the machines tagged with this pool
	// (`peerload agent --pool`). Default: every machine.
	Pool string `json:"pool,omitempty"`

	// By is what the ranking sorts on: "combined" (default: load per
	// CPU, memory in use and users), "cpu" or "mem".
	By string `json:"by,omitempty"`

	// Top is how many of the best machines are used, 1 to 64: the
	// upstream source hands out that many (default 8, as DNS answers
	// hold), the selection policy picks at random among the best that
	// many available upstreams (default 1: always the best, random among
	// equals).
	Top int `json:"top,omitempty"`

	// Fallback says what to use when no machine is a candidate: "keep"
	// (default) the last chosen machines that may come back (dead,
	// suspect or stale, never drained, left or failing a check), "all"
	// every alive machine, "none" nothing.
	Fallback string `json:"fallback,omitempty"`

	// Herd is "on" (default) or "off". On, the module counts the machines
	// it hands out and ranks each as if its load already showed them
	// (their reports lag a login by up to the kernel's one-minute
	// average), so a burst of new sessions spreads over many machines.
	Herd string `json:"herd,omitempty"`

	// Name is the member's name in the cluster. Default: caddy-<host>,
	// with -<port> appended when Bind is not on port 7948.
	Name string `json:"name,omitempty"`

	// Bind is the member's gossip address (IP:port, UDP and TCP).
	// Default: 0.0.0.0:7948. Port 0 picks a free port.
	Bind string `json:"bind,omitempty"`

	// Join lists members (host:port) to join; retried in the background
	// until one answers.
	Join []string `json:"join,omitempty"`

	// Keyring is the gossip encryption keyring file (`peerload keygen`).
	// Without one gossip is in clear text and the member logs a warning.
	Keyring string `json:"keyring,omitempty"`

	// Label is the cluster label: members with another label are ignored.
	Label string `json:"label,omitempty"`

	// Allow accepts gossip only from these networks (CIDR prefixes).
	Allow []string `json:"allow,omitempty"`

	// Profile is the timing profile: "lan" (default) or "local" (one
	// machine: demos and tests).
	Profile string `json:"profile,omitempty"`

	// Stale is how old a machine's last report may be before it stops
	// being a candidate. Default: twice the lifetime its sender promised.
	Stale caddy.Duration `json:"stale,omitempty"`
}

// memberSpec is what makes up one cluster member: every module with the
// same Bind in one configuration gives the same spec.
type memberSpec = collector.Spec

// rankPolicy is how the module chooses machines, the one policy every
// integration uses; top is the module's default for Top. With herd on it
// counts in a Herd of its own.
func (c *Cluster) rankPolicy(top int) rank.Policy {
	if c.Top > 0 {
		top = c.Top
	}
	by, _ := rank.ParseBy(c.By)
	fb, _ := rank.ParseFallback(c.Fallback)
	p := rank.Policy{Pool: c.Pool, By: by, Top: top, Fallback: fb}
	if on, _ := rank.ParseHerd(c.Herd); on {
		p.Herd = herd.New(herd.Config{})
	}
	return p
}

// spec is the member the settings describe, defaults filled in. Call it
// after validate.
func (c *Cluster) spec() memberSpec {
	s := memberSpec{
		Name:    c.Name,
		Bind:    c.Bind,
		Join:    c.Join,
		Keyring: c.Keyring,
		Label:   c.Label,
		Stale:   time.Duration(c.Stale),
		Profile: c.Profile,
	}
	if s.Bind == "" {
		s.Bind = defaultBind
	}
	for _, a := range c.Allow {
		if p, err := netip.ParsePrefix(a); err == nil {
			s.Allow = append(s.Allow, p.Masked())
		}
	}
	return s
}

// validate checks every setting and names the property at fault. It does
// not read the keyring (provisioning does, with collector.CheckKeyring),
// so a Caddyfile adapts on a machine without it.
func (c *Cluster) validate() error {
	if c.Pool != "" {
		if err := agent.ValidatePool(c.Pool); err != nil {
			return fmt.Errorf("pool: %w", err)
		}
	}
	if _, err := rank.ParseBy(c.By); err != nil {
		return fmt.Errorf("by: %w", err)
	}
	if c.Top < 0 || c.Top > maxTop {
		return fmt.Errorf("top: %d out of range 1..%d", c.Top, maxTop)
	}
	if _, err := rank.ParseFallback(c.Fallback); err != nil {
		return fmt.Errorf("fallback: %w", err)
	}
	if _, err := rank.ParseHerd(c.Herd); err != nil {
		return err
	}
	for _, j := range c.Join {
		if err := checkJoin(j); err != nil {
			return fmt.Errorf("join: %w", err)
		}
	}
	for _, a := range c.Allow {
		if _, err := netip.ParsePrefix(a); err != nil {
			return fmt.Errorf("allow: '%s' is not a CIDR prefix: %w", a, err)
		}
	}
	if c.Stale < 0 {
		return fmt.Errorf("stale: duration must be positive, got '%s'", time.Duration(c.Stale))
	}
	// The member's settings follow the agent library's rules, checked
	// there and reported here by property name.
	return collector.Check(c.spec(), "caddy", defaultPort)
}

// checkJoin validates a member to join: host:port with a port from 1 to
// 65535 (the host may be a name, resolved when joining).
func checkJoin(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("'%s' is not host:port", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > math.MaxUint16 {
		return fmt.Errorf("'%s': bad port '%s'", s, port)
	}
	if host == "" {
		return fmt.Errorf("'%s': empty host", s)
	}
	return nil
}
