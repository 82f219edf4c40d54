package simplot

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/internal/sim"
)

// small is a quick lab: ten machines for twenty minutes, traced.
func small() sim.Config {
	cfg := sim.DefaultConfig()
	cfg.Machines, cfg.Burst, cfg.Duration = 10, 6, 20*time.Minute
	cfg.TraceEvery = 10 * time.Second
	return cfg
}

// roundTrip is in as peerload-plot reads it: through JSON.
func roundTrip(t *testing.T, in sim.PlotInput) *sim.PlotInput {
	t.Helper()
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var back sim.PlotInput
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

// sameFiles fails unless every name in want has the same bytes in both dirs.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, name := range names {
		x, err := os.ReadFile(filepath.Join(a, name))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(x, []byte("\x89PNG")) {
			t.Errorf("%s is not a PNG", name)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s drawn from JSON differs from the one drawn directly", name)
		}
	}
}

// TestRunThroughJSON: what peerload hands peerload-plot keeps the config,
// results and traces, and draws the same files as plotting directly did.
func TestRunThroughJSON(t *testing.T) {
	cfg := small()
	cfg.Policies = []string{sim.PolicyRoundRobin, sim.PolicyPeerload, sim.PolicyPeerloadHerd}
	rs, err := sim.RunSeeds(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := sim.NewPlotInput(cfg, 1, rs)
	back := roundTrip(t, in)
	if !reflect.DeepEqual(back.Config, cfg) {
		t.Errorf("config after JSON:\n%+v\nwant\n%+v", back.Config, cfg)
	}
	if !reflect.DeepEqual(back.Traces, in.Traces) || len(back.Traces) != len(rs) || len(back.Traces[0]) == 0 {
		t.Errorf("traces did not survive JSON (%d of %d)", len(back.Traces), len(rs))
	}
	for i := range rs {
		want := rs[i]
		want.Trace = nil
		if !reflect.DeepEqual(back.Results[i], want) {
			t.Errorf("result after JSON %+v, want %+v", back.Results[i], want)
		}
	}

	direct, viaJSON := t.TempDir(), filepath.Join(t.TempDir(), "new")
	if _, err := WritePlots(direct, cfg, rs); err != nil {
		t.Fatal(err)
	}
	files, err := Write(viaJSON, back)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(viaJSON, SlowdownPlot), filepath.Join(viaJSON, SessionsPlot)}; !reflect.DeepEqual(files, want) {
		t.Errorf("wrote %v, want %v", files, want)
	}
	sameFiles(t, direct, viaJSON, SlowdownPlot, SessionsPlot)
}

func TestSweepThroughJSON(t *testing.T) {
	cfg := small()
	cfg.TraceEvery = 0
	ps, err := sim.Sweep(cfg, []int{1, 3}, []time.Duration{0, 30 * time.Second}, 2)
	if err != nil {
		t.Fatal(err)
	}
	back := roundTrip(t, sim.PlotInput{Config: cfg, Seeds: 2, Sweep: ps})
	if !reflect.DeepEqual(back.Sweep, ps) || back.Seeds != 2 {
		t.Error("sweep points did not survive JSON")
	}
	direct, viaJSON := t.TempDir(), t.TempDir()
	if err := WriteSweepPlot(filepath.Join(direct, SweepPlot), cfg, ps, 2); err != nil {
		t.Fatal(err)
	}
	files, err := Write(viaJSON, back)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(viaJSON, SweepPlot)}; !reflect.DeepEqual(files, want) {
		t.Errorf("wrote %v, want %v", files, want)
	}
	sameFiles(t, direct, viaJSON, SweepPlot)
}

// TestBadInput: input no peerload writes is an error, not a panic.
func TestBadInput(t *testing.T) {
	cfg := small()
	rs := []sim.Result{{Policy: sim.PolicyPeerload, MeanSlowdown: 1.1, P95Slowdown: 1.5}}
	row := make([]int, cfg.Machines)
	trace := [][]int{row, row}
	untraced := cfg
	untraced.TraceEvery = 0
	badCfg := cfg
	badCfg.Machines = 0
	for _, tc := range []struct {
		name string
		in   sim.PlotInput
		want string
	}{
		{"empty", sim.PlotInput{Config: cfg}, "neither results nor sweep points"},
		{"bad config", sim.PlotInput{Config: badCfg, Results: rs, Traces: [][][]int{trace}}, "config: machines"},
		{"no traces", sim.PlotInput{Config: cfg, Results: rs}, "0 traces for 1 results"},
		{"short rows", sim.PlotInput{Config: cfg, Results: rs, Traces: [][][]int{{{1, 2}}}}, "a sample of 2 machines, want 10"},
		{"untraced", sim.PlotInput{Config: untraced, Results: rs, Traces: [][][]int{trace}}, "no trace"},
		{"short trace", sim.PlotInput{Config: cfg, Results: rs, Traces: [][][]int{trace}}, "ends before the plotted window"},
		{"sweep without herd", sim.PlotInput{Config: cfg, Sweep: []sim.SweepPoint{{Top: 3, TTL: 30, Results: rs}}}, "no round-robin result"},
	} {
		_, err := Write(t.TempDir(), &tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
