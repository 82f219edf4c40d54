package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peerload/peerload/test/lab"
)

// namedServer is a real BIND 9 `named` serving one zone on 127.0.0.1 from a
// temporary directory, with dynamic updates granted to a key made by the
// real tsig-keygen. It is killed in t.Cleanup.
type namedServer struct {
	t       testing.TB
	Dir     string
	Port    int
	Zone    string // e.g. example.edu
	Name    string // the name updates are granted for, e.g. cslab.example.edu
	KeyFile string // the key named trusts, as written by tsig-keygen
	KeyName string
	bin     string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// startNamed starts named for zone with update-policy granting keyName the
// A and AAAA records of name. initial are A records name already holds.
func startNamed(t testing.TB, zone, name string, initial ...string) *namedServer {
	t.Helper()
	bin := requireProgram(t, "named")
	requireProgram(t, "dig")
	n := &namedServer{t: t, Dir: t.TempDir(), Zone: zone, Name: name, KeyName: "peerload-update", bin: bin, log: &lockedBuffer{}}
	n.Port = freePort(t)
	n.KeyFile = lab.NewTSIGKey(t, n.Dir, n.KeyName)
	conf := lab.NamedConfig(n.Dir, "127.0.0.1", n.Port, zone, n.KeyName, name)
	if err := os.WriteFile(filepath.Join(n.Dir, "named.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.WriteZone(1, initial...)
	n.Start()
	t.Cleanup(func() {
		n.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("log of named:\n%s", n.log.String())
		}
	})
	return n
}

// WriteZone rewrites the zone file with serial and name holding the A
// records addrs, and removes the journal: a restart then starts from this
// file alone (a server restored from an old file). named must be stopped.
func (n *namedServer) WriteZone(serial int, addrs ...string) {
	n.t.Helper()
	zf := filepath.Join(n.Dir, "db."+n.Zone)
	if err := os.WriteFile(zf, []byte(lab.ZoneFile(n.Zone, n.Name, serial, "127.0.0.1", addrs...)), 0o644); err != nil {
		n.t.Fatal(err)
	}
	if err := os.Remove(zf + ".jnl"); err != nil && !os.IsNotExist(err) {
		n.t.Fatal(err)
	}
}

// Start starts named (again) and waits until it answers for the zone.
func (n *namedServer) Start() {
	n.t.Helper()
	n.mu.Lock()
	cmd := exec.Command(n.bin, "-g", "-4", "-n", "1", "-c", filepath.Join(n.Dir, "named.conf"))
	fmt.Fprintf(n.log, "--- start %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		n.mu.Unlock()
		n.t.Fatalf("start named: %v", err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(n.log, "--- exit: %v\n", err)
		close(done)
	}()
	n.cmd, n.done = cmd, done
	n.mu.Unlock()
	waitFor(n.t, 20*time.Second, func() (bool, string) {
		select {
		case <-done:
			n.t.Fatalf("named exited at start:\n%s", n.log.String())
		default:
		}
		res := runCmd(n.t, nil, "dig", "@127.0.0.1", "-p", fmt.Sprint(n.Port), "+tries=1", "+time=1", "+short", n.Zone, "SOA")
		return res.Code == 0 && strings.TrimSpace(res.Stdout) != "", "named answering SOA: " + res.String()
	})
}

// Stop stops named with SIGTERM (a clean shutdown that keeps the journal)
// and waits for it to exit.
func (n *namedServer) Stop() {
	n.t.Helper()
	if !n.signal(syscall.SIGTERM) {
		n.t.Fatalf("named did not stop within 15s")
	}
}

func (n *namedServer) signal(sig syscall.Signal) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	if !signalWait(cmd, done, sig, 15*time.Second) {
		_ = cmd.Process.Kill()
		<-done
		return false
	}
	return true
}

// Addr is named's host:port.
func (n *namedServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.Port) }

// Records returns the A and AAAA records named holds for the name, sorted.
func (n *namedServer) Records() []string {
	n.t.Helper()
	a := digShort(n.t, "127.0.0.1", n.Port, n.Name, "A")
	aaaa := digShort(n.t, "127.0.0.1", n.Port, n.Name, "AAAA")
	out := append(a, aaaa...)
	slices.Sort(out)
	return out
}

// Log is everything named wrote so far.
func (n *namedServer) Log() string { return n.log.String() }
