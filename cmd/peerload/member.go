package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/api"
)

// member is a long-running cluster member with its local API; `peerload
// agent` and `peerload nsupdate` each run one.
type member struct {
	cfg       *agent.Config
	apiAddr   string
	apiPublic bool
	logger    *slog.Logger
	reg       *prometheus.Registry
	// signals replaces the process's signals (tests); nil uses them.
	signals <-chan os.Signal
	// started is the line logged once the member runs.
	started func(a *agent.Agent, api net.Addr) string
	// reload re-reads the configuration on HUP.
	reload func(a *agent.Agent) error
	// page, when set, is served at / of the API (the status page).
	page http.Handler
	// work, when set, runs beside the API until its context ends; its
	// return ends the member.
	work func(ctx context.Context, a *agent.Agent) error
	// control, when set, is the control socket drain and undrain use;
	// with controlOptional a socket that cannot be made is a warning.
	control         *api.ControlConfig
	controlOptional bool
}

// leaveTimeout caps how long INT or TERM wait for memberlist's leave
// broadcast. The member has already told every other member goodbye
// directly; the broadcast repeats it by gossip, which takes a few gossip
// rounds (two up to 9 members, five up to 10,000 with memberlist's
// retransmit rule), and never completes when the others are leaving too
// (a whole demo or lab stopping at once): waiting longer only delays the
// exit (a 5 s wait made the last agent of a demo take 5-8 s to exit).
func leaveTimeout(cfg *agent.Config) time.Duration {
	if cfg.Memberlist == nil || cfg.Memberlist.GossipInterval <= 0 {
		return time.Second
	}
	return min(time.Second, 10*cfg.Memberlist.GossipInterval)
}

// newRegistry is a metrics registry with the Go runtime's and the
// process's collectors, for one member's /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// run listens on the API address first (a taken port fails before joining
// anything), starts the member and serves until INT or TERM, which leave
// the cluster gracefully; HUP reloads.
func (m *member) run() error {
	// A member waits on the network almost all the time: with one P the
	// Go scheduler does not spin other threads up for every packet, a
	// fifth less CPU (BENCHMARKS.md). GOMAXPROCS in the environment wins;
	// tests, which pass their own signals, share their process and keep
	// theirs.
	if m.signals == nil && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A member's live heap is about 1 MB and it allocates little (a copy
	// of each packet it reads), so what decides its memory is the heap
	// Go lets it reach before collecting: 4 MB at the default GOGC=100,
	// 2 MB at 50. That is 1.9 MB less resident on every machine, and an
	// idle agent still collects less often (3 collections in 90 s) than
	// it did at 100 before gossip stopped allocating 64 KB per packet
	// (5). GOGC in the environment wins, as above.
	if m.signals == nil && os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ln, err := net.Listen("tcp", m.apiAddr)
	if err != nil {
		return fmt.Errorf("--api %s: %w", m.apiAddr, unwrapOpError(err))
	}
	if m.apiPublic {
		if host, _, _ := net.SplitHostPort(m.apiAddr); !isLoopbackHost(host) {
			m.logger.Warn("the local API is reachable from the network (--api-public): anyone can read the cluster state", "api", m.apiAddr)
		}
	}
	var control *api.ControlSocket
	if m.control != nil {
		control, err = api.ListenControl(*m.control)
		switch {
		case err != nil && m.controlOptional:
			m.logger.Warn("no control socket: drain and undrain will not reach this agent; give it one with --control PATH",
				"path", m.control.Path, "err", err)
		case err != nil:
			ln.Close()
			return fmt.Errorf("--control %s: %w", m.control.Path, err)
		}
	}
	a, err := agent.New(m.cfg)
	if err != nil {
		ln.Close()
		if control != nil {
			control.Close()
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("--bind %s: the gossip port is in use (another agent or updater on this machine?)", net.JoinHostPort(m.cfg.BindAddr, strconv.Itoa(m.cfg.BindPort)))
		}
		return err
	}
	srv := &http.Server{
		Handler:           api.WithStatusPage(api.NewHandler(a, m.reg), m.page),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	serveDone := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		serveDone <- err
	}()
	workDone := make(chan error, 1)
	if m.work != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workDone <- m.work(ctx, a)
		}()
	}
	if control != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := control.Serve(a); err != nil {
				m.logger.Error("control socket", "path", control.Path(), "err", err)
			}
		}()
		m.logger.Info("control socket for drain and undrain", "path", control.Path(), "group", cmp.Or(control.Group(), "(root only)"))
		if control.OpenToAll() {
			m.logger.Info("the control socket is open to every local user: giving it to its group is not allowed here (a sandbox forbidding chown); the agent checks each caller instead",
				"path", control.Path(), "group", control.Group())
		}
	}
	m.logger.Info(m.started(a, ln.Addr()))

	sig := m.signals
	if sig == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(ch)
		sig = ch
	}
	shutdown := func() error {
		if control != nil {
			_ = control.Close()
		}
		if err := a.Leave(leaveTimeout(m.cfg)); err != nil {
			m.logger.Debug("leave not confirmed by gossip", "err", err)
		}
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		err := a.Shutdown()
		wg.Wait()
		return err
	}
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				if err := m.reload(a); err != nil {
					m.logger.Error("reload failed", "err", err)
				} else {
					m.logger.Info("reloaded")
				}
				continue
			}
			m.logger.Info("leaving the cluster", "signal", s.String())
			if err := shutdown(); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		case err := <-workDone:
			_ = shutdown()
			return err
		case err := <-serveDone:
			_ = shutdown()
			return fmt.Errorf("--api %s: %w", m.apiAddr, err)
		}
	}
}
