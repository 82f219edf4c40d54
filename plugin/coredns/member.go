package peerload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
)

// member is one running cluster member (a collector agent), shared by every
// peerload block with the same bind address, in this and the next Corefile
// instance. On a reload the new instance's OnStartup runs before the old
// instance's OnShutdown, so the member never stops in between and keeps its
// port, its membership and its reports.
//
// A reload may change settings a running agent cannot take: name, label,
// allow, stale, the update roles, or turning encryption on or off. The new
// instance then reads the old member until the old instance lets go of it
// (the port is still bound until then); at that release the member leaves
// the cluster, shuts down and starts again with the new settings, and every
// block is re-attached to the new agent. Join and keyring changes (keys
// added, removed or rotated) apply in place.
type member struct {
	spec    memberSpec   // what the running agent runs with
	agent   *agent.Agent // nil after a restart failed to start the new one
	handles map[*memberHandle]struct{}
}

// attachFunc connects one peerload block to its member's agent: it is called
// when the block acquires the member and again whenever the member restarts
// with a new agent. own says whether the agent runs the block's own settings
// (false while a reloaded block waits for the old configuration to be
// released); a block starts its updater only on an agent of its own. The
// returned detach undoes it. Called with the member registry locked: it must
// not acquire or release members.
type attachFunc func(a *agent.Agent, own bool) (detach func(), err error)

// memberHandle is one block's hold on a member.
type memberHandle struct {
	m      *member
	spec   memberSpec
	seq    uint64 // acquisition order: the newest handle's settings win
	attach attachFunc
	detach func()
}

// members is the process-wide registry of members keyed by bind address.
var members = struct {
	sync.Mutex
	m   map[string]*member
	seq uint64
}{m: map[string]*member{}}

// newAgent creates a member's agent; tests replace it.
var newAgent = agent.New

// acquireMember returns a handle on the member for spec.Bind, starting it
// when it is not running yet, and attaches the block to its agent. Join and
// keyring changes are applied to a running member right away, and an error
// applying them fails the acquisition (and so the reload). Other changed
// settings take effect when the last handle with the old settings is
// released (see member).
func acquireMember(spec memberSpec, attach attachFunc) (*memberHandle, error) {
	members.Lock()
	defer members.Unlock()
	members.seq++
	h := &memberHandle{spec: spec, seq: members.seq, attach: attach}
	m, ok := members.m[spec.Bind]
	switch {
	case !ok:
		a, err := startAgent(spec)
		if err != nil {
			return nil, err
		}
		m = &member{spec: spec, agent: a, handles: map[*memberHandle]struct{}{}}
		members.m[spec.Bind] = m
	case m.agent == nil:
		// An earlier restart could not start the new agent: try again now.
		if err := m.restart(spec); err != nil {
			return nil, err
		}
	default:
		if changed := restartSettings(m.spec, spec); len(changed) > 0 {
			log.Infof("cluster member on %s: %s changed; it restarts with the new settings once the previous configuration is released",
				spec.Bind, strings.Join(changed, ", "))
		} else if err := m.adopt(spec); err != nil {
			return nil, err
		}
	}
	h.m = m
	if attach != nil {
		detach, err := attach(m.agent, len(restartSettings(m.spec, spec)) == 0)
		if err != nil {
			if len(m.handles) == 0 {
				delete(members.m, spec.Bind)
				if stopErr := m.stop(); stopErr != nil {
					log.Warningf("%v", stopErr)
				}
			}
			return nil, err
		}
		h.detach = detach
	}
	m.handles[h] = struct{}{}
	return h, nil
}

// releaseMember drops a handle (twice is harmless). The last one leaves the
// cluster gracefully and shuts the agent down. When the remaining newest
// handle wants settings the running agent cannot take, the member restarts
// with them; a failure to do so is logged, not returned, because the
// release is the old instance's shutdown and the new one already serves.
func releaseMember(h *memberHandle) error {
	members.Lock()
	defer members.Unlock()
	m := h.m
	if _, ok := m.handles[h]; !ok {
		return nil
	}
	delete(m.handles, h)
	if h.detach != nil {
		h.detach()
		h.detach = nil
	}
	if len(m.handles) == 0 {
		if members.m[h.spec.Bind] == m {
			delete(members.m, h.spec.Bind)
		}
		return m.stop()
	}
	newest := m.newest()
	if m.agent != nil && len(restartSettings(m.spec, newest.spec)) == 0 {
		return nil
	}
	if err := m.restart(newest.spec); err != nil {
		log.Errorf("%v; not ready until a reload or restart starts it", err)
	}
	return nil
}

// agent is the agent the handle's member runs now (nil after a failed
// restart).
func (h *memberHandle) agent() *agent.Agent {
	members.Lock()
	defer members.Unlock()
	return h.m.agent
}

// newest is the most recently acquired handle. Called with members locked
// and at least one handle.
func (m *member) newest() *memberHandle {
	var n *memberHandle
	for h := range m.handles {
		if n == nil || h.seq > n.seq {
			n = h
		}
	}
	return n
}

// restart replaces the running agent by one started with spec: every block
// is detached, the old agent leaves and shuts down (freeing the port), the
// new one starts and every block is attached to it again. Called with
// members locked.
func (m *member) restart(spec memberSpec) error {
	changed := restartSettings(m.spec, spec)
	for h := range m.handles {
		if h.detach != nil {
			h.detach()
			h.detach = nil
		}
	}
	if err := m.stop(); err != nil {
		log.Warningf("%v", err)
	}
	a, err := startAgent(spec)
	if err != nil {
		return fmt.Errorf("restart cluster member with the new %s: %w", strings.Join(changed, ", "), err)
	}
	m.agent, m.spec = a, spec
	if len(changed) > 0 {
		log.Infof("cluster member on %s restarted with the new %s", spec.Bind, strings.Join(changed, ", "))
	}
	for h := range m.handles {
		if h.attach == nil {
			continue
		}
		detach, err := h.attach(a, len(restartSettings(spec, h.spec)) == 0)
		if err != nil {
			log.Errorf("cluster member on %s: %v", spec.Bind, err)
			continue
		}
		h.detach = detach
	}
	return nil
}

// stop leaves the cluster and shuts the agent down, if one runs. Called
// with members locked.
func (m *member) stop() error {
	a := m.agent
	if a == nil {
		return nil
	}
	m.agent = nil
	// A leave that times out (a busy machine, members stopping together)
	// only means the others learn of it by failure detection: worth a
	// warning, not a failed shutdown (CoreDNS would exit non-zero).
	if err := a.Leave(leaveTimeout); err != nil {
		log.Warningf("leave cluster (member on %s): %v; the others will see it fail instead", m.spec.Bind, err)
	}
	if err := a.Shutdown(); err != nil {
		return fmt.Errorf("shut down cluster member on %s: %w", m.spec.Bind, err)
	}
	return nil
}

// startAgent starts an agent for spec.
func startAgent(spec memberSpec) (*agent.Agent, error) {
	cfg, err := agentConfig(spec)
	if err != nil {
		return nil, err
	}
	a, err := newAgent(cfg)
	if err != nil {
		return nil, fmt.Errorf("start cluster member on %s: %w", spec.Bind, err)
	}
	return a, nil
}

// restartSettings names the settings that differ between have and want and
// that a running agent cannot change: its name, label, allow list, stale
// age, update roles (all fixed in memberlist's config or the node meta),
// and whether gossip is encrypted at all.
func restartSettings(have, want memberSpec) []string {
	var changed []string
	if want.Name != have.Name {
		changed = append(changed, "name")
	}
	if want.Label != have.Label {
		changed = append(changed, "label")
	}
	if !slices.Equal(want.Allow, have.Allow) {
		changed = append(changed, "allow")
	}
	if want.Stale != have.Stale {
		changed = append(changed, "stale")
	}
	if want.Profile != have.Profile {
		changed = append(changed, "profile")
	}
	if !slices.Equal(sortedClone(want.Roles), sortedClone(have.Roles)) {
		changed = append(changed, "update roles")
	}
	if (want.Keyring == "") != (have.Keyring == "") {
		changed = append(changed, "keyring (encryption on/off)")
	}
	return changed
}

func sortedClone(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// adopt applies a reload's join list and keyring to the running member:
// members new to the join list are contacted, and the keyring file is read
// again (keys added, removed or rotated, even when only the file's content
// changed). Called with members locked.
func (m *member) adopt(spec memberSpec) error {
	cfg, err := agentConfig(spec)
	if err != nil {
		return err
	}
	if err := m.agent.Reload(cfg); err != nil {
		if errors.Is(err, agent.ErrShutdown) {
			return fmt.Errorf("cluster member on %s: %w", spec.Bind, err)
		}
		return fmt.Errorf("reload cluster member on %s (keyring %s): %w", spec.Bind, spec.Keyring, err)
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
			if _, err := a.Join(added); err != nil {
				log.Warningf("join %s: %v", strings.Join(added, " "), err)
			}
		}()
	}
	m.spec = spec
	return nil
}

// agentConfig turns a member spec into an agent configuration: a collector
// (never a candidate itself) with the spec's timing profile, logging to
// CoreDNS's log.
func agentConfig(spec memberSpec) (*agent.Config, error) {
	cfg, err := collector.Config(spec, "coredns", defaultPort)
	if err != nil {
		return nil, err
	}
	cfg.Logger = slog.New(clogHandler{})
	// The member's own gossip metrics appear on CoreDNS's /metrics too,
	// labelled with the bind address (the agent unregisters them on
	// shutdown, so a restarted member can register again).
	cfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"member": spec.Bind}, prometheus.DefaultRegisterer)
	return cfg, nil
}

// clogHandler sends the agent's and memberlist's log records to CoreDNS's
// log at their level, attributes as key=value after the message.
type clogHandler struct{ attrs []slog.Attr }

func (h clogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h clogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	switch {
	case r.Level < slog.LevelInfo:
		log.Debug(b.String())
	case r.Level < slog.LevelWarn:
		log.Info(b.String())
	case r.Level < slog.LevelError:
		log.Warning(b.String())
	default:
		log.Error(b.String())
	}
	return nil
}

func (h clogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return clogHandler{attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h clogHandler) WithGroup(string) slog.Handler { return h }
