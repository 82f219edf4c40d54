package peerload

import (
	"log/slog"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
)

// members are the modules' collector-only cluster members, one per bind
// address, shared by every module with that bind in this and the next
// configuration. A module acquires its hold when it is provisioned, but
// the peerload app starts it only when the configuration starts, so
// `caddy validate` binds no port and joins nothing. Caddy starts the new
// configuration before it stops the old one, so a reload that keeps the
// member's restart settings (collector.RestartSettings) keeps the member
// running with its port, its membership and every machine's report; one
// that changes them restarts it when the old configuration lets go.
var members = collector.NewRegistry(collector.Frontend{
	Kind:        "caddy",
	DefaultPort: defaultPort,
	Log: func() *slog.Logger {
		return slog.New(zapslog.NewHandler(logger().Core(), zapslog.WithName("peerload")))
	},
	Configure: func(cfg *agent.Config, spec collector.Spec) {
		cfg.Logger = slog.New(zapslog.NewHandler(logger().Core(), zapslog.WithName("peerload.member"))).With("bind", spec.Bind)
		cfg.Registerer = memberMetrics(spec.Bind)
	},
	ReadBeforeStart: true,
})

// metricsByBind holds the registerer of the member on each bind address:
// a member outlives the configurations (and so the metrics registries)
// that hold it, and its agent's collectors are registered in each of
// theirs (see fanoutRegisterer). Kept for the life of the process: one
// small entry per bind address ever configured.
var metricsByBind = struct {
	sync.Mutex
	m map[string]*fanoutRegisterer
}{m: map[string]*fanoutRegisterer{}}

// memberMetrics is the registerer of the member on bind.
func memberMetrics(bind string) *fanoutRegisterer {
	metricsByBind.Lock()
	defer metricsByBind.Unlock()
	f := metricsByBind.m[bind]
	if f == nil {
		f = newFanoutRegisterer(prometheus.Labels{"member": bind})
		metricsByBind.m[bind] = f
	}
	return f
}

// logger is Caddy's default logger, named for this package: members
// outlive the configuration (and so the module logger) that made them.
func logger() *zap.Logger { return caddy.Log().Named("peerload") }
