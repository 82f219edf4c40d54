package agent

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CollectorSpec is what an integration (the CoreDNS plugin, the Caddy
// modules) says of the collector-only member it runs: the settings its
// users write in a Corefile or Caddyfile.
type CollectorSpec struct {
	Name    string // member name; "" for KIND-<hostname>[-port]
	Bind    string // IP:port to gossip on
	Join    []string
	Keyring string // keyring file
	Label   string
	Allow   []netip.Prefix
	Stale   time.Duration // optional cap on report age (0: the reports' own lifetime)
	Profile string        // timing profile ("": lan)
	// Roles are updater roles, in node meta, so that several servers
	// elect one writer per name.
	Roles []string
}

// CollectorConfig turns spec into an agent configuration: a collector
// (never a candidate itself; no state directory, no checks) with the
// spec's timing profile. kind names the integration in a default member
// name, "kind-<hostname>", with the port appended when it is not
// defaultPort so that several members of one host differ. Errors name the
// setting at fault as it is written in spec (bind, profile).
func CollectorConfig(spec CollectorSpec, kind string, defaultPort int) (*Config, error) {
	host, portStr, err := net.SplitHostPort(spec.Bind)
	if err != nil {
		return nil, fmt.Errorf("bind: '%s' is not IP:port", spec.Bind)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bind: '%s': bad port '%s'", spec.Bind, portStr)
	}
	cfg := DefaultConfig()
	if spec.Profile != "" {
		if err := cfg.SetProfile(spec.Profile); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	cfg.Name = spec.Name
	if cfg.Name == "" {
		cfg.Name = defaultCollectorName(kind, port, defaultPort)
	}
	cfg.BindAddr = host
	cfg.BindPort = port
	cfg.Collector = true
	cfg.StateDir = ""
	cfg.Checks.SSHPort = 0
	cfg.Join = slices.Clone(spec.Join)
	cfg.KeyringFile = spec.Keyring
	cfg.Label = spec.Label
	cfg.Allow = slices.Clone(spec.Allow)
	cfg.Roles = slices.Clone(spec.Roles)
	if spec.Stale > 0 {
		cfg.StaleAfter = spec.Stale
	}
	return cfg, nil
}

// defaultCollectorName is "kind-<short hostname>", with "-port" appended
// when port is not defaultPort.
func defaultCollectorName(kind string, port, defaultPort int) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	name := kind + "-" + host
	if port != defaultPort {
		name += "-" + strconv.Itoa(port)
	}
	return name
}
