package collector

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peerload/peerload/agent"
)

// LeaveTimeout bounds the graceful leave of a member that stops.
const LeaveTimeout = 2 * time.Second

// Frontend describes the front end whose members a Registry runs.
type Frontend struct {
	// Kind names the front end in default member names (see Config).
	Kind string
	// DefaultPort is the front end's default gossip port.
	DefaultPort int
	// Log returns the logger of the registry's own lines (restarts,
	// failed leaves), asked each time: a front end may replace its
	// logger on a reload. Nil discards them.
	Log func() *slog.Logger
	// Configure, when set, completes every agent configuration before the
	// agent starts or reloads: its logger and metrics registerer.
	Configure func(cfg *agent.Config, spec Spec)
	// ReadBeforeStart attaches a handle to the running agent as soon as
	// it is acquired, not only once started: a front end whose new
	// configuration may serve before its members start (Caddy starts its
	// apps in any order) then reads the member it will take over.
	ReadBeforeStart bool
}

// Registry is a process-wide set of shared collector members, one per
// bind address, each held by handles: a front end takes one handle per
// configuration block (or module) that reads a member and lets go of it
// when that configuration stops. A reload holds the new configuration's
// handles before it lets go of the old ones, so a member whose settings
// did not change (see RestartSettings) keeps running with its port, its
// membership and every machine's report. Safe for concurrent use.
type Registry struct {
	fe Frontend
	// NewAgent starts an agent; tests replace it before any Acquire.
	NewAgent func(*agent.Config) (*agent.Agent, error)

	mu     sync.Mutex
	shared map[string]*Shared
	seq    uint64
}

// NewRegistry is an empty registry for fe's members.
func NewRegistry(fe Frontend) *Registry {
	if fe.Log == nil {
		discard := slog.New(slog.DiscardHandler)
		fe.Log = func() *slog.Logger { return discard }
	}
	return &Registry{fe: fe, NewAgent: agent.New, shared: map[string]*Shared{}}
}

// Shared is one collector member on one bind address and the handles
// that hold it. While the handles disagree on a restart setting, the
// member runs the settings of the oldest configuration (it holds the
// port) and the newer handles read its agent without owning it; when the
// last handle with the running settings lets go, the member leaves the
// cluster, shuts down and starts again with the newest started handle's
// settings on the freed port, and every started handle is attached to
// the new agent.
type Shared struct {
	bind    string
	spec    Spec         // what the agent runs (or last ran) with
	agent   *agent.Agent // nil when none runs
	handles map[*Handle]struct{}
}

// AttachFunc connects a front end's block to the agent of its member: it
// is called when the handle starts and again whenever the member restarts
// with a new agent. own says whether the agent runs the handle's own
// restart settings (false while a reloaded block waits for the old
// configuration to let go); a block that writes (an updater with its
// role) does so only on an agent of its own. detach undoes it. When a
// restart fails, attach is called with a nil agent (the block has no
// member until a later Start); detach may then be nil. Called with the
// registry locked: it must not acquire, start or release handles.
type AttachFunc func(a *agent.Agent, own bool) (detach func(), err error)

// Handle is one block's hold on a shared member.
type Handle struct {
	r       *Registry
	s       *Shared
	spec    Spec
	seq     uint64 // acquisition order: the newest started handle's settings win
	attach  AttachFunc
	detach  func()
	started bool
	// attachedTo and attachedOwn are what detach undoes.
	attachedTo  *agent.Agent
	attachedOwn bool
}

// Acquire takes a handle on the member of spec.Bind for one block,
// without starting anything (a configuration that is only validated binds
// no port). attach may be nil. Start the handle to run the member, and
// release it when the block stops.
func (r *Registry) Acquire(spec Spec, attach AttachFunc) *Handle {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shared[spec.Bind]
	if s == nil {
		s = &Shared{bind: spec.Bind, spec: spec, handles: map[*Handle]struct{}{}}
		r.shared[spec.Bind] = s
	}
	r.seq++
	h := &Handle{r: r, s: s, spec: spec, seq: r.seq, attach: attach}
	s.handles[h] = struct{}{}
	if r.fe.ReadBeforeStart && s.agent != nil {
		if err := r.attachOne(s, h); err != nil {
			r.fe.Log().Warn("read the running cluster member", "bind", s.bind, "err", err)
		}
	}
	return h
}

// Start runs the handle's member and attaches the block to it. With no
// agent running it starts one with the handle's settings. A running agent
// with the same restart settings takes the handle's join list, join file
// and keyring in place (members new to the list are contacted, the
// keyring is read again), and an error doing so fails Start. A running
// agent with other restart settings keeps running, and the handle reads
// it until the configuration holding it lets go (see Shared). After an
// error the handle is still held: release it.
func (h *Handle) Start() error {
	r := h.r
	r.mu.Lock()
	defer r.mu.Unlock()
	s := h.s
	if _, ok := s.handles[h]; !ok {
		return fmt.Errorf("cluster member on %s: released", s.bind)
	}
	if h.started {
		return nil
	}
	h.started = true
	switch changed := RestartSettings(s.spec, h.spec); {
	case s.agent == nil:
		if err := r.run(s, h.spec, h); err != nil {
			return err
		}
	case len(changed) > 0:
		r.fe.Log().Info("cluster member settings changed; it restarts with them once the previous configuration lets go of it",
			"bind", s.bind, "changed", strings.Join(changed, ", "))
	default:
		if err := r.adopt(s, h.spec); err != nil {
			return err
		}
	}
	return r.attachOne(s, h)
}

// Release lets go of the handle (twice is harmless) and detaches its
// block. The last handle stops the member: it leaves the cluster and shuts
// down. When no remaining handle wants the running restart settings, the
// member restarts with the newest started handle's settings (or stops,
// when none started yet); a failure to start it is logged, not returned,
// because the release is the old configuration's shutdown and the new one
// already serves: its blocks have no member until a later Start.
func (h *Handle) Release() error {
	r := h.r
	r.mu.Lock()
	defer r.mu.Unlock()
	s := h.s
	if _, ok := s.handles[h]; !ok {
		return nil
	}
	delete(s.handles, h)
	h.detachNow()
	if len(s.handles) == 0 {
		if r.shared[s.bind] == s {
			delete(r.shared, s.bind)
		}
		return r.stop(s)
	}
	if s.agent == nil {
		return nil
	}
	var newest *Handle
	for o := range s.handles {
		if len(RestartSettings(s.spec, o.spec)) == 0 {
			return nil // still wanted as it runs
		}
		if o.started && (newest == nil || o.seq > newest.seq) {
			newest = o
		}
	}
	if newest == nil {
		for o := range s.handles {
			o.detachNow()
		}
		return r.stop(s)
	}
	changed := RestartSettings(s.spec, newest.spec)
	if err := r.restart(s, newest.spec); err != nil {
		for o := range s.handles {
			if o.started && o.attach != nil {
				o.detach, _ = o.attach(nil, false)
			}
		}
		r.fe.Log().Error("cluster member not restarted with the new settings; no data until a reload or restart starts it",
			"bind", s.bind, "changed", strings.Join(changed, ", "), "err", err)
		return nil
	}
	r.fe.Log().Info("cluster member restarted with the new settings", "bind", s.bind, "changed", strings.Join(changed, ", "))
	return nil
}

// Agent is the agent the handle's member runs now: nil before it starts,
// after it stopped and after a restart failed.
func (h *Handle) Agent() *agent.Agent {
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	return h.s.agent
}

// Running is the agent running on bind and how many handles hold its
// member (tests and status).
func (r *Registry) Running(bind string) (*agent.Agent, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.shared[bind]
	if s == nil {
		return nil, 0
	}
	return s.agent, len(s.handles)
}

// restart replaces s's agent with one started with spec: every block is
// detached, the old agent leaves and shuts down (freeing the port), the
// new one starts and every started block is attached to it again. Called
// with r locked.
func (r *Registry) restart(s *Shared, spec Spec) error {
	for h := range s.handles {
		h.detachNow()
	}
	if err := r.stop(s); err != nil {
		r.fe.Log().Warn(err.Error())
	}
	return r.run(s, spec, nil)
}

// run starts s's agent with spec and attaches every started handle but
// skip, logging those that fail (their blocks go without). Called with r
// locked and no agent running.
func (r *Registry) run(s *Shared, spec Spec, skip *Handle) error {
	cfg, err := r.config(spec)
	if err != nil {
		return err
	}
	a, err := r.NewAgent(cfg)
	if err != nil {
		return fmt.Errorf("start cluster member on %s: %w", s.bind, err)
	}
	s.agent, s.spec = a, spec
	for h := range s.handles {
		if h == skip || !h.started && !r.fe.ReadBeforeStart {
			continue
		}
		if err := r.attachOne(s, h); err != nil {
			r.fe.Log().Error("attach to the cluster member", "bind", s.bind, "err", err)
		}
	}
	return nil
}

// attachOne attaches h's block to s's running agent. Called with r
// locked.
func (r *Registry) attachOne(s *Shared, h *Handle) error {
	if h.attach == nil || s.agent == nil {
		return nil
	}
	own := len(RestartSettings(s.spec, h.spec)) == 0
	if h.detach != nil && h.attachedTo == s.agent && h.attachedOwn == own {
		return nil // already reading this agent so
	}
	h.detachNow()
	detach, err := h.attach(s.agent, own)
	if err != nil {
		return err
	}
	h.detach, h.attachedTo, h.attachedOwn = detach, s.agent, own
	return nil
}

func (h *Handle) detachNow() {
	if h.detach != nil {
		h.detach()
	}
	h.detach, h.attachedTo = nil, nil
}

// stop leaves the cluster and shuts s's agent down, if one runs. Called
// with r locked.
func (r *Registry) stop(s *Shared) error {
	a := s.agent
	if a == nil {
		return nil
	}
	s.agent = nil
	// A leave that times out (a busy machine, members stopping together)
	// only means the others learn of it by failure detection: worth a
	// warning, not a failed shutdown.
	if err := a.Leave(LeaveTimeout); err != nil && !errors.Is(err, agent.ErrShutdown) {
		r.fe.Log().Warn("leave cluster; the others will see the member fail instead", "bind", s.bind, "err", err)
	}
	if err := a.Shutdown(); err != nil {
		return fmt.Errorf("shut down cluster member on %s: %w", s.bind, err)
	}
	return nil
}

// adopt applies a reload's join list, join file and keyring to s's
// running agent. Called with r locked.
func (r *Registry) adopt(s *Shared, spec Spec) error {
	cfg, err := r.config(spec)
	if err != nil {
		return err
	}
	if err := Adopt(s.agent, s.spec, cfg); err != nil {
		return fmt.Errorf("cluster member on %s: %w", s.bind, err)
	}
	s.spec = spec
	return nil
}

// Adopt applies to a running agent what it takes in place from cfg, the
// configuration of a reload with the same restart settings as have (what
// a runs with): the keyring file and join file are read again, and the
// members new to cfg's join list are contacted in the background. It is
// how every front end reloads a member, the registry's and `peerload
// nsupdate`'s alike.
func Adopt(a *agent.Agent, have Spec, cfg *agent.Config) error {
	if err := a.Reload(cfg); err != nil {
		if errors.Is(err, agent.ErrShutdown) {
			return err
		}
		return fmt.Errorf("reload: %w", err)
	}
	var added []string
	for _, j := range cfg.Join {
		if !slices.Contains(have.Join, j) {
			added = append(added, j)
		}
	}
	if len(added) > 0 {
		log := cfg.Logger
		go func() {
			if _, err := a.Join(added); err != nil && !errors.Is(err, agent.ErrShutdown) && log != nil {
				log.Warn("join", "members", strings.Join(added, " "), "err", err)
			}
		}()
	}
	return nil
}

// config is spec's agent configuration, completed by the front end.
func (r *Registry) config(spec Spec) (*agent.Config, error) {
	cfg, err := Config(spec, r.fe.Kind, r.fe.DefaultPort)
	if err != nil {
		return nil, err
	}
	if r.fe.Configure != nil {
		r.fe.Configure(cfg, spec)
	}
	return cfg, nil
}
