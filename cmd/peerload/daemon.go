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

// daemon is a long-running cluster member with its local API; `peerload
// agent` and `peerload nsupdate` each run one.
type daemon struct {
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
func (m *daemon) run() error {
	m.tuneRuntime()
	ln, err := m.listenAPI()
	if err != nil {
		return err
	}
	control, err := m.listenControl()
	if err != nil {
		ln.Close()
		return err
	}
	a, err := m.newAgent()
	if err != nil {
		ln.Close()
		if control != nil {
			control.Close()
		}
		return err
	}
	r := m.serve(a, ln, control)
	m.logger.Info(m.started(a, ln.Addr()))
	sig, stop := m.signalChannel()
	defer stop()
	return r.wait(sig)
}

// tuneRuntime sizes the Go runtime for a process that waits on the
// network almost all the time. GOMAXPROCS and GOGC in the environment
// win; tests, which pass their own signals, share their process and keep
// its settings.
func (m *daemon) tuneRuntime() {
	if m.signals != nil {
		return
	}
	// With one P the Go scheduler does not spin other threads up for
	// every packet, which costs CPU (BENCHMARKS.md).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	// A member's live heap is small and it allocates little (a copy of
	// each packet it reads), so what decides its memory is the heap Go
	// lets it reach before collecting: half of the default GOGC=100 halves
	// that headroom on every machine, and an idle agent still collects
	// rarely.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

// listenAPI listens on --api, warning when --api-public lets the network
// in.
func (m *daemon) listenAPI() (net.Listener, error) {
	ln, err := net.Listen("tcp", m.apiAddr)
	if err != nil {
		return nil, fmt.Errorf("--api %s: %w", m.apiAddr, unwrapOpError(err))
	}
	if m.apiPublic {
		if host, _, _ := net.SplitHostPort(m.apiAddr); !isLoopbackHost(host) {
			m.logger.Warn("the local API is reachable from the network (--api-public): anyone can read the cluster state", "api", m.apiAddr)
		}
	}
	return ln, nil
}

// listenControl makes the control socket, if the member has one. One
// that cannot be made is an error, or with controlOptional a warning and
// no socket.
func (m *daemon) listenControl() (*api.ControlSocket, error) {
	if m.control == nil {
		return nil, nil
	}
	control, err := api.ListenControl(*m.control)
	switch {
	case err != nil && m.controlOptional:
		m.logger.Warn("no control socket: drain and undrain will not reach this agent; give it one with --control PATH",
			"path", m.control.Path, "err", err)
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("--control %s: %w", m.control.Path, err)
	}
	return control, nil
}

// newAgent starts the agent, which joins the cluster; a gossip port in
// use is said as such, naming --bind.
func (m *daemon) newAgent() (*agent.Agent, error) {
	a, err := agent.New(m.cfg)
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("--bind %s: the gossip port is in use (another agent or updater on this machine?)", net.JoinHostPort(m.cfg.BindAddr, strconv.Itoa(m.cfg.BindPort)))
	}
	return a, err
}

// signalChannel is where run hears HUP, INT and TERM: the member's own
// signals in tests, else the process's; stop stops the delivery.
func (m *daemon) signalChannel() (sig <-chan os.Signal, stop func()) {
	if m.signals != nil {
		return m.signals, func() {}
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

// serving is a started member: the goroutines serving the API, the
// control socket and the work, and what shutdown stops.
type serving struct {
	m       *daemon
	agent   *agent.Agent
	srv     *http.Server
	control *api.ControlSocket
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// serveDone and workDone receive the API server's and the work's
	// return.
	serveDone, workDone chan error
}

// serve starts serving the API on ln, the control socket and the work,
// each in its goroutine.
func (m *daemon) serve(a *agent.Agent, ln net.Listener, control *api.ControlSocket) *serving {
	ctx, cancel := context.WithCancel(context.Background())
	r := &serving{
		m: m, agent: a, control: control, cancel: cancel,
		srv: &http.Server{
			Handler:           api.WithStatusPage(api.NewHandler(a, m.reg), m.page),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			ErrorLog:          slog.NewLogLogger(m.logger.Handler(), slog.LevelWarn),
		},
		serveDone: make(chan error, 1),
		workDone:  make(chan error, 1),
	}
	r.wg.Go(func() {
		err := r.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		r.serveDone <- err
	})
	if m.work != nil {
		r.wg.Go(func() { r.workDone <- m.work(ctx, a) })
	}
	if control != nil {
		r.serveControl()
	}
	return r
}

// serveControl serves drain and undrain on the control socket and says
// where it is and who may use it.
func (r *serving) serveControl() {
	control, logger := r.control, r.m.logger
	r.wg.Go(func() {
		if err := control.Serve(r.agent); err != nil {
			logger.Error("control socket", "path", control.Path(), "err", err)
		}
	})
	logger.Info("control socket for drain and undrain", "path", control.Path(), "group", cmp.Or(control.Group(), "(root only)"))
	if control.OpenToAll() {
		logger.Info("the control socket is open to every local user: giving it to its group is not allowed here (a sandbox forbidding chown); the agent checks each caller instead",
			"path", control.Path(), "group", control.Group())
	}
}

// wait serves until INT or TERM (a graceful leave), the work's end or the
// API server's failure, reloading on every HUP.
func (r *serving) wait(sig <-chan os.Signal) error {
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				r.reload()
				continue
			}
			r.m.logger.Info("leaving the cluster", "signal", s.String())
			if err := r.shutdown(); err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			return nil
		case err := <-r.workDone:
			_ = r.shutdown()
			return err
		case err := <-r.serveDone:
			_ = r.shutdown()
			return fmt.Errorf("--api %s: %w", r.m.apiAddr, err)
		}
	}
}

// reload re-reads the configuration; a failure keeps the running one.
func (r *serving) reload() {
	if err := r.m.reload(r.agent); err != nil {
		r.m.logger.Error("reload failed", "err", err)
		return
	}
	r.m.logger.Info("reloaded")
}

// shutdown closes the control socket, leaves the cluster (waiting at most
// leaveTimeout for the broadcast), stops the work and the API server and
// waits for their goroutines.
func (r *serving) shutdown() error {
	if r.control != nil {
		_ = r.control.Close()
	}
	if err := r.agent.Leave(leaveTimeout(r.m.cfg)); err != nil {
		r.m.logger.Debug("leave not confirmed by gossip", "err", err)
	}
	r.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	err := r.agent.Shutdown()
	r.wg.Wait()
	return err
}
