// Package health runs a machine's health checks (the drain flag,
// /etc/nologin, sshd listening, /tmp writable, an admin's command) so
// that a machine that cannot take a login is never handed out, however
// idle it looks.
package health

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"

	"github.com/peerload/peerload/agent/report"
)

// Config configures the local health checks. A failing check takes the
// node out of the candidate set while it stays a member and keeps reporting.
type Config struct {
	// Root is prepended to /etc/nologin, /tmp and
	// /run/systemd/shutdown/scheduled so tests can use a temporary tree.
	// Empty means "/".
	Root string
	// SSHPort is the TCP port that must be listening (read from net/tcp and
	// net/tcp6 under the proc root); 0 disables the check.
	SSHPort int
	// TmpFullPercent is the block or inode usage of Root/tmp at which the
	// tmp check fails (default 95).
	TmpFullPercent float64
	// Command is an optional shell command; a non-zero exit or a timeout
	// fails the check with its first output line as the reason.
	Command        string
	CommandTimeout time.Duration
}

// Names of the health checks, as they appear in report.CheckResult.Name.
const (
	checkDrain   = "drain"
	checkNologin = "nologin"
	checkSSHD    = "sshd"
	checkTmp     = "tmp"
	checkReboot  = "reboot"
	checkCommand = "command"
)

// Defaults for the zero values of Config.
const (
	defaultTmpFullPercent = 95
	defaultCommandTimeout = 5 * time.Second
)

// Checker runs the local health checks that decide whether this node may be
// handed out: a node that is drained, refuses logins, has no sshd, a full
// /tmp or a reboot scheduled stays a member but is no candidate. It holds no
// mutable state, so Run may be called concurrently.
type Checker struct {
	procRoot string
	root     string
	cc       Config
	drained  func() (bool, string)
}

// New returns a Checker reading sockets under procRoot ("" for /proc)
// and files under cc.Root ("" for /). drained reports the drain flag; nil
// leaves the drain check out.
func New(procRoot string, cc Config, drained func() (bool, string)) *Checker {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	root := cc.Root
	if root == "" {
		root = "/"
	}
	if cc.TmpFullPercent == 0 {
		cc.TmpFullPercent = defaultTmpFullPercent
	}
	if cc.CommandTimeout <= 0 {
		cc.CommandTimeout = defaultCommandTimeout
	}
	return &Checker{procRoot: procRoot, root: root, cc: cc, drained: drained}
}

// Run runs every enabled check and returns one result each, in a fixed
// order: drain (when a drain func was given), nologin, sshd (when SSHPort is
// set), tmp, reboot, command (when Command is set). Only the command check
// takes notable time; it is bounded by CommandTimeout and by ctx.
func (c *Checker) Run(ctx context.Context) []report.CheckResult {
	var out []report.CheckResult
	if c.drained != nil {
		out = append(out, c.checkDrain())
	}
	out = append(out, c.checkNologin())
	if c.cc.SSHPort != 0 {
		out = append(out, c.checkSSHD())
	}
	out = append(out, c.checkTmp())
	out = append(out, c.checkReboot())
	if strings.TrimSpace(c.cc.Command) != "" {
		out = append(out, c.checkCommand(ctx))
	}
	return out
}

func pass(name string) report.CheckResult { return report.CheckResult{Name: name, OK: true} }

func fail(name, format string, args ...any) report.CheckResult {
	return report.CheckResult{Name: name, Reason: fmt.Sprintf(format, args...)}
}

func (c *Checker) path(p string) string { return filepath.Join(c.root, p) }

// --- drain -----------------------------------------------------------------

func (c *Checker) checkDrain() report.CheckResult {
	on, reason := c.drained()
	switch {
	case !on:
		return pass(checkDrain)
	case reason == "":
		return fail(checkDrain, "drained")
	}
	return fail(checkDrain, "drained: %s", reason)
}

// --- nologin ---------------------------------------------------------------

// checkNologin fails when pam_nologin would refuse ordinary users: an admin
// created /etc/nologin, or systemd created /run/nologin because a shutdown
// is minutes away.
func (c *Checker) checkNologin() report.CheckResult {
	for _, p := range []string{"/etc/nologin", "/run/nologin"} {
		b, err := os.ReadFile(c.path(p))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if line := firstLine(b); line != "" {
			return fail(checkNologin, "%s: %s", p, line)
		}
		return fail(checkNologin, "%s exists", p)
	}
	return pass(checkNologin)
}

// firstLine is the first non-blank line of b, trimmed to what fits in a
// report's reason.
func firstLine(b []byte) string {
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" {
			return truncate(line, report.MaxReasonBytes)
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// --- sshd ------------------------------------------------------------------

// checkSSHD looks for a LISTEN socket on SSHPort in net/tcp and net/tcp6.
// It reads the kernel's table instead of connecting, so it neither needs
// the network nor shows up in sshd's logs every interval.
func (c *Checker) checkSSHD() report.CheckResult {
	var errs []string
	read := 0
	for _, f := range []string{"net/tcp", "net/tcp6"} {
		path := filepath.Join(c.procRoot, f)
		file, err := os.Open(path)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) { // no tcp6 without IPv6
				errs = append(errs, err.Error())
			}
			continue
		}
		read++
		ok, err := tcpListening(file, c.cc.SSHPort)
		file.Close()
		if ok {
			return pass(checkSSHD)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", path, err))
		}
	}
	if read == 0 && len(errs) == 0 {
		return fail(checkSSHD, "no net/tcp or net/tcp6 under %s", c.procRoot)
	}
	if len(errs) > 0 {
		return fail(checkSSHD, "nothing listens on TCP port %d (%s)", c.cc.SSHPort, strings.Join(errs, "; "))
	}
	return fail(checkSSHD, "nothing listens on TCP port %d", c.cc.SSHPort)
}

// TCP states in the st column of /proc/net/tcp.
const (
	tcpStateListen  = "0A" // TCP_LISTEN
	tcpStateSynRecv = "03" // TCP_SYN_RECV: listed with their listener by kernels before 4.4
)

// tcpListening scans a /proc/net/tcp or tcp6 table for a LISTEN socket on
// port. Lines look like
//
//	0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 ...
//
// with the local address and port in hex. It stops at the first match; a
// malformed line is an error only if no match follows.
//
// The kernel lists every listening socket before any other, so the scan
// also stops at the first socket in another state: on a busy machine the
// whole table (one line per connection, produced by walking the kernel's
// connection hash) cost an idle agent more CPU than everything else it
// does, every sampling interval.
func tcpListening(r io.Reader, port int) (bool, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var bad error
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] == "sl" {
			continue
		}
		if len(f) < 4 {
			if bad == nil {
				bad = fmt.Errorf("line %d: too few fields", n)
			}
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if i < 0 || err != nil {
			if bad == nil {
				bad = fmt.Errorf("line %d: local address %q", n, f[1])
			}
			continue
		}
		listen := strings.EqualFold(f[3], tcpStateListen)
		if int(p) == port && listen {
			return true, nil
		}
		if !listen && !strings.EqualFold(f[3], tcpStateSynRecv) {
			break
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, bad
}

// --- tmp -------------------------------------------------------------------

// checkTmp fails when Root/tmp is nearly full in blocks or inodes: logins
// then break in odd ways (no shell history, editors and X sessions fail). A
// tree without a tmp directory has nothing to fill and passes.
func (c *Checker) checkTmp() report.CheckResult {
	dir := c.path("tmp")
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return report.CheckResult{Name: checkTmp, OK: true, Reason: dir + " does not exist"}
		}
		return fail(checkTmp, "statfs %s: %v", dir, err)
	}
	blocks, inodes := fsUsage(st)
	limit := c.cc.TmpFullPercent
	switch {
	case blocks >= limit:
		return fail(checkTmp, "/tmp is %.0f%% full (limit %g%%)", blocks, limit)
	case inodes >= limit:
		return fail(checkTmp, "/tmp has %.0f%% of its inodes in use (limit %g%%)", inodes, limit)
	}
	return pass(checkTmp)
}

// fsUsage returns block and inode usage in percent the way df(1) counts
// blocks: of what ordinary users can have (used + available), so the
// blocks reserved for root count as full. A file system without an inode
// limit (Files 0, e.g. btrfs) reports 0% inodes.
func fsUsage(st syscall.Statfs_t) (blocks, inodes float64) {
	used := float64(st.Blocks) - float64(st.Bfree)
	if d := used + float64(st.Bavail); d > 0 {
		blocks = 100 * used / d
	}
	if st.Files > 0 {
		inodes = 100 * (float64(st.Files) - float64(st.Ffree)) / float64(st.Files)
	}
	return blocks, inodes
}

// --- reboot ----------------------------------------------------------------

const scheduledShutdownFile = "/run/systemd/shutdown/scheduled"

// checkReboot fails while a shutdown is scheduled (shutdown -r +10): nobody
// should be sent to a machine about to go away.
func (c *Checker) checkReboot() report.CheckResult {
	b, err := os.ReadFile(c.path(scheduledShutdownFile))
	if errors.Is(err, os.ErrNotExist) {
		return pass(checkReboot)
	}
	return fail(checkReboot, "%s", describeScheduledShutdown(b))
}

// describeScheduledShutdown turns systemd's schedule file
//
//	USEC=1718000000000000
//	WARN_WALL=1
//	MODE=reboot
//
// into "reboot scheduled for 2024-06-10T06:13:20Z". Unknown or missing
// fields leave a plainer sentence; the file's existence is what counts.
func describeScheduledShutdown(b []byte) string {
	mode, when := "shutdown", ""
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "MODE":
			if v != "" {
				mode = v
			}
		case "USEC":
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
				when = time.UnixMicro(us).UTC().Format(time.RFC3339)
			}
		}
	}
	mode = truncate(mode, 32)
	if when == "" {
		return mode + " scheduled"
	}
	return mode + " scheduled for " + when
}

// --- command ---------------------------------------------------------------

// checkCommand runs the site's own check with sh -c. The command runs in
// its own process group, and the whole group is killed on timeout, so a
// forgotten `sleep` in a pipeline cannot hold the check open.
func (c *Checker) checkCommand(ctx context.Context) report.CheckResult {
	timeout := c.cc.CommandTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.cc.Command)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	line := firstLine(out.Bytes())
	switch {
	case err == nil:
		return pass(checkCommand)
	case ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fail(checkCommand, "timed out after %s%s", timeout, suffix(line))
		}
		return fail(checkCommand, "canceled%s", suffix(line))
	case line != "":
		return fail(checkCommand, "%s", line)
	}
	return fail(checkCommand, "%v", err)
}

func suffix(line string) string {
	if line == "" {
		return ""
	}
	return ": " + line
}
