package test

// The plugin modules as a site that builds its own server sees them: a
// module of its own that requires only the plugin, its main as xcaddy or
// CoreDNS's plugin.cfg makes it, then `go mod tidy` and `go build` outside
// this repository's workspace. The build list must hold neither the other
// server nor the repository's test and packaging tools (chromedp, nfpm,
// gonum/plot), and the program must start with the plugin in use.
//
// The tests use the shared module and build caches, so after `make build`
// almost nothing is compiled again; only the Go module proxy is reached,
// for anything the cache lacks.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// consumerBuildTimeout bounds one consumer's tidy and build: a cold build
// cache compiles all of Caddy or CoreDNS on two cores.
const consumerBuildTimeout = 10 * time.Minute

// heavyModules are the modules no plugin consumer may get: the test and
// packaging tools' dependencies.
var heavyModules = []string{"github.com/chromedp/", "github.com/goreleaser/nfpm", "gonum.org/v1/plot"}

const caddyConsumerMain = `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// plug in Caddy modules here
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/peerload/peerload/plugin/caddy"
)

func main() {
	caddycmd.Main()
}
`

// corednsConsumerMain is what CoreDNS's plugin.cfg line
// `peerload:github.com/peerload/peerload/plugin/coredns` before `file`
// amounts to, with a few stock plugins instead of all of them.
const corednsConsumerMain = `package main

import (
	"slices"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/file"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/whoami"
	_ "github.com/peerload/peerload/plugin/coredns"
)

func init() {
	i := slices.Index(dnsserver.Directives, "file")
	dnsserver.Directives = slices.Insert(dnsserver.Directives, i, "peerload")
}

func main() {
	coremain.Run()
}
`

// buildConsumer makes a module in a temporary directory that requires the
// plugin module at pluginDir (relative to the checkout) and has main as
// its main package, with replace directives pointing at this checkout,
// tidies it, checks its build list against forbidden (module path
// prefixes) and builds it. It returns the binary.
func buildConsumer(t *testing.T, name, pluginDir, main string, forbidden []string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := goDirective(t, filepath.Join(root, "go.mod"))
	dir := t.TempDir()
	const repo = "github.com/peerload/peerload"
	gomod := fmt.Sprintf(`module example.com/%s

go %s

require %s/%s v0.0.0-00010101000000-000000000000

replace (
	%s => %s
	%s/%s => %s
)
`, name, goVersion, repo, pluginDir, repo, root, repo, pluginDir, filepath.Join(root, pluginDir))
	writeFile(t, filepath.Join(dir, "go.mod"), gomod)
	writeFile(t, filepath.Join(dir, "main.go"), main)

	goCmd := func(args ...string) string {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), consumerBuildTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		// The user's build: no workspace, go.mod may be updated. The
		// module and build caches are the shared ones; CGO_ENABLED=0 as
		// in `make build`, so its compiled packages are reused.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: go %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		t.Logf("%s: go %s: %s", name, strings.Join(args, " "), time.Since(start).Round(100*time.Millisecond))
		return string(out)
	}

	goCmd("mod", "tidy")
	mods := strings.Fields(goCmd("list", "-m", "-f", "{{.Path}}", "all"))
	t.Logf("%s: %d modules in the build list", name, len(mods))
	for _, m := range mods {
		for _, f := range forbidden {
			if strings.HasPrefix(m, f) {
				t.Errorf("%s: the build list holds %s (forbidden: %s)", name, m, f)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	bin := filepath.Join(dir, name)
	goCmd("build", "-o", bin, ".")
	return bin
}

// goDirective is the go line of the go.mod at path, so the consumer asks
// for no other toolchain than this repository's.
func goDirective(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return v
		}
	}
	t.Fatalf("%s has no go line", path)
	return ""
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startProgram runs bin with args in dir and stops it with SIGTERM when
// the test ends; the log is in the failure message.
func startProgram(t *testing.T, dir string, env []string, bin string, args ...string) *lockedBuffer {
	t.Helper()
	log := &lockedBuffer{}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(log, "--- exit: %v\n", err)
		close(done)
	}()
	t.Cleanup(func() {
		if !signalWait(cmd, done, syscall.SIGTERM, 10*time.Second) {
			dumpAndKill(cmd.Process, done)
			t.Errorf("%s did not exit within 10s of SIGTERM", filepath.Base(bin))
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", filepath.Base(bin), log.String())
		}
	})
	return log
}

// A Caddy built as xcaddy builds it with the plugin lists its modules and
// runs a configuration whose proxy uses the peerload upstreams and
// policy: the cluster member starts (Caddy's metrics count it).
func TestModulesCaddyConsumer(t *testing.T) {
	t.Parallel()
	bin := buildConsumer(t, "caddy", "plugin/caddy", caddyConsumerMain,
		append([]string{"github.com/coredns/"}, heavyModules...))

	out, err := exec.Command(bin, "list-modules").CombinedOutput()
	if err != nil {
		t.Fatalf("caddy list-modules: %v\n%s", err, out)
	}
	for _, want := range []string{"http.reverse_proxy.upstreams.peerload", "http.reverse_proxy.selection_policies.peerload", "peerload"} {
		if !strings.Contains("\n"+string(out)+"\n", "\n"+want+"\n") {
			t.Errorf("caddy list-modules lacks %s:\n%s", want, out)
		}
	}

	ports := freePorts(t, 4)
	member := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Caddyfile"), fmt.Sprintf(`{
	admin %s
	metrics
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	respond /ok "ok"
	reverse_proxy {
		dynamic peerload {
			bind %s
			profile local
			port %d
		}
		lb_policy peerload {
			bind %s
			profile local
		}
	}
}
`, admin, ports[2], member, ports[3], member))
	log := startProgram(t, dir, caddyEnv(dir), bin, "run", "--config", "Caddyfile", "--adapter", "caddyfile")
	site := fmt.Sprintf("127.0.0.1:%d", ports[2])
	series := fmt.Sprintf(`caddy_reverse_proxy_peerload_members{member=%q}`, member)
	waitFor(t, 30*time.Second, func() (bool, string) {
		if code, body := httpGet(site, "/ok"); code != 200 || body != "ok" {
			return false, fmt.Sprintf("GET http://%s/ok: %d %q; log:\n%s", site, code, body, log)
		}
		code, body := httpGet(admin, "/metrics")
		return code == 200 && strings.Contains(body, series+" 1"), fmt.Sprintf("%s not 1 in the admin endpoint's /metrics (%d)", series, code)
	})
}

// A CoreDNS built the plugin.cfg way lists the plugin and serves a zone
// with it on 127.0.0.1: the virtual name's unknown machine is NXDOMAIN
// from peerload, another name goes on to whoami.
func TestModulesCoreDNSConsumer(t *testing.T) {
	t.Parallel()
	bin := buildConsumer(t, "coredns", "plugin/coredns", corednsConsumerMain,
		append([]string{"github.com/caddyserver/caddy"}, heavyModules...))

	out, err := exec.Command(bin, "-plugins").CombinedOutput()
	if err != nil {
		t.Fatalf("coredns -plugins: %v\n%s", err, out)
	}
	listed := false
	for line := range strings.Lines(string(out)) {
		// "peerload" (CoreDNS 1.12 and later) or "dns.peerload".
		name := strings.TrimSpace(line)
		listed = listed || name == "peerload" || name == "dns.peerload"
	}
	if !listed {
		t.Errorf("coredns -plugins lacks peerload:\n%s", out)
	}

	ports := freePorts(t, 2)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "Corefile"), fmt.Sprintf(`lab.test:%d {
	bind 127.0.0.1
	errors
	peerload cs.lab.test {
		bind 127.0.0.1:%d
		profile local
	}
	whoami
}
`, ports[0], ports[1]))
	log := startProgram(t, dir, nil, bin, "-conf", "Corefile")
	server := net.JoinHostPort("127.0.0.1", fmt.Sprint(ports[0]))
	ask := func(name string) (*dns.Msg, error) {
		c := &dns.Client{Timeout: time.Second}
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.TypeA)
		r, _, err := c.Exchange(m, server)
		return r, err
	}
	waitFor(t, 30*time.Second, func() (bool, string) {
		r, err := ask("nosuchmachine.cs.lab.test")
		if err != nil {
			return false, fmt.Sprintf("nosuchmachine.cs.lab.test: %v; log:\n%s", err, log)
		}
		return r.Rcode == dns.RcodeNameError, fmt.Sprintf("nosuchmachine.cs.lab.test: %s, want NXDOMAIN from peerload", dns.RcodeToString[r.Rcode])
	})
	r, err := ask("www.lab.test")
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Extra) == 0 {
		t.Fatalf("www.lab.test: %v %v, want whoami's answer", r, err)
	}
}
