package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/internal/sim"
)

func (c *cli) runSimulate(args []string) error {
	def := sim.DefaultConfig()
	f := c.newFlagSet("simulate", "[flags]", `
Simulate a lab behind one DNS name and compare placement policies on the
same day of logins:

  round-robin    DNS answers every machine, resolvers rotate the order
  random         every user picks a machine blindly (no DNS)
  peermon        a cron writes PeerMon's best 5 into DNS every minute
  lbnamed        DNS answers the best one, plus a load increment per answer
  peerload       the plugin's answer: the best --top, shuffled among equals
  peerload-herd  the same, counting what it handed out (agent/herd)
  oracle         the machine with the fewest processes at that instant:
                 the bound no real policy reaches

Machines share their cores among their processes (processor sharing); the
kernel's load average, the agents' sampling and reports, gossip delay,
resolver caches (--ttl) and clients taking the first address are modelled;
the peerload policies rank with peerload's own code. A login's slowdown is
its runtime under contention ÷ its runtime alone; busiest/mean is the
busiest machine's sessions ÷ the mean per machine during bursts. The same
flags and --seed give the same numbers; --seeds N averages N days.

With --sweep-top and/or --sweep-ttl it runs peerload and peerload-herd
(against round-robin and peermon) for every combination instead, to choose
top and TTL:

  peerload simulate --sweep-top 1,3,5,10 --sweep-ttl 0s,5s,10s,30s,60s --seeds 3`)
	machines := f.Int("machines", def.Machines, "number of lab `MACHINES`")
	cores := f.Int("cores", def.Cores, "`CORES` per machine")
	util := f.String("util", "70%", "long-run CPU demand ÷ all cores: a `FRACTION` (0.7) or a percentage (70%)")
	burst := f.Int("burst", def.Burst, "`LOGINS` of a class starting at once (spread over a minute); 0: none")
	burstEvery := f.Duration("burst-every", def.BurstEvery, "`TIME` between class starts")
	ttl := f.Duration("ttl", def.TTL, "DNS `TTL`: how long resolvers cache an answer (0: no caching)")
	top := f.Int("top", def.Top, "`N` machines per peerload answer")
	interval := f.Duration("interval", def.Interval, "agents' sampling `INTERVAL`")
	duration := f.Duration("duration", def.Duration, "simulated `TIME` measured (after a 15m warm-up)")
	seed := f.Uint64("seed", def.Seed, "random `SEED` of the workload and every choice")
	resolvers := f.Int("resolvers", def.Resolvers, "`N` caching resolvers the users' queries go through")
	seeds := f.Int("seeds", 1, "average over this many `DAYS`: seeds --seed, --seed+1, ...")
	sweepTop := f.String("sweep-top", "", "compare these tops, `N,N,...` (with --sweep-ttl: every combination)")
	sweepTTL := f.String("sweep-ttl", "", "compare these TTLs, `D,D,...` (e.g. 0s,10s,30s)")
	asJSON := f.Bool("json", false, "print a JSON array, one object per policy (per top and TTL with --sweep-*)")
	plotDir := f.String("plot", "", "write PNG plots into `DIR`")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	cfg := def
	cfg.Machines, cfg.Cores, cfg.Burst, cfg.BurstEvery = *machines, *cores, *burst, *burstEvery
	cfg.TTL, cfg.Top, cfg.Interval, cfg.Duration = *ttl, *top, *interval, *duration
	cfg.Seed, cfg.Resolvers = *seed, *resolvers
	if cfg.Util, err = parseFraction(*util); err != nil {
		return &flagError{Flag: "util", Value: *util, Err: err}
	}
	if *sweepTop != "" || *sweepTTL != "" {
		return c.simulateSweep(f, cfg, *sweepTop, *sweepTTL, *seeds, *asJSON, *plotDir)
	}
	if *plotDir != "" {
		cfg.TraceEvery = 10 * time.Second
	}
	rs, err := sim.RunSeeds(cfg, *seeds)
	if err != nil {
		return f.simError(err)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rs); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.stdout, cfg.Describe())
		if *seeds > 1 {
			fmt.Fprintf(c.stdout, "averaged over %d seeds\n", *seeds)
		}
		fmt.Fprintln(c.stdout)
		if err := sim.WriteTable(c.stdout, rs); err != nil {
			return err
		}
	}
	if *plotDir != "" {
		files, err := sim.WritePlots(*plotDir, cfg, rs)
		if err != nil {
			return err
		}
		for _, file := range files {
			fmt.Fprintln(c.stderr, "wrote", file)
		}
	}
	return nil
}

// simulateSweep runs every combination of --sweep-top and --sweep-ttl (the
// one --top or --ttl where only the other is given).
func (c *cli) simulateSweep(f *flagSet, cfg sim.Config, topList, ttlList string, seeds int, asJSON bool, plotDir string) error {
	tops := []int{cfg.Top}
	if topList != "" {
		tops = nil
		for _, v := range strings.Split(topList, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 1 {
				return &flagError{Flag: "sweep-top", Value: topList, Err: errors.New("want whole numbers of at least 1, separated by commas")}
			}
			tops = append(tops, n)
		}
	}
	ttls := []time.Duration{cfg.TTL}
	if ttlList != "" {
		ttls = nil
		for _, v := range strings.Split(ttlList, ",") {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < 0 {
				return &flagError{Flag: "sweep-ttl", Value: ttlList, Err: errors.New("want durations of at least 0s, separated by commas")}
			}
			ttls = append(ttls, d)
		}
	}
	ps, err := sim.Sweep(cfg, tops, ttls, seeds)
	if err != nil {
		return f.simError(err)
	}
	if asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(ps); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.stdout, cfg.Describe())
		if seeds > 1 {
			fmt.Fprintf(c.stdout, "averaged over %d seeds\n", seeds)
		}
		fmt.Fprintln(c.stdout)
		if err := sim.WriteSweepTable(c.stdout, ps); err != nil {
			return err
		}
	}
	if plotDir != "" {
		if err := os.MkdirAll(plotDir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(plotDir, sim.SweepPlot)
		if err := sim.WriteSweepPlot(path, cfg, ps, seeds); err != nil {
			return err
		}
		fmt.Fprintln(c.stderr, "wrote", path)
	}
	return nil
}

// simError names the flag behind an invalid simulator setting.
func (f *flagSet) simError(err error) error {
	var ce *sim.ConfigError
	if errors.As(err, &ce) {
		if fl := f.Lookup(ce.Field); fl != nil {
			return &flagError{Flag: ce.Field, Value: fl.Value.String(), Err: ce.Err}
		}
	}
	return err
}

// parseFraction reads 0.7 or 70%.
func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64)
	if err != nil {
		return 0, errors.New("want a fraction (0.7) or a percentage (70%)")
	}
	if pct {
		v /= 100
	}
	if !(v > 0 && v < 1) {
		return 0, errors.New("must be above 0 and below 1 (0 % to 100 %)")
	}
	return v, nil
}
