package agent

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
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
	cfg        *Config
	logger     *log.Logger
	ml         *memberlist.Memberlist
	transport  *countingTransport
	keyring    *memberlist.Keyring
	state      *stateStore
	generation uint64
	meta       []byte
	sampler    Sampler
	metrics    *agentMetrics

	// mu guards everything below it.
	mu       sync.Mutex
	checker  *Checker
	score    ScoreConfig
	joinFile []string
	reports  map[string]*heldReport
	gone     map[string]goneNode
	leaving  map[string]bool // members that said goodbye before leaving
	missed   map[string]int  // probe rounds in a row a candidate did not answer
	// members are copies of the live (alive or suspect) memberlist nodes,
	// kept by the event delegate; see setMember.
	members  map[string]memberlist.Node
	seq      uint64
	lastSent *Report
	sentAt   time.Time

	snap        atomic.Pointer[Snapshot]
	fingerprint uint64 // of the last snapshot subscribers were told about
	metaCache   sync.Map

	subsMu sync.Mutex
	subs   map[int]chan struct{}
	subID  int

	reportsSent     atomic.Uint64
	reportsReceived atomic.Uint64

	rebuild  chan struct{}
	stop     chan struct{}
	wg       sync.WaitGroup
	leave    sync.Once
	shutdown sync.Once
	leaveErr error
}

type heldReport struct {
	r        *Report
	received time.Time // local arrival minus the report's age on arrival
}

type goneNode struct {
	state  string
	at     time.Time
	node   memberlist.Node
	parsed nodeMeta
}

// defaultCollectorProbeTop is how many best candidates a collector pings
// when Config.ProbeTop is 0.
const defaultCollectorProbeTop = 10

// ErrShutdown is returned by calls on an agent that was shut down.
var ErrShutdown = errors.New("agent: shut down")

// Message types on the wire, the first byte of every user message.
const (
	msgReport byte = 1 // one Report, fanned out by its node
	msgState  byte = 2 // push/pull state: every report a member holds
	msgLeave  byte = 3 // a member's goodbye, so others show it as left
)

// New validates cfg, starts gossip on the bind address, starts sampling,
// and keeps trying to join cfg.Join and cfg.JoinFile in the background.
func New(cfg *Config) (*Agent, error) {
	if cfg == nil {
		return nil, errors.New("agent: config is nil")
	}
	c := *cfg
	if err := c.validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		cfg:     &c,
		logger:  c.Logger,
		score:   c.Score,
		reports: make(map[string]*heldReport),
		gone:    make(map[string]goneNode),
		leaving: make(map[string]bool),
		missed:  make(map[string]int),
		subs:    make(map[int]chan struct{}),
		rebuild: make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	if a.logger == nil {
		a.logger = log.New(os.Stderr, "peerload "+c.Name+": ", log.LstdFlags)
	}
	if c.Score.By == "" {
		a.score.By = ByCombined
	}

	var err error
	if a.state, err = openState(c.StateDir); err != nil {
		return nil, fmt.Errorf("agent: state dir: %w", err)
	}
	if a.generation, err = a.state.NextGeneration(); err != nil {
		return nil, fmt.Errorf("agent: state dir: %w", err)
	}
	if !c.Collector {
		a.sampler = c.Sampler
		if a.sampler == nil {
			if a.sampler, err = NewProcSampler(c.ProcRoot); err != nil {
				return nil, err // already "agent: proc root ..."
			}
		}
		a.checker = NewChecker(c.ProcRoot, c.Checks, a.state.Drain)
	}
	if c.JoinFile != "" {
		if a.joinFile, err = ReadJoinFile(c.JoinFile); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}

	mlc, err := a.memberlistConfig()
	if err != nil {
		return nil, err
	}
	if a.meta, err = a.encodeMeta(); err != nil {
		a.transport.Shutdown()
		return nil, err
	}
	a.metrics = newAgentMetrics(a, c.Registerer)
	if a.ml, err = memberlist.Create(mlc); err != nil {
		a.transport.Shutdown()
		return nil, fmt.Errorf("agent: start gossip: %w", err)
	}
	if mlc.Keyring == nil {
		a.logger.Printf("[WARN] gossip is NOT encrypted: anyone on the network can read and forge load reports; create a key with `peerload keygen` and configure it (--keyring, or keyring in the Corefile)")
	}
	a.publish(time.Now())

	a.wg.Add(2)
	go a.rebuildLoop()
	go a.joinLoop()
	if !c.Collector {
		a.wg.Add(1)
		go a.sampleLoop()
	}
	probeTop := c.ProbeTop
	if probeTop == 0 && c.Collector {
		probeTop = defaultCollectorProbeTop
	}
	if probeTop > 0 {
		a.wg.Add(1)
		go a.probeLoop(mlc.ProbeInterval, probeTop)
	}
	return a, nil
}

// memberlistConfig builds memberlist's config and this agent's transport.
func (a *Agent) memberlistConfig() (*memberlist.Config, error) {
	c := a.cfg
	mlc := *c.Memberlist
	mlc.Name = c.Name
	mlc.BindAddr = c.BindAddr
	mlc.BindPort = c.BindPort
	mlc.AdvertisePort = c.BindPort
	mlc.Delegate = (*delegate)(a)
	mlc.Events = (*eventDelegate)(a)
	mlc.Label = c.Label
	if mlc.Logger == nil && mlc.LogOutput == nil {
		mlc.Logger = log.New(debugFilter{a.logger}, "", 0)
	}
	if c.GossipAdvertise != "" {
		host, port, err := net.SplitHostPort(c.GossipAdvertise)
		if err != nil {
			return nil, fmt.Errorf("agent: gossip advertise %q: %w", c.GossipAdvertise, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return nil, fmt.Errorf("agent: gossip advertise %q: bad port", c.GossipAdvertise)
		}
		mlc.AdvertiseAddr, mlc.AdvertisePort = host, p
	}
	keys := c.Keys
	if len(keys) == 0 && c.KeyringFile != "" {
		var err error
		if keys, err = ReadKeyring(c.KeyringFile); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	mlc.SecretKey = nil
	mlc.Keyring = nil
	if len(keys) > 0 {
		kr, err := memberlist.NewKeyring(keys, keys[0])
		if err != nil {
			return nil, fmt.Errorf("agent: keyring: %w", err)
		}
		mlc.Keyring = kr
		a.keyring = kr
		mlc.GossipVerifyIncoming, mlc.GossipVerifyOutgoing = true, true
	}
	mlc.CIDRsAllowed = nil
	for _, p := range c.Allow {
		mlc.CIDRsAllowed = append(mlc.CIDRsAllowed, net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}

	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{c.BindAddr},
		BindPort:  c.BindPort,
		Logger:    mlc.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", net.JoinHostPort(c.BindAddr, strconv.Itoa(c.BindPort)), err)
	}
	if c.BindPort == 0 {
		mlc.BindPort = nt.GetAutoBindPort()
		if c.GossipAdvertise == "" {
			mlc.AdvertisePort = mlc.BindPort
		}
	}
	a.transport = newCountingTransport(nt, net.ParseIP(c.BindAddr), c.Allow)
	mlc.Transport = a.transport

	// The address DNS hands out defaults to the gossip address.
	if !c.Addr4.IsValid() {
		ip, _, err := nt.FinalAdvertiseAddr(mlc.AdvertiseAddr, mlc.AdvertisePort)
		if err == nil {
			if ip4, ok := netip.AddrFromSlice(ip.To4()); ok && ip.To4() != nil && !ip4.IsUnspecified() {
				c.Addr4 = ip4
			}
		}
	}
	return &mlc, nil
}

// Join contacts the given host:port members now and returns how many
// answered.
func (a *Agent) Join(addrs []string) (int, error) {
	if a.stopped() {
		return 0, ErrShutdown
	}
	n, err := a.ml.Join(addrs)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("agent: join %s: %w", strings.Join(addrs, ","), err)
	}
	return n, nil
}

// joinLoop keeps trying the configured join addresses until one answers,
// backing off to 30 s, and tries again whenever this member finds itself
// alone (PeerMon's machines.txt behaviour after a partition).
func (a *Agent) joinLoop() {
	defer a.wg.Done()
	wait := time.Duration(0)
	for {
		select {
		case <-a.stop:
			return
		case <-time.After(wait):
		}
		a.mu.Lock()
		addrs := append(slices.Clone(a.cfg.Join), a.joinFile...)
		a.mu.Unlock()
		addrs = slices.DeleteFunc(addrs, func(s string) bool { return s == a.GossipAddr() })
		if len(addrs) == 0 {
			return
		}
		if a.ml.NumMembers() > 1 {
			wait = 30 * time.Second
			continue
		}
		if _, err := a.ml.Join(addrs); err == nil {
			wait = 30 * time.Second
			continue
		} else if wait == 0 || wait >= 30*time.Second {
			a.logger.Printf("[INFO] no member answered yet (%v); retrying", err)
		}
		wait = min(max(wait*2, time.Second), 30*time.Second)
	}
}

// Name is this member's name.
func (a *Agent) Name() string { return a.cfg.Name }

// GossipAddr is the ip:port other members reach this one at.
func (a *Agent) GossipAddr() string {
	n := a.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Snapshot returns the latest immutable view of the cluster.
func (a *Agent) Snapshot() *Snapshot { return a.snap.Load() }

// Stats reports what gossip has sent and received so far.
func (a *Agent) Stats() GossipStats {
	return GossipStats{
		Packets:         a.transport.packets.Load(),
		Bytes:           a.transport.bytes.Load(),
		ReportsSent:     a.reportsSent.Load(),
		ReportsReceived: a.reportsReceived.Load(),
	}
}

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

// Reload re-reads what can change without a restart: the join file, the
// keyring (new keys are installed, the first becomes primary, keys no
// longer listed are removed), the checks and the score weights.
func (a *Agent) Reload(cfg *Config) error {
	if a.stopped() {
		return ErrShutdown
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	var joinFile []string
	if cfg.JoinFile != "" {
		var err error
		if joinFile, err = ReadJoinFile(cfg.JoinFile); err != nil {
			return fmt.Errorf("agent: reload: %w", err)
		}
	}
	if cfg.KeyringFile != "" {
		keys, err := ReadKeyring(cfg.KeyringFile)
		if err != nil {
			return fmt.Errorf("agent: reload: %w", err)
		}
		if kr := a.keyring; kr == nil {
			a.logger.Printf("[WARN] reload: gossip was started without a key; restart the agent to enable encryption")
		} else {
			for _, k := range keys {
				if err := kr.AddKey(k); err != nil {
					return fmt.Errorf("agent: reload: keyring: %w", err)
				}
			}
			if err := kr.UseKey(keys[0]); err != nil {
				return fmt.Errorf("agent: reload: keyring: %w", err)
			}
			for _, k := range kr.GetKeys() {
				if !slices.ContainsFunc(keys, func(n []byte) bool { return string(n) == string(k) }) {
					_ = kr.RemoveKey(k)
				}
			}
		}
	}
	a.mu.Lock()
	a.joinFile = joinFile
	a.cfg.Join = slices.Clone(cfg.Join)
	a.score = cfg.Score
	if a.checker != nil {
		a.checker = NewChecker(a.cfg.ProcRoot, cfg.Checks, a.state.Drain)
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
	members := a.ml.NumMembers()
	a.mu.Lock()
	alone := len(a.cfg.Join)+len(a.joinFile) > 0 && members < 2
	n := len(a.reports)
	a.mu.Unlock()
	return !alone && n > 0
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

// Leave tells the cluster this member is leaving and waits up to timeout
// for the message to spread.
func (a *Agent) Leave(timeout time.Duration) error {
	a.leave.Do(func() {
		if a.stopped() {
			a.leaveErr = ErrShutdown
			return
		}
		bye := appendString([]byte{msgLeave}, a.cfg.Name, maxNameBytes)
		for _, n := range a.memberCopies() {
			if n.Name != a.cfg.Name {
				_ = a.ml.SendBestEffort(&n, bye)
			}
		}
		if err := a.ml.Leave(timeout); err != nil {
			a.leaveErr = fmt.Errorf("agent: leave: %w", err)
		}
	})
	return a.leaveErr
}

// Shutdown stops gossip, sampling and every goroutine of the agent.
// Without a Leave first, the others see this member fail.
func (a *Agent) Shutdown() error {
	var err error
	a.shutdown.Do(func() {
		close(a.stop)
		a.wg.Wait()
		if e := a.ml.Shutdown(); e != nil {
			err = fmt.Errorf("agent: shutdown: %w", e)
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

// kick asks the sampling loop and the snapshot builder to run now.
func (a *Agent) kick() {
	select {
	case a.rebuild <- struct{}{}:
	default:
	}
}
