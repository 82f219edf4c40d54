package agent

import (
	"context"
	"math"
	"slices"
	"time"
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
		a.logger.Printf("[WARN] sample: %v", err)
		return
	}
	a.mu.Lock()
	checker := a.checker
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.Interval+a.cfg.Checks.CommandTimeout)
	results := checker.Run(ctx)
	cancel()
	var failing []CheckResult
	for _, r := range results {
		if !r.OK {
			failing = append(failing, r)
		}
	}
	a.metrics.observeSample(load, results)

	now := time.Now()
	a.mu.Lock()
	r := &Report{Node: a.cfg.Name, Generation: a.generation, Load: load, Failing: failing}
	send := a.lastSent == nil || now.Sub(a.sentAt) >= a.cfg.RefreshInterval || a.mattersLocked(r)
	if !send {
		a.mu.Unlock()
		return
	}
	a.seq++
	r.Seq = a.seq
	a.lastSent, a.sentAt = r, now
	a.reports[r.Node] = &heldReport{r: r, received: now}
	a.mu.Unlock()

	a.fanOut(r)
	a.kick()
}

// mattersLocked reports whether r differs enough from the last report sent
// for anyone's ranking to change: a check started or stopped failing, the
// CPU or memory term moved by half the tie delta, users or CPUs changed.
func (a *Agent) mattersLocked(r *Report) bool {
	o := a.lastSent
	if !slices.Equal(r.Failing, o.Failing) || r.Load.CPUs != o.Load.CPUs || r.Load.Users != o.Load.Users {
		return true
	}
	half := a.score.Delta / 2
	return math.Abs(Score(r.Load, a.score, ByCPU)-Score(o.Load, a.score, ByCPU)) >= half ||
		math.Abs(Score(r.Load, a.score, ByMem)-Score(o.Load, a.score, ByMem)) >= half
}

// fanOut sends r straight to every alive member. One hop reaches everyone
// at once and costs N−1 small packets per change, an order of magnitude
// less than relaying through the broadcast queue; push/pull repairs any
// packet lost on the way.
func (a *Agent) fanOut(r *Report) {
	msg := AppendReport([]byte{msgReport}, r)
	for _, n := range a.memberCopies() {
		if n.Name == a.cfg.Name {
			continue
		}
		// A failed send is repaired by the next report or push/pull.
		_ = a.ml.SendBestEffort(&n, msg)
	}
	a.reportsSent.Add(1)
}

// apply stores r if it is newer than what is held for its node.
func (a *Agent) apply(r *Report, now time.Time) bool {
	if r.Node == a.cfg.Name {
		return false // only this agent speaks for itself
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if h, ok := a.reports[r.Node]; ok && !r.newer(h.r) {
		return false
	}
	a.reports[r.Node] = &heldReport{r: r, received: now.Add(-r.Age)}
	return true
}
