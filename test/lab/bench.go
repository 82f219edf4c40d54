package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// What the scale benchmark (test/bench_scale_test.go) adds to the lab:
// a sample clock every agent's samples carry, a load writer that leaves it
// alone, and the hosts' interface counters.

// StartSampleClock writes a file, rewritten every 10 ms until the test
// ends, in the shape of /proc/uptime whose "seconds" are the milliseconds
// since start. An agent whose uptime is this file (UseSampleClock) stamps
// every sample with when it was taken, and the stamp travels in its
// reports (whole ones keep it exact).
func (l *Lab) StartSampleClock() (path string, start time.Time) {
	l.t.Helper()
	path = filepath.Join(l.Dir, "sample-clock")
	start = time.Now()
	write := func() error {
		ms := time.Since(start).Milliseconds()
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d.00 %d.00\n", ms, ms), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, path)
	}
	if err := write(); err != nil {
		l.t.Fatalf("lab: sample clock: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_ = write()
			}
		}
	}()
	l.t.Cleanup(func() { cancel(); <-done })
	return path, start
}

// UseSampleClock makes the agent's proc root read its uptime from the
// clock file. Use WriteLoad, not SetLoad, afterwards: SetLoad rewrites
// uptime.
func (a *Agent) UseSampleClock(clock string) {
	a.lab.t.Helper()
	up := filepath.Join(a.Proc.Dir, "uptime")
	_ = os.Remove(up)
	if err := os.Symlink(clock, up); err != nil {
		a.lab.t.Fatalf("lab: %s: %v", a.Name, err)
	}
}

// WriteLoad sets the load averages, rewriting only loadavg and stat (the
// CPU use follows load1), so a sample clock stays in place.
func (p *FakeProc) WriteLoad(load1, load5, load15 float64) error {
	p.mu.Lock()
	p.load = [3]float64{load1, load5, load15}
	p.ticks += 100
	busy := uint64(float64(p.ticks) * min(load1/float64(p.CPUs), 1))
	idle := p.ticks - busy
	var st strings.Builder
	fmt.Fprintf(&st, "cpu  %d 0 0 %d 0 0 0 0 0 0\n", busy*uint64(p.CPUs), idle*uint64(p.CPUs))
	for i := range p.CPUs {
		fmt.Fprintf(&st, "cpu%d %d 0 0 %d 0 0 0 0 0 0\n", i, busy, idle)
	}
	st.WriteString("intr 305379 0 0 0\nctxt 490240\nbtime 1795480259\nprocesses 6889\nprocs_running 3\nprocs_blocked 0\n")
	p.mu.Unlock()
	files := map[string]string{
		"loadavg": fmt.Sprintf("%.2f %.2f %.2f 1/97 6838\n", load1, load5, load15),
		"stat":    st.String(),
	}
	for name, body := range files {
		path := filepath.Join(p.Dir, name)
		if err := os.WriteFile(path+".tmp", []byte(body), 0o644); err != nil {
			return err
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			return err
		}
	}
	return nil
}

// Counters are a host's link counters as the kernel keeps them.
type Counters struct {
	TxBytes, TxPackets, RxBytes, RxPackets uint64
}

// IPBytes is what the host sent counted at the IP layer: every packet
// once, IP and UDP/TCP headers included, the 14-byte Ethernet header not.
func (c Counters) IPBytes() uint64 { return c.TxBytes - 14*c.TxPackets }

// Counters reads the host's eth0 counters.
func (h *Host) Counters() (Counters, error) {
	res := h.lab.ipCommand("-n", h.NS, "-s", "-j", "link", "show", "eth0")
	if res.Code != 0 {
		return Counters{}, fmt.Errorf("%s: ip link: %s", h.Name, res)
	}
	var links []struct {
		Stats struct {
			Rx struct{ Bytes, Packets uint64 }
			Tx struct{ Bytes, Packets uint64 }
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(res.Stdout), &links); err != nil || len(links) != 1 {
		return Counters{}, fmt.Errorf("%s: ip link: %q: %v", h.Name, res.Stdout, err)
	}
	s := links[0].Stats
	return Counters{TxBytes: s.Tx.Bytes, TxPackets: s.Tx.Packets, RxBytes: s.Rx.Bytes, RxPackets: s.Rx.Packets}, nil
}

func (l *Lab) ipCommand(args ...string) Result {
	return runCommand(context.Background(), l.ip, args...)
}

// Sched is what the scheduler has accounted to a process's threads so far
// (/proc/PID/task/*/schedstat).
type Sched struct {
	// CPU is the time they have run, in seconds, from the scheduler's
	// nanosecond accounting, not utime+stime: those count 10 ms ticks, so
	// an idle agent's CPU over 20 s is a handful of ticks and one more or
	// less moves it by a fifth.
	CPU float64
	// Runs is how many times one of them was put on a CPU: every wake-up
	// of the process (a timer, a packet) costs one or more.
	Runs int64
}

// ProcSched reads pid's Sched. A thread that exited takes its share with
// it; Go parks its threads rather than ending them.
func ProcSched(pid int) (Sched, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return Sched{}, fmt.Errorf("process %d: no threads in /proc", pid)
	}
	var s Sched
	for _, t := range tasks {
		raw, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		// run time (ns), wait time (ns), timeslices run
		f := strings.Fields(string(raw))
		if len(f) < 3 {
			return Sched{}, fmt.Errorf("%s: %q", t, raw)
		}
		ns, err1 := strconv.ParseFloat(f[0], 64)
		runs, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			return Sched{}, fmt.Errorf("%s: %q", t, raw)
		}
		s.CPU += ns / 1e9
		s.Runs += runs
	}
	return s, nil
}

// PinNeighbors gives every host of the lab a permanent neighbour (ARP)
// entry for each host in hosts, and each of hosts one for every host of
// the lab. The kernel's neighbour table is shared by all namespaces and
// holds 1,024 dynamic entries (gc_thresh3): a hundred hosts that all talk
// to each other need ten thousand, and without pinned entries packets
// start failing with "no route to host". Permanent entries do not count
// against that limit.
func (l *Lab) PinNeighbors(hosts []*Host) {
	l.t.Helper()
	all := l.Hosts()
	pinned := map[*Host]bool{}
	for _, h := range hosts {
		pinned[h] = true
	}
	for _, h := range all {
		var cmds []string
		for _, o := range all {
			if o != h && (pinned[h] || pinned[o]) {
				cmds = append(cmds, neighCmd(o))
			}
		}
		if len(cmds) > 0 {
			l.ipBatch(h.NS, cmds...)
		}
	}
}
