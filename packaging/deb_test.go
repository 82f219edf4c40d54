package packaging

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
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
// checks, DNS answers and updater membership, an upgrade restarts what runs,
// and a purge removes it all.
func TestInstallAndRun(t *testing.T) {
	if os.Geteuid() != 0 {
		missing(t, "needs root (overlay mount, systemd-nspawn)")
	}
	need(t, "unshare", "nsenter", "systemd-nspawn", "dig", "tsig-keygen")
	deb := debPath(t)
	m := bootMachine(t, deb)

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

	t.Run("upgrade restarts", func(t *testing.T) {
		before := strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", "peerload-agent"))
		m.must(t, "dpkg", "-i", "/root/peerload.deb")
		after := strings.TrimSpace(m.must(t, "systemctl", "show", "-P", "MainPID", "peerload-agent"))
		if after == before || after == "0" {
			t.Errorf("agent MainPID %s before and %s after the upgrade, want a restarted process", before, after)
		}
		m.waitFailing(t, "lab01", "")
		digAnswers(t)
	})

	t.Run("purge", func(t *testing.T) {
		m.must(t, "dpkg", "--purge", "peerload")
		for _, u := range units {
			// "failed" counts as stopped: CoreDNS exits 4 when its leave
			// broadcast times out on a busy machine (a plugin matter).
			if got := strings.TrimSpace(m.run("systemctl", "is-active", u)); got != "inactive" && got != "failed" {
				t.Errorf("%s is %s after purge:\n%s", u, got, m.run("journalctl", "-u", u, "--no-pager", "-n", "15"))
			}
		}
		for _, path := range []string{"/usr/bin/peerload", "/etc/peerload/agent.env", "/var/lib/peerload", "/etc/systemd/system/multi-user.target.wants/peerload-agent.service"} {
			if m.check("test", "-e", path) {
				t.Errorf("%s is still there after purge", path)
			}
		}
	})
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
