package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/rank"
)

// agentFlags are the flags of `peerload agent`.
type agentFlags struct {
	gossip       *gossipFlags
	collector    bool
	pools        string
	interval     time.Duration
	refresh      time.Duration
	staleAfter   time.Duration
	root         string
	sshPort      int
	checkCmd     string
	checkTimeout time.Duration
	by           string
	weightCPU    float64
	weightMem    float64
	weightUsers  float64
	delta        float64
	logLevel     string
	quiet        bool
	statusListen string
	statusAllow  string
	control      string
	controlGroup string
}

func addAgentFlags(f *flagSet) *agentFlags {
	def := agent.DefaultConfig()
	af := &agentFlags{gossip: addGossipFlags(f.FlagSet)}
	f.BoolVar(&af.collector, "collector", false, "hear every report but never be a candidate (DNS servers, updaters)")
	f.StringVar(&af.pools, "pool", "", "tag this machine with pools, `POOL[,POOL]`")
	f.DurationVar(&af.interval, "interval", 0, "how often load is sampled and checks run, `INTERVAL` (default: 2s, 250ms with --profile local)")
	f.DurationVar(&af.refresh, "refresh", 0, "longest `TIME` between two reports of an unchanged load (default: 15s, 2s with --profile local)")
	f.DurationVar(&af.staleAfter, "stale-after", 0, "cap on how old, `AGE`, a node's report may be before it stops being a candidate (default: twice the lifetime its sender promises)")
	f.StringVar(&af.root, "root", "/", "file system `DIR` the health checks look at (/etc/nologin, /tmp, /run)")
	f.IntVar(&af.sshPort, "ssh-port", def.Checks.SSHPort, "TCP `PORT` sshd must listen on for the node to be a candidate (0: no check)")
	f.StringVar(&af.checkCmd, "check-cmd", "", "extra health check shell `COMMAND`: non-zero exit takes the node out")
	f.DurationVar(&af.checkTimeout, "check-timeout", def.Checks.CommandTimeout, "time limit of --check-cmd, `DURATION`")
	f.StringVar(&af.by, "by", string(def.Score.By), "default `RANKING`: cpu (run queue per CPU), mem (most free memory first) or combined")
	f.Float64Var(&af.weightCPU, "weight-cpu", def.Score.CPUWeight, "combined score `WEIGHT` of load1 per CPU")
	f.Float64Var(&af.weightMem, "weight-mem", def.Score.MemWeight, "combined score `WEIGHT` of the share of memory in use")
	f.Float64Var(&af.weightUsers, "weight-users", def.Score.UserWeight, "combined score `WEIGHT` added per logged-in user")
	f.Float64Var(&af.delta, "delta", def.Score.Delta, "scores closer than `DELTA` are equal and handed out in random order")
	f.StringVar(&af.logLevel, "log-level", "info", "least severe log `LEVEL` shown: debug, info, warn or error")
	f.choose("by", "cpu", "mem", "combined")
	f.choose("log-level", "debug", "info", "warn", "error")
	f.choose("profile", agent.Profiles()...)
	f.BoolVar(&af.quiet, "q", false, "quiet: same as --log-level warn")
	f.StringVar(&af.statusListen, "status-listen", "", "also serve the read-only status page (always on / of --api) and /metrics on `ADDR:PORT`")
	f.StringVar(&af.statusAllow, "status-allow", "", "networks, `CIDR,...`, that may open --status-listen besides loopback")
	f.StringVar(&af.control, "control", defaultControl, "control socket `PATH` that drain and undrain use (empty: none)")
	f.StringVar(&af.controlGroup, "control-group", api.DefaultControlGroup, "`GROUP` whose members may drain and undrain besides root (default: peerload-admin if it exists; empty: root only)")
	return af
}

// controlConfig is where the control socket goes and who may use it, or
// nil for none (a collector has nothing to drain), and whether the agent
// may run without it (the default path, which a second agent on the
// machine, or one not run as root outside its unit, cannot take). Call
// after parsing f.
func (af *agentFlags) controlConfig(f *flagSet, logger *slog.Logger) (cfg *api.ControlConfig, optional bool) {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if af.control == "" || af.collector {
		return nil, false
	}
	return &api.ControlConfig{Path: af.control, Group: af.controlGroup, GroupOptional: !set["control-group"], Logger: logger},
		!set["control"]
}

// config builds the agent configuration from the parsed flags, re-reading
// and checking the files they name. HUP calls it again.
func (af *agentFlags) config() (*agent.Config, error) {
	cfg := agent.DefaultConfig()
	if err := af.gossip.apply(cfg); err != nil {
		return nil, err
	}
	cfg.Collector = af.collector
	cfg.Pools = splitList(af.pools)
	if af.interval != 0 {
		cfg.Interval = af.interval
	}
	if af.refresh != 0 {
		cfg.RefreshInterval = af.refresh
	}
	cfg.StaleAfter = af.staleAfter
	if af.root == "" {
		return nil, badFlag("root", af.root, "must not be empty")
	}
	cfg.Checks.Root = af.root
	cfg.Checks.SSHPort = af.sshPort
	cfg.Checks.Command = af.checkCmd
	cfg.Checks.CommandTimeout = af.checkTimeout

	by, err := rank.ParseBy(af.by)
	if err != nil {
		return nil, badFlag("by", af.by, "want cpu, mem or combined")
	}
	cfg.Score.By = by
	cfg.Score.CPUWeight, cfg.Score.MemWeight, cfg.Score.UserWeight, cfg.Score.Delta = af.weightCPU, af.weightMem, af.weightUsers, af.delta
	if _, err := parseLogLevel(af.level()); err != nil {
		return nil, &flagError{Flag: "log-level", Value: af.logLevel, Err: err}
	}
	if err := validate(cfg, nil); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (af *agentFlags) level() string {
	if af.quiet {
		return "warn"
	}
	return af.logLevel
}

func (c *cli) runAgent(args []string) error {
	f := c.newFlagSet("agent", "[flags]", `
Run the cluster member on this machine: sample its load from --proc, run the
health checks, gossip reports with the other members (--join), and serve
the local API (--api) that top, ssh, status and drain use, with Prometheus
metrics on /metrics and a status page for browsers on / (also on
--status-listen, for the networks in --status-allow).

Drain and undrain reach the agent through its control socket (--control),
a Unix socket only root, this agent's user and members of --control-group
may use; the agent logs who drained or undrained and why.

Signals: HUP re-reads --join-file, --keyring and --check-cmd; INT and TERM
leave the cluster gracefully and exit within about a second.

Environment: the agent runs Go code on one CPU at a time (GOMAXPROCS=1)
and lets its heap grow by half before collecting (GOGC=50), to stay small
on every machine; GOMAXPROCS and GOGC in the environment override these.

Example (one machine of a lab; the same on every machine):

    peerload agent --join lab01:7946,lab02:7946 --keyring /etc/peerload/keyring`)
	af := addAgentFlags(f)
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	cfg, err := af.config()
	if err != nil {
		return err
	}
	apiAddr, err := af.gossip.apiAddr()
	if err != nil {
		return err
	}
	level, _ := parseLogLevel(af.level())
	logger := newLogger(c.stderr, level, cfg.Name)
	cfg.Logger = logger
	reg := newRegistry()
	cfg.Registerer = reg
	work, page, err := af.statusPage(cfg.Interval, logger, reg)
	if err != nil {
		return err
	}
	control, controlOptional := af.controlConfig(f, logger)
	m := &daemon{work: work, page: page, control: control, controlOptional: controlOptional,
		cfg: cfg, apiAddr: apiAddr, apiPublic: af.gossip.APIPublic, logger: logger, reg: reg, signals: c.signals,
		started: func(a *agent.Agent, api net.Addr) string {
			return fmt.Sprintf("agent %s: gossip on %s, API on http://%s", cfg.Name, a.GossipAddr(), api)
		},
		reload: func(a *agent.Agent) error {
			newCfg, err := af.config()
			if err != nil {
				return err
			}
			newCfg.Logger, newCfg.Registerer = logger, reg
			return a.Reload(newCfg)
		},
	}
	return m.run()
}

// unwrapOpError shortens "listen tcp 127.0.0.1:1981: bind: address already
// in use" to its cause.
func unwrapOpError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseLogLevel reads --log-level.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "err", "error":
		return slog.LevelError, nil
	}
	return 0, errors.New("want debug, info, warn or error")
}

// newLogger logs to w at level and above, every line naming the node.
func newLogger(w io.Writer, level slog.Level, node string) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})).With("node", node)
}
