package rfc2136

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the updater's Prometheus collectors, all labelled by name.
type metrics struct {
	sent        *prometheus.CounterVec
	succeeded   *prometheus.CounterVec
	failed      *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	resyncs     *prometheus.CounterVec
	drift       *prometheus.CounterVec
	active      *prometheus.GaugeVec
	handed      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "peerload", "rfc2136"
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "updates_sent_total", Help: "RFC 2136 UPDATE messages sent, by name."}, []string{"name"}),
		succeeded: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "updates_succeeded_total", Help: "UPDATE messages the server accepted (NOERROR), by name."}, []string{"name"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "updates_failed_total", Help: "Failed exchanges with the server (updates and resync reads), by name and reason (rcode, TSIG error, timeout, network)."}, []string{"name", "reason"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "last_success_timestamp_seconds", Help: "Unix time of the last successful update or resync, by name."}, []string{"name"}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "resyncs_total", Help: "Reads of the name's records from the server, by name."}, []string{"name"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "drift_repairs_total", Help: "Resyncs that found the server holding something else than was written, by name."}, []string{"name"}),
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "active", Help: "1 when this updater is the active writer of the name, 0 when passive."}, []string{"name"}),
		handed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "handed_out_total", Help: "Machines the herd counted as handed out (the published set, once per TTL), by name."}, []string{"name"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.sent, &m.succeeded, &m.failed, &m.resyncs, &m.drift, &m.handed} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	for _, g := range []**prometheus.GaugeVec{&m.lastSuccess, &m.active} {
		if *g, err = register(reg, *g); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// its name: a second updater in one process (a plugin reload) shares the
// collectors of the first.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if e, ok := are.ExistingCollector.(T); ok {
			return e, nil
		}
	}
	return c, fmt.Errorf("rfc2136: register metrics: %w", err)
}
