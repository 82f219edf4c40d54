package gossip

import (
	"bufio"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// greeter gets this member into the cluster and introduces it: it keeps
// trying the join list until a member answers (and again whenever this
// member finds itself alone), greets every member that joins with this
// member's name, address and report, and pushes/pulls with the members
// that greet this one before memberlist tells of them. greet and hello are
// called from memberlist's goroutines (greet with memberlist's state lock
// held) and do not block; loop runs in its own goroutine; the rest is
// called concurrently.
type greeter struct {
	self string
	addr string // ip:port others reach this member at
	// gossipInterval is memberlist's (see helloWait).
	gossipInterval time.Duration
	encrypted      bool
	allowed        func(netip.Addr) bool // the allow list
	table          *table
	roster         *roster
	list           *lazyList
	log            *slog.Logger
	stop           <-chan struct{}

	mu       sync.Mutex
	join     []string
	joinFile []string
	// strangers are the members that greeted this one before memberlist
	// told of them (name to address); greeting is true while
	// greetStrangers runs.
	strangers map[string]string
	greeting  bool
}

// setJoin replaces the join list and what the join file lists.
func (g *greeter) setJoin(join, joinFile []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.join, g.joinFile = slices.Clone(join), joinFile
}

// wantsPeers reports whether this member was told to join anyone.
func (g *greeter) wantsPeers() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.join)+len(g.joinFile) > 0
}

// addrs is what loop tries: the join list and join file, less this
// member's own address.
func (g *greeter) addrs() []string {
	g.mu.Lock()
	addrs := append(slices.Clone(g.join), g.joinFile...)
	g.mu.Unlock()
	return slices.DeleteFunc(addrs, func(s string) bool { return s == g.addr })
}

// loop keeps trying the configured join addresses until one answers,
// backing off to 30 s, and tries again whenever this member finds itself
// alone (PeerMon's machines.txt behaviour after a partition).
func (g *greeter) loop() {
	ml := g.list.wait()
	wait := time.Duration(0)
	lastErr := ""
	for {
		select {
		case <-g.stop:
			return
		case <-time.After(wait):
		}
		addrs := g.addrs()
		if len(addrs) == 0 {
			return
		}
		if ml.NumMembers() > 1 {
			wait = 30 * time.Second
			continue
		}
		// One line per change of state, so a join that keeps failing for
		// the same reason does not fill the log.
		n, err := ml.Join(addrs)
		if err == nil {
			g.log.Info("joined the cluster", "answered", n, "members", ml.NumMembers())
			lastErr, wait = "", 30*time.Second
			continue
		}
		if err.Error() != lastErr {
			lastErr = err.Error()
			g.log.Warn("cannot join the cluster yet; retrying", "cause", joinCause(lastErr, g.encrypted),
				"tried", strings.Join(addrs, ","), "err", strings.ReplaceAll(lastErr, "\n", "; "))
		}
		wait = min(max(wait*2, time.Second), 30*time.Second)
	}
}

// greet sends a member that just joined this member's name and address
// (so it learns of this one even if memberlist's rumour misses it) and
// report (instead of leaving it to wait for the next change or refresh).
// memberlist holds its state lock here, so it sends from another
// goroutine.
func (g *greeter) greet(n *memberlist.Node) {
	if n.Name == g.self {
		return
	}
	own, proto := g.table.own(), g.roster.speaking()
	to := *n
	msgs := [][]byte{report.AppendHello([]byte{msgHello}, g.self, g.addr)}
	if own != nil {
		msgs = append(msgs, report.AppendReportAt([]byte{msgReport}, own, proto))
	}
	go func() {
		ml := g.list.wait()
		if ml == nil {
			return
		}
		for _, msg := range msgs {
			_ = send(ml, &to, kindGreeting, msg)
		}
	}()
}

// hello answers a member that introduced itself: when memberlist has not
// told this member of it yet, its "alive" rumour has not arrived (or never
// will), and a push/pull with it makes it a member here. A push/pull
// carries the whole membership both ways, so greetStrangers waits first
// for the rumour to spread, and does one push/pull at a time for all the
// strangers, since one brings every member the other side knows.
func (g *greeter) hello(name, addr string) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || name == g.self || !g.allowed(ap.Addr().Unmap()) {
		return
	}
	if _, known := g.roster.node(name); known {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.strangers[name] = addr
	if !g.greeting {
		g.greeting = true
		go g.greetStrangers()
	}
}

// greetStrangers waits helloWait, forgets the strangers memberlist has
// told of meanwhile, and pushes/pulls with one of the others; then again,
// until none is left. When a lab of 1,000 boots, newcomers greet every
// member faster than their rumours spread: a push/pull per greeting would
// be one per pair of machines, each carrying the whole membership.
func (g *greeter) greetStrangers() {
	for {
		select {
		case <-g.stop:
			return
		case <-time.After(g.helloWait()):
		}
		g.mu.Lock()
		addr := ""
		for name, a := range g.strangers {
			delete(g.strangers, name)
			if _, known := g.roster.node(name); !known {
				addr = a
				break
			}
		}
		if addr == "" {
			g.greeting = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		select {
		case <-g.stop:
			return
		default:
		}
		if ml := g.list.wait(); ml != nil {
			_, _ = ml.Join([]string{addr})
		}
	}
}

// helloWait is how long a rumour takes to reach most members: two gossip
// rounds plus one per doubling of the cluster.
func (g *greeter) helloWait() time.Duration {
	rounds := 2 + math.Ceil(math.Log2(float64(g.roster.size()+1)))
	return time.Duration(rounds) * g.gossipInterval
}

// ReadJoinFile reads host:port lines (PeerMon's machines.txt): blank lines
// and '#' comments are ignored; a line without a port is an error naming
// the file and line.
func ReadJoinFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("join file: %w", err)
	}
	defer f.Close()
	var addrs []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("join file %s: line %d: %q: want host:port", path, line, s)
		}
		addrs = append(addrs, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("join file %s: %w", path, err)
	}
	return addrs, nil
}

// joinCause names why a join failed, from memberlist's error text: the
// joining side of a label or key mismatch or an allow list sees only a
// closed connection, so it says which settings to compare.
func joinCause(err string, encrypted bool) string {
	switch {
	case strings.Contains(err, "only in case"):
		return "name clash"
	case strings.Contains(err, "no installed keys could decrypt"), strings.Contains(err, "encryption is not configured"),
		strings.Contains(err, "remote state is not encrypted"):
		return "key mismatch"
	case strings.Contains(err, "connection refused"):
		return "refused: nothing listens there"
	case strings.Contains(err, "i/o timeout"), strings.Contains(err, "deadline exceeded"):
		return "timeout: the member is down or a firewall drops gossip"
	case strings.Contains(err, "EOF"), strings.Contains(err, "connection reset"):
		if encrypted {
			return "the member closed the connection: another --label or --keyring, or this address is outside its --allow"
		}
		return "the member closed the connection: another --label, a --keyring there, or this address is outside its --allow"
	}
	return "unknown"
}
