package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// FakeProc is a generated proc root in the shape of a real /proc (loadavg,
// stat, meminfo, uptime, net/tcp, net/tcp6) so every simulated node can
// have its own load. Writes are atomic (temp file + rename): an agent
// sampling concurrently never sees half a file.
type FakeProc struct {
	Dir  string
	CPUs int

	mu       sync.Mutex
	load     [3]float64
	memTotal uint64 // kB
	memAvail uint64 // kB
	ticks    uint64 // per-CPU busy and idle ticks, grows on every write
	listen   []int
	users    int // process directories WriteSessions wrote
}

// NewFakeProc writes a proc root under t.TempDir() for a node with cpus
// CPUs, 16 GiB of memory (12 GiB available) and load 0.10.
func NewFakeProc(t testing.TB, cpus int) *FakeProc {
	t.Helper()
	p, err := newFakeProcAt(filepath.Join(t.TempDir(), "proc"), cpus)
	if err != nil {
		t.Fatalf("fake proc: %v", err)
	}
	return p
}

// newFakeProcAt writes a fake proc root into dir.
func newFakeProcAt(dir string, cpus int) (*FakeProc, error) {
	p := &FakeProc{
		Dir:      dir,
		CPUs:     max(cpus, 1),
		load:     [3]float64{0.10, 0.10, 0.10},
		memTotal: 16 << 20,
		memAvail: 12 << 20,
	}
	if err := os.MkdirAll(filepath.Join(p.Dir, "net"), 0o755); err != nil {
		return nil, err
	}
	return p, p.write()
}

// SetLoad sets the 1, 5 and 15 minute load averages.
func (p *FakeProc) SetLoad(t testing.TB, load1, load5, load15 float64) {
	t.Helper()
	p.mu.Lock()
	p.load = [3]float64{load1, load5, load15}
	p.mu.Unlock()
	if err := p.write(); err != nil {
		t.Fatalf("fake proc set load: %v", err)
	}
}

// Load1 is the 1-minute load average last set.
func (p *FakeProc) Load1() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.load[0]
}

// SetMem sets total and available memory in kB.
func (p *FakeProc) SetMem(t testing.TB, totalKB, availKB uint64) {
	t.Helper()
	p.mu.Lock()
	p.memTotal, p.memAvail = totalKB, availKB
	p.mu.Unlock()
	if err := p.write(); err != nil {
		t.Fatalf("fake proc set mem: %v", err)
	}
}

// SetListening sets the TCP ports shown as listening on 0.0.0.0 in net/tcp
// (for the sshd check).
func (p *FakeProc) SetListening(t testing.TB, ports ...int) {
	t.Helper()
	p.mu.Lock()
	p.listen = append([]int(nil), ports...)
	p.mu.Unlock()
	if err := p.write(); err != nil {
		t.Fatalf("fake proc set listening: %v", err)
	}
}

func (p *FakeProc) write() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ticks += 100
	busy := uint64(float64(p.ticks) * min(p.load[0]/float64(p.CPUs), 1))
	idle := p.ticks - busy
	files := map[string]string{
		"loadavg": fmt.Sprintf("%.2f %.2f %.2f 1/97 6838\n", p.load[0], p.load[1], p.load[2]),
		"uptime":  "363.19 626.82\n",
		"meminfo": fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n"+
			"Buffers:           12864 kB\nCached:           297592 kB\nSwapCached:            0 kB\n"+
			"SwapTotal:        2097148 kB\nSwapFree:         2097148 kB\n", p.memTotal, p.memAvail/2, p.memAvail),
		"net/tcp":  netTCP(p.listen, "00000000"),
		"net/tcp6": netTCP(nil, "00000000000000000000000000000000"),
	}
	var st strings.Builder
	fmt.Fprintf(&st, "cpu  %d 0 0 %d 0 0 0 0 0 0\n", busy*uint64(p.CPUs), idle*uint64(p.CPUs))
	for i := range p.CPUs {
		fmt.Fprintf(&st, "cpu%d %d 0 0 %d 0 0 0 0 0 0\n", i, busy, idle)
	}
	st.WriteString("intr 305379 0 0 0\nctxt 490240\nbtime 1795480259\nprocesses 6889\nprocs_running 3\nprocs_blocked 0\nsoftirq 124317 0 11281 5 26993 37663 0 737 23193 0 24445\n")
	files["stat"] = st.String()
	for name, body := range files {
		path := filepath.Join(p.Dir, name)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}

func netTCP(ports []int, zeroAddr string) string {
	var b strings.Builder
	b.WriteString("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n")
	for i, port := range ports {
		fmt.Fprintf(&b, "   %d: %s:%04X %s:0000 0A 00000000:00000000 00:00000000 00000000     0        0 %d 1 0000000000000000 100 0 0 10 0\n",
			i, zeroAddr, port, zeroAddr, 16+i)
	}
	return b.String()
}

// firstUserPID and firstUserUID number the processes WriteSessions shows:
// user k is uid firstUserUID+k running pid firstUserPID+k on a terminal.
const (
	firstUserPID = 20000
	firstUserUID = 1000
)

// WriteSessions shows a machine running users sessions: the load averages,
// memAvailKB of memory available, and one process on a terminal per
// session, each a different person (uid), which the agent counts as
// logged-in users. Only what changed is rewritten; every write is atomic.
func (p *FakeProc) WriteSessions(load [3]float64, users int, memAvailKB uint64) error {
	p.mu.Lock()
	memChanged := p.memAvail != memAvailKB
	p.memAvail = memAvailKB
	total := p.memTotal
	before := p.users
	p.users = users
	p.mu.Unlock()
	if err := p.WriteLoad(load[0], load[1], load[2]); err != nil {
		return err
	}
	if memChanged {
		body := fmt.Sprintf("MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\n"+
			"Buffers:           12864 kB\nCached:           297592 kB\nSwapCached:            0 kB\n"+
			"SwapTotal:        2097148 kB\nSwapFree:         2097148 kB\n", total, memAvailKB/2, memAvailKB)
		if err := writeAtomic(filepath.Join(p.Dir, "meminfo"), body); err != nil {
			return err
		}
	}
	for k := users; k < before; k++ {
		if err := os.RemoveAll(filepath.Join(p.Dir, fmt.Sprint(firstUserPID+k))); err != nil {
			return err
		}
	}
	for k := before; k < users; k++ {
		dir := filepath.Join(p.Dir, fmt.Sprint(firstUserPID+k))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// tty_nr 34816 is /dev/pts/0.
		stat := fmt.Sprintf("%d (work) R 1 %d %d 34816 %d 4194304 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n", firstUserPID+k, firstUserPID+k, firstUserPID+k, firstUserPID+k)
		status := fmt.Sprintf("Name:\twork\nState:\tR (running)\nUid:\t%[1]d\t%[1]d\t%[1]d\t%[1]d\n", firstUserUID+k)
		if err := writeAtomic(filepath.Join(dir, "status"), status); err != nil {
			return err
		}
		if err := writeAtomic(filepath.Join(dir, "stat"), stat); err != nil {
			return err
		}
	}
	return nil
}

func writeAtomic(path, body string) error {
	if err := os.WriteFile(path+".tmp", []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
