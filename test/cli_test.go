package test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// stateOf returns the state `peerload status --json` at agent a shows for
// name, "" when it does not list it.
func stateOf(t *testing.T, a *agentProc, name string) (string, string) {
	t.Helper()
	res := runPeerload(t, "status", "--json", "--api", a.API())
	var resp api.NodesResponse
	if err := json.Unmarshal([]byte(res.Stdout), &resp); err != nil {
		return "", res.String()
	}
	for _, n := range resp.Nodes {
		if n.Name == name {
			return n.State, res.Stdout
		}
	}
	return "", res.Stdout
}

// TestStatusKeepsGoneMachines: a machine that died (kill -9) or left (TERM)
// stays in `peerload status`, with that state, for a while: it used to
// vanish about 15 s after dying, before anyone looked.
func TestStatusKeepsGoneMachines(t *testing.T) {
	agents := startCluster(t, "gone", 3)
	watcher, dead, left := agents[0], agents[1], agents[2]
	dead.Kill()
	left.Signal(syscall.SIGTERM)
	for name, want := range map[string]string{"gone2": "dead", "gone3": "left"} {
		waitFor(t, 20*time.Second, func() (bool, string) {
			got, out := stateOf(t, watcher, name)
			return got == want, fmt.Sprintf("%s is %q, want %q:\n%s", name, got, want, out)
		})
	}
	// Still listed 20 s later, with the state in the table.
	until := time.Now().Add(20 * time.Second)
	for time.Now().Before(until) {
		for name, want := range map[string]string{"gone2": "dead", "gone3": "left"} {
			if got, out := stateOf(t, watcher, name); got != want {
				t.Fatalf("%s after %v: %q, want %q:\n%s", name, 20*time.Second-time.Until(until), got, want, out)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	table := runPeerload(t, "status", "--api", watcher.API()).Stdout
	for _, re := range []string{`(?m)^gone2\s+dead\s`, `(?m)^gone3\s+left\s`} {
		if !regexp.MustCompile(re).MatchString(table) {
			t.Errorf("status table lacks %s:\n%s", re, table)
		}
	}
}

// TestAgentsLeaveFast: every agent of a cluster stopped at once (a demo, a
// lab shutting down) exits within 2 s of TERM, with the local and the LAN
// timings; the last one used to wait 5-8 s for a leave broadcast nobody was
// left to carry.
func TestAgentsLeaveFast(t *testing.T) {
	for _, profile := range []string{"local", "lan"} {
		t.Run(profile, func(t *testing.T) {
			var agents []*agentProc
			for i := range 4 {
				opts := agentOptions{Name: fmt.Sprintf("fast%s%d", profile, i+1), Profile: profile}
				if i > 0 {
					opts.Join = []string{agents[0].Gossip()}
				}
				agents = append(agents, startAgent(t, opts))
			}
			for _, a := range agents {
				waitFor(t, 30*time.Second, func() (bool, string) {
					res := runPeerload(t, "top", "-n", "4", "--api", a.API())
					return len(res.Lines()) == 4, res.String()
				})
			}
			start := time.Now()
			var wg sync.WaitGroup
			took := make([]time.Duration, len(agents))
			for i, a := range agents {
				wg.Add(1)
				go func() {
					defer wg.Done()
					a.signal(syscall.SIGTERM, 10*time.Second)
					took[i] = time.Since(start)
				}()
			}
			wg.Wait()
			for i, a := range agents {
				if exited, code := a.Exited(); !exited || code != 0 || took[i] > 2*time.Second {
					t.Errorf("%s: exited %v with %d after %v, want 0 within 2 s", a.Opts.Name, exited, code, took[i])
				}
			}
			t.Logf("exit times after TERM: %v", took)
		})
	}
}

// TestVersionsNameTheBuild: both binaries say which peerload build they
// are (bin/coredns -version used to show only CoreDNS's version).
func TestVersionsNameTheBuild(t *testing.T) {
	pl := runCmd(t, nil, peerloadBin(t), "version")
	m := regexp.MustCompile(`^peerload (\S+) \(commit ([0-9a-f]{7,}(-dirty)?), go1\.\S+ \S+/\S+\)\n$`).FindStringSubmatch(pl.Stdout)
	if pl.Code != 0 || m == nil {
		t.Fatalf("peerload version: %s", pl)
	}
	dns := runCmd(t, nil, binPath(t, "coredns"), "-version")
	if want := "+peerload-" + m[1] + "\n"; dns.Code != 0 || !strings.Contains(dns.Stdout, want) || !strings.Contains(dns.Stdout, "peerload commit "+m[2]) {
		t.Errorf("coredns -version: %s, want %q and commit %s", dns, want, m[2])
	}
}
