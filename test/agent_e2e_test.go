package test

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/rank"
)

// topNames runs `peerload top -n n` against api and returns the names, nil
// when it fails.
func topNames(t *testing.T, apiAddr string, n int) ([]string, cmdResult) {
	t.Helper()
	res := runPeerload(t, "top", "-n", fmt.Sprint(n), "--api", apiAddr)
	if res.Code != 0 {
		return nil, res
	}
	return res.Lines(), res
}

// statusOf returns what `peerload status --json` at api says about node.
func statusOf(t *testing.T, apiAddr, node string) (*api.NodeJSON, cmdResult) {
	t.Helper()
	res := runPeerload(t, "status", "--json", "--api", apiAddr)
	if res.Code != 0 {
		return nil, res
	}
	var resp api.NodesResponse
	if err := json.Unmarshal([]byte(res.Stdout), &resp); err != nil {
		t.Fatalf("status --json: %v\n%s", err, res.Stdout)
	}
	for i := range resp.Nodes {
		if resp.Nodes[i].Name == node {
			return &resp.Nodes[i], res
		}
	}
	return nil, res
}

// TestAgentEndToEnd runs three `peerload agent` processes on loopback, each
// with its own fake /proc and state dir, and drives them with the CLI.
func TestAgentEndToEnd(t *testing.T) {
	nodes := startCluster(t, "e2e", 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	t.Run("all three in top", func(t *testing.T) {
		for _, a := range nodes {
			got, res := topNames(t, a.API(), 3)
			slices.Sort(got)
			if strings.Join(got, ",") != "e2e1,e2e2,e2e3" {
				t.Errorf("top -n 3 at %s = %v (%s)", a.Opts.Name, got, res)
			}
		}
		res := runPeerload(t, "top", "-n", "3", "--ip", "--api", n1.API())
		ips := res.Lines()
		slices.Sort(ips)
		if res.Code != 0 || strings.Join(ips, ",") != "127.0.1.1,127.0.1.2,127.0.1.3" {
			t.Errorf("top --ip = %s", res)
		}
	})

	t.Run("one P and GOGC 50 unless the environment says", func(t *testing.T) {
		if os.Getenv("GOGC") != "" || os.Getenv("GOMAXPROCS") != "" {
			t.Skip("this environment sets GOGC or GOMAXPROCS, which the agents inherit")
		}
		code, body := httpGet(n1.API(), "/metrics")
		for _, want := range []string{"\ngo_gc_gogc_percent 50\n", "\ngo_sched_gomaxprocs_threads 1\n"} {
			if code != 200 || !strings.Contains(body, want) {
				t.Errorf("/metrics (%d) lacks %q", code, strings.TrimSpace(want))
			}
		}
	})

	t.Run("ssh and hostfile", func(t *testing.T) {
		echo := requireProgram(t, "echo")
		res := runCmd(t, []string{"PEERLOAD_API=" + n1.API(), "PEERLOAD_SSH=" + echo}, peerloadBin(t),
			"ssh", "--", "-l", "alice", "uptime")
		f := strings.Fields(res.Stdout)
		if res.Code != 0 || len(f) != 4 || f[0] != "-l" || f[1] != "alice" || !strings.HasPrefix(f[2], "e2e") || f[3] != "uptime" {
			t.Errorf("ssh through echo: %s", res)
		}
		res = runPeerload(t, "hostfile", "--format", "slurm", "-s", "2", "--api", n1.API(), "-")
		if lines := res.Lines(); res.Code != 0 || len(lines) != 6 || lines[0] != lines[1] {
			t.Errorf("slurm hostfile of 3 machines with 2 slots: %s", res)
		}
	})

	t.Run("high load moves a node last", func(t *testing.T) {
		n1.Opts.Proc.SetLoad(t, 40, 30, 20)
		waitFor(t, 10*time.Second, func() (bool, string) {
			for _, a := range nodes {
				// Equal scores are listed in random order, so e2e1 may be
				// last by chance before its new load arrives: first wait
				// until every member holds the loaded report.
				if st, res := statusOf(t, a.API(), "e2e1"); st == nil || st.Report == nil || st.Report.Load1 != 40 {
					return false, fmt.Sprintf("e2e1's load-40 report not yet at %s: %+v %s", a.Opts.Name, st, res)
				}
				got, res := topNames(t, a.API(), 3)
				if len(got) != 3 || got[2] != "e2e1" {
					return false, fmt.Sprintf("top -n 3 at %s: %s", a.Opts.Name, res)
				}
			}
			return true, ""
		})
		// Never the single best while loaded.
		for range 10 {
			if got, res := topNames(t, n2.API(), 1); len(got) != 1 || got[0] == "e2e1" {
				t.Fatalf("top at e2e2 = %s", res)
			}
		}
	})

	t.Run("drain and undrain", func(t *testing.T) {
		res := runPeerload(t, "drain", "--reason", "disk swap", "--control", n2.Control())
		if res.Code != 0 || strings.TrimSpace(res.Stdout) != "e2e2 drained: disk swap" {
			t.Fatalf("drain: %s", res)
		}
		waitFor(t, 10*time.Second, func() (bool, string) {
			for _, a := range nodes {
				got, res := topNames(t, a.API(), 3)
				if len(got) != 2 || slices.Contains(got, "e2e2") {
					return false, fmt.Sprintf("top -n 3 at %s: %s", a.Opts.Name, res)
				}
			}
			return true, ""
		})
		st, res := statusOf(t, n1.API(), "e2e2")
		if st == nil || st.Candidate || st.State != rank.StateAlive || !strings.Contains(strings.Join(st.Reasons, ";"), "disk swap") {
			t.Errorf("status of the drained node at e2e1: %+v (%s)", st, res)
		}
		if res := runPeerload(t, "status", "--api", n1.API()); !strings.Contains(res.Stdout, "disk swap") {
			t.Errorf("status table does not show the drain reason: %s", res)
		}

		if res := runPeerload(t, "undrain", "--control", n2.Control()); res.Code != 0 || strings.TrimSpace(res.Stdout) != "e2e2 undrained" {
			t.Fatalf("undrain: %s", res)
		}
		waitFor(t, 10*time.Second, func() (bool, string) {
			got, res := topNames(t, n1.API(), 3)
			return slices.Contains(got, "e2e2"), res.String()
		})
	})

	t.Run("drain survives a restart", func(t *testing.T) {
		if res := runPeerload(t, "drain", "--reason", "reimage", "--control", n2.Control()); res.Code != 0 {
			t.Fatalf("drain: %s", res)
		}
		before, res := statusOf(t, n2.API(), "e2e2")
		if before == nil || before.Report == nil {
			t.Fatalf("status of e2e2 before restart: %s", res)
		}
		n2.Stop()
		n2.Start()
		// Every member hears the new incarnation's report, which is drained.
		waitFor(t, 20*time.Second, func() (bool, string) {
			for _, a := range nodes {
				st, res := statusOf(t, a.API(), "e2e2")
				if st == nil || st.State != rank.StateAlive || st.Report == nil || st.Report.Generation <= before.Report.Generation {
					return false, fmt.Sprintf("%s: e2e2 not back with a new generation (before %d): %+v %s",
						a.Opts.Name, before.Report.Generation, st, res)
				}
				if st.Candidate || !strings.Contains(strings.Join(st.Reasons, ";"), "reimage") {
					return false, fmt.Sprintf("%s: e2e2 restarted but not drained: %+v", a.Opts.Name, st)
				}
			}
			return true, ""
		})
		for _, a := range nodes {
			if got, res := topNames(t, a.API(), 3); slices.Contains(got, "e2e2") || len(got) != 2 {
				t.Errorf("top at %s after restart = %s", a.Opts.Name, res)
			}
		}
		if res := runPeerload(t, "undrain", "--control", n2.Control()); res.Code != 0 {
			t.Fatalf("undrain: %s", res)
		}
		waitFor(t, 10*time.Second, func() (bool, string) {
			got, res := topNames(t, n1.API(), 3)
			return len(got) == 3, res.String()
		})
	})

	t.Run("killed node drops out", func(t *testing.T) {
		n3.Kill()
		start := time.Now()
		waitFor(t, 15*time.Second, func() (bool, string) {
			for _, a := range nodes[:2] {
				got, res := topNames(t, a.API(), 3)
				if len(got) != 2 || slices.Contains(got, "e2e3") {
					return false, fmt.Sprintf("top -n 3 at %s: %s", a.Opts.Name, res)
				}
			}
			return true, ""
		})
		t.Logf("killed node left top after %s", time.Since(start).Round(100*time.Millisecond))
	})

	t.Run("dead API", func(t *testing.T) {
		dead := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		res := runPeerload(t, "top", "--api", dead)
		want := "peerload top: cannot reach peerload agent at " + dead + " (is `peerload agent` running?)"
		if res.Code == 0 || res.Stdout != "" || !strings.HasPrefix(res.Stderr, want) || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("top against a dead API: %s", res)
		}
		n3res := runPeerload(t, "top", "--api", n3.API())
		if n3res.Code == 0 || !strings.Contains(n3res.Stderr, "cannot reach peerload agent") {
			t.Errorf("top against the killed agent: %s", n3res)
		}
	})
}

// TestAgentBadFlagsExit checks the agent binary refuses bad flags with exit
// 2 and bad files with exit 1, one line naming the problem.
func TestAgentBadFlagsExit(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"agent", "--bind", "foo"}, 2, `peerload agent: --bind "foo": missing port in address`},
		{[]string{"agent", "--keyring", "/nonexistent/keyring"}, 1, "/nonexistent/keyring"},
		{[]string{"agent", "--join-file", "/nonexistent/join"}, 1, "/nonexistent/join"},
	}
	for _, tt := range tests {
		res := runPeerload(t, tt.args...)
		if res.Code != tt.code || !strings.Contains(res.Stderr, tt.want) || strings.Count(res.Stderr, "\n") != 1 {
			t.Errorf("%v: %s; want exit %d and %q", tt.args, res, tt.code, tt.want)
		}
	}
}
