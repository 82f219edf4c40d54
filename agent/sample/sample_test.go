package sample

import (
	"github.com/peerload/peerload/agent/report"

	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

const capturedProcRoot = "testdata/proc"

func TestParseUptime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "352.42 605.59\n", want: 352*time.Second + 420*time.Millisecond},
		{in: "0.00 0.00", want: 0},
		{in: "86400", want: 24 * time.Hour},
		{in: "", wantErr: true},
		{in: "   \n", wantErr: true},
		{in: "abc 1.0", wantErr: true},
		{in: "-5 1", wantErr: true},
		{in: "NaN 1", wantErr: true},
		{in: "1e300 1", wantErr: true},
	} {
		got, err := parseUptime([]byte(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseUptime(%q) = %v, want error", tc.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseUptime(%q): %v", tc.in, err)
			continue
		}
		if d := got - tc.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("parseUptime(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseProcStatTTY(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "6543 (sleep) S 6538 6543 6543 34816 6543 4194304 97 0 0 0 0 0 0 0 20 0 1 0", want: 34816},
		{in: "1 (process_api) S 0 1 1 0 -1 4194560 1 0 0 0", want: 0},
		{in: "6771 (we) ird) S 6769 6771 6771 34820 6771 4194304", want: 34820},
		{in: "7 (a (b) c) R 1 1 1 1025 1", want: 1025},
		{in: "1 (x)", wantErr: true},
		{in: "1 (x) S 0 1", wantErr: true},
		{in: "no parenthesis at all", wantErr: true},
		{in: "1 (x) S 0 1 1 tty 1", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := parseProcStatTTY([]byte(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseProcStatTTY(%q) = %d, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseProcStatTTY(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseStatusUID(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{in: "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1001\t0\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\n", want: 1001},
		{in: "Uid:\t0\t0\t0\t0", want: 0},
		{in: "Name:\tx\nGid:\t1\t1\t1\t1\n", wantErr: true},
		{in: "Uid:\n", wantErr: true},
		{in: "Uid:\tx\t0\t0\t0\n", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := parseStatusUID([]byte(tc.in))
		if tc.wantErr {
			if err == nil {
				t.Errorf("parseStatusUID(%q) = %d, want error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseStatusUID(%q) = %d, %v, want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCPUUtil(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prev, cur cpuTimes
		want      float64
	}{
		{"half busy", cpuTimes{busy: 10, total: 100}, cpuTimes{busy: 60, total: 200}, 0.5},
		{"idle", cpuTimes{busy: 10, total: 100}, cpuTimes{busy: 10, total: 150}, 0},
		{"fully busy", cpuTimes{busy: 10, total: 100}, cpuTimes{busy: 110, total: 200}, 1},
		{"no time passed", cpuTimes{busy: 10, total: 100}, cpuTimes{busy: 10, total: 100}, 0},
		{"counters restarted", cpuTimes{busy: 500, total: 1000}, cpuTimes{busy: 5, total: 10}, 0},
		{"busy ran backwards", cpuTimes{busy: 50, total: 100}, cpuTimes{busy: 40, total: 200}, 0},
		{"busy beyond total", cpuTimes{busy: 0, total: 100}, cpuTimes{busy: 300, total: 200}, 1},
	} {
		if got := cpuUtil(tc.prev, tc.cur); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: cpuUtil = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseCPUFromStat(t *testing.T) {
	st := procfs.Stat{
		CPUTotal: procfs.CPUStat{User: 10, Nice: 1, System: 5, Idle: 80, Iowait: 2, IRQ: 1, SoftIRQ: 0.5, Steal: 0.5, Guest: 3, GuestNice: 1},
		CPU:      map[int64]procfs.CPUStat{0: {}, 1: {}, 2: {}, 3: {}},
	}
	cpus, ct, err := cpuFromStat(st)
	if err != nil {
		t.Fatal(err)
	}
	if cpus != 4 {
		t.Errorf("cpus = %d, want 4", cpus)
	}
	// Guest time is inside User already: busy 18, idle 82.
	if ct.busy != 18 || ct.total != 100 {
		t.Errorf("cpuTimes = %+v, want busy 18 total 100", ct)
	}
	if _, _, err := cpuFromStat(procfs.Stat{CPUTotal: st.CPUTotal}); err == nil || !strings.Contains(err.Error(), "cpuN") {
		t.Errorf("stat without cpuN lines: err = %v, want one naming cpuN lines", err)
	}
}

func procU64(v uint64) *uint64 { return &v }

func TestParseMemFromMeminfo(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		m                      procfs.Meminfo
		total, avail, swapUsed uint64
		wantErr                bool
	}{
		{
			name:  "modern",
			m:     procfs.Meminfo{MemTotalBytes: procU64(8 << 30), MemAvailableBytes: procU64(6 << 30), MemFreeBytes: procU64(1 << 30), SwapTotalBytes: procU64(2 << 30), SwapFreeBytes: procU64(1 << 30)},
			total: 8 << 30, avail: 6 << 30, swapUsed: 1 << 30,
		},
		{
			name:  "before 3.14: free+buffers+cached",
			m:     procfs.Meminfo{MemTotalBytes: procU64(1000), MemFreeBytes: procU64(100), BuffersBytes: procU64(50), CachedBytes: procU64(250)},
			total: 1000, avail: 400,
		},
		{
			name:  "no swap lines",
			m:     procfs.Meminfo{MemTotalBytes: procU64(1000), MemAvailableBytes: procU64(10)},
			total: 1000, avail: 10,
		},
		{
			name:  "available above total is clamped",
			m:     procfs.Meminfo{MemTotalBytes: procU64(1000), MemAvailableBytes: procU64(5000)},
			total: 1000, avail: 1000,
		},
		{
			name:  "swap free above total",
			m:     procfs.Meminfo{MemTotalBytes: procU64(1000), MemAvailableBytes: procU64(10), SwapTotalBytes: procU64(5), SwapFreeBytes: procU64(9)},
			total: 1000, avail: 10,
		},
		{name: "no MemTotal", m: procfs.Meminfo{MemAvailableBytes: procU64(10)}, wantErr: true},
		{name: "zero MemTotal", m: procfs.Meminfo{MemTotalBytes: procU64(0), MemAvailableBytes: procU64(0)}, wantErr: true},
		{name: "nothing available", m: procfs.Meminfo{MemTotalBytes: procU64(1000)}, wantErr: true},
	} {
		total, avail, swapUsed, err := memFromMeminfo(tc.m)
		if tc.wantErr {
			if err == nil {
				t.Errorf("%s: want error", tc.name)
			}
			continue
		}
		if err != nil || total != tc.total || avail != tc.avail || swapUsed != tc.swapUsed {
			t.Errorf("%s: got %d %d %d %v, want %d %d %d", tc.name, total, avail, swapUsed, err, tc.total, tc.avail, tc.swapUsed)
		}
	}
}

func TestParseLoadAverages(t *testing.T) {
	got, err := loadAverages(&procfs.LoadAvg{Load1: 0.5, Load5: 1, Load15: 2})
	if err != nil || got != [3]float64{0.5, 1, 2} {
		t.Errorf("loadAverages = %v, %v", got, err)
	}
	for _, bad := range []procfs.LoadAvg{{Load1: math.NaN()}, {Load5: math.Inf(1)}, {Load15: -1}, {Load1: 2e9}} {
		if _, err := loadAverages(&bad); err == nil {
			t.Errorf("loadAverages(%+v): want error", bad)
		}
	}
}

func TestParseCPUPressure(t *testing.T) {
	if got := cpuPressure(procfs.PSIStats{Some: &procfs.PSILine{Avg10: 12.5}}); got != 12.5 {
		t.Errorf("cpuPressure = %v, want 12.5", got)
	}
	if got := cpuPressure(procfs.PSIStats{Full: &procfs.PSILine{Avg10: 3}}); got != -1 {
		t.Errorf("cpuPressure without some line = %v, want -1", got)
	}
	if got := cpuPressure(procfs.PSIStats{Some: &procfs.PSILine{Avg10: 150}}); got != -1 {
		t.Errorf("cpuPressure of 150%% = %v, want -1", got)
	}
}

func TestSampleCapturedRoot(t *testing.T) {
	s, err := NewProc(capturedProcRoot)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	want := report.Load{
		Load1: 0.08, Load5: 0.23, Load15: 0.11,
		CPUs:         2,
		MemTotal:     24684100 << 10,
		MemAvailable: 24252544 << 10,
		SwapUsed:     0,
		CPUPressure:  0.81,
		Users:        3, // uids 1000, 1001, 1002 on a tty; not root, not nobody
		Uptime:       352*time.Second + 420*time.Millisecond,
	}
	if d := l.Uptime - want.Uptime; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("Uptime = %v, want %v", l.Uptime, want.Uptime)
	}
	l.Uptime = want.Uptime
	if l != want {
		t.Errorf("Sample =\n %+v\nwant\n %+v", l, want)
	}
	// The files did not change, so the second sample sees no CPU time pass.
	l2, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l2.CPUUtil != 0 {
		t.Errorf("CPUUtil over unchanged stat = %v, want 0", l2.CPUUtil)
	}
}

func TestSampleOptionalMissingDegrades(t *testing.T) {
	s, err := NewProc(filepath.Join(capturedProcRoot, "variants", "nopressure"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.CPUPressure != -1 || l.Uptime != 0 || l.Users != 0 {
		t.Errorf("without pressure, uptime and processes: pressure %v uptime %v users %d, want -1 0 0", l.CPUPressure, l.Uptime, l.Users)
	}
	if l.CPUs != 2 || l.Load1 != 0.08 || l.MemTotal == 0 {
		t.Errorf("required sources lost: %+v", l)
	}
}

func TestSampleOldKernelMeminfo(t *testing.T) {
	s, err := NewProc(filepath.Join(capturedProcRoot, "variants", "oldkernel"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(215036+120408+1839584) << 10; l.MemAvailable != want {
		t.Errorf("MemAvailable = %d, want MemFree+Buffers+Cached = %d", l.MemAvailable, want)
	}
	if want := uint64(2097148-1572860) << 10; l.SwapUsed != want {
		t.Errorf("SwapUsed = %d, want %d", l.SwapUsed, want)
	}
}

// copyRoot copies the captured root's top-level files (not the process
// directories) into a temporary directory, leaving out skip.
func procCopyRoot(t *testing.T, skip ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"loadavg", "stat", "meminfo", "uptime", "pressure/cpu", "net/tcp", "net/tcp6"} {
		if strings.Contains(strings.Join(skip, " "), f) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(capturedProcRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		procWriteFile(t, filepath.Join(dir, f), string(b))
	}
	return dir
}

func procWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSampleMissingRequiredFile(t *testing.T) {
	for _, f := range []string{"loadavg", "stat", "meminfo"} {
		root := procCopyRoot(t, f)
		_, err := NewProc(root)
		if err == nil {
			t.Errorf("root without %s: NewProc succeeded", f)
			continue
		}
		if !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), f) {
			t.Errorf("root without %s: error %q does not name the file and the root", f, err)
		}
	}
	if _, err := NewProc(filepath.Join(t.TempDir(), "nope")); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing root: err = %v, want one naming the root", err)
	}
}

func TestSampleMalformedRequiredFile(t *testing.T) {
	for _, tc := range []struct{ file, content, wantErr string }{
		{"loadavg", "0.1 0.2\n", "loadavg"},
		{"loadavg", "NaN 0.2 0.3 1/2 3\n", "load average 1"},
		{"stat", "intr 1\nctxt 2\n", "no cpuN lines"},
		{"stat", "cpu  x y z\n", "stat"},
		{"meminfo", "MemTotal: lots kB\n", "meminfo"},
		{"meminfo", "MemFree: 100 kB\n", "no MemTotal"},
	} {
		root := procCopyRoot(t)
		procWriteFile(t, filepath.Join(root, tc.file), tc.content)
		_, err := NewProc(root)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.file) {
			t.Errorf("%s = %q: err = %v, want one containing %q", tc.file, tc.content, err, tc.wantErr)
		}
	}
}

func TestSampleRequiredFileVanishes(t *testing.T) {
	root := procCopyRoot(t)
	s, err := NewProc(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(root, "meminfo")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(); err == nil || !strings.Contains(err.Error(), "meminfo") {
		t.Errorf("Sample without meminfo: err = %v", err)
	}
}

func TestSampleMalformedOptionalFiles(t *testing.T) {
	root := procCopyRoot(t)
	procWriteFile(t, filepath.Join(root, "uptime"), "garbage\n")
	procWriteFile(t, filepath.Join(root, "pressure/cpu"), "some avg10=x\n")
	procWriteFile(t, filepath.Join(root, "1/stat"), "1 (x)")
	procWriteFile(t, filepath.Join(root, "1/status"), "Uid:\t1000\t1000\t1000\t1000\n")
	s, err := NewProc(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.Uptime != 0 || l.CPUPressure != -1 || l.Users != 0 {
		t.Errorf("malformed optional files: uptime %v pressure %v users %d, want 0 -1 0", l.Uptime, l.CPUPressure, l.Users)
	}
}

func TestSampleCPUUtilFromTwoStats(t *testing.T) {
	root := procCopyRoot(t)
	// user nice system idle iowait irq softirq steal guest guest_nice
	procWriteFile(t, filepath.Join(root, "stat"), "cpu  1000 0 500 8000 500 0 0 0 0 0\ncpu0 500 0 250 4000 250 0 0 0 0 0\ncpu1 500 0 250 4000 250 0 0 0 0 0\n")
	s, err := NewProc(root)
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.CPUUtil != 0 {
		t.Errorf("first CPUUtil = %v, want 0", l.CPUUtil)
	}
	// 200 ticks pass: 120 user+system+irq+steal, 80 idle+iowait.
	procWriteFile(t, filepath.Join(root, "stat"), "cpu  1080 10 520 8070 510 5 3 2 40 0\ncpu0 540 5 260 4035 255 3 2 1 20 0\ncpu1 540 5 260 4035 255 2 1 1 20 0\n")
	l, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(l.CPUUtil-0.6) > 1e-9 {
		t.Errorf("CPUUtil = %v, want 0.6", l.CPUUtil)
	}
}

// addProc writes a process directory whose stat and status are copies of
// captured ones with the pid, tty and uid replaced.
func procAddProc(t *testing.T, root string, pid, uid int, tty int64) {
	t.Helper()
	stat, err := os.ReadFile(filepath.Join(capturedProcRoot, "6543", "stat"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(stat))
	f[0] = strconv.Itoa(pid)
	f[6] = strconv.Itoa(int(tty))
	procWriteFile(t, filepath.Join(root, strconv.Itoa(pid), "stat"), strings.Join(f, " ")+"\n")
	status, err := os.ReadFile(filepath.Join(capturedProcRoot, "6543", "status"))
	if err != nil {
		t.Fatal(err)
	}
	u := strconv.Itoa(uid)
	out := strings.ReplaceAll(string(status), "Uid:\t1000\t1000\t1000\t1000", "Uid:\t"+u+"\t"+u+"\t"+u+"\t"+u)
	procWriteFile(t, filepath.Join(root, strconv.Itoa(pid), "status"), out)
}

func TestSampleUsersCountedAndRefreshedEvery30s(t *testing.T) {
	root := procCopyRoot(t)
	procAddProc(t, root, 100, 1000, 34816) // a user on pts/0
	procAddProc(t, root, 101, 1000, 34817) // the same user again
	procAddProc(t, root, 102, 1500, 0)     // a user's daemon, no tty
	procAddProc(t, root, 103, 0, 34818)    // root on a tty
	procAddProc(t, root, 104, 999, 34819)  // a system account
	s, err := NewProc(root)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.Users != 1 {
		t.Fatalf("Users = %d, want 1", l.Users)
	}

	procAddProc(t, root, 105, 2000, 34820)
	now = now.Add(usersRefresh - time.Second)
	if l, _ = s.Sample(); l.Users != 1 {
		t.Errorf("Users within the refresh interval = %d, want the cached 1", l.Users)
	}
	now = now.Add(time.Second)
	if l, _ = s.Sample(); l.Users != 2 {
		t.Errorf("Users after the refresh interval = %d, want 2", l.Users)
	}
}

func TestSampleLiveProc(t *testing.T) {
	if _, err := os.Stat("/proc/loadavg"); err != nil {
		t.Skip("no /proc on this system")
	}
	s, err := NewProc("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	// Burn a little CPU so the second sample has something to measure.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.CPUs < 1 || l.MemTotal == 0 || l.MemAvailable > l.MemTotal || l.Uptime <= 0 {
		t.Errorf("implausible live sample %+v", l)
	}
	if l.CPUUtil < 0 || l.CPUUtil > 1 {
		t.Errorf("CPUUtil = %v, want 0..1", l.CPUUtil)
	}
	if l.CPUPressure < -1 || l.CPUPressure > 100 {
		t.Errorf("CPUPressure = %v", l.CPUPressure)
	}
}

// BenchmarkSample is one sampling tick on the captured root: the files
// read every interval, without the periodic count of logged-in users.
func BenchmarkSample(b *testing.B) {
	s, err := NewProc(capturedProcRoot)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Sample(); err != nil { // counts the users
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sample(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSampleUsers is one count of logged-in users on the captured
// root, which the sampler does at most every usersRefresh.
func BenchmarkSampleUsers(b *testing.B) {
	s, err := NewProc(capturedProcRoot)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.countUsers(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseLoadAvgFile(t *testing.T) {
	got, err := parseLoadAvg([]byte("0.08 0.23 0.11 1/102 6662\n"))
	if err != nil || got != (procfs.LoadAvg{Load1: 0.08, Load5: 0.23, Load15: 0.11}) {
		t.Errorf("parseLoadAvg = %+v, %v", got, err)
	}
	for _, bad := range []string{"", "0.1 0.2\n", "0.1 x 0.3 1/2 3\n"} {
		if _, err := parseLoadAvg([]byte(bad)); err == nil {
			t.Errorf("parseLoadAvg(%q): want error", bad)
		}
	}
}

func TestParseStatFile(t *testing.T) {
	cpus := map[int64]procfs.CPUStat{}
	st, err := parseStat([]byte("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"+
		"cpu1 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\nctxt 4\nprocesses 6664\n"), cpus)
	if err != nil {
		t.Fatal(err)
	}
	if want := (procfs.CPUStat{User: 1, System: 0.5, Idle: 8, Iowait: 0.5}); st.CPUTotal != want || len(st.CPU) != 2 || st.CPU[1] != (procfs.CPUStat{User: 0.5, System: 0.25, Idle: 4, Iowait: 0.25}) {
		t.Errorf("parseStat = %+v", st)
	}
	if st.ProcessCreated != 6664 {
		t.Errorf("parseStat: forks = %d, want 6664", st.ProcessCreated)
	}
	for _, bad := range []string{"cpu  1 2 3\n", "cpu  x 0 0 0 0 0 0 0 0 0\n", "cpux 1 2 3 4 5 6 7 8 9 10\n"} {
		if _, err := parseStat([]byte(bad), map[int64]procfs.CPUStat{}); err == nil {
			t.Errorf("parseStat(%q): want error", bad)
		}
	}
}

func TestParseMeminfoFile(t *testing.T) {
	var vals [len(meminfoKeys)]uint64
	m, err := parseMeminfo([]byte("MemTotal:       1000 kB\nMemFree:         100 kB\nActive(anon):   x y z w\nHugePages_Total:       0\nSwapTotal:        10 kB\nSwapFree:          4 kB\n"), &vals)
	if err != nil {
		t.Fatal(err)
	}
	if *m.MemTotalBytes != 1000<<10 || *m.MemFreeBytes != 100<<10 || *m.SwapTotalBytes != 10<<10 || *m.SwapFreeBytes != 4<<10 {
		t.Errorf("parseMeminfo = %d %d %d %d", *m.MemTotalBytes, *m.MemFreeBytes, *m.SwapTotalBytes, *m.SwapFreeBytes)
	}
	if m.MemAvailableBytes != nil || m.BuffersBytes != nil || m.CachedBytes != nil {
		t.Errorf("parseMeminfo: lines that are not there are not nil")
	}
	for _, bad := range []string{"MemTotal: lots kB\n", "MemTotal: 1 MB\n", "MemTotal:\n", "MemTotal: 1 kB extra\n"} {
		if _, err := parseMeminfo([]byte(bad), &vals); err == nil {
			t.Errorf("parseMeminfo(%q): want error", bad)
		}
	}
}

func TestParsePSIFile(t *testing.T) {
	psi, err := parsePSI([]byte("some avg10=0.81 avg60=1.41 avg300=3.17 total=19802687\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"))
	if err != nil || psi.Some == nil || *psi.Some != (procfs.PSILine{Avg10: 0.81, Avg60: 1.41, Avg300: 3.17, Total: 19802687}) || psi.Full == nil {
		t.Errorf("parsePSI = %+v, %v", psi, err)
	}
	if psi, err := parsePSI([]byte("other 1\n")); err != nil || psi.Some != nil {
		t.Errorf("parsePSI of an unknown line = %+v, %v; want it skipped", psi, err)
	}
	for _, bad := range []string{"some avg10=x avg60=0 avg300=0 total=0\n", "some avg10=1\n", "full avg10=0 avg60=0 avg300=0 total=-1\n"} {
		if _, err := parsePSI([]byte(bad)); err == nil {
			t.Errorf("parsePSI(%q): want error", bad)
		}
	}
}

// TestSampleAllocatesLittle keeps a sampling tick from allocating per
// line parsed again: the files are read into one reused buffer.
func TestSampleAllocatesLittle(t *testing.T) {
	s, err := NewProc(capturedProcRoot)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sample(); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = s.Sample() }); n > 20 {
		t.Errorf("a sample allocates %v times, want at most 20", n)
	}
}

// procReplace rewrites a file of root in place (same inode, so the root
// directory does not change), replacing old with new.
func procReplace(t *testing.T, root, file, old, new string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s has no %q", file, old)
	}
	procWriteFile(t, filepath.Join(root, file), strings.Replace(string(b), old, new, 1))
}

// procWithClock is NewProc(root) with a clock the test steps by hand.
func procWithClock(t *testing.T, root string) (*Proc, *time.Time) {
	t.Helper()
	s, err := NewProc(root)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	s.now = func() time.Time { return now }
	return s, &now
}

// procWantUsers samples s and checks the users it reports.
func procWantUsers(t *testing.T, s *Proc, want int, when string) {
	t.Helper()
	l, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if l.Users != want {
		t.Errorf("Users %s = %d, want %d", when, l.Users, want)
	}
}

// TestSampleUsersRecountedWhenProcessesChanged: once the refresh interval
// is over, users are recounted only if a task started or ended (or a
// process directory came or went); a process taking a terminal in place
// shows in the count once one did.
func TestSampleUsersRecountedWhenProcessesChanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
	}{
		{"a fork (stat processes)", func(t *testing.T, root string) {
			procReplace(t, root, "stat", "processes 6664", "processes 6665")
		}},
		{"a new PID (loadavg)", func(t *testing.T, root string) {
			procReplace(t, root, "loadavg", " 6662", " 6663")
		}},
		{"a task ended (loadavg)", func(t *testing.T, root string) {
			procReplace(t, root, "loadavg", "1/102", "1/101")
		}},
		{"a process directory appeared", func(t *testing.T, root string) {
			procAddProc(t, root, 300, 0, 0)
		}},
		{"a process directory went", func(t *testing.T, root string) {
			if err := os.RemoveAll(filepath.Join(root, "102")); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := procCopyRoot(t)
			procAddProc(t, root, 100, 1000, 34816) // a user on pts/0
			procAddProc(t, root, 101, 2000, 0)     // another, no terminal yet
			procAddProc(t, root, 102, 0, 0)
			s, now := procWithClock(t, root)
			procWantUsers(t, s, 1, "at the first count")
			procAddProc(t, root, 101, 2000, 34817) // takes a terminal in place
			*now = now.Add(usersRefresh)
			procWantUsers(t, s, 1, "with no task started or ended (the count kept)")
			tc.change(t, root)
			*now = now.Add(usersRefresh - time.Second)
			procWantUsers(t, s, 1, "within the refresh interval")
			*now = now.Add(time.Second)
			procWantUsers(t, s, 2, "after "+tc.name)
		})
	}
}

// TestSampleUsersRecountedAfterMaxAge: with nothing changing, the count
// is still redone every usersMaxAge.
func TestSampleUsersRecountedAfterMaxAge(t *testing.T) {
	root := procCopyRoot(t)
	procAddProc(t, root, 101, 2000, 0)
	s, now := procWithClock(t, root)
	procWantUsers(t, s, 0, "at the first count")
	procAddProc(t, root, 101, 2000, 34817)
	for elapsed := usersRefresh; elapsed < usersMaxAge; elapsed += usersRefresh {
		*now = now.Add(usersRefresh)
		procWantUsers(t, s, 0, fmt.Sprintf("%v after the count, nothing changed", elapsed))
	}
	*now = now.Add(usersRefresh)
	procWantUsers(t, s, 1, "after usersMaxAge")
}

// TestSampleUsersRecountedAfterUnreadableProcess: a count that could not
// read a process (it was ending, or being written) is redone at the next
// refresh even if nothing else changed.
func TestSampleUsersRecountedAfterUnreadableProcess(t *testing.T) {
	root := procCopyRoot(t)
	procAddProc(t, root, 101, 2000, 34817)
	status := filepath.Join(root, "101", "status")
	if err := os.Rename(status, status+".away"); err != nil {
		t.Fatal(err)
	}
	s, now := procWithClock(t, root)
	procWantUsers(t, s, 0, "without a status file")
	if err := os.Rename(status+".away", status); err != nil {
		t.Fatal(err)
	}
	*now = now.Add(usersRefresh)
	procWantUsers(t, s, 1, "once the status is readable")
}

func TestParseLoadAvgTasks(t *testing.T) {
	for _, tc := range []struct {
		in             string
		tasks, lastPID uint64
	}{
		{"0.08 0.23 0.11 1/102 6662\n", 102, 6662},
		{"0.08 0.23 0.11\n", 0, 0},
		{"0.08 0.23 0.11 x y\n", 0, 0},
	} {
		if tasks, pid := parseLoadAvgTasks([]byte(tc.in)); tasks != tc.tasks || pid != tc.lastPID {
			t.Errorf("parseLoadAvgTasks(%q) = %d %d, want %d %d", tc.in, tasks, pid, tc.tasks, tc.lastPID)
		}
	}
}
