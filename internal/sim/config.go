package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
)

// Policy names, in the order results are reported.
const (
	PolicyRoundRobin = "round-robin"
	PolicyRandom     = "random"
	PolicyPeerMon    = "peermon"
	PolicyLbnamed    = "lbnamed"
	// PolicyPeerload is the shipped plugin: its defaults, herd-aware.
	PolicyPeerload = "peerload"
	// PolicyPeerloadNoHerd is the same with `herd off`: the ranking alone.
	PolicyPeerloadNoHerd = "peerload-noherd"
	// PolicyPeerloadHerd is PolicyPeerload by another name: herd-awareness
	// was an option before it was the default, and scripts read its row.
	PolicyPeerloadHerd = "peerload-herd"
	// PolicyOracle is no real policy but the bound: every login goes to the
	// machine with the fewest processes at that instant.
	PolicyOracle = "oracle"
)

// Policies lists every policy the simulator knows.
var Policies = []string{PolicyRoundRobin, PolicyRandom, PolicyPeerMon, PolicyLbnamed, PolicyPeerloadNoHerd, PolicyPeerload, PolicyPeerloadHerd, PolicyOracle}

// Config describes one lab and how it is run. Fields named like a flag of
// `peerload simulate` are set by it; the others keep DefaultConfig's model.
type Config struct {
	// Machines, each with Cores cores.
	Machines, Cores int
	// Util is the long-run CPU demand (background plus logins) ÷ all cores.
	Util float64
	// Burst logins arrive every BurstEvery (a class starting), spread
	// uniformly over BurstSpread; Burst 0 disables bursts.
	Burst       int
	BurstEvery  time.Duration
	BurstSpread time.Duration
	// TTL is how long resolvers cache an answer (0: every login asks).
	TTL time.Duration
	// Top is how many machines peerload hands out per answer.
	Top int
	// Interval is the agents' sampling interval; Refresh the longest an
	// agent stays quiet (it reports sooner when its load changed enough
	// to matter, as the real agent does). A report promises the next
	// within Refresh + Interval, and a node whose report is twice that old
	// stops being a candidate, as in the agent.
	Interval, Refresh time.Duration
	// GossipDelay is the median delay of a report from its agent to the
	// DNS server (exponentially distributed).
	GossipDelay time.Duration
	// Duration is how long logins are measured, after Warmup.
	Duration, Warmup time.Duration
	// Tail is how long arrivals go on after the measured period, so that
	// the last measured logins finish under realistic load; a measured
	// login still running at the end counts with the time it took so far.
	Tail time.Duration
	// Seed selects the workload and every random choice.
	Seed uint64
	// ChoiceSeed, when not 0, selects the policies' and gossip's random
	// choices instead of Seed, so one day (Seed) can be run with other
	// choices: how much of a result is the luck of the draw.
	ChoiceSeed uint64
	// Resolvers is the number of caching resolvers; each login asks one
	// at random. A resolver hands out its cached set in a random order
	// (BIND's rrset-order random, Unbound's rrset-roundrobin).
	Resolvers int

	// SessionWork is the mean CPU time of a login placed by DNS: one
	// CPU-bound process (exponentially distributed).
	SessionWork time.Duration
	// BackgroundShare is the part of Util that comes from sessions DNS
	// does not place (console users, `ssh lab07`, jobs left running):
	// CPU-bound processes of exponential lifetime BackgroundLife, more
	// frequent on some machines than others (each machine's rate is drawn
	// uniformly between none and twice the mean).
	BackgroundShare float64
	BackgroundLife  time.Duration
	// MemTotal, MemBase and MemPerSession give the memory term of the score.
	MemTotal, MemBase, MemPerSession uint64

	// PeerMonTop machines are written into DNS by a cron every PeerMonEvery.
	PeerMonTop   int
	PeerMonEvery time.Duration
	// LbnamedIncrement is the load lbnamed adds to the machine it answers,
	// until that machine's next report.
	LbnamedIncrement float64

	// Score, Fallback: how peerload ranks and what it answers with no
	// candidate (agent defaults).
	Score    rank.ScoreConfig
	Fallback rank.Fallback
	// Herd tunes peerload-herd.
	Herd herd.Config

	// Policies to run (nil: all), reported in the order of Policies,
	// then the variants (ParseVariant) in the order given.
	Policies []string
	// Trace, when set, records sessions per machine every TraceEvery for
	// plots.
	TraceEvery time.Duration
}

// DefaultConfig is the lab of issue 12: 50 machines with 4 cores at 70 %,
// a class of 30 logging in every 10 minutes, and the plugin's defaults
// (top 8, TTL 5 s).
func DefaultConfig() Config {
	return Config{
		Machines:         50,
		Cores:            4,
		Util:             0.7,
		Burst:            30,
		BurstEvery:       10 * time.Minute,
		BurstSpread:      time.Minute,
		TTL:              5 * time.Second, // the plugin's defaults
		Top:              8,
		Interval:         2 * time.Second,
		Refresh:          15 * time.Second,
		GossipDelay:      115 * time.Millisecond, // BENCHMARKS.md: p50 at N = 100
		Duration:         4 * time.Hour,
		Warmup:           15 * time.Minute,
		Tail:             30 * time.Minute,
		Seed:             1,
		Resolvers:        2,
		SessionWork:      5 * time.Minute,
		BackgroundShare:  0.3,
		BackgroundLife:   20 * time.Minute,
		MemTotal:         16 << 30,
		MemBase:          2 << 30,
		MemPerSession:    512 << 20,
		PeerMonTop:       5,
		PeerMonEvery:     time.Minute,
		LbnamedIncrement: 1,
		Score:            rank.DefaultScoreConfig(),
		Fallback:         rank.FallbackKeep,
		Herd:             herd.DefaultConfig(),
	}
}

// ConfigError is an invalid Config field; Field is the flag name of
// `peerload simulate` where there is one.
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

func bad(field, format string, args ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Validate reports the first field that cannot describe a lab.
func (c *Config) Validate() error {
	switch {
	case c.Machines < 1 || c.Machines > 10000:
		return bad("machines", "must be between 1 and 10000")
	case c.Cores < 1 || c.Cores > 1024:
		return bad("cores", "must be between 1 and 1024")
	case !(c.Util > 0 && c.Util < 1):
		return bad("util", "must be above 0 and below 1 (a fraction of all cores)")
	case c.Burst < 0:
		return bad("burst", "must not be negative")
	case c.Burst > 0 && c.BurstEvery <= c.BurstSpread:
		return bad("burst-every", "must be longer than the burst's spread (%s)", c.BurstSpread)
	case c.TTL < 0:
		return bad("ttl", "must not be negative")
	case c.Top < 1:
		return bad("top", "must be at least 1")
	case c.Interval < 100*time.Millisecond:
		return bad("interval", "must be at least 100ms")
	case c.Duration < time.Minute || c.Duration > 30*24*time.Hour:
		return bad("duration", "must be between 1m and 720h")
	case c.Resolvers < 1:
		return bad("resolvers", "must be at least 1")
	case c.SessionWork <= 0 || c.BackgroundLife <= 0:
		return bad("session-work", "session work and background lifetime must be positive")
	case c.BackgroundShare < 0 || c.BackgroundShare >= 1:
		return bad("background-share", "must be at least 0 and below 1")
	case c.PeerMonTop < 1 || c.PeerMonEvery <= 0:
		return bad("peermon", "top and period must be positive")
	case c.Refresh <= 0 || c.GossipDelay < 0:
		return bad("timing", "refresh must be positive, gossip delay not negative")
	case c.Warmup < 0:
		return bad("warmup", "must not be negative")
	case c.Tail < 0:
		return bad("tail", "must not be negative")
	}
	for _, p := range c.Policies {
		if IsVariant(p) {
			if _, err := ParseVariant(p); err != nil {
				return &ConfigError{Field: "policy", Err: err}
			}
			continue
		}
		if !slices.Contains(Policies, p) {
			return bad("policy", "unknown policy %q", p)
		}
	}
	if _, err := rank.ParseFallback(string(c.Fallback)); err != nil {
		return &ConfigError{Field: "fallback", Err: err}
	}
	if c.loginRate() <= 0 {
		return &ConfigError{Field: "burst", Err: errors.New("the bursts alone exceed the logins the utilisation leaves room for: lower --burst or raise --burst-every or --util")}
	}
	return nil
}

// choiceSeed is the seed of the policies' and gossip's random streams.
func (c *Config) choiceSeed() uint64 {
	if c.ChoiceSeed != 0 {
		return c.ChoiceSeed
	}
	return c.Seed
}

// loginRate is the rate (per second) of logins outside bursts that makes
// the offered load Util: background plus logins, including the bursts'.
func (c *Config) loginRate() float64 {
	sessions := c.Util * (1 - c.BackgroundShare) * float64(c.Machines*c.Cores) // busy cores
	rate := sessions / c.SessionWork.Seconds()
	if c.Burst > 0 {
		rate -= float64(c.Burst) / c.BurstEvery.Seconds()
	}
	return rate
}

// backgroundMean is the mean number of background sessions per machine.
func (c *Config) backgroundMean() float64 {
	return c.Util * c.BackgroundShare * float64(c.Cores)
}
