package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSteadyLoadNeverFlaps runs what a site runs on 127.0.0.1: three
// agents and `peerload nsupdate` in front of BIND with default settings
// (the LAN profile: a report at least every 15 s), and CoreDNS with the
// plugin as Corefile.example ships it (profile local: its own refresh is
// 2 s). Under a steady load nothing may drop out: for 60 s every A answer
// holds the full top-N from the candidates, always with the clearly best
// machine (the herd may trade the second with the third, whose loads its
// count of four uncached answers a second brings together), no answer
// comes from a fallback, and BIND receives exactly one UPDATE (the first:
// nobody logs in, so the updater's herd counts nothing). Before reports carried their sender's
// lifetime, a collector on faster timings than the agents called them
// stale between refreshes and did all three.
func TestSteadyLoadNeverFlaps(t *testing.T) {
	if testing.Short() {
		t.Skip("a 60 s observation")
	}
	named := startNamed(t, testZone, testLabel)
	agents := make([]*agentProc, 3)
	for i := range agents {
		opts := agentOptions{Name: fmt.Sprintf("steady%d", i+1), Advertise: fmt.Sprintf("127.0.1.%d", i+1), Profile: "lan"}
		if i > 0 {
			opts.Join = []string{agents[0].Gossip()}
		}
		agents[i] = startAgent(t, opts)
	}
	setLoads(t, agents, 0.4, 3.0, 0.8)
	want := []string{"127.0.1.1", "127.0.1.3"}
	c := startCoreDNS(t, corednsOptions{Join: []string{agents[0].Gossip()}, Top: 2})
	upd := startNsupdate(t, "upd-steady", named, agents[0].Gossip(), "--tsig-key", named.KeyFile, "--top", "2", "--profile", "lan")

	// The precondition, everywhere: CoreDNS answers the top 2 and BIND holds
	// them (LAN timings: a join may wait for a push/pull, 30 s).
	waitFor(t, 45*time.Second, func() (bool, string) {
		got := digSet(t, c, "cslab.example.edu", "A", false)
		return slices.Equal(got, want), fmt.Sprintf("CoreDNS A = %v, want %v", got, want)
	})
	waitRecords(t, named, 45*time.Second, want...)

	deadline := time.Now().Add(60 * time.Second)
	answers := 0
	for time.Now().Before(deadline) {
		if got := digSet(t, c, "cslab.example.edu", "A", false); len(got) != 2 || !slices.Contains(got, want[0]) {
			t.Fatalf("after %d steady answers, A = %v, want 2 records with %s", answers, got, want[0])
		}
		answers++
		if answers%10 == 0 {
			for _, txt := range digSet(t, c, "cslab.example.edu", "TXT", false) {
				if strings.Contains(txt, "fallback=") {
					t.Fatalf("a fallback answer under steady load: %s", txt)
				}
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := named.Records(); !slices.Equal(got, want) {
		t.Fatalf("BIND holds %v, want %v", got, want)
	}
	if n := updatesReceived(named); n != 1 {
		t.Errorf("BIND applied %d UPDATEs under steady load, want exactly 1:\n%s", n, named.Log())
	}
	if v := upd.Metric(mSent, ""); v != 1 {
		t.Errorf("the updater sent %v UPDATEs, want 1", v)
	}
	t.Logf("%d A answers in 60 s, all the full top 2", answers)
}

// updatesReceived counts the UPDATE messages named applied, from its log:
// each one logs "updating zone" lines under the client (address and port)
// that sent it.
func updatesReceived(n *namedServer) int {
	clients := map[string]bool{}
	for _, line := range strings.Split(n.Log(), "\n") {
		if i := strings.Index(line, ": updating zone '"); i >= 0 {
			if j := strings.Index(line, "client @"); j >= 0 && j < i {
				clients[line[j:i]] = true
			}
		}
	}
	return len(clients)
}
