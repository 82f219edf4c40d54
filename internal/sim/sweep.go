package sim

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"
	"time"
)

// RunSeeds runs cfg with seeds cfg.Seed, cfg.Seed+1, ... (n of them) and
// averages every figure over them, so that a comparison does not hang on
// one day's luck. Traces are the first seed's.
func RunSeeds(cfg Config, n int) ([]Result, error) {
	if n < 1 {
		return nil, &ConfigError{Field: "seeds", Err: fmt.Errorf("must be at least 1")}
	}
	var avg []Result
	var slow, busy [][]float64 // per policy, per seed
	for i := range n {
		c := cfg
		c.Seed = cfg.Seed + uint64(i)
		rs, err := Run(c)
		if err != nil {
			return nil, err
		}
		if avg == nil {
			slow, busy = make([][]float64, len(rs)), make([][]float64, len(rs))
		}
		for j, r := range rs {
			slow[j] = append(slow[j], r.MeanSlowdown)
			busy[j] = append(busy[j], r.BusiestRatio)
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
			a.QueriesPerSecond += r.QueriesPerSecond
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
			a.QueriesPerSecond /= f
			a.MeanSlowdownSD, a.BusiestRatioSD = stddev(slow[j]), stddev(busy[j])
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
var sweepPolicies = []string{PolicyRoundRobin, PolicyPeerMon, PolicyPeerloadNoHerd, PolicyPeerload}

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

// WriteSweepTable prints one line per top and TTL: peerload without and
// with its herd, and the herd-aware mean slowdown against round-robin and
// PeerMon.
func WriteSweepTable(w io.Writer, ps []SweepPoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "top\tTTL\tno herd mean\tp95\tbusiest/mean\tpeerload mean\tp95\tbusiest/mean\tpeerload vs round-robin\tvs peermon\t")
	for _, p := range ps {
		pl, h := Find(p.Results, PolicyPeerloadNoHerd), Find(p.Results, PolicyPeerload)
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

// stddev is the sample standard deviation of xs (0 for fewer than two).
func stddev(xs []float64) float64 {
	if len(xs) < 2 {
		return 0
	}
	m, ss := mean(xs), 0.0
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)-1))
}

// WriteLongTable prints one line per policy (and per top and TTL of a
// sweep): the answer size and TTL it ran with, mean slowdown with its
// spread across seeds, p95, busiest/mean in bursts with its spread, and
// the queries per second that reached the DNS server.
func WriteLongTable(w io.Writer, cfg Config, ps []SweepPoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\ttop\tTTL\tmean slowdown\t±sd\tp95\tbusiest/mean\t±sd\tqueries/s\t")
	for _, p := range ps {
		c := cfg
		c.Top, c.TTL = p.Top, time.Duration(p.TTL*float64(time.Second))
		for _, r := range p.Results {
			top, ttl := answerShape(&c, r.Policy)
			q := fmt.Sprintf("%.3f", r.QueriesPerSecond)
			if r.Policy == PolicyRandom || r.Policy == PolicyOracle {
				top, ttl, q = "-", "-", "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%s\t\n", r.Policy, top, ttl,
				r.MeanSlowdown, r.MeanSlowdownSD, r.P95Slowdown, r.BusiestRatio, r.BusiestRatioSD, q)
		}
	}
	return tw.Flush()
}

// answerShape is the top and TTL policy answers with in cfg's lab.
func answerShape(cfg *Config, policy string) (top, ttl string) {
	switch policy {
	case PolicyRoundRobin:
		return "all", fmtDuration(cfg.TTL)
	case PolicyPeerMon:
		return fmt.Sprint(cfg.PeerMonTop), fmtDuration(cfg.PeerMonEvery)
	case PolicyLbnamed:
		return "1", fmtDuration(cfg.TTL)
	}
	v, err := ParseVariant(policy)
	if err != nil {
		return fmt.Sprint(cfg.Top), fmtDuration(cfg.TTL)
	}
	if v.MaxTTL > 0 {
		return fmt.Sprint(v.top(cfg)), fmtDuration(v.MinTTL) + "-" + fmtDuration(v.MaxTTL)
	}
	return fmt.Sprint(v.top(cfg)), fmtDuration(v.ttl(cfg))
}
