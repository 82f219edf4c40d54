// Package simplot draws the PNG plots of `peerload simulate --plot DIR`
// from a sim.PlotInput. It is the only package that imports gonum/plot,
// and only cmd/peerload-plot links it: gonum/plot's package init parses
// twelve embedded fonts, megabytes resident in every process of a binary
// that links it, so peerload itself (the agent) must not.
package simplot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/peerload/peerload/internal/sim"
)

// Write draws the plots of in into dir (creating it) and returns the files
// written: SweepPlot for a sweep, else SlowdownPlot and SessionsPlot.
func Write(dir string, in *sim.PlotInput) ([]string, error) {
	if err := check(in); err != nil {
		return nil, err
	}
	if len(in.Sweep) > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, SweepPlot)
		if err := WriteSweepPlot(path, in.Config, in.Sweep, in.Seeds); err != nil {
			return nil, err
		}
		return []string{path}, nil
	}
	rs := slices.Clone(in.Results)
	for i := range rs {
		rs[i].Trace = in.Traces[i]
	}
	return WritePlots(dir, in.Config, rs)
}

// check rejects input the plots cannot be drawn from, which only comes
// from another version of peerload or by hand.
func check(in *sim.PlotInput) error {
	if err := in.Config.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(in.Sweep) > 0 {
		for _, pt := range in.Sweep {
			for _, p := range []string{sim.PolicyRoundRobin, sim.PolicyPeerloadNoHerd, sim.PolicyPeerload} {
				if sim.Find(pt.Results, p) == nil {
					return fmt.Errorf("sweep point top %d, TTL %gs: no %s result", pt.Top, pt.TTL, p)
				}
			}
		}
		return nil
	}
	if len(in.Results) == 0 {
		return errors.New("neither results nor sweep points")
	}
	if len(in.Traces) != len(in.Results) {
		return fmt.Errorf("%d traces for %d results", len(in.Traces), len(in.Results))
	}
	for i, tr := range in.Traces {
		if len(tr) != len(in.Traces[0]) {
			return fmt.Errorf("trace of %s: %d samples, %s's has %d", in.Results[i].Policy, len(tr), in.Results[0].Policy, len(in.Traces[0]))
		}
		for _, row := range tr {
			if len(row) != in.Config.Machines {
				return fmt.Errorf("trace of %s: a sample of %d machines, want %d", in.Results[i].Policy, len(row), in.Config.Machines)
			}
		}
	}
	return nil
}
