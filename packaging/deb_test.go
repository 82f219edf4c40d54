package packaging

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
)

// units are the systemd units of the package.
var units = []string{"peerload-agent.service", "peerload-nsupdate.service", "peerload-coredns.service"}

// maxExposure is the highest `systemd-analyze security` exposure systemd
// still rates "OK".
const maxExposure = 4.9

// debPath is the package under test: $PEERLOAD_DEB, else what `make deb`
// wrote.
func debPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("PEERLOAD_DEB")
	if p == "" {
		p = filepath.Join("..", "bin", "peerload.deb")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		missing(t, "%v (make deb builds it)", err)
	}
	return abs
}

// missing skips the test, or fails it when CI is set: CI runs everything.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// need checks that programs are installed (`make deps` installs them).
func need(t *testing.T, progs ...string) {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, "%s is not installed (make deps installs it)", p)
		}
	}
}

// output runs a command on the host and returns its standard output.
func output(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func TestDebContents(t *testing.T) {
	need(t, "dpkg-deb")
	deb := debPath(t)

	modes := map[string]string{}
	for line := range strings.Lines(output(t, "dpkg-deb", "--contents", deb)) {
		// drwxr-xr-x root/root         0 2026-01-02 03:04 ./etc/
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: unexpected line %q", line)
		}
		path := strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root (postinst creates the peerload user)", path, f[1])
		}
		modes[path] = f[0]
	}
	const exe, data = "-rwxr-xr-x", "-rw-r--r--"
	want := map[string]string{
		"/usr/bin/peerload":                               exe,
		"/usr/bin/peerload-plot":                          exe,
		"/usr/lib/peerload/coredns":                       exe,
		"/usr/lib/sysusers.d/peerload.conf":               data,
		"/etc/peerload":                                   "drwxr-xr-x",
		"/etc/peerload/agent.env":                         data,
		"/etc/peerload/nsupdate.env":                      data,
		"/etc/peerload/coredns.env":                       data,
		"/etc/peerload/machines.txt":                      data,
		"/usr/share/doc/peerload/copyright":               data,
		"/usr/share/doc/peerload/changelog.gz":            data,
		"/usr/share/doc/peerload/README.md.gz":            data,
		"/usr/share/doc/peerload/deploying.md.gz":         data,
		"/usr/share/doc/peerload/examples/Corefile":       data,
		"/usr/share/man/man1/peerload.1.gz":               data,
		"/usr/share/man/man1/peerload-plot.1.gz":          data,
		"/usr/share/lintian/overrides/peerload":           data,
		"/usr/share/doc/peerload/plugin-README.md.gz":     data,
		"/usr/share/doc/peerload/third-party-licenses.gz": data,
	}
	for _, u := range units {
		want["/usr/lib/systemd/system/"+u] = data
	}
	for path, mode := range want {
		if got, ok := modes[path]; !ok {
			t.Errorf("package lacks %s", path)
		} else if got != mode {
			t.Errorf("%s has mode %s, want %s", path, got, mode)
		}
	}
	// Caddy is not packaged: it would ship without a unit or a
	// configuration (docs/deploying.md says why and how to run it).
	if _, ok := modes["/usr/lib/peerload/caddy"]; ok {
		t.Error("package ships /usr/lib/peerload/caddy")
	}
	// What the admin writes is not shipped: the units wait for it.
	for _, path := range []string{"/etc/peerload/keyring", "/etc/peerload/peerload-update.key", "/etc/peerload/Corefile"} {
		if _, ok := modes[path]; ok {
			t.Errorf("package ships %s, which must come from the admin", path)
		}
	}

	fields := output(t, "dpkg-deb", "--field", deb, "Package", "Version", "Depends")
	for _, re := range []string{`(?m)^Package: peerload$`, `(?m)^Version: [0-9][0-9A-Za-z.+~]*$`, `(?m)^Depends: .*\bsystemd\b`} {
		if !regexp.MustCompile(re).MatchString(fields) {
			t.Errorf("control fields do not match %s:\n%s", re, fields)
		}
	}
	conffiles := strings.Fields(output(t, "dpkg-deb", "--info", deb, "conffiles"))
	slices.Sort(conffiles)
	wantConf := []string{"/etc/peerload/agent.env", "/etc/peerload/coredns.env", "/etc/peerload/machines.txt", "/etc/peerload/nsupdate.env"}
	if !slices.Equal(conffiles, wantConf) {
		t.Errorf("conffiles %v, want %v", conffiles, wantConf)
	}
	for script, wantText := range map[string]string{"postinst": "systemd-sysusers", "prerm": "deb-systemd-invoke stop", "postrm": "deb-systemd-helper purge"} {
		if s := output(t, "dpkg-deb", "--info", deb, script); !strings.Contains(s, wantText) {
			t.Errorf("%s does not run %q:\n%s", script, wantText, s)
		}
	}
}

func TestLintian(t *testing.T) {
	need(t, "lintian")
	deb := debPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "lintian", "--no-cfg", "--fail-on", "error", deb).CombinedOutput()
	if len(out) > 0 {
		t.Logf("lintian:\n%s", out)
	}
	if err != nil {
		t.Fatalf("lintian reports errors: %v", err)
	}
}

// documentedExposure reads the exposure scores from the table in
// docs/deploying.md, so the doc cannot promise more than the units give.
func documentedExposure(t *testing.T) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docs", "deploying.md"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?m)^\\|\\s*`(peerload-[a-z]+\\.service)`\\s*\\|\\s*([0-9.]+)")
	doc := map[string]float64{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Fatal(err)
		}
		doc[m[1]] = v
	}
	return doc
}

var exposureRE = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+) (\w+)`)

func TestUnitSecurity(t *testing.T) {
	need(t, "dpkg-deb", "systemd-analyze")
	deb := debPath(t)
	root := t.TempDir()
	output(t, "dpkg-deb", "--extract", deb, root)
	doc := documentedExposure(t)
	for _, u := range units {
		t.Run(u, func(t *testing.T) {
			path := filepath.Join(root, "usr/lib/systemd/system", u)
			out := output(t, "systemd-analyze", "security", "--offline=yes", "--root="+root,
				"--threshold="+strconv.Itoa(int(maxExposure*10)), path)
			m := exposureRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no overall exposure in:\n%s", out)
			}
			got, _ := strconv.ParseFloat(m[2], 64)
			if !slices.Contains([]string{"PERFECT", "SAFE", "OK"}, m[3]) || got > maxExposure {
				t.Errorf("exposure %.1f %s, want OK or better (<= %.1f):\n%s", got, m[3], maxExposure, out)
			}
			want, ok := doc[u]
			switch {
			case !ok:
				t.Errorf("docs/deploying.md has no exposure row for %s (measured %.1f)", u, got)
			case got > want:
				t.Errorf("exposure %.1f is worse than the %.1f docs/deploying.md states:\n%s", got, want, out)
			}
			t.Logf("%s: %.1f %s", u, got, m[3])
		})
	}
}

// statusJSON is the part of `peerload status --json` the tests read.
type statusJSON struct {
	Nodes []struct {
		Name      string   `json:"name"`
		Collector bool     `json:"collector"`
		Candidate bool     `json:"candidate"`
		Reasons   []string `json:"reasons"`
		Failing   []struct {
			Name   string `json:"name"`
			Reason string `json:"reason"`
		} `json:"failing"`
	} `json:"nodes"`
}

// TestInstallAndRun installs the package into a throwaway copy of this
// machine booted with systemd (see machine), and checks what an admin
// meets: the user, the files and their permissions, that nothing starts
// before the keyring and members are written, that every unit passes
// `systemd-analyze verify` and runs under its hardening with working health
// checks, DNS answers and updater membership; that an upgrade to a higher
// version keeps the admin's /etc/peerload, the drain flag and the generation,
// restarts what runs and leaves DNS without an answer for less than a
// refresh interval; that a remove stops everything and keeps the
// configuration; and that a purge removes what the package made.
func TestInstallAndRun(t *testing.T) {
	if os.Geteuid() != 0 {
		missing(t, "needs root (overlay mount, systemd-nspawn)")
	}
	need(t, "unshare", "nsenter", "systemd-nspawn", "dig", "tsig-keygen", "dpkg-deb", "dpkg")
	deb := debPath(t)
	// The package is installed first and then upgraded to the same files
	// with a higher version, as an admin upgrades from one release to the
	// next.
	newer, oldVersion, newVersion := newerDeb(t, deb)
	t.Logf("installing %s, then upgrading to %s", oldVersion, newVersion)
	m := bootMachine(t, map[string]string{"root/peerload.deb": deb, "root/peerload-newer.deb": newer})

	m.must(t, "dpkg", "-i", "/root/peerload.deb")

	t.Run("user and files", func(t *testing.T) {
		pw := strings.Split(strings.TrimSpace(m.must(t, "getent", "passwd", "peerload")), ":")
		if len(pw) != 7 || pw[5] != "/var/lib/peerload" || pw[6] != "/usr/sbin/nologin" {
			t.Errorf("peerload user %v, want home /var/lib/peerload and shell /usr/sbin/nologin", pw)
		}
		if uid, _ := strconv.Atoi(pw[2]); uid == 0 || uid >= 1000 {
			t.Errorf("peerload uid %s, want a system uid", pw[2])
		}
		m.must(t, "getent", "group", "peerload-admin")
		for path, want := range map[string]string{
			"/usr/bin/peerload":                         "root:root 755",
			"/usr/bin/peerload-plot":                    "root:root 755",
			"/usr/lib/peerload/coredns":                 "root:root 755",
			"/etc/peerload":                             "root:root 755",
			"/etc/peerload/agent.env":                   "root:root 644",
			"/etc/peerload/machines.txt":                "root:root 644",
			"/usr/lib/systemd/system/" + units[0]:       "root:root 644",
			"/usr/lib/sysusers.d/peerload.conf":         "root:root 644",
			"/usr/share/doc/peerload/copyright":         "root:root 644",
			"/usr/share/doc/peerload/examples/Corefile": "root:root 644",
		} {
			if got := strings.TrimSpace(m.must(t, "stat", "-c", "%U:%G %a", path)); got != want {
				t.Errorf("%s: %s, want %s", path, got, want)
			}
		}
		for _, u := range units {
			m.must(t, "systemd-analyze", "verify", u)
			want := "disabled"
			if u == "peerload-agent.service" {
				want = "enabled"
			}
			if got := strings.TrimSpace(m.run("systemctl", "is-enabled", u)); got != want {
				t.Errorf("%s is %s, want %s", u, got, want)
			}
		}
	})

	t.Run("simulate plots", func(t *testing.T) {
		// peerload runs peerload-plot, beside it in /usr/bin, for --plot.
		out := m.must(t, "peerload", "simulate", "--machines", "10", "--burst", "6", "--duration", "20m", "--plot", "/tmp/plots")
		for _, f := range []string{"/tmp/plots/sim-slowdown.png", "/tmp/plots/sim-sessions.png"} {
			if !strings.Contains(out, "wrote "+f) {
				t.Errorf("simulate --plot does not say it wrote %s:\n%s", f, out)
			}
			m.must(t, "test", "-s", f)
		}
	})

	t.Run("nothing starts unconfigured", func(t *testing.T) {
		// postinst has tried to start the agent; its conditions held it.
		if got := m.prop(t, "peerload-agent", "ActiveState", "ConditionResult"); got != "inactive no" {
			t.Errorf("after install the agent is %q, want inactive, condition failed", got)
		}
		// The key as the README's Deploying section makes and installs it:
		// the agent runs as peerload and must be able to read it.
		keygen := readmeCommand(t, "peerload keygen ")
		install := readmeCommand(t, "install ")
		m.must(t, "sh", "-c", "cd /root && "+keygen+" && "+install+" && rm keyring")
		if got := strings.TrimSpace(m.must(t, "stat", "-c", "%U:%G %a", "/etc/peerload/keyring")); got != "root:peerload 640" {
			t.Errorf("/etc/peerload/keyring after the README's steps: %s, want root:peerload 640", got)
		}
		m.must(t, "systemctl", "start", "peerload-agent")
		// machines.txt lists nobody yet: skipped by ExecCondition, not failed.
		if got := m.prop(t, "peerload-agent", "ActiveState", "Result"); got != "inactive exec-condition" {
			t.Errorf("with a keyring but no members the agent is %q, want inactive, skipped by ExecCondition", got)
		}
	})

	t.Run("agent runs hardened", func(t *testing.T) {
		// The sshd check watches the agent's own API port: a LISTEN socket
		// it can only see in the host's net/tcp.
		m.must(t, "sh", "-c", `echo 127.0.0.1:7946 >> /etc/peerload/machines.txt
cat >> /etc/peerload/agent.env <<'EOF'
PEERLOAD_BIND=127.0.0.1:7946
PEERLOAD_LABEL=testlab
PEERLOAD_AGENT_OPTS="--name lab01 --ssh-port 1981 --interval 250ms"
EOF`)
		m.must(t, "systemctl", "start", "peerload-agent")
		m.waitFailing(t, "lab01", "")
		pid := strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", "peerload-agent"))
		st := m.must(t, "cat", "/proc/"+pid+"/status")
		admin := strings.Split(strings.TrimSpace(m.must(t, "getent", "group", "peerload-admin")), ":")[2]
		for _, re := range []string{`(?m)^Uid:\s+(\d+)\s+\d+\s+\d+\s+\d+$`, `(?m)^CapEff:\s+0+$`, `(?m)^CapBnd:\s+0+$`, `(?m)^NoNewPrivs:\s+1$`, `(?m)^Groups:.*\b` + admin + `\b`} {
			if !regexp.MustCompile(re).MatchString(st) {
				t.Errorf("agent process status does not match %s:\n%s", re, st)
			}
		}
		if got := strings.TrimSpace(m.must(t, "stat", "-c", "%U:%G %a", "/run/peerload", "/var/lib/peerload")); got != "peerload:peerload 755\npeerload:peerload 755" {
			t.Errorf("runtime and state dirs: %q, want both peerload:peerload 755", got)
		}
		// The health checks see the host through the sandbox.
		m.must(t, "touch", "/etc/nologin")
		m.waitFailing(t, "lab01", "nologin")
		m.must(t, "rm", "/etc/nologin")
		m.waitFailing(t, "lab01", "")
		m.must(t, "sh", "-c", "mkdir -p /run/systemd/shutdown && printf 'USEC=4102444800000000\\nMODE=reboot\\n' > /run/systemd/shutdown/scheduled")
		m.waitFailing(t, "lab01", "reboot")
		m.must(t, "rm", "/run/systemd/shutdown/scheduled")
		m.waitFailing(t, "lab01", "")
		// drain goes through the control socket in /run/peerload, for
		// root and peerload-admin only, and writes the state directory.
		if got := strings.TrimSpace(m.must(t, "stat", "-c", "%F %U", "/run/peerload/control.sock")); got != "socket peerload" {
			t.Errorf("/run/peerload/control.sock: %q, want a socket of peerload", got)
		}
		m.must(t, "peerload", "drain", "--reason", "package test")
		m.waitFailing(t, "lab01", "drain")
		m.must(t, "test", "-f", "/var/lib/peerload/drain")
		if out, err := m.exec("runuser", "-u", "nobody", "--", "peerload", "undrain"); err == nil || !strings.Contains(out, "only root and members of group peerload-admin may drain or undrain") {
			t.Errorf("undrain as nobody: %v %q, want refused", err, out)
		}
		m.must(t, "peerload", "undrain")
		m.waitFailing(t, "lab01", "")
		if log := m.run("journalctl", "-u", "peerload-agent", "--no-pager"); !strings.Contains(log, `reason="package test" by="root (uid 0`) {
			t.Errorf("the agent's journal does not say who drained:\n%s", log)
		}
	})

	t.Run("known hosts", func(t *testing.T) {
		// The README's command: with the machine's host keys gossiped it
		// writes them under every name; without any it fails and leaves
		// the file alone.
		cmd := readmeCommand(t, "peerload known-hosts ")
		const file = "/etc/ssh/ssh_known_hosts"
		m.must(t, "sh", "-c", "mkdir -p /etc/ssh && echo '# before' > "+file)
		if m.check("sh", "-c", "ls /etc/ssh/ssh_host_*_key.pub") {
			eventually(t, 30*time.Second, "known-hosts writes lab01's keys", func() (bool, string) {
				out, err := m.exec("sh", "-c", cmd)
				known := m.run("cat", file)
				return err == nil && strings.Contains(known, "cslab.example.edu,lab01,127.0.0.1 "), out + known
			})
		} else {
			if out, err := m.exec("sh", "-c", cmd); err == nil || !strings.Contains(out, "no host keys known") {
				t.Errorf("known-hosts without host keys: %v %q, want a failure", err, out)
			}
			if got := m.run("cat", file); got != "# before\n" {
				t.Errorf("%s after a failed known-hosts: %q", file, got)
			}
		}
	})

	digAnswers := func(t *testing.T) {
		t.Helper()
		eventually(t, 30*time.Second, "dig cslab.example.test answers 127.0.0.1", func() (bool, string) {
			out := m.run("dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "cslab.example.test", "A")
			return strings.TrimSpace(out) == "127.0.0.1", out + m.run("journalctl", "-u", "peerload-coredns", "--no-pager", "-n", "20")
		})
	}

	t.Run("coredns answers", func(t *testing.T) {
		m.must(t, "sh", "-c", `cat > /etc/peerload/Corefile <<'EOF'
example.test:53 {
    bind 127.0.0.1
    peerload cslab.example.test {
        bind 127.0.0.1:7950
        join 127.0.0.1:7946
        keyring /etc/peerload/keyring
        label testlab
        name dns1
    }
}
EOF`)
		m.must(t, "systemctl", "start", "peerload-coredns")
		digAnswers(t)
		pid := strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", "peerload-coredns"))
		st := m.must(t, "cat", "/proc/"+pid+"/status")
		// CAP_NET_BIND_SERVICE (bit 10) and nothing else.
		for _, re := range []string{`(?m)^CapEff:\s+0+400$`, `(?m)^CapBnd:\s+0+400$`, `(?m)^NoNewPrivs:\s+1$`, `(?m)^Uid:\s+[1-9]\d*\s`} {
			if !regexp.MustCompile(re).MatchString(st) {
				t.Errorf("coredns process status does not match %s:\n%s", re, st)
			}
		}
	})

	t.Run("nsupdate joins", func(t *testing.T) {
		m.must(t, "sh", "-c", `tsig-keygen -a hmac-sha256 peerload-update > /etc/peerload/peerload-update.key
chgrp peerload /etc/peerload/peerload-update.key && chmod 0640 /etc/peerload/peerload-update.key
cat >> /etc/peerload/nsupdate.env <<'EOF'
PEERLOAD_NSUPDATE_SERVER=127.0.0.1:53
PEERLOAD_NSUPDATE_ZONE=example.test
PEERLOAD_NSUPDATE_NAME=cslab2.example.test
PEERLOAD_NSUPDATE_BIND=127.0.0.1:7945
PEERLOAD_LABEL=testlab
PEERLOAD_NSUPDATE_OPTS="--node-name nsupdate-a"
EOF`)
		m.must(t, "systemctl", "start", "peerload-nsupdate")
		eventually(t, 30*time.Second, "the agent lists nsupdate-a as a collector", func() (bool, string) {
			st, out := m.status()
			for _, n := range st.Nodes {
				if n.Name == "nsupdate-a" && n.Collector {
					return true, ""
				}
			}
			return false, out + m.run("journalctl", "-u", "peerload-nsupdate", "--no-pager", "-n", "20")
		})
	})

	t.Run("upgrade keeps config and state", func(t *testing.T) {
		// A second machine, lab02, so the name has an answer while lab01
		// is drained: a transient unit of its own, not touched by the
		// package, that lab01 rejoins from machines.txt after its restart.
		m.must(t, "sh", "-c", "echo 127.0.0.2:7946 >> /etc/peerload/machines.txt")
		m.must(t, "systemd-run", "--unit=lab02", "--collect", "--",
			"/usr/bin/peerload", "agent", "--name", "lab02", "--bind", "127.0.0.2:7946", "--join", "127.0.0.1:7946",
			"--keyring", "/etc/peerload/keyring", "--label", "testlab", "--state-dir", "", "--api", "127.0.0.1:1982",
			"--control", "", "--ssh-port", "0", "--interval", "250ms")
		defer m.run("systemctl", "stop", "lab02")
		m.waitFailing(t, "lab02", "")

		m.must(t, "peerload", "drain", "--reason", "before the upgrade")
		m.waitFailing(t, "lab01", "drain")
		eventually(t, 30*time.Second, "dig cslab.example.test answers lab02 alone", func() (bool, string) {
			out := m.run("dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", "cslab.example.test", "A")
			return strings.TrimSpace(out) == "127.0.0.2", out
		})
		etcBefore := m.must(t, "sh", "-c", etcSnapshot)
		drainBefore := m.must(t, "cat", "/var/lib/peerload/drain")
		genBefore := m.generation(t)
		pids := map[string]string{}
		for _, u := range units {
			pids[u] = strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", u))
		}

		// The answers while dpkg upgrades: none may be missing for a
		// refresh interval of the profile the packaged agent.env leaves in
		// place (lan), which is how long a report may go unrefreshed anyway.
		var lan agent.Config
		if err := lan.SetProfile(agent.ProfileLAN); err != nil {
			t.Fatal(err)
		}
		poll := m.pollDNS("cslab.example.test")
		m.must(t, "dpkg", "-i", "/root/peerload-newer.deb")
		upgraded := time.Now()
		eventually(t, 30*time.Second, "an answer after the upgrade", func() (bool, string) {
			return poll.answeredSince(upgraded), poll.log()
		})
		gap, log := poll.stop()
		t.Logf("longest time without an answer during the upgrade: %v (allowed: under %v)", gap.Round(time.Millisecond), lan.RefreshInterval)
		if gap >= lan.RefreshInterval {
			t.Errorf("DNS went %v without an answer during the upgrade, want under the refresh interval %v:\n%s", gap, lan.RefreshInterval, log)
		}

		if got := strings.TrimSpace(m.must(t, "dpkg-query", "-W", "-f", "${Version} ${db:Status-Abbrev}", "peerload")); got != newVersion+" ii" {
			t.Errorf("after the upgrade dpkg has %q, want %q installed", got, newVersion+" ii")
		}
		for _, u := range units {
			after := strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", u))
			if after == pids[u] || after == "0" {
				t.Errorf("%s MainPID %s before and %s after the upgrade, want a restarted process", u, pids[u], after)
			}
		}
		if etcAfter := m.must(t, "sh", "-c", etcSnapshot); etcAfter != etcBefore {
			t.Errorf("/etc/peerload changed in the upgrade:\nbefore:\n%s\nafter:\n%s", etcBefore, etcAfter)
		}
		if got := m.must(t, "cat", "/var/lib/peerload/drain"); got != drainBefore {
			t.Errorf("drain flag %q after the upgrade, want %q", got, drainBefore)
		}
		// The restarted agent took the next generation, not a fresh one,
		// so its reports supersede the old run's.
		if got := m.generation(t); got <= genBefore {
			t.Errorf("generation %d after the upgrade, want more than %d", got, genBefore)
		}
		m.waitFailing(t, "lab01", "drain")
		m.waitFailing(t, "lab02", "")
	})

	t.Run("remove stops and keeps config", func(t *testing.T) {
		etcBefore := m.must(t, "sh", "-c", etcSnapshot)
		m.must(t, "dpkg", "--remove", "peerload")
		for _, u := range units {
			// "failed" counts as stopped: CoreDNS exits 4 when its leave
			// broadcast times out on a busy machine (a plugin matter).
			if got := strings.TrimSpace(m.run("systemctl", "is-active", u)); got != "inactive" && got != "failed" {
				t.Errorf("%s is %s after remove:\n%s", u, got, m.run("journalctl", "-u", u, "--no-pager", "-n", "15"))
			}
		}
		if got := strings.TrimSpace(m.run("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "peerload")); got != "rc" {
			t.Errorf("after remove dpkg has peerload in state %q, want rc (config-files)", got)
		}
		if etcAfter := m.must(t, "sh", "-c", etcSnapshot); etcAfter != etcBefore {
			t.Errorf("/etc/peerload changed in the remove:\nbefore:\n%s\nafter:\n%s", etcBefore, etcAfter)
		}
		// The state is removed with the configuration, on purge.
		m.must(t, "test", "-f", "/var/lib/peerload/drain")
		for _, path := range []string{"/usr/bin/peerload", "/usr/lib/peerload/coredns", "/usr/lib/systemd/system/peerload-agent.service"} {
			if m.check("test", "-e", path) {
				t.Errorf("%s is still there after remove", path)
			}
		}
	})

	t.Run("reinstall after remove", func(t *testing.T) {
		// dpkg hands postinst the version last configured, as for an
		// upgrade, but nothing runs any more: the enabled agent must start
		// again with the configuration and state the remove kept.
		m.must(t, "dpkg", "-i", "/root/peerload-newer.deb")
		if got := m.prop(t, "peerload-agent", "ActiveState"); got != "active" {
			t.Errorf("after reinstalling the agent is %s, want active:\n%s", got, m.run("journalctl", "-u", "peerload-agent", "--no-pager", "-n", "15"))
		}
		m.waitFailing(t, "lab01", "drain")
		m.must(t, "dpkg", "--remove", "peerload")
	})

	t.Run("purge", func(t *testing.T) {
		m.must(t, "dpkg", "--purge", "peerload")
		for _, path := range []string{"/etc/peerload/agent.env", "/etc/peerload/nsupdate.env", "/etc/peerload/coredns.env",
			"/etc/peerload/machines.txt", "/var/lib/peerload", "/etc/systemd/system/multi-user.target.wants/peerload-agent.service"} {
			if m.check("test", "-e", path) {
				t.Errorf("%s is still there after purge", path)
			}
		}
		// What the admin wrote is not the package's to delete, and Debian
		// leaves system users (docs/deploying.md).
		for _, path := range []string{"/etc/peerload/keyring", "/etc/peerload/Corefile", "/etc/peerload/peerload-update.key"} {
			if !m.check("test", "-f", path) {
				t.Errorf("%s, written by the admin, is gone after purge", path)
			}
		}
		m.must(t, "getent", "passwd", "peerload")
		if out, err := m.exec("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "peerload"); err == nil && strings.TrimSpace(out) != "" && strings.TrimSpace(out) != "un" {
			t.Errorf("after purge dpkg still knows peerload: %q", out)
		}
	})
}

// etcSnapshot lists every file under /etc/peerload with its owner, mode and
// checksum, so two runs compare the admin's configuration byte for byte.
const etcSnapshot = `cd /etc/peerload && find . -printf '%p %u:%g %m %y\n' | sort && find . -type f -exec sha256sum {} + | sort`

// generation is the agent's report generation, from its state directory.
func (m *machine) generation(t *testing.T) uint64 {
	t.Helper()
	s := strings.TrimSpace(m.must(t, "cat", "/var/lib/peerload/generation"))
	g, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("/var/lib/peerload/generation: %v", err)
	}
	return g
}

// newerDeb writes a copy of deb whose version is deb's with "+1" appended,
// which dpkg sorts after it: the same binaries, conffiles and maintainer
// scripts, so installing it over deb is an upgrade as dpkg sees one.
func newerDeb(t *testing.T, deb string) (path, oldVersion, newVersion string) {
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	output(t, "dpkg-deb", "--raw-extract", deb, tree)
	control := filepath.Join(tree, "DEBIAN", "control")
	b, err := os.ReadFile(control)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^Version: (\S+)$`)
	v := re.FindSubmatch(b)
	if v == nil {
		t.Fatalf("%s has no version:\n%s", deb, b)
	}
	oldVersion = string(v[1])
	newVersion = oldVersion + "+1"
	b = re.ReplaceAll(b, []byte("Version: "+newVersion))
	if err := os.WriteFile(control, b, 0o644); err != nil {
		t.Fatal(err)
	}
	output(t, "dpkg", "--compare-versions", newVersion, "gt", oldVersion)
	path = filepath.Join(dir, "peerload-newer.deb")
	// gzip -1: a test package, built in a second rather than xz's twenty.
	output(t, "dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", tree, path)
	return path, oldVersion, newVersion
}

// dnsPoll asks the machine's DNS server for a name over and over, from
// pollDNS until stop.
type dnsPoll struct {
	mu      sync.Mutex
	probes  []dnsProbe
	done    chan struct{}
	stopped chan struct{}
}

type dnsProbe struct {
	at     time.Time
	answer string // dig +short's output, trimmed
	ok     bool   // one or more addresses and nothing else
}

// pollDNS starts polling the local DNS server for name's A records.
func (m *machine) pollDNS(name string) *dnsPoll {
	p := &dnsPoll{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(p.stopped)
		for {
			at := time.Now()
			out := strings.TrimSpace(m.run("dig", "+short", "+time=1", "+tries=1", "@127.0.0.1", name, "A"))
			ok := out != ""
			for _, line := range strings.Split(out, "\n") {
				if _, err := netip.ParseAddr(line); err != nil {
					ok = false
				}
			}
			p.mu.Lock()
			p.probes = append(p.probes, dnsProbe{at: at, answer: out, ok: ok})
			p.mu.Unlock()
			select {
			case <-p.done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return p
}

// answeredSince reports whether a query sent after t was answered.
func (p *dnsPoll) answeredSince(t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.probes {
		if pr.ok && pr.at.After(t) {
			return true
		}
	}
	return false
}

// stop ends the polling and returns the longest time without an answer,
// from the first query to the last (answered or not), with a log of every
// unanswered query.
func (p *dnsPoll) stop() (time.Duration, string) {
	close(p.done)
	<-p.stopped
	var gap time.Duration
	var last time.Time
	for i, pr := range p.probes {
		if i == 0 {
			last = pr.at
		}
		if pr.ok || i == len(p.probes)-1 {
			gap = max(gap, pr.at.Sub(last))
			last = pr.at
		}
	}
	return gap, p.log()
}

// log lists the unanswered queries so far.
func (p *dnsPoll) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, pr := range p.probes {
		if !pr.ok {
			fmt.Fprintf(&b, "%s: %q\n", pr.at.Format("15:04:05.000"), pr.answer)
		}
	}
	return b.String()
}

// eventually polls cond until it holds or the deadline passes, then fails
// with cond's last explanation.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: not %s:\n%s", d, what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDebLicences: the package says peerload is Apache-2.0 and carries the
// licence texts and notices of what its programs link: CoreDNS (Apache-2.0,
// with its NOTICE rules) and MPL-2.0 memberlist with the address of its
// source, among every other module.
func TestDebLicences(t *testing.T) {
	need(t, "dpkg-deb")
	deb := debPath(t)
	root := t.TempDir()
	output(t, "dpkg-deb", "--extract", deb, root)
	copyright, err := os.ReadFile(filepath.Join(root, "usr/share/doc/peerload/copyright"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(copyright), "Files: *\nCopyright: 2026 The peerload authors\nLicense: Apache-2.0\n") {
		t.Errorf("copyright does not license peerload under Apache-2.0:\n%s", copyright)
	}
	notices := output(t, "zcat", filepath.Join(root, "usr/share/doc/peerload/third-party-licenses.gz"))
	for _, re := range []string{
		`(?m)^The Go standard library go1\.`,
		`(?m)^github\.com/coredns/coredns v\S+ \(in /usr/lib/peerload/coredns\)\nSource: https://proxy\.golang\.org/github\.com/coredns/coredns/@v/`,
		`(?m)^github\.com/hashicorp/memberlist v\S+ \(in /usr/bin/peerload, /usr/bin/peerload-plot, /usr/lib/peerload/coredns\)\nSource: `,
		`Mozilla Public License`,
	} {
		if !regexp.MustCompile(re).MatchString(notices) {
			t.Errorf("third-party-licenses.gz does not match %s", re)
		}
	}
}

// readmeCommand is the command of the README's Deploying section that
// starts with prefix, without its sudo, so the machine test runs what an
// admin following the README types.
func readmeCommand(t *testing.T, prefix string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n## Deploying\n")
	if start < 0 {
		t.Fatal("README.md has no Deploying section")
	}
	section := text[start+1:]
	if end := strings.Index(section[1:], "\n## "); end >= 0 {
		section = section[:end+1]
	}
	re := regexp.MustCompile("(?m)`(?:sudo )?([^`\n]+)`|^ *(?:sudo )?(peerload [^\n]+)$")
	for _, m := range re.FindAllStringSubmatch(section, -1) {
		cmd := m[1] + m[2]
		if strings.HasPrefix(cmd, prefix) {
			return cmd
		}
	}
	t.Fatalf("the README's Deploying section has no command starting %q", prefix)
	return ""
}
