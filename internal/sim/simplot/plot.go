package simplot

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/peerload/peerload/internal/sim"
)

// Plot file names written by WritePlots.
const (
	SlowdownPlot = "sim-slowdown.png"
	SessionsPlot = "sim-sessions.png"
)

// WritePlots draws the results of sim.Run into dir: the slowdown of every
// policy as bars, and the sessions of every machine over half an hour
// with bursts as heat maps (Run must have had cfg.TraceEvery set). It
// returns the files written.
func WritePlots(dir string, cfg sim.Config, rs []sim.Result) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	slow := filepath.Join(dir, SlowdownPlot)
	if err := slowdownPlot(cfg, rs, slow); err != nil {
		return nil, fmt.Errorf("plot %s: %w", slow, err)
	}
	sess := filepath.Join(dir, SessionsPlot)
	if err := sessionsPlot(cfg, rs, sess); err != nil {
		return nil, fmt.Errorf("plot %s: %w", sess, err)
	}
	return []string{slow, sess}, nil
}

func slowdownPlot(cfg sim.Config, rs []sim.Result, path string) error {
	p := plot.New()
	p.Title.Text = "Slowdown of logins (runtime under contention ÷ runtime alone)"
	p.Y.Label.Text = "slowdown"
	p.Y.Min = 1
	means := make(plotter.Values, len(rs))
	p95s := make(plotter.Values, len(rs))
	names := make([]string, len(rs))
	for i, r := range rs {
		means[i], p95s[i], names[i] = r.MeanSlowdown, r.P95Slowdown, r.Policy
	}
	w := vg.Points(18)
	mean, err := plotter.NewBarChart(means, w)
	if err != nil {
		return err
	}
	p95, err := plotter.NewBarChart(p95s, w)
	if err != nil {
		return err
	}
	mean.Color, p95.Color = plotutil.Color(0), plotutil.Color(1)
	mean.LineStyle.Width, p95.LineStyle.Width = 0, 0
	mean.Offset, p95.Offset = -w/2, w/2
	p.Add(mean, p95, plotter.NewGrid())
	p.Legend.Add("mean", mean)
	p.Legend.Add("p95", p95)
	p.Legend.Top = true
	p.NominalX(names...)
	p.X.Label.Text = cfg.Describe()
	p.X.Label.TextStyle.Font.Size = vg.Points(8)
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}

// grid is one policy's trace over the plotted window as a heat map.
type grid struct {
	rows  [][]int // time × machine
	every time.Duration
	from  int
}

func (g grid) Dims() (c, r int)   { return len(g.rows), len(g.rows[0]) }
func (g grid) Z(c, r int) float64 { return float64(g.rows[c][r]) }
func (g grid) X(c int) float64 {
	return (time.Duration(g.from+c) * g.every).Minutes()
}
func (g grid) Y(r int) float64 { return float64(r + 1) }

// plotWindow is the half hour shown: from two minutes before the first
// measured burst.
func plotWindow(cfg sim.Config) (from, to time.Duration) {
	from = cfg.Warmup
	if cfg.Burst > 0 {
		b := cfg.BurstEvery
		for b < cfg.Warmup {
			b += cfg.BurstEvery
		}
		from = max(0, b-2*time.Minute)
	}
	return from, from + 30*time.Minute
}

func sessionsPlot(cfg sim.Config, rs []sim.Result, path string) error {
	if cfg.TraceEvery <= 0 || len(rs) == 0 || len(rs[0].Trace) == 0 {
		return fmt.Errorf("no trace (Config.TraceEvery not set)")
	}
	from, to := plotWindow(cfg)
	i0 := int(from / cfg.TraceEvery)
	i1 := min(int(to/cfg.TraceEvery), len(rs[0].Trace))
	if i0 >= i1 {
		return fmt.Errorf("the trace (%d samples) ends before the plotted window", len(rs[0].Trace))
	}
	// Colours run to twice the cores (a login then runs at half speed or
	// worse); anything above takes the top colour.
	hi := 2 * cfg.Cores
	cm := moreland.ExtendedBlackBody()
	cm.SetMin(0)
	cm.SetMax(float64(hi))
	pal := cm.Palette(hi + 1)

	const cols = 2
	rows := (len(rs) + 1 + cols - 1) / cols
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, r := range rs {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: busiest/mean %.2f in bursts", r.Policy, r.BusiestRatio)
		h := plotter.NewHeatMap(grid{rows: r.Trace[i0:i1], every: cfg.TraceEvery, from: i0}, pal)
		h.Min, h.Max = 0, float64(hi)
		h.Overflow = pal.Colors()[hi]
		h.Rasterized = true
		p.Add(h)
		for b := cfg.BurstEvery; cfg.Burst > 0 && b < to; b += cfg.BurstEvery {
			if b < from {
				continue
			}
			x := b.Minutes()
			line, err := plotter.NewLine(plotter.XYs{{X: x, Y: 0.5}, {X: x, Y: float64(cfg.Machines) + 0.5}})
			if err != nil {
				return err
			}
			line.Color = color.White
			line.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
			p.Add(line)
		}
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = "machine"
		p.X.Padding, p.Y.Padding = 0, 0
		plots[i/cols][i%cols] = p
	}
	bar := plot.New()
	bar.Title.Text = fmt.Sprintf("sessions on a machine, background and placed\n(%d and more: the top colour)\ndashed lines: a class starts logging in", hi)
	bar.HideY()
	bar.X.Padding = 0
	cb := &plotter.ColorBar{ColorMap: cm}
	bar.Add(cb)
	plots[len(rs)/cols][len(rs)%cols] = bar

	img := vgimg.New(10*vg.Inch, vg.Length(rows)*2.6*vg.Inch)
	dc := draw.New(img)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for j := range plots {
		for i, p := range plots[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
