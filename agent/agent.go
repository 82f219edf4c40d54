// Package agent is one peerload cluster member: it samples and checks this
// machine (unless it is a collector), gossips its reports, hears everyone
// else's and keeps an immutable ranked snapshot of the cluster.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/health"
	"github.com/peerload/peerload/agent/hostkeys"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
	"github.com/peerload/peerload/agent/sample"
)

// Agent is one cluster member. Every method is safe for concurrent use;
// Leave and Shutdown are safe to call twice.
type Agent struct {
	cfg        *Config
	log        *slog.Logger
	member     *gossip.Member
	state      *stateStore
	generation uint64
	sampler    sample.Sampler
	metrics    *agentMetrics

	// mu guards everything below it.
	mu       sync.Mutex
	checker  *health.Checker
	score    rank.ScoreConfig
	seq      uint64
	lastSent *report.Report
	sentAt   time.Time
	warned   map[string]bool // shared addresses already logged

	snap        atomic.Pointer[rank.Snapshot]
	fingerprint uint64 // of the last snapshot subscribers were told about

	subsMu sync.Mutex
	subs   map[int]chan struct{}
	subID  int

	rebuild chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	down    sync.Once
}

// ErrShutdown is returned by calls on an agent that was shut down.
var ErrShutdown = errors.New("agent: shut down")

// New validates cfg, starts gossip on the bind address, starts sampling,
// and keeps trying to join cfg.Join and cfg.JoinFile in the background.
func New(cfg *Config) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("agent: config is nil")
	}
	c := *cfg
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{
		cfg:     &c,
		log:     c.Logger,
		score:   c.Score,
		subs:    make(map[int]chan struct{}),
		warned:  make(map[string]bool),
		rebuild: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	if a.log == nil {
		a.log = slog.Default().With("node", c.Name)
	}
	var err error
	if a.state, err = openState(c.StateDir); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.generation, err = a.state.NextGeneration(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if !c.Collector {
		a.sampler = c.Sampler
		if a.sampler == nil {
			if a.sampler, err = sample.NewProc(c.ProcRoot); err != nil {
				return nil, fmt.Errorf("agent: %w", err)
			}
		}
		a.checker = health.New(c.ProcRoot, c.Checks, a.state.Drain)
	}
	keys, err := c.keys()
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	meta := report.Meta{Collector: c.Collector, Addr4: c.Addr4, Addr6: c.Addr6, Pools: c.Pools, Roles: c.Roles}
	if !c.Collector {
		meta.HostKeys = a.hostKeys(meta)
	}
	a.metrics = newAgentMetrics(a, c.Registerer)
	a.member, err = gossip.New(&gossip.Config{
		Name:       c.Name,
		BindAddr:   c.BindAddr,
		BindPort:   c.BindPort,
		Advertise:  c.GossipAdvertise,
		Meta:       meta,
		Join:       c.Join,
		JoinFile:   c.JoinFile,
		Keys:       keys,
		Label:      c.Label,
		Allow:      c.Allow,
		Memberlist: c.Memberlist,
		Interval:   c.Interval,
		Applied:    a.metrics.applied,
		Logger:     a.log,
		OnChange:   a.kick,
	}, a.metrics.received)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.metrics.register()
	if len(keys) == 0 {
		a.log.Warn("gossip is NOT encrypted: anyone on the network can read and forge load reports; create a key with `peerload keygen` and configure the keyring")
	}
	a.publish(time.Now())

	a.wg.Add(1)
	go a.rebuildLoop()
	if !c.Collector {
		a.wg.Add(1)
		go a.sampleLoop()
	}
	if probeTop := c.probeTop(); probeTop > 0 {
		a.wg.Add(1)
		go a.probeLoop(c.Memberlist.ProbeInterval, probeTop)
	}
	return a, nil
}

// hostKeys reads this machine's ssh host public keys (under the checks'
// root) for its node meta, as many as fit beside the rest of meta. A
// machine without sshd has none; an unreadable key is logged, not fatal.
func (a *Agent) hostKeys(meta report.Meta) []byte {
	keys, err := hostkeys.Read(cmp.Or(a.cfg.Checks.Root, "/"))
	if err != nil {
		a.log.Warn("ssh host keys are not gossiped", "err", err)
	}
	if len(keys) == 0 {
		return nil
	}
	if !meta.Addr4.IsValid() {
		meta.Addr4 = netip.IPv4Unspecified() // the gossip address fills it in later
	}
	rest, err := report.AppendMeta(meta)
	if err != nil {
		return nil // New fails on the meta anyway
	}
	const lengthPrefix = 2
	return hostkeys.Encode(keys, memberlist.MetaMaxSize-len(rest)-lengthPrefix)
}

// Join contacts the given host:port members now and returns how many
// answered.
func (a *Agent) Join(addrs []string) (int, error) {
	if a.stopped() {
		return 0, ErrShutdown
	}
	n, err := a.member.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("agent: %w", err)
	}
	return n, nil
}

// Name is this member's name.
func (a *Agent) Name() string { return a.cfg.Name }

// GossipAddr is the ip:port other members reach this one at.
func (a *Agent) GossipAddr() string { return a.member.GossipAddr() }

// Snapshot returns the latest immutable view of the cluster.
func (a *Agent) Snapshot() *rank.Snapshot { return a.snap.Load() }

// Stats reports what gossip has sent and received so far.
func (a *Agent) Stats() gossip.Stats { return a.member.Stats() }

// Encrypted reports whether gossip is encrypted.
func (a *Agent) Encrypted() bool { return a.member.Encrypted() }

// Subscribe returns a channel that receives a value (coalesced, never
// blocking the agent) whenever a new Snapshot changes membership,
// candidates or reports, and a function that cancels the subscription.
func (a *Agent) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	a.subsMu.Lock()
	id := a.subID
	a.subID++
	a.subs[id] = ch
	a.subsMu.Unlock()
	return ch, func() {
		a.subsMu.Lock()
		delete(a.subs, id)
		a.subsMu.Unlock()
	}
}

// SetDrain takes this node out of the candidate set (on) or brings it
// back, persisted in the state dir so it survives restarts. The change
// reaches the cluster within one sampling interval.
func (a *Agent) SetDrain(on bool, reason string) error {
	if a.cfg.Collector {
		return errors.New("agent: a collector is never a candidate; nothing to drain")
	}
	if err := a.state.SetDrain(on, reason); err != nil {
		return fmt.Errorf("agent: drain: %w", err)
	}
	a.kick()
	return nil
}

// Drained reports the drain flag and its reason.
func (a *Agent) Drained() (bool, string) { return a.state.Drain() }

// Reload re-reads what can change without a restart: the join list and
// join file, the keyring (new keys are installed, the first becomes
// primary, keys no longer listed are removed), the checks and the score
// weights.
func (a *Agent) Reload(cfg *Config) error {
	if a.stopped() {
		return ErrShutdown
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("agent: reload: %w", err)
	}
	keys, err := cfg.keys()
	if err != nil {
		return fmt.Errorf("agent: reload: %w", err)
	}
	if len(keys) > 0 && !a.member.Encrypted() {
		a.log.Warn("reload: gossip was started without a key; restart the agent to enable encryption")
		keys = nil
	}
	if err := a.member.Reload(cfg.Join, cfg.JoinFile, keys); err != nil {
		return fmt.Errorf("agent: reload: %w", err)
	}
	a.mu.Lock()
	a.score = cfg.Score
	if a.checker != nil {
		a.checker = health.New(a.cfg.ProcRoot, cfg.Checks, a.state.Drain)
	}
	a.mu.Unlock()
	a.kick()
	return nil
}

// Ready reports whether this member has joined others (or was told to
// join nobody) and holds at least one report.
func (a *Agent) Ready() bool {
	if a.stopped() {
		return false
	}
	if a.member.WantsPeers() && a.member.NumMembers() < 2 {
		return false
	}
	s := a.Snapshot()
	for i := range s.Nodes {
		if s.Nodes[i].Report != nil {
			return true
		}
	}
	return false
}

// WaitReady blocks until Ready is true or ctx ends.
func (a *Agent) WaitReady(ctx context.Context) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !a.Ready() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: not ready: %w", ctx.Err())
		case <-a.stop:
			return ErrShutdown
		case <-t.C:
		}
	}
	return nil
}

// Answering pings nodes now and reports which answered (see
// gossip.Member.Answering).
func (a *Agent) Answering(nodes []rank.NodeStatus) []bool {
	targets := make([]gossip.Node, len(nodes))
	for i, n := range nodes {
		targets[i] = gossip.Node{Name: n.Name, Gossip: n.Gossip}
	}
	return a.member.Answering(targets)
}

// Leave tells the cluster this member is leaving and waits up to timeout
// for the message to spread.
func (a *Agent) Leave(timeout time.Duration) error {
	if err := a.member.Leave(timeout); err != nil {
		if errors.Is(err, gossip.ErrShutdown) {
			return ErrShutdown
		}
		return fmt.Errorf("agent: %w", err)
	}
	return nil
}

// Shutdown stops gossip, sampling and every goroutine of the agent.
// Without a Leave first, the others see this member fail.
func (a *Agent) Shutdown() error {
	var err error
	a.down.Do(func() {
		close(a.stop)
		a.wg.Wait()
		if e := a.member.Shutdown(); e != nil {
			err = fmt.Errorf("agent: %w", e)
		}
		a.metrics.unregister()
	})
	return err
}

func (a *Agent) stopped() bool {
	select {
	case <-a.stop:
		return true
	default:
		return false
	}
}

// kick asks the snapshot builder to run now. It never blocks: gossip calls
// it with memberlist's state lock held.
func (a *Agent) kick() {
	select {
	case a.rebuild <- struct{}{}:
	default:
	}
}
