package peerload

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/rank"
)

func TestUnmarshalSelection(t *testing.T) {
	tests := []struct {
		input       string
		errContains string // "" for no error
	}{
		{`peerload`, ""},
		{`peerload {
			top 2
			pool web
			by cpu
			fallback all
			name caddy-front
			bind 127.0.0.1:7999
			join 10.0.0.1:7946 lab02.example.edu:7946
			join 10.0.0.3:7946
			keyring /etc/peerload/keyring
			label cslab
			allow 127.0.0.0/8
			allow 10.0.0.0/24
			profile local
			stale 30s
		}`, ""},
		{`peerload extra`, "unexpected argument 'extra'"},
		{`peerload {
			top
		}`, "top: want one value, got 0"},
		{`peerload {
			top 0
		}`, "top: 0 out of range 1..64"},
		{`peerload {
			top 65
		}`, "top: 65 out of range 1..64"},
		{`peerload {
			top x
		}`, "top: 'x' is not a number"},
		{`peerload {
			top 1 2
		}`, "top: want one value, got 2"},
		{`peerload {
			top 1
			top 2
		}`, "top given twice"},
		{`peerload {
			pool web_gpu
		}`, "pool: pool \"web_gpu\" is not a DNS label"},
		{`peerload {
			by load
		}`, "by: unknown ranking \"load\""},
		{`peerload {
			fallback random
		}`, "fallback: unknown fallback \"random\""},
		{`peerload {
			name bad_name
		}`, "name: name \"bad_name\" is not a host name"},
		{`peerload {
			bind 127.0.0.1
		}`, "bind: '127.0.0.1' is not IP:port"},
		{`peerload {
			bind lab01:7948
		}`, "bind: 'lab01:7948' is not IP:port"},
		{`peerload {
			join
		}`, "join: at least one host:port is required"},
		{`peerload {
			join 10.0.0.1
		}`, "join: '10.0.0.1' is not host:port"},
		{`peerload {
			join 10.0.0.1:0
		}`, "join: '10.0.0.1:0': bad port '0'"},
		{`peerload {
			keyring
		}`, "keyring: want one value, got 0"},
		{`peerload {
			label
		}`, "label: want one value, got 0"},
		{"peerload {\n\tlabel " + strings.Repeat("x", 256) + "\n}", "label: longer than 255 bytes"},
		{`peerload {
			allow 10.0.0.0
		}`, "allow: '10.0.0.0' is not a CIDR prefix"},
		{`peerload {
			bind 127.0.0.1:7999
			allow 10.0.0.0/8
		}`, "allow: this member's own address 127.0.0.1 is outside the allow list"},
		{`peerload {
			profile fast
		}`, "profile: unknown timing profile \"fast\""},
		{`peerload {
			stale soon
		}`, "stale: invalid duration 'soon'"},
		{`peerload {
			stale -1s
		}`, "stale: duration must be positive, got '-1s'"},
		{`peerload {
			port 8888
		}`, "unrecognized subdirective 'port'"},
		{`peerload {
			wieght 3
		}`, "unrecognized subdirective 'wieght'"},
	}
	for _, tc := range tests {
		s := new(Selection)
		err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		checkErr(t, tc.input, err, tc.errContains)
	}
}

func TestUnmarshalUpstreams(t *testing.T) {
	tests := []struct {
		input       string
		errContains string
	}{
		{`peerload {
			port 8888
			top 5
		}`, ""},
		{`peerload`, "port: the service port on the machines is required"},
		{`peerload {
			port 0
		}`, "port: 0 out of range 1..65535"},
		{`peerload {
			port http
		}`, "port: 'http' is not a number"},
		{`peerload {
			port 80
			port 81
		}`, "port given twice"},
		{`peerload {
			port 80
			top 99
		}`, "top: 99 out of range 1..64"},
		{`peerload {
			port 80
			refresh 1m
		}`, "unrecognized subdirective 'refresh'"},
	}
	for _, tc := range tests {
		u := new(Upstreams)
		err := u.UnmarshalCaddyfile(caddyfile.NewTestDispenser(tc.input))
		checkErr(t, tc.input, err, tc.errContains)
	}
}

func checkErr(t *testing.T, input string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%q: unexpected error: %v", input, err)
	case want != "" && err == nil:
		t.Errorf("%q: no error, want one containing %q", input, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("%q: error %q does not contain %q", input, err, want)
	case err != nil && strings.Contains(err.Error(), "\n"):
		t.Errorf("%q: error is not one line: %q", input, err)
	case err != nil && !strings.Contains(err.Error(), "Testfile:"):
		t.Errorf("%q: error %q does not name the line", input, err)
	}
}

// The parsed settings end up in the module's JSON fields, and become
// the policy and the member every integration uses.
func TestUnmarshalSettings(t *testing.T) {
	s := new(Selection)
	err := s.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`peerload {
		top 2
		pool web
		by mem
		fallback none
		herd off
		bind 127.0.0.1:7999
		join 10.0.0.1:7946
		join 10.0.0.2:7946
		allow 127.0.0.0/8 10.0.0.0/8
		profile local
		stale 1m
	}`))
	if err != nil {
		t.Fatal(err)
	}
	if p := s.rankPolicy(defaultSelectionTop); p != (rank.Policy{Pool: "web", By: rank.ByMem, Top: 2, Fallback: rank.FallbackNone}) {
		t.Errorf("policy = %+v", p)
	}
	spec := s.spec()
	if spec.Bind != "127.0.0.1:7999" || !slices.Equal(spec.Join, []string{"10.0.0.1:7946", "10.0.0.2:7946"}) ||
		len(spec.Allow) != 2 || spec.Profile != "local" || spec.Stale != time.Minute {
		t.Errorf("member spec = %+v", spec)
	}
	cfg, err := collector.Config(spec, "caddy", defaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Collector || cfg.BindPort != 7999 || cfg.StaleAfter != time.Minute || cfg.Interval != 250*time.Millisecond {
		t.Errorf("agent config: collector %v, port %d, stale %s, interval %s", cfg.Collector, cfg.BindPort, cfg.StaleAfter, cfg.Interval)
	}

	// Defaults: the best machine, the LAN profile, port 7948.
	d := new(Selection)
	if err := d.UnmarshalCaddyfile(caddyfile.NewTestDispenser(`peerload`)); err != nil {
		t.Fatal(err)
	}
	if p := d.rankPolicy(defaultSelectionTop); p.Top != 1 || p.Fallback != rank.FallbackKeep || p.By != rank.ByCombined {
		t.Errorf("default policy = %+v", p)
	}
	cfg, err = collector.Config(d.spec(), "caddy", defaultPort)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BindAddr != "0.0.0.0" || cfg.BindPort != 7948 || !strings.HasPrefix(cfg.Name, "caddy-") || cfg.Interval != 2*time.Second {
		t.Errorf("default agent config: %s:%d name %s interval %s", cfg.BindAddr, cfg.BindPort, cfg.Name, cfg.Interval)
	}
}

// A JSON configuration is checked by Validate with the same messages.
func TestValidateJSON(t *testing.T) {
	tests := []struct {
		c    Cluster
		want string
	}{
		{Cluster{Top: -1}, "top: -1 out of range"},
		{Cluster{By: "x"}, "by: unknown ranking"},
		{Cluster{Fallback: "x"}, "fallback: unknown fallback"},
		{Cluster{Pool: "a b"}, "pool: "},
		{Cluster{Bind: "nowhere"}, "bind: 'nowhere' is not IP:port"},
		{Cluster{Join: []string{"x"}}, "join: 'x' is not host:port"},
		{Cluster{Allow: []string{"x"}}, "allow: 'x' is not a CIDR prefix"},
		{Cluster{Profile: "x"}, "profile: unknown timing profile"},
		{Cluster{Stale: caddy.Duration(-time.Second)}, "stale: duration must be positive"},
		{Cluster{Name: "-x"}, "name: "},
	}
	for _, tc := range tests {
		s := &Selection{Cluster: tc.c}
		if err := s.Validate(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q...", tc.c, err, tc.want)
		}
	}
	if err := (&Upstreams{}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "port: ") {
		t.Errorf("Validate of an upstream source without port = %v", err)
	}

	// The keyring is read at provisioning: missing, a directory, bad.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("not base64!\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{filepath.Join(dir, "missing"), dir, bad} {
		if err := collector.CheckKeyring(k); err == nil || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Errorf("CheckKeyring(%s) = %v, want a keyring: error", k, err)
		}
	}
}
