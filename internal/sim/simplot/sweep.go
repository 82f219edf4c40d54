package simplot

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/peerload/peerload/internal/sim"
)

// SweepPlot is the file name WriteSweepPlot writes.
const SweepPlot = "sim-top-ttl.png"

// WriteSweepPlot draws the mean slowdown of peerload (solid) and of
// peerload with herd off (dashed) against the TTL, one colour per top.
func WriteSweepPlot(path string, cfg sim.Config, ps []sim.SweepPoint, seeds int) error {
	p := plot.New()
	p.Title.Text = "Mean slowdown by TTL and top (solid: peerload, dashed: herd off)"
	p.X.Label.Text = "TTL (s)\n" + cfg.DescribeSweep()
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
			herd = append(herd, plotter.XY{X: pt.TTL, Y: sim.Find(pt.Results, sim.PolicyPeerload).MeanSlowdown})
			plain = append(plain, plotter.XY{X: pt.TTL, Y: sim.Find(pt.Results, sim.PolicyPeerloadNoHerd).MeanSlowdown})
			rrMean += sim.Find(pt.Results, sim.PolicyRoundRobin).MeanSlowdown
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
