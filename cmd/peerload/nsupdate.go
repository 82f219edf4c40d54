package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/rfc2136"
)

// defaultNsupdateAPI is where `peerload nsupdate` serves the read-only API
// and /metrics: not the agent's port, so an updater can run on a machine
// that also runs an agent.
const defaultNsupdateAPI = "127.0.0.1:1991"

// nsupdatePort is the default gossip port of `peerload nsupdate`: not the
// agent's, so an updater can run on a machine that also runs an agent.
const nsupdatePort = 7945

// nsupdateFlags are the flags of `peerload nsupdate`.
type nsupdateFlags struct {
	gossip   *gossipFlags
	server   string
	zone     string
	names    string
	top      int
	ttl      int
	pool     string
	by       string
	fallback string
	herd     string
	key      string
	keyName  string
	resync   time.Duration
	margin   float64
	minIntv  time.Duration
	timeout  time.Duration
	insecure bool
	allowMD5 bool
	logLevel string
}

func addNsupdateFlags(f *flagSet) *nsupdateFlags {
	nf := &nsupdateFlags{}
	f.StringVar(&nf.server, "server", "", "primary DNS server `HOST:PORT` that accepts the updates (required)")
	f.StringVar(&nf.zone, "zone", "", "`ZONE` the names live in (required)")
	f.StringVar(&nf.names, "name", "", "DNS `NAME[,NAME]` to keep on the best machines (required)")
	f.IntVar(&nf.top, "top", 8, "how many machines, `N`, each name holds (as the CoreDNS plugin's answers)")
	f.IntVar(&nf.ttl, "ttl", 5, "TTL of the records in `SECONDS`; keep it short (the default is the plugin's)")
	f.StringVar(&nf.pool, "pool", "", "only machines of `POOL`")
	f.StringVar(&nf.by, "by", "", "`RANKING`: cpu, mem (most free memory first) or combined (default: the cluster's)")
	f.StringVar(&nf.fallback, "fallback", "keep", "what to publish, `FALLBACK`, when no machine is a candidate: keep (leave the records), all (every alive machine) or none (delete them)")
	f.StringVar(&nf.herd, "herd", "on", "`HERD`: on or off; on counts the published set as handed out after each TTL in which its machines gained users, so a burst of logins moves it on before their load shows")
	f.StringVar(&nf.key, "tsig-key", "", "BIND key `FILE` as written by tsig-keygen (required unless --insecure-no-tsig)")
	f.StringVar(&nf.keyName, "tsig-key-name", "", "which key, `NAME`, of --tsig-key to use when the file holds several")
	f.DurationVar(&nf.resync, "resync", 5*time.Minute, "read the records back and repair drift every `INTERVAL`")
	f.Float64Var(&nf.margin, "margin", 0.1, "hysteresis: replace a published machine only when another scores better by more than `MARGIN`")
	f.DurationVar(&nf.minIntv, "min-interval", time.Second, "least `TIME` between two updates of one name")
	f.DurationVar(&nf.timeout, "timeout", 5*time.Second, "time limit, `DURATION`, of one exchange with the server")
	f.BoolVar(&nf.insecure, "insecure-no-tsig", false, "send unsigned updates (only for a server that grants updates by address)")
	f.choose("by", "cpu", "mem", "combined")
	f.choose("fallback", "keep", "all", "none")
	f.choose("herd", "on", "off")
	f.choose("log-level", "debug", "info", "warn", "error")
	f.BoolVar(&nf.allowMD5, "allow-md5", false, "accept an hmac-md5 key (broken; make a new hmac-sha256 key instead)")
	f.StringVar(&nf.logLevel, "log-level", "info", "least severe log `LEVEL` shown: debug, info, warn or error")

	// The gossip flags, except that --name is the DNS name here: the
	// member's own name is --node-name.
	tmp := flag.NewFlagSet("gossip", flag.ContinueOnError)
	nf.gossip = addGossipFlags(tmp)
	// The member's name keeps the form of release 0.1.0, the full host
	// name: updaters elect their writer by name, and an operator finds
	// the updater in `peerload status` by it.
	host, _ := os.Hostname()
	nf.gossip.Name = "nsupdate-" + host
	nf.gossip.StateDir = ""
	nf.gossip.API = defaultNsupdateAPI
	nf.gossip.Bind = "0.0.0.0:" + strconv.Itoa(nsupdatePort)
	tmp.VisitAll(func(fl *flag.Flag) {
		name, usage := fl.Name, fl.Usage
		switch name {
		case "name":
			name, usage = "node-name", "unique `NAME` of this member in the cluster (default: nsupdate-HOSTNAME)"
		case "proc", "advertise":
			return // a collector samples nothing and is never handed out
		case "api":
			usage = "read-only API and /metrics listen `ADDR:PORT`"
		case "bind":
			usage = "gossip listen `ADDR:PORT` (UDP and TCP; not 7946, so an agent can run on the same machine)"
		case "state-dir":
			// Release 0.1.0 accepted it, so unit files that pass it must
			// keep working; but a collector sends no reports and holds no
			// drain flag, so there was never anything to keep.
			usage = "ignored (`DIR`): an updater keeps no state; accepted for compatibility with release 0.1.0"
		}
		f.Var(fl.Value, name, usage)
	})
	f.choose("profile", agent.Profiles()...)
	return nf
}

// config turns the flags into the member's spec and agent configuration,
// made as every collector front end makes them (agent/collector), and the
// updater's configuration.
func (nf *nsupdateFlags) config() (collector.Spec, *agent.Config, rfc2136.Config, error) {
	var spec collector.Spec
	var uc rfc2136.Config
	if nf.server == "" {
		return spec, nil, uc, badFlag("server", "", "required")
	}
	if _, _, err := parseHostPort(nf.server); err != nil {
		return spec, nil, uc, &flagError{Flag: "server", Value: nf.server, Err: err}
	}
	if nf.zone == "" {
		return spec, nil, uc, badFlag("zone", "", "required")
	}
	names := splitList(nf.names)
	if len(names) == 0 {
		return spec, nil, uc, badFlag("name", nf.names, "required")
	}
	if nf.top < 1 {
		return spec, nil, uc, badFlag("top", strconv.Itoa(nf.top), "must be at least 1")
	}
	if nf.ttl < 1 || nf.ttl > 1<<31-1 {
		return spec, nil, uc, badFlag("ttl", strconv.Itoa(nf.ttl), "must be a positive number of seconds")
	}
	by, err := rank.ParseBy(nf.by)
	if err != nil {
		return spec, nil, uc, &flagError{Flag: "by", Value: nf.by, Err: err}
	}
	fb, err := rank.ParseFallback(nf.fallback)
	if err != nil {
		return spec, nil, uc, &flagError{Flag: "fallback", Value: nf.fallback, Err: err}
	}
	herd, err := rank.ParseHerd(nf.herd)
	if err != nil {
		return spec, nil, uc, &flagError{Flag: "herd", Value: nf.herd, Err: errors.New("want on or off")}
	}
	if nf.resync <= 0 {
		return spec, nil, uc, badFlag("resync", nf.resync.String(), "must be positive")
	}
	if nf.timeout <= 0 {
		return spec, nil, uc, badFlag("timeout", nf.timeout.String(), "must be positive")
	}
	if nf.minIntv < 0 {
		return spec, nil, uc, badFlag("min-interval", nf.minIntv.String(), "must not be negative")
	}
	if _, err := parseLogLevel(nf.logLevel); err != nil {
		return spec, nil, uc, &flagError{Flag: "log-level", Value: nf.logLevel, Err: err}
	}
	var key *rfc2136.Key
	switch {
	case nf.key != "" && nf.insecure:
		return spec, nil, uc, &usageError{errors.New("--tsig-key and --insecure-no-tsig exclude each other")}
	case nf.key != "":
		k, err := rfc2136.ReadKeyFile(nf.key, nf.keyName, nf.allowMD5)
		if err != nil {
			return spec, nil, uc, fmt.Errorf("--tsig-key: %w", err)
		}
		key = &k
	case !nf.insecure:
		return spec, nil, uc, &usageError{errors.New("--tsig-key FILE is required (make one with `tsig-keygen -a hmac-sha256 NAME`); --insecure-no-tsig sends unsigned updates")}
	}
	uc = rfc2136.Config{
		Server: nf.server, Zone: nf.zone, Names: names, Top: nf.top, TTL: uint32(nf.ttl),
		Pool: nf.pool, By: by, Fallback: fb, NoHerd: !herd, Key: key, Insecure: nf.insecure,
		Resync: nf.resync, Margin: nf.margin, MinInterval: nf.minIntv, Timeout: nf.timeout,
	}
	if nf.margin == 0 {
		uc.Margin = -1 // 0 on the command line means no hysteresis
	}
	if nf.minIntv == 0 {
		uc.MinInterval = time.Nanosecond
	}

	// The gossip flags are parsed and checked as for an agent, into a
	// scratch configuration; the member is then made from them as every
	// collector front end makes its member.
	rename := map[string]string{"name": "node-name"}
	scratch := agent.DefaultConfig()
	if err := nf.gossip.apply(scratch); err != nil {
		var fe *flagError
		if errors.As(err, &fe) && rename[fe.Flag] != "" {
			fe.Flag = rename[fe.Flag]
		}
		return spec, nil, uc, err
	}
	spec = collector.Spec{
		Name: scratch.Name, Bind: nf.gossip.Bind, Join: scratch.Join, JoinFile: scratch.JoinFile,
		Keyring: scratch.KeyringFile, Label: scratch.Label, Allow: scratch.Allow, Profile: nf.gossip.Profile,
	}
	for _, n := range names {
		spec.Roles = append(spec.Roles, rfc2136.Role(nf.zone, n))
	}
	cfg, err := collector.Config(spec, "nsupdate", nsupdatePort)
	if err != nil {
		return spec, nil, uc, err
	}
	if err := validate(cfg, rename); err != nil {
		return spec, nil, uc, err
	}
	return spec, cfg, uc, nil
}

func (c *cli) runNsupdate(args []string) error {
	f := c.newFlagSet("nsupdate", "--server HOST:PORT --zone ZONE --name NAME[,NAME] --tsig-key FILE [flags]", `
Keep DNS names in an existing primary server (BIND) pointing at the
least-loaded machines with RFC 2136 dynamic updates signed with TSIG.

This joins the cluster as a collector (it is never a candidate itself) and
whenever the best --top machines change, sends one UPDATE per name that
deletes the name's A and AAAA records and adds the new ones atomically.
Small score changes never churn the zone (--margin), an empty-looking
cluster never blanks the name (--fallback keep), and every --resync the
records are read back from the server and repaired if someone or something
changed them.

Several updaters may run for one name: the live one with the lowest
--node-name writes, the others wait and take over when it leaves or dies.

The server must allow the key to update the names, e.g. in named.conf:

    zone "example.edu" { type primary; file "db.example.edu";
        update-policy { grant peerload-update name cslab.example.edu. A AAAA; }; };

Signals: HUP re-reads --join-file, --keyring and --tsig-key; INT and TERM leave the
cluster gracefully and exit (the records stay as they are).

Environment: GOMAXPROCS=1 and GOGC=50 unless set, as for peerload agent.

Example:

    tsig-keygen -a hmac-sha256 peerload-update > /etc/peerload/update.key
    peerload nsupdate --server ns1.example.edu:53 --zone example.edu \
        --name cslab.example.edu --top 2 --tsig-key /etc/peerload/update.key \
        --join lab01:7946,lab02:7946`)
	nf := addNsupdateFlags(f)
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	spec, cfg, ucfg, err := nf.config()
	if err != nil {
		return err
	}
	apiAddr, err := nf.gossip.apiAddr()
	if err != nil {
		return err
	}
	level, _ := parseLogLevel(nf.logLevel)
	logger := newLogger(c.stderr, level, cfg.Name)
	if nf.gossip.StateDir != "" {
		logger.Warn("--state-dir is ignored: an updater keeps no state (the flag is accepted for compatibility with release 0.1.0)", "state-dir", nf.gossip.StateDir)
	}
	cfg.Logger = logger
	reg := newRegistry()
	cfg.Registerer = reg
	ucfg.Logger = logger.With("from", "rfc2136")
	ucfg.Registerer = reg
	u, err := rfc2136.New(ucfg)
	if err != nil {
		return err
	}
	m := &daemon{
		cfg: cfg, apiAddr: apiAddr, apiPublic: nf.gossip.APIPublic, logger: logger, reg: reg, signals: c.signals,
		started: func(a *agent.Agent, api net.Addr) string {
			return fmt.Sprintf("nsupdate %s: gossip on %s, API on http://%s, updating %v in %s at %s",
				cfg.Name, a.GossipAddr(), api, ucfg.Names, ucfg.Zone, ucfg.Server)
		},
		reload: func(a *agent.Agent) error {
			_, newCfg, newU, err := nf.config()
			if err != nil {
				return err
			}
			newCfg.Logger, newCfg.Registerer = logger, reg
			u.SetKey(newU.Key) // a rotated --tsig-key file
			// The flags are those of the start, so the restart settings
			// are too: the member takes the re-read files in place.
			return collector.Adopt(a, spec, newCfg)
		},
		work: func(ctx context.Context, a *agent.Agent) error { return u.Run(ctx, a) },
	}
	return m.run()
}
