package collector

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testRegistry is a registry whose agents use the local profile and
// whose starts are counted.
func testRegistry(t *testing.T) (*Registry, func() []*agent.Config) {
	t.Helper()
	r := NewRegistry(Frontend{Kind: "test", DefaultPort: 7999, Configure: func(cfg *agent.Config, _ Spec) {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}})
	var started func() []*agent.Config
	r.NewAgent, started = agenttest.RecordStarts()
	return r, started
}

// attachLog records what a registry attaches a block to.
type attachLog struct {
	mu     sync.Mutex
	agents []*agent.Agent
	own    []bool
	live   int
	fail   error
}

func (l *attachLog) attach(a *agent.Agent, own bool) (func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return nil, l.fail
	}
	l.agents = append(l.agents, a)
	l.own = append(l.own, own)
	l.live++
	return func() {
		l.mu.Lock()
		l.live--
		l.mu.Unlock()
	}, nil
}

func (l *attachLog) last() (*agent.Agent, bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.agents) == 0 {
		return nil, false, l.live
	}
	return l.agents[len(l.agents)-1], l.own[len(l.own)-1], l.live
}

// SettingChanges is every setting of a Spec, how a reload changes it, and
// whether the one rule (RestartSettings) restarts the member for it. The
// front ends' tests hold the same table in their own syntax.
var settingChanges = []struct {
	setting   string // what RestartSettings names ("" for none)
	change    func(t *testing.T, s *Spec)
	restarts  bool
	otherBind bool // the change makes another member
}{
	{"bind", func(t *testing.T, s *Spec) { s.Bind = fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)) }, true, true},
	{"name", func(t *testing.T, s *Spec) { s.Name = "other" }, true, false},
	{"", func(t *testing.T, s *Spec) { s.Join = []string{"127.0.0.1:1"} }, false, false},
	{"", func(t *testing.T, s *Spec) { s.JoinFile = writeFile(t, "join", "127.0.0.1:1\n") }, false, false},
	{"", func(t *testing.T, s *Spec) { s.Keyring = agenttest.Keyring(t, "rotated") }, false, false},
	{"keyring (encryption on/off)", func(t *testing.T, s *Spec) { s.Keyring = "" }, true, false},
	{"label", func(t *testing.T, s *Spec) { s.Label = "blue" }, true, false},
	{"allow", func(t *testing.T, s *Spec) { s.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} }, true, false},
	{"stale", func(t *testing.T, s *Spec) { s.Stale = 20 * time.Second }, true, false},
	{"profile", func(t *testing.T, s *Spec) { s.Profile = "lan" }, true, false},
	{"roles", func(t *testing.T, s *Spec) { s.Roles = []string{"nsupdate:example.edu./cslab.example.edu."} }, true, false},
}

// TestReloadRestartsOnExactlyTheRestartSettings: a reload (new handle
// started, then the old one released) keeps the running agent when no
// restart setting changed, adopting the rest in place, and otherwise
// keeps the new block on the old agent (not as its own) until the old
// configuration lets go, then restarts the member on the same port with
// the new settings.
func TestReloadRestartsOnExactlyTheRestartSettings(t *testing.T) {
	for _, tc := range settingChanges {
		name := tc.setting
		if name == "" {
			name = "in place"
		}
		t.Run(name, func(t *testing.T) {
			r, configs := testRegistry(t)
			old := Spec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Name: "col", Profile: "local",
				Keyring: agenttest.Keyring(t, "keyring"), Stale: 10 * time.Second}
			next := old
			tc.change(t, &next)
			if tc.change != nil && len(Differences(old, next)) != 1 {
				t.Fatalf("Differences = %v, want one", Differences(old, next))
			}
			want := []string(nil)
			if tc.setting != "" {
				want = []string{tc.setting}
			}
			if got := RestartSettings(old, next); !slices.Equal(got, want) {
				t.Fatalf("RestartSettings = %v, want %v", got, want)
			}

			var oldLog, newLog attachLog
			h1 := r.Acquire(old, oldLog.attach)
			if err := h1.Start(); err != nil {
				t.Fatal(err)
			}
			oldAgent, own, _ := oldLog.last()
			if oldAgent == nil || !own {
				t.Fatalf("first block attached to %v (own %v), want its own agent", oldAgent, own)
			}
			h2 := r.Acquire(next, newLog.attach)
			t.Cleanup(func() { _ = h2.Release() })
			if err := h2.Start(); err != nil {
				t.Fatal(err)
			}
			a, own, _ := newLog.last()
			switch {
			case tc.otherBind:
				if a == oldAgent || a == nil || !own {
					t.Fatalf("another bind: new block on %p (own %v), want a new agent of its own", a, own)
				}
			case tc.restarts:
				if a != oldAgent || own {
					t.Fatalf("before the old configuration lets go: new block on %p (own %v), want the running %p, not own", a, own, oldAgent)
				}
			default:
				if a != oldAgent || !own {
					t.Fatalf("same restart settings: new block on %p (own %v), want the running %p as its own", a, own, oldAgent)
				}
			}
			if err := h1.Release(); err != nil {
				t.Fatal(err)
			}
			a, own, live := newLog.last()
			restarted := a != oldAgent
			if restarted != tc.restarts || !own || live != 1 {
				t.Fatalf("after the release: restarted %v (want %v), own %v, %d live attachments", restarted, tc.restarts, own, live)
			}
			if h2.Agent() != a {
				t.Error("the member does not run the agent the block is attached to")
			}
			if n, wantN := len(configs()), map[bool]int{true: 2, false: 1}[tc.restarts]; n != wantN {
				t.Errorf("%d agents started, want %d", n, wantN)
			}
			if restarted {
				if _, err := oldAgent.Join([]string{"127.0.0.1:1"}); err != agent.ErrShutdown {
					t.Errorf("old agent still running (join error %v)", err)
				}
				if a.GossipAddr() != next.Bind {
					t.Errorf("new agent gossips on %s, want %s", a.GossipAddr(), next.Bind)
				}
			}
		})
	}
}

// TestRefcount: blocks with one bind address share one running member; the
// last release leaves and frees the port; twice is harmless.
func TestRefcount(t *testing.T) {
	r, configs := testRegistry(t)
	spec := Spec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Profile: "local"}
	h1, h2 := r.Acquire(spec, nil), r.Acquire(spec, nil)
	if a, n := r.Running(spec.Bind); a != nil || n != 2 {
		t.Fatalf("before Start: agent %v, %d handles; want none running, 2 handles", a, n)
	}
	for _, h := range []*Handle{h1, h2} {
		if err := h.Start(); err != nil {
			t.Fatal(err)
		}
	}
	a, n := r.Running(spec.Bind)
	if a == nil || n != 2 || len(configs()) != 1 {
		t.Fatalf("agent %v, %d handles, %d started; want one agent, 2 handles", a, n, len(configs()))
	}
	if got := configs()[0].Name; !strings.HasPrefix(got, "test-") {
		t.Errorf("default name %q, want test-<host>-<port>", got)
	}
	for range 2 {
		if err := h1.Release(); err != nil {
			t.Fatal(err)
		}
	}
	if b, n := r.Running(spec.Bind); b != a || n != 1 {
		t.Fatalf("after one release: agent %v, %d handles; want the same, 1", b, n)
	}
	if err := h2.Release(); err != nil {
		t.Fatal(err)
	}
	if b, n := r.Running(spec.Bind); b != nil || n != 0 {
		t.Fatal("member still registered after the last release")
	}
	l, err := net.Listen("tcp", spec.Bind)
	if err != nil {
		t.Fatalf("port not freed: %v", err)
	}
	l.Close()
	if err := h2.Start(); err == nil {
		t.Error("Start after Release succeeded")
	}
}

// TestStartErrors: a keyring that cannot be read when a reload adopts it,
// or a block that cannot attach, fails Start and leaves the running
// member untouched; releasing the failed handle keeps no reference.
func TestStartErrors(t *testing.T) {
	r, configs := testRegistry(t)
	spec := Spec{Bind: fmt.Sprintf("127.0.0.1:%d", agenttest.FreeLoopbackPort(t)), Profile: "local", Keyring: agenttest.Keyring(t, "keyring")}
	h1 := r.Acquire(spec, nil)
	if err := h1.Start(); err != nil {
		t.Fatal(err)
	}
	running := h1.Agent()

	missing := spec
	missing.Keyring = filepath.Join(t.TempDir(), "missing")
	var l attachLog
	h2 := r.Acquire(missing, l.attach)
	if err := h2.Start(); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("start with a missing keyring: %v, want an error naming the file", err)
	}
	_ = h2.Release()
	if _, _, live := l.last(); live != 0 {
		t.Error("failed start left the block attached")
	}

	refused := attachLog{fail: fmt.Errorf("update: refused")}
	h3 := r.Acquire(spec, refused.attach)
	if err := h3.Start(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("start of a block that cannot attach: %v, want its error", err)
	}
	_ = h3.Release()
	if a, n := r.Running(spec.Bind); a != running || n != 1 || len(configs()) != 1 {
		t.Fatalf("agent %p (was %p), %d handles, %d started; want the running one untouched", a, running, n, len(configs()))
	}
	if err := h1.Release(); err != nil {
		t.Fatal(err)
	}

	// A block that cannot attach to a member it starts does not keep it.
	h4 := r.Acquire(spec, refused.attach)
	if err := h4.Start(); err == nil {
		t.Fatal("attach error not returned")
	}
	_ = h4.Release()
	if a, n := r.Running(spec.Bind); a != nil || n != 0 {
		t.Fatal("member kept running without a block")
	}
}

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		spec Spec
		want string
	}{
		{Spec{Bind: "127.0.0.1:7947"}, ""},
		{Spec{Bind: "nonsense"}, "bind: 'nonsense' is not IP:port"},
		{Spec{Bind: "127.0.0.1:7947", Profile: "moon"}, "profile: "},
		{Spec{Bind: "127.0.0.1:7947", Name: "bad name"}, "name: "},
		{Spec{Bind: "127.0.0.1:7947", Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "allow: "},
	} {
		err := Check(tc.spec, "test", 7947)
		if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Check(%+v) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestParseInt(t *testing.T) {
	for _, tc := range []struct{ v, want string }{
		{"8", ""}, {"x", "top: 'x' is not a number"}, {"0", "top: 0 out of range 1..64"}, {"65", "top: 65 out of range 1..64"},
	} {
		_, err := ParseInt("top", tc.v, 1, 64)
		if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
			t.Errorf("ParseInt(%q) = %v, want %q", tc.v, err, tc.want)
		}
	}
}

func TestCheckKeyring(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, want string }{
		{"", ""},
		{agenttest.Keyring(t, "ok"), ""},
		{filepath.Join(dir, "missing"), "keyring: "},
		{dir, "keyring: " + dir + " is a directory"},
		{writeFile(t, "bad", "not base64!\n"), "keyring: "},
	} {
		err := CheckKeyring(tc.path)
		if (err == nil) != (tc.want == "") || err != nil && !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("CheckKeyring(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
}
