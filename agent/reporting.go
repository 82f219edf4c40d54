package agent

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// sampleLoop samples, checks and reports this node once per Interval.
func (a *Agent) sampleLoop() {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	for {
		a.sampleOnce()
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
	}
}

func (a *Agent) sampleOnce() {
	load, err := a.sampler.Sample()
	if err != nil {
		a.log.Warn("sample failed", "err", err)
		return
	}
	a.mu.Lock()
	checker := a.checker
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Interval+a.cfg.Checks.CommandTimeout)
	results := checker.Run(ctx)
	cancel()
	var failing []report.CheckResult
	for _, r := range results {
		if !r.OK {
			failing = append(failing, r)
		}
	}
	a.metrics.observeSample(load, results)

	now := time.Now()
	a.mu.Lock()
	r := &report.Report{Node: a.cfg.Name, Generation: a.generation, Lifetime: a.cfg.lifetime(), Load: load, Failing: failing}
	send := a.lastSent == nil || now.Sub(a.sentAt) >= a.cfg.RefreshInterval || Matters(a.lastSent, r, a.score)
	if !send {
		a.mu.Unlock()
		return
	}
	a.seq++
	r.Seq = a.seq
	a.lastSent, a.sentAt = r, now
	a.mu.Unlock()

	a.member.Publish(r, now)
}

// Matters reports whether r differs enough from o, the last report sent,
// for anyone's ranking to change: a check started or stopped failing, the
// CPU or memory term moved by half the tie delta, users or CPUs changed.
// Simulations of the cluster use it to publish as agents do.
func Matters(o, r *report.Report, score rank.ScoreConfig) bool {
	if !slices.Equal(r.Failing, o.Failing) || r.Load.CPUs != o.Load.CPUs || r.Load.Users != o.Load.Users {
		return true
	}
	half := score.Delta / 2
	return math.Abs(rank.Score(r.Load, score, rank.ByCPU)-rank.Score(o.Load, score, rank.ByCPU)) >= half ||
		math.Abs(rank.MemUsed(r.Load)-rank.MemUsed(o.Load)) >= half
}

// probeLoop pings the best candidates once every interval (see
// gossip.Member.Probe): the top of the whole ranking and the top of every
// pool, so a node any answer may hand out is among them.
func (a *Agent) probeLoop(interval time.Duration, top int) {
	defer a.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-t.C:
		}
		a.member.Probe(probeTargets(a.Snapshot(), top))
	}
}

// probeTargets are the names of the top best candidates of snap's whole
// ranking and of each pool.
func probeTargets(snap *rank.Snapshot, top int) []string {
	pools := map[string]bool{"": true}
	for i := range snap.Nodes {
		for _, p := range snap.Nodes[i].Pools {
			pools[p] = true
		}
	}
	seen := map[string]bool{}
	var names []string
	for pool := range pools {
		ranked := snap.Rank(pool, "").Nodes
		for _, n := range ranked[:min(top, len(ranked))] {
			if !seen[n.Name] {
				seen[n.Name] = true
				names = append(names, n.Name)
			}
		}
	}
	return names
}
