package packaging

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// machine is a throwaway copy of this host for installing the package as
// an admin would: an overlay of / (writes go to a temporary directory) in a
// private mount namespace, booted with systemd-nspawn on a private network
// (only its own loopback), so dpkg, the maintainer scripts and systemd
// behave as on a real machine and everything vanishes afterwards.
type machine struct {
	pid1 int // the container's systemd, as seen from the host
}

// commandTimeout bounds one command inside the machine.
const commandTimeout = 90 * time.Second

// bootMachine boots the copy with files (path inside the machine -> file on
// the host, e.g. the package under test) copied in, and waits until systemd
// has finished starting up.
func bootMachine(t *testing.T, files map[string]string) *machine {
	t.Helper()
	dir := t.TempDir()
	up, work, root := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "root")
	id := make([]byte, 16)
	rand.Read(id)
	seed := map[string]string{
		// Its own machine id, so its journal is its own.
		"etc/machine-id": hex.EncodeToString(id) + "\n",
	}
	for _, d := range []string{up, work, root, filepath.Join(up, "root"), filepath.Join(up, "etc/systemd/system")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range seed {
		if err := os.WriteFile(filepath.Join(up, name), []byte(content), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// There is no network to wait for: the private network has only lo.
	if err := os.Symlink("/dev/null", filepath.Join(up, "etc/systemd/system/systemd-networkd-wait-online.service")); err != nil {
		t.Fatal(err)
	}
	for dst, src := range files {
		if err := copyFile(src, filepath.Join(up, dst)); err != nil {
			t.Fatal(err)
		}
	}
	// A policy-rc.d (container images have one that forbids everything)
	// would keep the maintainer scripts from starting and stopping units:
	// an overlay whiteout hides it.
	// The man-db trigger's database rebuild (20 s on a busy machine) is
	// switched off the same way.
	for _, hide := range []string{"usr/sbin/policy-rc.d", "var/lib/man-db/auto-update"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(up, hide)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mknod(filepath.Join(up, hide), syscall.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
	}

	// The holder owns the mount namespace with the overlay.
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
		`mount -t overlay overlay -o "lowerdir=/,upperdir=$1,workdir=$2" "$3" && echo mounted && exec sleep infinity`,
		"sh", up, work, root)
	holder.Stderr = os.Stderr
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "mounted" {
		t.Fatalf("overlay of / on %s: %q %v", root, line, err)
	}

	console := &syncBuffer{}
	nspawn := exec.Command("nsenter", "-t", strconv.Itoa(holder.Process.Pid), "-m", "--",
		"systemd-nspawn", "--quiet", "--directory", root, "--register=no", "--keep-unit",
		"--link-journal=no", "--private-network", "--boot", "--console=pipe",
		// Only the base system: the host's own services (DNS servers,
		// databases) stay off, and the tests start what they test.
		"--", "--unit=basic.target")
	nspawn.Stdout, nspawn.Stderr = console, console
	if err := nspawn.Start(); err != nil {
		t.Fatal(err)
	}
	m := &machine{}
	t.Cleanup(func() {
		// SIGKILL to the container's init ends every process in it at
		// once; nspawn then exits.
		if m.pid1 != 0 {
			syscall.Kill(m.pid1, syscall.SIGKILL)
		}
		done := make(chan struct{})
		go func() { nspawn.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			nspawn.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("container console:\n%s", console.String())
		}
	})

	eventually(t, 30*time.Second, "the container's systemd running", func() (bool, string) {
		m.pid1 = descendant(nspawn.Process.Pid, "systemd")
		return m.pid1 != 0, console.String()
	})
	// Until its bus is up, systemctl cannot connect; then --wait blocks
	// until start-up has finished.
	eventually(t, 90*time.Second, "the container started up", func() (bool, string) {
		state := strings.TrimSpace(m.run("systemctl", "is-system-running", "--wait"))
		return state == "running" || state == "degraded", state + "\n" + m.run("systemctl", "--failed", "--no-pager")
	})
	// Let users log in (removes /run/nologin), as multi-user.target would.
	m.must(t, "systemctl", "start", "systemd-user-sessions.service")
	return m
}

// descendant finds the topmost process named comm below pid, or returns 0.
func descendant(pid int, comm string) int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	name := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		l, r := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if l < 0 || r < l {
			continue
		}
		f := strings.Fields(s[r+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p], name[p] = pp, s[l+1:r]
	}
	// The topmost: below the container's systemd are others of that name
	// (a user manager, a child forked and not yet renamed) that come and
	// go.
	for p, n := range name {
		if n != comm {
			continue
		}
		for a := parent[p]; a > 1; a = parent[a] {
			if a == pid {
				return p
			}
			if name[a] == comm {
				break
			}
		}
	}
	return 0
}

// exec runs a command inside the machine with a clean environment.
func (m *machine) exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append([]string{"-t", strconv.Itoa(m.pid1), "-a", "--",
		"env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", full...).CombinedOutput()
	return string(out), err
}

// must runs a command inside the machine and fails the test unless it
// succeeds.
func (m *machine) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := m.exec(args...)
	if err != nil {
		t.Fatalf("in the machine: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// run runs a command inside the machine and returns its output whatever
// its exit status.
func (m *machine) run(args ...string) string {
	out, _ := m.exec(args...)
	return out
}

// check reports whether a command inside the machine succeeds.
func (m *machine) check(args ...string) bool {
	_, err := m.exec(args...)
	return err == nil
}

// prop returns unit properties, space-separated, in the order asked.
func (m *machine) prop(t *testing.T, unit string, props ...string) string {
	t.Helper()
	var vals []string
	for _, p := range props {
		vals = append(vals, strings.TrimSpace(m.must(t, "systemctl", "show", "-P", p, unit)))
	}
	return strings.Join(vals, " ")
}

// status is the local agent's `peerload status --json` and its raw text.
func (m *machine) status() (statusJSON, string) {
	var st statusJSON
	out, err := m.exec("peerload", "status", "--json")
	if err != nil {
		return st, out
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Sprintf("%v\n%s", err, out)
	}
	return st, out
}

// waitFailing waits until node's report fails the named check, or with
// check "" until node is a candidate failing nothing.
func (m *machine) waitFailing(t *testing.T, node, check string) {
	t.Helper()
	what := node + " a candidate"
	if check != "" {
		what = node + " failing the " + check + " check"
	}
	eventually(t, 30*time.Second, what, func() (bool, string) {
		st, out := m.status()
		for _, n := range st.Nodes {
			if n.Name != node {
				continue
			}
			if check == "" {
				return n.Candidate && len(n.Failing) == 0, out
			}
			for _, f := range n.Failing {
				if f.Name == check {
					return true, ""
				}
			}
		}
		return false, out + m.run("journalctl", "-u", "peerload-agent", "--no-pager", "-n", "20")
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncBuffer collects the container's console from nspawn's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
