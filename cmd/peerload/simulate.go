package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
  peerload-noherd  the plugin with herd off: the best --top by the reports
  peerload       the plugin as shipped: the same, counting what it handed
                 out (herd on); its row is the shipped defaults
  peerload-herd  the same as peerload (herd-awareness was an option once)
  oracle         the machine with the fewest processes at that instant:
                 the bound no real policy reaches

Machines share their cores among their processes (processor sharing); the
kernel's load average, the agents' sampling and reports, gossip delay,
resolver caches (--ttl) and clients taking the first address are modelled;
the peerload policies rank with peerload's own code. A login's slowdown is
its runtime under contention ÷ its runtime alone; busiest/mean is the
busiest machine's sessions ÷ the mean per machine during bursts. The same
flags and --seed give the same numbers; --seeds N averages N days.

With --sweep-top and/or --sweep-ttl it runs peerload and peerload-noherd
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
	duration := f.Duration("duration", def.Duration, "simulated `TIME` measured (after --warmup)")
	warmup := f.Duration("warmup", def.Warmup, "simulated `TIME` before logins are measured (bursts start at --burst-every)")
	tail := f.Duration("tail", def.Tail, "`TIME` logins go on arriving after the measured period, for the last measured ones to finish")
	sessionWork := f.Duration("session-work", def.SessionWork, "mean CPU `TIME` of a login placed by DNS (one CPU-bound process, exponentially distributed)")
	bgShare := f.String("background-share", fmt.Sprintf("%g%%", def.BackgroundShare*100), "part of --util from sessions DNS does not place (console users, jobs): a `FRACTION` or percentage")
	seed := f.Uint64("seed", def.Seed, "random `SEED` of the workload and every choice")
	resolvers := f.Int("resolvers", def.Resolvers, "`N` caching resolvers the users' queries go through")
	choiceSeed := f.Uint64("choice-seed", 0, "random `SEED` of the policies' and gossip's choices only (0: --seed), to rerun one day with other luck")
	seeds := f.Int("seeds", 1, "average over this many `DAYS`: seeds --seed, --seed+1, ...")
	sweepTop := f.String("sweep-top", "", "compare these tops, `N,N,...` (with --sweep-ttl: every combination)")
	sweepTTL := f.String("sweep-ttl", "", "compare these TTLs, `D,D,...` (e.g. 0s,10s,30s)")
	policies := f.String("policies", "", "run only these `POLICIES,...`: names above or experimental variants (internal/sim ParseVariant, e.g. herd/w=rate/top=5/ttl=10s), one line each")
	flood := f.Int("flood", 0, "instead, flood the DNS server with `QPS` queries a second for 10s (a client ignoring caching) and show how each of --policies recovers")
	asJSON := f.Bool("json", false, "print a JSON array, one object per policy (per top and TTL with --sweep-*)")
	plotDir := f.String("plot", "", "write PNG plots into `DIR` (drawn by the peerload-plot program)")
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	cfg := def
	cfg.Machines, cfg.Cores, cfg.Burst, cfg.BurstEvery = *machines, *cores, *burst, *burstEvery
	cfg.TTL, cfg.Top, cfg.Interval, cfg.Duration = *ttl, *top, *interval, *duration
	cfg.Seed, cfg.ChoiceSeed, cfg.Resolvers = *seed, *choiceSeed, *resolvers
	cfg.Warmup, cfg.Tail, cfg.SessionWork = *warmup, *tail, *sessionWork
	var err error
	if cfg.Util, err = parseFraction(*util); err != nil {
		return &flagError{Flag: "util", Value: *util, Err: err}
	}
	if cfg.BackgroundShare, err = parseShare(*bgShare); err != nil {
		return &flagError{Flag: "background-share", Value: *bgShare, Err: err}
	}
	if *policies != "" {
		cfg.Policies = strings.Split(*policies, ",")
	}
	if *flood > 0 {
		return c.simulateFlood(f, cfg, *flood)
	}
	var plotter string
	if *plotDir != "" {
		if plotter, err = findPlotter(); err != nil {
			return err
		}
	}
	if *sweepTop != "" || *sweepTTL != "" {
		return c.simulateSweep(f, cfg, *sweepTop, *sweepTTL, *seeds, *asJSON, plotter, *plotDir)
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
		write := sim.WriteTable
		if len(cfg.Policies) > 0 {
			write = func(w io.Writer, rs []sim.Result) error {
				return sim.WriteLongTable(w, cfg, []sim.SweepPoint{{Top: cfg.Top, TTL: cfg.TTL.Seconds(), Results: rs}})
			}
		}
		if err := write(c.stdout, rs); err != nil {
			return err
		}
	}
	if *plotDir != "" {
		return c.plot(plotter, *plotDir, sim.NewPlotInput(cfg, *seeds, rs))
	}
	return nil
}

// simulateSweep runs every combination of --sweep-top and --sweep-ttl (the
// one --top or --ttl where only the other is given); plotter draws the
// plot when plotDir is set.
func (c *cli) simulateSweep(f *flagSet, cfg sim.Config, topList, ttlList string, seeds int, asJSON bool, plotter, plotDir string) error {
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
		write := sim.WriteSweepTable
		if len(cfg.Policies) > 0 {
			write = func(w io.Writer, ps []sim.SweepPoint) error { return sim.WriteLongTable(w, cfg, ps) }
		}
		if err := write(c.stdout, ps); err != nil {
			return err
		}
	}
	if plotDir != "" {
		return c.plot(plotter, plotDir, sim.PlotInput{Config: cfg, Seeds: seeds, Sweep: ps})
	}
	return nil
}

// plotProgram draws the plots of --plot. It is a program of its own so
// that peerload does not link gonum/plot: its package init parses twelve
// embedded fonts, megabytes resident in every process of peerload, the
// idle agent's included.
const plotProgram = "peerload-plot"

// findPlotter finds plotProgram beside this executable (bin/ after make
// build, /usr/bin from the package), else on PATH.
func findPlotter() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), plotProgram)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(plotProgram); err == nil {
		return p, nil
	}
	return "", &flagError{Flag: "plot", Err: errors.New("needs the peerload-plot program beside peerload or on PATH (make build writes bin/peerload-plot)")}
}

// plot runs plotter DIR with in as JSON on its standard input. What it
// says on standard error ("wrote PATH" for each file) is passed on; when
// it fails, its one line is the error.
func (c *cli) plot(plotter, dir string, in sim.PlotInput) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	cmd := exec.Command(plotter, dir)
	cmd.Stdin = bytes.NewReader(data)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg != "" && !strings.Contains(msg, "\n") {
			return fmt.Errorf("%s: %s", plotter, strings.TrimPrefix(msg, plotProgram+": "))
		}
		c.stderr.Write(errOut.Bytes())
		return fmt.Errorf("%s: %w", plotter, err)
	}
	_, err = c.stderr.Write(errOut.Bytes())
	return err
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

// parseShare reads a fraction from 0 up to 1 (0, 0.3 or 30%).
func parseShare(s string) (float64, error) {
	if v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "%")), 64); err == nil && v == 0 {
		return 0, nil
	}
	return parseFraction(s)
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

// simulateFlood runs sim.RunFlood for every policy of cfg (peerload-herd
// when none is given) and prints the table.
func (c *cli) simulateFlood(f *flagSet, cfg sim.Config, qps int) error {
	policies := cfg.Policies
	if len(policies) == 0 {
		policies = []string{sim.PolicyPeerloadHerd}
	}
	fl := sim.DefaultFlood()
	fl.QPS = qps
	var rs []sim.FloodResult
	for _, p := range policies {
		r, err := sim.RunFlood(cfg, p, fl)
		if err != nil {
			return f.simError(err)
		}
		rs = append(rs, r)
	}
	fmt.Fprintln(c.stdout, cfg.Describe())
	fmt.Fprintf(c.stdout, "a client ignoring caching asks %d times a second for %s from %s\n\n", qps, fl.Duration, fl.At)
	return sim.WriteFloodTable(c.stdout, rs)
}
