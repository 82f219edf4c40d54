package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// herdLab starts n agents lab1..n with loads per core of 0.1, 0.3, 0.5...
// (4 CPUs each: distinct scores, far apart) that never change, and returns
// them with their addresses in order of load.
func herdLab(t *testing.T, n int) ([]*agentProc, []string) {
	t.Helper()
	agents := startCluster(t, "lab", n)
	var addrs []string
	for i, a := range agents {
		l := herdLoad(i)
		a.Opts.Proc.SetLoad(t, l, l, l)
		addrs = append(addrs, a.Opts.Advertise)
	}
	return agents, addrs
}

// herdLoad is the load1 of the i-th machine (from 0) of herdLab: 0.1,
// 0.3, 0.5... per core of 4.
func herdLoad(i int) float64 { return 4 * (0.1 + 0.2*float64(i)) }

// herdCoreDNS runs bin/coredns with one peerload block of the given
// properties beside the member settings (no top or ttl: the defaults),
// joined to the lab, and waits until its TXT answer shows every one of
// the n machines with its load (the ranking holds the new loads).
func herdCoreDNS(t *testing.T, join string, n int, props ...string) *corednsProc {
	t.Helper()
	ports := freePorts(t, 3)
	c := &corednsProc{DNSPort: ports[0], ReadyAddr: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	corefile := fmt.Sprintf(`example.edu:%d {
    bind 127.0.0.1
    ready %s
    peerload cslab.example.edu {
        bind 127.0.0.1:%d
        join %s
        profile local
        %s
    }
}
`, c.DNSPort, c.ReadyAddr, ports[2], join, strings.Join(props, "\n        "))
	runCoreDNS(t, c, corefile)
	waitFor(t, 30*time.Second, func() (bool, string) {
		txt := digTXT(t, c, "cslab.example.edu", true)
		loaded := 0
		for _, r := range txt {
			var i int
			if _, err := fmt.Sscanf(r["node"], "lab%d", &i); err == nil && r["load1"] == fmt.Sprintf("%.2f", herdLoad(i-1)) {
				loaded++
			}
		}
		return len(txt) == n && loaded == n, fmt.Sprintf("TXT %v: want %d machines with their loads", txt, n)
	})
	return c
}

// firstAddresses sends 30 uncached A queries 100 ms apart with dig, as a
// class logging in through stub resolvers would, and counts how often each
// address came first (what ssh connects to: glibc keeps the order).
func firstAddresses(t *testing.T, c *corednsProc) map[string]int {
	t.Helper()
	first := map[string]int{}
	for range 30 {
		ips := digShort(t, "127.0.0.1", c.DNSPort, "cslab.example.edu", "A")
		if len(ips) == 0 {
			t.Fatal("empty A answer")
		}
		first[ips[0]]++
		time.Sleep(100 * time.Millisecond)
	}
	return first
}

// TestHerdSpreadsAClass is the new user's check: five machines at static
// loads of 0.1 to 0.9 per core and a default peerload block: 30 uncached
// A queries in 3 s put no machine first more than 15 times. With herd off
// the least-loaded machine comes first every time (what 0.1.0 did).
func TestHerdSpreadsAClass(t *testing.T) {
	requireProgram(t, "dig")
	agents, addrs := herdLab(t, 5)
	on := herdCoreDNS(t, agents[0].Gossip(), 5)
	off := herdCoreDNS(t, agents[0].Gossip(), 5, "herd off")

	got := firstAddresses(t, on)
	t.Logf("default block: first addresses %v", got)
	for ip, n := range got {
		if n > 15 {
			t.Errorf("default block: %s first in %d of 30 answers, want at most 15 (%v)", ip, n, got)
		}
	}
	got = firstAddresses(t, off)
	t.Logf("herd off: first addresses %v", got)
	if got[addrs[0]] != 30 {
		t.Errorf("herd off: the least-loaded %s first in %d of 30 answers, want all (%v)", addrs[0], got[addrs[0]], got)
	}
}

// TestHerdFlood floods a default block with 20,000 queries a second for
// 10 s (dnsperf, a client that never caches): no answer ever holds a
// machine that is no candidate (a drained one that would otherwise rank
// first), and within one refresh after the flood every answer holds the
// least-loaded machines again: the herd counts a flood up to its bound on
// every machine alike and forgets it with the next reports.
func TestHerdFlood(t *testing.T) {
	requireProgram(t, "dig")
	dnsperf := requireProgram(t, "dnsperf")
	agents, addrs := herdLab(t, 6)
	drained := startAgent(t, agentOptions{Name: "lab0", Advertise: "127.0.1.100", Join: []string{agents[0].Gossip()}})
	drained.Opts.Proc.SetLoad(t, 0, 0, 0)
	waitFor(t, 30*time.Second, func() (bool, string) { // its control socket comes up with it
		res := runPeerload(t, "drain", "--reason", "flood test", "--control", drained.Control())
		return res.Code == 0, res.String()
	})
	c := herdCoreDNS(t, agents[0].Gossip(), 6, "top 3")
	best := slices.Clone(addrs[:3])

	queries := filepath.Join(t.TempDir(), "queries")
	if err := os.WriteFile(queries, []byte("cslab.example.edu A\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flood := exec.Command(dnsperf, "-s", "127.0.0.1", "-p", fmt.Sprint(c.DNSPort), "-d", queries,
		"-Q", "20000", "-l", "10", "-c", "8", "-q", "200")
	out := &lockedBuffer{}
	flood.Stdout, flood.Stderr = out, out
	if err := flood.Start(); err != nil {
		t.Fatalf("dnsperf: %v", err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		done <- flood.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = flood.Process.Kill()
		<-exited
	})
	check := func(when string, ips []string) {
		t.Helper()
		if len(ips) != 3 {
			t.Errorf("%s: A = %v, want 3 records", when, ips)
		}
		for _, ip := range ips {
			if !slices.Contains(addrs, ip) {
				t.Errorf("%s: A = %v holds %s, no candidate", when, ips, ip)
			}
		}
	}
	samples := 0
	for flooding := true; flooding; {
		select {
		case <-exited:
			flooding = false
			continue
		case <-time.After(200 * time.Millisecond):
		}
		check("during the flood", digShort(t, "127.0.0.1", c.DNSPort, "cslab.example.edu", "A"))
		samples++
	}
	if err := <-done; err != nil {
		t.Fatalf("dnsperf: %v\n%s", err, out.String())
	}
	ended := time.Now()
	t.Logf("dnsperf:\n%s", summary(out.String()))
	if samples < 10 {
		t.Errorf("only %d answers sampled during the 10 s flood", samples)
	}

	// One refresh: a site's (the LAN profile's 15 s) bounds the local
	// profile's 2 s with room for a machine starved by the flood.
	streak := 0
	waitFor(t, 15*time.Second, func() (bool, string) {
		ips := digShort(t, "127.0.0.1", c.DNSPort, "cslab.example.edu", "A")
		check("after the flood", ips)
		got := slices.Clone(ips)
		slices.Sort(got)
		if slices.Equal(got, best) {
			streak++
		} else {
			streak = 0
		}
		return streak >= 10, fmt.Sprintf("A = %v, want the three least loaded %v ten times in a row", got, best)
	})
	t.Logf("answers held the least-loaded machines again %.1fs after the flood", time.Since(ended).Seconds())
}

// summary keeps dnsperf's statistics lines.
func summary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "Queries") || strings.Contains(l, "Response codes") || strings.Contains(l, "Run time") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	return strings.Join(keep, "\n")
}
