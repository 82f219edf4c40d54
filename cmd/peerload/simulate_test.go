package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// small keeps CLI tests quick: ten machines for twenty minutes.
var small = []string{"simulate", "--machines", "10", "--burst", "6", "--duration", "20m"}

// testBin holds programs the tests build; TestMain removes it (and
// peerloadBuild.dir).
var testBin string

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{testBin, peerloadBuild.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

var plotterBuild struct {
	once sync.Once
	err  error
}

// withPlotter puts peerload-plot, built once, first on PATH for the test:
// --plot runs it.
func withPlotter(t *testing.T) {
	t.Helper()
	plotterBuild.once.Do(func() {
		if testBin, plotterBuild.err = os.MkdirTemp("", "peerload-test-bin-"); plotterBuild.err != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", testBin, "github.com/peerload/peerload/cmd/peerload-plot").CombinedOutput()
		if err != nil {
			plotterBuild.err = fmt.Errorf("go build ./cmd/peerload-plot: %v\n%s", err, out)
		}
	})
	if plotterBuild.err != nil {
		t.Fatal(plotterBuild.err)
	}
	t.Setenv("PATH", testBin+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// isPNG fails the test unless path is a PNG file.
func isPNG(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("%s is not a PNG", path)
	}
}

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
	if got, want := strings.Join(names, ","), "round-robin,random,peermon,lbnamed,peerload-noherd,peerload,peerload-herd,oracle"; got != want {
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
	withPlotter(t)
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
	var want strings.Builder
	for _, f := range []string{"sim-slowdown.png", "sim-sessions.png"} {
		isPNG(t, filepath.Join(dir, f))
		want.WriteString("wrote " + filepath.Join(dir, f) + "\n")
	}
	if errOut != want.String() {
		t.Errorf("stderr %q, want %q", errOut, want.String())
	}
}

// TestSimulatePlotWithoutPlotter: without peerload-plot, --plot fails
// before simulating, in one line naming the flag, and writes nothing.
func TestSimulatePlotWithoutPlotter(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(exe), "peerload-plot")); err == nil {
		t.Skip("peerload-plot is beside the test binary")
	}
	t.Setenv("PATH", t.TempDir())
	for _, args := range [][]string{small, append(small, "--sweep-top", "1,3")} {
		dir := filepath.Join(t.TempDir(), "plots")
		out, errOut, code := run(append(args, "--plot", dir)...)
		want := "peerload simulate: --plot: needs the peerload-plot program beside peerload or on PATH (make build writes bin/peerload-plot)\n"
		if code != 2 || out != "" || errOut != want {
			t.Errorf("%v: exit %d stdout %q stderr %q; want 2, nothing and %q", args, code, out, errOut, want)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%v: created %s", args, dir)
		}
	}
}

// TestSimulatePlotterFails: peerload-plot's error is one line.
func TestSimulatePlotterFails(t *testing.T) {
	withPlotter(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(append(small, "--plot", filepath.Join(file, "plots"))...)
	want := "peerload simulate: " + filepath.Join(testBin, "peerload-plot") + ": plot: mkdir " + file + ": not a directory\n"
	if code != 1 || errOut != want {
		t.Errorf("exit %d stderr %q, want 1 and %q", code, errOut, want)
	}
}

// TestNoPlottingInPeerload: peerload must not link the plotting libraries.
// gonum/plot's package init parses twelve embedded fonts, 4.2 MB of the
// idle agent's 22.5 MB resident; peerload-plot draws --plot's PNGs instead.
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
	withPlotter(t)
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
	isPNG(t, filepath.Join(dir, "sim-top-ttl.png"))
	if want := "wrote " + filepath.Join(dir, "sim-top-ttl.png") + "\n"; errOut != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	for _, bad := range [][]string{{"--sweep-top", "0"}, {"--sweep-ttl", "soon"}, {"--seeds", "0"}} {
		_, errOut, code := run(append([]string{"simulate"}, bad...)...)
		if code != 2 || !strings.Contains(errOut, "--"+strings.TrimPrefix(bad[0], "--")) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the flag named", bad, code, errOut)
		}
	}
}
