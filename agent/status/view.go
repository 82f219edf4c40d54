package status

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// Chart geometry, in SVG user units (pixels at 100 % zoom).
const (
	sparkW, sparkH, sparkBins = 120, 24, 60
	chartW, chartH            = 720, 150
	chartL, chartR, chartT    = 34, 34, 8 // margins for the axis labels
	chartB                    = 18
	chartBins                 = 360
)

// query is the page's validated URL parameters: the pool and name filter
// and the sort column.
type query struct {
	Pool   string
	Filter string
	Sort   string
	Desc   bool
	Node   string // status.json only: include this machine's history
}

// columns are the sortable columns, in table order, with their headings.
var columns = []struct{ key, title string }{
	{"name", "machine"}, {"state", "state"}, {"rank", "rank"}, {"score", "score"},
	{"load1", "load1"}, {"load5", "load5"}, {"load15", "load15"}, {"cpu", "CPU"},
	{"mem", "mem used"}, {"users", "users"},
}

func parseQuery(v url.Values, json bool) (query, error) {
	q := query{Sort: "rank"}
	for key := range v {
		switch key {
		case "pool", "q", "sort", "desc":
		case "node":
			if !json {
				return q, fmt.Errorf("unknown parameter %q", key)
			}
		default:
			return q, fmt.Errorf("unknown parameter %q", key)
		}
	}
	q.Pool, q.Filter, q.Node = v.Get("pool"), strings.TrimSpace(v.Get("q")), v.Get("node")
	for name, s := range map[string]string{"pool": q.Pool, "q": q.Filter, "node": q.Node} {
		if len(s) > 128 {
			return q, fmt.Errorf("parameter %s: longer than 128 bytes", name)
		}
	}
	if s := v.Get("sort"); s != "" {
		if !slices.ContainsFunc(columns, func(c struct{ key, title string }) bool { return c.key == s }) {
			return q, fmt.Errorf("parameter sort: unknown column %q", s)
		}
		q.Sort = s
	}
	switch v.Get("desc") {
	case "", "0":
	case "1":
		q.Desc = true
	default:
		return q, fmt.Errorf("parameter desc: want 0 or 1")
	}
	return q, nil
}

// link is the page URL for q with its non-default parameters.
func (q query) link() string {
	v := url.Values{}
	if q.Pool != "" {
		v.Set("pool", q.Pool)
	}
	if q.Filter != "" {
		v.Set("q", q.Filter)
	}
	if q.Sort != "rank" {
		v.Set("sort", q.Sort)
	}
	if q.Desc {
		v.Set("desc", "1")
	}
	if len(v) == 0 {
		return "./"
	}
	return "?" + v.Encode()
}

// view is everything the page shows; /status.json is the same data.
type view struct {
	Self    string    `json:"self"`
	Built   time.Time `json:"built"`
	Version uint64    `json:"version"`
	Query   query     `json:"-"`
	Pools   []string  `json:"pools"`
	// Total is the number of machines listed (collectors included),
	// Shown those the filter keeps, Candidates the candidates among all.
	Total      int `json:"total"`
	Shown      int `json:"shown"`
	Candidates int `json:"candidates"`
	// Median and Busiest are the latest load1 of the alive machines.
	Median  float64 `json:"median_load1"`
	Busiest float64 `json:"busiest_load1"`
	// Span is how far back the charts go: the time kept, or less while
	// the recorder has not been running that long.
	Span    string   `json:"-"`
	Columns []column `json:"-"`
	Rows    []row    `json:"machines"`
	Chart   chart    `json:"-"`
	Events  []Event  `json:"events"`
	// Cluster and History (of ?node=) are in status.json only.
	Cluster []Sample[ClusterPoint] `json:"cluster,omitempty"`
	History []Sample[Point]        `json:"history,omitempty"`
}

// column is a table heading that links to sorting by it.
type column struct {
	Title, Href string
	// Sorted is "asc" or "desc" for the current sort column.
	Sorted string
}

// row is one machine in the table.
type row struct {
	Name      string   `json:"name"`
	State     string   `json:"state"`
	Collector bool     `json:"collector,omitempty"`
	Candidate bool     `json:"candidate"`
	Rank      int      `json:"rank,omitempty"`
	Score     float64  `json:"score"`
	Reported  bool     `json:"reported"`
	Load1     float64  `json:"load1"`
	Load5     float64  `json:"load5"`
	Load15    float64  `json:"load15"`
	CPUs      int      `json:"cpus"`
	CPU       float64  `json:"cpu_percent"`
	Mem       float64  `json:"mem_used_percent"`
	Users     int      `json:"users"`
	Pools     []string `json:"pools,omitempty"`
	Failing   []string `json:"failing,omitempty"`
	Reasons   []string `json:"reasons,omitempty"`
	Spark     string   `json:"-"`
	SparkNote string   `json:"-"`
	// Text holds the numbers as the page shows them, formatted once here
	// rather than by template functions (a third of the render time at
	// 500 machines).
	Text rowText `json:"-"`
}

type rowText struct {
	Score, Load1, Load5, Load15, CPU, Mem, Users, CPUs, Rank, Pools, Why string
}

// Class is the row's CSS class: its state at a glance.
func (r row) Class() string {
	switch {
	case r.Collector:
		return "coll"
	case r.Candidate:
		return "ok"
	case r.State == rank.StateAlive:
		return "warn"
	case r.State == rank.StateLeft:
		return "gone"
	}
	return "bad"
}

// chart is the cluster chart's paths and axis labels.
type chart struct {
	W, H, L, R, T, B, PlotW, PlotH, Bottom, Right int
	Median, Busiest, Candidates                   string
	LoadTop, CandTop                              float64
	Ticks                                         []tick
}

type tick struct {
	X     float64
	Label string
}

// buildView reads the recorder under its read lock: one consistent view.
func (r *Recorder) buildView(q query, json bool) *view {
	now := r.opts.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := r.snap
	if s == nil {
		s = &rank.Snapshot{Built: now, Score: rank.DefaultScoreConfig()}
	}
	if s.Built.After(now) {
		now = s.Built
	}
	from := now.Add(-r.opts.Keep)
	span := chartSpan(now.Sub(r.first), r.opts.Keep)
	v := &view{Self: s.Self, Built: s.Built, Version: r.version, Query: q, Events: r.events.newest(100), Span: minutes(span)}
	ranking := s.Rank(q.Pool, "")
	rankOf := make(map[string]int, ranking.Len())
	for i := range ranking.Nodes {
		rankOf[ranking.Nodes[i].Name] = ranking.Rank(i)
	}
	pools := map[string]bool{}
	var loads []float64
	filter := strings.ToLower(q.Filter)
	for i := range s.Nodes {
		n := &s.Nodes[i]
		v.Total++
		for _, p := range n.Pools {
			pools[p] = true
		}
		if n.Candidate {
			v.Candidates++
		}
		if n.State == rank.StateAlive && n.Report != nil {
			loads = append(loads, n.Report.Load.Load1)
		}
		if !n.InPool(q.Pool) || (filter != "" && !strings.Contains(strings.ToLower(n.Name), filter)) {
			continue
		}
		v.Rows = append(v.Rows, r.row(n, rankOf[n.Name], now.Add(-span), now))
	}
	v.Shown = len(v.Rows)
	v.Pools = make([]string, 0, len(pools))
	for p := range pools {
		v.Pools = append(v.Pools, p)
	}
	slices.Sort(v.Pools)
	if len(loads) > 0 {
		slices.Sort(loads)
		v.Median, v.Busiest = median(loads), loads[len(loads)-1]
	}
	sortRows(v.Rows, q.Sort, q.Desc)
	for _, c := range columns {
		cq := q
		cq.Sort, cq.Desc = c.key, false
		col := column{Title: c.title}
		if c.key == q.Sort {
			col.Sorted = "asc"
			if q.Desc {
				col.Sorted = "desc"
			} else {
				cq.Desc = true
			}
		}
		col.Href = cq.link()
		v.Columns = append(v.Columns, col)
	}
	if json {
		v.Cluster = r.cluster.since(from)
		if m := r.machines[q.Node]; m != nil {
			v.History = m.hist.since(from)
		}
	} else {
		v.Chart = r.clusterChart(now.Add(-span), now)
	}
	return v
}

func (r *Recorder) row(n *rank.NodeStatus, nth int, from, now time.Time) row {
	w := row{
		Name: n.Name, State: n.State, Collector: n.Collector, Candidate: n.Candidate, Rank: nth,
		Score: n.Score, Pools: n.Pools, Reasons: n.Reasons,
	}
	w.Text.Pools = strings.Join(n.Pools, ", ")
	if nth > 0 {
		w.Text.Rank = strconv.Itoa(nth)
	}
	if !n.Collector {
		w.Text.Why = strings.Join(n.Reasons, "; ")
	}
	if n.Report == nil {
		return w
	}
	l := n.Report.Load
	w.Reported = true
	w.Load1, w.Load5, w.Load15, w.CPUs = l.Load1, l.Load5, l.Load15, l.CPUs
	w.CPU = 100 * l.CPUUtil
	w.Mem = 100 * (1 - l.MemAvailableFraction())
	w.Users = l.Users
	for _, f := range n.Report.Failing {
		w.Failing = append(w.Failing, f.Name+": "+f.Reason)
	}
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) + "%" }
	w.Text.Score, w.Text.Load1, w.Text.Load5, w.Text.Load15 = f2(w.Score), f2(w.Load1), f2(w.Load5), f2(w.Load15)
	w.Text.CPU, w.Text.Mem, w.Text.Users, w.Text.CPUs = pct(w.CPU), pct(w.Mem), strconv.Itoa(w.Users), strconv.Itoa(w.CPUs)
	m := r.machines[n.Name]
	if m == nil {
		return w
	}
	b := newBins(from, now.Sub(from), sparkBins)
	m.hist.each(from, func(at time.Time, _ time.Duration, p Point) { b.add(at, float64(p.Load1)) })
	// The top of the sparkline is a fully loaded machine (load1 = CPUs),
	// or the highest load when it went beyond.
	top := max(b.max(), float64(max(l.CPUs, 1)))
	w.Spark = string(b.path(nil, 0, 1, sparkW, sparkH-2, top, r.maxGap(), 0))
	w.SparkNote = fmt.Sprintf("load1 over the last %s; top of the chart %.3g (%d CPUs), highest %.2f",
		minutes(now.Sub(from)), top, l.CPUs, b.max())
	return w
}

func (r *Recorder) clusterChart(from, now time.Time) chart {
	c := chart{W: chartW, H: chartH, L: chartL, R: chartR, T: chartT, B: chartB,
		PlotW: chartW - chartL - chartR, PlotH: chartH - chartT - chartB}
	c.Bottom, c.Right = c.T+c.PlotH, c.L+c.PlotW
	span := now.Sub(from)
	med, busy, cand := newBins(from, span, chartBins), newBins(from, span, chartBins), newBins(from, span, chartBins)
	members := 0.0
	r.cluster.each(from, func(at time.Time, _ time.Duration, p ClusterPoint) {
		med.add(at, float64(p.Median))
		busy.add(at, float64(p.Busiest))
		cand.add(at, float64(p.Candidates))
		members = max(members, float64(p.Members))
	})
	c.LoadTop = niceCeil(max(busy.max(), 1))
	c.CandTop = niceCeil(max(cand.max(), members, 1))
	x, y, w, h := float64(c.L), float64(c.T), float64(c.PlotW), float64(c.PlotH)
	c.Median = string(med.path(nil, x, y, w, h, c.LoadTop, r.maxGap(), 1))
	c.Busiest = string(busy.path(nil, x, y, w, h, c.LoadTop, r.maxGap(), 1))
	c.Candidates = string(cand.path(nil, x, y, w, h, c.CandTop, r.maxGap(), 1))
	for i := 0; i <= 4; i++ {
		label := "now"
		if i < 4 {
			label = "−" + minutes(span*time.Duration(4-i)/4)
		}
		c.Ticks = append(c.Ticks, tick{X: x + w*float64(i)/4, Label: label})
	}
	return c
}

// maxGap is the longest run without points that a chart bridges: two of
// the history's coarse steps. A longer one (a machine down) is a gap.
func (r *Recorder) maxGap() time.Duration { return 2 * r.opts.Step }

// chartSpans are the time spans a chart may cover; each splits into four
// round ticks.
var chartSpans = []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 20 * time.Minute, 40 * time.Minute, time.Hour}

// chartSpan is the shortest span that shows all of elapsed, at most keep:
// a member that just started shows its few minutes across the whole
// chart instead of a dot at its right edge.
func chartSpan(elapsed, keep time.Duration) time.Duration {
	for _, s := range chartSpans {
		if s >= elapsed && s < keep {
			return s
		}
	}
	return keep
}

// minutes formats d as "N min", "N s" below a minute, or "1 hour".
func minutes(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "1 hour"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'g', 3, 64) + " s"
	}
	return strconv.FormatFloat(d.Minutes(), 'g', 3, 64) + " min"
}

// sortRows sorts by key; "rank" puts the candidates first by rank, then
// the others by name. Ties are broken by name, so the order is stable
// from one refresh to the next.
func sortRows(rows []row, key string, desc bool) {
	f := func(a, b row) int {
		switch key {
		case "name":
			return strings.Compare(a.Name, b.Name)
		case "state":
			return cmp.Compare(stateOrder[a.Class()], stateOrder[b.Class()])
		case "rank":
			return cmp.Compare(rankKey(a), rankKey(b))
		case "score":
			return cmp.Compare(a.Score, b.Score)
		case "load1":
			return cmp.Compare(a.Load1, b.Load1)
		case "load5":
			return cmp.Compare(a.Load5, b.Load5)
		case "load15":
			return cmp.Compare(a.Load15, b.Load15)
		case "cpu":
			return cmp.Compare(a.CPU, b.CPU)
		case "mem":
			return cmp.Compare(a.Mem, b.Mem)
		case "users":
			return cmp.Compare(a.Users, b.Users)
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b row) int {
		c := f(a, b)
		if desc {
			c = -c
		}
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
		}
		return c
	})
}

// stateOrder sorts the best state first.
var stateOrder = map[string]int{"ok": 0, "warn": 1, "bad": 2, "gone": 3, "coll": 4}

func rankKey(r row) int {
	if r.Rank == 0 {
		return 1 << 30
	}
	return r.Rank
}
