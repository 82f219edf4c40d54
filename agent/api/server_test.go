package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// fakeAPISource is a hand-built cluster for the API handler.
type fakeAPISource struct {
	mu     sync.Mutex
	snap   *rank.Snapshot
	on     bool
	reason string
}

var apiNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func (f *fakeAPISource) source() apiSource {
	return apiSource{
		name:     func() string { return "lab01" },
		snapshot: func() *rank.Snapshot { f.mu.Lock(); defer f.mu.Unlock(); return f.snap },
		drained:  func() (bool, string) { f.mu.Lock(); defer f.mu.Unlock(); return f.on, f.reason },
		now:      func() time.Time { return apiNow },
	}
}

func apiTestNode(name string, load1 float64, memAvailGiB uint64, candidate bool, pools ...string) rank.NodeStatus {
	n := rank.NodeStatus{
		Name:      name,
		Addr4:     netip.MustParseAddr("127.0.1." + name[len(name)-1:]),
		Gossip:    "127.0.0.1:7946",
		State:     rank.StateAlive,
		Pools:     pools,
		Candidate: candidate,
		Received:  apiNow.Add(-3 * time.Second),
		Report: &report.Report{Node: name, Generation: 1, Seq: 7, Load: report.Load{
			Load1: load1, Load5: load1, Load15: load1, CPUs: 4,
			MemTotal: 16 << 30, MemAvailable: memAvailGiB << 30, CPUPressure: -1, Users: 1,
		}},
	}
	if !candidate {
		n.Reasons = []string{"drain: maintenance"}
		n.Report.Failing = []report.CheckResult{{Name: "nologin", Reason: "/etc/nologin exists"}}
	}
	return n
}

func apiTestSnapshot() *rank.Snapshot {
	return &rank.Snapshot{
		Built: apiNow,
		Self:  "lab01",
		Score: rank.DefaultScoreConfig(),
		Nodes: []rank.NodeStatus{
			{Name: "dns5", State: rank.StateAlive, Collector: true, Reasons: []string{"collector"}},
			apiTestNode("lab1", 3.0, 12, true, "gpu"),
			apiTestNode("lab2", 0.4, 12, true),
			apiTestNode("lab3", 0.1, 1, true, "gpu"),
			apiTestNode("lab4", 0.0, 16, false),
		},
	}
}

func newTestAPI(t *testing.T) (*fakeAPISource, *httptest.Server) {
	t.Helper()
	f := &fakeAPISource{snap: apiTestSnapshot()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "peerload_test_total", Help: "test"}))
	srv := httptest.NewServer(newHandler(f.source(), reg))
	t.Cleanup(srv.Close)
	return f, srv
}

func getJSON(t *testing.T, url string, wantCode int, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: status %d, want %d", url, resp.StatusCode, wantCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

func apiNames(nodes []NodeJSON) string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name)
	}
	return strings.Join(s, ",")
}

func TestAPINodes(t *testing.T) {
	_, srv := newTestAPI(t)
	tests := []struct {
		query, want string
		by          rank.By
	}{
		// combined: lab2 0.1+0.125, lab3 0.025+0.47, lab1 0.75+0.125
		{"", "lab2,lab3,lab1,dns5,lab4", rank.ByCombined},
		{"?by=cpu", "lab3,lab2,lab1,dns5,lab4", rank.ByCPU},
		{"?by=mem", "lab1,lab2,lab3,dns5,lab4", rank.ByMem},
		{"?pool=gpu", "lab3,lab1", rank.ByCombined},
		{"?pool=nosuchpool", "", rank.ByCombined},
	}
	for _, tt := range tests {
		var resp NodesResponse
		getJSON(t, srv.URL+"/v1/nodes"+tt.query, http.StatusOK, &resp)
		if got := apiNames(resp.Nodes); got != tt.want {
			t.Errorf("nodes%s = %s, want %s", tt.query, got, tt.want)
		}
		if resp.By != tt.by || resp.Self != "lab01" {
			t.Errorf("nodes%s: by %q self %q", tt.query, resp.By, resp.Self)
		}
		if resp.Nodes == nil {
			t.Errorf("nodes%s: nodes is null, want a list", tt.query)
		}
	}

	var resp NodesResponse
	getJSON(t, srv.URL+"/v1/nodes", http.StatusOK, &resp)
	best := resp.Nodes[0]
	if best.Rank != 1 || !best.Candidate || best.Report == nil || best.Report.Load1 != 0.4 || best.Report.CPUs != 4 {
		t.Errorf("best node = %+v", best)
	}
	if best.ReportAge != 3 || best.Addr4 != "127.0.1.2" || best.State != rank.StateAlive {
		t.Errorf("best node age %v addr %q state %q", best.ReportAge, best.Addr4, best.State)
	}
	if want := 0.1 + 0.5*0.25 + 0.02; apiAbs(best.Score-want) > 1e-9 {
		t.Errorf("best score = %v, want %v", best.Score, want)
	}
	if best.Report.MemAvailablePercent != 75 {
		t.Errorf("mem available = %v%%, want 75", best.Report.MemAvailablePercent)
	}
	drained := resp.Nodes[4]
	if drained.Name != "lab4" || drained.Rank != 0 || drained.Candidate || len(drained.Failing) != 1 ||
		drained.Reasons[0] != "drain: maintenance" || drained.Score == 0 {
		t.Errorf("drained node = %+v", drained)
	}
	collector := resp.Nodes[3]
	if !collector.Collector || collector.ReportAge != -1 || collector.Report != nil {
		t.Errorf("collector = %+v", collector)
	}
}

func apiAbs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestAPITop(t *testing.T) {
	_, srv := newTestAPI(t)
	tests := []struct{ query, want string }{
		{"", "lab2"},
		{"?n=2", "lab2,lab3"},
		{"?n=10", "lab2,lab3,lab1"},
		{"?n=2&by=cpu", "lab3,lab2"},
		{"?pool=gpu&n=5", "lab3,lab1"},
		{"?pool=none&n=5", ""},
	}
	for _, tt := range tests {
		var resp NodesResponse
		// herd off: the ranking alone, not what earlier rows handed out.
		sep := "?"
		if tt.query != "" {
			sep = "&"
		}
		getJSON(t, srv.URL+"/v1/top"+tt.query+sep+"herd=off", http.StatusOK, &resp)
		if got := apiNames(resp.Nodes); got != tt.want {
			t.Errorf("top%s = %s, want %s", tt.query, got, tt.want)
		}
		for i, n := range resp.Nodes {
			if n.Rank != i+1 {
				t.Errorf("top%s: %s has rank %d, want %d", tt.query, n.Name, n.Rank, i+1)
			}
		}
	}
}

// TestAPITopHerd: users of one machine who ask one after another (ssh,
// hostfile) spread over the good candidates before any report shows their
// logins; with herd off every one of them gets the best machine.
func TestAPITopHerd(t *testing.T) {
	_, srv := newTestAPI(t)
	got := map[string]int{}
	for range 2 {
		var resp NodesResponse
		getJSON(t, srv.URL+"/v1/top", http.StatusOK, &resp)
		got[apiNames(resp.Nodes)]++
	}
	// lab2 and lab3 are good, lab1 is busy.
	if got["lab2"] != 1 || got["lab3"] != 1 {
		t.Errorf("two requests with the herd handed out %v, want lab2 and lab3 once each", got)
	}
	for range 3 {
		var resp NodesResponse
		getJSON(t, srv.URL+"/v1/top?herd=off", http.StatusOK, &resp)
		if n := apiNames(resp.Nodes); n != "lab2" {
			t.Errorf("herd off: top = %s, want lab2 every time", n)
		}
	}
	var bad map[string]string
	getJSON(t, srv.URL+"/v1/top?herd=maybe", http.StatusBadRequest, &bad)
}

func TestAPITopSpreadsEqualScores(t *testing.T) {
	f, srv := newTestAPI(t)
	f.snap = &rank.Snapshot{Built: apiNow, Score: rank.DefaultScoreConfig(), Nodes: []rank.NodeStatus{
		apiTestNode("lab1", 0.5, 8, true), apiTestNode("lab2", 0.5, 8, true), apiTestNode("lab3", 0.5, 8, true),
	}}
	seen := map[string]bool{}
	for range 60 {
		var resp NodesResponse
		getJSON(t, srv.URL+"/v1/top", http.StatusOK, &resp)
		if len(resp.Nodes) != 1 || resp.Nodes[0].Rank != 1 {
			t.Fatalf("top = %+v", resp.Nodes)
		}
		seen[resp.Nodes[0].Name] = true
	}
	if len(seen) != 3 {
		t.Errorf("60 picks among 3 equal nodes returned only %v", seen)
	}
}

func TestAPIBadParameters(t *testing.T) {
	_, srv := newTestAPI(t)
	tests := []struct{ path, wantInErr string }{
		{"/v1/top?n=0", "parameter n"},
		{"/v1/top?n=abc", "parameter n"},
		{"/v1/top?n=-3", "parameter n"},
		{"/v1/top?n=99999999999999999999", "parameter n"},
		{"/v1/top?by=load", "parameter by"},
		{"/v1/nodes?by=", ""}, // empty is the default, not an error
		{"/v1/nodes?n=3", `unknown parameter "n"`},
		{"/v1/nodes?sort=name", `unknown parameter "sort"`},
		{"/v1/nodes?pool=" + strings.Repeat("p", 64), "parameter pool"},
	}
	for _, tt := range tests {
		if tt.wantInErr == "" {
			var resp NodesResponse
			getJSON(t, srv.URL+tt.path, http.StatusOK, &resp)
			continue
		}
		var e ErrorResponse
		getJSON(t, srv.URL+tt.path, http.StatusBadRequest, &e)
		if !strings.Contains(e.Error, tt.wantInErr) {
			t.Errorf("%s: error %q does not contain %q", tt.path, e.Error, tt.wantInErr)
		}
	}
}

func TestAPINilSnapshot(t *testing.T) {
	f, srv := newTestAPI(t)
	f.snap = nil
	var resp NodesResponse
	getJSON(t, srv.URL+"/v1/top?n=3", http.StatusOK, &resp)
	if len(resp.Nodes) != 0 {
		t.Errorf("top without snapshot = %v", resp.Nodes)
	}
}

func TestAPIMetricsAndHealth(t *testing.T) {
	_, srv := newTestAPI(t)
	for path, want := range map[string]string{
		"/metrics": "peerload_test_total 0",
		"/healthz": "ok",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d %q, want %q", path, resp.StatusCode, b, want)
		}
	}
	var e ErrorResponse
	getJSON(t, srv.URL+"/v2/whatever", http.StatusNotFound, &e)
}

// TestAPIIsReadOnly: no request to the HTTP API changes anything, whatever
// its method, path or body; a web page (a cross-origin form or fetch POST)
// cannot drain or undrain the machine.
func TestAPIIsReadOnly(t *testing.T) {
	f, srv := newTestAPI(t)
	f.on, f.reason = true, "kernel update"
	for _, path := range []string{"/v1/drain", "/v1/undrain", "/v1/drain?reason=prank", "/v1/nodes", "/v1/top", "/metrics", "/healthz", "/"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			for _, ctype := range []string{"text/plain", "application/x-www-form-urlencoded", "application/json"} {
				req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"reason":"prank"}`))
				req.Header.Set("Content-Type", ctype)
				req.Header.Set("Origin", "http://evil.example")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode < 400 {
					t.Errorf("%s %s (%s): status %d, want an error", method, path, ctype, resp.StatusCode)
				}
				if strings.HasPrefix(path, "/v1/") && strings.Contains(path, "drain") &&
					(resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(string(body), "control socket")) {
					t.Errorf("%s %s: %d %s, want 405 pointing to the control socket", method, path, resp.StatusCode, body)
				}
			}
		}
	}
	if !f.on || f.reason != "kernel update" {
		t.Errorf("drain state changed through the HTTP API: %v %q", f.on, f.reason)
	}
	// The status page beside the API only reads too.
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page") })
	h := WithStatusPage(newHandler(f.source(), prometheus.NewRegistry()), page)
	for _, path := range []string{"/", "/status/x", "/status.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader("a=b")))
		if rec.Code != http.StatusMethodNotAllowed || strings.Contains(rec.Body.String(), "page") {
			t.Errorf("POST %s beside the status page: %d %q", path, rec.Code, rec.Body.String())
		}
	}
	var d DrainResponse
	getJSON(t, srv.URL+"/v1/drain", http.StatusOK, &d)
	if !d.Drained || d.Node != "lab01" || d.Reason != "kernel update" {
		t.Errorf("GET drain = %+v", d)
	}
}

// TestAPIWithAgents serves the API of a real in-process agent in a
// two-node loopback cluster: both nodes are listed, load moves the
// ranking, a cross-origin POST to the API changes nothing, and a drain
// through the control socket takes the node out cluster-wide.
func TestAPIWithAgents(t *testing.T) {
	agents, samplers := agenttest.Cluster(t, 2, nil)
	a1, a2 := agents[0], agents[1]
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewHandler(a1, reg))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := t.Context()

	agenttest.WaitFor(t, 10*time.Second, "both nodes in /v1/top", func() (bool, string) {
		top, err := c.Top(ctx, 5, "", "", false)
		if err != nil {
			return false, err.Error()
		}
		return apiNames(top.Nodes) == "node1,node2", apiNames(top.Nodes)
	})
	nodes, err := c.Nodes(ctx, "", rank.ByCPU)
	if err != nil {
		t.Fatal(err)
	}
	if nodes.Self != "node1" || len(nodes.Nodes) != 2 || nodes.Nodes[0].Report == nil || nodes.Nodes[0].Rank != 1 ||
		nodes.Nodes[0].ReportAge < 0 || nodes.Nodes[0].Addr4 != "127.0.1.1" {
		t.Errorf("nodes = %+v", nodes)
	}

	samplers[0].SetLoad1(50)
	agenttest.WaitFor(t, 10*time.Second, "loaded node1 to rank last", func() (bool, string) {
		top, err := c.Top(ctx, 2, "", "", false)
		if err != nil {
			return false, err.Error()
		}
		return apiNames(top.Nodes) == "node2,node1", apiNames(top.Nodes)
	})

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/drain", strings.NewReader("reason=prank"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if on, _ := a1.Drained(); on || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("a cross-origin POST to the API: status %d, drained %v", resp.StatusCode, on)
	}

	sock := startControl(t, ControlConfig{Path: filepath.Join(t.TempDir(), "control.sock")}, a1)
	cc := NewControlClient(sock.Path())
	if d, err := cc.Drain(ctx, "api test"); err != nil || !d.Drained || d.Node != "node1" || !d.Changed {
		t.Fatalf("drain = %+v, %v", d, err)
	}
	if on, reason := a1.Drained(); !on || !strings.Contains(reason, "api test") {
		t.Errorf("agent drained = %v %q", on, reason)
	}
	agenttest.WaitFor(t, 10*time.Second, "node2 to see node1 drained", func() (bool, string) {
		n := a2.Snapshot().Node("node1")
		return n != nil && !n.Candidate, fmt.Sprintf("%+v", n)
	})
	if _, err := cc.Undrain(ctx); err != nil {
		t.Fatal(err)
	}
	agenttest.WaitFor(t, 10*time.Second, "node1 back in /v1/top", func() (bool, string) {
		top, err := c.Top(ctx, 5, "", "", false)
		if err != nil {
			return false, err.Error()
		}
		return len(top.Nodes) == 2, apiNames(top.Nodes)
	})
}

// TestAPITopSkipsNodeThatJustDied: /v1/top pings what it hands out, so a
// machine killed a moment ago is not returned even while memberlist (with
// a long suspicion timeout here) still lists it as alive.
func TestAPITopSkipsNodeThatJustDied(t *testing.T) {
	var agents []*agent.Agent
	for i := range 3 {
		c, _ := agenttest.Config(t, fmt.Sprintf("m%d", i), float64(i))
		c.Memberlist.SuspicionMult = 50
		if i == 2 {
			// m2 answers /v1/top: on a loaded machine (the race detector,
			// CPU hogs) a live m1 must not miss the local profile's 100 ms
			// ping timeout.
			c.Memberlist.ProbeTimeout, c.Memberlist.ProbeInterval = time.Second, 2*time.Second
		}
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		agents = append(agents, agenttest.Start(t, c))
	}
	agenttest.WaitFor(t, 5*time.Second, "3 candidates at m2", func() (bool, string) {
		return len(agenttest.Candidates(agents[2])) == 3, fmt.Sprint(agenttest.Candidates(agents[2]))
	})
	srv := httptest.NewServer(NewHandler(agents[2], prometheus.NewRegistry()))
	defer srv.Close()
	_ = agents[0].Shutdown() // the best node dies without a word
	if got := agenttest.Candidates(agents[2]); len(got) != 3 {
		t.Fatalf("memberlist already dropped m0 (%v); the test needs it still listed", got)
	}
	resp, err := NewClient(srv.Listener.Addr().String()).Top(context.Background(), 3, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range resp.Nodes {
		names = append(names, n.Name)
	}
	if fmt.Sprint(names) != "[m1 m2]" {
		t.Errorf("top 3 right after m0 died = %v, want [m1 m2]", names)
	}
}
