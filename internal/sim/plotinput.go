package sim

// PlotInput is what `peerload simulate --plot DIR` hands to the
// peerload-plot program (package simplot) as JSON on its standard input:
// the plotting libraries live in that program, not in peerload, so that
// no peerload process (the agent above all) loads them.
type PlotInput struct {
	Config Config `json:"config"`
	// Seeds is the number of days the results average (RunSeeds).
	Seeds int `json:"seeds"`
	// Results of Run or RunSeeds, and Traces their Result.Trace (which
	// Result's JSON leaves out), one per result.
	Results []Result  `json:"results,omitempty"`
	Traces  [][][]int `json:"traces,omitempty"`
	// Sweep, when set, is the points of Sweep instead of Results.
	Sweep []SweepPoint `json:"sweep,omitempty"`
}

// NewPlotInput is the input of the plots of rs, the results of RunSeeds
// of cfg over seeds days.
func NewPlotInput(cfg Config, seeds int, rs []Result) PlotInput {
	in := PlotInput{Config: cfg, Seeds: seeds, Results: rs}
	for _, r := range rs {
		in.Traces = append(in.Traces, r.Trace)
	}
	return in
}
