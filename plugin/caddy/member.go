package peerload

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
)

// member is one cluster member (a collector agent) shared by every module
// with the same restart key, in this and the next configuration: modules
// hold it through the usage pool members, counted by reference, so a
// reload that keeps the member's settings keeps the member itself running
// with its port, its membership and every machine's report.
//
// A module acquires its member when it is provisioned, but the agent is
// started only by the peerload app's Start, so `caddy validate` binds no
// port and joins nothing. Two members cannot run on one bind address: a
// reload that changes a setting a running agent cannot take (name, label,
// allow, stale, profile, encryption on or off) makes a new member that
// waits for the old one's port and meanwhile reads the old agent; when
// the old configuration lets go of the old member it leaves the cluster,
// shuts down and the new member starts on the freed port.
type member struct {
	key     string
	bind    string
	metrics *fanoutRegisterer

	// Guarded by registry.
	spec   memberSpec   // what the agent runs (or will run) with
	agent  *agent.Agent // nil until started, and after it stopped
	wanted bool         // a started configuration wants it running
	gone   bool         // destructed
	seq    uint64       // acquisition order: the newest waiting member starts first
}

// members holds every member by restart key.
var members = caddy.NewUsagePool()

// registry knows which member owns each bind address and wakes the
// modules' watchers when a module's source of snapshots changes.
var registry = struct {
	sync.Mutex
	owner   map[string]*member   // bind → the member whose agent holds it
	waiting map[string][]*member // bind → members waiting for it
	seq     uint64
	// epoch is closed (and replaced) whenever an agent starts or stops,
	// so that watchers read their member's source again.
	epoch chan struct{}
}{owner: map[string]*member{}, waiting: map[string][]*member{}, epoch: make(chan struct{})}

// newAgent starts an agent; tests replace it.
var newAgent = agent.New

// leaveTimeout bounds the graceful leave of a member that stops.
const leaveTimeout = 2 * time.Second

// acquireMember returns the member for spec, made (not started) when no
// module holds one with its restart key. Release it with release.
func acquireMember(spec memberSpec) (*member, error) {
	key := restartKey(spec)
	v, _, err := members.LoadOrNew(key, func() (caddy.Destructor, error) {
		registry.Lock()
		defer registry.Unlock()
		registry.seq++
		m := &member{key: key, bind: spec.Bind, spec: spec, seq: registry.seq, metrics: newFanoutRegisterer(prometheus.Labels{"member": spec.Bind})}
		registry.waiting[spec.Bind] = append(registry.waiting[spec.Bind], m)
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*member), nil
}

// release drops one reference; the last one destructs the member.
func (m *member) release() {
	if _, err := members.Delete(m.key); err != nil {
		logger().Error("stop cluster member", zap.String("bind", m.bind), zap.Error(err))
	}
}

// start runs the member with spec (the settings of the configuration
// that starts), called by the app's Start of each configuration holding
// it. A running member takes the spec's join list and keyring in place
// (members new to the list are contacted, the keyring file is read again);
// a member whose bind address is held by another waits for it.
func (m *member) start(spec memberSpec) error {
	registry.Lock()
	defer registry.Unlock()
	if m.gone {
		return fmt.Errorf("cluster member on %s: released", m.bind)
	}
	m.wanted = true
	if m.agent != nil {
		return m.adopt(spec)
	}
	m.spec = spec
	if owner := registry.owner[m.bind]; owner != nil {
		logger().Info("cluster member settings changed; the new member starts once the previous configuration lets go of the old one",
			zap.String("bind", m.bind))
		return nil
	}
	return m.run()
}

// run starts the agent on the free bind address. Called with registry
// locked.
func (m *member) run() error {
	cfg, err := agentConfig(m.spec)
	if err != nil {
		return err
	}
	cfg.Registerer = m.metrics
	a, err := newAgent(cfg)
	if err != nil {
		return fmt.Errorf("start cluster member on %s: %w", m.bind, err)
	}
	m.agent = a
	registry.owner[m.bind] = m
	registry.waiting[m.bind] = slices.DeleteFunc(registry.waiting[m.bind], func(x *member) bool { return x == m })
	bumpEpoch()
	return nil
}

// adopt applies a reload's join list and keyring to the running member.
// Called with registry locked.
func (m *member) adopt(spec memberSpec) error {
	cfg, err := agentConfig(spec)
	if err != nil {
		return err
	}
	if err := m.agent.Reload(cfg); err != nil {
		return fmt.Errorf("reload cluster member on %s (keyring %s): %w", m.bind, spec.Keyring, err)
	}
	var added []string
	for _, j := range spec.Join {
		if !slices.Contains(m.spec.Join, j) {
			added = append(added, j)
		}
	}
	if len(added) > 0 {
		a := m.agent
		go func() {
			if _, err := a.Join(added); err != nil && !errors.Is(err, agent.ErrShutdown) {
				logger().Warn("join", zap.Strings("members", added), zap.Error(err))
			}
		}()
	}
	m.spec = spec
	return nil
}

// Destruct implements caddy.Destructor: the last module let go. A running
// member leaves the cluster and shuts down, and the newest member waiting
// for its bind address starts; a failure to start that one is logged (the
// new configuration already serves), and its modules have no data until
// a reload or restart starts it.
func (m *member) Destruct() error {
	registry.Lock()
	defer registry.Unlock()
	m.gone = true
	registry.waiting[m.bind] = slices.DeleteFunc(registry.waiting[m.bind], func(x *member) bool { return x == m })
	if m.agent == nil {
		return nil
	}
	a := m.agent
	m.agent = nil
	if registry.owner[m.bind] == m {
		delete(registry.owner, m.bind)
	}
	leaveErr := a.Leave(leaveTimeout)
	shutErr := a.Shutdown()
	bumpEpoch()
	var next *member
	for _, w := range registry.waiting[m.bind] {
		if w.wanted && (next == nil || w.seq > next.seq) {
			next = w
		}
	}
	if next != nil {
		if err := next.run(); err != nil {
			logger().Error("cluster member not restarted with the new settings; no data until a reload or restart starts it",
				zap.String("bind", m.bind), zap.Error(err))
		} else {
			logger().Info("cluster member restarted with the new settings", zap.String("bind", m.bind))
		}
	}
	if shutErr != nil {
		return fmt.Errorf("shut down cluster member on %s: %w", m.bind, shutErr)
	}
	if leaveErr != nil && !errors.Is(leaveErr, agent.ErrShutdown) {
		return fmt.Errorf("leave cluster (member on %s): %w", m.bind, leaveErr)
	}
	return nil
}

// source is the agent the member's modules read now: its own, or while it
// waits for its bind address the agent holding it (nil when none runs),
// and a channel closed when that may have changed.
func (m *member) source() (*agent.Agent, <-chan struct{}) {
	registry.Lock()
	defer registry.Unlock()
	if m.agent != nil {
		return m.agent, registry.epoch
	}
	if o := registry.owner[m.bind]; o != nil && !m.gone {
		return o.agent, registry.epoch
	}
	return nil, registry.epoch
}

// bumpEpoch wakes every watcher. Called with registry locked.
func bumpEpoch() {
	close(registry.epoch)
	registry.epoch = make(chan struct{})
}

// agentConfig turns a member spec into an agent configuration: a collector
// (never a candidate itself) with the spec's timing profile, logging to
// Caddy's log. Errors name the property at fault.
func agentConfig(spec memberSpec) (*agent.Config, error) {
	cfg, err := collector.Config(spec, "caddy", defaultPort)
	if err != nil {
		return nil, err
	}
	cfg.Logger = slog.New(zapslog.NewHandler(logger().Core(), zapslog.WithName("peerload.member"))).With("bind", spec.Bind)
	return cfg, nil
}

// logger is Caddy's default logger, named for this package: members
// outlive the configuration (and so the module logger) that made them.
func logger() *zap.Logger { return caddy.Log().Named("peerload") }

// Interface guards
var _ caddy.Destructor = (*member)(nil)
