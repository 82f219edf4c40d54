// Package rfc2136 keeps names in an existing DNS server (BIND) pointing at
// the least-loaded nodes of a peerload cluster with RFC 2136 dynamic
// updates signed with TSIG.
//
// An Updater watches a collector member's snapshots, decides per name which
// top-N addresses the name should hold (Decide, sticky with a score margin
// so small wobbles never churn the zone), and when that set changes sends
// one UPDATE that deletes the name's A and AAAA RRsets and adds the new
// records atomically. A periodic resync reads what the server holds and
// repairs drift. Several updaters may serve a name; the live one with the
// lowest member name writes (Active), the others wait.
package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/watch"
)

// Source is what the updater needs from a cluster member; *agent.Agent
// (normally a collector) implements it.
type Source interface {
	// Name is this member's name, used for the active-updater election.
	Name() string
	// Snapshot and Subscribe are what every reader of a member watches.
	watch.Source
}

// Config configures an Updater. Zero fields take the documented defaults.
type Config struct {
	// Server is the primary DNS server's host:port.
	Server string
	// Zone is the zone the names live in (the UPDATE's zone section).
	Zone string
	// Names are the names kept pointing at the best nodes; each must be in
	// Zone.
	Names []string
	// Top is how many nodes each name holds (default 8, as the CoreDNS
	// plugin's answers).
	Top int
	// TTL of the records written (default 5 s, as the plugin's). Keep it short: resolvers
	// cache the old set for this long after a change.
	TTL uint32
	// Pool restricts candidates to one pool; By selects the ranking.
	Pool string
	By   rank.By
	// Fallback says what to publish when no node is a candidate (default
	// keep: leave the records alone; none deletes them; all publishes the
	// best alive members ignoring checks).
	Fallback rank.Fallback
	// NoHerd ranks on the reports alone. By default the updater counts
	// what it publishes as handed out each TTL it is held while the
	// reports show logins on it (resolvers fetch the set again as their
	// copies expire, and the logins behind them load its machines before
	// their load average can show it), so in a burst the set moves on to
	// the next machines instead of staying on the ones that looked best
	// (see rank.Policy.Herd).
	NoHerd bool

	// Key signs every message. It is required unless Insecure is set.
	Key *Key
	// Insecure allows unsigned updates (a server that grants updates by
	// address). Never use it across a network you do not control.
	Insecure bool

	// Resync is how often the server's records are read back and drift
	// repaired (default 5m).
	Resync time.Duration
	// Margin is the score hysteresis (default 0.1): a published node is
	// replaced by a better one only when the challenger's score is lower
	// by more than Margin. Negative disables it (always the exact top-N).
	Margin float64
	// MinInterval is the least time between two updates of one name
	// (default 1s), so a storm of changes becomes one update.
	MinInterval time.Duration
	// Timeout bounds one exchange with the server (default 5s).
	Timeout time.Duration
	// RetryMin and RetryMax bound the exponential backoff after a failure
	// (default 1s and 30s).
	RetryMin, RetryMax time.Duration
	// Settle is how long a starting updater only listens, once its member
	// has joined, before it may become the active writer: long enough for
	// gossip to tell it about updaters that were already running (default
	// 2s; negative: none). Without it two updaters starting together would
	// both write before they hear of each other.
	Settle time.Duration

	// Logger receives state changes (one line per change, never per
	// retry). Nil logs to stderr.
	Logger *slog.Logger
	// Registerer, when set, receives the updater's Prometheus metrics.
	Registerer prometheus.Registerer
}

// Validate reports what New would refuse in c, without starting anything,
// so a configuration file can fail at parse time.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

func (c *Config) withDefaults() (Config, error) {
	cfg := *c
	if cfg.Server == "" {
		return cfg, errors.New("rfc2136: no server given")
	}
	if _, port, err := net.SplitHostPort(cfg.Server); err != nil || port == "" {
		return cfg, fmt.Errorf("rfc2136: server %q: want host:port", cfg.Server)
	}
	if cfg.Zone == "" {
		return cfg, errors.New("rfc2136: no zone given")
	}
	if _, ok := dns.IsDomainName(cfg.Zone); !ok {
		return cfg, fmt.Errorf("rfc2136: zone %q is not a domain name", cfg.Zone)
	}
	cfg.Zone = dns.CanonicalName(cfg.Zone)
	if len(cfg.Names) == 0 {
		return cfg, errors.New("rfc2136: no name given")
	}
	names := make([]string, 0, len(cfg.Names))
	for _, n := range cfg.Names {
		if _, ok := dns.IsDomainName(n); !ok || n == "" {
			return cfg, fmt.Errorf("rfc2136: name %q is not a domain name", n)
		}
		n = dns.CanonicalName(n)
		if !dns.IsSubDomain(cfg.Zone, n) {
			return cfg, fmt.Errorf("rfc2136: name %s is not in zone %s", n, cfg.Zone)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	cfg.Names = names
	if cfg.Top < 0 {
		return cfg, fmt.Errorf("rfc2136: top %d must be positive", cfg.Top)
	}
	if cfg.Top == 0 {
		cfg.Top = 8
	}
	if cfg.TTL == 0 {
		cfg.TTL = 5
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Second
	}
	if _, err := rank.ParseBy(string(cfg.By)); err != nil {
		return cfg, fmt.Errorf("rfc2136: %w", err)
	}
	fb, err := rank.ParseFallback(string(cfg.Fallback))
	if err != nil {
		return cfg, fmt.Errorf("rfc2136: %w", err)
	}
	cfg.Fallback = fb
	if cfg.Key == nil && !cfg.Insecure {
		return cfg, errors.New("rfc2136: no TSIG key: refusing to send unsigned updates (give a key file, or allow insecure updates explicitly)")
	}
	if cfg.Resync == 0 {
		cfg.Resync = 5 * time.Minute
	}
	if cfg.Resync < 0 {
		return cfg, fmt.Errorf("rfc2136: resync period %s must be positive", cfg.Resync)
	}
	if cfg.Margin == 0 {
		cfg.Margin = 0.1
	}
	cfg.Margin = max(cfg.Margin, 0)
	if cfg.MinInterval == 0 {
		cfg.MinInterval = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(30*time.Second, cfg.RetryMin)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default().With("from", "rfc2136")
	}
	return cfg, nil
}

// Updater keeps Config.Names in the server pointing at the best nodes.
// Create it with New and run it with Run.
type Updater struct {
	cfg    Config
	policy Policy
	herd   *herd.Herd // nil with NoHerd
	m      *metrics
	names  []*nameState
	key    atomic.Pointer[Key] // replaced by SetKey (HUP), read per message
}

// SetKey makes every later message use k (a rotated TSIG key read again
// on HUP). A nil k is ignored: the updater never drops to unsigned.
func (u *Updater) SetKey(k *Key) {
	if k != nil {
		u.key.Store(k)
	}
}

// nameState is everything the updater knows about one name.
type nameState struct {
	name, role string
	active     bool
	// synced: held is what the server holds right now (read back or
	// written since the last resync or failure).
	synced, everSynced bool
	held               []netip.Addr
	// intended is the set last decided on, the base of the hysteresis.
	intended    []netip.Addr
	hasIntended bool
	kept        rank.Kept // what fallback keep remembers
	lastWrite   time.Time
	handedAt    time.Time      // when the herd last looked at held
	users       map[string]int // the held machines' users then
	retryAt     time.Time
	bo          backoff
	status      string // "", "ok" or "failing: REASON": logged on change
}

// New validates cfg and registers the metrics.
func New(cfg Config) (*Updater, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(c.Registerer)
	if err != nil {
		return nil, err
	}
	u := &Updater{cfg: c, m: m, policy: Policy{Policy: rank.Policy{Top: c.Top, Pool: c.Pool, By: c.By, Fallback: c.Fallback}, Margin: c.Margin}}
	if !c.NoHerd {
		u.herd = herd.New(herd.Config{})
		u.policy.Herd = u.herd
	}
	u.key.Store(c.Key)
	for _, n := range c.Names {
		u.names = append(u.names, &nameState{name: n, role: Role(c.Zone, n), bo: backoff{Min: c.RetryMin, Max: c.RetryMax}})
	}
	return u, nil
}

// Roles are the role tags this updater's member must carry in
// agent.Config.Roles (set before agent.New) for the election to work.
func (u *Updater) Roles() []string {
	out := make([]string, len(u.names))
	for i, n := range u.names {
		out[i] = n.role
	}
	return out
}

// CheckRoles fails when src's own node in its snapshot lacks one of
// Roles: then other updaters cannot see this one and several would write
// the same name. A member not yet in its own snapshot passes.
func (u *Updater) CheckRoles(src Source) error {
	self := src.Name()
	snap := src.Snapshot()
	if snap == nil {
		return nil
	}
	me := snap.Node(self)
	if me == nil {
		return nil
	}
	for _, r := range u.Roles() {
		if !slices.Contains(me.Roles, r) {
			return fmt.Errorf("rfc2136: member %s does not carry role %q: add it to agent.Config.Roles before agent.New, or several updaters may write the same name", self, r)
		}
	}
	return nil
}

// Run keeps the names up to date until ctx ends. It returns an error only
// when it cannot start (CheckRoles fails). Failures talking to the server
// are logged, counted and retried with backoff.
func (u *Updater) Run(ctx context.Context, src Source) error {
	if err := u.CheckRoles(src); err != nil {
		return err
	}
	self := src.Name()
	if err := u.settle(ctx, src); err != nil {
		return nil
	}
	// Every resync the records are read back (no name counts as in sync);
	// step says when a name wants another look (a backoff, the herd).
	watch.Run(ctx, src, watch.Options{Every: u.cfg.Resync}, func(why watch.Why) time.Time {
		if why == watch.Tick {
			for _, n := range u.names {
				n.synced = false
			}
		}
		return u.step(ctx, src.Snapshot(), self)
	})
	return nil
}

// settle waits until src is ready (when it can tell) and then for
// cfg.Settle, so the election sees the updaters that were already there.
func (u *Updater) settle(ctx context.Context, src Source) error {
	if r, ok := src.(interface{ Ready() bool }); ok {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for !r.Ready() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	if u.cfg.Settle <= 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(u.cfg.Settle):
		return nil
	}
}

// step brings every name in line with snap and returns when it wants to
// run again (zero: on the next snapshot or resync).
func (u *Updater) step(ctx context.Context, snap *rank.Snapshot, self string) time.Time {
	var next time.Time
	for _, n := range u.names {
		if ctx.Err() != nil {
			return next
		}
		t := u.stepName(ctx, snap, self, n, time.Now())
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	return next
}

func (u *Updater) stepName(ctx context.Context, snap *rank.Snapshot, self string, n *nameState, now time.Time) time.Time {
	active := Active(snap, self, n.role)
	if active != n.active {
		n.active = active
		if active {
			u.m.active.WithLabelValues(n.name).Set(1)
			u.cfg.Logger.Info(fmt.Sprintf("%s: active writer (lowest live member carrying %s)", n.name, n.role))
			n.synced = false // read what the previous writer left
		} else {
			u.m.active.WithLabelValues(n.name).Set(0)
			u.cfg.Logger.Info(fmt.Sprintf("%s: passive, a member with a lower name carries %s", n.name, n.role))
		}
	}
	if !active {
		return time.Time{}
	}
	if now.Before(n.retryAt) {
		return n.retryAt
	}
	if !n.synced {
		u.m.resyncs.WithLabelValues(n.name).Inc()
		rctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
		server, err := readName(rctx, u.cfg.Server, u.key.Load(), n.name)
		cancel()
		if err != nil {
			return u.failed(n, err, now)
		}
		if n.everSynced && !sameSet(server, n.held) {
			u.m.drift.WithLabelValues(n.name).Inc()
			u.cfg.Logger.Warn(fmt.Sprintf("%s: drift: server holds %s, expected %s; repairing", n.name, fmtAddrs(server), fmtAddrs(n.held)))
			n.lastWrite = time.Time{} // repair at once
		}
		if !n.hasIntended {
			n.intended, n.hasIntended = server, true
		}
		n.held, n.synced, n.everSynced = server, true, true
		u.m.lastSuccess.WithLabelValues(n.name).SetToCurrentTime()
	}
	handAgain := u.handOut(snap, n, now)
	desired, kept, keep := Decide(snap, n.intended, n.kept, u.policy, now)
	n.kept = kept
	if keep {
		desired = n.intended
	}
	if sameSet(desired, n.held) {
		n.intended = desired
		u.recovered(n)
		return handAgain
	}
	if !n.lastWrite.IsZero() && now.Sub(n.lastWrite) < u.cfg.MinInterval {
		return n.lastWrite.Add(u.cfg.MinInterval)
	}
	m := BuildUpdate(u.cfg.Zone, n.name, u.cfg.TTL, desired)
	u.m.sent.WithLabelValues(n.name).Inc()
	uctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	_, err := exchange(uctx, u.cfg.Server, u.key.Load(), m, "update "+n.name)
	cancel()
	if err != nil {
		n.synced = false // read back before trying again: the server may have restarted
		return u.failed(n, err, now)
	}
	u.m.succeeded.WithLabelValues(n.name).Inc()
	u.m.lastSuccess.WithLabelValues(n.name).SetToCurrentTime()
	u.cfg.Logger.Info(fmt.Sprintf("%s: %s -> %s", n.name, fmtAddrs(n.held), fmtAddrs(desired)))
	n.held, n.intended, n.lastWrite = desired, desired, now
	n.handedAt, n.users = time.Time{}, nil // a new set: resolvers fetch it over the next TTL
	u.recovered(n)
	return u.handOut(snap, n, now)
}

// handOut counts the set the server holds for n as handed out each time it
// has been held for a TTL and the reports show logins on it (more users on
// one of its machines than a TTL before): the resolvers fetched the set as
// their copies expired and handed it to that TTL's logins, whose processes
// the machines' reports show only later. It returns when it is due again
// (zero with herd off or nothing held). So with a herd a name moves on at
// most once a TTL while people log in, and only when what was handed out
// outweighs the margin; a name nobody uses is not rewritten for it.
func (u *Updater) handOut(snap *rank.Snapshot, n *nameState, now time.Time) time.Time {
	if u.herd == nil || snap == nil || len(n.held) == 0 {
		return time.Time{}
	}
	ttl := time.Duration(u.cfg.TTL) * time.Second
	if !n.handedAt.IsZero() && now.Sub(n.handedAt) < ttl {
		return n.handedAt.Add(ttl)
	}
	names := heldNames(snap, n.held)
	users := make(map[string]int, len(names))
	loggedIn := false
	for _, name := range names {
		if nd := snap.Node(name); nd != nil && nd.Report != nil {
			users[name] = nd.Report.Load.Users
			if before, ok := n.users[name]; ok && users[name] > before {
				loggedIn = true
			}
		}
	}
	if loggedIn {
		u.herd.Handed(names, now)
		u.m.handed.WithLabelValues(n.name).Add(float64(len(names)))
	}
	n.handedAt, n.users = now, users
	return now.Add(ttl)
}

// failed counts and (on a change of reason) logs a failure and schedules
// the retry.
func (u *Updater) failed(n *nameState, err error, now time.Time) time.Time {
	reason := "error"
	var f *Failure
	if errors.As(err, &f) {
		reason = f.Reason
	}
	u.m.failed.WithLabelValues(n.name, reason).Inc()
	wait := n.bo.fail()
	n.retryAt = now.Add(wait)
	if s := "failing: " + reason; s != n.status {
		n.status = s
		u.cfg.Logger.Error(fmt.Sprintf("%s: %v; retrying with backoff (%s..%s)", n.name, err, u.cfg.RetryMin, u.cfg.RetryMax))
	}
	return n.retryAt
}

func (u *Updater) recovered(n *nameState) {
	n.bo.reset()
	n.retryAt = time.Time{}
	if strings.HasPrefix(n.status, "failing") {
		u.cfg.Logger.Info(fmt.Sprintf("%s: server %s answers again", n.name, u.cfg.Server))
	}
	n.status = "ok"
}

func fmtAddrs(a []netip.Addr) string {
	if len(a) == 0 {
		return "(nothing)"
	}
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}
