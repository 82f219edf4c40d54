package test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// statusCluster is three real agents on 127.0.0.161..163 (the status
// tests' addresses), in pools cslab and gpu with different loads; the
// first also serves the status page on 127.0.0.164 (--status-listen).
type statusCluster struct {
	agents []*agentProc
	procs  []*fakeProc
	apis   []string
	page   string // host:port of the status listener
}

func startStatusCluster(t *testing.T) *statusCluster {
	t.Helper()
	c := &statusCluster{}
	statusPort := freePort(t)
	c.page = fmt.Sprintf("127.0.0.164:%d", statusPort)
	var join string
	loads := []float64{0.4, 2.5, 1.2}
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 161+i)
		gossip, api := freePort(t), freePort(t)
		proc := newFakeProc(t, 4)
		proc.SetLoad(t, loads[i], loads[i]*0.8, loads[i]*0.5)
		pools := []string{"cslab"}
		if i == 2 {
			pools = append(pools, "gpu")
		}
		opts := agentOptions{
			Name: fmt.Sprintf("stlab%d", i+1), Advertise: ip, GossipPort: gossip, APIPort: api, Proc: proc, Pools: pools,
			Extra: []string{"--bind", fmt.Sprintf("%s:%d", ip, gossip), "--api", fmt.Sprintf("%s:%d", ip, api)},
		}
		if i == 0 {
			join = fmt.Sprintf("%s:%d", ip, gossip)
			opts.Extra = append(opts.Extra, "--status-listen", fmt.Sprintf("127.0.0.164:%d", statusPort), "--status-allow", "10.0.0.0/8")
		} else {
			opts.Join = []string{join}
		}
		c.agents = append(c.agents, startAgent(t, opts))
		c.procs = append(c.procs, proc)
		c.apis = append(c.apis, fmt.Sprintf("%s:%d", ip, api))
	}
	// Start-up, not behaviour under test: a join broadcast lost on a busy
	// machine is repaired by the next push/pull (30 s in bin/peerload).
	for i, api := range c.apis {
		waitFor(t, 45*time.Second, func() (bool, string) {
			res := runPeerload(t, "top", "-n", "3", "--api", api)
			return res.Code == 0 && len(res.Lines()) == 3, fmt.Sprintf("top at %s: %s", c.agents[i].Opts.Name, res)
		})
	}
	return c
}

// TestStatusPageInBrowser opens the status page of a running three-agent
// cluster in headless Chromium, checks every machine's row and chart,
// drains one machine with `peerload drain` and waits for the page to show
// the drain and its event without reloading (a marker set on the page's
// window survives only if the page was never reloaded). It saves a
// screenshot to $STATUS_SCREENSHOT (default: the test's temp dir).
func TestStatusPageInBrowser(t *testing.T) {
	chromium := requireProgram(t, "chromium")
	c := startStatusCluster(t)

	// The same page is on / of every agent's API.
	for _, api := range c.apis {
		if code, body := httpGet(api, "/"); code != 200 || !strings.Contains(body, `data-name="stlab3"`) {
			t.Fatalf("GET http://%s/ = %d:\n%s", api, code, body)
		}
	}
	// /metrics on the status listener, with the metrics the alert rules use.
	waitFor(t, 10*time.Second, func() (bool, string) {
		_, body := httpGet(c.page, "/metrics")
		return strings.Contains(body, "peerload_gossip_encrypted 0") &&
			strings.Contains(body, `peerload_pool_candidates{pool="cslab"} 3`) &&
			strings.Contains(body, `peerload_pool_candidates{pool="gpu"} 1`), body
	})

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 860))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	// Collect what the console and the browser log say (a CSP violation
	// or a script error shows there).
	var (
		consoleMu sync.Mutex
		console   []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			consoleMu.Lock()
			console = append(console, m.String())
			consoleMu.Unlock()
		}
	}()

	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+c.page+"/")); err != nil {
		t.Fatalf("open %s: %v", c.page, err)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// waitPage polls the page (in the browser) until js returns "", failing
	// with js's last answer at the deadline.
	waitPage := func(timeout time.Duration, js string) {
		t.Helper()
		waitFor(t, timeout, func() (bool, string) {
			got := eval(js)
			return got == "", got
		})
	}
	eval(`window.peerloadMarker = "not reloaded"; ""`)

	// Every machine has its row and its load chart; the cluster chart is there.
	waitPage(10*time.Second, `(() => {
		const missing = [];
		for (const name of ["stlab1", "stlab2", "stlab3"]) {
			const row = document.querySelector('tr[data-name="' + name + '"]');
			if (!row) { missing.push(name + ": no row"); continue; }
			const spark = row.querySelector("svg.spark path");
			if (!spark || !spark.getAttribute("d").startsWith("M")) missing.push(name + ": no chart");
			if (row.className !== "ok") missing.push(name + ": " + row.className);
		}
		if (!document.querySelector("#cluster-chart path.median")) missing.push("no cluster chart");
		return missing.join("; ");
	})()`)
	if got := eval(`document.getElementById("conn").textContent`); got != "live" {
		t.Fatalf("connection indicator %q, want live (status.js did not run?)", got)
	}

	// Ten seconds of moving load, so the charts have something to draw.
	tick := time.NewTicker(250 * time.Millisecond)
	for i := range 40 {
		<-tick.C
		for j, p := range c.procs {
			l := 0.3 + float64(j) + 0.8*math.Sin(float64(i+10*j)/6)
			p.SetLoad(t, l, l*0.8, l*0.5)
		}
	}
	tick.Stop()

	// Drain stlab2 through the CLI, as an operator would.
	if res := runPeerload(t, "drain", "--reason", "browser test", "--control", c.agents[1].Control()); res.Code != 0 {
		t.Fatalf("peerload drain: %s", res)
	}
	// The row turns amber with the reason, and the event appears: within
	// one sampling interval (250 ms) plus the page's 2 s refresh.
	waitPage(20*time.Second, `(() => {
		const row = document.querySelector('tr[data-name="stlab2"]');
		if (!row) return "no row for stlab2";
		if (row.className !== "warn") return "stlab2 row is " + row.className;
		if (!row.querySelector("td.why").textContent.includes("browser test")) return "no drain reason: " + row.textContent;
		const ev = [...document.querySelectorAll('#events li[data-kind="drained"]')].find(li => li.textContent.includes("stlab2"));
		if (!ev) return "no drained event: " + document.getElementById("events").textContent;
		return "";
	})()`)
	if got := eval(`window.peerloadMarker || "reloaded"`); got != "not reloaded" {
		t.Fatalf("the page was reloaded (marker %q); it must update in place", got)
	}

	// Sorting and the pool filter work in place too.
	eval(`document.querySelector('th a[href*="sort=name"]').click(); ""`)
	waitPage(10*time.Second, `(() => {
		const names = [...document.querySelectorAll("#machines tbody tr")].map(r => r.dataset.name).join(" ");
		return names === "stlab1 stlab2 stlab3" && location.search.includes("sort=name") ? "" : "order " + names + " at " + location.search;
	})()`)
	eval(`const s = document.querySelector('select[name="pool"]'); s.value = "gpu"; s.dispatchEvent(new Event("change", {bubbles: true})); ""`)
	waitPage(10*time.Second, `(() => {
		const names = [...document.querySelectorAll("#machines tbody tr")].map(r => r.dataset.name).join(" ");
		return names === "stlab3" ? "" : "pool gpu shows " + names;
	})()`)
	eval(`const s2 = document.querySelector('select[name="pool"]'); s2.value = ""; s2.dispatchEvent(new Event("change", {bubbles: true})); ""`)
	waitPage(10*time.Second, `document.querySelectorAll("#machines tbody tr").length === 3 ? "" : "filter not cleared"`)
	if got := eval(`window.peerloadMarker || "reloaded"`); got != "not reloaded" {
		t.Fatalf("sorting or filtering reloaded the page")
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := os.Getenv("STATUS_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.TempDir(), "status.png")
	}
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot (%d bytes) in %s", len(png), out)

	consoleMu.Lock()
	defer consoleMu.Unlock()
	for _, m := range console {
		if strings.HasPrefix(m, "error") || strings.HasPrefix(m, "exception") || strings.Contains(m, "Content Security Policy") {
			t.Errorf("browser console: %s", m)
		}
	}
}
