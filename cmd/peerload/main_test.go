package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/gossip"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// testCLI runs one command line in-process.
type testCLI struct {
	env    map[string]string
	execed []string // argv given to exec
	sig    chan os.Signal
	// terminal, when set, pretends stdout is a terminal of that width.
	terminal func() (bool, int)
	// lookupHost, when set, replaces name resolution; unset, every name
	// resolves (tests stay off the network).
	lookupHost func(ctx context.Context, host string) ([]string, error)
}

func (tc *testCLI) run(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	c := &cli{
		stdout:   &out,
		stderr:   &errOut,
		getenv:   func(k string) string { return tc.env[k] },
		signals:  tc.sig,
		terminal: tc.terminal,
		lookupHost: func(ctx context.Context, host string) ([]string, error) {
			if tc.lookupHost != nil {
				return tc.lookupHost(ctx, host)
			}
			return []string{"192.0.2.1"}, nil
		},
		exec: func(argv0 string, argv []string, envv []string) error {
			tc.execed = append([]string{argv0}, argv...)
			return nil
		},
	}
	code = c.run(args)
	return out.String(), errOut.String(), code
}

func run(args ...string) (string, string, int) { return (&testCLI{}).run(args...) }

// fakeAgentAPI serves canned answers in the agent API's JSON and records
// what it was asked.
type fakeAgentAPI struct {
	mu      sync.Mutex
	nodes   []api.NodeJSON
	queries []string
	srv     *httptest.Server
	// poolFilter makes ?pool= select nodes as the agent does.
	poolFilter bool
}

func newFakeAgentAPI(t *testing.T, nodes ...api.NodeJSON) *fakeAgentAPI {
	t.Helper()
	f := &fakeAgentAPI{nodes: nodes}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAgentAPI) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeAgentAPI) lastQuery() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return ""
	}
	return f.queries[len(f.queries)-1]
}

func (f *fakeAgentAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery)
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	switch r.URL.Path {
	case "/v1/top", "/v1/nodes":
		resp := api.NodesResponse{Self: "lab01", By: rank.ByCombined, Nodes: []api.NodeJSON{}}
		limit := 1
		if n := r.URL.Query().Get("n"); n != "" {
			json.Unmarshal([]byte(n), &limit)
		}
		pool := r.URL.Query().Get("pool")
		for _, n := range f.nodes {
			if f.poolFilter && pool != "" && !slices.Contains(n.Pools, pool) {
				continue
			}
			if r.URL.Path == "/v1/nodes" || (n.Candidate && len(resp.Nodes) < limit) {
				resp.Nodes = append(resp.Nodes, n)
			}
		}
		enc.Encode(resp)
	default:
		w.WriteHeader(404)
		enc.Encode(api.ErrorResponse{Error: "no such endpoint"})
	}
}

func node(name, addr4 string, rank int, score, load1 float64, cpus int) api.NodeJSON {
	return api.NodeJSON{
		Name: name, Addr4: addr4, State: "alive", Candidate: rank > 0, Rank: rank, Score: score, ReportAge: 1.5,
		Report: &api.LoadJSON{Load1: load1, CPUs: cpus, MemAvailablePercent: 80, Users: 2},
	}
}

func labNodes() []api.NodeJSON {
	drained := node("lab04", "127.0.1.4", 0, 0.1, 0.1, 4)
	drained.Reasons = []string{"drain: drained: kernel update"}
	drained.Failing = []report.CheckResult{{Name: "drain", Reason: "drained: kernel update"}}
	return []api.NodeJSON{
		node("lab02", "127.0.1.2", 1, 0.12, 0.4, 4),
		node("lab03", "", 2, 0.5, 2.0, 8),
		node("lab01", "127.0.1.1", 3, 0.9, 3.6, 4),
		drained,
		{Name: "dns", State: "alive", Collector: true, ReportAge: -1, Gossip: "127.0.0.1:7950"},
	}
}

func TestHelp(t *testing.T) {
	out, _, code := run("--help")
	if code != 0 || !strings.Contains(out, "Usage: peerload [--api ADDR:PORT] [--control PATH] <command>") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	for _, cmd := range commands() {
		if !strings.Contains(out, "  "+cmd.name+" ") {
			t.Errorf("--help does not list %s", cmd.name)
		}
		for _, args := range [][]string{{cmd.name, "--help"}, {cmd.name, "-h"}, {"help", cmd.name}} {
			out, errOut, code := run(args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: peerload "+cmd.name) || errOut != "" {
				t.Errorf("%v: exit %d stdout %q stderr %q", args, code, out, errOut)
			}
		}
	}
	if _, errOut, code := run(); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no arguments: exit %d, %q", code, errOut)
	}
	if _, errOut, code := run("frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		out, _, code := run(args...)
		if code != 0 || !strings.HasPrefix(out, "peerload dev (commit ") || !strings.Contains(out, " go1.") {
			t.Errorf("%v: exit %d %q", args, code, out)
		}
	}
}

func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	badKeyring := filepath.Join(dir, "bad.keyring")
	os.WriteFile(badKeyring, []byte("not base64!\n"), 0o600)
	tests := []struct {
		args []string
		code int
		want string // in the one line printed
	}{
		{[]string{"agent", "--bind", "foo"}, 2, `peerload agent: --bind "foo": missing port in address`},
		{[]string{"agent", "--bind", "127.0.0.1:99999"}, 2, `--bind "127.0.0.1:99999": port "99999"`},
		{[]string{"agent", "--bind", "lab01:7946"}, 2, `--bind "lab01:7946": "lab01" is not an IP address`},
		{[]string{"agent", "--advertise", "lab01"}, 2, `--advertise "lab01": "lab01" is not an IP address`},
		{[]string{"agent", "--advertise", "127.0.1.1,127.0.1.2"}, 2, "--advertise"},
		{[]string{"agent", "--join", "lab01"}, 2, `--join "lab01": missing port`},
		{[]string{"agent", "--join", "lab01:x"}, 2, `--join "lab01:x"`},
		{[]string{"agent", "--allow", "10.0.0.0/33"}, 2, `--allow "10.0.0.0/33"`},
		{[]string{"agent", "--api", "0.0.0.0:1981"}, 2, "--api-public"},
		{[]string{"agent", "--api", "1981"}, 2, `--api "1981"`},
		{[]string{"agent", "--name", ""}, 2, "--name"},
		{[]string{"agent", "--interval", "-1s"}, 2, `--interval: must be positive`},
		{[]string{"agent", "--interval", "soon"}, 2, `--interval "soon": not a duration (like 500ms, 2s or 1m30s)`},
		{[]string{"agent", "--refresh", "1s"}, 2, "--refresh: 1s is shorter than the sampling interval 2s"},
		{[]string{"agent", "--stale-after", "-1s"}, 2, "--stale-after: must not be negative"},
		{[]string{"agent", "--ssh-port", "70000"}, 2, "--ssh-port: port 70000"},
		{[]string{"agent", "--by", "load"}, 2, `--by "load"`},
		{[]string{"agent", "--weight-cpu", "-1"}, 2, "--weight-cpu: -1 is not a number from 0 to 1e6"},
		{[]string{"agent", "--pool", strings.Repeat("p", 64)}, 2, "--pool: pool"},
		{[]string{"agent", "--pool", "a b"}, 2, `--pool: pool "a b" is not a DNS label`},
		{[]string{"agent", "--name", "bad name/with spaces"}, 2, `--name: name "bad name/with spaces" is not a host name`},
		{[]string{"agent", "--advertise", "0.0.0.0"}, 2, "--advertise: 0.0.0.0 is the unspecified address"},
		{[]string{"agent", "--advertise", "::"}, 2, "--advertise: :: is the unspecified address"},
		{[]string{"agent", "--advertise", "255.255.255.255"}, 2, "--advertise: 255.255.255.255 is the broadcast address"},
		{[]string{"agent", "--bind", "127.0.0.1:0", "--allow", "10.0.0.0/8"}, 2, "--allow: this member's own address 127.0.0.1 is outside the allow list"},
		{[]string{"agent", "--profile", "wan"}, 2, `--profile "wan": unknown timing profile "wan" (want lan or local)`},
		{[]string{"agent", "--api", "bogus"}, 2, `--api "bogus": missing port in address`},
		{[]string{"nsupdate", "--server", "127.0.0.1:53", "--zone", "example.edu", "--name", "cslab.example.edu", "--insecure-no-tsig",
			"--bind", "127.0.0.1:0", "--allow", "10.0.0.0/8"}, 2, "--allow: this member's own address 127.0.0.1 is outside the allow list"},
		{[]string{"nsupdate", "--server", "127.0.0.1:53", "--zone", "example.edu", "--name", "cslab.example.edu", "--insecure-no-tsig",
			"--node-name", "a b"}, 2, `--node-name: name "a b" is not a host name`},
		{[]string{"agent", "--log-level", "loud"}, 2, "--log-level"},
		{[]string{"agent", "--nosuchflag"}, 2, "unknown flag --nosuchflag (see `peerload agent --help`)"},
		{[]string{"agent", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"agent", "--keyring", filepath.Join(dir, "missing")}, 1, filepath.Join(dir, "missing")},
		{[]string{"agent", "--keyring", badKeyring}, 1, badKeyring},
		{[]string{"agent", "--join-file", filepath.Join(dir, "nojoin")}, 1, filepath.Join(dir, "nojoin")},
		{[]string{"agent", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", "--state-dir", "", "--control", filepath.Join(badKeyring, "control.sock")}, 1,
			"peerload agent: --control " + filepath.Join(badKeyring, "control.sock") + ": mkdir " + badKeyring + ": not a directory"},
		{[]string{"top", "-n", "0"}, 2, `peerload top: -n "0": must be at least 1`},
		{[]string{"top", "--by", "load"}, 2, `--by "load"`},
		{[]string{"top", "lab01"}, 2, "unexpected argument"},
		{[]string{"top", "--api", "garbage"}, 2, `peerload top: --api "garbage": missing port in address`},
		{[]string{"--api", "garbage", "status"}, 2, `peerload status: --api "garbage": missing port in address`},
		{[]string{"ssh", "--api", "127.0.0.1"}, 2, `peerload ssh: --api "127.0.0.1": missing port in address`},
		{[]string{"hostfile", "--api", "lab01:x", "-"}, 2, `peerload hostfile: --api "lab01:x": port "x" is not a number`},
		{[]string{"known-hosts", "--api", "ftp://lab01"}, 2, `peerload known-hosts: --api "ftp://lab01": scheme "ftp": want http or https`},
		{[]string{"hostfile"}, 2, "exactly one FILE"},
		{[]string{"hostfile", "-s", "0", "-"}, 2, `-s "0": must be at least 1`},
		{[]string{"hostfile", "-s", "2", "--cpus", "-"}, 2, "exclude each other"},
		{[]string{"hostfile", "--count-cpus", "-"}, 2, "--count-cpus needs -n"},
		{[]string{"hostfile", "--format", "lam", "-"}, 2, `--format "lam"`},
		{[]string{"status", "--interval", "1ms"}, 2, "--interval"},
		{[]string{"status", "--watch", "--json"}, 2, "--watch and --json exclude each other"},
		{[]string{"drain", "now"}, 2, "unexpected argument"},
		{[]string{"keygen", "x"}, 2, "unexpected argument"},
	}
	for _, tt := range tests {
		out, errOut, code := run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) || out != "" {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit %d and %q", tt.args, code, out, errOut, tt.code, tt.want)
		}
		if strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: want exactly one line, got %q", tt.args, errOut)
		}
	}
}

func TestGossipFlagsApply(t *testing.T) {
	f := (&cli{stdout: &bytes.Buffer{}, getenv: os.Getenv}).newFlagSet("agent", "", "")
	af := addAgentFlags(f)
	_, err := f.parse([]string{
		"--name", "lab07", "--bind", "127.0.0.1:7950", "--advertise", "127.0.1.7, ::1",
		"--join", "127.0.0.1:7946,[::1]:7947", "--allow", "127.0.0.0/8,::1", "--label", "cslab",
		"--state-dir", "", "--proc", "/tmp/proc", "--pool", "gpu,big", "--collector",
		"--interval", "1s", "--refresh", "3s", "--stale-after", "9s", "--ssh-port", "0",
		"--by", "mem", "--delta", "0.1", "--root", "/tmp/root", "--check-cmd", "true",
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := af.config()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Name", cfg.Name, "lab07"},
		{"BindAddr", cfg.BindAddr, "127.0.0.1"},
		{"BindPort", cfg.BindPort, 7950},
		{"Addr4", cfg.Addr4.String(), "127.0.1.7"},
		{"Addr6", cfg.Addr6.String(), "::1"},
		{"Join", strings.Join(cfg.Join, " "), "127.0.0.1:7946 [::1]:7947"},
		{"Allow", len(cfg.Allow), 2},
		{"Allow[1]", cfg.Allow[1].String(), "::1/128"},
		{"Label", cfg.Label, "cslab"},
		{"StateDir", cfg.StateDir, ""},
		{"ProcRoot", cfg.ProcRoot, "/tmp/proc"},
		{"Pools", strings.Join(cfg.Pools, " "), "gpu big"},
		{"Collector", cfg.Collector, true},
		{"Interval", cfg.Interval, time.Second},
		{"StaleAfter", cfg.StaleAfter, 9 * time.Second},
		{"SSHPort", cfg.Checks.SSHPort, 0},
		{"Root", cfg.Checks.Root, "/tmp/root"},
		{"Command", cfg.Checks.Command, "true"},
		{"By", cfg.Score.By, rank.ByMem},
		{"Delta", cfg.Score.Delta, 0.1},
		{"CPUWeight", cfg.Score.CPUWeight, 1.0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	// Defaults are agent.DefaultConfig's.
	f = (&cli{stdout: &bytes.Buffer{}, getenv: os.Getenv}).newFlagSet("agent", "", "")
	af = addAgentFlags(f)
	if _, err := f.parse(nil); err != nil {
		t.Fatal(err)
	}
	cfg, err = af.config()
	if err != nil {
		t.Fatal(err)
	}
	def := agent.DefaultConfig()
	if cfg.BindAddr != "0.0.0.0" || cfg.BindPort != 7946 || cfg.StateDir != def.StateDir || cfg.Checks.SSHPort != 22 ||
		cfg.Interval != 2*time.Second || cfg.ProcRoot != "/proc" || cfg.Name != def.Name || cfg.Score != def.Score {
		t.Errorf("defaults differ from agent.DefaultConfig: %+v", cfg)
	}
	if addr, err := af.gossip.apiAddr(); err != nil || addr != "127.0.0.1:1981" {
		t.Errorf("default api = %q, %v", addr, err)
	}
	af.gossip.API, af.gossip.APIPublic = "0.0.0.0:1981", true
	if addr, err := af.gossip.apiAddr(); err != nil || addr != "0.0.0.0:1981" {
		t.Errorf("public api = %q, %v", addr, err)
	}
}

func TestTop(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{}
	out, errOut, code := tc.run("top", "-n", "3", "--api", fake.addr())
	if code != 0 || out != "lab02\nlab03\nlab01\n" || errOut != "" {
		t.Errorf("top -n 3: exit %d %q %q", code, out, errOut)
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=3" {
		t.Errorf("query = %q", q)
	}
	tc.run("top", "--by", "cpu", "--pool", "gpu", "--api", fake.addr())
	if q := fake.lastQuery(); q != "GET /v1/top?by=cpu&n=1&pool=gpu" {
		t.Errorf("query = %q", q)
	}

	// --ip prints IPv4 addresses; a node without an address is an error.
	fake.nodes = labNodes()[:1]
	if out, _, code := tc.run("top", "--ip", "--api", fake.addr()); code != 0 || out != "127.0.1.2\n" {
		t.Errorf("top --ip: exit %d %q", code, out)
	}
	fake.nodes = labNodes()[1:2]
	if _, errOut, code := tc.run("top", "--ip", "--api", fake.addr()); code != 1 || !strings.Contains(errOut, "lab03 advertises no address") {
		t.Errorf("top --ip without address: exit %d %q", code, errOut)
	}

	fake.nodes = labNodes()
	out, _, code = tc.run("top", "-v", "-n", "2", "--api", fake.addr())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !regexp.MustCompile(`^RANK\s+NAME\s+ADDRESS\s+SCORE\s+LOAD1`).MatchString(lines[0]) ||
		!regexp.MustCompile(`^1\s+lab02\s+127\.0\.1\.2\s+0\.120\s+0\.40\s+4\s+80%\s+2$`).MatchString(lines[1]) {
		t.Errorf("top -v:\n%s", out)
	}

	out, _, code = tc.run("top", "--json", "-n", "3", "--api", fake.addr())
	var resp api.NodesResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil || code != 0 || len(resp.Nodes) != 3 || resp.Self != "lab01" {
		t.Errorf("top --json: exit %d %v %q", code, err, out)
	}

	// The API address comes from $PEERLOAD_API unless --api is given.
	tc.env = map[string]string{"PEERLOAD_API": fake.addr()}
	if out, _, code := tc.run("top"); code != 0 || out != "lab02\n" {
		t.Errorf("top with PEERLOAD_API: exit %d %q", code, out)
	}
	// A bad $PEERLOAD_API is named as the variable, not as --api.
	bad := &testCLI{env: map[string]string{"PEERLOAD_API": "garbage"}}
	if out, errOut, code := bad.run("top"); code != 2 || out != "" || errOut != "peerload top: $PEERLOAD_API \"garbage\": missing port in address\n" {
		t.Errorf("top with PEERLOAD_API=garbage: exit %d %q %q", code, out, errOut)
	}

	// No candidate: exit 1 with one line.
	fake.nodes = labNodes()[3:]
	for _, args := range [][]string{{"top"}, {"top", "--pool", "gpu"}, {"ssh"}, {"hostfile", "-"}} {
		out, errOut, code := tc.run(args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "no candidate machine") || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%v without candidates: exit %d %q %q", args, code, out, errOut)
		}
	}
}

func TestUnreachableAgent(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, cmd := range []string{"top", "ssh", "status"} {
		out, errOut, code := run(cmd, "--api", addr)
		want := "peerload " + cmd + ": cannot reach peerload agent at " + addr + " (is `peerload agent` running?)"
		if code != 1 || out != "" || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: exit %d %q %q", cmd, code, out, errOut)
		}
	}
}

func TestSSH(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{}
	_, errOut, code := tc.run("ssh", "--api", fake.addr())
	if code != 0 || len(tc.execed) != 3 || filepath.Base(tc.execed[0]) != "ssh" || strings.Join(tc.execed[1:], " ") != "ssh lab02" {
		t.Errorf("ssh: exit %d %q exec %q", code, errOut, tc.execed)
	}
	tc.env = map[string]string{"PEERLOAD_SSH": "echo"}
	_, errOut, code = tc.run("ssh", "--ip", "--api", fake.addr(), "--", "-A", "-l", "alice", "-p2222", "uptime", "-a")
	if code != 0 || filepath.Base(tc.execed[0]) != "echo" ||
		strings.Join(tc.execed[1:], " ") != "echo -A -l alice -p2222 127.0.1.2 uptime -a" {
		t.Errorf("ssh with args: exit %d %q exec %q", code, errOut, tc.execed)
	}
	// A name that does not resolve here (the demo's lab02): ssh still
	// runs, after a hint at --ip.
	tc.env = nil
	tc.lookupHost = func(_ context.Context, host string) ([]string, error) {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	_, errOut, code = tc.run("ssh", "--api", fake.addr())
	if code != 0 || strings.Join(tc.execed[1:], " ") != "ssh lab02" ||
		errOut != "peerload ssh: warning: lab02 does not resolve on this machine; --ip connects to its address, 127.0.1.2\n" {
		t.Errorf("ssh to an unresolvable name: exit %d %q exec %q", code, errOut, tc.execed)
	}
	if _, errOut, _ = tc.run("ssh", "--ip", "--api", fake.addr()); errOut != "" {
		t.Errorf("ssh --ip checks the name: %q", errOut)
	}
	tc.lookupHost = nil
	tc.env = map[string]string{"PEERLOAD_SSH": "/no/such/ssh"}
	if _, errOut, code := tc.run("ssh", "--api", fake.addr()); code != 1 || !strings.Contains(errOut, "/no/such/ssh") {
		t.Errorf("missing ssh: exit %d %q", code, errOut)
	}
}

func TestSplitSSHArgs(t *testing.T) {
	tests := []struct{ in, opts, cmd string }{
		{"", "", ""},
		{"-A", "-A", ""},
		{"-l alice", "-l alice", ""},
		{"-lalice uptime", "-lalice", "uptime"},
		{"-Av -p 22 ls -la", "-Av -p 22", "ls -la"},
		{"-o StrictHostKeyChecking=no -- -weird", "-o StrictHostKeyChecking=no", "-weird"},
		{"uptime", "", "uptime"},
		{"-l", "-l", ""},
	}
	for _, tt := range tests {
		opts, cmd := splitSSHArgs(strings.Fields(tt.in))
		if strings.Join(opts, " ") != tt.opts || strings.Join(cmd, " ") != tt.cmd {
			t.Errorf("splitSSHArgs(%q) = %q %q, want %q %q", tt.in, opts, cmd, tt.opts, tt.cmd)
		}
	}
}

func TestHostfilePlan(t *testing.T) {
	nodes := labNodes()[:3] // lab02 4 cpus, lab03 8, lab01 4
	tests := []struct {
		plan    hostfilePlan
		want    string
		warning string
	}{
		{hostfilePlan{Slots: 1}, "lab02:1 lab03:1 lab01:1", ""},
		{hostfilePlan{N: 2, Slots: 2}, "lab02:2 lab03:2", ""},
		{hostfilePlan{N: 5, Slots: 1}, "lab02:1 lab03:1 lab01:1", "only 3 candidate machines, asked for 5"},
		{hostfilePlan{CPUs: true}, "lab02:4 lab03:8 lab01:4", ""},
		{hostfilePlan{N: 10, CPUs: true, CountCPUs: true}, "lab02:4 lab03:6", ""},
		{hostfilePlan{N: 4, CPUs: true, CountCPUs: true}, "lab02:4", ""},
		{hostfilePlan{N: 5, Slots: 2, CountCPUs: true}, "lab02:2 lab03:2 lab01:1", ""},
		{hostfilePlan{N: 20, CPUs: true, CountCPUs: true}, "lab02:4 lab03:8 lab01:4", "only 16 slots on 3 candidate machines, asked for 20"},
		{hostfilePlan{N: 1, Slots: 1, IP: true}, "127.0.1.2:1", ""},
	}
	for _, tt := range tests {
		hosts, warning, err := tt.plan.hosts(nodes)
		if err != nil {
			t.Errorf("%+v: %v", tt.plan, err)
			continue
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.Host+":"+itoa(h.Slots))
		}
		if strings.Join(got, " ") != tt.want || warning != tt.warning {
			t.Errorf("%+v = %q %q, want %q %q", tt.plan, got, warning, tt.want, tt.warning)
		}
	}
	if _, _, err := (hostfilePlan{N: 2, Slots: 1, IP: true}).hosts(nodes); err == nil {
		t.Error("--ip with a node without address: no error")
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestWriteHostfile(t *testing.T) {
	hosts := []hostSlots{{"lab02", 2}, {"lab03", 1}}
	for format, want := range map[string]string{
		"openmpi": "lab02 slots=2\nlab03 slots=1\n",
		"mpich":   "lab02:2\nlab03:1\n",
		"slurm":   "lab02\nlab02\nlab03\n",
	} {
		var b bytes.Buffer
		if err := writeHostfile(&b, hosts, format); err != nil || b.String() != want {
			t.Errorf("%s: %q, %v; want %q", format, b.String(), err, want)
		}
	}
	if err := writeHostfile(&bytes.Buffer{}, hosts, "lam"); err == nil {
		t.Error("unknown format: no error")
	}
}

func TestHostfileCommand(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{}
	out, _, code := tc.run("hostfile", "-", "--format", "mpich", "-n", "2", "--api", fake.addr())
	if code != 0 || out != "lab02:1\nlab03:1\n" {
		t.Errorf("hostfile to stdout: exit %d %q", code, out)
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=2" {
		t.Errorf("query = %q", q)
	}
	file := filepath.Join(t.TempDir(), "hosts")
	out, errOut, code := tc.run("hostfile", "--cpus", "-n", "9", "--count-cpus", "--api", fake.addr(), file)
	data, _ := os.ReadFile(file)
	if code != 0 || out != "" || string(data) != "lab02 slots=4\nlab03 slots=5\n" || !strings.Contains(errOut, "wrote 2 machines, 9 slots") {
		t.Errorf("hostfile to file: exit %d %q %q, file %q", code, out, errOut, data)
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=10000" {
		t.Errorf("query = %q", q)
	}
	_, errOut, code = tc.run("hostfile", "-n", "9", "--api", fake.addr(), filepath.Join(t.TempDir(), "no", "dir", "hosts"))
	if code != 1 || !strings.Contains(errOut, "no such file or directory") || !strings.Contains(errOut, "warning: only 3 candidate machines") {
		t.Errorf("hostfile into a missing dir: exit %d %q", code, errOut)
	}
}

func TestStatus(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{}
	out, _, code := tc.run("status", "--api", fake.addr())
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 6 {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
	for i, re := range []string{
		// MEM%: 80 % available is 20 % in use, as the status page says.
		`^NAME\s+STATE\s+RANK\s+SCORE\s+LOAD1\s+CPUS\s+MEM%\s+POOLS\s+NOTES$`,
		`^lab02\s+alive\s+1\s+0\.120\s+0\.40\s+4\s+20%\s+-\s+-$`,
		`^lab03\s+alive\s+2\s`,
		`^lab01\s+alive\s+3\s`,
		`^lab04\s+alive\s+-\s+0\.100\s.*\s-\s+drained: kernel update$`,
		`^dns\s+collector\s+-\s+-\s+-\s+-\s+-\s+-\s+-$`,
	} {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("status line %d = %q, want match %s", i, lines[i], re)
		}
	}
	if q := fake.lastQuery(); q != "GET /v1/nodes?" {
		t.Errorf("query = %q", q)
	}

	// --watch on a terminal redraws in place, then stops on a signal.
	tc.sig = make(chan os.Signal, 1)
	tc.sig <- syscall.SIGINT
	tc.terminal = func() (bool, int) { return true, 100 }
	out, _, code = tc.run("status", "--watch", "--interval", "100ms", "--api", fake.addr())
	if code != 0 || !strings.HasPrefix(out, clearScreen+"peerload status") || !strings.Contains(out, "lab02") {
		t.Errorf("status --watch: exit %d %q", code, out)
	}
}

// startControl serves target on a control socket in a temporary
// directory and returns its path.
func startControl(t *testing.T, target api.Drainer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "control.sock")
	s, err := api.ListenControl(api.ControlConfig{Path: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(target) }()
	t.Cleanup(func() { s.Close(); <-done })
	return path
}

func TestDrainUndrain(t *testing.T) {
	target := &agenttest.DrainFlag{Node: "lab01"}
	sock := startControl(t, target)
	tc := &testCLI{}
	steps := []struct {
		args    []string
		out     string
		drained bool
	}{
		{[]string{"drain", "--reason", "new disk", "--control", sock}, "lab01 drained: new disk\n", true},
		{[]string{"drain", "--reason", "new disk", "--control", sock}, "lab01 was already drained: new disk\n", true},
		{[]string{"undrain", "--control", sock}, "lab01 undrained\n", false},
		{[]string{"undrain", "--control", sock}, "lab01 was not drained; nothing changed\n", false},
		{[]string{"--control", sock, "drain"}, "lab01 drained: drained by " + currentUserName(t) + "\n", true},
	}
	for _, st := range steps {
		out, errOut, code := tc.run(st.args...)
		if on, _ := target.Drained(); code != 0 || out != st.out || errOut != "" || on != st.drained {
			t.Errorf("%q: exit %d %q %q, drained %v; want %q", st.args, code, out, errOut, on, st.out)
		}
	}
	// The socket comes from $PEERLOAD_CONTROL unless --control is given.
	tc.env = map[string]string{"PEERLOAD_CONTROL": sock}
	if out, _, code := tc.run("undrain"); code != 0 || out != "lab01 undrained\n" {
		t.Errorf("undrain with PEERLOAD_CONTROL: exit %d %q", code, out)
	}
	// No agent: one line naming the socket.
	missing := filepath.Join(t.TempDir(), "none.sock")
	_, errOut, code := run("drain", "--control", missing)
	if code != 1 || !strings.HasPrefix(errOut, "peerload drain: no control socket at "+missing) || strings.Count(errOut, "\n") != 1 {
		t.Errorf("drain without an agent: exit %d %q", code, errOut)
	}
}

func currentUserName(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func TestKeygen(t *testing.T) {
	out, _, code := run("keygen")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil || len(key) != 32 {
		t.Errorf("keygen: exit %d %q %v", code, out, err)
	}
	file := filepath.Join(t.TempDir(), "keyring")
	if _, errOut, code := run("keygen", "--out", file); code != 0 || !strings.Contains(errOut, file) {
		t.Fatalf("keygen --out: exit %d %q", code, errOut)
	}
	keys, err := gossip.ReadKeyring(file)
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Errorf("keyring written by keygen: %d keys, %v", len(keys), err)
	}
	if _, errOut, code := run("keygen", "--out", file); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("keygen over an existing keyring: exit %d %q", code, errOut)
	}
}

func TestFormatAge(t *testing.T) {
	for sec, want := range map[float64]string{-1: "-", 0: "0.0s", 2.34: "2.3s", 75: "1m15s", 7300: "2h2m0s"} {
		if got := formatAge(sec); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", sec, got, want)
		}
	}
}

func TestLogLevel(t *testing.T) {
	var b bytes.Buffer
	level, err := parseLogLevel("warn")
	if err != nil {
		t.Fatal(err)
	}
	l := newLogger(&b, level, "lab01")
	l.Debug("a")
	l.Info("b")
	l.Warn("d")
	l.Error("e")
	if got := b.String(); strings.Contains(got, "msg=a") || strings.Contains(got, "msg=b") ||
		!strings.Contains(got, "level=WARN msg=d node=lab01") || !strings.Contains(got, "level=ERROR msg=e") {
		t.Errorf("warn level passed %q", got)
	}
	if _, err := parseLogLevel("loud"); err == nil {
		t.Error("parseLogLevel accepted loud")
	}
}

// TestAgentCommand runs `peerload agent` in-process on loopback: it serves
// the API, reloads on HUP, and exits cleanly on TERM.
func TestAgentCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent")
	}
	// A taken API port fails before anything starts.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, errOut, code := run("agent", "--bind", "127.0.0.1:0", "--api", busy.Addr().String(), "--state-dir", "", "--ssh-port", "0")
	if code != 1 || !strings.Contains(errOut, "--api "+busy.Addr().String()+": bind: address already in use") {
		t.Errorf("agent on a taken API port: exit %d %q", code, errOut)
	}
	// So does a gossip port taken for UDP only.
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	_, errOut, code = run("agent", "--bind", udp.LocalAddr().String(), "--api", "127.0.0.1:0", "--state-dir", "", "--ssh-port", "0")
	if want := "--bind " + udp.LocalAddr().String() + ": the gossip port is in use"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("agent on a taken gossip port: exit %d %q, want %q", code, errOut, want)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := l.Addr().String()
	l.Close()
	var stderr agenttest.LogBuffer
	sig := make(chan os.Signal, 1)
	c := &cli{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(string) string { return "" }, signals: sig}
	done := make(chan int, 1)
	stateDir := t.TempDir()
	go func() {
		done <- c.run([]string{"agent", "--name", "solo", "--bind", "127.0.0.1:0", "--api", apiAddr,
			"--state-dir", stateDir, "--control", filepath.Join(stateDir, "control.sock"),
			"--root", t.TempDir(), "--ssh-port", "0", "--advertise", "127.0.1.9", "--profile", "local"})
	}()
	agenttest.WaitFor(t, 10*time.Second, "top against the in-process agent", func() (bool, string) {
		out, _, code := run("top", "--ip", "--api", apiAddr)
		return code == 0 && out == "127.0.1.9\n", fmt.Sprintf("exit %d %q\n%s", code, out, stderr.String())
	})
	resp, err := http.Get("http://" + apiAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := readAll(resp)
	if !strings.Contains(metrics, "go_goroutines") || !strings.Contains(metrics, "process_") {
		t.Errorf("/metrics lacks Go and process collectors")
	}
	// drain and undrain go through the control socket in the state dir,
	// and the agent logs who did it and why.
	sock := filepath.Join(stateDir, "control.sock")
	if out, errOut, code := run("drain", "--reason", "kernel update", "--control", sock); code != 0 || out != "solo drained: kernel update\n" {
		t.Errorf("drain: exit %d %q %q", code, out, errOut)
	}
	if out, errOut, code := run("undrain", "--control", sock); code != 0 || out != "solo undrained\n" {
		t.Errorf("undrain: exit %d %q %q", code, out, errOut)
	}
	for _, want := range []string{`msg=drained node=solo reason="kernel update" by="root (uid 0`, `msg=undrained node=solo by="root (uid 0`} {
		if os.Geteuid() == 0 && !strings.Contains(stderr.String(), want) {
			t.Errorf("agent log lacks %q:\n%s", want, stderr.String())
		}
	}
	sig <- syscall.SIGHUP
	agenttest.WaitFor(t, 10*time.Second, "a reload logged after HUP", func() (bool, string) {
		return strings.Contains(stderr.String(), "reloaded"), stderr.String()
	})
	sig <- syscall.SIGTERM
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("agent exit %d after TERM:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("agent did not exit after TERM:\n%s", stderr.String())
	}
	if _, _, code := run("top", "--api", apiAddr); code != 1 {
		t.Errorf("API still answering after shutdown")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("control socket left behind: %v", err)
	}
}

func readAll(resp *http.Response) (string, error) {
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err := b.ReadFrom(resp.Body)
	return b.String(), err
}
