package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
)

// udpEcho serves UDP echo on h's address, port 7, until the test ends.
func udpEcho(t *testing.T, h *Host) netip.AddrPort {
	t.Helper()
	pc, err := h.ListenPacket("udp4", h.Addr.String()+":7")
	if err != nil {
		t.Fatalf("echo on %s: %v", h, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return netip.AddrPortFrom(h.Addr, 7)
}

// echoes sends n numbered datagrams from h to the echo server, 1 ms
// apart, and counts the distinct answers back within 500 ms of the last.
func echoes(t *testing.T, h *Host, to netip.AddrPort, n int) int {
	t.Helper()
	var conn net.Conn
	if err := h.Do(func() (err error) {
		conn, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(to))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			got[string(buf[:k])] = true
		}
	}()
	for i := range n {
		_, _ = conn.Write([]byte(fmt.Sprintf("ping %d", i)))
		time.Sleep(time.Millisecond)
	}
	_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	<-done
	return len(got)
}

// TestLabNetwork: hosts reach each other only through the switch, faults
// cut exactly what they say, and nothing of the lab is on the host's own
// namespace.
func TestLabNetwork(t *testing.T) {
	l := New(t, Options{NoKeyring: true, PinNeighbors: true})
	a, b, c := l.AddHost("a"), l.AddHost("b"), l.AddHost("c")
	echoB, echoC := udpEcho(t, b), udpEcho(t, c)
	// Pinned neighbours: a knows b's MAC for good, without asking.
	neigh := runCommand(context.Background(), l.ip, "-n", a.NS, "neigh", "show", b.Addr.String())
	if !strings.Contains(neigh.Stdout, b.mac) || !strings.Contains(neigh.Stdout, "PERMANENT") {
		t.Fatalf("a's neighbour entry for b: %s, want %s PERMANENT", neigh, b.mac)
	}
	// ARP and the bridge need a moment on a busy machine; a first answer
	// is the precondition, not the behaviour under test.
	agenttest.WaitFor(t, 10*time.Second, "the first echoes", func() (bool, string) {
		return echoes(t, a, echoB, 1) == 1 && echoes(t, a, echoC, 1) == 1, "first echo a->b, a->c"
	})
	if got := echoes(t, a, echoB, 50); got != 50 {
		t.Fatalf("no fault: %d/50 echoes a->b", got)
	}

	// Nothing of the lab on the host namespace: no 10.77 address, no
	// interface ending in the bridge.
	out := runCommand(context.Background(), l.ip, "-4", "-o", "addr", "show")
	for _, line := range strings.Split(out.Stdout, "\n") {
		for _, f := range strings.Fields(line) {
			if p, err := netip.ParsePrefix(f); err == nil && Subnet.Overlaps(p) {
				t.Fatalf("lab address on the host namespace: %s", line)
			}
		}
	}
	links := runCommand(context.Background(), l.ip, "-o", "link", "show")
	if strings.Contains(links.Stdout, "br0") || strings.Contains(links.Stdout, "master br0") {
		t.Fatalf("lab bridge visible on the host namespace:\n%s", links.Stdout)
	}
	for _, h := range []*Host{a, b, c} {
		if !strings.HasPrefix(h.NS, "pl-"+l.ID+"-") {
			t.Fatalf("namespace %s lacks the run prefix pl-%s-", h.NS, l.ID)
		}
	}

	// A partition cuts a from b both ways, while c still reaches both.
	l.Partition([]*Host{a}, []*Host{b})
	if got := echoes(t, a, echoB, 10); got != 0 {
		t.Fatalf("partitioned: %d/10 echoes a->b\n%s", got, l.Ruleset())
	}
	if got := echoes(t, b, udpEcho(t, a), 10); got != 0 {
		t.Fatalf("partitioned: %d/10 echoes b->a", got)
	}
	if got := echoes(t, a, echoC, 10); got != 10 {
		t.Fatalf("partitioned a|b: %d/10 echoes a->c", got)
	}
	l.Heal()
	if got := echoes(t, a, echoB, 10); got != 10 {
		t.Fatalf("healed: %d/10 echoes a->b", got)
	}

	// 30 % loss per crossing: an echo crosses twice, so about 49 % come
	// back. 400 tries put 30..70 % far outside chance (p < 1e-15).
	l.Loss(30)
	got := echoes(t, a, echoB, 400)
	if got < 120 || got > 280 {
		t.Fatalf("30%% loss: %d/400 echoes came back, want about 196", got)
	}
	l.Heal()
	if got := echoes(t, a, echoB, 20); got != 20 {
		t.Fatalf("healed after loss: %d/20 echoes", got)
	}
}

// TestLabCleanup: a lab's namespaces, processes and files are gone after
// its test, and the next lab sweeps what a crashed run left behind.
func TestLabCleanup(t *testing.T) {
	RequireRoot(t)
	ip := RequireProgram(t, "ip")
	sleep := RequireProgram(t, "sleep")

	var id, dir string
	var pid int
	t.Run("lab", func(t *testing.T) {
		l := New(t, Options{NoKeyring: true})
		h := l.AddHost("a")
		p := h.NewProcess("sleep", sleep, "600")
		p.Start()
		id, dir, pid = l.ID, l.Dir, p.PID()
		p.Kill()
	})
	if id == "" {
		t.Fatal("inner lab did not run")
	}
	assertGone(t, id, dir, pid)

	// A crashed run: a namespace with a process in it and files, whose
	// owner process is gone (pid 0 never matches a live process).
	base := filepath.Join(os.TempDir(), "peerload-lab")
	stale := "0badf00d"
	ns := "pl-" + stale + "-h1"
	if res := runCommand(context.Background(), ip, "netns", "add", ns); res.Code != 0 {
		t.Fatalf("ip netns add: %s", res)
	}
	t.Cleanup(func() { deleteNetns(ip, ns) })
	if err := os.MkdirAll(filepath.Join(base, stale, "h1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, stale+".owner"), []byte("0 0"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := execInNetns(ctx, ip, ns, sleep, "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	// Precondition: the process has entered the namespace (ip netns exec
	// switches, then execs sleep).
	agenttest.WaitFor(t, 10*time.Second, "sleep to run in "+ns, func() (bool, string) {
		res := runCommand(context.Background(), ip, "netns", "pids", ns)
		return slices.Contains(strings.Fields(res.Stdout), strconv.Itoa(cmd.Process.Pid)), "pids in " + ns + ": " + res.Stdout
	})
	// The namespace is older than the sweeping run: made before it.
	t.Run("sweep", func(t *testing.T) {
		New(t, Options{NoKeyring: true})
	})
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("the process in the stale namespace still runs after the sweep")
	}
	assertGone(t, stale, filepath.Join(base, stale), 0)
}

func assertGone(t *testing.T, id, dir string, pid int) {
	t.Helper()
	entries, _ := os.ReadDir(netnsDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "pl-"+id+"-") {
			t.Errorf("namespace %s still exists", e.Name())
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists (%v)", dir, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), id+".owner")); !os.IsNotExist(err) {
		t.Errorf("owner file of %s still exists (%v)", id, err)
	}
	if pid > 0 {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("process %d still runs", pid)
		}
	}
}
