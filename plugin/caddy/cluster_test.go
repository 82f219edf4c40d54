package peerload

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	_ "github.com/caddyserver/caddy/v2/modules/filestorage"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
)

// These tests run Caddy in the test process (caddy.Load, as `caddy run`
// and `caddy reload` do) with both modules, against an in-process
// cluster, and watch the members.

// caddyConfig is a Caddy JSON configuration: one HTTP server on
// 127.0.0.1:port proxying with dynamic peerload and lb_policy peerload,
// both with the member settings member (and top on the policy).
func caddyConfig(t *testing.T, port int, member map[string]any, top int) []byte {
	t.Helper()
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range member {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "ERROR"}}},
		"storage": map[string]any{"module": "file_system", "root": t.TempDir()},
		"apps": map[string]any{"http": map[string]any{"servers": map[string]any{"s": map[string]any{
			"listen":          []string{fmt.Sprintf("127.0.0.1:%d", port)},
			"automatic_https": map[string]any{"disable": true},
			"routes": []any{map[string]any{"handle": []any{map[string]any{
				"handler":           "reverse_proxy",
				"dynamic_upstreams": with(map[string]any{"source": "peerload", "port": 8888}),
				"load_balancing":    map[string]any{"selection_policy": with(map[string]any{"policy": "peerload", "top": top})},
			}}}},
		}}}},
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// running is the agent running on bind and how many modules hold its
// member.
func running(bind string) (*agent.Agent, int) { return members.Running(bind) }

func TestReloadKeepsOrHandsOverTheMember(t *testing.T) {
	agents, _ := agenttest.Cluster(t, 2, nil)
	t.Cleanup(func() { _ = caddy.Stop() })
	bind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
	member := map[string]any{"bind": bind, "join": []string{agents[0].GossipAddr()}, "profile": "local", "name": "front"}
	http := agenttest.FreeLoopbackPort(t)

	if err := caddy.Load(caddyConfig(t, http, member, 1), true); err != nil {
		t.Fatal(err)
	}
	a1, refs := running(bind)
	if a1 == nil || refs != 2 {
		t.Fatalf("after the first load: agent %v, %d references; want one agent held by both modules", a1, refs)
	}
	agenttest.WaitFor(t, 15*time.Second, "the member hears both machines", func() (bool, string) {
		return len(agenttest.Candidates(a1)) == 2, agenttest.Describe(a1)
	})

	// A reload that changes the policy and the join list keeps the member
	// (and its port, membership and reports).
	member["join"] = []string{agents[0].GossipAddr(), agents[1].GossipAddr()}
	if err := caddy.Load(caddyConfig(t, http, member, 2), true); err != nil {
		t.Fatal(err)
	}
	a2, refs := running(bind)
	if a2 != a1 || refs != 2 {
		t.Fatalf("after a reload with the same member settings: agent %p refs %d; want the same agent %p, 2 refs", a2, refs, a1)
	}
	if len(agenttest.Candidates(a1)) != 2 {
		t.Fatalf("the kept member lost its reports: %s", agenttest.Describe(a1))
	}

	// A reload that changes what a running agent cannot take starts a new
	// member on the same port once the old configuration let go.
	member["stale"] = "30s"
	if err := caddy.Load(caddyConfig(t, http, member, 2), true); err != nil {
		t.Fatal(err)
	}
	a3, refs := running(bind)
	if a3 == nil || a3 == a1 || refs != 2 {
		t.Fatalf("after a reload with a new stale: agent %p refs %d; want a new agent", a3, refs)
	}
	if a1.Ready() {
		t.Fatal("the old agent still runs")
	}
	agenttest.WaitFor(t, 15*time.Second, "the new member hears both machines", func() (bool, string) {
		return len(agenttest.Candidates(a3)) == 2, agenttest.Describe(a3)
	})

	// Stopping Caddy stops the member and frees the port.
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if a, n := running(bind); a != nil || n != 0 {
		t.Fatal("a member still runs after caddy stopped")
	}
	if a3.Ready() {
		t.Fatal("the agent still runs after caddy stopped")
	}
	l, err := net.Listen("tcp", bind)
	if err != nil {
		t.Fatalf("the member's port is not free after caddy stopped: %v", err)
	}
	l.Close()
}

// `caddy validate` provisions the modules but starts no member: it binds
// no port (here one that is taken, as by a running Caddy) and joins
// nothing.
func TestValidateStartsNoMember(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	bind := taken.Addr().String()
	member := map[string]any{"bind": bind, "join": []string{"127.0.0.1:1"}, "profile": "local"}
	var cfg *caddy.Config
	if err := json.Unmarshal(caddyConfig(t, agenttest.FreeLoopbackPort(t), member, 1), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(cfg); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if a, n := running(bind); a != nil || n != 0 {
		t.Fatalf("validate left agent %v and %d holds on the member, want none", a, n)
	}
}

// Modules of one configuration on one bind address share a member, so
// they must give it the same settings.
func TestConflictingMemberSettings(t *testing.T) {
	bind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
	cfg := caddyConfig(t, agenttest.FreeLoopbackPort(t), map[string]any{"bind": bind, "profile": "local"}, 1)
	// The policy joins somewhere, the upstream source does not.
	bad := strings.Replace(string(cfg), `"policy":"peerload"`, `"policy":"peerload","join":["127.0.0.1:1"]`, 1)
	var c *caddy.Config
	if err := json.Unmarshal([]byte(bad), &c); err != nil {
		t.Fatal(err)
	}
	err := caddy.Validate(c)
	if err == nil || !strings.Contains(err.Error(), "bind "+bind+": join differs from another peerload module") {
		t.Fatalf("validate = %v, want the join conflict named", err)
	}
}

// TestReloadRestartsOnTheRestartSettings loads pairs of configurations
// whose member settings differ in one property, as `caddy reload` does:
// the member restarts for exactly the settings collector.RestartSettings
// names, as in the CoreDNS plugin and nsupdate, and keeps running (port,
// membership, reports) for the others. The modules have no join file and
// no updater roles.
func TestReloadRestartsOnTheRestartSettings(t *testing.T) {
	t.Cleanup(func() { _ = caddy.Stop() })
	k1, k2 := agenttest.Keyring(t, "k1"), agenttest.Keyring(t, "k2")
	otherBind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
	for _, tc := range []struct {
		setting   string
		old, next map[string]any
		restarts  bool
	}{
		{"bind", nil, map[string]any{"bind": otherBind}, true},
		{"name", map[string]any{"name": "front-a"}, map[string]any{"name": "front-b"}, true},
		{"join", map[string]any{"join": []string{"127.0.0.1:1"}}, map[string]any{"join": []string{"127.0.0.1:2"}}, false},
		{"keyring rotated", map[string]any{"keyring": k1}, map[string]any{"keyring": k2}, false},
		{"keyring off", map[string]any{"keyring": k1}, nil, true},
		{"label", map[string]any{"label": "red"}, map[string]any{"label": "blue"}, true},
		{"allow", map[string]any{"allow": []string{"127.0.0.0/8"}}, map[string]any{"allow": []string{"127.0.0.1/32"}}, true},
		{"stale", map[string]any{"stale": "10s"}, map[string]any{"stale": "20s"}, true},
		{"profile", nil, map[string]any{"profile": "lan"}, true},
	} {
		t.Run(tc.setting, func(t *testing.T) {
			bind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
			http := agenttest.FreeLoopbackPort(t)
			load := func(props map[string]any) *agent.Agent {
				t.Helper()
				member := map[string]any{"bind": bind, "profile": "local"}
				for k, v := range props {
					member[k] = v
				}
				if err := caddy.Load(caddyConfig(t, http, member, 1), true); err != nil {
					t.Fatal(err)
				}
				a, _ := running(member["bind"].(string))
				return a
			}
			oldAgent := load(tc.old)
			a := load(tc.next)
			if a == nil {
				t.Fatal("no member after the reload")
			}
			if restarted := a != oldAgent; restarted != tc.restarts {
				t.Fatalf("member restarted: %v, want %v", restarted, tc.restarts)
			}
			if tc.restarts {
				if _, err := oldAgent.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
					t.Errorf("old agent still running (join error %v)", err)
				}
			}
			if err := caddy.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
