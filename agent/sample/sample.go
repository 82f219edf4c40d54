// Package sample reads a machine's load from /proc (prometheus/procfs):
// load averages, CPUs and utilisation, memory, swap, CPU pressure, uptime
// and logged-in users. Reading is split from parsing, and the proc root is
// a parameter, so tests and the lab give every simulated node its own.
package sample

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"

	"github.com/peerload/peerload/agent/report"
)

// Sampler produces one load sample. The agent calls it from one goroutine
// once per sampling interval; tests and benchmarks drive load through their
// own.
type Sampler interface {
	Sample() (report.Load, error)
}

// usersRefresh is how long a count of logged-in users is reused: counting
// reads two files per process, far more than everything else a sample
// reads, and people do not log in and out every few seconds.
const usersRefresh = 30 * time.Second

// firstHumanUID and nobodyUID bound the UIDs counted as people: system
// accounts are below 1000 (Debian, Fedora, SUSE) and nobody is no one.
const (
	firstHumanUID = 1000
	nobodyUID     = 65534
)

// Proc samples a node's load from a proc file system: the real
// /proc, or a directory of captured or generated files laid out like it
// (tests and demos give every simulated node its own root).
//
// loadavg, stat and meminfo are required; pressure/cpu, uptime and the
// per-process directories are optional and their absence degrades the
// sample (CPUPressure -1, Uptime 0, Users 0) instead of failing it.
// A Proc is safe for concurrent use, although the agent calls it from
// one goroutine.
type Proc struct {
	root string
	fs   procfs.FS
	now  func() time.Time // replaced in tests to step past usersRefresh

	mu       sync.Mutex
	prevCPU  cpuTimes
	havePrev bool
	users    int
	usersAt  time.Time
	counted  bool
}

// NewProc opens procRoot ("" for /proc) and reads each required file
// once, so a wrong root or a kernel without one of them fails at start with
// an error naming the file rather than at every sample.
func NewProc(procRoot string) (*Proc, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	pfs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("proc root %s: %w", procRoot, err)
	}
	s := &Proc{root: procRoot, fs: pfs, now: time.Now}
	if _, err := s.readLoadAvg(); err != nil {
		return nil, err
	}
	if _, _, err := s.readStat(); err != nil {
		return nil, err
	}
	if _, _, _, err := s.readMeminfo(); err != nil {
		return nil, err
	}
	return s, nil
}

// Sample reads every source once. CPUUtil covers the time since the
// previous call and is 0 on the first. A required file that became
// unreadable or malformed fails the sample; optional ones degrade it.
func (s *Proc) Sample() (report.Load, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l report.Load
	avg, err := s.readLoadAvg()
	if err != nil {
		return report.Load{}, err
	}
	l.Load1, l.Load5, l.Load15 = avg[0], avg[1], avg[2]

	cpus, cur, err := s.readStat()
	if err != nil {
		return report.Load{}, err
	}
	l.CPUs = cpus
	if s.havePrev {
		l.CPUUtil = cpuUtil(s.prevCPU, cur)
	}
	s.prevCPU, s.havePrev = cur, true

	l.MemTotal, l.MemAvailable, l.SwapUsed, err = s.readMeminfo()
	if err != nil {
		return report.Load{}, err
	}
	l.CPUPressure = s.readCPUPressure()
	l.Uptime = s.readUptime()

	if now := s.now(); !s.counted || now.Sub(s.usersAt) >= usersRefresh {
		if n, err := s.countUsers(); err == nil {
			s.users = n
		}
		// On error (no process directories at all) the last count stays;
		// either way the next attempt waits a full refresh interval.
		s.usersAt, s.counted = now, true
	}
	l.Users = s.users
	return l, nil
}

// fileError names the file and the proc root, which is what an operator
// needs when --proc-root points somewhere unexpected.
func (s *Proc) fileError(file string, err error) error {
	return fmt.Errorf("proc root %s: %s: %w", s.root, file, err)
}

// --- loadavg ---------------------------------------------------------------

func (s *Proc) readLoadAvg() ([3]float64, error) {
	a, err := s.fs.LoadAvg()
	if err != nil {
		return [3]float64{}, s.fileError("loadavg", err)
	}
	avg, err := loadAverages(a)
	if err != nil {
		return [3]float64{}, s.fileError("loadavg", err)
	}
	return avg, nil
}

// loadAverages rejects what strconv accepts but no kernel writes (NaN,
// Inf, negatives): such a value would make every report undecodable.
func loadAverages(a *procfs.LoadAvg) ([3]float64, error) {
	avg := [3]float64{a.Load1, a.Load5, a.Load15}
	for i, v := range avg {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e9 {
			return [3]float64{}, fmt.Errorf("load average %d is %v, want a non-negative number", i+1, v)
		}
	}
	return avg, nil
}

// --- stat ------------------------------------------------------------------

// cpuTimes are the seconds all CPUs together spent busy and in total.
type cpuTimes struct {
	busy, total float64
}

func (s *Proc) readStat() (int, cpuTimes, error) {
	st, err := s.fs.Stat()
	if err != nil {
		return 0, cpuTimes{}, s.fileError("stat", err)
	}
	cpus, t, err := cpuFromStat(st)
	if err != nil {
		return 0, cpuTimes{}, s.fileError("stat", err)
	}
	return cpus, t, nil
}

// cpuFromStat counts the cpuN lines and sums the aggregate cpu line. Guest
// time is already part of user time, so it is not added again; iowait is
// idle (the CPU could run something else).
func cpuFromStat(st procfs.Stat) (int, cpuTimes, error) {
	if len(st.CPU) == 0 {
		return 0, cpuTimes{}, errors.New("no cpuN lines")
	}
	c := st.CPUTotal
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	idle := c.Idle + c.Iowait
	return len(st.CPU), cpuTimes{busy: busy, total: busy + idle}, nil
}

// cpuUtil is the busy fraction between two readings, clamped to 0..1:
// iowait is known to run backwards on some kernels and counters restart
// when a simulated root is regenerated, so a negative delta means "no
// information", not an error.
func cpuUtil(prev, cur cpuTimes) float64 {
	dt := cur.total - prev.total
	if dt <= 0 {
		return 0
	}
	u := (cur.busy - prev.busy) / dt
	return min(max(u, 0), 1)
}

// --- meminfo ---------------------------------------------------------------

func (s *Proc) readMeminfo() (total, avail, swapUsed uint64, err error) {
	m, err := s.fs.Meminfo()
	if err != nil {
		return 0, 0, 0, s.fileError("meminfo", err)
	}
	total, avail, swapUsed, err = memFromMeminfo(m)
	if err != nil {
		return 0, 0, 0, s.fileError("meminfo", err)
	}
	return total, avail, swapUsed, nil
}

// memFromMeminfo returns bytes. Kernels before 3.14 have no MemAvailable;
// MemFree+Buffers+Cached is the estimate free(1) used then.
func memFromMeminfo(m procfs.Meminfo) (total, avail, swapUsed uint64, err error) {
	if m.MemTotalBytes == nil || *m.MemTotalBytes == 0 {
		return 0, 0, 0, errors.New("no MemTotal")
	}
	total = *m.MemTotalBytes
	switch {
	case m.MemAvailableBytes != nil:
		avail = *m.MemAvailableBytes
	case m.MemFreeBytes != nil:
		avail = *m.MemFreeBytes + deref(m.BuffersBytes) + deref(m.CachedBytes)
	default:
		return 0, 0, 0, errors.New("neither MemAvailable nor MemFree")
	}
	avail = min(avail, total)
	if st, sf := deref(m.SwapTotalBytes), deref(m.SwapFreeBytes); st > sf {
		swapUsed = st - sf
	}
	return total, avail, swapUsed, nil
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// --- pressure/cpu ----------------------------------------------------------

// readCPUPressure returns -1 when the kernel has no PSI (before 4.20, or
// booted with psi=0, where the file exists but reading it fails).
func (s *Proc) readCPUPressure() float64 {
	psi, err := s.fs.PSIStatsForResource("cpu")
	if err != nil {
		return -1
	}
	return cpuPressure(psi)
}

func cpuPressure(psi procfs.PSIStats) float64 {
	if psi.Some == nil {
		return -1
	}
	v := psi.Some.Avg10
	if math.IsNaN(v) || v < 0 || v > 100 {
		return -1
	}
	return v
}

// --- uptime ----------------------------------------------------------------

// readUptime returns 0 when uptime is missing or malformed; procfs has no
// reader for it.
func (s *Proc) readUptime() time.Duration {
	b, err := os.ReadFile(filepath.Join(s.root, "uptime"))
	if err != nil {
		return 0
	}
	d, err := parseUptime(b)
	if err != nil {
		return 0
	}
	return d
}

// parseUptime reads the first field of /proc/uptime ("12345.67 54321.00").
func parseUptime(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("uptime: empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("uptime: %q is not a number of seconds", f[0])
	}
	return time.Duration(v * float64(time.Second)), nil
}

// --- users -----------------------------------------------------------------

// countUsers counts distinct human UIDs owning a process with a controlling
// terminal: a login shell, an ssh session, a tmux client. Processes vanish
// while we read; those are skipped. It reads the files itself rather than
// through procfs.Proc.Stat, which scans 40 fields with fmt.Fscan where one is
// needed and panics on a truncated stat line.
func (s *Proc) countUsers() (int, error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return 0, s.fileError("process list", err)
	}
	uids := make(map[uint64]struct{})
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 32); err != nil {
			continue
		}
		dir := filepath.Join(s.root, e.Name())
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		tty, err := parseProcStatTTY(stat)
		if err != nil || tty == 0 {
			continue
		}
		status, err := os.ReadFile(filepath.Join(dir, "status"))
		if err != nil {
			continue
		}
		uid, err := parseStatusUID(status)
		if err != nil {
			continue
		}
		if isHumanUID(uid) {
			uids[uid] = struct{}{}
		}
	}
	return len(uids), nil
}

func isHumanUID(uid uint64) bool {
	return uid >= firstHumanUID && uid != nobodyUID
}

// parseProcStatTTY returns tty_nr, the 7th field of /proc/<pid>/stat. The
// command name (2nd field) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcStatTTY(b []byte) (int64, error) {
	r := bytes.LastIndexByte(b, ')')
	if r < 0 {
		return 0, errors.New("stat: no command name")
	}
	// After ')': state ppid pgrp session tty_nr ...
	f := strings.Fields(string(b[r+1:]))
	if len(f) < 5 {
		return 0, errors.New("stat: line too short")
	}
	tty, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: tty_nr %q: %w", f[4], err)
	}
	return tty, nil
}

// parseStatusUID returns the real UID from the "Uid:" line of
// /proc/<pid>/status (real, effective, saved, filesystem).
func parseStatusUID(b []byte) (uint64, error) {
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "Uid:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, errors.New("status: empty Uid line")
		}
		uid, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("status: uid %q: %w", f[0], err)
		}
		return uid, nil
	}
	return 0, errors.New("status: no Uid line")
}
