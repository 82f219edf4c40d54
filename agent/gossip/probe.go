package gossip

import (
	"net"
	"slices"
	"sync"
	"time"

	"github.com/peerload/peerload/agent/report"
)

// probeMisses is how many probe rounds in a row a member must miss to
// become suspect here: a busy moment is not a failure, two in a row is (a
// round is missed only when pingAttempts pings went unanswered, and a miss
// is probed again at once). A killed node is thus suspect at most two
// rounds, each within 1.3 probe timeouts, after the first Probe call that
// follows its death.
const probeMisses = 2

// pingAttempts is how many pings a node gets in one round before it counts
// as having missed it; each goes out only when the ones before it have not
// been answered for a tenth of memberlist's probe timeout. One lost
// datagram is no miss: at 10 % loss a round trip fails 19 % of the time,
// four of them 0.13 %, and two rounds in a row (probeMisses) 2 in a
// million, so a lossy link does not take a live node out of the answers,
// while a dead node's round still ends within 1.3 probe timeouts. On a
// clean network the first ping is answered and no other is sent.
const pingAttempts = 4

// prober pings the members that matter directly, apart from memberlist's
// failure detection, and counts the probe rounds each missed in a row: at
// probeMisses it is suspect here until it answers a ping or sends a
// report. probe and answering block for a round of pings and are called
// concurrently; heard, forget and mark are called from memberlist's
// goroutines and do not block.
type prober struct {
	self   string
	roster *roster
	list   *lazyList
	// timeout is memberlist's probe timeout.
	timeout  time.Duration
	onChange func()

	mu sync.Mutex
	// missed counts the probe rounds in a row a member did not answer.
	missed map[string]int
}

func newProber(self string, r *roster, list *lazyList, timeout time.Duration, onChange func()) *prober {
	return &prober{self: self, roster: r, list: list, timeout: timeout, onChange: onChange, missed: make(map[string]int)}
}

// probe pings the named members (and the ones already missing pings)
// once, concurrently, and a member that missed that round again at once,
// until it answers or has missed probeMisses rounds in a row (see
// Member.Probe).
func (p *prober) probe(names []string) {
	p.mu.Lock()
	names = slices.Clone(names)
	for name := range p.missed {
		names = append(names, name)
	}
	p.mu.Unlock()
	targets := p.roster.nodes(names)
	changed := false
	for len(targets) > 0 {
		answered := p.pingAll(targets)
		var again []Node
		p.mu.Lock()
		for i, ok := range answered {
			name := targets[i].Name
			before := p.missed[name] >= probeMisses
			if ok {
				delete(p.missed, name)
			} else if p.missed[name]++; p.missed[name] < probeMisses {
				again = append(again, targets[i])
			}
			changed = changed || before != (p.missed[name] >= probeMisses)
		}
		p.mu.Unlock()
		targets = again
	}
	if changed {
		p.onChange()
	}
}

// answering pings nodes now, concurrently, and reports which answered
// (see Member.Answering); one that answers no longer counts as missing
// probe rounds.
func (p *prober) answering(nodes []Node) []bool {
	ok := p.pingAll(nodes)
	p.mu.Lock()
	for i, n := range nodes {
		if ok[i] {
			delete(p.missed, n.Name)
		}
	}
	p.mu.Unlock()
	return ok
}

// heard records that a report came straight from node name, which proves
// it up, and reports whether it was suspect until then.
func (p *prober) heard(name string) (wasSuspect bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasSuspect = p.missed[name] >= probeMisses
	delete(p.missed, name)
	return wasSuspect
}

// heardBatch is heard for the node of every report and entry of a batch
// that came straight from its node.
func (p *prober) heardBatch(rs []*report.Report, cs []report.Compact) (wasSuspect bool) {
	names := make([]string, 0, len(rs)+len(cs))
	for _, r := range rs {
		names = append(names, r.Node)
	}
	for _, c := range cs {
		names = append(names, p.roster.nameOf(c.ID))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range names {
		wasSuspect = wasSuspect || p.missed[name] >= probeMisses
		delete(p.missed, name)
	}
	return wasSuspect
}

// forget drops what is counted of a member that joined or left.
func (p *prober) forget(name string) { p.heard(name) }

// mark sets Suspect on the nodes that are.
func (p *prober) mark(nodes []Node) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range nodes {
		nodes[i].Suspect = p.missed[nodes[i].Name] >= probeMisses
	}
}

// pingAll pings nodes concurrently and reports which answered within
// memberlist's probe timeout of one of up to pingAttempts pings; this
// member always answers.
func (p *prober) pingAll(nodes []Node) []bool {
	ok := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.Name == p.self {
			ok[i] = true
			continue
		}
		udp, err := net.ResolveUDPAddr("udp", n.Gossip)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = p.ping(n.Name, udp)
		}()
	}
	wg.Wait()
	return ok
}

// ping reports whether name answers one of up to pingAttempts pings, sent
// a tenth of the probe timeout apart until one is answered.
func (p *prober) ping(name string, addr net.Addr) bool {
	ml := p.list.wait()
	answers := make(chan bool, pingAttempts)
	next := time.NewTimer(0)
	defer next.Stop()
	sent, failed := 0, 0
	for {
		wait := next.C
		if sent == pingAttempts {
			wait = nil
		}
		select {
		case <-wait:
			sent++
			go func() {
				_, err := ml.Ping(name, addr)
				answers <- err == nil
			}()
			next.Reset(p.timeout / 10)
		case ok := <-answers:
			if ok {
				return true
			}
			if failed++; failed == pingAttempts {
				return false
			}
		}
	}
}
