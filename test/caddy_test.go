package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The Caddy tests drive bin/caddy (Caddy with the peerload modules) in
// front of real `peerload agent` processes and real HTTP backends, one per
// machine, on 127.0.1.180-199 (each test its own addresses).

// caddyProc is a running bin/caddy.
type caddyProc struct {
	Admin     string // admin endpoint host:port
	Caddyfile string
	cmd       *exec.Cmd
	done      chan struct{}
	log       *lockedBuffer
}

// caddyEnv keeps Caddy's state (autosaved config, certificates) in dir.
func caddyEnv(dir string) []string {
	return []string{"HOME=" + dir, "XDG_DATA_HOME=" + filepath.Join(dir, "data"), "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
}

// startCaddy runs bin/caddy with caddyfile (which must set `admin` to
// admin) and waits until its admin endpoint answers.
func startCaddy(t *testing.T, admin, caddyfile string) *caddyProc {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &caddyProc{Admin: admin, Caddyfile: caddyfile, log: &lockedBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(binPath(t, "caddy"), "run", "--config", path, "--adapter", "caddyfile")
	c.cmd.Dir = dir
	c.cmd.Env = append(os.Environ(), caddyEnv(dir)...)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	go func() {
		err := c.cmd.Wait()
		fmt.Fprintf(c.log, "--- exit: %v\n", err)
		close(c.done)
	}()
	t.Cleanup(func() {
		if !signalWait(c.cmd, c.done, syscall.SIGTERM, 10*time.Second) {
			dumpAndKill(c.cmd.Process, c.done)
			t.Errorf("caddy did not exit within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("Caddyfile:\n%s\ncaddy log:\n%s", c.Caddyfile, c.log.String())
		}
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		select {
		case <-c.done:
			t.Fatalf("caddy exited: %s", c.log.String())
		default:
		}
		code, body := httpGet(c.Admin, "/config/")
		return code == http.StatusOK, fmt.Sprintf("admin: %d %s", code, body)
	})
	return c
}

// metric is the value of one series on the admin endpoint's /metrics,
// e.g. `caddy_reverse_proxy_peerload_candidates{member="127.0.0.1:7951",pool=""}`.
func (c *caddyProc) metric(series string) (float64, bool) {
	code, body := httpGet(c.Admin, "/metrics")
	if code != http.StatusOK {
		return 0, false
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// waitCandidates waits until the member on bind counts n live candidates:
// it joined and heard every machine's report (or a machine left).
func (c *caddyProc) waitCandidates(t *testing.T, bind string, n int, timeout time.Duration) {
	t.Helper()
	series := fmt.Sprintf(`caddy_reverse_proxy_peerload_candidates{member=%q,pool=""}`, bind)
	waitFor(t, timeout, func() (bool, string) {
		v, ok := c.metric(series)
		return ok && v == float64(n), fmt.Sprintf("%s = %v (found %v), want %d", series, v, ok, n)
	})
}

// webBackend is one machine's web service: it answers every request with
// the machine's name and counts them.
type webBackend struct {
	Name string
	Addr string // ip:port
	hits atomic.Int64
	srv  *http.Server
	ln   net.Listener
}

// startBackends starts one backend per machine name on the given loopback
// addresses, all on one port (as a service runs on every machine).
func startBackends(t *testing.T, names, ips []string) []*webBackend {
	t.Helper()
	for range 20 {
		bs, err := listenBackends(names, ips)
		if err == nil {
			for _, b := range bs {
				go func() { _ = b.srv.Serve(b.ln) }()
				t.Cleanup(func() { _ = b.srv.Close() })
			}
			return bs
		}
	}
	t.Fatal("no port free on every backend address")
	return nil
}

func listenBackends(names, ips []string) ([]*webBackend, error) {
	var bs []*webBackend
	port := "0"
	for i, ip := range ips {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			for _, b := range bs {
				b.ln.Close()
			}
			return nil, err
		}
		_, port, _ = net.SplitHostPort(ln.Addr().String())
		b := &webBackend{Name: names[i], Addr: ln.Addr().String(), ln: ln}
		b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			b.hits.Add(1)
			io.WriteString(w, b.Name+"\n")
		}), ReadHeaderTimeout: 10 * time.Second}
		bs = append(bs, b)
	}
	return bs, nil
}

// Port is the backends' common port.
func (b *webBackend) Port() string {
	_, p, _ := net.SplitHostPort(b.Addr)
	return p
}

// Kill takes the service down as a crashed machine: no new connection
// is accepted and idle ones are closed. Requests being answered finish
// (a crash would fail them too, but the proxy cannot retry a response
// it has begun to pass on, so the tests leave that race out).
func (b *webBackend) Kill(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.srv.Shutdown(ctx); err != nil {
		t.Fatalf("backend %s: %v", b.Name, err)
	}
}

// webClient makes requests like a browser: keep-alive, and with jar the
// session cookie.
func webClient(jar bool) *http.Client {
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	if jar {
		c.Jar, _ = cookiejar.New(nil)
	}
	return c
}

// fetch GETs url and returns the name of the machine that answered; any
// status but 200 is an error.
func fetch(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %q", resp.StatusCode, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// tally fetches url n times and counts the machines that answered,
// failing the test on any error.
func tally(t *testing.T, c *http.Client, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := fetch(c, url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		got[name]++
	}
	return got
}

// webLab is a cluster of n machines for the Caddy tests: agents advertising
// 127.0.1.<first+i> with a settable load, and a backend on each. They run
// the LAN timings (a sample every 2 s, probes with a 500 ms timeout), as
// does Caddy's member: with the loopback timings' 100 ms probe timeout a
// machine starved of CPU (the tests run beside CPU hogs) may turn suspect
// for a moment and, rightly, lose its requests, which is not what these
// tests are about.
type webLab struct {
	agents   []*agentProc
	backends []*webBackend
}

func startWebLab(t *testing.T, prefix string, first, n int, load1 float64) *webLab {
	t.Helper()
	var names, ips []string
	for i := range n {
		names = append(names, fmt.Sprintf("%s%d", prefix, i+1))
		ips = append(ips, fmt.Sprintf("127.0.1.%d", first+i))
	}
	l := &webLab{backends: startBackends(t, names, ips)}
	for i := range n {
		p := newFakeProc(t, 4)
		p.SetLoad(t, load1, load1, load1)
		opts := agentOptions{Name: names[i], Advertise: ips[i], Proc: p, Profile: "lan"}
		if i > 0 {
			opts.Join = []string{l.agents[0].Gossip()}
		}
		l.agents = append(l.agents, startAgent(t, opts))
	}
	return l
}

// setLoad sets machine i's load1.
func (l *webLab) setLoad(t *testing.T, i int, load1 float64) {
	t.Helper()
	l.agents[i].Opts.Proc.SetLoad(t, load1, load1, load1)
}

// upstreams lists the backends as `reverse_proxy` upstreams.
func (l *webLab) upstreams() string {
	var s []string
	for _, b := range l.backends {
		s = append(s, b.Addr)
	}
	return strings.Join(s, " ")
}

// memberSnippet is the Caddyfile snippet of the peerload member settings.
func memberSnippet(bind string, l *webLab) string {
	return fmt.Sprintf(`(member) {
	bind %s
	join %s
	profile lan
}
`, bind, l.agents[0].Gossip())
}

// waitOnly waits until n requests in a row land on want.
func waitOnly(t *testing.T, c *http.Client, url, want string, n int, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, timeout, func() (bool, string) {
		got := tally(t, c, url, n)
		return got[want] == n, fmt.Sprintf("%d requests to %s landed on %v, want all on %s", n, url, got, want)
	})
	return time.Since(start)
}

// Requests spread over the best machines as the policy says: equals
// share; after a load change the new best takes the new sessions within
// seconds. Both modules: static upstreams with lb_policy peerload, and
// dynamic peerload (top 2) with Caddy's default random policy, spreading
// like DNS answers.
//
// Both modules run with herd off: this is the ranking's part, measured
// with hundreds of requests a second, each of which the herd would count
// as a new session; the herd's part is plugin/caddy's TestSelectionHerd
// and TestGetUpstreamsHerd.
func TestCaddyFollowsLoad(t *testing.T) {
	l := startWebLab(t, "web", 181, 3, 1.0)
	ports := freePorts(t, 4)
	bind := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	static := fmt.Sprintf("http://127.0.0.1:%d/", ports[2])
	dynamic := fmt.Sprintf("http://127.0.0.1:%d/", ports[3])
	c := startCaddy(t, admin, fmt.Sprintf(`{
	admin %s
}
%s
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		lb_policy peerload {
			import member
			herd off
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy {
		dynamic peerload {
			import member
			port %s
			top 2
			herd off
		}
	}
}
`, admin, memberSnippet(bind, l), ports[2], l.upstreams(), ports[3], l.backends[0].Port()))
	c.waitCandidates(t, bind, 3, 45*time.Second)
	client := webClient(false)

	// Three equal machines: each about a third (100 of 300, σ ≈ 8.2),
	// through either module.
	for _, url := range []string{static, dynamic} {
		got := tally(t, client, url, 300)
		for _, b := range l.backends {
			if got[b.Name] < 50 || got[b.Name] > 150 {
				t.Errorf("%s: %s answered %d of 300 requests with equal loads, want about 100: %v", url, b.Name, got[b.Name], got)
			}
		}
	}

	// web2 and web3 get busy, so web1 is the least loaded: every request
	// to the policy goes there (once it does, Caddy's member has seen both
	// new loads: with only one seen, web1 would share with the other);
	// the upstream source's top 2 are web1 and one of the others, so web1
	// takes half and the others a quarter each (of 400: 200, σ 10; 100,
	// σ 8.7).
	l.setLoad(t, 1, 3.0)
	l.setLoad(t, 2, 3.0)
	took := waitOnly(t, client, static, "web1", 20, 15*time.Second)
	t.Logf("the new best machine took every new session %s after the load change", took.Round(10*time.Millisecond))
	if got := tally(t, client, static, 100); got["web1"] != 100 {
		t.Fatalf("lb_policy peerload: %v, want every request on web1", got)
	}
	got := tally(t, client, dynamic, 400)
	if got["web1"] < 150 || got["web1"] > 250 || got["web2"] < 50 || got["web3"] < 50 {
		t.Fatalf("dynamic peerload top 2: %v, want web1 about 200, web2 and web3 about 100", got)
	}

	// Then web3: the new best takes the new sessions within seconds.
	l.setLoad(t, 0, 4.0)
	l.setLoad(t, 2, 0.1)
	took = waitOnly(t, client, static, "web3", 20, 15*time.Second)
	t.Logf("the next best machine took every new session %s after the load change", took.Round(10*time.Millisecond))
}

// failureCounter makes requests from a few clients until stopped, and
// counts what failed.
type failureCounter struct {
	mu       sync.Mutex
	failures []string
	total    int
	epoch    int   // bumped by settle
	done     []int // per client: the epoch its last finished request began in
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startTraffic(url string, clients int) *failureCounter {
	f := &failureCounter{stop: make(chan struct{}), done: make([]int, clients)}
	for i := range clients {
		c := webClient(false)
		f.wg.Go(func() {
			for {
				select {
				case <-f.stop:
					return
				default:
				}
				f.mu.Lock()
				began := f.epoch
				f.mu.Unlock()
				_, err := fetch(c, url)
				f.mu.Lock()
				f.total++
				f.done[i] = began
				if err != nil {
					f.failures = append(f.failures, err.Error())
				}
				f.mu.Unlock()
			}
		})
	}
	return f
}

// settle waits until every request begun before now has finished (each
// client finished one begun after): a request the proxy routed on what it
// knew before has then reached its backend.
func (f *failureCounter) settle(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	f.epoch++
	e := f.epoch
	f.mu.Unlock()
	waitFor(t, 20*time.Second, func() (bool, string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, d := range f.done {
			if d < e {
				return false, fmt.Sprintf("clients' last finished requests began in epochs %v, want all %d", f.done, e)
			}
		}
		return true, ""
	})
}

func (f *failureCounter) Stop() (total int, failures []string) {
	close(f.stop)
	f.wg.Wait()
	return f.total, f.failures
}

// A drained machine and a killed one get no new request once the member
// saw it (the drain within one sampling interval, the crash within the
// failure detection), and no client request fails meanwhile: the proxy's
// passive health check takes the dead backend out at its first failure
// and retries the request elsewhere within lb_try_duration.
func TestCaddyDrainAndKill(t *testing.T) {
	l := startWebLab(t, "node", 184, 3, 1.0)
	ports := freePorts(t, 3)
	bind := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	url := fmt.Sprintf("http://127.0.0.1:%d/", ports[2])
	c := startCaddy(t, admin, fmt.Sprintf(`{
	admin %s
}
%s
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		lb_policy peerload {
			import member
		}
		lb_try_duration 5s
		fail_duration 30s
	}
}
`, admin, memberSnippet(bind, l), ports[2], l.upstreams()))
	c.waitCandidates(t, bind, 3, 45*time.Second)
	traffic := startTraffic(url, 4)
	defer func() {
		if traffic != nil {
			traffic.Stop()
		}
	}()
	client := webClient(false)
	waitFor(t, 10*time.Second, func() (bool, string) {
		return l.backends[0].hits.Load() > 0 && l.backends[1].hits.Load() > 0 && l.backends[2].hits.Load() > 0,
			"every machine answers some of the traffic"
	})

	// Drain node1: once the member sees it, node1 gets nothing new.
	start := time.Now()
	if res := runPeerload(t, "drain", "--reason", "test", "--control", l.agents[0].Control()); res.Code != 0 {
		t.Fatalf("drain: %s", res)
	}
	c.waitCandidates(t, bind, 2, 10*time.Second)
	t.Logf("drain seen by Caddy's member after %s", time.Since(start).Round(10*time.Millisecond))
	traffic.settle(t)
	drained := l.backends[0].hits.Load()
	if got := tally(t, client, url, 100); got["node1"] != 0 || got["node2"]+got["node3"] != 100 {
		t.Fatalf("after the drain: %v, want node2 and node3 only", got)
	}

	// Kill node2 (agent and service, no goodbye): requests that reach it
	// before the member notices are retried elsewhere.
	start = time.Now()
	l.agents[1].Kill()
	l.backends[1].Kill(t)
	c.waitCandidates(t, bind, 1, 15*time.Second)
	t.Logf("crash seen by Caddy's member after %s", time.Since(start).Round(10*time.Millisecond))
	if got := tally(t, client, url, 100); got["node3"] != 100 {
		t.Fatalf("after the crash: %v, want node3 only", got)
	}
	if n := l.backends[0].hits.Load(); n != drained {
		t.Fatalf("the drained machine got %d new requests", n-drained)
	}
	total, failures := traffic.Stop()
	traffic = nil
	if len(failures) > 0 {
		t.Fatalf("%d of %d client requests failed, want none: %v", len(failures), total, failures[:min(len(failures), 5)])
	}
	t.Logf("%d client requests during the drain and the crash, none failed", total)
}

// A sticky session (cookie, peerload as the fallback) keeps its machine
// while loads change, and new sessions go to the new best machine; when
// its machine dies the session moves once, to the best machine, and stays.
func TestCaddyStickySessions(t *testing.T) {
	l := startWebLab(t, "lab", 187, 3, 1.0)
	l.setLoad(t, 0, 0.1)
	l.setLoad(t, 2, 2.0)
	ports := freePorts(t, 3)
	bind := fmt.Sprintf("127.0.0.1:%d", ports[0])
	admin := fmt.Sprintf("127.0.0.1:%d", ports[1])
	url := fmt.Sprintf("http://127.0.0.1:%d/", ports[2])
	c := startCaddy(t, admin, fmt.Sprintf(`{
	admin %s
}
%s
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		lb_policy cookie lab_session {
			fallback peerload {
				import member
			}
		}
		lb_try_duration 5s
		fail_duration 30s
	}
}
`, admin, memberSnippet(bind, l), ports[2], l.upstreams()))
	c.waitCandidates(t, bind, 3, 45*time.Second)
	fresh := webClient(false)
	waitOnly(t, fresh, url, "lab1", 20, 15*time.Second)

	session := webClient(true)
	if got := tally(t, session, url, 5); got["lab1"] != 5 {
		t.Fatalf("a new session: %v, want lab1 (the best)", got)
	}

	// lab2 becomes the best: new sessions go there, the session stays.
	l.setLoad(t, 0, 3.0)
	l.setLoad(t, 1, 0.1)
	waitOnly(t, fresh, url, "lab2", 20, 15*time.Second)
	if got := tally(t, session, url, 20); got["lab1"] != 20 {
		t.Fatalf("the session after the load change: %v, want it kept on lab1", got)
	}

	// lab1 dies: the session moves once, to lab2, and stays there.
	l.agents[0].Kill()
	l.backends[0].Kill(t)
	var moves []string
	for range 30 {
		name, err := fetch(session, url)
		if err != nil {
			t.Fatalf("the session's request after its machine died: %v", err)
		}
		if len(moves) == 0 || moves[len(moves)-1] != name {
			moves = append(moves, name)
		}
	}
	if len(moves) != 1 || moves[0] != "lab2" {
		t.Fatalf("the session's machines after lab1 died: %v, want [lab2]", moves)
	}
}

// Every bad property gives one clear line naming it and the Caddyfile
// line (Caddy's one error log line), at `caddy adapt` (and so at validate, run and reload); the
// keyring and conflicting member settings are checked at `caddy validate`
// (provisioning), which starts no member.
func TestCaddyfileErrors(t *testing.T) {
	caddy := binPath(t, "caddy")
	dir := t.TempDir()
	site := func(block string) string {
		return "{\n\tadmin off\n}\nhttp://127.0.0.1:1 {\n\tbind 127.0.0.1\n\treverse_proxy 127.0.1.199:80 {\n" + block + "\n\t}\n}\n"
	}
	policy := func(props ...string) string {
		return site("\t\tlb_policy peerload {\n\t\t\t" + strings.Join(props, "\n\t\t\t") + "\n\t\t}")
	}
	dyn := func(props ...string) string {
		return site("\t\tdynamic peerload {\n\t\t\t" + strings.Join(props, "\n\t\t\t") + "\n\t\t}")
	}
	tests := []struct {
		name, caddyfile, cmd, want string
	}{
		{"top", policy("top 0"), "adapt", "top: 0 out of range 1..64, at {path}:8"},
		{"top-nan", policy("top many"), "adapt", "top: 'many' is not a number, at {path}:8"},
		{"pool", policy("pool a.b"), "adapt", `pool: pool "a.b" is not a DNS label`},
		{"by", policy("by load"), "adapt", `by: unknown ranking "load" (want cpu, mem or combined)`},
		{"fallback", policy("fallback random"), "adapt", `fallback: unknown fallback "random" (want keep, all or none)`},
		{"name", policy("name lab_1"), "adapt", `name: name "lab_1" is not a host name`},
		{"bind", policy("bind localhost:7948"), "adapt", "bind: 'localhost:7948' is not IP:port"},
		{"join", policy("join 10.0.0.1"), "adapt", "join: '10.0.0.1' is not host:port"},
		{"label", policy("label a b"), "adapt", "label: want one value, got 2"},
		{"allow", policy("allow 10.0.0.0/33"), "adapt", "allow: '10.0.0.0/33' is not a CIDR prefix"},
		{"allow-bind", policy("bind 127.0.0.1:7999", "allow 10.0.0.0/8"), "adapt", "allow: this member's own address 127.0.0.1 is outside the allow list"},
		{"profile", policy("profile fast"), "adapt", `profile: unknown timing profile "fast" (want lan or local)`},
		{"stale", policy("stale soon"), "adapt", "stale: invalid duration 'soon'"},
		{"unknown", policy("wieght 2"), "adapt", "unrecognized subdirective 'wieght', at {path}:8"},
		{"twice", policy("top 1", "top 2"), "adapt", "top given twice"},
		{"port-missing", dyn("top 2"), "adapt", "port: the service port on the machines is required"},
		{"port", dyn("port 70000"), "adapt", "port: 70000 out of range 1..65535"},
		{"keyring", policy("keyring " + filepath.Join(dir, "missing")), "validate", "keyring: stat " + filepath.Join(dir, "missing") + ": no such file or directory"},
		{"conflict", site("\t\tdynamic peerload {\n\t\t\tport 80\n\t\t\tbind 127.0.0.1:7999\n\t\t}\n\t\tlb_policy peerload {\n\t\t\tbind 127.0.0.1:7999\n\t\t\tlabel other\n\t\t}"),
			"validate", "bind 127.0.0.1:7999: label differs from another peerload module of this configuration"},
	}
	// Caddy reports a failed command as one JSON log line at level error.
	errLine := regexp.MustCompile(`(?m)^.*"level":"error".*$`)
	for _, tc := range tests {
		path := filepath.Join(dir, tc.name, "Caddyfile")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(tc.caddyfile), 0o644); err != nil {
			t.Fatal(err)
		}
		res := runCmd(t, caddyEnv(dir), caddy, tc.cmd, "--config", path, "--adapter", "caddyfile")
		var lines []string
		for _, l := range errLine.FindAllString(res.Stdout+res.Stderr, -1) {
			var rec struct{ Msg string }
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("%s: caddy's error line is not JSON: %q", tc.name, l)
			}
			lines = append(lines, rec.Msg)
		}
		want := strings.ReplaceAll(tc.want, "{path}", path)
		if res.Code == 0 || len(lines) != 1 || !strings.Contains(lines[0], want) {
			t.Errorf("%s: caddy %s: exit %d, error lines %q; want one line containing %q\nCaddyfile:\n%s", tc.name, tc.cmd, res.Code, lines, want, tc.caddyfile)
		}
	}

	// A good configuration validates without binding its member's port,
	// here taken (as by the Caddy that runs it).
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	path := filepath.Join(dir, "good", "Caddyfile")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	good := policy("bind "+taken.Addr().String(), "join 127.0.0.1:1", "profile local")
	if err := os.WriteFile(path, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, caddyEnv(dir), caddy, "validate", "--config", path, "--adapter", "caddyfile"); res.Code != 0 {
		t.Fatalf("caddy validate of a good Caddyfile whose member port is taken: %s", res)
	}
}

// Caddyfile.example (the `make run` demo's web side) works as the README
// says: curl lands on the best machine, through both fronts.
func TestCaddyfileExample(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	// Four lab machines on 127.0.1.191..194 (the demo's 127.0.1.1..4).
	var agents []*agentProc
	procs := make([]*fakeProc, 4)
	for i := range 4 {
		procs[i] = newFakeProc(t, 4)
		procs[i].SetLoad(t, 2.0, 2.0, 2.0)
		opts := agentOptions{Name: fmt.Sprintf("lab0%d", i+1), Advertise: fmt.Sprintf("127.0.1.%d", 191+i), Proc: procs[i]}
		if i > 0 {
			opts.Join = []string{agents[0].Gossip()}
		}
		agents = append(agents, startAgent(t, opts))
	}
	procs[2].SetLoad(t, 0.2, 0.2, 0.2) // lab03 is the best

	ports := freePorts(t, 5)
	caddyfile := string(example)
	replace := func(old, new string) {
		t.Helper()
		if !strings.Contains(caddyfile, old) {
			t.Fatalf("Caddyfile.example no longer contains %q", old)
		}
		caddyfile = strings.ReplaceAll(caddyfile, old, new)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", ports[0])
	bind := fmt.Sprintf("127.0.0.1:%d", ports[1])
	replace("admin 127.0.0.1:2019", "admin "+admin)
	replace("bind 127.0.0.1:7951", "bind "+bind)
	replace("join 127.0.0.1:7946", "join "+agents[0].Gossip())
	replace("127.0.0.1:8080", fmt.Sprintf("127.0.0.1:%d", ports[2]))
	replace("127.0.0.1:8081", fmt.Sprintf("127.0.0.1:%d", ports[3]))
	replace(":8088", fmt.Sprintf(":%d", ports[4]))
	replace("port 8088", fmt.Sprintf("port %d", ports[4]))
	caddyfile = regexp.MustCompile(`127\.0\.1\.([1-4])\b`).ReplaceAllString(caddyfile, "127.0.1.19$1")
	c := startCaddy(t, admin, caddyfile)
	c.waitCandidates(t, bind, 4, 45*time.Second)
	client := webClient(false)
	for _, port := range ports[2:4] {
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)
		waitOnly(t, client, url, "lab03", 10, 15*time.Second)
	}
	if got := tally(t, webClient(true), fmt.Sprintf("http://127.0.0.1:%d/", ports[2]), 5); got["lab03"] != 5 {
		t.Fatalf("a session on the sticky front: %v, want lab03", got)
	}
}

// bin/caddy is Caddy with the standard modules and peerload's, and says
// which peerload build it is.
func TestCaddyModules(t *testing.T) {
	caddy := binPath(t, "caddy")
	res := runCmd(t, nil, caddy, "list-modules")
	if res.Code != 0 {
		t.Fatalf("caddy list-modules: %s", res)
	}
	mods := strings.Fields(res.Stdout)
	for _, want := range []string{
		"http.reverse_proxy.upstreams.peerload",
		"http.reverse_proxy.selection_policies.peerload",
		"peerload",
		"http.handlers.reverse_proxy",
		"http.reverse_proxy.selection_policies.cookie",
		"tls", // a standard module outside the reverse proxy
	} {
		if !slices.Contains(mods, want) {
			t.Errorf("caddy list-modules does not list %s", want)
		}
	}
	if res := runCmd(t, nil, caddy, "version"); res.Code != 0 || !strings.HasPrefix(res.Stdout, "peerload-") {
		t.Errorf("caddy version: %s, want it to start with the peerload version", res)
	}
}
