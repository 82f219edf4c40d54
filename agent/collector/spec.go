// Package collector starts and shares the collector-only cluster members
// of the front ends that answer users (the CoreDNS plugin, the Caddy
// modules, `peerload nsupdate`): one way from their settings to an agent
// configuration, one rule for which changed settings need a restart, and
// one reference-counted registry that keeps a member running across a
// front end's configuration reloads.
package collector

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/agent"
)

// Spec is what a front end says of the collector-only member it runs: the
// settings its users write in a Corefile, a Caddyfile or on the command
// line.
type Spec struct {
	Name     string // member name; "" for KIND-<hostname>[-port]
	Bind     string // IP:port to gossip on
	Join     []string
	JoinFile string // more members to join, one host:port a line
	Keyring  string // keyring file
	Label    string
	Allow    []netip.Prefix
	Stale    time.Duration // optional cap on report age (0: the reports' own lifetime)
	Profile  string        // timing profile ("": lan)
	// Roles are updater roles, in node meta, so that several servers
	// elect one writer per name.
	Roles []string
}

// Config turns spec into an agent configuration: a collector (never a
// candidate itself; no state directory, no checks) with the spec's timing
// profile. kind names the front end in a default member name,
// "kind-<hostname>", with the port appended when it is not defaultPort so
// that several members of one host differ. Errors name the setting at
// fault as it is written in spec (bind, profile).
func Config(spec Spec, kind string, defaultPort int) (*agent.Config, error) {
	host, portStr, err := net.SplitHostPort(spec.Bind)
	if err != nil {
		return nil, fmt.Errorf("bind: '%s' is not IP:port", spec.Bind)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bind: '%s': bad port '%s'", spec.Bind, portStr)
	}
	cfg := agent.DefaultConfig()
	if spec.Profile != "" {
		if err := cfg.SetProfile(spec.Profile); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	cfg.Name = spec.Name
	if cfg.Name == "" {
		cfg.Name = defaultName(kind, port, defaultPort)
	}
	cfg.BindAddr = host
	cfg.BindPort = port
	cfg.Collector = true
	cfg.StateDir = ""
	cfg.Checks.SSHPort = 0
	cfg.Join = slices.Clone(spec.Join)
	cfg.JoinFile = spec.JoinFile
	cfg.KeyringFile = spec.Keyring
	cfg.Label = spec.Label
	cfg.Allow = slices.Clone(spec.Allow)
	cfg.Roles = slices.Clone(spec.Roles)
	if spec.Stale > 0 {
		cfg.StaleAfter = spec.Stale
	}
	return cfg, nil
}

// settingOf names the spec setting behind each agent.Config field Config
// sets, so that the agent library's rules are reported by setting.
var settingOf = map[string]string{
	"Name": "name", "BindAddr": "bind", "BindPort": "bind", "Allow": "allow", "Label": "label", "StaleAfter": "stale",
}

// Check applies the agent library's rules to the member spec describes
// (such as the bind address inside the allow list) and reports the first
// broken one as "setting: reason", by the setting's name in spec. It does
// not read the keyring (see CheckKeyring).
func Check(spec Spec, kind string, defaultPort int) error {
	cfg, err := Config(spec, kind, defaultPort)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		var fe *agent.FieldError
		if errors.As(err, &fe) && settingOf[fe.Field] != "" {
			return fmt.Errorf("%s: %w", settingOf[fe.Field], fe.Err)
		}
		return err
	}
	return nil
}

// defaultName is "kind-<short hostname>", with "-port" appended when port
// is not defaultPort.
func defaultName(kind string, port, defaultPort int) string {
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
