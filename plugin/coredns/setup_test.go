package peerload

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/caddy/caddyfile"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/internal/sim"
)

func testController(input string) *caddy.Controller {
	c := caddy.NewTestController("dns", input)
	c.ServerBlockKeys = []string{"example.edu.:1053"}
	return c
}

func TestSetup(t *testing.T) {
	keyring := filepath.Join(t.TempDir(), "keyring")
	key, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := gossip.WriteKeyring(keyring, [][]byte{key}); err != nil {
		t.Fatal(err)
	}
	badKeyring := filepath.Join(t.TempDir(), "bad-keyring")
	if err := os.WriteFile(badKeyring, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		input       string
		shouldErr   bool
		errContains string
	}{
		{`peerload cslab.example.edu`, false, ""},
		{`peerload cslab.example.edu gpu.example.edu. {
			top 5
			ttl 60
			pool cslab
			by cpu
			name coredns-ns1
			bind 127.0.0.1:7950
			join 127.0.0.1:7946 lab01.example.edu:7946
			join [::1]:7946
			keyring ` + keyring + `
			label cslab
			allow 127.0.0.0/8 ::1/128
			fallback all
			stale 30s
		}`, false, ""},
		{`peerload cslab.example.edu { ttl 0
}`, false, ""},
		{`peerload cslab.example.edu { by mem
			fallback none
}`, false, ""},
		{`peerload cslab.example.edu { bind 0.0.0.0:0
}`, false, ""},

		// Names.
		{`peerload`, true, "at least one name"},
		{`peerload {
			top 3
		}`, true, "at least one name"},
		{`peerload cslab.example.org`, true, "not inside the zones"},
		{`peerload cs..lab.example.edu`, true, "invalid name"},
		{`peerload cslab.example.edu CSLAB.example.edu.`, true, "given twice"},
		{"peerload cslab.example.edu\npeerload gpu.example.edu", true, "plugin"},
		// Numbers.
		{`peerload cslab.example.edu { top five
}`, true, "not a number"},
		{`peerload cslab.example.edu { top 0
}`, true, "out of range"},
		{`peerload cslab.example.edu { top 65
}`, true, "out of range"},
		{`peerload cslab.example.edu { top
}`, true, "Wrong argument count"},
		{`peerload cslab.example.edu { top 1 2
}`, true, "Wrong argument count"},
		{`peerload cslab.example.edu { ttl -1
}`, true, "out of range"},
		{`peerload cslab.example.edu { ttl 30s
}`, true, "not a number"},
		{`peerload cslab.example.edu { ttl 86401
}`, true, "out of range"},
		// Enumerations.
		{`peerload cslab.example.edu { by load
}`, true, "unknown ranking"},
		{`peerload cslab.example.edu { fallback maybe
}`, true, "unknown fallback"},
		{"peerload cslab.example.edu {\n herd maybe\n}", true, "herd: \"maybe\" is neither on nor off"},
		{"peerload cslab.example.edu {\n herd\n}", true, "Wrong argument count"},
		{"peerload cslab.example.edu {\n herd off\n}", false, ""},
		{`peerload cslab.example.edu { pool
}`, true, "Wrong argument count"},
		{`peerload cslab.example.edu { pool ` + strings.Repeat("p", 64) + `
}`, true, "pool: pool \"pppp"},
		{`peerload cslab.example.edu { pool "a b"
}`, true, "is not a DNS label"},
		{`peerload cslab.example.edu { name ` + strings.Repeat("n", 129) + `
}`, true, "name: name \"nnnn"},
		{`peerload cslab.example.edu { name bad_name
}`, true, "name: name \"bad_name\" is not a host name"},
		{`peerload cslab.example.edu { bind 127.0.0.1:7950
			allow 10.0.0.0/8
}`, true, "allow: this member's own address 127.0.0.1 is outside the allow list"},
		{`peerload cslab.example.edu { profile wan
}`, true, "profile: unknown timing profile \"wan\" (want lan or local)"},
		{`peerload cslab.example.edu { label
}`, true, "Wrong argument count"},
		// Addresses.
		{`peerload cslab.example.edu { bind 7947
}`, true, "not host:port"},
		{`peerload cslab.example.edu { bind localhost:7947
}`, true, "not an IP address"},
		{`peerload cslab.example.edu { bind 127.0.0.1:70000
}`, true, "bad port"},
		{`peerload cslab.example.edu { join
}`, true, "Wrong argument count"},
		{`peerload cslab.example.edu { join 127.0.0.1
}`, true, "not host:port"},
		{`peerload cslab.example.edu { join 127.0.0.1:0
}`, true, "bad port"},
		{`peerload cslab.example.edu { join :7946
}`, true, "empty host"},
		{`peerload cslab.example.edu { allow 10.0.0.0/33
}`, true, "not a CIDR"},
		{`peerload cslab.example.edu { allow 10.0.0.1
}`, true, "not a CIDR"},
		{`peerload cslab.example.edu { allow
}`, true, "Wrong argument count"},
		// Files and durations.
		{`peerload cslab.example.edu { keyring /nonexistent/peerload/keyring
}`, true, "no such file"},
		{`peerload cslab.example.edu { keyring ` + badKeyring + `
}`, true, "bad-keyring: line 1"},
		{`peerload cslab.example.edu { keyring ` + filepath.Dir(keyring) + `
}`, true, "is a directory"},
		{`peerload cslab.example.edu { stale soon
}`, true, "invalid duration"},
		{`peerload cslab.example.edu { stale -5s
}`, true, "must be positive"},
		// Unknown properties.
		{`peerload cslab.example.edu { color blue
}`, true, "unknown property 'color'"},
		{`peerload cslab.example.edu { update
}`, true, ""},
	}
	for i, tc := range tests {
		c := testController(tc.input)
		err := setup(c)
		if tc.shouldErr != (err != nil) {
			t.Errorf("test %d %q: error %v, want error %v", i, tc.input, err, tc.shouldErr)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), tc.errContains) {
				t.Errorf("test %d %q: error %q does not contain %q", i, tc.input, err, tc.errContains)
			}
			if !strings.HasPrefix(err.Error(), "plugin/peerload: ") {
				t.Errorf("test %d: error %q not wrapped by plugin.Error", i, err)
			}
		}
	}
}

// TestDefaultsAreTheSimulated: the simulator's peerload row is the
// shipped block, so its figures in the README are what a site gets.
func TestDefaultsAreTheSimulated(t *testing.T) {
	cfg, err := parse(testController("peerload cslab.example.edu"))
	if err != nil {
		t.Fatal(err)
	}
	sc := sim.DefaultConfig()
	if cfg.top != sc.Top || time.Duration(cfg.ttl)*time.Second != sc.TTL || !cfg.herd || sc.Herd != herd.DefaultConfig() {
		t.Errorf("default block: top %d, ttl %d, herd %v; simulator: top %d, TTL %s, herd %+v",
			cfg.top, cfg.ttl, cfg.herd, sc.Top, sc.TTL, sc.Herd)
	}
}

func TestParse(t *testing.T) {
	c := testController(`peerload cslab.example.edu GPU.example.edu {
		top 5
		ttl 60
		pool cslab
		by cpu
		name coredns-ns1
		bind 127.0.0.1:7950
		join 127.0.0.1:7946
		join 127.0.0.1:7947
		label lab
		allow 127.0.0.1/8
		fallback none
		stale 9s
	}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.names, []string{"cslab.example.edu.", "gpu.example.edu."}) {
		t.Errorf("names %v", cfg.names)
	}
	if cfg.top != 5 || cfg.ttl != 60 || cfg.pool != "cslab" || cfg.by != rank.ByCPU || cfg.fallback != rank.FallbackNone {
		t.Errorf("answer settings %+v", cfg)
	}
	want := memberSpec{
		Name: "coredns-ns1", Bind: "127.0.0.1:7950", Join: []string{"127.0.0.1:7946", "127.0.0.1:7947"},
		Label: "lab", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Stale: 9 * time.Second,
	}
	if got := *cfg.member; got.Name != want.Name || got.Bind != want.Bind || !slices.Equal(got.Join, want.Join) ||
		got.Label != want.Label || !slices.Equal(got.Allow, want.Allow) || got.Stale != want.Stale {
		t.Errorf("member %+v, want %+v", got, want)
	}

	c = testController(`peerload cslab.example.edu`)
	cfg, err = parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.top != defaultTop || cfg.ttl != defaultTTL || cfg.by != rank.ByCombined || cfg.fallback != rank.FallbackKeep ||
		cfg.pool != "" || cfg.member.Bind != defaultBind || cfg.update != nil {
		t.Errorf("defaults: %+v member %+v", cfg, cfg.member)
	}
}

// TestMemberSharing: blocks of one Corefile with the same bind address
// share one member; its settings merge, conflicting ones are an error.
func TestMemberSharing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		first, next string
		errContains string
	}{
		{"inherit", `peerload a.example.edu { join 127.0.0.1:7946
			label x
}`, `peerload b.example.edu { top 1
}`, ""},
		{"identical", `peerload a.example.edu { join 127.0.0.1:7946
}`, `peerload b.example.edu { join 127.0.0.1:7946
}`, ""},
		{"complement", `peerload a.example.edu { label x
}`, `peerload b.example.edu { join 127.0.0.1:7946
}`, ""},
		{"other bind", `peerload a.example.edu { label x
}`, `peerload b.example.edu { bind 127.0.0.1:7951
			label y
}`, ""},
		{"join differs", `peerload a.example.edu { join 127.0.0.1:7946
}`, `peerload b.example.edu { join 127.0.0.1:7949
}`, "join differs"},
		{"label differs", `peerload a.example.edu { label x
}`, `peerload b.example.edu { label y
}`, "label differs"},
		{"name differs", `peerload a.example.edu { name a
}`, `peerload b.example.edu { name b
}`, "name differs"},
		{"allow differs", `peerload a.example.edu { allow 10.0.0.0/8
}`, `peerload b.example.edu { allow 10.1.0.0/16
}`, "allow differs"},
		{"stale differs", `peerload a.example.edu { stale 60s
}`, `peerload b.example.edu { stale 70s
}`, "stale differs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testController(tc.first)
			first, err := parse(c)
			if err != nil {
				t.Fatal(err)
			}
			// The next server block of the same Corefile: same caddy instance.
			c.Dispenser = caddyfile.NewDispenser("Testfile", strings.NewReader(tc.next))
			next, err := parse(c)
			if tc.errContains != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errContains) {
					t.Fatalf("error %v, want one containing %q", err, tc.errContains)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if first.member.Bind == next.member.Bind {
				if first.member != next.member {
					t.Error("same bind address, but the blocks do not share one member spec")
				}
				if first.member.Label != "x" && tc.name != "identical" {
					t.Errorf("merged member %+v lost the label", first.member)
				}
				if tc.name != "other bind" && !slices.Equal(first.member.Join, []string{"127.0.0.1:7946"}) {
					t.Errorf("merged member %+v lost the join", first.member)
				}
			} else if first.member.Label != "x" || next.member.Label != "y" {
				t.Errorf("different binds got mixed: %+v %+v", first.member, next.member)
			}
		})
	}
}

func TestAgentConfig(t *testing.T) {
	// A loopback bind chooses nothing: the timings come from profile.
	cfg, err := agentConfig(memberSpec{Bind: "127.0.0.1:7950", Join: []string{"127.0.0.1:7946"}, Label: "l", Stale: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Collector || cfg.BindAddr != "127.0.0.1" || cfg.BindPort != 7950 || cfg.Label != "l" ||
		cfg.StaleAfter != 20*time.Second || cfg.Interval != agent.DefaultConfig().Interval || cfg.StateDir != "" {
		t.Errorf("loopback member config %+v", cfg)
	}
	local, err := agentConfig(memberSpec{Bind: "127.0.0.1:7950", Profile: agent.ProfileLocal})
	if err != nil || local.Interval != agent.DefaultLocalConfig().Interval || local.Memberlist.ProbeInterval != agent.DefaultLocalConfig().Memberlist.ProbeInterval {
		t.Errorf("profile local: %+v, %v", local, err)
	}
	if !strings.HasPrefix(cfg.Name, "coredns-") || !strings.HasSuffix(cfg.Name, "-7950") {
		t.Errorf("default member name %q, want coredns-<host>-7950", cfg.Name)
	}
	cfg, err = agentConfig(memberSpec{Bind: defaultBind, Name: "ns1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "ns1" || cfg.Interval != agent.DefaultConfig().Interval || cfg.BindAddr != "0.0.0.0" || cfg.BindPort != 7947 {
		t.Errorf("LAN member config %+v", cfg)
	}
	if cfg, err := agentConfig(memberSpec{Bind: defaultBind}); err != nil || strings.HasSuffix(cfg.Name, "-7947") {
		t.Errorf("default name on the default port %q (%v) carries the port", cfg.Name, err)
	}
}

// TestSetupUpdateBlock: the update sub-block is handed to parseUpdate, parsing
// goes on after it, and the member carries the updater roles.
func TestSetupUpdateBlock(t *testing.T) {
	c := testController(`peerload cslab.example.edu {
		update 127.0.0.1:5300 {
			zone example.edu
			insecure-no-tsig
		}
		top 2
	}`)
	cfg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.update == nil || cfg.top != 2 {
		t.Fatalf("update %v, top %d: the block after the update sub-block was not parsed", cfg.update, cfg.top)
	}
	if want := []string{"nsupdate:example.edu./cslab.example.edu."}; !slices.Equal(cfg.member.Roles, want) {
		t.Errorf("member roles %v, want %v", cfg.member.Roles, want)
	}
	ac, err := agentConfig(*cfg.member)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ac.Roles, cfg.member.Roles) {
		t.Errorf("agent roles %v", ac.Roles)
	}

	c = testController(`peerload cslab.example.edu {
		update 127.0.0.1:5300 {
			zone example.edu
			insecure-no-tsig
		}
		update 127.0.0.1:5301 {
			zone example.edu
			insecure-no-tsig
		}
	}`)
	if _, err := parse(c); err == nil || !strings.Contains(err.Error(), "update given twice") {
		t.Errorf("two update blocks: error %v", err)
	}
}

// TestSetupReload runs two parsed Corefiles in CoreDNS's reload order (the
// new instance starts, then the old one shuts down): a tightened allow, a
// new name and a new update sub-block take effect on a member restarted on
// the same bind address, and the reloaded handler reads that member.
func TestSetupReload(t *testing.T) {
	configs := recordAgents(t)
	bind := fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t))
	dnsPort := agenttest.FreeLoopbackPort(t)
	corefiles := []string{
		`peerload cslab.example.edu {
			bind ` + bind + `
			name ns-old
			allow 127.0.0.0/8
		}`,
		`peerload cslab.example.edu {
			bind ` + bind + `
			name ns-new
			allow 127.0.0.1/32
			update 127.0.0.1:` + strconv.Itoa(dnsPort) + ` {
				zone example.edu
				insecure-no-tsig
			}
		}`,
	}
	var stops []func() error
	for i, input := range corefiles {
		cfg, err := parse(testController(input))
		if err != nil {
			t.Fatalf("Corefile %d: %v", i, err)
		}
		start, stop := cfg.lifecycle(newPeerLoad(cfg))
		if err := start(); err != nil {
			t.Fatalf("start Corefile %d: %v", i, err)
		}
		stops = append(stops, stop)
	}
	t.Cleanup(func() { _ = stops[1]() })
	running := func() *agent.Agent {
		a, _ := members.Running(bind)
		return a
	}
	if a := running(); a == nil || a.Name() != "ns-old" {
		t.Fatalf("before the old instance shuts down: agent %v, want the old one still running", a)
	}
	if err := stops[0](); err != nil {
		t.Fatal(err)
	}
	a := running()
	if a == nil {
		t.Fatal("no member after the old instance shut down")
	}
	cfgs := configs()
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if last := cfgs[len(cfgs)-1]; a.Name() != "ns-new" || !slices.Equal(last.Allow, want) || a.GossipAddr() != bind {
		t.Fatalf("member after reload: name %s, allow %v, on %s; want ns-new, %v, %s", a.Name(), last.Allow, a.GossipAddr(), want, bind)
	}
	role := "nsupdate:example.edu./cslab.example.edu."
	agenttest.WaitFor(t, 10*time.Second, "the restarted member to carry the updater role "+role, func() (bool, string) {
		n := a.Snapshot().Node("ns-new")
		return n != nil && slices.Contains(n.Roles, role), fmt.Sprintf("%+v", n)
	})
	if err := stops[1](); err != nil {
		t.Fatal(err)
	}
	if running() != nil {
		t.Error("member still registered after the last instance shut down")
	}
}
