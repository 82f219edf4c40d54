package agent

import (
	"context"
	"errors"
	"time"
)

// Sampler produces one load sample. The agent calls it from one goroutine
// once per Interval.
type Sampler interface {
	Sample() (Load, error)
}

// Agent is one cluster member: it samples and checks this node (unless it
// is a collector), gossips its reports, hears everyone else's and keeps an
// immutable ranked Snapshot of the cluster. Every method is safe for
// concurrent use; Leave and Shutdown are safe to call twice.
type Agent struct {
	cfg *Config
}

// ErrShutdown is returned by calls on an agent that was shut down.
var ErrShutdown = errors.New("agent: shut down")

// New validates cfg, starts gossip on the bind address, starts sampling,
// and keeps trying to join cfg.Join and cfg.JoinFile in the background.
func New(cfg *Config) (*Agent, error) { panic("TODO") }

// Join contacts the given host:port members now and returns how many
// answered.
func (a *Agent) Join(addrs []string) (int, error) { panic("TODO") }

// Name is this member's name.
func (a *Agent) Name() string { return a.cfg.Name }

// GossipAddr is the ip:port other members reach this one at.
func (a *Agent) GossipAddr() string { panic("TODO") }

// Snapshot returns the latest immutable view of the cluster.
func (a *Agent) Snapshot() *Snapshot { panic("TODO") }

// Subscribe returns a channel that receives a value (coalesced, never
// blocking the agent) whenever a new Snapshot is published, and a function
// that cancels the subscription.
func (a *Agent) Subscribe() (<-chan struct{}, func()) { panic("TODO") }

// SetDrain takes this node out of the candidate set (on) or brings it
// back, persisted in the state dir so it survives restarts.
func (a *Agent) SetDrain(on bool, reason string) error { panic("TODO") }

// Drained reports the drain flag and its reason.
func (a *Agent) Drained() (bool, string) { panic("TODO") }

// Reload re-reads what can change without a restart: the join file, the
// keyring (new keys are installed, the first becomes primary) and the
// check command.
func (a *Agent) Reload(cfg *Config) error { panic("TODO") }

// WaitReady blocks until the agent has joined at least one other member
// and holds at least one report, or ctx ends.
func (a *Agent) WaitReady(ctx context.Context) error { panic("TODO") }

// Leave tells the cluster this member is leaving and waits up to timeout
// for the message to spread.
func (a *Agent) Leave(timeout time.Duration) error { panic("TODO") }

// Shutdown stops gossip, sampling and every goroutine of the agent.
func (a *Agent) Shutdown() error { panic("TODO") }
