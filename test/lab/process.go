package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a long-running program inside a host's namespace, started
// with `ip netns exec` (which execs it: the pid is the program's own). Its
// output goes to a log file in the host's directory. It dies with the test
// process (parent-death signal), and the lab kills it at cleanup.
type Process struct {
	// Name is host/program, e.g. "h3/agent".
	Name string
	Host *Host
	// Path and Args are the program and its arguments; Start uses them.
	Path string
	Args []string
	// ArgsFunc, when set, computes Args again before every start (an agent
	// restarted later joins the seeds that exist by then).
	ArgsFunc func() []string
	// LogPath is the file the program's stdout and stderr go to.
	LogPath string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	stopping bool
	starts   int
}

// NewProcess prepares (does not start) program path with args on the host;
// what is the program's short name, e.g. "agent".
func (h *Host) NewProcess(what, path string, args ...string) *Process {
	p := &Process{
		Name:    h.Name + "/" + what,
		Host:    h,
		Path:    path,
		Args:    args,
		LogPath: fmt.Sprintf("%s/%s.log", h.Dir, what),
	}
	h.lab.mu.Lock()
	h.lab.procs = append(h.lab.procs, p)
	h.lab.mu.Unlock()
	return p
}

// Start starts the program (again, after an exit). It fails the test when
// the program is running or cannot be started.
func (p *Process) Start() {
	t := p.Host.lab.t
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			t.Fatalf("lab: %s already running", p.Name)
		}
	}
	logf, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("lab: %s log: %v", p.Name, err)
	}
	if p.ArgsFunc != nil {
		p.Args = p.ArgsFunc()
	}
	cmd := exec.Command(p.Host.lab.ip, append([]string{"netns", "exec", p.Host.NS, p.Path}, p.Args...)...)
	cmd.Dir = p.Host.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	fmt.Fprintf(logf, "--- %s start %s\n", time.Now().Format(time.StampMilli), strings.Join(cmd.Args[4:], " "))
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("lab: start %s: %v", p.Name, err)
	}
	p.starts++
	done := make(chan struct{})
	p.cmd, p.done, p.stopping = cmd, done, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "--- %s exit: %v\n", time.Now().Format(time.StampMilli), err)
		logf.Close()
		p.mu.Lock()
		expected := p.stopping
		p.mu.Unlock()
		if !expected {
			l := p.Host.lab
			l.mu.Lock()
			l.crashes = append(l.crashes, fmt.Sprintf("%s: %v; log ends:\n%s", p.Name, err, p.LogTail(20)))
			l.mu.Unlock()
		}
		close(done)
	}()
}

// PID is the program's process id (0 before the first start).
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Running reports whether the program runs.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Starts counts how often the program was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.starts
}

// signal marks the coming exit as expected, sends sig and reports whether
// the program exits within timeout.
func (p *Process) signal(sig syscall.Signal, timeout time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return true
	}
	p.stopping = true
	p.mu.Unlock()
	return SignalWait(cmd, done, sig, timeout)
}

// SignalWait sends sig to a child process unless it already exited (done
// is closed when it has) and reports whether it exits within timeout.
func SignalWait(cmd *exec.Cmd, done <-chan struct{}, sig syscall.Signal, timeout time.Duration) bool {
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// Kill sends SIGKILL (a crash: no goodbye) and waits for the exit.
func (p *Process) Kill() { p.signal(syscall.SIGKILL, time.Minute) }

// Stop sends SIGTERM (a graceful exit) and waits up to timeout. A program
// that does not exit gets SIGQUIT (a Go program then writes every
// goroutine's stack to its log) and SIGKILL 3 s later; Stop then returns an
// error.
func (p *Process) Stop(timeout time.Duration) error {
	if p.signal(syscall.SIGTERM, timeout) {
		return nil
	}
	if !p.signal(syscall.SIGQUIT, 3*time.Second) {
		p.Kill()
	}
	return fmt.Errorf("%s did not exit within %s of SIGTERM; log ends:\n%s", p.Name, timeout, p.LogTail(60))
}

// Signal sends sig (e.g. SIGHUP) without waiting; the program is expected
// to keep running.
func (p *Process) Signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Log is everything the program wrote so far, over all its starts.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// LogTail is the last n lines of Log.
func (p *Process) LogTail(n int) string {
	b, _ := os.ReadFile(p.LogPath)
	b = bytes.TrimRight(b, "\n")
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// execInNetns is `ip netns exec ns path args...` bound to ctx.
func execInNetns(ctx context.Context, ip, ns, path string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, ip, append([]string{"netns", "exec", ns, path}, args...)...)
}
