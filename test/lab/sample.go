package lab

import (
	"fmt"
	"image/color"
	"slices"
	"sort"
	"sync"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Point is one sample of a process.
type Point struct {
	// T is the time since the sampler started.
	T time.Duration
	// RSSKB is VmRSS and AnonKB RssAnon, in kB (see Memory);
	// Goroutines is go_goroutines, -1 when the process has no metrics
	// endpoint or it did not answer.
	RSSKB, AnonKB int64
	Goroutines    float64
}

// Series are the samples of one run of one process: a restarted process
// starts a new series, named "host/program#start".
type Series struct {
	Name   string
	Proc   *Process
	Start  int
	Points []Point
}

// Sampler samples the resident memory (VmRSS and RssAnon from
// /proc/PID/status) and goroutine
// count (go_goroutines on the process's /metrics) of every running lab
// process, for soak tests and benchmarks.
type Sampler struct {
	lab   *Lab
	start time.Time

	mu     sync.Mutex
	series map[string]*Series
}

// NewSampler starts a sampler; call Sample to take one sample of all.
func (l *Lab) NewSampler() *Sampler {
	return &Sampler{lab: l, start: time.Now(), series: map[string]*Series{}}
}

// Processes returns every process the lab prepared, in order.
func (l *Lab) Processes() []*Process {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.procs)
}

// Sample takes one sample of every running process, concurrently.
func (s *Sampler) Sample() {
	now := time.Since(s.start)
	var wg sync.WaitGroup
	for _, p := range s.lab.Processes() {
		pid, starts := p.PID(), p.Starts()
		if !p.Running() || pid == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mem, err := ReadMemory(pid)
			if err != nil {
				return // exited meanwhile
			}
			pt := Point{T: now, RSSKB: mem.RSS, AnonKB: mem.Anon, Goroutines: -1}
			if p.MetricsAddr != "" {
				if m, err := p.Host.Metrics(p.MetricsAddr); err == nil {
					pt.Goroutines = m.Value("go_goroutines")
				}
			}
			name := fmt.Sprintf("%s#%d", p.Name, starts)
			s.mu.Lock()
			defer s.mu.Unlock()
			sr := s.series[name]
			if sr == nil {
				sr = &Series{Name: name, Proc: p, Start: starts}
				s.series[name] = sr
			}
			sr.Points = append(sr.Points, pt)
		}()
	}
	wg.Wait()
}

// Series returns every series sampled so far, sorted by name.
func (s *Sampler) Series() []*Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Series, 0, len(s.series))
	for _, sr := range s.series {
		c := *sr
		c.Points = slices.Clone(sr.Points)
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Window returns the points with from <= T < to.
func (sr *Series) Window(from, to time.Duration) []Point {
	var out []Point
	for _, p := range sr.Points {
		if p.T >= from && p.T < to {
			out = append(out, p)
		}
	}
	return out
}

// Median is the median of f over points (NaN-free; 0 for none).
func Median(points []Point, f func(Point) float64) float64 {
	if len(points) == 0 {
		return 0
	}
	v := make([]float64, len(points))
	for i, p := range points {
		v[i] = f(p)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Min is the least of f over points (0 when there are none).
func Min(points []Point, f func(Point) float64) float64 {
	if len(points) == 0 {
		return 0
	}
	m := f(points[0])
	for _, p := range points[1:] {
		m = min(m, f(p))
	}
	return m
}

// PlotSeries draws one line per series of f over time (minutes) into a
// PNG at path, with a vertical marker at warmup.
func PlotSeries(path, title, ylabel string, series []*Series, f func(Point) float64, warmup time.Duration) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "minutes"
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	ymax := 0.0
	for i, sr := range series {
		xy := make(plotter.XYs, 0, len(sr.Points))
		for _, pt := range sr.Points {
			if v := f(pt); v >= 0 {
				xy = append(xy, plotter.XY{X: pt.T.Minutes(), Y: v})
				ymax = max(ymax, v)
			}
		}
		if len(xy) == 0 {
			continue
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.2)
		if i >= len(palette) {
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		}
		p.Add(line)
		p.Legend.Add(sr.Name, line)
	}
	// Room above the highest line for the legend.
	p.Y.Min, p.Y.Max = 0, ymax*1.2+float64(len(series)+1)*ymax*0.045
	if warmup > 0 {
		w, err := plotter.NewLine(plotter.XYs{{X: warmup.Minutes(), Y: 0}, {X: warmup.Minutes(), Y: ymax}})
		if err != nil {
			return err
		}
		w.Color = color.Gray{Y: 128}
		w.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(w)
		p.Legend.Add("end of warm-up", w)
	}
	p.Legend.TextStyle.Font.Size = vg.Points(7)
	p.Legend.ThumbnailWidth = vg.Points(14)
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff},
	color.RGBA{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}
