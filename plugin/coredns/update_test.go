package peerload

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/rfc2136"
)

func writeKey(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "update.key")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const testKeyFile = `key "peerload-update" {
	algorithm hmac-sha256;
	secret "lsincbpj18uJbEtsLtMSgPMdKuLP/mdB/KmdtD06994=";
};
`

func TestParseUpdate(t *testing.T) {
	key := writeKey(t, testKeyFile)
	md5 := writeKey(t, `key "old" { algorithm hmac-md5; secret "c2VjcmV0"; };`)
	bad := writeKey(t, `key "k" { algorithm hmac-sha256; secret "not base64!"; };`)
	tests := []struct {
		input       string
		shouldErr   bool
		errContains string
	}{
		{"update 127.0.0.1:5353 {\n zone example.edu\n tsig-key " + key + "\n}", false, ""},
		{"update 127.0.0.1 {\n zone example.edu\n tsig-key " + key + " peerload-update\n resync 1m\n margin 0.2\n min-interval 2s\n timeout 3s\n}", false, ""},
		{"update 127.0.0.1:53 {\n zone example.edu\n insecure-no-tsig\n}", false, ""},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + md5 + "\n allow-md5\n}", false, ""},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + md5 + "\n}", true, "hmac-md5"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + bad + "\n}", true, "not valid base64"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key /nonexistent/update.key\n}", true, "/nonexistent/update.key"},
		{"update 127.0.0.1:53 {\n zone example.edu\n}", true, "tsig-key FILE is required"},
		{"update 127.0.0.1:53 {\n tsig-key " + key + "\n}", true, "zone is required"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key + "\n insecure-no-tsig\n}", true, "exclude each other"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key + "\n colour blue\n}", true, "unknown property 'colour'"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key + "\n resync soon\n}", true, "invalid duration"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key + "\n resync -1s\n}", true, "must be positive"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key + "\n margin -1\n}", true, "non-negative"},
		{"update 127.0.0.1:53 {\n zone a b\n}", true, "Wrong argument count"},
		{"update {\n zone example.edu\n}", true, ""},
		{"update 127.0.0.1:53 127.0.0.2:53 {\n zone example.edu\n}", true, "Wrong argument count"},
		{"update 127.0.0.1:53", true, "needs a block"},
		{"update 127.0.0.1:53 {\n zone example.edu\n tsig-key " + key, true, "Unexpected EOF"},
	}
	for i, tt := range tests {
		c := caddy.NewTestController("dns", tt.input)
		c.Next()
		u, err := parseUpdate(c)
		if tt.shouldErr {
			if err == nil {
				t.Errorf("test %d: no error for %q", i, tt.input)
			} else if !strings.Contains(err.Error(), tt.errContains) {
				t.Errorf("test %d: error %q does not contain %q", i, err, tt.errContains)
			}
			continue
		}
		if err != nil {
			t.Errorf("test %d: %v", i, err)
			continue
		}
		if u.zone != "example.edu" || !strings.HasPrefix(u.server, "127.0.0.1:") {
			t.Errorf("test %d: parsed %+v", i, u)
		}
	}

	c := caddy.NewTestController("dns", "update 127.0.0.1 {\n zone example.edu\n tsig-key "+key+"\n resync 1m\n}")
	c.Next()
	u, err := parseUpdate(c)
	if err != nil {
		t.Fatal(err)
	}
	if u.server != "127.0.0.1:53" || u.resync != time.Minute || u.key == nil || u.key.Name != "peerload-update." || u.key.Algorithm != dns.HmacSHA256 {
		t.Fatalf("parsed %+v", u)
	}
	if r := u.roles([]string{"cslab.example.edu."}); len(r) != 1 || r[0] != "nsupdate:example.edu./cslab.example.edu." {
		t.Fatalf("roles %v", r)
	}
}

// TestParseUpdateLeavesOuterBlock checks that the sub-block's braces are
// consumed exactly, so the enclosing block's parsing continues after it.
func TestParseUpdateLeavesOuterBlock(t *testing.T) {
	key := writeKey(t, testKeyFile)
	c := caddy.NewTestController("dns", "peerload cslab.example.edu {\n update 127.0.0.1:53 {\n  zone example.edu\n  tsig-key "+key+"\n }\n top 2\n}")
	c.Next()
	c.RemainingArgs()
	var props []string
	for c.NextBlock() {
		props = append(props, c.Val())
		if c.Val() == "update" {
			if _, err := parseUpdate(c); err != nil {
				t.Fatal(err)
			}
			continue
		}
		c.RemainingArgs()
	}
	if strings.Join(props, ",") != "update,top" {
		t.Fatalf("outer properties %v, want update,top", props)
	}
}

func TestUpdateStartNeedsRole(t *testing.T) {
	for _, withRole := range []bool{false, true} {
		cfg := agent.DefaultLocalConfig()
		cfg.Name = "coredns-update-test"
		cfg.Collector = true
		cfg.Logger = slog.New(slog.DiscardHandler)
		if withRole {
			cfg.Roles = []string{rfc2136.Role("example.edu", "cslab.example.edu")}
		}
		a, err := agent.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		u := &updateSpec{server: "127.0.0.1:1", zone: "example.edu", insecure: true, timeout: 100 * time.Millisecond}
		stop, err := u.start(a, u.config([]string{"cslab.example.edu."}, 1, 30, "", rank.ByCombined, rank.FallbackKeep, true))
		if withRole {
			if err != nil {
				t.Fatalf("with role: %v", err)
			}
			stop()
			stop() // safe twice
		} else if err == nil || !strings.Contains(err.Error(), "Config.Roles") {
			t.Fatalf("without role: err = %v", err)
		}
		a.Shutdown()
	}
}

// TestParseWithUpdateBlock parses the documented Corefile (docs/rfc2136.md)
// through the plugin's own block parser.
func TestParseWithUpdateBlock(t *testing.T) {
	key := writeKey(t, testKeyFile)
	c := caddy.NewTestController("dns", "peerload cslab.example.edu {\n top 2\n update 127.0.0.1:5353 {\n  zone example.edu\n  tsig-key "+key+"\n  resync 5m\n }\n}")
	c.ServerBlockKeys = []string{"example.edu.:53"}
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.update == nil || cfg.update.zone != "example.edu" || cfg.update.server != "127.0.0.1:5353" || cfg.update.resync != 5*time.Minute || cfg.top != 2 {
		t.Fatalf("parsed %+v / update %+v", cfg, cfg.update)
	}
}

// TestUpdateFollowsBlockSettings: BIND must receive what the plugin itself
// answers, so the updater gets the block's ranking and answer settings, and
// a name outside the update zone fails when the Corefile is parsed.
func TestUpdateFollowsBlockSettings(t *testing.T) {
	key := writeKey(t, testKeyFile)
	c := caddy.NewTestController("dns", "peerload cslab.example.edu {\n top 3\n ttl 20\n pool gpu\n by mem\n fallback none\n update 127.0.0.1:5353 {\n  zone example.edu\n  tsig-key "+key+"\n }\n}")
	c.ServerBlockKeys = []string{"example.edu.:53"}
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	uc := cfg.updaterConfig()
	if uc.By != rank.ByMem || uc.Top != 3 || uc.TTL != 20 || uc.Pool != "gpu" || uc.Fallback != rank.FallbackNone {
		t.Errorf("updater config %+v does not follow the block", uc)
	}

	c = caddy.NewTestController("dns", "peerload cslab.example.org {\n update 127.0.0.1:5353 {\n  zone example.edu\n  tsig-key "+key+"\n }\n}")
	c.ServerBlockKeys = []string{"example.org.:53"}
	if _, err := parse(c); err == nil || !strings.Contains(err.Error(), "not in zone") {
		t.Errorf("name outside the update zone: err = %v", err)
	}
}
