package peerload

import (
	"fmt"
	stdlog "log"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent"
)

// member is one running cluster member (a collector agent), shared by every
// peerload block with the same bind address, in this and the next Corefile
// instance: on a reload the new instance's OnStartup runs before the old
// instance's OnShutdown, so the reference count never drops to zero and the
// member keeps its port, its membership and its reports.
type member struct {
	spec  memberSpec
	agent *agent.Agent
	refs  int
}

// members is the process-wide registry of members keyed by bind address.
var members = struct {
	sync.Mutex
	m map[string]*member
}{m: map[string]*member{}}

// newAgent creates a member's agent; tests replace it.
var newAgent = agent.New

// acquireMember returns the member for spec.Bind, starting it when it is
// not running yet. Settings that differ from the running member's are
// applied where the agent allows it (join, keyring) and logged otherwise.
func acquireMember(spec memberSpec) (*member, error) {
	members.Lock()
	defer members.Unlock()
	if m, ok := members.m[spec.Bind]; ok {
		m.refs++
		m.adopt(spec)
		return m, nil
	}
	cfg, err := agentConfig(spec)
	if err != nil {
		return nil, err
	}
	a, err := newAgent(cfg)
	if err != nil {
		return nil, fmt.Errorf("start cluster member on %s: %w", spec.Bind, err)
	}
	m := &member{spec: spec, agent: a, refs: 1}
	members.m[spec.Bind] = m
	return m, nil
}

// releaseMember drops one reference; the last one leaves the cluster
// gracefully and shuts the agent down.
func releaseMember(m *member) error {
	members.Lock()
	defer members.Unlock()
	m.refs--
	if m.refs > 0 {
		return nil
	}
	if members.m[m.spec.Bind] == m {
		delete(members.m, m.spec.Bind)
	}
	leaveErr := m.agent.Leave(leaveTimeout)
	if err := m.agent.Shutdown(); err != nil {
		return fmt.Errorf("shut down cluster member on %s: %w", m.spec.Bind, err)
	}
	if leaveErr != nil {
		return fmt.Errorf("leave cluster (member on %s): %w", m.spec.Bind, leaveErr)
	}
	return nil
}

// adopt applies a changed configuration (a reload) to the running member as
// far as that is possible without a restart. Called with members locked.
func (m *member) adopt(spec memberSpec) {
	if !slices.Equal(spec.Join, m.spec.Join) {
		var added []string
		for _, j := range spec.Join {
			if !slices.Contains(m.spec.Join, j) {
				added = append(added, j)
			}
		}
		m.spec.Join = spec.Join
		if len(added) > 0 {
			a := m.agent
			go func() {
				if _, err := a.Join(added); err != nil {
					log.Warningf("join %s: %v", strings.Join(added, " "), err)
				}
			}()
		}
	}
	if spec.Keyring != m.spec.Keyring {
		cfg, err := agentConfig(spec)
		if err == nil {
			err = m.agent.Reload(cfg)
		}
		if err != nil {
			log.Errorf("reload keyring %s: %v", spec.Keyring, err)
		} else {
			m.spec.Keyring = spec.Keyring
		}
	}
	var fixed []string
	if spec.Name != m.spec.Name {
		fixed = append(fixed, "name")
	}
	if spec.Label != m.spec.Label {
		fixed = append(fixed, "label")
	}
	if !slices.Equal(spec.Allow, m.spec.Allow) {
		fixed = append(fixed, "allow")
	}
	if spec.Stale != m.spec.Stale {
		fixed = append(fixed, "stale")
	}
	if !slices.Equal(spec.Roles, m.spec.Roles) {
		fixed = append(fixed, "update roles")
	}
	if len(fixed) > 0 {
		log.Warningf("cluster member on %s keeps running with its old %s; restart CoreDNS to apply the change",
			spec.Bind, strings.Join(fixed, ", "))
	}
}

// agentConfig turns a member spec into an agent configuration: a collector
// (never a candidate itself) with LAN timings, or loopback timings when it
// binds a loopback address (demos and tests).
func agentConfig(spec memberSpec) (*agent.Config, error) {
	host, portStr, err := net.SplitHostPort(spec.Bind)
	if err != nil {
		return nil, fmt.Errorf("bind %q: %w", spec.Bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("bind %q: bad port", spec.Bind)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("bind %q: %w", spec.Bind, err)
	}
	cfg := agent.DefaultConfig()
	if ip.IsLoopback() {
		cfg = agent.DefaultLocalConfig()
	}
	cfg.Name = spec.Name
	if cfg.Name == "" {
		cfg.Name = defaultMemberName(port)
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
	cfg.Logger = stdlog.New(clogWriter{}, "", 0)
	// The member's own gossip metrics appear on CoreDNS's /metrics too,
	// labelled with the bind address (the agent unregisters them on
	// shutdown, so a restarted member can register again).
	cfg.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"member": spec.Bind}, prometheus.DefaultRegisterer)
	return cfg, nil
}

// defaultMemberName is "coredns-<hostname>", with the port appended when it
// is not the default one so that several members of one host differ.
func defaultMemberName(port int) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	if i := strings.IndexByte(host, '.'); i > 0 {
		host = host[:i]
	}
	name := "coredns-" + host
	if _, p, _ := net.SplitHostPort(defaultBind); p != strconv.Itoa(port) {
		name += "-" + strconv.Itoa(port)
	}
	return name
}

// clogWriter sends the agent's and memberlist's log lines to CoreDNS's log
// at the level their "[DEBUG]", "[WARN]", "[ERR]" tags say.
type clogWriter struct{}

func (clogWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		level, msg := "", line
		if strings.HasPrefix(line, "[") {
			if i := strings.IndexByte(line, ']'); i > 0 {
				level, msg = line[1:i], strings.TrimSpace(line[i+1:])
			}
		}
		switch level {
		case "DEBUG", "TRACE":
			log.Debug(msg)
		case "WARN", "WARNING":
			log.Warning(msg)
		case "ERR", "ERROR":
			log.Error(msg)
		case "INFO":
			log.Info(msg)
		default:
			log.Info(line)
		}
	}
	return len(p), nil
}
