package test

// Terminal tests: a person at a terminal, played by tmux (send-keys,
// capture-pane). They cover `peerload status --watch` and every way a
// person ends `make run`.

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/peerload/peerload/internal/demoports"
)

// tmuxSession is one terminal: a private tmux server running an
// interactive bash in a 150x40 pane.
type tmuxSession struct {
	t    *testing.T
	tmux string
	sock string // -L name: a server of its own, never the user's
}

var tmuxSeq atomic.Int64

// newTmux starts a terminal whose shell, bash, has env set; it is killed
// when the test ends.
func newTmux(t *testing.T, dir string, env ...string) *tmuxSession {
	t.Helper()
	return newTmuxShell(t, dir, []string{"bash", "--norc", "--noprofile"}, env...)
}

// newTmuxShell is newTmux with another shell (argv), which must show
// $PS1 as its prompt.
func newTmuxShell(t *testing.T, dir string, shell []string, env ...string) *tmuxSession {
	t.Helper()
	s := &tmuxSession{t: t, tmux: requireProgram(t, "tmux"),
		sock: fmt.Sprintf("peerload-test-%d-%d", os.Getpid(), tmuxSeq.Add(1))}
	args := []string{"-L", s.sock, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "150", "-y", "40", "-c", dir}
	for _, e := range append([]string{"PS1=ready> "}, env...) {
		args = append(args, "-e", e)
	}
	args = append(args, shell...)
	if out, err := exec.Command(s.tmux, args...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(s.kill)
	s.waitScreen(5*time.Second, regexp.MustCompile(`(?m)^ready>`))
	return s
}

// keys types into the terminal (tmux send-keys: "Enter", "C-c", ...).
func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	args := append([]string{"-L", s.sock, "send-keys", "-t", "t"}, keys...)
	if out, err := exec.Command(s.tmux, args...).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux send-keys %q: %v\n%s", keys, err, out)
	}
}

// screen is what the terminal shows now ("" once it is gone).
func (s *tmuxSession) screen() string {
	out, _ := exec.Command(s.tmux, "-L", s.sock, "capture-pane", "-p", "-t", "t").Output()
	return string(out)
}

// waitScreen waits until the screen matches re and returns it.
func (s *tmuxSession) waitScreen(timeout time.Duration, re *regexp.Regexp) string {
	s.t.Helper()
	var scr string
	waitFor(s.t, timeout, func() (bool, string) {
		scr = s.screen()
		return re.MatchString(scr), fmt.Sprintf("screen does not match %s:\n%s", re, scr)
	})
	return scr
}

// kill closes the terminal: tmux hangs up the pane (SIGHUP), as when a
// person closes the window.
func (s *tmuxSession) kill() { _ = exec.Command(s.tmux, "-L", s.sock, "kill-server").Run() }

// TestStatusWatchInTerminal: on a terminal --watch redraws in place (one
// header on the screen, the time moving), Ctrl-C ends it with exit 0;
// into a pipe it prints plain tables without escape sequences.
func TestStatusWatchInTerminal(t *testing.T) {
	agents := startCluster(t, "watch", 2)
	term := newTmux(t, t.TempDir())
	term.keys(fmt.Sprintf("%s status --watch --interval 200ms --api %s; echo exit=$?", peerloadBin(t), agents[0].API()), "Enter")
	header := regexp.MustCompile(`peerload status  agent \S+  (\d\d:\d\d:\d\d)`)
	first := term.waitScreen(10*time.Second, regexp.MustCompile(`(?s)peerload status  agent .*watch1 .*watch2 `))
	if n := len(header.FindAllString(first, -1)); n != 1 || !strings.HasPrefix(first, "peerload status") {
		t.Fatalf("want one header at the top of the screen, got %d:\n%s", n, first)
	}
	if strings.Contains(first, "[H") || strings.Contains(first, "[2J") {
		t.Errorf("escape sequences shown as text:\n%s", first)
	}
	stamp := header.FindStringSubmatch(first)[1]
	term.waitScreen(5*time.Second, regexp.MustCompile(`peerload status  agent \S+  (\d\d:\d\d:\d\d)`+
		`[^\n]*\n(?s:.*)watch2`)) // still a table
	waitFor(t, 5*time.Second, func() (bool, string) {
		scr := term.screen()
		m := header.FindAllStringSubmatch(scr, -1)
		return len(m) == 1 && m[0][1] != stamp, "no redraw in place:\n" + scr
	})
	term.keys("C-c")
	term.waitScreen(5*time.Second, regexp.MustCompile(`exit=0\n`))

	// Into a pipe: tables one after another, no escape sequences.
	cmd := exec.Command(peerloadBin(t), "status", "--watch", "--interval", "200ms", "--api", agents[0].API())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	sc := bufio.NewScanner(out)
	for headers := 0; headers < 2 && sc.Scan(); {
		got.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "peerload status  agent ") {
			headers++
		}
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("status --watch into a pipe, after INT: %v", err)
	}
	if strings.Contains(got.String(), "\033") || strings.Count(got.String(), "\nNAME ") < 1 {
		t.Errorf("status --watch into a pipe:\n%q", got.String())
	}
}

// TestZshCompletionInTerminal: in zsh, Tab completes peerload's commands,
// flags and flag values from `peerload completion zsh`.
func TestZshCompletionInTerminal(t *testing.T) {
	zsh := requireProgram(t, "zsh")
	term := newTmuxShell(t, t.TempDir(), []string{zsh, "-f"})
	term.keys(fmt.Sprintf("autoload -U compinit && compinit -u -D && source <(%s completion zsh) && path=(%s $path) && echo loaded", peerloadBin(t), filepath.Dir(peerloadBin(t))), "Enter")
	term.waitScreen(10*time.Second, regexp.MustCompile(`(?m)^loaded`))
	for _, tt := range []struct {
		typed string
		want  *regexp.Regexp
	}{
		{"peerload hostf", regexp.MustCompile(`(?m)^ready> peerload hostfile\s*$`)},
		{"peerload top --by ", regexp.MustCompile(`combined\s+cpu\s+mem`)},
		{"peerload status --wi", regexp.MustCompile(`(?m)^ready> peerload status --wide\s*$`)},
		{"peerload completion ", regexp.MustCompile(`bash\s+zsh`)},
	} {
		term.keys("C-u", tt.typed, "Tab")
		term.waitScreen(5*time.Second, tt.want)
	}
}

// demoIP is the loopback address the demo test uses, so it never meets a
// demo on 127.0.0.1's fixed ports.
const demoIP = "127.0.0.231"

// busyDemoPorts lists the demo ports on ip that something listens on.
func busyDemoPorts(ip string) []string {
	var busy []string
	for _, p := range demoports.All() {
		addr := net.JoinHostPort(ip, fmt.Sprint(p.Port))
		if p.Proto == "tcp" {
			l, err := net.Listen("tcp", addr)
			if err != nil {
				busy = append(busy, addr+"/tcp")
				continue
			}
			l.Close()
		} else {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				busy = append(busy, addr+"/udp")
				continue
			}
			c.Close()
		}
	}
	return busy
}

// portsTaken lists the demo ports something listens on at ip or on every
// address, as the demo's own check (ss) sees them, with the process.
func portsTaken(t *testing.T, ip string) []string {
	out, err := exec.Command("ss", "-Hlntup").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var taken []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		host, port, err := net.SplitHostPort(f[4])
		if err != nil || (host != ip && host != "0.0.0.0" && host != "*" && host != "::" && host != "[::]") {
			continue
		}
		for _, p := range demoports.All() {
			if port == fmt.Sprint(p.Port) && f[0] == p.Proto {
				taken = append(taken, line)
			}
		}
	}
	return taken
}

// demoProcesses lists, with ps, the processes a demo started: every one
// carries marker (its PEERLOAD_DEMO_IP=...) in its environment. The shell
// of the terminal carries it too and is left out.
func demoProcesses(t *testing.T, marker string) []string {
	out, err := exec.Command("ps", "-e", "-ww", "-o", "pid=,args=").Output()
	if err != nil {
		t.Fatalf("ps: %v", err)
	}
	var procs []string
	for _, line := range strings.Split(string(out), "\n") {
		var pid int
		if _, err := fmt.Sscan(line, &pid); err != nil || strings.Contains(line, "bash --norc") {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err == nil && bytes.Contains(env, []byte("\x00"+marker+"\x00")) || bytes.HasPrefix(env, []byte(marker+"\x00")) {
			procs = append(procs, strings.TrimSpace(line))
		}
	}
	return procs
}

// waitDemoGone waits (up to 10 s) until nothing of a demo is left, so the
// next one finds its ports free; it reports what was left.
func waitDemoGone(t *testing.T, marker, tmp string, timeout time.Duration) ([]string, time.Duration) {
	start := time.Now()
	for {
		left := demoProcesses(t, marker)
		entries, _ := os.ReadDir(tmp)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "peerload-demo.") {
				left = append(left, "directory "+e.Name())
			}
		}
		left = append(left, busyDemoPorts(demoIP)...)
		if len(left) == 0 || time.Since(start) > timeout {
			return left, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDemoExitPaths runs `make run` in a terminal and ends it every way a
// person does, three times each: Ctrl-C, closing the terminal (SIGHUP),
// kill (TERM), and Ctrl-C or closing the terminal with the output piped
// through tee (where a cleanup that writes to the dead pipe used to stop
// half-way). The demo kills what is left 1.7 s after the signal; within
// 5 s here (a loaded machine: about 1 s measured under two CPU hogs) every
// process it started is gone, its ports are free, its directory is
// removed, and nothing but the demo's own one-line goodbye was printed.
func TestDemoExitPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo 15 times")
	}
	requireProgram(t, "make")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"peerload", "coredns"} {
		if got, want := binPath(t, bin), filepath.Join(repo, "bin", bin); got != want {
			t.Skipf("the demo runs %s, but the binaries under test are %s", want, got)
		}
	}
	if busy := busyDemoPorts(demoIP); len(busy) > 0 {
		t.Fatalf("demo ports already in use on %s: %v", demoIP, busy)
	}
	paths := []struct {
		name    string
		command string
		end     func(s *tmuxSession, marker string)
	}{
		{"ctrl-c", "make -o build run", func(s *tmuxSession, _ string) { s.keys("C-c") }},
		{"closed terminal", "make -o build run", func(s *tmuxSession, _ string) { s.kill() }},
		{"kill", "make -o build run", func(s *tmuxSession, marker string) { killDemoScript(t, marker) }},
		{"ctrl-c through tee", "make -o build run 2>&1 | tee $TMPDIR/demo.log", func(s *tmuxSession, _ string) { s.keys("C-c") }},
		{"closed terminal through tee", "make -o build run 2>&1 | tee $TMPDIR/demo.log", func(s *tmuxSession, _ string) { s.kill() }},
	}
	for _, path := range paths {
		for run := range 3 {
			t.Run(fmt.Sprintf("%s/%d", path.name, run+1), func(t *testing.T) {
				// A precondition, not the behaviour under test: another
				// program on this machine may hold a demo port on every
				// address (an agent's default --bind 0.0.0.0:7946).
				waitFor(t, 2*time.Minute, func() (bool, string) {
					busy := portsTaken(t, demoIP)
					return len(busy) == 0, fmt.Sprintf("demo ports taken: %v", busy)
				})
				tmp := t.TempDir()
				marker := fmt.Sprintf("PEERLOAD_DEMO_IP=%s", demoIP)
				logs := filepath.Join(t.TempDir(), "logs")
				term := newTmux(t, repo, "TMPDIR="+tmp, marker, "PEERLOAD_DEMO_LOGS="+logs)
				term.keys(path.command, "Enter")
				term.waitScreen(30*time.Second, regexp.MustCompile(`Press Ctrl-C to stop\.`))
				if len(demoProcesses(t, marker)) < 6 {
					t.Fatalf("the demo does not run: %q", demoProcesses(t, marker))
				}
				t.Cleanup(func() {
					// Whatever happened, leave nothing for the next run.
					term.kill()
					if left, _ := waitDemoGone(t, marker, tmp, 10*time.Second); len(left) > 0 {
						t.Errorf("left behind: %q", left)
					}
				})
				path.end(term, marker)
				left, took := waitDemoGone(t, marker, tmp, 5*time.Second)
				if len(left) > 0 {
					t.Fatalf("5 s after the end, still there: %q\nscreen:\n%s", left, term.screen())
				}
				t.Logf("everything gone after %v", took.Round(time.Millisecond))
				if scr := term.screen(); regexp.MustCompile(`(?i)error|make: \*\*\*|terminated|broken pipe|interrupt`).MatchString(scr) {
					t.Errorf("the demo's end printed more than its goodbye:\n%s", scr)
				}
				// Every member left in good order: CoreDNS first, while the
				// agents could still carry its goodbye (it used to log
				// "[ERROR] ... timeout waiting for leave broadcast"), and
				// no agent reported a failed leave.
				for _, name := range []string{"coredns", "lab01", "lab02", "lab03", "lab04"} {
					data, err := os.ReadFile(filepath.Join(logs, name+".log"))
					if err != nil {
						t.Errorf("the demo kept no log of %s: %v", name, err)
						continue
					}
					if bad := regexp.MustCompile(`(?m)^.*(\[ERROR\]|leave failed|waiting for leave).*$`).FindString(string(data)); bad != "" {
						t.Errorf("%s logged on the way out: %s", name, bad)
					}
				}
			})
		}
	}
}

// killDemoScript sends TERM to the demo script itself (not to make), as
// `kill PID` from another terminal does.
func killDemoScript(t *testing.T, marker string) {
	t.Helper()
	for _, p := range demoProcesses(t, marker) {
		if strings.Contains(p, "scripts/demo.sh") {
			var pid int
			fmt.Sscan(p, &pid)
			if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("no demo script among %q", demoProcesses(t, marker))
}
