package sim

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// RunSeeds runs cfg with seeds cfg.Seed, cfg.Seed+1, ... (n of them) and
// averages every figure over them, so that a comparison does not hang on
// one day's luck. Traces are the first seed's.
func RunSeeds(cfg Config, n int) ([]Result, error) {
	if n < 1 {
		return nil, &ConfigError{Field: "seeds", Err: fmt.Errorf("must be at least 1")}
	}
	var avg []Result
	for i := range n {
		c := cfg
		c.Seed = cfg.Seed + uint64(i)
		rs, err := Run(c)
		if err != nil {
			return nil, err
		}
		if avg == nil {
			avg = rs
			continue
		}
		for j := range avg {
			a, r := &avg[j], rs[j]
			a.MeanSlowdown += r.MeanSlowdown
			a.P95Slowdown += r.P95Slowdown
			a.BusiestRatio += r.BusiestRatio
			a.BusiestPeak += r.BusiestPeak
			a.Sessions += r.Sessions
			a.Unfinished += r.Unfinished
			a.Queries += r.Queries
		}
	}
	if n > 1 {
		f := float64(n)
		for j := range avg {
			a := &avg[j]
			a.MeanSlowdown /= f
			a.P95Slowdown /= f
			a.BusiestRatio /= f
			a.BusiestPeak /= f
			a.Sessions /= n
			a.Unfinished /= n
			a.Queries /= n
		}
	}
	return avg, nil
}

// SweepPoint is the results of one top and TTL.
type SweepPoint struct {
	Top     int      `json:"top"`
	TTL     float64  `json:"ttl_seconds"`
	Results []Result `json:"results"`
}

// sweepPolicies are the policies a sweep compares: top and TTL matter to
// peerload; round-robin and PeerMon are the yardsticks.
var sweepPolicies = []string{PolicyRoundRobin, PolicyPeerMon, PolicyPeerload, PolicyPeerloadHerd}

// Sweep runs every combination of tops and ttls (each averaged over seeds
// as RunSeeds does) for the policies top and TTL matter to.
func Sweep(cfg Config, tops []int, ttls []time.Duration, seeds int) ([]SweepPoint, error) {
	if len(cfg.Policies) == 0 {
		cfg.Policies = sweepPolicies
	}
	var out []SweepPoint
	for _, top := range tops {
		for _, ttl := range ttls {
			c := cfg
			c.Top, c.TTL = top, ttl
			rs, err := RunSeeds(c, seeds)
			if err != nil {
				return nil, err
			}
			out = append(out, SweepPoint{Top: top, TTL: ttl.Seconds(), Results: rs})
		}
	}
	return out, nil
}

// WriteSweepTable prints one line per top and TTL: peerload and
// peerload-herd, and herd's mean slowdown against round-robin and PeerMon.
func WriteSweepTable(w io.Writer, ps []SweepPoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "top\tTTL\tpeerload mean\tp95\tbusiest/mean\therd mean\tp95\tbusiest/mean\therd vs round-robin\tvs peermon\t")
	for _, p := range ps {
		pl, h := Find(p.Results, PolicyPeerload), Find(p.Results, PolicyPeerloadHerd)
		rr, pm := Find(p.Results, PolicyRoundRobin), Find(p.Results, PolicyPeerMon)
		if pl == nil || h == nil || rr == nil || pm == nil {
			return fmt.Errorf("sweep table needs %v", sweepPolicies)
		}
		fmt.Fprintf(tw, "%d\t%s\t%.3f\t%.2f\t%.2f\t%.3f\t%.2f\t%.2f\t%.2f×\t%.2f×\t\n", p.Top,
			fmtDuration(time.Duration(p.TTL*float64(time.Second))), pl.MeanSlowdown, pl.P95Slowdown, pl.BusiestRatio,
			h.MeanSlowdown, h.P95Slowdown, h.BusiestRatio, h.MeanSlowdown/rr.MeanSlowdown, h.MeanSlowdown/pm.MeanSlowdown)
	}
	return tw.Flush()
}

// SweepPlot is the file name WriteSweepPlot writes.
const SweepPlot = "sim-top-ttl.png"

// WriteSweepPlot draws the mean slowdown of peerload-herd (solid) and
// peerload (dashed) against the TTL, one colour per top.
func WriteSweepPlot(path string, cfg Config, ps []SweepPoint, seeds int) error {
	p := plot.New()
	p.Title.Text = "Mean slowdown by TTL and top (solid: peerload-herd, dashed: peerload)"
	p.X.Label.Text = "TTL (s)\n" + cfg.describe("")
	if seeds > 1 {
		p.X.Label.Text += fmt.Sprintf(", averaged over %d seeds", seeds)
	}
	p.X.Label.TextStyle.Font.Size = vg.Points(7)
	p.Y.Label.Text = "mean slowdown"
	var tops []int
	for _, pt := range ps {
		if len(tops) == 0 || tops[len(tops)-1] != pt.Top {
			tops = append(tops, pt.Top)
		}
	}
	var ticks []plot.Tick
	for _, pt := range ps {
		if pt.Top == ps[0].Top {
			ticks = append(ticks, plot.Tick{Value: pt.TTL, Label: fmt.Sprint(pt.TTL)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	rrMean, n := 0.0, 0
	for i, top := range tops {
		var herd, plain plotter.XYs
		for _, pt := range ps {
			if pt.Top != top {
				continue
			}
			herd = append(herd, plotter.XY{X: pt.TTL, Y: Find(pt.Results, PolicyPeerloadHerd).MeanSlowdown})
			plain = append(plain, plotter.XY{X: pt.TTL, Y: Find(pt.Results, PolicyPeerload).MeanSlowdown})
			rrMean += Find(pt.Results, PolicyRoundRobin).MeanSlowdown
			n++
		}
		lh, ph, err := plotter.NewLinePoints(herd)
		if err != nil {
			return err
		}
		lp, err := plotter.NewLine(plain)
		if err != nil {
			return err
		}
		lh.Color, ph.Color, lp.Color = plotutil.Color(i), plotutil.Color(i), plotutil.Color(i)
		lp.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(lh, ph, lp)
		p.Legend.Add(fmt.Sprintf("top %d", top), lh, ph)
	}
	if n > 0 {
		rr := plotter.NewFunction(func(float64) float64 { return rrMean / float64(n) })
		rr.Color = plotutil.Color(len(tops))
		rr.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
		p.Add(rr)
		p.Legend.Add("round-robin", rr)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(8*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
