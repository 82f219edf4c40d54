package test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nsupdateProc is a running `peerload nsupdate` child process.
type nsupdateProc struct {
	t       testing.TB
	Name    string
	APIPort int
	args    []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *lockedBuffer
}

// startNsupdate starts `peerload nsupdate` as member name joining join,
// updating the named server's name with the given extra flags (at least
// --tsig-key or --insecure-no-tsig).
func startNsupdate(t testing.TB, name string, n *namedServer, join string, extra ...string) *nsupdateProc {
	t.Helper()
	p := &nsupdateProc{t: t, Name: name, APIPort: freePort(t), log: &lockedBuffer{}}
	p.args = append([]string{"nsupdate",
		"--node-name", name,
		"--bind", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--api", fmt.Sprintf("127.0.0.1:%d", p.APIPort),
		"--join", join,
		"--server", n.Addr(),
		"--zone", n.Zone,
		"--name", n.Name,
		"--ttl", "30",
		"--timeout", "2s",
		"--profile", "local",
	}, extra...)
	cmd := exec.Command(peerloadBin(t), p.args...)
	fmt.Fprintf(p.log, "--- start %s\n", strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nsupdate: %v", err)
	}
	p.cmd, p.done = cmd, make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(p.log, "--- exit: %v\n", err)
		close(p.done)
	}()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("log of nsupdate %s:\n%s", name, p.log.String())
		}
	})
	return p
}

func (p *nsupdateProc) signal(sig syscall.Signal) bool {
	if !signalWait(p.cmd, p.done, sig, 10*time.Second) {
		dumpAndKill(p.cmd.Process, p.done)
		return false
	}
	return true
}

// Stop sends SIGTERM (leave gracefully) and fails unless it exits in time.
func (p *nsupdateProc) Stop() {
	p.t.Helper()
	if !p.signal(syscall.SIGTERM) {
		p.t.Fatalf("nsupdate %s did not exit on SIGTERM", p.Name)
	}
}

// Running reports whether the process is still running.
func (p *nsupdateProc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Log is everything the process wrote so far.
func (p *nsupdateProc) Log() string { return p.log.String() }

// Metric sums the samples of a Prometheus metric on the process's
// /metrics whose label text contains labels (e.g. `reason="BADSIG"`);
// -1 when the API does not answer.
func (p *nsupdateProc) Metric(name, labels string) float64 {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.APIPort))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, resp.Body)
		return -1
	}
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if labels != "" && !strings.Contains(line, labels) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

const (
	mSent     = "peerload_rfc2136_updates_sent_total"
	mOK       = "peerload_rfc2136_updates_succeeded_total"
	mFailed   = "peerload_rfc2136_updates_failed_total"
	mDrift    = "peerload_rfc2136_drift_repairs_total"
	mResyncs  = "peerload_rfc2136_resyncs_total"
	mActive   = "peerload_rfc2136_active"
	testZone  = "example.edu"
	testLabel = "cslab.example.edu"
)

// waitRecords waits until named holds exactly want for the name.
func waitRecords(t testing.TB, n *namedServer, timeout time.Duration, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, timeout, func() (bool, string) {
		got := n.Records()
		return slices.Equal(got, want), fmt.Sprintf("named holds %v, want %v", got, want)
	})
}

// setLoads sets the 1-minute load of each agent of the cluster (4 CPUs).
func setLoads(t testing.TB, agents []*agentProc, loads ...float64) {
	t.Helper()
	for i, l := range loads {
		agents[i].Opts.Proc.SetLoad(t, l, l, l)
	}
}

func TestRFC2136BindFollowsLoad(t *testing.T) {
	named := startNamed(t, testZone, testLabel)
	agents := startCluster(t, "rfc", 3) // 127.0.1.1..3
	setLoads(t, agents, 0.4, 3.0, 0.8)
	upd := startNsupdate(t, "upd1", named, agents[0].Gossip(),
		"--tsig-key", named.KeyFile, "--top", "2", "--resync", "2s", "--min-interval", "200ms")

	// After the updater runs, named returns exactly the top 2.
	waitRecords(t, named, 20*time.Second, "127.0.1.1", "127.0.1.3")
	out := runDig(t, "127.0.0.1", named.Port, "+noall", "+answer", testLabel, "A")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) < 5 || f[1] != "30" {
			t.Fatalf("record TTL is not 30: %q", l)
		}
	}

	// A load change moves the records.
	setLoads(t, agents, 0.4, 0.0, 3.6)
	waitRecords(t, named, 15*time.Second, "127.0.1.1", "127.0.1.2")

	// named restarts from its journal: nothing is lost, nothing rewritten.
	waitFor(t, 10*time.Second, func() (bool, string) {
		v := upd.Metric(mOK, "")
		return v >= 2, fmt.Sprintf("succeeded %v", v)
	})
	sentBefore := upd.Metric(mSent, "")
	named.Stop()
	named.Start()
	if got := named.Records(); !slices.Equal(got, []string{"127.0.1.1", "127.0.1.2"}) {
		t.Fatalf("after restart from the journal named holds %v", got)
	}
	resyncs := upd.Metric(mResyncs, "")
	waitFor(t, 15*time.Second, func() (bool, string) {
		v := upd.Metric(mResyncs, "")
		return v >= resyncs+2, fmt.Sprintf("resyncs %v (was %v)", v, resyncs)
	})
	if v := upd.Metric(mSent, ""); v != sentBefore {
		t.Fatalf("updates sent went from %v to %v although named lost nothing", sentBefore, v)
	}

	// A change while named is down: the updater fails, backs off, and
	// catches up when named is back, without a restart.
	named.Stop()
	setLoads(t, agents, 3.8, 0.0, 0.4)
	waitFor(t, 20*time.Second, func() (bool, string) {
		v := upd.Metric(mFailed, "")
		return v >= 1, fmt.Sprintf("failed %v", v)
	})
	named.Start()
	waitRecords(t, named, 40*time.Second, "127.0.1.2", "127.0.1.3")

	// named restored from an old zone file: the resync sees the drift and
	// repairs it.
	named.Stop()
	named.WriteZone(1, "127.0.1.1")
	named.Start()
	// The updater's 2 s resync may already have repaired it by now: either
	// the old file's record or the repaired set, never anything else.
	if got := named.Records(); !slices.Equal(got, []string{"127.0.1.1"}) && !slices.Equal(got, []string{"127.0.1.2", "127.0.1.3"}) {
		t.Fatalf("after a restart from the old zone file named holds %v", got)
	}
	waitRecords(t, named, 40*time.Second, "127.0.1.2", "127.0.1.3")
	if v := upd.Metric(mDrift, ""); v < 1 {
		t.Fatalf("drift repairs = %v, want at least 1", v)
	}
	if !upd.Running() {
		t.Fatal("updater exited")
	}
	upd.Stop()
	if testing.Verbose() {
		t.Logf("updater log:\n%s", upd.Log())
	}
}

func TestRFC2136WrongKeyRejected(t *testing.T) {
	named := startNamed(t, testZone, testLabel, "127.0.1.9")
	agents := startCluster(t, "rfk", 2)
	setLoads(t, agents, 0.2, 3.0)
	keygen := requireProgram(t, "tsig-keygen")

	for _, tc := range []struct{ keyName, reason string }{
		{named.KeyName, "BADSIG"},  // right name, other secret
		{"someone-else", "BADKEY"}, // a key named does not know
	} {
		res := runCmd(t, nil, keygen, "-a", "hmac-sha256", tc.keyName)
		if res.Code != 0 {
			t.Fatalf("tsig-keygen: %s", res)
		}
		wrong := filepath.Join(t.TempDir(), "wrong.key")
		if err := os.WriteFile(wrong, []byte(res.Stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		upd := startNsupdate(t, "upd-"+tc.reason, named, agents[0].Gossip(), "--tsig-key", wrong)
		waitFor(t, 20*time.Second, func() (bool, string) {
			v := upd.Metric(mFailed, `reason="`+tc.reason+`"`)
			return v >= 1, fmt.Sprintf("failed{reason=%s} = %v", tc.reason, v)
		})
		if !strings.Contains(upd.Log(), tc.reason) {
			t.Fatalf("%s not reported in the log:\n%s", tc.reason, upd.Log())
		}
		if got := named.Records(); !slices.Equal(got, []string{"127.0.1.9"}) {
			t.Fatalf("records changed with a wrong key: %v", got)
		}
		if !upd.Running() {
			t.Fatalf("updater exited on %s instead of retrying", tc.reason)
		}
		upd.Stop()
	}
}

func TestRFC2136TwoUpdatersOneWriter(t *testing.T) {
	named := startNamed(t, testZone, testLabel)
	agents := startCluster(t, "rfh", 3)
	setLoads(t, agents, 0.2, 3.0, 3.2)
	// upd-a has the lower name: it writes, upd-b waits.
	a := startNsupdate(t, "upd-a", named, agents[0].Gossip(), "--tsig-key", named.KeyFile, "--min-interval", "100ms", "--top", "1")
	b := startNsupdate(t, "upd-b", named, agents[1].Gossip(), "--tsig-key", named.KeyFile, "--min-interval", "100ms", "--top", "1")
	waitRecords(t, named, 20*time.Second, "127.0.1.1")
	waitFor(t, 15*time.Second, func() (bool, string) {
		va, vb := a.Metric(mActive, ""), b.Metric(mActive, "")
		return va == 1 && vb == 0, fmt.Sprintf("active: upd-a %v, upd-b %v", va, vb)
	})
	for _, loads := range [][]float64{{3.0, 0.2, 3.2}, {3.0, 3.2, 0.2}} {
		setLoads(t, agents, loads...)
		want := fmt.Sprintf("127.0.1.%d", slices.Index(loads, 0.2)+1)
		waitRecords(t, named, 15*time.Second, want)
	}
	if v := b.Metric(mSent, ""); v != 0 {
		t.Fatalf("passive updater sent %v updates", v)
	}
	if v := a.Metric(mSent, ""); v < 3 {
		t.Fatalf("active updater sent %v updates, want 3", v)
	}

	// The writer leaves; the other takes over.
	a.Stop()
	waitFor(t, 15*time.Second, func() (bool, string) {
		v := b.Metric(mActive, "")
		return v == 1, fmt.Sprintf("upd-b active %v", v)
	})
	setLoads(t, agents, 0.2, 3.0, 3.2)
	waitRecords(t, named, 15*time.Second, "127.0.1.1")
	if v := b.Metric(mSent, ""); v < 1 {
		t.Fatalf("upd-b sent %v updates after taking over", v)
	}
}

// BenchmarkRFC2136 measures RFC 2136 mode against real BIND: how long from
// a load change on an agent until dig at named shows the new set (p50, p99
// over repeated changes), and how many UPDATE messages a steady but noisy
// load produces while the top-N does not change (must be none). It prints
// a Markdown block for BENCHMARKS.md (scripts/bench-rfc2136.sh).
func BenchmarkRFC2136(b *testing.B) {
	for range b.N {
		benchRFC2136(b)
	}
}

func benchRFC2136(t testing.TB) {
	changes := envInt("PEERLOAD_BENCH_CHANGES", 20)
	window := time.Duration(envInt("PEERLOAD_BENCH_WINDOW_S", 60)) * time.Second

	named := startNamed(t, testZone, testLabel)
	agents := startCluster(t, "bench", 4)
	setA := []float64{0.2, 0.3, 3.0, 3.2} // top 2: 127.0.1.1, .2
	setB := []float64{3.0, 3.2, 0.2, 0.3} // top 2: 127.0.1.3, .4
	wantA := []string{"127.0.1.1", "127.0.1.2"}
	wantB := []string{"127.0.1.3", "127.0.1.4"}
	setLoads(t, agents, setA...)
	upd := startNsupdate(t, "bench-upd", named, agents[0].Gossip(), "--tsig-key", named.KeyFile, "--top", "2")
	waitRecords(t, named, 30*time.Second, wantA...)

	// Latency: alternate the two load patterns; each change waits until
	// dig shows the new set, then 1 s passes (the default --min-interval)
	// before the next change.
	var lat, firstLat []time.Duration
	okBefore := upd.Metric(mOK, "")
	for i := range changes {
		loads, want := setB, wantB
		if i%2 == 1 {
			loads, want = setA, wantA
		}
		okAtChange := upd.Metric(mOK, "")
		start := time.Now()
		setLoads(t, agents, loads...)
		first := time.Duration(0)
		for {
			if first == 0 && upd.Metric(mOK, "") > okAtChange {
				first = time.Since(start)
			}
			if got := named.Records(); slices.Equal(got, want) {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("change %d: named never showed %v", i, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		lat = append(lat, time.Since(start))
		if first == 0 {
			first = lat[len(lat)-1]
		}
		firstLat = append(firstLat, first)
		time.Sleep(time.Second)
	}
	updates := upd.Metric(mOK, "") - okBefore
	pct := func(d []time.Duration, p float64) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[min(len(d)-1, int(p*float64(len(d))))]
	}

	// Churn: noisy load that never changes who is in the top 2.
	last := wantB
	if changes%2 == 0 {
		last = wantA
	}
	base := setA
	if slices.Equal(last, wantB) {
		base = setB
	}
	sent0 := upd.Metric(mSent, "")
	deadline := time.Now().Add(window)
	step := 0
	for time.Now().Before(deadline) {
		noisy := make([]float64, len(base))
		for i, l := range base {
			// ±0.15 load on 4 CPUs: score moves by < 0.04, far from the gap
			// between the good and the busy machines.
			noisy[i] = l + 0.15*float64((step+i)%3-1)
		}
		setLoads(t, agents, noisy...)
		step++
		time.Sleep(500 * time.Millisecond)
	}
	sent := upd.Metric(mSent, "") - sent0
	if got := named.Records(); !slices.Equal(got, last) {
		t.Fatalf("noisy window changed the set to %v", got)
	}
	perHour := sent * float64(time.Hour) / float64(window)

	version := strings.TrimSpace(runCmd(t, nil, named.bin, "-v").Stdout)
	fmt.Printf(`
<!-- BEGIN bench-rfc2136 -->
### RFC 2136 mode against BIND (scripts/bench-rfc2136.sh)

%s, 4 agents on loopback (250 ms sampling), one `+"`peerload nsupdate`"+` (top 2,
defaults: margin 0.1, min-interval 1s, TSIG hmac-sha256), records read with dig.

| measurement | result |
|---|---|
| load change → dig at named shows the final new set, p50 / p99 (%d changes) | %d ms / %d ms |
| load change → first UPDATE accepted by named, p50 / p99 | %d ms / %d ms |
| UPDATE messages per change (agents report one by one: intermediate sets) | %.1f |
| UPDATE messages per hour, noisy load, top-2 unchanged (%s window) | %.0f |

The final set usually needs a second UPDATE: the four agents sample at
different moments, so the updater first sees a half-changed cluster, and
--min-interval (1 s) holds the correction back so bursts coalesce (each
UPDATE bumps the SOA serial and makes secondaries transfer).
<!-- END bench-rfc2136 -->
`, version, len(lat), pct(lat, 0.5).Milliseconds(), pct(lat, 0.99).Milliseconds(),
		pct(firstLat, 0.5).Milliseconds(), pct(firstLat, 0.99).Milliseconds(),
		updates/float64(len(lat)), window, perHour)
	if sent != 0 {
		t.Fatalf("%v UPDATE messages while the top-2 did not change", sent)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestRFC2136CoreDNSUpdateBlock runs the same updater inside bin/coredns
// (the peerload block's `update` sub-block) against real named.
func TestRFC2136CoreDNSUpdateBlock(t *testing.T) {
	named := startNamed(t, testZone, testLabel)
	agents := startCluster(t, "rfcd", 2)
	setLoads(t, agents, 0.2, 3.0)
	dir := t.TempDir()
	corefile := fmt.Sprintf(`example.edu:%d {
    peerload cslab.example.edu {
        bind 127.0.0.1:%d
        join %s
        profile local
        top 1
        update %s {
            zone example.edu
            tsig-key %s
            resync 2s
        }
    }
}
`, freePort(t), freePort(t), agents[0].Gossip(), named.Addr(), named.KeyFile)
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath(t, "coredns"), "-conf", path)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start coredns: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("Corefile:\n%s\ncoredns log:\n%s", corefile, out.String())
		}
	})
	waitRecords(t, named, 20*time.Second, "127.0.1.1")
	setLoads(t, agents, 3.0, 0.2)
	waitRecords(t, named, 20*time.Second, "127.0.1.2")
}
