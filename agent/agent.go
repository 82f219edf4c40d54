package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log"
	"math"
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
	suspects map[string]bool // candidates that missed our own pings
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
		cfg:      &c,
		logger:   c.Logger,
		score:    c.Score,
		reports:  make(map[string]*heldReport),
		gone:     make(map[string]goneNode),
		leaving:  make(map[string]bool),
		suspects: make(map[string]bool),
		subs:     make(map[int]chan struct{}),
		rebuild:  make(chan struct{}, 1),
		stop:     make(chan struct{}),
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
				return nil, fmt.Errorf("agent: %w", err)
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

// nodeMeta is what rides in memberlist's node meta: small and static.
type nodeMeta struct {
	Collector bool
	Addr4     netip.Addr
	Addr6     netip.Addr
	Pools     []string
	Roles     []string
}

const metaVersion = 1

// encodeMeta writes nodeMeta as: version, flags, addr4 (len+bytes),
// addr6 (len+bytes), pools and roles (count, then len+bytes each).
func (a *Agent) encodeMeta() ([]byte, error) {
	c := a.cfg
	b := []byte{metaVersion, 0}
	if c.Collector {
		b[1] |= 1
	}
	addr := func(ip netip.Addr) {
		if !ip.IsValid() {
			b = append(b, 0)
			return
		}
		s := ip.AsSlice()
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	addr(c.Addr4)
	addr(c.Addr6)
	for _, list := range [][]string{c.Pools, c.Roles} {
		if len(list) > 255 {
			return nil, fmt.Errorf("agent: too many pools or roles")
		}
		b = append(b, byte(len(list)))
		for _, s := range list {
			if len(s) > 255 {
				return nil, fmt.Errorf("agent: pool or role %q too long", s)
			}
			b = appendString(b, s, 255)
		}
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("agent: pools, roles and addresses take %d bytes of node meta, at most %d fit", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

func decodeMeta(b []byte) (nodeMeta, error) {
	var m nodeMeta
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != metaVersion {
		return m, fmt.Errorf("meta version %d not supported", v)
	}
	m.Collector = d.byte()&1 != 0
	addr := func() netip.Addr {
		n := int(d.byte())
		if d.err != nil || n == 0 {
			return netip.Addr{}
		}
		if len(d.b) < n || (n != 4 && n != 16) {
			d.err = errTruncated
			return netip.Addr{}
		}
		ip, _ := netip.AddrFromSlice(d.b[:n])
		d.b = d.b[n:]
		return ip
	}
	m.Addr4 = addr()
	m.Addr6 = addr()
	for _, list := range []*[]string{&m.Pools, &m.Roles} {
		n := int(d.byte())
		for i := 0; i < n && d.err == nil; i++ {
			*list = append(*list, d.string(255))
		}
	}
	return m, d.err
}

func (a *Agent) parseMeta(b []byte) nodeMeta {
	if v, ok := a.metaCache.Load(string(b)); ok {
		return v.(nodeMeta)
	}
	m, err := decodeMeta(b)
	if err != nil {
		// A member we cannot understand is never a candidate.
		m = nodeMeta{Collector: true}
	}
	a.metaCache.Store(string(b), m)
	return m
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
		for _, n := range a.ml.Members() {
			if n.Name != a.cfg.Name {
				_ = a.ml.SendBestEffort(n, bye)
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

// sampleLoop samples, checks and reports this node once per Interval.
func (a *Agent) sampleLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.sampleOnce()
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

func (a *Agent) sampleOnce() {
	load, err := a.sampler.Sample()
	if err != nil {
		a.logger.Printf("[WARN] sample: %v", err)
		return
	}
	a.mu.Lock()
	checker := a.checker
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Interval+a.cfg.Checks.CommandTimeout)
	results := checker.Run(ctx)
	cancel()
	var failing []CheckResult
	for _, r := range results {
		if !r.OK {
			failing = append(failing, r)
		}
	}
	a.metrics.observeSample(load, results)

	now := time.Now()
	a.mu.Lock()
	r := &Report{Node: a.cfg.Name, Generation: a.generation, Load: load, Failing: failing}
	send := a.lastSent == nil || now.Sub(a.sentAt) >= a.cfg.RefreshInterval || a.mattersLocked(r)
	if !send {
		a.mu.Unlock()
		return
	}
	a.seq++
	r.Seq = a.seq
	a.lastSent, a.sentAt = r, now
	a.reports[r.Node] = &heldReport{r: r, received: now}
	a.mu.Unlock()

	a.fanOut(r)
	a.kick()
}

// mattersLocked reports whether r differs enough from the last report sent
// for anyone's ranking to change: a check started or stopped failing, the
// CPU or memory term moved by half the tie delta, users or CPUs changed.
func (a *Agent) mattersLocked(r *Report) bool {
	o := a.lastSent
	if !slices.Equal(r.Failing, o.Failing) || r.Load.CPUs != o.Load.CPUs || r.Load.Users != o.Load.Users {
		return true
	}
	half := a.score.Delta / 2
	return math.Abs(Score(r.Load, a.score, ByCPU)-Score(o.Load, a.score, ByCPU)) >= half ||
		math.Abs(Score(r.Load, a.score, ByMem)-Score(o.Load, a.score, ByMem)) >= half
}

// fanOut sends r straight to every alive member. One hop reaches everyone
// at once and costs N−1 small packets per change, an order of magnitude
// less than relaying through the broadcast queue; push/pull repairs any
// packet lost on the way.
func (a *Agent) fanOut(r *Report) {
	msg := AppendReport([]byte{msgReport}, r)
	for _, n := range a.ml.Members() {
		if n.Name == a.cfg.Name || n.State != memberlist.StateAlive {
			continue
		}
		// A failed send is repaired by the next report or push/pull.
		_ = a.ml.SendBestEffort(n, msg)
	}
	a.reportsSent.Add(1)
}

// apply stores r if it is newer than what is held for its node.
func (a *Agent) apply(r *Report, now time.Time) bool {
	if r.Node == a.cfg.Name {
		return false // only this agent speaks for itself
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.reports[r.Node]; ok && !r.newer(h.r) {
		return false
	}
	a.reports[r.Node] = &heldReport{r: r, received: now.Add(-r.Age)}
	return true
}

// probeLoop pings the best candidates (and the ones already suspected)
// every interval; two missed pings in a row make a node suspect here.
func (a *Agent) probeLoop(interval time.Duration, top int) {
	defer a.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		s := a.Snapshot()
		targets := map[string]string{}
		for _, n := range s.Rank("", "").Pick(0, nil) {
			if len(targets) >= top {
				break
			}
			targets[n.Name] = n.Gossip
		}
		a.mu.Lock()
		for name := range a.suspects {
			if n := s.Node(name); n != nil {
				targets[name] = n.Gossip
			}
		}
		a.mu.Unlock()
		var wg sync.WaitGroup
		var rmu sync.Mutex
		results := map[string]bool{}
		for name, addr := range targets {
			udp, err := net.ResolveUDPAddr("udp", addr)
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := a.ml.Ping(name, udp)
				if err != nil {
					_, err = a.ml.Ping(name, udp)
				}
				rmu.Lock()
				results[name] = err == nil
				rmu.Unlock()
			}()
		}
		wg.Wait()
		changed := false
		a.mu.Lock()
		for name, ok := range results {
			if a.suspects[name] == ok {
				changed = true
				if ok {
					delete(a.suspects, name)
				} else {
					a.suspects[name] = true
				}
			}
		}
		a.mu.Unlock()
		if changed {
			a.kick()
		}
	}
}

// rebuildLoop publishes a new snapshot when reports or membership change,
// and at least every half interval so suspects and stale reports leave the
// candidates promptly (memberlist has no event for "suspect").
func (a *Agent) rebuildLoop() {
	defer a.wg.Done()
	t := time.NewTicker(min(a.cfg.Interval/2, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		case <-a.rebuild:
		}
		a.publish(time.Now())
	}
}

// publish builds and stores a snapshot, and tells subscribers when it
// differs from the last one they heard of.
func (a *Agent) publish(now time.Time) {
	s := a.build(now)
	a.snap.Store(s)
	a.metrics.observeSnapshot(s)
	h := fnv.New64a()
	var buf []byte
	for i := range s.Nodes {
		n := &s.Nodes[i]
		buf = append(buf[:0], n.Name...)
		buf = append(buf, 0)
		buf = append(buf, n.State...)
		buf = strconv.AppendBool(buf, n.Candidate)
		for _, r := range n.Reasons {
			buf = append(buf, r...)
			buf = append(buf, 0)
		}
		if n.Report != nil {
			buf = binary.AppendUvarint(buf, n.Report.Generation)
			buf = binary.AppendUvarint(buf, n.Report.Seq)
		}
		h.Write(buf)
	}
	fp := h.Sum64()
	a.mu.Lock()
	changed := fp != a.fingerprint
	a.fingerprint = fp
	a.mu.Unlock()
	if !changed {
		return
	}
	a.subsMu.Lock()
	for _, ch := range a.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	a.subsMu.Unlock()
}

func (a *Agent) build(now time.Time) *Snapshot {
	var members []*memberlist.Node
	if a.ml != nil {
		members = a.ml.Members()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	s := &Snapshot{Built: now, Self: a.cfg.Name, Score: a.score}
	seen := make(map[string]bool, len(members))
	add := func(n *memberlist.Node, state string, m nodeMeta) {
		seen[n.Name] = true
		ns := NodeStatus{
			Name:      n.Name,
			Addr4:     m.Addr4,
			Addr6:     m.Addr6,
			Gossip:    net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
			State:     state,
			Collector: m.Collector,
			Pools:     m.Pools,
			Roles:     m.Roles,
		}
		if h, ok := a.reports[n.Name]; ok {
			ns.Report, ns.Received = h.r, h.received
			ns.Score = Score(h.r.Load, a.score, a.score.By)
		}
		switch {
		case m.Collector:
			ns.Reasons = append(ns.Reasons, "collector")
		case state != StateAlive:
			ns.Reasons = append(ns.Reasons, state)
		case ns.Report == nil:
			ns.Reasons = append(ns.Reasons, "no report yet")
		case now.Sub(ns.Received) > a.cfg.StaleAfter:
			ns.Reasons = append(ns.Reasons, fmt.Sprintf("stale report (%s old)", now.Sub(ns.Received).Round(time.Second)))
		}
		if ns.Report != nil && !m.Collector {
			for _, f := range ns.Report.Failing {
				ns.Reasons = append(ns.Reasons, f.Name+": "+f.Reason)
			}
		}
		ns.Candidate = len(ns.Reasons) == 0
		s.Nodes = append(s.Nodes, ns)
	}
	for _, n := range members {
		// memberlist does not expose its suspect state; ours comes from
		// probeLoop's pings.
		state := StateAlive
		if a.suspects[n.Name] {
			state = StateSuspect
		}
		delete(a.gone, n.Name)
		add(n, state, a.parseMeta(n.Meta))
	}
	for name, g := range a.gone {
		if now.Sub(g.at) > a.cfg.StaleAfter {
			delete(a.gone, name)
			delete(a.reports, name)
			continue
		}
		if !seen[name] {
			add(&g.node, g.state, g.parsed)
		}
	}
	for name := range a.reports {
		if !seen[name] && a.ml != nil {
			// Heard of through push/pull but not (or no longer) a member.
			if _, ok := a.gone[name]; !ok && name != a.cfg.Name {
				delete(a.reports, name)
			}
		}
	}
	slices.SortFunc(s.Nodes, func(x, y NodeStatus) int { return strings.Compare(x.Name, y.Name) })
	return s
}

// delegate is the memberlist.Delegate of an Agent. memberlist calls it
// from its packet and stream goroutines concurrently; no method blocks.
type delegate Agent

func (d *delegate) NodeMeta(limit int) []byte { return d.meta }

func (d *delegate) NotifyMsg(b []byte) {
	a := (*Agent)(d)
	if len(b) > 0 && b[0] == msgLeave {
		dec := decoder{b: b[1:]}
		if name := dec.string(maxNameBytes); dec.err == nil {
			a.mu.Lock()
			a.leaving[name] = true
			a.mu.Unlock()
		}
		return
	}
	if len(b) == 0 || b[0] != msgReport {
		a.metrics.received("invalid")
		return
	}
	r, _, err := DecodeReport(b[1:])
	if err != nil {
		a.metrics.received("invalid")
		return
	}
	a.reportsReceived.Add(1)
	if a.apply(r, time.Now()) {
		a.metrics.received("applied")
		a.kick()
	} else {
		a.metrics.received("old")
	}
}

func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }

// LocalState sends every report this member holds, each with its age, so
// a member that missed a fan-out packet or just joined catches up.
func (d *delegate) LocalState(join bool) []byte {
	a := (*Agent)(d)
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	b := []byte{msgState}
	b = binary.AppendUvarint(b, uint64(len(a.reports)))
	for _, h := range a.reports {
		r := *h.r
		r.Age = max(now.Sub(h.received), 0)
		b = AppendReport(b, &r)
	}
	return b
}

func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	a := (*Agent)(d)
	if len(buf) == 0 || buf[0] != msgState {
		return
	}
	dec := decoder{b: buf[1:]}
	n := dec.uvarintMax(1 << 20)
	if dec.err != nil {
		return
	}
	rest := dec.b
	now := time.Now()
	applied := false
	for i := uint64(0); i < n; i++ {
		r, next, err := DecodeReport(rest)
		if err != nil {
			a.metrics.received("invalid")
			break
		}
		rest = next
		if a.apply(r, now) {
			applied = true
		}
	}
	if applied {
		a.kick()
	}
}

// eventDelegate turns membership events into snapshot rebuilds. memberlist
// calls it with its state lock held: it must not call back into memberlist.
type eventDelegate Agent

func (e *eventDelegate) NotifyJoin(n *memberlist.Node) {
	a := (*Agent)(e)
	a.mu.Lock()
	delete(a.leaving, n.Name)
	delete(a.suspects, n.Name)
	a.mu.Unlock()
	a.kick()
}

func (e *eventDelegate) NotifyUpdate(n *memberlist.Node) {
	a := (*Agent)(e)
	a.kick()
}

func (e *eventDelegate) NotifyLeave(n *memberlist.Node) {
	a := (*Agent)(e)
	// memberlist's Node.State is not kept up to date; the goodbye message
	// tells a graceful leave from a failure.
	a.mu.Lock()
	state := StateDead
	if a.leaving[n.Name] {
		state = StateLeft
	}
	delete(a.leaving, n.Name)
	delete(a.suspects, n.Name)
	a.gone[n.Name] = goneNode{state: state, at: time.Now(), node: *n, parsed: a.parseMeta(n.Meta)}
	a.mu.Unlock()
	a.kick()
}

// debugFilter drops memberlist's [DEBUG] lines, which report every stream
// and probe.
type debugFilter struct{ l *log.Logger }

func (f debugFilter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "[DEBUG]") {
		return len(p), nil
	}
	f.l.Print(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
