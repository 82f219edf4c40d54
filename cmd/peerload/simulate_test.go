package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// small keeps CLI tests quick: ten machines for twenty minutes.
var small = []string{"simulate", "--machines", "10", "--burst", "6", "--duration", "20m"}

func TestSimulateHelp(t *testing.T) {
	out, _, code := run("simulate", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Usage: peerload simulate", "-machines", "-cores", "-util", "-burst ", "-burst-every", "-ttl", "-top", "-interval", "-duration", "-seed", "-json", "-plot", "peerload-herd", "slowdown"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestSimulateJSON(t *testing.T) {
	out, errOut, code := run(append(small, "--json", "--seed", "7")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var rs []map[string]any
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("not a JSON array: %v\n%s", err, out)
	}
	var names []string
	for _, r := range rs {
		names = append(names, r["policy"].(string))
		for _, k := range []string{"mean_slowdown", "p95_slowdown", "busiest_ratio"} {
			v, ok := r[k].(float64)
			if !ok || v < 1 {
				t.Errorf("%s: %s = %v, want a number ≥ 1", r["policy"], k, r[k])
			}
		}
	}
	if got, want := strings.Join(names, ","), "round-robin,random,peermon,lbnamed,peerload,peerload-herd,oracle"; got != want {
		t.Errorf("policies %s, want %s", got, want)
	}
	again, _, _ := run(append(small, "--json", "--seed", "7")...)
	if again != out {
		t.Error("the same seed gave different output")
	}
	other, _, _ := run(append(small, "--json", "--seed", "8")...)
	if other == out {
		t.Error("another seed gave the same output")
	}
}

func TestSimulateTableAndPlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	out, errOut, code := run(append(small, "--plot", dir, "--util", "60%", "--ttl", "10s", "--top", "5")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"10 machines × 4 cores at 60 % utilisation", "TTL 10s, top 5", "mean slowdown", "peerload-herd"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"sim-slowdown.png", "sim-sessions.png"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(b), "\x89PNG") {
			t.Errorf("%s is not a PNG", f)
		}
		if !strings.Contains(errOut, f) {
			t.Errorf("stderr does not name %s: %s", f, errOut)
		}
	}
}

func TestSimulateBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--machines", "0"}, `--machines "0": must be between 1 and 10000`},
		{[]string{"--util", "1.5"}, `--util "1.5": must be above 0 and below 1`},
		{[]string{"--util", "lots"}, `--util "lots": want a fraction`},
		{[]string{"--top", "0"}, `--top "0": must be at least 1`},
		{[]string{"--ttl", "-1s"}, `--ttl "-1s": must not be negative`},
		{[]string{"--burst", "5000"}, `--burst "5000": the bursts alone exceed`},
		{[]string{"--burst-every", "30s"}, `--burst-every "30s": must be longer than`},
		{[]string{"--interval", "1ms"}, `--interval "1ms": must be at least 100ms`},
		{[]string{"--duration", "10s"}, `--duration "10s": must be between 1m and 720h`},
		{[]string{"--resolvers", "0"}, `--resolvers "0": must be at least 1`},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, errOut, code := run(append([]string{"simulate"}, tc.args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1; lines != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, errOut, tc.want)
		}
	}
}

func TestSimulateSweep(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := run(append(small, "--sweep-top", "1,3", "--sweep-ttl", "0s,30s", "--seeds", "2", "--json", "--plot", dir)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var ps []struct {
		Top     int              `json:"top"`
		TTL     float64          `json:"ttl_seconds"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var got []string
	for _, p := range ps {
		got = append(got, fmt.Sprintf("%d/%gs/%d", p.Top, p.TTL, len(p.Results)))
	}
	if want := "1/0s/4 1/30s/4 3/0s/4 3/30s/4"; strings.Join(got, " ") != want {
		t.Errorf("sweep points %v, want %s", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "sim-top-ttl.png")); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]string{{"--sweep-top", "0"}, {"--sweep-ttl", "soon"}, {"--seeds", "0"}} {
		_, errOut, code := run(append([]string{"simulate"}, bad...)...)
		if code != 2 || !strings.Contains(errOut, "--"+strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the flag named", bad, code, errOut)
		}
	}
}
