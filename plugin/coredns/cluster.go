package peerload

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
)

// members are the plugin's collector-only cluster members, one per bind
// address, shared by every peerload block with that bind in this and the
// next Corefile instance. On a reload the new instance's OnStartup runs
// before the old instance's OnShutdown, so a member whose restart
// settings did not change (collector.RestartSettings) never stops in
// between and keeps its port, its membership and its reports; one whose
// settings changed restarts with them when the old instance lets go.
var members = collector.NewRegistry(collector.Frontend{
	Kind:        "coredns",
	DefaultPort: defaultPort,
	Log:         func() *slog.Logger { return slog.New(clogHandler{}) },
	Configure: func(cfg *agent.Config, spec collector.Spec) {
		cfg.Logger = slog.New(clogHandler{})
		// The member's own gossip metrics appear on CoreDNS's /metrics
		// too, labelled with the bind address (the agent unregisters
		// them on shutdown, so a restarted member can register again).
		cfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"member": spec.Bind}, prometheus.DefaultRegisterer)
	},
})

// startMember takes and starts a hold on the member of spec.Bind for one
// block, attaching the block to its agent (see collector.AttachFunc).
func startMember(spec memberSpec, attach collector.AttachFunc) (*collector.Handle, error) {
	h := members.Acquire(spec, attach)
	if err := h.Start(); err != nil {
		if relErr := h.Release(); relErr != nil {
			log.Warningf("%v", relErr)
		}
		return nil, err
	}
	return h, nil
}

// clogHandler sends the agent's and memberlist's log records to CoreDNS's
// log at their level, attributes as key=value after the message.
type clogHandler struct{ attrs []slog.Attr }

func (h clogHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h clogHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	switch {
	case r.Level < slog.LevelInfo:
		log.Debug(b.String())
	case r.Level < slog.LevelWarn:
		log.Info(b.String())
	case r.Level < slog.LevelError:
		log.Warning(b.String())
	default:
		log.Error(b.String())
	}
	return nil
}

func (h clogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return clogHandler{attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h clogHandler) WithGroup(string) slog.Handler { return h }
