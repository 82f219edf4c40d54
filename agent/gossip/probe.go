package gossip

import (
	"net"
	"sync"
)

// Probe pings the named members (and the ones already missing pings)
// once, concurrently. A member that misses probeMisses rounds in a row is
// suspect here until it answers a ping or sends a report. Collectors call
// it once per probe interval with their best candidates, so a dead node
// leaves their answers within seconds, before memberlist's suspicion
// timeout (which grows with the cluster).
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
	answered := m.pingAll(targets)
	changed := false
	m.mu.Lock()
	for i, ok := range answered {
		name := targets[i].Name
		before := m.missed[name] >= probeMisses
		if ok {
			delete(m.missed, name)
		} else {
			m.missed[name]++
		}
		changed = changed || before != (m.missed[name] >= probeMisses)
	}
	m.mu.Unlock()
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

// pingAll pings nodes concurrently and reports which answered within
// memberlist's probe timeout; this member always answers.
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
			_, err := m.ml.Ping(n.Name, udp)
			ok[i] = err == nil
		}()
	}
	wg.Wait()
	return ok
}
