package peerload

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
)

// staticLab is five machines of 4 cores at 0.1, 0.3, 0.5, 0.7 and 0.9 load
// per core, their reports a second old at the bubble's now.
func staticLab() *rank.Snapshot {
	var nodes []rank.NodeStatus
	for i, perCore := range []float64{0.1, 0.3, 0.5, 0.7, 0.9} {
		n := testNode(fmt.Sprintf("lab%02d", i+1), fmt.Sprintf("10.0.0.%d", 11+i), 4*perCore)
		n.Received = time.Now().Add(-time.Second)
		nodes = append(nodes, n)
	}
	s := testSnapshot(nodes...)
	s.Built = time.Now()
	return s
}

// firstOf sends 30 A queries 100 ms apart to a block parsed from corefile,
// watching a static lab whose load never changes (no report shows the
// logins: 3 s is far less than the kernel's one-minute average needs), and
// counts how often each address came first: what ssh logs in to.
func firstOf(t *testing.T, corefile string) map[string]int {
	t.Helper()
	cfg, err := parse(testController(corefile))
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]int{}
	synctest.Test(t, func(t *testing.T) {
		src := agenttest.NewSource(staticLab())
		p := newTestPeerLoad(cfg, nil)
		stop := p.watch(src)
		defer stop()
		for range 30 {
			synctest.Wait()
			ips := answerIPs(query(t, p, "cslab.example.edu.", dns.TypeA))
			if len(ips) == 0 {
				t.Fatal("empty answer")
			}
			first[ips[0]]++
			time.Sleep(100 * time.Millisecond)
		}
	})
	return first
}

// TestHerdSpreadsUncachedQueries is a class logging in through resolvers
// that do not cache: with the default block no machine is first in more
// than half of 30 answers; with herd off the least-loaded one is first in
// all of them.
func TestHerdSpreadsUncachedQueries(t *testing.T) {
	on := firstOf(t, `peerload cslab.example.edu`)
	for ip, n := range on {
		if n > 15 {
			t.Errorf("herd on (default): %s first in %d of 30 answers, want at most 15 (%v)", ip, n, on)
		}
	}
	if len(on) < 3 {
		t.Errorf("herd on (default): only %d machines came first (%v), want at least 3", len(on), on)
	}
	off := firstOf(t, "peerload cslab.example.edu {\n herd off\n}")
	if off["10.0.0.11"] != 30 {
		t.Errorf("herd off: the least-loaded machine first in %d of 30 answers (%v), want all", off["10.0.0.11"], off)
	}
}

// TestHandedOutTotal counts every machine of every address answer, once
// the watcher moved the answers' counts into the metric.
func TestHandedOutTotal(t *testing.T) {
	cfg := testConfig()
	p := newTestPeerLoad(cfg, nil)
	p.publish(testSnapshot(testNode("lab01", "10.0.0.11", 0.1), testNode("lab02", "10.0.0.12", 2)))
	c := handedTotal.WithLabelValues("", "lab02")
	before := metricValue(t, c)
	for range 3 {
		query(t, p, "cslab.example.edu.", dns.TypeA)
		query(t, p, "cslab.example.edu.", dns.TypeTXT)
	}
	select {
	case <-p.kick: // the watcher is told once
	default:
		t.Error("answers handed out machines without telling the watcher")
	}
	p.flush(time.Now())
	if got := metricValue(t, c) - before; got != 3 {
		t.Errorf("handed_out_total{node=lab02} rose by %v for 3 A answers and 3 TXT answers, want 3", got)
	}
}
