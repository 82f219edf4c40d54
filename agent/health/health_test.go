package health

import (
	"errors"
	"io"
	"testing/iotest"

	"github.com/peerload/peerload/agent/report"

	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// result returns the named result of Run, failing the test when absent.
func ckResult(t *testing.T, rs []report.CheckResult, name string) report.CheckResult {
	t.Helper()
	for _, r := range rs {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no %q result in %+v", name, rs)
	return report.CheckResult{}
}

func ckNames(rs []report.CheckResult) string {
	var n []string
	for _, r := range rs {
		n = append(n, r.Name)
	}
	return strings.Join(n, ",")
}

// quietRoot is a Root with an empty tmp directory and nothing else, so every
// file-based check passes.
func ckQuietRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCheckRunEnabledChecks(t *testing.T) {
	root := ckQuietRoot(t)
	drained := func() (bool, string) { return false, "" }
	rs := New(capturedProcRoot, Config{Root: root}, nil).Run(context.Background())
	if got := ckNames(rs); got != "nologin,tmp,reboot" {
		t.Errorf("default checks = %s, want nologin,tmp,reboot", got)
	}
	cc := Config{Root: root, SSHPort: 2024, Command: "true"}
	rs = New(capturedProcRoot, cc, drained).Run(context.Background())
	if got := ckNames(rs); got != "drain,nologin,sshd,tmp,reboot,command" {
		t.Errorf("all checks = %s", got)
	}
	for _, r := range rs {
		if !r.OK {
			t.Errorf("%s failed on a healthy tree: %s", r.Name, r.Reason)
		}
	}
}

func TestCheckDrain(t *testing.T) {
	root := ckQuietRoot(t)
	for _, tc := range []struct {
		on         bool
		reason     string
		wantOK     bool
		wantReason string
	}{
		{false, "", true, ""},
		{true, "kernel upgrade", false, "drained: kernel upgrade"},
		{true, "", false, "drained"},
	} {
		c := New(capturedProcRoot, Config{Root: root}, func() (bool, string) { return tc.on, tc.reason })
		r := ckResult(t, c.Run(context.Background()), "drain")
		if r.OK != tc.wantOK || r.Reason != tc.wantReason {
			t.Errorf("drained(%v, %q) = %+v, want ok %v reason %q", tc.on, tc.reason, r, tc.wantOK, tc.wantReason)
		}
	}
}

func TestCheckNologin(t *testing.T) {
	for _, tc := range []struct {
		file, content string
		wantReason    string
	}{
		{"", "", ""},
		{"etc/nologin", "\n  System maintenance until 17:00  \nsecond line\n", "/etc/nologin: System maintenance until 17:00"},
		{"etc/nologin", "", "/etc/nologin exists"},
		{"run/nologin", "System is going down in 5 minutes.\n", "/run/nologin: System is going down in 5 minutes."},
		{"etc/nologin", strings.Repeat("x", 500), "/etc/nologin: " + strings.Repeat("x", report.MaxReasonBytes)},
	} {
		root := ckQuietRoot(t)
		if tc.file != "" {
			writeFile(t, filepath.Join(root, tc.file), tc.content)
		}
		r := ckResult(t, New(capturedProcRoot, Config{Root: root}, nil).Run(context.Background()), "nologin")
		if r.OK != (tc.wantReason == "") || r.Reason != tc.wantReason {
			t.Errorf("%s=%q: %+v, want reason %q", tc.file, tc.content, r, tc.wantReason)
		}
	}
}

func TestParseTCPListening(t *testing.T) {
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 16 1 0 100 0 0 10 0
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000  1000        0 18 1 0 20 4 30 10 -1
`
	const table6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19 1 0 100 0 0 10 0
   1: 00000000000000000000000001000000:2382 00000000000000000000000001000000:D8A2 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0
`
	for _, tc := range []struct {
		table   string
		port    int
		want    bool
		wantErr bool
	}{
		{table, 22, true, false},
		{table, 3306, true, false},
		{table, 8080, false, false}, // established, not listening
		{table, 2024, false, false},
		{table6, 22, true, false},
		{table6, 9090, false, false}, // TIME_WAIT
		{"", 22, false, false},
		{"  sl local\n 0: nonsense\n", 22, false, true},
		{"  sl local\n 0: 0100007F:ZZZZ 00000000:0000 0A\n", 22, false, true},
		{"  sl local\n 0: 0100007F 00000000:0000 0A\n", 22, false, true},
		{"  sl local\n 0: garbage\n 1: 00000000:0016 00000000:0000 0A\n", 22, true, false},
	} {
		got, err := tcpListening(strings.NewReader(tc.table), tc.port)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("tcpListening(%.40q, %d) = %v, %v; want %v, error %v", tc.table, tc.port, got, err, tc.want, tc.wantErr)
		}
	}

	// The listeners come first: the scan reads no further than the first
	// other socket, however many connections follow.
	rest := iotest.ErrReader(errors.New("read past the listening sockets"))
	if got, err := tcpListening(io.MultiReader(strings.NewReader(table), rest), 2222); got || err != nil {
		t.Errorf("no listener on 2222: %v, %v; want false, no error and nothing read after the established socket", got, err)
	}
}

func TestCheckSSHDCapturedRoot(t *testing.T) {
	root := ckQuietRoot(t)
	r := ckResult(t, New(capturedProcRoot, Config{Root: root, SSHPort: 2024}, nil).Run(context.Background()), "sshd")
	if !r.OK {
		t.Errorf("port 2024 listens in the captured net/tcp, got %+v", r)
	}
	r = ckResult(t, New(capturedProcRoot, Config{Root: root, SSHPort: 22}, nil).Run(context.Background()), "sshd")
	if r.OK || r.Reason != "nothing listens on TCP port 22" {
		t.Errorf("port 22: %+v, want failure 'nothing listens on TCP port 22'", r)
	}
	empty := t.TempDir()
	r = ckResult(t, New(empty, Config{Root: root, SSHPort: 22}, nil).Run(context.Background()), "sshd")
	if r.OK || !strings.Contains(r.Reason, "no net/tcp") {
		t.Errorf("proc root without net/: %+v", r)
	}
	bad := t.TempDir()
	writeFile(t, filepath.Join(bad, "net/tcp"), "  sl local\n 0: garbage\n")
	r = ckResult(t, New(bad, Config{Root: root, SSHPort: 22}, nil).Run(context.Background()), "sshd")
	if r.OK || !strings.Contains(r.Reason, "line 2") {
		t.Errorf("malformed net/tcp: %+v, want the line named", r)
	}
}

// TestCheckSSHDLiveSockets listens on loopback and expects the check to find
// the socket in the real /proc/net/tcp and tcp6, and not after it closed.
func TestCheckSSHDLiveSockets(t *testing.T) {
	if _, err := os.Stat("/proc/net/tcp"); err != nil {
		t.Skip("no /proc/net/tcp")
	}
	root := ckQuietRoot(t)
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		ln, err := net.Listen(network, addr)
		if err != nil {
			if network == "tcp6" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		c := New("", Config{Root: root, SSHPort: port}, nil)
		if r := ckResult(t, c.Run(context.Background()), "sshd"); !r.OK {
			t.Errorf("%s listener on %d not found: %+v", network, port, r)
		}
		ln.Close()
		if r := ckResult(t, c.Run(context.Background()), "sshd"); r.OK {
			t.Errorf("%s port %d still found listening after close", network, port)
		}
	}
}

func TestParseFSUsage(t *testing.T) {
	for _, tc := range []struct {
		st             syscall.Statfs_t
		blocks, inodes float64
	}{
		// 100 blocks, 10 free of which 5 for root only: 90/(90+5) as df says.
		{syscall.Statfs_t{Blocks: 100, Bfree: 10, Bavail: 5, Files: 1000, Ffree: 250}, 100 * 90.0 / 95, 75},
		{syscall.Statfs_t{Blocks: 100, Bfree: 100, Bavail: 100, Files: 10, Ffree: 10}, 0, 0},
		{syscall.Statfs_t{Blocks: 100, Bfree: 0, Bavail: 0, Files: 0, Ffree: 0}, 100, 0}, // no inode limit
		{syscall.Statfs_t{}, 0, 0},
	} {
		b, i := fsUsage(tc.st)
		if ckDiff(b, tc.blocks) > 1e-9 || ckDiff(i, tc.inodes) > 1e-9 {
			t.Errorf("fsUsage(%+v) = %v, %v; want %v, %v", tc.st, b, i, tc.blocks, tc.inodes)
		}
	}
}

func ckDiff(a, b float64) float64 {
	if a > b {
		return a - b
	}
	return b - a
}

func TestCheckTmp(t *testing.T) {
	root := ckQuietRoot(t)
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Join(root, "tmp"), &st); err != nil {
		t.Fatal(err)
	}
	blocks, _ := fsUsage(st)
	if blocks <= 0 || blocks >= 95 {
		t.Skipf("the test file system is %.1f%% full; cannot test both sides of the limit", blocks)
	}
	c := New(capturedProcRoot, Config{Root: root}, nil)
	if c.cc.TmpFullPercent != defaultTmpFullPercent {
		t.Errorf("TmpFullPercent 0 became %v, want the default %v", c.cc.TmpFullPercent, defaultTmpFullPercent)
	}
	if r := ckResult(t, c.Run(context.Background()), "tmp"); !r.OK {
		t.Errorf("tmp at %.1f%% with limit 95: %+v", blocks, r)
	}
	c = New(capturedProcRoot, Config{Root: root, TmpFullPercent: blocks / 2}, nil)
	r := ckResult(t, c.Run(context.Background()), "tmp")
	if r.OK || !strings.Contains(r.Reason, "full") {
		t.Errorf("tmp at %.1f%% with limit %.1f%%: %+v, want failure", blocks, blocks/2, r)
	}

	noTmp := t.TempDir()
	r = ckResult(t, New(capturedProcRoot, Config{Root: noTmp}, nil).Run(context.Background()), "tmp")
	if !r.OK || !strings.Contains(r.Reason, "does not exist") {
		t.Errorf("tree without tmp: %+v, want a pass that says so", r)
	}
}

func TestParseScheduledShutdown(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"USEC=1718000000000000\nWARN_WALL=1\nMODE=reboot\n", "reboot scheduled for 2024-06-10T06:13:20Z"},
		{"MODE=poweroff\n", "poweroff scheduled"},
		{"USEC=1718000000000000\n", "shutdown scheduled for 2024-06-10T06:13:20Z"},
		{"", "shutdown scheduled"},
		{"USEC=soon\nMODE=\n", "shutdown scheduled"},
	} {
		if got := describeScheduledShutdown([]byte(tc.in)); got != tc.want {
			t.Errorf("describeScheduledShutdown(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestCheckReboot(t *testing.T) {
	root := ckQuietRoot(t)
	c := New(capturedProcRoot, Config{Root: root}, nil)
	if r := ckResult(t, c.Run(context.Background()), "reboot"); !r.OK {
		t.Errorf("nothing scheduled: %+v", r)
	}
	writeFile(t, filepath.Join(root, "run/systemd/shutdown/scheduled"), "USEC=1718000000000000\nWARN_WALL=1\nMODE=reboot\n")
	r := ckResult(t, c.Run(context.Background()), "reboot")
	if r.OK || r.Reason != "reboot scheduled for 2024-06-10T06:13:20Z" {
		t.Errorf("reboot scheduled: %+v", r)
	}
}

func TestCheckCommand(t *testing.T) {
	root := ckQuietRoot(t)
	for _, tc := range []struct {
		cmd        string
		timeout    time.Duration
		wantOK     bool
		wantReason string
	}{
		{cmd: "true", wantOK: true},
		{cmd: "echo all good; exit 0", wantOK: true},
		{cmd: "echo; echo '  disk quota service down  '; echo more; exit 3", wantReason: "disk quota service down"},
		{cmd: "echo to stderr >&2; exit 1", wantReason: "to stderr"},
		{cmd: "exit 2", wantReason: "exit status 2"},
		{cmd: "echo starting; sleep 30", timeout: 200 * time.Millisecond, wantReason: "timed out after 200ms: starting"},
		// The pipeline's sleep keeps stdout open; the group kill ends it.
		{cmd: "sleep 30 | cat", timeout: 200 * time.Millisecond, wantReason: "timed out after 200ms"},
		{cmd: "no-such-command-peerload", wantReason: "not found"},
	} {
		c := New(capturedProcRoot, Config{Root: root, Command: tc.cmd, CommandTimeout: tc.timeout}, nil)
		start := time.Now()
		r := ckResult(t, c.Run(context.Background()), "command")
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%q took %v", tc.cmd, took)
		}
		if r.OK != tc.wantOK || !strings.Contains(r.Reason, tc.wantReason) {
			t.Errorf("%q: %+v, want ok %v reason containing %q", tc.cmd, r, tc.wantOK, tc.wantReason)
		}
	}
}

func TestCheckCommandCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	c := New(capturedProcRoot, Config{Root: ckQuietRoot(t), Command: "sleep 30"}, nil)
	start := time.Now()
	r := ckResult(t, c.Run(ctx), "command")
	if r.OK || r.Reason != "canceled" || time.Since(start) > 3*time.Second {
		t.Errorf("canceled run: %+v after %v", r, time.Since(start))
	}
	if c.cc.CommandTimeout != defaultCommandTimeout {
		t.Errorf("CommandTimeout 0 became %v, want %v", c.cc.CommandTimeout, defaultCommandTimeout)
	}
}

// capturedProcRoot is the sampler's captured /proc: the sshd check reads its
// net/tcp and net/tcp6.
const capturedProcRoot = "../sample/testdata/proc"

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
