package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/gossip"
)

// defaultAPI is where the local API listens and where client subcommands
// look for it (PeerMon's client port).
const defaultAPI = "127.0.0.1:1981"

// flagError is a flag value that does not parse. The CLI prints it as one
// line naming the flag and exits 2, like the flag package does for syntax.
type flagError struct {
	Flag  string
	Value string
	Err   error
}

func (e *flagError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %v", dashed(e.Flag), e.Err)
	}
	return fmt.Sprintf("%s %q: %v", dashed(e.Flag), e.Value, e.Err)
}

// configFlags names the flag behind each agent.Config field, so a rule the
// library enforces is reported as the flag the user typed.
var configFlags = map[string]string{
	"Name": "name", "BindAddr": "bind", "BindPort": "bind", "Allow": "allow", "Addr4": "advertise",
	"Addr6": "advertise", "Pools": "pool", "Label": "label", "Interval": "interval",
	"RefreshInterval": "refresh", "StaleAfter": "stale-after", "ForgetAfter": "profile",
	"Checks.SSHPort": "ssh-port", "Checks.CommandTimeout": "check-timeout", "Score.By": "by",
	"Score.CPUWeight": "weight-cpu", "Score.MemWeight": "weight-mem", "Score.UserWeight": "weight-users",
	"Score.Delta": "delta",
}

// validate checks cfg with the library's rules and names the flag at
// fault; rename maps a flag to the name a subcommand gives it.
func validate(cfg *agent.Config, rename map[string]string) error {
	err := cfg.Validate()
	var fe *agent.FieldError
	if !errors.As(err, &fe) {
		return err
	}
	name, ok := configFlags[fe.Field]
	if !ok {
		return err
	}
	if r, ok := rename[name]; ok {
		name = r
	}
	return &flagError{Flag: name, Err: fe.Err}
}

func (e *flagError) Unwrap() error { return e.Err }

func badFlag(name, value string, format string, args ...any) error {
	return &flagError{Flag: name, Value: value, Err: fmt.Errorf(format, args...)}
}

// gossipFlags are the flags of every subcommand that joins the cluster as a
// member (`agent`, `nsupdate`): identity, gossip transport and security,
// where state lives and where the local API listens. Register them with
// addGossipFlags, parse the FlagSet, then apply them to a Config.
type gossipFlags struct {
	Name      string
	Bind      string
	Advertise string
	Join      string
	JoinFile  string
	Keyring   string
	Label     string
	Allow     string
	StateDir  string
	API       string
	APIPublic bool
	Proc      string
	Profile   string
}

// addGossipFlags registers the gossip flags on fs with the defaults of
// agent.DefaultConfig.
func addGossipFlags(fs *flag.FlagSet) *gossipFlags {
	def := agent.DefaultConfig()
	g := &gossipFlags{}
	fs.StringVar(&g.Name, "name", def.Name, "unique `NAME` of this member in the cluster (default: the host name)")
	fs.StringVar(&g.Bind, "bind", net.JoinHostPort(def.BindAddr, strconv.Itoa(def.BindPort)), "gossip listen `ADDR:PORT` (UDP and TCP)")
	fs.StringVar(&g.Advertise, "advertise", "", "`IP[,IPv6]` that DNS hands out for this node (default: the gossip address)")
	fs.StringVar(&g.Join, "join", "", "members to join, `HOST:PORT,...` (retried until one answers)")
	fs.StringVar(&g.JoinFile, "join-file", "", "`FILE` with more members to join, one host:port a line, '#' comments (re-read on HUP)")
	fs.StringVar(&g.Keyring, "keyring", "", "gossip encryption keyring `FILE` (see `peerload keygen`; re-read on HUP)")
	fs.StringVar(&g.Label, "label", "", "cluster `LABEL`: members with another label are ignored")
	fs.StringVar(&g.Allow, "allow", "", "accept gossip only from these networks, `CIDR,...`")
	fs.StringVar(&g.StateDir, "state-dir", def.StateDir, "`DIR` for the drain flag and report generation (empty: memory only)")
	fs.StringVar(&g.API, "api", defaultAPI, "listen `ADDR:PORT` of the local read-only HTTP API (JSON, /metrics, the status page)")
	fs.BoolVar(&g.APIPublic, "api-public", false, "allow --api on a non-loopback address")
	fs.StringVar(&g.Proc, "proc", def.ProcRoot, "proc file system `DIR` to sample")
	fs.StringVar(&g.Profile, "profile", agent.ProfileLAN, "timing `PROFILE`: lan (a real network) or local (one machine: demos, tests)")
	return g
}

// apply validates the flags and writes them into cfg. A value that does not
// parse is a *flagError (exit 2); a file that cannot be read is a plain
// error naming the file (exit 1).
func (g *gossipFlags) apply(cfg *agent.Config) error {
	if err := cfg.SetProfile(g.Profile); err != nil {
		return &flagError{Flag: "profile", Value: g.Profile, Err: err}
	}
	cfg.Name = g.Name

	host, port, err := parseHostPort(g.Bind)
	if err != nil {
		return &flagError{Flag: "bind", Value: g.Bind, Err: err}
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return badFlag("bind", g.Bind, "%q is not an IP address", host)
	}
	cfg.BindAddr, cfg.BindPort = host, port

	cfg.Addr4, cfg.Addr6 = netip.Addr{}, netip.Addr{}
	for _, s := range splitList(g.Advertise) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return badFlag("advertise", g.Advertise, "%q is not an IP address", s)
		}
		ip = ip.Unmap()
		switch {
		case ip.Is4() && cfg.Addr4.IsValid(), ip.Is6() && cfg.Addr6.IsValid():
			return badFlag("advertise", g.Advertise, "at most one IPv4 and one IPv6 address")
		case ip.Is4():
			cfg.Addr4 = ip
		default:
			cfg.Addr6 = ip
		}
	}

	cfg.Join = nil
	for _, s := range splitList(g.Join) {
		if _, _, err := parseHostPort(s); err != nil {
			return &flagError{Flag: "join", Value: g.Join, Err: err}
		}
		cfg.Join = append(cfg.Join, s)
	}

	if g.JoinFile != "" {
		if err := readable(g.JoinFile); err != nil {
			return fmt.Errorf("--join-file: %w", err)
		}
	}
	cfg.JoinFile = g.JoinFile
	if g.Keyring != "" {
		if _, err := gossip.ReadKeyring(g.Keyring); err != nil {
			return fmt.Errorf("--keyring: %w", err)
		}
	}
	cfg.KeyringFile = g.Keyring

	cfg.Label = g.Label

	cfg.Allow = nil
	for _, s := range splitList(g.Allow) {
		p, err := parsePrefix(s)
		if err != nil {
			return &flagError{Flag: "allow", Value: g.Allow, Err: err}
		}
		cfg.Allow = append(cfg.Allow, p)
	}

	cfg.StateDir = g.StateDir
	cfg.ProcRoot = g.Proc

	if _, err := g.apiAddr(); err != nil {
		return err
	}
	return nil
}

// apiAddr returns the validated --api address. A non-loopback address
// needs --api-public: the API is unauthenticated and can drain the node
// (drain is refused from non-loopback peers, but reading is not).
func (g *gossipFlags) apiAddr() (string, error) {
	host, _, err := parseHostPort(g.API)
	if err != nil {
		return "", &flagError{Flag: "api", Value: g.API, Err: err}
	}
	if host == "localhost" {
		return g.API, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "", badFlag("api", g.API, "%q is not an IP address", host)
	}
	if !ip.IsLoopback() && !g.APIPublic {
		return "", badFlag("api", g.API, "not a loopback address; add --api-public to serve the API on the network")
	}
	return g.API, nil
}

// parseHostPort splits host:port and checks the port is a number 0..65535.
func parseHostPort(s string) (string, int, error) {
	if s == "" {
		return "", 0, errors.New("empty address")
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return "", 0, errors.New(ae.Err)
		}
		return "", 0, err
	}
	if host == "" {
		return "", 0, errors.New("missing host")
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portStr)
	}
	return host, port, nil
}

// parsePrefix accepts a CIDR or a bare IP (a host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or IP address", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// readable checks that a file exists and can be opened, so a typo in a
// path fails at start naming the file rather than deep inside the agent.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}
