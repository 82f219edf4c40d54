package agent

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/health"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/sample"
)

// Config is everything an Agent needs. Build one with DefaultConfig (a LAN
// deployment) or DefaultLocalConfig (loopback tests and demos) and change what
// differs; New validates it and refuses a bad one with an error that names the
// field.
type Config struct {
	// Name is this node's unique name in the cluster (default: the hostname).
	// It is what `peerload top` prints and what `ssh $(peerload top)` uses.
	Name string

	// BindAddr and BindPort are where gossip listens, UDP and TCP. Port 0
	// picks a free port (tests).
	BindAddr string
	BindPort int

	// GossipAdvertise, when set, is the ip:port other members use to reach
	// this node's gossip port (NAT, several addresses). Empty lets memberlist
	// pick the bind address or the first private address.
	GossipAdvertise string

	// Addr4 and Addr6 are the addresses DNS hands out for this node
	// (--advertise). When Addr4 is invalid the gossip address is used if it is
	// IPv4.
	Addr4 netip.Addr
	Addr6 netip.Addr

	// Join lists host:port of members to join. The agent keeps retrying in
	// the background until one answers; after that memberlist keeps the
	// membership. JoinFile, when set, is read for more (one host:port a line,
	// '#' comments) at start and on Reload.
	Join     []string
	JoinFile string

	// KeyringFile holds gossip encryption keys (see ReadKeyring). Without one
	// gossip travels in clear text and New logs a warning.
	KeyringFile string
	// Keys, when set, are used instead of KeyringFile (tests); the first is
	// the primary key.
	Keys [][]byte

	// Label is memberlist's cluster label: members with another label are
	// ignored, so two clusters on one LAN never merge.
	Label string

	// Allow restricts gossip to these networks (memberlist CIDRsAllowed).
	// Empty allows any source.
	Allow []netip.Prefix

	// Collector makes this member hear every report without ever being a
	// candidate itself (DNS servers, updaters). A collector samples nothing.
	Collector bool

	// Pools tags this node; rankings can be asked for one pool.
	Pools []string

	// Roles are free-form tags carried in node meta so members can find each
	// other's functions, e.g. "nsupdate:cslab.example.edu." for an RFC 2136
	// updater (used to elect one active updater per name).
	Roles []string

	// ProbeTop is how many of the best candidates this member pings itself
	// every memberlist probe interval. A candidate that misses two pings in
	// a row is treated as suspect at once, so a dead node leaves the answers
	// within about a second instead of after memberlist's suspicion timeout
	// (which grows with the cluster). 0 picks the default: 10 for a
	// collector (DNS servers and updaters hand out the top few), none for a
	// candidate; a negative value leaves failure detection to memberlist.
	ProbeTop int

	// Interval is how often load is sampled and checks run.
	Interval time.Duration
	// RefreshInterval is the longest a node stays quiet: a report is sent
	// when the load changed enough to matter (Score.Delta/2) or when this
	// much time passed since the last one.
	RefreshInterval time.Duration
	// StaleAfter is how old a node's latest report may be before the node
	// stops being a candidate (a few refresh intervals).
	StaleAfter time.Duration

	// ProcRoot is the proc file system to sample (default /proc).
	ProcRoot string
	// Sampler, when set, replaces sampling ProcRoot (in-process tests and
	// benchmarks drive load through it). It is called from one goroutine.
	Sampler sample.Sampler

	// StateDir keeps what must survive a restart: the drain flag and the
	// report generation. Empty keeps both in memory only.
	StateDir string

	// Checks configures the local health checks.
	Checks health.Config

	// Score configures how load becomes a score.
	Score rank.ScoreConfig

	// Logger receives the agent's and memberlist's log lines. Nil logs to
	// slog's default logger with the node name.
	Logger *slog.Logger

	// Registerer, when set, receives the agent's Prometheus collectors.
	Registerer prometheus.Registerer

	// Memberlist is the base memberlist configuration; New overwrites the
	// fields it owns (name, bind, delegates, keys, label, CIDRs, transport).
	Memberlist *memberlist.Config
}

// DefaultConfig is for a real LAN: gossip on 0.0.0.0:7946, 2 s sampling.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	return &Config{
		Name:            host,
		BindAddr:        "0.0.0.0",
		BindPort:        7946,
		Interval:        2 * time.Second,
		RefreshInterval: 15 * time.Second,
		StaleAfter:      50 * time.Second,
		ProcRoot:        procfs.DefaultMountPoint,
		StateDir:        "/var/lib/peerload",
		Checks:          health.Config{SSHPort: 22, TmpFullPercent: 95, CommandTimeout: 5 * time.Second},
		Score:           rank.DefaultScoreConfig(),
		Memberlist:      uncompressed(memberlist.DefaultLANConfig()),
	}
}

// uncompressed turns memberlist's LZW compression off: reports, probes and
// acks are tens of bytes, which compression makes larger, and compressing
// every packet is most of an idle member's garbage.
func uncompressed(c *memberlist.Config) *memberlist.Config {
	c.EnableCompression = false
	return c
}

// DefaultLocalConfig is for clusters on loopback (tests, demos): port 0,
// fast sampling and failure detection, no state dir, no sshd check.
func DefaultLocalConfig() *Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.Interval = 250 * time.Millisecond
	c.RefreshInterval = 2 * time.Second
	c.StaleAfter = 8 * time.Second
	c.StateDir = ""
	c.Checks.SSHPort = 0
	ml := uncompressed(memberlist.DefaultLocalConfig())
	ml.ProbeInterval = 200 * time.Millisecond
	ml.ProbeTimeout = 100 * time.Millisecond
	ml.GossipInterval = 50 * time.Millisecond
	ml.SuspicionMult = 3
	ml.PushPullInterval = 5 * time.Second
	c.Memberlist = ml
	return c
}

// Validate checks c and names the field at fault.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("name is empty")
	}
	if len(c.Name) > 128 {
		return fmt.Errorf("name %q is longer than 128 bytes", c.Name)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fmt.Errorf("bind port %d out of range", c.BindPort)
	}
	if net.ParseIP(c.BindAddr) == nil {
		return fmt.Errorf("bind address %q is not an IP address", c.BindAddr)
	}
	if c.Addr4.IsValid() && !c.Addr4.Is4() {
		return fmt.Errorf("advertise address %s is not IPv4", c.Addr4)
	}
	if c.Addr6.IsValid() && (!c.Addr6.Is6() || c.Addr6.Is4In6()) {
		return fmt.Errorf("advertise address %s is not IPv6", c.Addr6)
	}
	if c.Interval <= 0 {
		return fmt.Errorf("interval must be positive, got %s", c.Interval)
	}
	if c.RefreshInterval < c.Interval {
		return fmt.Errorf("refresh interval %s is shorter than the sampling interval %s", c.RefreshInterval, c.Interval)
	}
	if c.StaleAfter <= c.RefreshInterval {
		return fmt.Errorf("stale-after %s must be longer than the refresh interval %s", c.StaleAfter, c.RefreshInterval)
	}
	if _, err := rank.ParseBy(string(c.Score.By)); err != nil {
		return err
	}
	if c.Score.CPUWeight < 0 || c.Score.MemWeight < 0 || c.Score.UserWeight < 0 || c.Score.Delta < 0 {
		return fmt.Errorf("score weights and delta must not be negative")
	}
	for _, p := range c.Pools {
		if p == "" || len(p) > 63 {
			return fmt.Errorf("pool name %q must be 1 to 63 bytes", p)
		}
	}
	if c.Memberlist == nil {
		return fmt.Errorf("memberlist config is nil")
	}
	return nil
}

// keys are the gossip keys: Keys, or else those of KeyringFile.
func (c *Config) keys() ([][]byte, error) {
	if len(c.Keys) > 0 || c.KeyringFile == "" {
		return c.Keys, nil
	}
	return gossip.ReadKeyring(c.KeyringFile)
}

// defaultCollectorProbeTop is how many best candidates a collector pings
// when ProbeTop is 0.
const defaultCollectorProbeTop = 10

// probeTop is how many best candidates this member pings itself.
func (c *Config) probeTop() int {
	if c.ProbeTop == 0 && c.Collector {
		return defaultCollectorProbeTop
	}
	return max(c.ProbeTop, 0)
}
