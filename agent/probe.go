package agent

import (
	"net"
	"sync"
	"time"
)

// probeMisses is how many probe rounds in a row a candidate must miss to
// become suspect here: one lost packet or a busy moment is not a failure.
const probeMisses = 3

// probeLoop pings the best candidates (and the ones already missing
// pings) once every interval. A node that misses probeMisses rounds in a
// row is suspect here until it answers a ping or sends a report.
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
		var targets []NodeStatus
		seen := map[string]bool{}
		for _, n := range s.Rank("", "").Nodes {
			if len(targets) >= top {
				break
			}
			targets, seen[n.Name] = append(targets, n), true
		}
		a.mu.Lock()
		for name := range a.missed {
			if n := s.Node(name); n != nil && !seen[name] {
				targets = append(targets, *n)
			}
		}
		a.mu.Unlock()
		answered := a.pingAll(targets)
		changed := false
		a.mu.Lock()
		for i, ok := range answered {
			name := targets[i].Name
			before := a.missed[name] >= probeMisses
			if ok {
				delete(a.missed, name)
			} else {
				a.missed[name]++
			}
			changed = changed || before != (a.missed[name] >= probeMisses)
		}
		a.mu.Unlock()
		if changed {
			a.kick()
		}
	}
}

// Answering pings nodes now, concurrently, and reports which answered
// within memberlist's probe timeout (this node always answers). The CLI's
// picks go through it, so `ssh $(peerload top)` never lands on a machine
// that died a moment ago, without every agent pinging the best machines
// all the time. A node that does not answer is only left out of this
// answer (one lost packet is no failure); one that answers is no longer
// counted as missing probe rounds.
func (a *Agent) Answering(nodes []NodeStatus) []bool {
	ok := a.pingAll(nodes)
	a.mu.Lock()
	for i, n := range nodes {
		if ok[i] {
			delete(a.missed, n.Name)
		}
	}
	a.mu.Unlock()
	return ok
}

// pingAll pings nodes concurrently and reports which answered within
// memberlist's probe timeout; this node always answers.
func (a *Agent) pingAll(nodes []NodeStatus) []bool {
	ok := make([]bool, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.Name == a.cfg.Name {
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
			_, err := a.ml.Ping(n.Name, udp)
			ok[i] = err == nil
		}()
	}
	wg.Wait()
	return ok
}
