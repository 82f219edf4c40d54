package test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/test/lab"
)

// soakConfig is how long and how hard TestLabSoak churns.
type soakConfig struct {
	Duration time.Duration // whole churn, warm-up included
	Warmup   time.Duration // excluded from the flatness check
	Sample   time.Duration // sampling interval
	Seed     uint64
	Out      string // directory for soak.md and the plots; empty: none
}

// soakSettings reads LAB_SOAK (duration, default 75s: the `make test`
// version), LAB_SOAK_SEED and LAB_SOAK_OUT.
func soakSettings(t *testing.T) soakConfig {
	c := soakConfig{Duration: 75 * time.Second, Seed: rand.Uint64(), Out: os.Getenv("LAB_SOAK_OUT")}
	if v := os.Getenv("LAB_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			t.Fatalf("LAB_SOAK=%q: want a duration of at least 30s", v)
		}
		c.Duration = d
	}
	if v := os.Getenv("LAB_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("LAB_SOAK_SEED=%q: want a number", v)
		}
		c.Seed = s
	}
	c.Warmup = max(c.Duration/5, 20*time.Second)
	c.Sample = time.Second
	if c.Duration >= 5*time.Minute {
		c.Sample = 5 * time.Second
	}
	return c
}

// soakCounts are what the churn did.
type soakCounts struct {
	mu                                        sync.Mutex
	kills, leaves, restarts, joins, drains    int
	undrains, loads, apiQueries, namedQueries int
	apiErrors                                 []string
}

func (c *soakCounts) add(f func(*soakCounts)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}

// TestLabSoak churns a lab for LAB_SOAK (75 s in `make test`, 10 minutes in
// `make soak`): agents are killed with SIGKILL, leave with SIGTERM, come
// back, new ones join, machines are drained and undrained, loads change
// every second, a client asks CoreDNS 50 times a second and the agents'
// APIs every second, and nsupdate keeps BIND up to date. The resident
// memory and goroutine count of every process that runs throughout (four
// agents that are never killed, CoreDNS, named, nsupdate) stay flat after
// the warm-up: the median of the last quarter is within ±5 % of the median
// of the first quarter. For goroutines the floor (least count) of each
// quarter is compared, within ±5 % or ±2, whichever is more: a leaked
// goroutine stays and raises the floor, while those in flight (a collector
// pinging a dead machine up to four times a round, a query being answered)
// come and go with the churn and would move a median either way. Memory is VmRSS; RssAnon, its
// anonymous part (heap, stacks), is shown beside it. No DNS query fails,
// times out or comes back empty, named's name never goes blank, nothing
// crashes.
//
// The 75 s version in `make test` has quarters of only 14 s, over which a
// Go heap of a few MB swings with the garbage collector's cycle, and more
// so on an overloaded machine (seen at a load average of 30 on 2 cores:
// VmRSS +8 % and CoreDNS 35 -> 38 goroutines with queries in flight). It
// allows ±15 % memory and ±10 % or ±4 goroutines: it catches a goroutine
// leaked per event (a dozen kills and leaves) and a runaway heap; the
// 10-minute `make soak` checks the ±5 %.
func TestLabSoak(t *testing.T) {
	cfg := soakSettings(t)
	t.Logf("soak: %s (warm-up %s), seed %d (LAB_SOAK_SEED to replay)", cfg.Duration, cfg.Warmup, cfg.Seed)
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))

	l := lab.New(t, lab.Options{PinNeighbors: true})
	agents := startLabAgents(l, 8) // h1..h4 stay up; h5..h8 churn
	for i := 9; i <= 10; i++ {     // h9, h10 join during the soak
		agents = append(agents, l.AddAgent(fmt.Sprintf("h%d", i), lab.AgentOptions{NoStart: true}))
	}
	stable, churn := agents[:4], agents[4:]
	waitMembers(t, lab.StartupTimeout, members(agents[:8]), lab.Names(agents[:8]...))
	dns1 := l.AddCoreDNS("dns", lab.CoreDNSOptions{Top: 3})
	named := l.AddNamed("ns")
	l.AddNsupdate("upd", named, "--top", "2", "--resync", "30s")
	client := l.AddHost("client")
	agenttest.WaitFor(t, lab.StartupTimeout, "named to hold two machines", func() (bool, string) {
		got, err := named.Records()
		return err == nil && len(got) == 2, fmt.Sprintf("named holds %v (%v)", got, err)
	})

	ctx, cancel := context.WithTimeout(context.Background(), cfg.Duration)
	defer cancel()
	start := time.Now()
	sampler := l.NewSampler()
	var counts soakCounts
	var wg sync.WaitGroup

	// DNS: 50 queries a second for the whole soak.
	var dnsRes lab.LoadResult
	wg.Add(1)
	go func() {
		defer wg.Done()
		dnsRes, _ = client.RunDNSLoad(ctx, lab.DNSLoad{Server: dns1.Server(), Qname: lab.VName, Qtype: dns.TypeA,
			Rate: 50, Count: int(cfg.Duration.Seconds()+1) * 50, Sockets: 4, Tries: 2})
	}()
	// Samples.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(cfg.Sample)
		defer tick.Stop()
		for {
			sampler.Sample()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	// named: the name never goes blank.
	var blank []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			got, err := named.Records()
			counts.add(func(c *soakCounts) { c.namedQueries++ })
			if err != nil || len(got) == 0 {
				blank = append(blank, fmt.Sprintf("%.0fs: %v %v", time.Since(start).Seconds(), got, err))
			}
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
	}()

	// The churn, one step a second.
	type pending struct {
		a  *lab.Agent
		at time.Time
	}
	var restarts []pending
	drained := map[*lab.Agent]bool{}
	// running: the process runs and its agent is up. A restarted agent
	// answers its API once its control socket listens (it opens that
	// first), so drain and undrain never race its start.
	running := func(a *lab.Agent) bool {
		if !a.Process.Running() {
			return false
		}
		_, err := a.View()
		return err == nil
	}
	for step := 0; ctx.Err() == nil; step++ {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(start.Add(time.Duration(step) * time.Second))):
		}
		if ctx.Err() != nil {
			break
		}
		// Loads change on two machines every second.
		for range 2 {
			agents[rng.IntN(len(agents))].SetLoad(0.05 + 4*rng.Float64())
			counts.add(func(c *soakCounts) { c.loads++ })
		}
		// The API of a machine that is never killed answers every time.
		s := stable[rng.IntN(len(stable))]
		if _, err := s.View(); err != nil {
			counts.add(func(c *soakCounts) { c.apiErrors = append(c.apiErrors, err.Error()) })
		}
		if _, err := s.Top(3); err != nil {
			counts.add(func(c *soakCounts) { c.apiErrors = append(c.apiErrors, err.Error()) })
		}
		if c := churn[rng.IntN(len(churn))]; running(c) {
			_, _ = c.View() // may be going down right now
		}
		counts.add(func(c *soakCounts) { c.apiQueries += 3 })
		// Machines due back come back.
		for i := 0; i < len(restarts); i++ {
			if time.Now().After(restarts[i].at) {
				restarts[i].a.Process.Start()
				counts.add(func(c *soakCounts) { c.restarts++ })
				restarts = slices.Delete(restarts, i, i+1)
				i--
			}
		}
		if step%3 != 0 {
			continue
		}
		// Every third second one event.
		var up []*lab.Agent
		for _, c := range churn {
			if running(c) && !slices.ContainsFunc(restarts, func(p pending) bool { return p.a == c }) {
				up = append(up, c)
			}
		}
		switch ev := rng.IntN(4); {
		case ev == 0 && len(up) > 1:
			a := up[rng.IntN(len(up))]
			a.Process.Kill()
			counts.add(func(c *soakCounts) { c.kills++ })
			restarts = append(restarts, pending{a, time.Now().Add(time.Duration(3+rng.IntN(8)) * time.Second)})
		case ev == 1 && len(up) > 1:
			a := up[rng.IntN(len(up))]
			if err := a.Process.Stop(15 * time.Second); err != nil {
				t.Errorf("leave: %v", err)
			}
			counts.add(func(c *soakCounts) { c.leaves++ })
			restarts = append(restarts, pending{a, time.Now().Add(time.Duration(3+rng.IntN(8)) * time.Second)})
		case ev == 2:
			// Drain a running machine, or undrain one (at most two
			// drained at a time). A drained machine that was killed
			// meanwhile is still drained when it comes back.
			var in, out []*lab.Agent
			for _, a := range agents {
				switch {
				case !running(a):
				case drained[a]:
					in = append(in, a)
				default:
					out = append(out, a)
				}
			}
			if len(in) > 0 && (len(drained) >= 2 || rng.IntN(2) == 0) {
				a := in[rng.IntN(len(in))]
				if res := a.Peerload("undrain"); res.Code != 0 {
					t.Errorf("undrain %s: %s", a.Name, res)
				}
				delete(drained, a)
				counts.add(func(c *soakCounts) { c.undrains++ })
			} else if len(drained) < 2 && len(out) > 0 {
				a := out[rng.IntN(len(out))]
				if res := a.Peerload("drain", "--reason", "soak"); res.Code != 0 {
					t.Errorf("drain %s: %s", a.Name, res)
				}
				drained[a] = true
				counts.add(func(c *soakCounts) { c.drains++ })
			}
		default:
			for _, a := range churn {
				if a.Process.Starts() == 0 {
					a.Process.Start()
					counts.add(func(c *soakCounts) { c.joins++ })
					break
				}
			}
		}
	}
	wg.Wait()
	elapsed := time.Since(start)

	counts.mu.Lock()
	summary := fmt.Sprintf("%d kills, %d leaves, %d restarts, %d joins, %d drains, %d undrains, %d load changes, %d API and %d named queries, DNS: %s",
		counts.kills, counts.leaves, counts.restarts, counts.joins, counts.drains, counts.undrains, counts.loads, counts.apiQueries, counts.namedQueries, dnsRes)
	apiErrors := slices.Clone(counts.apiErrors)
	counts.mu.Unlock()
	t.Logf("soak: %s", summary)
	if len(apiErrors) > 0 {
		t.Errorf("%d API queries to machines that are never killed failed, first: %s", len(apiErrors), apiErrors[0])
	}
	if n := dnsRes.Count(func(a lab.Answer) bool { return a.Rcode != dns.RcodeSuccess || len(a.Addrs) == 0 }); n > 0 {
		t.Errorf("%d DNS queries failed, timed out or came back empty: %s", n, dnsRes)
	}
	if len(blank) > 0 {
		t.Errorf("named's name was blank or unanswered %d times: %v", len(blank), blank)
	}

	// Flatness of the processes that ran throughout.
	var steady []*lab.Series
	for _, sr := range sampler.Series() {
		pts := sr.Points
		if sr.Start == 1 && len(pts) > 0 && pts[0].T < cfg.Warmup && pts[len(pts)-1].T >= elapsed-2*cfg.Sample-time.Second &&
			(sr.Proc.Host != nil && !slices.ContainsFunc(churn, func(a *lab.Agent) bool { return a.Process == sr.Proc })) {
			sr.Name = strings.TrimSuffix(sr.Name, "#1")
			steady = append(steady, sr)
		}
	}
	if len(steady) < 7 {
		t.Fatalf("only %d processes ran throughout, want 4 agents, coredns, named and nsupdate", len(steady))
	}
	q := (elapsed - cfg.Warmup) / 4
	memTol := memTolerance(cfg)
	rows := []string{}
	for _, sr := range steady {
		first, last := sr.Window(cfg.Warmup, cfg.Warmup+q), sr.Window(elapsed-q, elapsed+time.Second)
		rss0, rss1 := lab.Median(first, rssMB), lab.Median(last, rssMB)
		anon0, anon1 := lab.Median(first, anonMB), lab.Median(last, anonMB)
		g0 := lab.Min(first, goroutines)
		g1 := lab.Min(last, goroutines)
		rssChange := 100 * (rss1/rss0 - 1)
		row := fmt.Sprintf("| %s | %.1f MB | %.1f MB | %+.1f %% | %.1f MB | %.1f MB | %+.1f %% |",
			sr.Name, rss0, rss1, rssChange, anon0, anon1, 100*(anon1/anon0-1))
		if math.Abs(rssChange) > memTol {
			t.Errorf("%s: resident memory %.1f MB -> %.1f MB (%+.1f %%, allowed ±%.0f %%) from the first to the last quarter after warm-up",
				sr.Name, rss0, rss1, rssChange, memTol)
		}
		if g0 >= 0 && sr.Proc.MetricsAddr != "" {
			row += fmt.Sprintf(" %.0f | %.0f | %+.1f %% |", g0, g1, 100*(g1/g0-1))
			if pct, abs := goroutineTolerance(cfg); math.Abs(g1-g0) > max(pct/100*g0, abs) {
				t.Errorf("%s: goroutines (floor) %.0f -> %.0f from the first to the last quarter after warm-up", sr.Name, g0, g1)
			}
		} else {
			row += " - | - | - |"
		}
		rows = append(rows, row)
	}
	t.Logf("soak: first vs last quarter after warm-up:\n%s", strings.Join(rows, "\n"))
	if cfg.Out != "" {
		writeSoakReport(t, cfg, elapsed, summary, rows, steady, sampler.Series())
	}
}

// memTolerance is the allowed change of VmRSS in percent: ±5 % for a real
// soak, ±15 % for the short version in `make test` (see TestLabSoak).
func memTolerance(cfg soakConfig) float64 {
	if cfg.Duration < 5*time.Minute {
		return 15
	}
	return 5
}

// goroutineTolerance is the allowed change of the goroutine count: this
// percentage or this many, whichever is more.
func goroutineTolerance(cfg soakConfig) (pct, abs float64) {
	if cfg.Duration < 5*time.Minute {
		return 10, 4
	}
	return 5, 2
}

func rssMB(p lab.Point) float64      { return float64(p.RSSKB) / 1024 }
func anonMB(p lab.Point) float64     { return float64(p.AnonKB) / 1024 }
func goroutines(p lab.Point) float64 { return p.Goroutines }

// writeSoakReport writes soak.md (the BENCHMARKS.md section) and the two
// plots into cfg.Out.
func writeSoakReport(t *testing.T, cfg soakConfig, elapsed time.Duration, summary string, rows []string, steady, all []*lab.Series) {
	t.Helper()
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := lab.PlotSeries(filepath.Join(cfg.Out, "soak-memory.png"), "peerload soak: resident memory (VmRSS)", "MB", steady, rssMB, cfg.Warmup); err != nil {
		t.Fatal(err)
	}
	if err := lab.PlotSeries(filepath.Join(cfg.Out, "soak-goroutines.png"), "peerload soak: goroutines (go_goroutines)", "goroutines", steady, goroutines, cfg.Warmup); err != nil {
		t.Fatal(err)
	}
	gpct, gabs := goroutineTolerance(cfg)
	var b strings.Builder
	fmt.Fprintf(&b, "## Soak: %s of churn in the namespace lab (test/lab_soak_test.go)\n\n", cfg.Duration)
	fmt.Fprintf(&b, "`make soak` (`LAB_SOAK=%s go test -run '^TestLabSoak$' ./test/`, seed %d) on %s. ", cfg.Duration, cfg.Seed, time.Now().UTC().Format("2006-01-02"))
	b.WriteString("Ten agents (h1-h4 never killed; h5-h8 killed with SIGKILL or leaving with SIGTERM and coming back " +
		"3-10 s later, one event every 3 s; h9 and h10 join midway), CoreDNS, named and nsupdate in network " +
		"namespaces at LAN timings; every second two machines change load and the agents' APIs are asked; " +
		"machines are drained and undrained; a client asks CoreDNS 50 times a second. What happened: " + summary + ".\n\n")
	fmt.Fprintf(&b, "Resident memory (VmRSS, and its anonymous part RssAnon: heap and stacks; the rest is the binary's pages) "+
		"and goroutines (go_goroutines) sampled every %s; medians (goroutines: floors, the least count) of the first and the last quarter after the %s warm-up (%s in all). "+
		"Flat means VmRSS within ±%.0f %% and goroutines within ±%.0f %% or ±%.0f.\n\n", cfg.Sample, cfg.Warmup, elapsed.Round(time.Second), memTolerance(cfg), gpct, gabs)
	b.WriteString("| process | VmRSS first | last | change | RssAnon first | last | change | goroutines first | last | change |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rows {
		b.WriteString(r + "\n")
	}
	b.WriteString("\n![resident memory over the soak](docs/soak-memory.png)\n\n![goroutines over the soak](docs/soak-goroutines.png)\n\n")
	// The curve as numbers: one row a minute (or ten rows).
	step := max(elapsed/10, time.Minute)
	if elapsed < 5*time.Minute {
		step = elapsed / 6
	}
	b.WriteString("The curve, medians per interval (VmRSS MB / goroutines):\n\n| from |")
	for _, sr := range steady {
		b.WriteString(" " + sr.Name + " |")
	}
	b.WriteString("\n|---|")
	for range steady {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for from := time.Duration(0); from < elapsed; from += step {
		cells := make([]string, 0, len(steady))
		seen := false
		for _, sr := range steady {
			w := sr.Window(from, from+step)
			switch g := lab.Median(w, goroutines); {
			case len(w) == 0:
				cells = append(cells, "-")
			case g < 0:
				cells, seen = append(cells, fmt.Sprintf("%.1f / -", lab.Median(w, rssMB))), true
			default:
				cells, seen = append(cells, fmt.Sprintf("%.1f / %.0f", lab.Median(w, rssMB), g)), true
			}
		}
		if seen {
			fmt.Fprintf(&b, "| %s | %s |\n", from.Round(time.Second), strings.Join(cells, " | "))
		}
	}
	fmt.Fprintf(&b, "\n%d process runs were sampled in all (restarted agents start a new run).\n", len(all))
	if err := os.WriteFile(filepath.Join(cfg.Out, "soak.md"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
