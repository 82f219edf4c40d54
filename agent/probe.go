package agent

import (
	"net"
	"sync"
	"time"
)

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
