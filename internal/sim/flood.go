package sim

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Flood describes a client that ignores caching and asks the DNS server
// QPS times a second for Duration, starting At into the lab's day, while
// the lab goes on as usual. Checks are the times after the flood's end at
// which the answers are compared with the load.
type Flood struct {
	At       time.Duration
	QPS      int
	Duration time.Duration
	Checks   []time.Duration
}

// DefaultFlood is the product's requirement: 20k queries a second for
// 10 s; answers ordered by load again within one agent refresh (15 s).
func DefaultFlood() Flood {
	return Flood{At: 30 * time.Minute, QPS: 20000, Duration: 10 * time.Second,
		Checks: []time.Duration{0, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}}
}

// FloodResult is one policy's behaviour under a Flood.
type FloodResult struct {
	Policy string `json:"policy"`
	// Answers is the flood's answers; NonCandidates the addresses in them
	// that were no candidate when handed out (must be 0).
	Answers       int          `json:"answers"`
	NonCandidates int          `json:"non_candidates"`
	Checks        []FloodCheck `json:"checks"`
}

// FloodCheck compares the lab after a flood with the same lab without it,
// at After past the flood's end. HerdLoad is the herd's load over all
// machines (what it adds to their reports); Excess is how much worse the
// worst machine of an answer scores, on its report alone, than the
// top-th best machine: 0 when the answer holds the best by load, below
// the score's tie delta when they are equal.
type FloodCheck struct {
	After           time.Duration `json:"after"`
	HerdLoad        float64       `json:"herd_load"`
	HerdLoadNoFlood float64       `json:"herd_load_no_flood"`
	Excess          float64       `json:"excess"`
	ExcessNoFlood   float64       `json:"excess_no_flood"`
}

// RunFlood runs policy on cfg's lab with and without f.
func RunFlood(cfg Config, policy string, f Flood) (FloodResult, error) {
	cfg.Policies = []string{policy}
	if err := cfg.Validate(); err != nil {
		return FloodResult{}, err
	}
	res := FloodResult{Policy: policy}
	w := newWorkload(&cfg)
	end := f.At + f.Duration
	checks := func(l *lab, herd, excess func(i int, v float64)) {
		for i, after := range f.Checks {
			l.eng.At(end+after, func() {
				now := l.eng.Now()
				herd(i, l.herdLoad(now))
				excess(i, l.answerExcess(now))
			})
		}
	}
	res.Checks = make([]FloodCheck, len(f.Checks))
	for i, a := range f.Checks {
		res.Checks[i].After = a
	}
	quiet := newLab(&cfg, w, policy)
	checks(quiet, func(i int, v float64) { res.Checks[i].HerdLoadNoFlood = v },
		func(i int, v float64) { res.Checks[i].ExcessNoFlood = v })
	quiet.eng.Run(end + f.Checks[len(f.Checks)-1])

	l := newLab(&cfg, w, policy)
	checks(l, func(i int, v float64) { res.Checks[i].HerdLoad = v },
		func(i int, v float64) { res.Checks[i].Excess = v })
	n := int(f.Duration.Seconds() * float64(f.QPS))
	gap := f.Duration / time.Duration(max(n, 1))
	for k := range n {
		l.eng.At(f.At+time.Duration(k)*gap, func() {
			now := l.eng.Now()
			set := l.floodAnswer(now)
			snap := l.col.snapshot(now)
			for _, i := range set {
				if !snap.Nodes[i].Candidate {
					res.NonCandidates++
				}
			}
			res.Answers++
		})
	}
	l.eng.Run(end + f.Checks[len(f.Checks)-1])
	return res, nil
}

// floodAnswer is one answer to the flooding client, which asks the server
// directly (through no resolver of the lab).
func (l *lab) floodAnswer(now time.Duration) []int {
	if p, ok := l.pol.(resolverPolicy); ok {
		set, _ := p.answerResolver(0, now)
		return set
	}
	return l.pol.answer(now)
}

// herdLoad is the load the policy's herd adds over all machines at now.
func (l *lab) herdLoad(now time.Duration) float64 {
	snap := l.col.snapshot(now)
	sum := 0.0
	for i, n := range snap.Nodes {
		if n.Report == nil {
			continue
		}
		switch p := l.pol.(type) {
		case *peerload:
			if p.herd != nil {
				sum += p.herd.Extra(n.Name, n.Received, epoch.Add(now))
			}
		case *variantPolicy:
			if p.herd != nil {
				sum += p.herd.extra(i, n.Received.Sub(epoch), now)
			}
		}
	}
	return sum
}

// answerExcess asks the policy once and compares its answer with the
// ranking on the reports alone (see FloodCheck.Excess).
func (l *lab) answerExcess(now time.Duration) float64 {
	top := l.cfg.Top
	if p, ok := l.pol.(*variantPolicy); ok {
		top = p.v.top(l.cfg)
	}
	set := l.floodAnswer(now)
	snap := l.col.snapshot(now)
	r := snap.Rank("", "")
	if r.Len() == 0 || len(set) == 0 {
		return 0
	}
	kth := r.Nodes[min(top, r.Len())-1].Score
	worst := kth
	for _, i := range set {
		worst = max(worst, snap.Nodes[i].Score)
	}
	return worst - kth
}

// WriteFloodTable prints one line per policy and check.
func WriteFloodTable(w io.Writer, rs []FloodResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\tflood answers\tnon-candidates\tafter\therd load\twithout flood\tscore excess\twithout flood\t")
	for _, r := range rs {
		for _, c := range r.Checks {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%.2f\t%.2f\t%.3f\t%.3f\t\n", r.Policy, r.Answers, r.NonCandidates,
				fmtDuration(c.After), c.HerdLoad, c.HerdLoadNoFlood, c.Excess, c.ExcessNoFlood)
		}
	}
	return tw.Flush()
}
