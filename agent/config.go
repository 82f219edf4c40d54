package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/health"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
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

	// ProbeTop is how many of the best candidates, of the whole ranking and
	// of each pool, this member pings itself every memberlist probe
	// interval. A candidate that misses two pings in a row is treated as
	// suspect at once, so a dead node leaves the answers within 1.5–2.5 s
	// on LAN timings instead of after memberlist's suspicion timeout
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
	// ForgetAfter is how long a member that left or died stays listed
	// (state "left" or "dead", in `peerload status` and the API) before it
	// is forgotten. It changes no answer: such a member is never a
	// candidate.
	ForgetAfter time.Duration
	// StaleAfter, when positive, caps how old a node's latest report may
	// be before the node stops being a candidate. Without it a report is
	// stale once twice the lifetime its sender promised has passed, so
	// members need not share timing settings.
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

// DefaultConfig is for a real LAN: gossip on 0.0.0.0:7946 with the "lan"
// timing profile.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	c := &Config{
		Name:     host,
		BindAddr: "0.0.0.0",
		BindPort: 7946,
		ProcRoot: procfs.DefaultMountPoint,
		StateDir: "/var/lib/peerload",
		Checks:   health.Config{SSHPort: 22, TmpFullPercent: 95, CommandTimeout: 5 * time.Second},
		Score:    rank.DefaultScoreConfig(),
	}
	_ = c.SetProfile(ProfileLAN)
	return c
}

// DefaultLocalConfig is for in-process clusters on loopback (tests): the
// "local" profile, port 0, no state dir, no sshd check.
func DefaultLocalConfig() *Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.StateDir = ""
	c.Checks.SSHPort = 0
	_ = c.SetProfile(ProfileLocal)
	return c
}

// Timing profiles, chosen by name (--profile, the Corefile's profile).
const (
	// ProfileLAN suits a real network: sampling every 2 s, a report at
	// least every 15 s, memberlist's LAN failure detection, membership
	// rumours gossiped every 500 ms.
	ProfileLAN = "lan"
	// ProfileLocal suits a cluster on one machine (demos, tests): sampling
	// every 250 ms, a report at least every 2 s, failure detection within
	// about a second.
	ProfileLocal = "local"
)

// Profiles lists the timing profiles' names.
func Profiles() []string { return []string{ProfileLAN, ProfileLocal} }

// SetProfile applies a timing profile: Interval, RefreshInterval,
// ForgetAfter and the Memberlist timings. It changes nothing else, so the
// same profile means the same thing to an agent, an updater and the CoreDNS
// plugin. Members with different profiles work together: every report
// carries its sender's lifetime.
func (c *Config) SetProfile(name string) error {
	var ml *memberlist.Config
	switch name {
	case ProfileLAN:
		c.Interval, c.RefreshInterval, c.ForgetAfter = 2*time.Second, 15*time.Second, time.Minute
		ml = memberlist.DefaultLANConfig()
		// memberlist's gossip carries only membership rumours here (joins,
		// leaves, failures): loads travel in reports and the relay, and
		// collectors probe what they hand out. Its ticker wakes every
		// member each interval whether or not there is a rumour, so a
		// slower one takes most of an idle agent's wake-ups away. Not
		// slower than this: a healed partition converges by rumours
		// (members refute being dead), and at 100 members a 1 s interval
		// took it past issue 8's 10 s (docs/idle-floor.md).
		ml.GossipInterval = 500 * time.Millisecond
	case ProfileLocal:
		// ForgetAfter is a display time, as on a LAN: a machine that
		// died stays in `peerload status` long enough to be noticed.
		c.Interval, c.RefreshInterval, c.ForgetAfter = 250*time.Millisecond, 2*time.Second, time.Minute
		ml = memberlist.DefaultLocalConfig()
		ml.ProbeInterval = 200 * time.Millisecond
		ml.ProbeTimeout = 100 * time.Millisecond
		ml.GossipInterval = 50 * time.Millisecond
		ml.SuspicionMult = 3
		ml.PushPullInterval = 5 * time.Second
		// memberlist's local default retransmits a rumour half as often as
		// its LAN one, so a "new member alive" could miss a member and wait
		// for the next push/pull.
		ml.RetransmitMult = memberlist.DefaultLANConfig().RetransmitMult
	default:
		return fmt.Errorf("unknown timing profile %q (want %s)", name, strings.Join(Profiles(), " or "))
	}
	// Reports, probes and acks are tens of bytes, which compression makes
	// larger, and compressing every packet is most of an idle member's
	// garbage.
	ml.EnableCompression = false
	c.Memberlist = ml
	return nil
}

// lifetime is what this member promises with each report: the next one
// follows within a refresh interval, at the next sample after it.
func (c *Config) lifetime() time.Duration { return c.RefreshInterval + c.Interval }

// v1Lifetime stands in for the lifetime of a report that does not carry
// one (an agent of the previous release, LAN timings).
const v1Lifetime = 25 * time.Second

// staleAfter is how old a report may grow before its node stops being a
// candidate: twice the lifetime its sender promised (one lost report is
// no failure), capped by StaleAfter when set.
func (c *Config) staleAfter(r *report.Report) time.Duration {
	life := r.Lifetime
	if life <= 0 {
		life = v1Lifetime
	}
	limit := 2 * life
	if c.StaleAfter > 0 {
		limit = min(limit, c.StaleAfter)
	}
	return limit
}

// FieldError is a Config field with a value that cannot work. Front ends
// name the field their own way: the CLI as a flag, the Corefile as a
// property (FieldError.Field is the Go field name, e.g. "BindAddr").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate checks every rule a Config must meet, here and nowhere else, and
// returns a *FieldError naming the first field at fault.
func (c *Config) Validate() error {
	if err := ValidateName(c.Name); err != nil {
		return &FieldError{Field: "Name", Err: err}
	}
	bind, err := netip.ParseAddr(c.BindAddr)
	if err != nil {
		return fieldErr("BindAddr", "%q is not an IP address", c.BindAddr)
	}
	if c.BindPort < 0 || c.BindPort > 65535 {
		return fieldErr("BindPort", "port %d is not from 0 to 65535", c.BindPort)
	}
	if c.GossipAdvertise != "" {
		ap, err := netip.ParseAddrPort(c.GossipAdvertise)
		if err != nil || ap.Port() == 0 {
			return fieldErr("GossipAdvertise", "%q is not IP:port", c.GossipAdvertise)
		}
		if err := usable(ap.Addr()); err != nil {
			return &FieldError{Field: "GossipAdvertise", Err: err}
		}
		bind = ap.Addr()
	}
	if len(c.Allow) > 0 && !bind.IsUnspecified() && !slices.ContainsFunc(c.Allow, func(p netip.Prefix) bool { return p.Contains(bind.Unmap()) }) {
		return fieldErr("Allow", "this member's own address %s is outside the allow list", bind)
	}
	if c.Addr4.IsValid() {
		if !c.Addr4.Is4() {
			return fieldErr("Addr4", "%s is not an IPv4 address", c.Addr4)
		}
		if err := usable(c.Addr4); err != nil {
			return &FieldError{Field: "Addr4", Err: err}
		}
	}
	if c.Addr6.IsValid() {
		if !c.Addr6.Is6() || c.Addr6.Is4In6() {
			return fieldErr("Addr6", "%s is not an IPv6 address", c.Addr6)
		}
		if err := usable(c.Addr6); err != nil {
			return &FieldError{Field: "Addr6", Err: err}
		}
	}
	for _, p := range c.Pools {
		if err := ValidatePool(p); err != nil {
			return &FieldError{Field: "Pools", Err: err}
		}
	}
	if len(c.Label) > 255 {
		return fieldErr("Label", "longer than 255 bytes")
	}
	switch {
	case c.Interval <= 0:
		return fieldErr("Interval", "must be positive, got %s", c.Interval)
	case c.RefreshInterval < c.Interval:
		return fieldErr("RefreshInterval", "%s is shorter than the sampling interval %s", c.RefreshInterval, c.Interval)
	case c.StaleAfter < 0:
		return fieldErr("StaleAfter", "must not be negative, got %s", c.StaleAfter)
	case c.ForgetAfter <= 0:
		return fieldErr("ForgetAfter", "must be positive, got %s", c.ForgetAfter)
	case c.Checks.SSHPort < 0 || c.Checks.SSHPort > 65535:
		return fieldErr("Checks.SSHPort", "port %d is not from 0 to 65535", c.Checks.SSHPort)
	case c.Checks.CommandTimeout < 0:
		return fieldErr("Checks.CommandTimeout", "must not be negative, got %s", c.Checks.CommandTimeout)
	case c.Checks.TmpFullPercent < 0 || c.Checks.TmpFullPercent > 100:
		return fieldErr("Checks.TmpFullPercent", "%v is not a percentage", c.Checks.TmpFullPercent)
	}
	if _, err := rank.ParseBy(string(c.Score.By)); err != nil {
		return &FieldError{Field: "Score.By", Err: err}
	}
	for field, w := range map[string]float64{"Score.CPUWeight": c.Score.CPUWeight, "Score.MemWeight": c.Score.MemWeight,
		"Score.UserWeight": c.Score.UserWeight, "Score.Delta": c.Score.Delta} {
		if !(w >= 0 && w <= 1e6) {
			return fieldErr(field, "%v is not a number from 0 to 1e6", w)
		}
	}
	if c.Memberlist == nil {
		return fieldErr("Memberlist", "is nil")
	}
	return nil
}

// ValidateName checks a node name: it is handed out as a DNS label (in
// <node>.NAME answers) and as an ssh host name, so it must be a host name:
// dot-separated labels of letters, digits and '-', at most 128 bytes.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > report.MaxNameBytes {
		return fmt.Errorf("name %q is longer than %d bytes", name, report.MaxNameBytes)
	}
	for label := range strings.SplitSeq(name, ".") {
		if !isLabel(label) {
			return fmt.Errorf("name %q is not a host name (dot-separated labels of letters, digits and '-')", name)
		}
	}
	return nil
}

// ValidatePool checks a pool name: a DNS label, as a pool may name DNS
// records and files.
func ValidatePool(name string) error {
	if !isLabel(name) {
		return fmt.Errorf("pool %q is not a DNS label (letters, digits and '-', 1 to 63)", name)
	}
	return nil
}

// isLabel reports whether s is a host name label: letters, digits and '-'
// (not first or last), 1 to 63 bytes.
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// usable reports why an address cannot be handed out to clients or
// advertised to members, if it cannot.
func usable(a netip.Addr) error {
	switch {
	case a.IsUnspecified():
		return fmt.Errorf("%s is the unspecified address; give this machine's own address", a)
	case a.IsMulticast():
		return fmt.Errorf("%s is a multicast address", a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%s is the broadcast address", a)
	case a.Is6() && a.IsLinkLocalUnicast():
		return fmt.Errorf("%s is link-local: clients on other links cannot reach it", a)
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
