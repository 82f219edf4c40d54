package peerload

import (
	"errors"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The modules' metrics. Caddy gives every configuration its own registry
// (what its `metrics` handler and admin /metrics serve), so the vectors
// live here once and each configuration registers them in Provision, as
// Caddy's reverse proxy does with its own.
var (
	// selectionsTotal counts the selection policy's picks by outcome.
	selectionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "selections_total",
		Help:      "Upstreams picked by lb_policy peerload, by outcome (best, fallback, random, none).",
	}, []string{"outcome"})
	// upstreamsTotal counts the upstream source's answers by outcome.
	upstreamsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "upstreams_total",
		Help:      "Upstream lists handed out by dynamic peerload, by outcome (candidates, fallback, none).",
	}, []string{"outcome"})
	// candidatesGauge is the number of live candidates a module chooses from.
	candidatesGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "candidates",
		Help:      "Live candidates of the pool in the latest snapshot, by member bind address and pool.",
	}, []string{"member", "pool"})
	// snapshotAgeGauge is how fresh the data behind the choices is.
	snapshotAgeGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "snapshot_age_seconds",
		Help:      "Age in seconds of the newest load report the choices are built from.",
	}, []string{"member"})
	// handedTotal counts the machines handed out (picked by the selection
	// policy, listed by the upstream source), by node: what the herd
	// counts, and how a burst spread.
	handedTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "handed_out_total",
		Help:      "Machines handed out by the peerload modules, by node.",
	}, []string{"node"})
	// membersGauge is the number of alive cluster members seen.
	membersGauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "reverse_proxy_peerload",
		Name:      "members",
		Help:      "Alive cluster members (collectors included) in the latest snapshot.",
	}, []string{"member"})
)

// The outcomes, resolved once: the selection runs for every request.
var (
	selectedBest     = selectionsTotal.WithLabelValues("best")
	selectedFallback = selectionsTotal.WithLabelValues("fallback")
	selectedRandom   = selectionsTotal.WithLabelValues("random")
	selectedNone     = selectionsTotal.WithLabelValues("none")
	listedCandidates = upstreamsTotal.WithLabelValues("candidates")
	listedFallback   = upstreamsTotal.WithLabelValues("fallback")
	listedNone       = upstreamsTotal.WithLabelValues("none")
)

// registerMetrics registers the modules' metrics in a configuration's
// registry; a second module of the same configuration finds them there.
func registerMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{selectionsTotal, upstreamsTotal, candidatesGauge, snapshotAgeGauge, membersGauge, handedTotal} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

// fanoutRegisterer is a member's registerer: a member outlives the
// configuration whose registry its agent's collectors would go to, so it
// keeps them and registers them in the registry of every configuration
// that holds the member (added by its modules, removed at their cleanup).
type fanoutRegisterer struct {
	labels     prometheus.Labels // added to every metric, in every registry
	mu         sync.Mutex
	collectors []prometheus.Collector
	targets    map[prometheus.Registerer]int // registry → modules using it
}

func newFanoutRegisterer(labels prometheus.Labels) *fanoutRegisterer {
	return &fanoutRegisterer{labels: labels, targets: map[prometheus.Registerer]int{}}
}

// in is reg adding f's labels.
func (f *fanoutRegisterer) in(reg prometheus.Registerer) prometheus.Registerer {
	return prometheus.WrapRegistererWith(f.labels, reg)
}

// Register implements prometheus.Registerer.
func (f *fanoutRegisterer) Register(c prometheus.Collector) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.collectors = append(f.collectors, c)
	for t := range f.targets {
		_ = f.in(t).Register(c)
	}
	return nil
}

// MustRegister implements prometheus.Registerer.
func (f *fanoutRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = f.Register(c)
	}
}

// Unregister implements prometheus.Registerer.
func (f *fanoutRegisterer) Unregister(c prometheus.Collector) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.collectors {
		if x == c {
			f.collectors = append(f.collectors[:i], f.collectors[i+1:]...)
			for t := range f.targets {
				f.in(t).Unregister(c)
			}
			return true
		}
	}
	return false
}

// addTarget registers every collector in reg, now and as they come.
func (f *fanoutRegisterer) addTarget(reg prometheus.Registerer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.targets[reg]++; f.targets[reg] == 1 {
		for _, c := range f.collectors {
			_ = f.in(reg).Register(c)
		}
	}
}

// removeTarget undoes one addTarget.
func (f *fanoutRegisterer) removeTarget(reg prometheus.Registerer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.targets[reg]--; f.targets[reg] > 0 {
		return
	}
	delete(f.targets, reg)
	for _, c := range f.collectors {
		f.in(reg).Unregister(c)
	}
}

// Interface guards
var _ prometheus.Registerer = (*fanoutRegisterer)(nil)
