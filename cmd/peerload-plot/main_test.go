package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/internal/sim"
)

func plot(stdin string, args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// input is what `peerload simulate --plot` of a small lab hands over.
func input(t *testing.T) string {
	t.Helper()
	cfg := sim.DefaultConfig()
	cfg.Machines, cfg.Burst, cfg.Duration = 10, 6, 20*time.Minute
	cfg.TraceEvery = 10 * time.Second
	rs, err := sim.RunSeeds(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(sim.NewPlotInput(cfg, 1, rs))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHelp(t *testing.T) {
	out, _, code := plot("", "--help")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"Usage: peerload-plot DIR", "peerload simulate --plot DIR", "not usually", "PATH"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q:\n%s", want, out)
		}
	}
}

func TestWritesThePlots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots")
	out, errOut, code := plot(input(t), dir)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	var want strings.Builder
	for _, f := range []string{"sim-slowdown.png", "sim-sessions.png"} {
		want.WriteString("wrote " + filepath.Join(dir, f) + "\n")
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", f)
		}
	}
	if errOut != want.String() {
		t.Errorf("stderr %q, want %q", errOut, want.String())
	}
}

func TestBadUse(t *testing.T) {
	good := input(t)
	var in sim.PlotInput
	if err := json.Unmarshal([]byte(good), &in); err != nil {
		t.Fatal(err)
	}
	in.Traces = nil
	untraced, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"no DIR", good, nil, 2, "want one argument, the DIR"},
		{"two DIRs", good, []string{"a", "b"}, 2, "want one argument, the DIR"},
		{"unknown flag", good, []string{"--nope", "DIR"}, 2, "flag provided but not defined: -nope"},
		{"no input", "", []string{"DIR"}, 1, "reading the simulation from standard input: no input"},
		{"not JSON", "plot this", []string{"DIR"}, 1, "reading the simulation from standard input: invalid character"},
		{"two documents", good + good, []string{"DIR"}, 1, "more than one JSON document"},
		{"newer peerload", `{"config": {"Machines": 10, "Colour": "red"}}`, []string{"DIR"}, 1, `unknown field "Colour": peerload-plot is not the version`},
		{"invalid config", `{"config": {"Machines": 10}}`, []string{"DIR"}, 1, "peerload-plot: config: cores: must be between"},
		{"no traces", string(untraced), []string{"DIR"}, 1, fmt.Sprintf("peerload-plot: 0 traces for %d results", len(in.Results))},
	} {
		dir := t.TempDir()
		args := tc.args
		for i, a := range args {
			if a == "DIR" {
				args[i] = filepath.Join(dir, "plots")
			}
		}
		out, errOut, code := plot(tc.stdin, args...)
		if code != tc.code || out != "" {
			t.Errorf("%s: exit %d stdout %q, want %d and nothing", tc.name, code, out, tc.code)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "peerload-plot: ") || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: stderr %q, want one line containing %q", tc.name, errOut, tc.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "plots")); err == nil {
			t.Errorf("%s: DIR was created", tc.name)
		}
	}
}
