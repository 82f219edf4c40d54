package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/collector"
)

func parseNsupdate(t *testing.T, args ...string) (*nsupdateFlags, error) {
	t.Helper()
	c := &cli{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	f := c.newFlagSet("nsupdate", "", "")
	nf := addNsupdateFlags(f)
	if _, err := f.parse(args); err != nil {
		return nil, err
	}
	return nf, nil
}

func TestNsupdateConfig(t *testing.T) {
	key := filepath.Join(t.TempDir(), "update.key")
	if err := os.WriteFile(key, []byte(`key "peerload-update" { algorithm hmac-sha256; secret "c2VjcmV0c2VjcmV0"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	nf, err := parseNsupdate(t, "--server", "127.0.0.1:5353", "--zone", "example.edu", "--name", "cslab.example.edu,gpu.example.edu",
		"--top", "2", "--ttl", "20", "--tsig-key", key, "--resync", "1m", "--node-name", "upd-a",
		"--bind", "127.0.0.1:0", "--join", "127.0.0.1:7946", "--fallback", "none")
	if err != nil {
		t.Fatal(err)
	}
	_, cfg, uc, err := nf.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "upd-a" || !cfg.Collector || cfg.BindAddr != "127.0.0.1" || !slices.Equal(cfg.Join, []string{"127.0.0.1:7946"}) {
		t.Fatalf("agent config %+v", cfg)
	}
	wantRoles := []string{"nsupdate:example.edu./cslab.example.edu.", "nsupdate:example.edu./gpu.example.edu."}
	if !slices.Equal(cfg.Roles, wantRoles) {
		t.Fatalf("roles %v, want %v", cfg.Roles, wantRoles)
	}
	if uc.Server != "127.0.0.1:5353" || uc.Top != 2 || uc.TTL != 20 || uc.Resync != time.Minute || uc.Key == nil ||
		uc.Key.Name != "peerload-update." || uc.Fallback != "none" || len(uc.Names) != 2 {
		t.Fatalf("updater config %+v", uc)
	}
}

func TestNsupdateConfigErrors(t *testing.T) {
	md5 := filepath.Join(t.TempDir(), "md5.key")
	if err := os.WriteFile(md5, []byte(`key "k" { algorithm hmac-md5; secret "c2VjcmV0"; };`), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--server", "127.0.0.1:53", "--zone", "example.edu", "--name", "cslab.example.edu", "--bind", "127.0.0.1:0"}
	tests := []struct {
		name   string
		args   []string
		errHas string
		usage  bool // exit 2
	}{
		{"no key", base, "--tsig-key FILE is required", true},
		{"no server", []string{"--zone", "example.edu", "--name", "x.example.edu", "--insecure-no-tsig"}, "--server", true},
		{"no name", []string{"--server", "127.0.0.1:53", "--zone", "example.edu", "--insecure-no-tsig"}, "--name", true},
		{"bad server", append(slices.Clone(base), "--insecure-no-tsig", "--server", "nowhere"), "--server", true},
		{"bad fallback", append(slices.Clone(base), "--insecure-no-tsig", "--fallback", "maybe"), "--fallback", true},
		{"bad top", append(slices.Clone(base), "--insecure-no-tsig", "--top", "0"), "--top", true},
		{"md5 refused", append(slices.Clone(base), "--tsig-key", md5), "hmac-md5", false},
		{"missing key file", append(slices.Clone(base), "--tsig-key", "/nonexistent/k.key"), "/nonexistent/k.key", false},
		{"key and insecure", append(slices.Clone(base), "--tsig-key", md5, "--insecure-no-tsig"), "exclude each other", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nf, err := parseNsupdate(t, tt.args...)
			if err == nil {
				_, _, _, err = nf.config()
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want %q", err, tt.errHas)
			}
			var ue *usageError
			var fe *flagError
			if isUsage := errors.As(err, &ue) || errors.As(err, &fe); isUsage != tt.usage {
				t.Fatalf("usage error = %v, want %v (%v)", isUsage, tt.usage, err)
			}
		})
	}
	nf, err := parseNsupdate(t, append(slices.Clone(base), "--tsig-key", md5, "--allow-md5")...)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := nf.config(); err != nil {
		t.Fatalf("md5 with --allow-md5: %v", err)
	}
}

// TestNsupdateRestartSettings: the member nsupdate makes from its flags
// goes through agent/collector like the CoreDNS plugin's and the Caddy
// modules', so a flag that changes between two runs changes exactly the
// setting the one restart rule names (or none, for what a running member
// takes in place), with the same names as in a Corefile or Caddyfile.
// nsupdate's flags are fixed for the life of the process; HUP re-reads
// the files (join file, keyring, TSIG key), which the member adopts in
// place. nsupdate has no stale setting.
func TestNsupdateRestartSettings(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1 := file("k1", "aGVsbG8gd29ybGQgMTIzNA==\n")
	k2 := file("k2", "d29ybGQgaGVsbG8gNDMyMQ==\n")
	j1, j2 := file("j1", "127.0.0.1:1\n"), file("j2", "127.0.0.1:2\n")
	base := []string{"--server", "127.0.0.1:53", "--zone", "example.edu", "--name", "cslab.example.edu", "--insecure-no-tsig",
		"--bind", "127.0.0.1:7945", "--node-name", "upd-a", "--profile", "local"}
	for _, tc := range []struct {
		old, next []string
		want      string // what collector.RestartSettings names, "" for none
	}{
		{nil, []string{"--bind", "127.0.0.1:7955"}, "bind"},
		{nil, []string{"--node-name", "upd-b"}, "name"},
		{[]string{"--join", "127.0.0.1:1"}, []string{"--join", "127.0.0.1:2"}, ""},
		{[]string{"--join-file", j1}, []string{"--join-file", j2}, ""},
		{[]string{"--keyring", k1}, []string{"--keyring", k2}, ""},
		{[]string{"--keyring", k1}, nil, "keyring (encryption on/off)"},
		{[]string{"--label", "red"}, []string{"--label", "blue"}, "label"},
		{[]string{"--allow", "127.0.0.0/8"}, []string{"--allow", "127.0.0.1/32"}, "allow"},
		{nil, []string{"--profile", "lan"}, "profile"},
		{nil, []string{"--name", "gpu.example.edu"}, "roles"},
		{nil, []string{"--top", "3"}, ""},
		{nil, []string{"--state-dir", dir}, ""},
	} {
		t.Run(strings.Join(tc.next, " "), func(t *testing.T) {
			spec := func(args []string) collector.Spec {
				t.Helper()
				nf, err := parseNsupdate(t, append(slices.Clone(base), args...)...)
				if err != nil {
					t.Fatal(err)
				}
				s, cfg, _, err := nf.config()
				if err != nil {
					t.Fatal(err)
				}
				if cfg.StateDir != "" || !cfg.Collector {
					t.Fatalf("agent config: state dir %q, collector %v; want none, a collector", cfg.StateDir, cfg.Collector)
				}
				return s
			}
			got := collector.RestartSettings(spec(tc.old), spec(tc.next))
			if want := []string{tc.want}; tc.want == "" && len(got) != 0 || tc.want != "" && !slices.Equal(got, want) {
				t.Fatalf("RestartSettings = %v, want %q", got, tc.want)
			}
		})
	}
}
