package sim

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// Result is one policy's outcome over the measured period.
//
// Slowdown is a measured login's runtime under contention ÷ its runtime
// alone: its process shares its machine's cores with every other process
// (processor sharing), so on a machine with n > cores processes it runs at
// cores/n of full speed; 1 means it never waited.
type Result struct {
	Policy string `json:"policy"`
	// MeanSlowdown and P95Slowdown are over every measured login.
	MeanSlowdown float64 `json:"mean_slowdown"`
	P95Slowdown  float64 `json:"p95_slowdown"`
	// BusiestRatio is the busiest machine's sessions (background and
	// placed) ÷ the mean per machine, sampled every 5 s from each burst's
	// first login to a minute after its last, averaged over all samples;
	// BusiestPeak averages each burst's highest sample.
	BusiestRatio float64 `json:"busiest_ratio"`
	BusiestPeak  float64 `json:"busiest_peak"`
	// Sessions is the number of measured logins; Unfinished of them were
	// still running at the end (counted with the time taken so far).
	Sessions   int `json:"sessions"`
	Unfinished int `json:"unfinished"`
	// Queries is how many questions reached the DNS server.
	Queries int `json:"dns_queries"`
	// QueriesPerSecond is Queries over the whole simulated day (warm-up
	// and tail included).
	QueriesPerSecond float64 `json:"dns_queries_per_second"`
	// MeanSlowdownSD and BusiestRatioSD are the standard deviations of
	// MeanSlowdown and BusiestRatio across the seeds RunSeeds averages (0
	// for one seed).
	MeanSlowdownSD float64 `json:"mean_slowdown_sd,omitempty"`
	BusiestRatioSD float64 `json:"busiest_ratio_sd,omitempty"`
	// Trace is the sessions of every machine every Config.TraceEvery.
	Trace [][]int `json:"-"`
}

// Run simulates every policy of cfg on the same workload, concurrently,
// and returns their results in the order of Policies. The same Config
// gives the same results.
func Run(cfg Config) ([]Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := cfg.Policies
	if len(names) == 0 {
		names = Policies
	}
	var ordered []string
	for _, p := range Policies {
		if slices.Contains(names, p) {
			ordered = append(ordered, p)
		}
	}
	for _, p := range names {
		if IsVariant(p) && !slices.Contains(ordered, p) {
			ordered = append(ordered, p)
		}
	}
	w := newWorkload(&cfg)
	out := make([]Result, len(ordered))
	var wg sync.WaitGroup
	for i, name := range ordered {
		wg.Go(func() { out[i] = runPolicy(&cfg, w, name) })
	}
	wg.Wait()
	return out, nil
}

func (l *lab) finish() {
	l.res.MeanSlowdown = mean(l.slow)
	l.res.P95Slowdown = percentile(l.slow, 0.95)
	l.res.BusiestRatio = mean(l.ratios)
	l.res.BusiestPeak = mean(l.peaks)
	l.res.Trace = l.trace
	l.res.QueriesPerSecond = float64(l.res.Queries) / l.w.end.Seconds()
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// percentile is the nearest-rank percentile p (0..1) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	k := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

// Find returns the result of policy, or nil.
func Find(rs []Result, policy string) *Result {
	for i := range rs {
		if rs[i].Policy == policy {
			return &rs[i]
		}
	}
	return nil
}

// WriteTable prints the results as an aligned table, with each mean
// slowdown relative to round-robin's when that ran.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	rr := Find(rs, PolicyRoundRobin)
	fmt.Fprintln(tw, "policy\tmean slowdown\tvs round-robin\tp95 slowdown\tbusiest/mean in bursts\tpeak\tlogins\tDNS queries\t")
	for _, r := range rs {
		vs := "-"
		if rr != nil && rr.MeanSlowdown > 0 {
			vs = fmt.Sprintf("%.2f×", r.MeanSlowdown/rr.MeanSlowdown)
		}
		q := fmt.Sprint(r.Queries)
		if r.Policy == PolicyRandom || r.Policy == PolicyOracle {
			q = "-"
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%s\t%.2f\t%.2f\t%.2f\t%d\t%s\t\n", r.Policy, r.MeanSlowdown, vs, r.P95Slowdown, r.BusiestRatio, r.BusiestPeak, r.Sessions, q)
	}
	return tw.Flush()
}

// Describe is one line saying which lab was simulated.
func (c *Config) Describe() string {
	return c.describe(fmt.Sprintf(", TTL %s, top %d", fmtDuration(c.TTL), c.Top))
}

// DescribeSweep is Describe without TTL and top, which a sweep varies.
func (c *Config) DescribeSweep() string { return c.describe("") }

func (c *Config) describe(answers string) string {
	burst := "no bursts"
	if c.Burst > 0 {
		burst = fmt.Sprintf("a %d-login burst every %s", c.Burst, fmtDuration(c.BurstEvery))
	}
	return fmt.Sprintf("%d machines × %d cores at %.0f %% utilisation, %s%s, %d resolver(s), %s sampling, %s measured (seed %d)",
		c.Machines, c.Cores, c.Util*100, burst, answers, c.Resolvers, fmtDuration(c.Interval), fmtDuration(c.Duration), c.Seed)
}

// fmtDuration drops time.Duration's zero units ("10m", not "10m0s").
func fmtDuration(d time.Duration) string {
	s := d.String()
	for _, z := range []string{"m0s", "h0m"} {
		if len(s) > len(z) && s[len(s)-len(z):] == z {
			s = s[:len(s)-len(z)+1]
		}
	}
	return s
}
