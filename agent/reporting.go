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
		math.Abs(rank.Score(r.Load, score, rank.ByMem)-rank.Score(o.Load, score, rank.ByMem)) >= half
}

// probeLoop pings the best candidates once every interval (see
// gossip.Member.Probe).
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
		ranked := a.Snapshot().Rank("", "").Nodes
		names := make([]string, 0, min(top, len(ranked)))
		for _, n := range ranked[:min(top, len(ranked))] {
			names = append(names, n.Name)
		}
		a.member.Probe(names)
	}
}
