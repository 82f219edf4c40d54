package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/peerload/peerload/internal/demoports"
)

// otherDemoIP stands for someone else's `make run` on this machine while
// the tests run theirs on demoIP: any two demos on different addresses
// must share nothing.
const otherDemoIP = "127.0.0.232"

// demoRun is one scripts/demo.sh started by a test.
type demoRun struct {
	cmd   *exec.Cmd
	lines []string // the instructions, up to "Press Ctrl-C to stop."
	done  chan struct{}
}

// startDemo runs scripts/demo.sh on ip and waits (up to a minute) until it
// printed its instructions. The cleanup stops it as Ctrl-C would and
// waits until everything it started is gone.
func startDemo(t *testing.T, repo, ip string) *demoRun {
	t.Helper()
	waitFor(t, 2*time.Minute, func() (bool, string) {
		busy := portsTaken(t, ip)
		return len(busy) == 0, fmt.Sprintf("demo ports of %s taken: %v", ip, busy)
	})
	tmp := t.TempDir()
	marker := "PEERLOAD_DEMO_IP=" + ip
	cmd := exec.Command(filepath.Join(repo, "scripts", "demo.sh"))
	cmd.Env = append(os.Environ(), marker, "TMPDIR="+tmp)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoRun{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			d.lines = append(d.lines, sc.Text())
			if sc.Text() == "Press Ctrl-C to stop." {
				close(ready)
				break
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.done:
		case <-time.After(10 * time.Second):
			t.Errorf("the demo on %s did not stop within 10 s", ip)
			cmd.Process.Kill()
		}
		waitFor(t, 10*time.Second, func() (bool, string) {
			left := demoProcesses(t, marker)
			return len(left) == 0, fmt.Sprintf("left of the demo on %s: %q", ip, left)
		})
	})
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("the demo on %s ended before it was ready:\n%s%s", ip, strings.Join(d.lines, "\n"), stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("the demo on %s was not ready after a minute:\n%s%s", ip, strings.Join(d.lines, "\n"), stderr.String())
	}
	return d
}

// get fetches a URL and returns its body, "" on any failure.
func httpBody(url string) string {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// TestDemoSharesTheMachine: with another demo running (someone's `make
// run`), a second demo on another address starts, with its own DNS, web
// proxy and machines' web services, and its instructions fit 80 columns,
// point at the status page and tell how `peerload ssh` reaches machines
// whose names are not in DNS. The Caddy of every demo used to bind
// 127.0.0.1 whatever the demo's address, so the second demo failed, and
// with it `make test` (TestDemoExitPaths) whenever someone ran the demo.
func TestDemoSharesTheMachine(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two demos")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"peerload", "coredns", "caddy"} {
		if got, want := binPath(t, bin), filepath.Join(repo, "bin", bin); got != want {
			t.Skipf("the demo runs %s, but the binaries under test are %s", want, got)
		}
	}
	other := startDemo(t, repo, otherDemoIP)
	ours := startDemo(t, repo, demoIP)

	for _, d := range []struct {
		ip   string
		demo *demoRun
	}{{otherDemoIP, other}, {demoIP, ours}} {
		// The sticky site, the plain one and the status page answer on
		// the demo's own address.
		for _, port := range []int{demoports.CaddySticky, demoports.CaddyBest} {
			url := fmt.Sprintf("http://%s:%d/", d.ip, port)
			waitFor(t, 30*time.Second, func() (bool, string) {
				body := strings.TrimSpace(httpBody(url))
				return strings.HasPrefix(body, "lab0"), fmt.Sprintf("%s answered %q", url, body)
			})
		}
		page := fmt.Sprintf("http://%s:%d/", d.ip, demoports.API(1))
		if body := httpBody(page); !strings.Contains(body, "<html") {
			t.Errorf("no status page at %s: %q", page, body)
		}
	}

	text := strings.Join(ours.lines, "\n")
	for _, want := range []string{
		fmt.Sprintf("http://%s:%d/", demoIP, demoports.API(1)), // the status page
		"bin/peerload ssh --ip",                                // names that are not in DNS
		fmt.Sprintf("export PEERLOAD_API=%s:%d", demoIP, demoports.API(1)),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the instructions lack %q:\n%s", want, text)
		}
	}
	for _, line := range ours.lines {
		// The line naming the demo's directory is as long as $TMPDIR.
		if n := utf8.RuneCountInString(line); n > 80 && !strings.HasPrefix(line, "  D=") {
			t.Errorf("instruction line of %d columns: %q", n, line)
		}
	}
}
