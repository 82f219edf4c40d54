package status

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// syntheticCluster is an hour of 2 s snapshots of n machines in pools
// "even" and "odd", each machine's load and users on a random walk of its
// own (seeded: every run is the same); machine 3 is drained and machine 5
// dead at the end.
func syntheticCluster(n int) (*Recorder, time.Time) {
	end := t0.Add(time.Hour)
	r := NewRecorder(Options{Now: func() time.Time { return end }})
	rnd := rand.New(rand.NewPCG(1, 2))
	loads := make([]float64, n)
	for i := range loads {
		loads[i] = rnd.Float64() * 4
	}
	nodes := make([]rank.NodeStatus, n)
	for step := 0; step <= 1800; step++ {
		at := t0.Add(time.Duration(step) * 2 * time.Second)
		for i := range nodes {
			loads[i] = max(0, loads[i]+rnd.NormFloat64()*0.05)
			load := loads[i]
			nodes[i] = node(fmt.Sprintf("lab%03d", i), load)
			nodes[i].Report.Load.Users = int(load * 2)
			nodes[i].Report.Load.CPUUtil = min(load/4, 1)
			nodes[i].Pools = []string{[]string{"even", "odd"}[i%2]}
			if step == 1800 && i == 3 {
				nodes[i] = node(nodes[i].Name, load, fail("drain", "disk swap"))
				nodes[i].Reasons = []string{"drain: disk swap"}
				nodes[i].Pools = []string{"odd"}
			}
			if step == 1800 && i == 5 {
				nodes[i] = with(nodes[i], rank.StateDead)
				nodes[i].Reasons = []string{"dead"}
			}
		}
		r.Observe(snapAt(at, append([]rank.NodeStatus(nil), nodes...)...))
	}
	return r, end
}

func get(t *testing.T, h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestPageShowsEveryMachine(t *testing.T) {
	r, _ := syntheticCluster(12)
	h := NewHandler(r)
	w := get(t, h, "GET", "/")
	if w.Code != 200 {
		t.Fatalf("GET / = %d: %s", w.Code, w.Body)
	}
	body := w.Body.String()
	for i := range 12 {
		name := fmt.Sprintf("lab%03d", i)
		row := regexp.MustCompile(`<tr class="\w+" data-name="` + name + `">[\s\S]*?</tr>`).FindString(body)
		if row == "" {
			t.Fatalf("no row for %s", name)
		}
		if i != 5 && !strings.Contains(row, `<svg class="spark"`) {
			t.Errorf("row of %s has no sparkline: %s", name, row)
		}
	}
	for _, want := range []string{
		`<tr class="warn" data-name="lab003">`, "drain: disk swap", `<tr class="bad" data-name="lab005">`,
		`id="cluster-chart"`, `class="median" d="M`, `<script src="/status/status.js" defer></script>`,
		`<b>10</b> of 12 machines are candidates`, `data-kind="drained"`, `data-kind="dead"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=") || strings.Contains(body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(body) {
		t.Error("inline script or style: the CSP forbids it")
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
}

func TestPageSortsAndFilters(t *testing.T) {
	r, _ := syntheticCluster(12)
	h := NewHandler(r)
	names := func(target string) []string {
		w := get(t, h, "GET", target)
		if w.Code != 200 {
			t.Fatalf("GET %s = %d: %s", target, w.Code, w.Body)
		}
		var out []string
		for _, m := range regexp.MustCompile(`data-name="([^"]+)"`).FindAllStringSubmatch(w.Body.String(), -1) {
			out = append(out, m[1])
		}
		return out
	}
	odd := names("/status/live?pool=odd&sort=name")
	if strings.Join(odd, " ") != "lab001 lab003 lab005 lab007 lab009 lab011" {
		t.Fatalf("pool odd by name: %v", odd)
	}
	desc := names("/status/live?sort=name&desc=1&q=LAB01")
	if strings.Join(desc, " ") != "lab011 lab010" {
		t.Fatalf("name filter, descending: %v", desc)
	}
	byRank := names("/?pool=even")
	if byRank[len(byRank)-1] != "lab000" && len(byRank) != 6 {
		t.Fatalf("by rank: %v", byRank)
	}
	byLoad := names("/?sort=load1&desc=1")
	var v view
	if err := json.Unmarshal(get(t, h, "GET", "/status.json?sort=load1&desc=1").Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(v.Rows); i++ {
		if v.Rows[i].Load1 > v.Rows[i-1].Load1 {
			t.Fatalf("not sorted by load1 descending: %v", v.Rows)
		}
		if v.Rows[i].Name != byLoad[i] {
			t.Fatalf("page and json disagree at %d: %s vs %s", i, byLoad[i], v.Rows[i].Name)
		}
	}
}

func TestJSON(t *testing.T) {
	r, end := syntheticCluster(4)
	w := get(t, NewHandler(r), "GET", "/status.json?node=lab001")
	var v view
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("status.json: %v: %s", err, w.Body)
	}
	if len(v.Rows) != 4 || v.Candidates != 3 || len(v.Events) != 1 {
		t.Fatalf("rows %d candidates %d events %v", len(v.Rows), v.Candidates, v.Events)
	}
	// An hour of 10 s means before the last 5 min of 2 s points.
	if n := len(v.History); n < 300+150 || n > 362+150 {
		t.Fatalf("%d history points for lab001", n)
	}
	if last := v.History[len(v.History)-1].Time; !last.Equal(end) {
		t.Fatalf("newest point at %s, want %s", last, end)
	}
	if len(v.Cluster) < 450 {
		t.Fatalf("%d cluster points", len(v.Cluster))
	}
}

func TestReadOnlyAndStrict(t *testing.T) {
	r, _ := syntheticCluster(2)
	h := NewHandler(r)
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		w := get(t, h, m, "/")
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s / = %d, Allow %q", m, w.Code, w.Header().Get("Allow"))
		}
	}
	if w := get(t, h, "HEAD", "/"); w.Code != 200 {
		t.Errorf("HEAD / = %d", w.Code)
	}
	for target, want := range map[string]string{
		"/?sort=bogus":     `parameter sort: unknown column "bogus"`,
		"/?desc=yes":       "parameter desc: want 0 or 1",
		"/?x=1":            `unknown parameter "x"`,
		"/status/live?x=1": `unknown parameter "x"`,
		"/?node=lab001":    `unknown parameter "node"`,
	} {
		w := get(t, h, "GET", target)
		if w.Code != 400 || !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET %s = %d %q, want 400 %q", target, w.Code, w.Body, want)
		}
	}
	if w := get(t, h, "GET", "/nope"); w.Code != 404 {
		t.Errorf("GET /nope = %d", w.Code)
	}
	for _, asset := range []string{"/status/status.js", "/status/status.css", "/status/icon.svg"} {
		w := get(t, h, "GET", asset)
		if w.Code != 200 || w.Body.Len() < 100 {
			t.Errorf("GET %s = %d, %d bytes", asset, w.Code, w.Body.Len())
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s without security headers", asset)
		}
	}
}

func TestGzip(t *testing.T) {
	r, _ := syntheticCluster(20)
	h := NewHandler(r)
	plain := get(t, h, "GET", "/")
	w := get(t, h, "GET", "/", "Accept-Encoding", "gzip, deflate")
	if w.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", w.Header())
	}
	zr, err := gzip.NewReader(w.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != plain.Body.String() {
		t.Fatal("gzipped page differs")
	}
	if w := get(t, h, "GET", "/", "Accept-Encoding", "gzip;q=0"); w.Header().Get("Content-Encoding") != "" {
		t.Fatal("gzip sent though refused")
	}
}

func TestPageCacheSharesOneRenderPerVersion(t *testing.T) {
	now := t0
	r := NewRecorder(Options{Now: func() time.Time { return now }})
	r.Observe(snapAt(t0, node("lab1", 1)))
	h := NewHandler(r)
	first := get(t, h, "GET", "/status/live").Body.String()
	r.Observe(snapAt(t0.Add(time.Second), node("lab1", 1), node("lab2", 1)))
	if got := get(t, h, "GET", "/status/live").Body.String(); got == first || !strings.Contains(got, "lab2") {
		t.Fatal("a new snapshot did not show")
	}
	// The same version within a second is served from the cache (even if
	// the clock moved a little), and per query.
	a := get(t, h, "GET", "/status/live?sort=name").Body.String()
	now = now.Add(500 * time.Millisecond)
	if b := get(t, h, "GET", "/status/live?sort=name").Body.String(); a != b {
		t.Fatal("same version and query rendered twice differently")
	}
	if c := get(t, h, "GET", "/status/live?sort=name&desc=1").Body.String(); c == a {
		t.Fatal("another query served from the cache")
	}
	r.Record(Event{Kind: UpdateFailed, Text: "REFUSED"})
	if got := get(t, h, "GET", "/status/live?sort=name").Body.String(); !strings.Contains(got, "REFUSED") {
		t.Fatal("a recorded event did not show")
	}
}

func TestEmptyRecorderRenders(t *testing.T) {
	w := get(t, NewHandler(NewRecorder(Options{})), "GET", "/")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "no machine known yet") {
		t.Fatalf("empty page = %d: %s", w.Code, w.Body)
	}
}

// BenchmarkPage renders the status page of 500 machines with a full hour
// of history: the server's time per page and the page's weight, plain and
// gzipped, for the whole page (/) and for what the script refetches every
// 2 s (/status/live). scripts/bench-status.sh puts it in BENCHMARKS.md.
func BenchmarkPage(b *testing.B) {
	r, _ := syntheticCluster(500)
	h := newHandler(r)
	h.cache.off = true // measure rendering, not the cache
	for _, c := range []struct{ name, target, enc string }{
		{"page", "/", ""},
		{"page-gzip", "/", "gzip"},
		{"live-gzip", "/status/live", "gzip"},
		{"json-gzip", "/status.json", "gzip"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.target, nil)
			if c.enc != "" {
				req.Header.Set("Accept-Encoding", c.enc)
			}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("GET %s = %d", c.target, w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

// TestPageEscapesEveryValue puts markup into every string the page shows
// (names, states, pools, reasons, events, the filter) and finds it only
// escaped: the page is written by page.f, which escapes what it is given.
func TestPageEscapesEveryValue(t *testing.T) {
	const bad = `<x y="1" z='2'>&`
	r := NewRecorder(Options{Now: func() time.Time { return t0.Add(time.Minute) }})
	a := node("a"+bad, 1, fail("check"+bad, "reason"+bad))
	a.Pools, a.Reasons = []string{"pool" + bad}, []string{"why" + bad}
	coll := node("coll"+bad, 0)
	coll.Collector, coll.Candidate = true, false
	r.Observe(snapAt(t0, node("a"+bad, 1), coll))
	r.Observe(snapAt(t0.Add(2*time.Second), a, with(node("b", 1), "state"+bad), coll))
	h := NewHandler(r)
	for _, target := range []string{"/", "/?q=" + url.QueryEscape("a"+bad), "/status/live", "/?pool=" + url.QueryEscape("pool"+bad) + "&sort=name"} {
		body := get(t, h, "GET", target).Body.String()
		if strings.Contains(body, "<x") || strings.Contains(body, `y="1"`) || strings.Contains(body, "z='2'") {
			t.Errorf("GET %s: unescaped markup in\n%s", target, body)
		}
		if !strings.Contains(body, `a&lt;x y=&#34;1&#34; z=&#39;2&#39;&gt;&amp;`) {
			t.Errorf("GET %s: the machine's name is missing or escaped otherwise", target)
		}
	}
	body := get(t, h, "GET", "/").Body.String()
	for _, want := range []string{"pool&lt;x", "why&lt;x", "state&lt;x", `data-name="coll&lt;x`, ">collector<"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

// TestPageMemIsMemoryUsed: the page's memory column is the share in use,
// labelled so, as `peerload status` shows it (MEM%): 12 of 16 GiB
// available is 25 % used.
func TestPageMemIsMemoryUsed(t *testing.T) {
	r := NewRecorder(Options{Now: func() time.Time { return t0 }})
	r.Observe(snapAt(t0, node("lab1", 1)))
	body := get(t, NewHandler(r), "GET", "/").Body.String()
	if !regexp.MustCompile(`<a [^>]*>mem used</a>`).MatchString(body) {
		t.Errorf("no column headed \"mem used\":\n%s", body)
	}
	row := regexp.MustCompile(`<tr class="\w+" data-name="lab1">[\s\S]*?</tr>`).FindString(body)
	cells := regexp.MustCompile(`<td class="num"[^>]*>([^<]*)</td>`).FindAllStringSubmatch(row, -1)
	// rank, score, load1, load5, load15, CPU (title: CPUs), mem, users
	if len(cells) != 8 || cells[6][1] != "25%" {
		t.Errorf("row of lab1: cells %q, want mem used 25%%:\n%s", cells, row)
	}
}
