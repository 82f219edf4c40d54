package main

import (
	"encoding/json"
	"errors"
	"fmt"
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
flags and --seed give the same numbers.`)
	machines := f.Int("machines", def.Machines, "number of lab `machines`")
	cores := f.Int("cores", def.Cores, "`cores` per machine")
	util := f.String("util", "70%", "long-run CPU demand ÷ all cores: a `fraction` (0.7) or a percentage (70%)")
	burst := f.Int("burst", def.Burst, "`logins` of a class starting at once (spread over a minute); 0: none")
	burstEvery := f.Duration("burst-every", def.BurstEvery, "time between class starts")
	ttl := f.Duration("ttl", def.TTL, "DNS TTL: how long resolvers cache an answer (0: no caching)")
	top := f.Int("top", def.Top, "machines per peerload answer")
	interval := f.Duration("interval", def.Interval, "agents' sampling interval")
	duration := f.Duration("duration", def.Duration, "simulated time measured (after a 15m warm-up)")
	seed := f.Uint64("seed", def.Seed, "random `seed` of the workload and every choice")
	resolvers := f.Int("resolvers", def.Resolvers, "caching resolvers the users' queries go through")
	asJSON := f.Bool("json", false, "print a JSON array, one object per policy")
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
	if *plotDir != "" {
		cfg.TraceEvery = 10 * time.Second
	}
	rs, err := sim.Run(cfg)
	if err != nil {
		var ce *sim.ConfigError
		if errors.As(err, &ce) {
			if fl := f.Lookup(ce.Field); fl != nil {
				return &flagError{Flag: ce.Field, Value: fl.Value.String(), Err: ce.Err}
			}
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rs); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(c.stdout, cfg.Describe())
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
