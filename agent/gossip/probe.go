package gossip

import (
	"net"
	"sync"
	"time"
)

// Probe pings the named members (and the ones already missing pings)
// once, concurrently, and a member that missed that round again at once,
// until it answers or has missed probeMisses rounds in a row: then it is
// suspect here until it answers a ping or sends a report. Collectors call
// it once per probe interval with their best candidates, so a dead node
// leaves their answers within seconds (with LAN timings 1.3 to 2.3 s after
// it died), before memberlist's suspicion timeout (which grows with the
// cluster).
func (m *Member) Probe(names []string) {
	m.mu.Lock()
	targets := make([]Node, 0, len(names)+len(m.missed))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if n, ok := m.members[name]; ok && !seen[name] {
			targets, seen[name] = append(targets, m.nodeLocked(&n)), true
		}
	}
	for name := range m.missed {
		if n, ok := m.members[name]; ok && !seen[name] {
			targets = append(targets, m.nodeLocked(&n))
		}
	}
	m.mu.Unlock()
	changed := false
	for len(targets) > 0 {
		answered := m.pingAll(targets)
		var again []Node
		m.mu.Lock()
		for i, ok := range answered {
			name := targets[i].Name
			before := m.missed[name] >= probeMisses
			if ok {
				delete(m.missed, name)
			} else if m.missed[name]++; m.missed[name] < probeMisses {
				again = append(again, targets[i])
			}
			changed = changed || before != (m.missed[name] >= probeMisses)
		}
		m.mu.Unlock()
		targets = again
	}
	if changed {
		m.onChange()
	}
}

// Answering pings nodes now, concurrently, and reports which answered
// within memberlist's probe timeout (this member always answers). The
// CLI's picks go through it, so `ssh $(peerload top)` never lands on a
// machine that died a moment ago, without every agent pinging the best
// machines all the time. A node that does not answer is only left out of
// that answer (one lost packet is no failure); one that answers is no
// longer counted as missing probe rounds.
func (m *Member) Answering(nodes []Node) []bool {
	ok := m.pingAll(nodes)
	m.mu.Lock()
	for i, n := range nodes {
		if ok[i] {
			delete(m.missed, n.Name)
		}
	}
	m.mu.Unlock()
	return ok
}

// pingAttempts is how many pings a node gets in one round before it counts
// as having missed it; each goes out only when the ones before it have not
// been answered for a tenth of memberlist's probe timeout. One lost
// datagram is no miss: at 10 % loss a round trip fails 19 % of the time,
// four of them 0.13 %, and two rounds in a row (probeMisses) 2 in a
// million, so a lossy link does not take a live node out of the answers,
// while a dead node's round still ends within 1.3 probe timeouts. On a
// clean network the first ping is answered in well under a millisecond and
// no other is sent.
const pingAttempts = 4

// pingAll pings nodes concurrently and reports which answered within
// memberlist's probe timeout of one of up to pingAttempts pings; this
// member always answers.
func (m *Member) pingAll(nodes []Node) []bool {
	ok := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.Name == m.cfg.Name {
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
			ok[i] = m.ping(n.Name, udp)
		}()
	}
	wg.Wait()
	return ok
}

// ping reports whether name answers one of up to pingAttempts pings, sent
// a tenth of the probe timeout apart until one is answered.
func (m *Member) ping(name string, addr net.Addr) bool {
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
				_, err := m.ml.Ping(name, addr)
				answers <- err == nil
			}()
			next.Reset(m.cfg.Memberlist.ProbeTimeout / 10)
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
