// Package sample reads a machine's load from /proc: load averages, CPUs
// and utilisation, memory, swap, CPU pressure, uptime and logged-in users.
// Reading is split from parsing, and the proc root is a parameter, so
// tests and the lab give every simulated node its own. The files are
// parsed into prometheus/procfs's types, but by this package: procfs
// parses every line of a file into new allocations, where a sample needs a
// few lines and runs every few seconds on every machine.
package sample

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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

// usersMaxAge is how long a count of users is reused while nothing says
// the processes changed (see taskSet). It catches what no counter shows:
// a process that takes another uid or a terminal while no task starts or
// ends anywhere on the machine.
const usersMaxAge = 10 * time.Minute

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
	// loadavg ... uptime are the paths of the files read every sample.
	loadavg, stat, meminfo, pressure, uptime string
	now                                      func() time.Time // replaced in tests to step past usersRefresh

	mu       sync.Mutex
	buf      []byte                   // every file is read into it
	cpus     map[int64]procfs.CPUStat // the cpuN lines, cleared for every read
	mem      [7]uint64                // the meminfo values memFromMeminfo uses
	prevCPU  cpuTimes
	havePrev bool
	users    int
	usersAt  time.Time // when users was last reused or recounted
	counted  bool
	// tasks, recountedAt and incomplete describe the last count of users:
	// what the process table looked like, when, and whether a process
	// could not be read (it was ending, or a test was writing it).
	tasks       taskSet
	recountedAt time.Time
	incomplete  bool
}

// taskSet is what says whether the processes can have changed since users
// were counted. On Linux a task that starts raises the count of forks
// (stat's processes line) and the last PID handed out (loadavg's fifth
// field), and one that ends lowers the number of tasks (loadavg's fourth,
// "running/total"); the link count of the proc root follows the number of
// processes. In a directory standing in for /proc (tests, the lab),
// adding or removing a process directory changes the root's link count and
// modification time. Equal taskSets mean the same processes, so the users
// counted from them are still right.
type taskSet struct {
	forks, lastPID, tasks uint64
	rootLinks             uint64
	rootModified          int64 // nanoseconds
}

// NewProc opens procRoot ("" for /proc) and reads each required file
// once, so a wrong root or a kernel without one of them fails at start with
// an error naming the file rather than at every sample.
func NewProc(procRoot string) (*Proc, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	if _, err := procfs.NewFS(procRoot); err != nil {
		return nil, fmt.Errorf("proc root %s: %w", procRoot, err)
	}
	s := &Proc{
		root:    procRoot,
		loadavg: filepath.Join(procRoot, "loadavg"), stat: filepath.Join(procRoot, "stat"),
		meminfo: filepath.Join(procRoot, "meminfo"), pressure: filepath.Join(procRoot, "pressure", "cpu"),
		uptime: filepath.Join(procRoot, "uptime"),
		now:    time.Now,
		buf:    make([]byte, 4096),
		cpus:   make(map[int64]procfs.CPUStat),
	}
	if _, _, err := s.readLoadAvg(); err != nil {
		return nil, err
	}
	if _, _, _, err := s.readStat(); err != nil {
		return nil, err
	}
	if _, _, _, err := s.readMeminfo(); err != nil {
		return nil, err
	}
	return s, nil
}

// readFile reads the whole of path into s.buf, which it grows as needed
// and keeps: the bytes are valid until the next read. It uses the system
// calls directly because an os.File costs an allocation and, for a /proc
// file, registering with the network poller and leaving it again.
func (s *Proc) readFile(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := syscall.Read(fd, s.buf[n:])
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		case m == 0:
			return s.buf[:n], nil
		}
		n += m
	}
}

// Sample reads every source once. CPUUtil covers the time since the
// previous call and is 0 on the first. A required file that became
// unreadable or malformed fails the sample; optional ones degrade it.
func (s *Proc) Sample() (report.Load, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var l report.Load
	avg, tasks, err := s.readLoadAvg()
	if err != nil {
		return report.Load{}, err
	}
	l.Load1, l.Load5, l.Load15 = avg[0], avg[1], avg[2]

	cpus, cur, forks, err := s.readStat()
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
		tasks.forks = forks
		s.statRoot(&tasks)
		if !s.counted || s.incomplete || tasks != s.tasks || now.Sub(s.recountedAt) >= usersMaxAge {
			n, complete, err := s.countUsers()
			if err == nil {
				s.users = n
			}
			// On error (no process directories at all) the last count
			// stays and the next attempt recounts.
			s.tasks, s.recountedAt, s.incomplete = tasks, now, err != nil || !complete
		}
		// Either way the next attempt waits a full refresh interval.
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

// readLoadAvg returns the load averages and, in a taskSet, the number of
// tasks and the last PID.
func (s *Proc) readLoadAvg() ([3]float64, taskSet, error) {
	b, err := s.readFile(s.loadavg)
	if err != nil {
		return [3]float64{}, taskSet{}, s.fileError("loadavg", err)
	}
	a, err := parseLoadAvg(b)
	if err != nil {
		return [3]float64{}, taskSet{}, s.fileError("loadavg", err)
	}
	avg, err := loadAverages(&a)
	if err != nil {
		return [3]float64{}, taskSet{}, s.fileError("loadavg", err)
	}
	var tasks taskSet
	tasks.tasks, tasks.lastPID = parseLoadAvgTasks(b)
	return avg, tasks, nil
}

// parseLoadAvg reads the three load averages, the first fields of
// /proc/loadavg ("0.08 0.23 0.11 1/102 6662").
func parseLoadAvg(b []byte) (procfs.LoadAvg, error) {
	var avg [3]float64
	for i := range avg {
		var f []byte
		if f, b = nextField(b); f == nil {
			return procfs.LoadAvg{}, fmt.Errorf("%d fields, want at least 3", i)
		}
		v, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			return procfs.LoadAvg{}, fmt.Errorf("load average %d: %w", i+1, err)
		}
		avg[i] = v
	}
	return procfs.LoadAvg{Load1: avg[0], Load5: avg[1], Load15: avg[2]}, nil
}

// parseLoadAvgTasks reads the number of tasks and the last PID, the
// fourth and fifth fields of /proc/loadavg ("... 1/102 6662"); a field
// missing or malformed reads as 0: they only tell when to count users.
func parseLoadAvgTasks(b []byte) (tasks, lastPID uint64) {
	var f []byte
	for range 4 {
		f, b = nextField(b)
	}
	if _, total, ok := bytes.Cut(f, []byte{'/'}); ok {
		tasks, _ = strconv.ParseUint(string(total), 10, 64)
	}
	f, _ = nextField(b)
	lastPID, _ = strconv.ParseUint(string(f), 10, 64)
	return tasks, lastPID
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

// readStat returns the number of CPUs, their times and the count of
// forks since boot.
func (s *Proc) readStat() (int, cpuTimes, uint64, error) {
	b, err := s.readFile(s.stat)
	if err != nil {
		return 0, cpuTimes{}, 0, s.fileError("stat", err)
	}
	clear(s.cpus)
	st, err := parseStat(b, s.cpus)
	if err != nil {
		return 0, cpuTimes{}, 0, s.fileError("stat", err)
	}
	cpus, t, err := cpuFromStat(st)
	if err != nil {
		return 0, cpuTimes{}, 0, s.fileError("stat", err)
	}
	return cpus, t, st.ProcessCreated, nil
}

// userHZ is the unit of /proc/stat's times (USER_HZ, 100 on every Linux
// architecture procfs supports).
const userHZ = 100

// parseStat reads the aggregate cpu line and the cpuN lines of /proc/stat
// into a procfs.Stat whose CPU map is cpus (the caller's, so that it is
// reused), in seconds as procfs gives them, and the processes line (forks
// since boot; 0 if missing or malformed: it only tells when to count
// users); it skips the other lines.
func parseStat(b []byte, cpus map[int64]procfs.CPUStat) (procfs.Stat, error) {
	st := procfs.Stat{CPU: cpus}
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		if n, ok := bytes.CutPrefix(line, []byte("processes ")); ok {
			f, _ := nextField(n)
			st.ProcessCreated, _ = strconv.ParseUint(string(f), 10, 64)
			continue
		}
		if !bytes.HasPrefix(line, []byte("cpu")) {
			continue
		}
		id, c, err := parseCPULine(line)
		if err != nil {
			return procfs.Stat{}, err
		}
		if id < 0 {
			st.CPUTotal = c
		} else {
			cpus[id] = c
		}
	}
	return st, nil
}

// parseCPULine reads "cpu[N] user nice system idle iowait irq softirq
// steal guest guest_nice" in ticks; id is -1 for the aggregate line. All
// ten times are required, as procfs requires them.
func parseCPULine(line []byte) (id int64, c procfs.CPUStat, err error) {
	name, rest := nextField(line)
	id = -1
	if len(name) > 3 {
		if id, err = strconv.ParseInt(string(name[3:]), 10, 64); err != nil {
			return 0, procfs.CPUStat{}, fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, p := range []*float64{&c.User, &c.Nice, &c.System, &c.Idle, &c.Iowait, &c.IRQ, &c.SoftIRQ, &c.Steal, &c.Guest, &c.GuestNice} {
		var f []byte
		if f, rest = nextField(rest); f == nil {
			return 0, procfs.CPUStat{}, fmt.Errorf("%s: fewer than 10 times", name)
		}
		v, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			return 0, procfs.CPUStat{}, fmt.Errorf("%s: %w", name, err)
		}
		*p = v / userHZ
	}
	return id, c, nil
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
	b, err := s.readFile(s.meminfo)
	if err != nil {
		return 0, 0, 0, s.fileError("meminfo", err)
	}
	m, err := parseMeminfo(b, &s.mem)
	if err != nil {
		return 0, 0, 0, s.fileError("meminfo", err)
	}
	total, avail, swapUsed, err = memFromMeminfo(m)
	if err != nil {
		return 0, 0, 0, s.fileError("meminfo", err)
	}
	return total, avail, swapUsed, nil
}

// meminfoKeys are the lines of /proc/meminfo memFromMeminfo uses; the
// values are stored at the same index of the caller's array.
var meminfoKeys = [...]string{"MemTotal:", "MemFree:", "MemAvailable:", "Buffers:", "Cached:", "SwapTotal:", "SwapFree:"}

// parseMeminfo reads the lines of meminfoKeys into vals, in bytes as
// procfs gives them, and returns a procfs.Meminfo whose Bytes fields point
// into vals (nil for a missing line), so a sample allocates nothing for
// them. The other lines are not looked at.
func parseMeminfo(b []byte, vals *[len(meminfoKeys)]uint64) (procfs.Meminfo, error) {
	var found [len(meminfoKeys)]bool
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		key, rest := nextField(line)
		i := 0
		for i < len(meminfoKeys) && string(key) != meminfoKeys[i] {
			i++
		}
		if i == len(meminfoKeys) {
			continue
		}
		num, rest := nextField(rest)
		unit, rest := nextField(rest)
		if extra, _ := nextField(rest); num == nil || extra != nil {
			return procfs.Meminfo{}, fmt.Errorf("malformed line %q", line)
		}
		v, err := strconv.ParseUint(string(num), 0, 64)
		if err != nil {
			return procfs.Meminfo{}, fmt.Errorf("%s %w", key, err)
		}
		switch string(unit) {
		case "":
		case "kB":
			v *= 1024
		default:
			return procfs.Meminfo{}, fmt.Errorf("%s unit %q, want kB", key, unit)
		}
		vals[i], found[i] = v, true
	}
	at := func(i int) *uint64 {
		if !found[i] {
			return nil
		}
		return &vals[i]
	}
	return procfs.Meminfo{
		MemTotalBytes: at(0), MemFreeBytes: at(1), MemAvailableBytes: at(2), BuffersBytes: at(3),
		CachedBytes: at(4), SwapTotalBytes: at(5), SwapFreeBytes: at(6),
	}, nil
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
	b, err := s.readFile(s.pressure)
	if err != nil {
		return -1
	}
	psi, err := parsePSI(b)
	if err != nil {
		return -1
	}
	return cpuPressure(psi)
}

// parsePSI reads the some and full lines of a pressure file ("some
// avg10=0.81 avg60=1.41 avg300=3.17 total=19802687"); like procfs it
// rejects a malformed one and skips lines of other kinds.
func parsePSI(b []byte) (procfs.PSIStats, error) {
	var psi procfs.PSIStats
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		kind, rest := nextField(line)
		if string(kind) != "some" && string(kind) != "full" {
			continue
		}
		var l procfs.PSILine
		for _, f := range []struct {
			key string
			val *float64
		}{{"avg10=", &l.Avg10}, {"avg60=", &l.Avg60}, {"avg300=", &l.Avg300}} {
			var field []byte
			field, rest = nextField(rest)
			num, ok := bytes.CutPrefix(field, []byte(f.key))
			if !ok {
				return procfs.PSIStats{}, fmt.Errorf("%s: %q, want %s", kind, field, f.key)
			}
			v, err := strconv.ParseFloat(string(num), 64)
			if err != nil {
				return procfs.PSIStats{}, fmt.Errorf("%s: %w", kind, err)
			}
			*f.val = v
		}
		field, _ := nextField(rest)
		num, ok := bytes.CutPrefix(field, []byte("total="))
		if !ok {
			return procfs.PSIStats{}, fmt.Errorf("%s: %q, want total=", kind, field)
		}
		total, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil {
			return procfs.PSIStats{}, fmt.Errorf("%s: %w", kind, err)
		}
		l.Total = total
		if string(kind) == "some" {
			psi.Some = &l
		} else {
			psi.Full = &l
		}
	}
	return psi, nil
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
	b, err := s.readFile(s.uptime)
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
	f, _ := nextField(b)
	if f == nil {
		return 0, errors.New("uptime: empty")
	}
	v, err := strconv.ParseFloat(string(f), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("uptime: %q is not a number of seconds", f)
	}
	return time.Duration(v * float64(time.Second)), nil
}

// --- users -----------------------------------------------------------------

// statRoot fills in the proc root's link count and modification time;
// they stay 0 if it cannot be read.
func (s *Proc) statRoot(tasks *taskSet) {
	if fi, err := os.Stat(s.root); err == nil {
		tasks.rootLinks = linkCount(fi)
		tasks.rootModified = fi.ModTime().UnixNano()
	}
}

// countUsers counts distinct human UIDs owning a process with a controlling
// terminal: a login shell, an ssh session, a tmux client. Processes vanish
// while we read; those are skipped, and complete is false. It reads the
// files itself rather than through procfs.Proc.Stat, which scans 40 fields
// with fmt.Fscan where one is needed and panics on a truncated stat line.
func (s *Proc) countUsers() (n int, complete bool, err error) {
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return 0, false, s.fileError("process list", err)
	}
	complete = true
	uids := make(map[uint64]struct{})
	for _, e := range entries {
		if _, err := strconv.ParseUint(e.Name(), 10, 32); err != nil {
			continue
		}
		dir := s.root + "/" + e.Name() + "/"
		stat, err := s.readFile(dir + "stat")
		if err != nil {
			complete = false
			continue
		}
		tty, err := parseProcStatTTY(stat)
		if err != nil {
			complete = false
			continue
		}
		if tty == 0 {
			continue
		}
		status, err := s.readFile(dir + "status")
		if err != nil {
			complete = false
			continue
		}
		uid, err := parseStatusUID(status)
		if err != nil {
			complete = false
			continue
		}
		if isHumanUID(uid) {
			uids[uid] = struct{}{}
		}
	}
	return len(uids), complete, nil
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
	var f []byte
	rest := b[r+1:]
	for range 5 {
		if f, rest = nextField(rest); f == nil {
			return 0, errors.New("stat: line too short")
		}
	}
	tty, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: tty_nr %q: %w", f, err)
	}
	return tty, nil
}

// parseStatusUID returns the real UID from the "Uid:" line of
// /proc/<pid>/status (real, effective, saved, filesystem).
func parseStatusUID(b []byte) (uint64, error) {
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f, _ := nextField(rest)
		if f == nil {
			return 0, errors.New("status: empty Uid line")
		}
		uid, err := strconv.ParseUint(string(f), 10, 32)
		if err != nil {
			return 0, fmt.Errorf("status: uid %q: %w", f, err)
		}
		return uid, nil
	}
	return 0, errors.New("status: no Uid line")
}

// nextField splits off the first field of b separated by blanks (spaces,
// tabs, newlines), as strings.Fields would, without copying: field is nil
// when b holds no more fields.
func nextField(b []byte) (field, rest []byte) {
	isBlank := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' }
	i := 0
	for i < len(b) && isBlank(b[i]) {
		i++
	}
	if i == len(b) {
		return nil, nil
	}
	j := i
	for j < len(b) && !isBlank(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}
