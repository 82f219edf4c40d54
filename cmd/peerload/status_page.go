package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/status"
)

// statusPage records the cluster for the status page and, with
// --status-listen, listens for it (and /metrics, for Prometheus) on an
// address of its own, before the agent starts so a taken port fails first.
func (af *agentFlags) statusPage(interval time.Duration, logger *slog.Logger, reg *prometheus.Registry) (func(context.Context, *agent.Agent) error, http.Handler, error) {
	var allow []netip.Prefix
	for _, s := range splitList(af.statusAllow) {
		p, err := parsePrefix(s)
		if err != nil {
			return nil, nil, &flagError{Flag: "status-allow", Value: af.statusAllow, Err: err}
		}
		allow = append(allow, p)
	}
	var ln net.Listener
	if af.statusListen != "" {
		if _, _, err := parseHostPort(af.statusListen); err != nil {
			return nil, nil, &flagError{Flag: "status-listen", Value: af.statusListen, Err: err}
		}
		var err error
		if ln, err = net.Listen("tcp", af.statusListen); err != nil {
			return nil, nil, fmt.Errorf("--status-listen %s: %w", af.statusListen, unwrapOpError(err))
		}
	} else if len(allow) > 0 {
		return nil, nil, badFlag("status-allow", af.statusAllow, "needs --status-listen")
	}
	rec := status.NewRecorder(status.Options{Interval: interval})
	page := status.NewHandler(rec)
	return func(ctx context.Context, a *agent.Agent) error {
		if ln == nil {
			rec.Follow(ctx, a)
			return nil
		}
		go rec.Follow(ctx, a)
		logger.Info("status page", "addr", "http://"+ln.Addr().String(), "allow", "loopback,"+af.statusAllow)
		mux := http.NewServeMux()
		mux.Handle("/", page)
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		return status.Serve(ctx, ln, mux, allow, logger)
	}, page, nil
}
