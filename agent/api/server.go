package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/hostkeys"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// The local HTTP API is read-only JSON for the CLI and scripts, plus
// /metrics and /healthz. Nothing in it changes anything: drain and undrain
// go through the control socket (control.go), which knows who is asking.
//
//	GET  /v1/nodes?pool=P&by=cpu|mem|combined   every known node
//	GET  /v1/top?n=N&pool=P&by=...              the best N candidates
//	GET  /v1/drain                              this node's drain state
//	GET  /metrics                               Prometheus metrics
//	GET  /healthz                               "ok"
//	GET  /, /status/..., /status.json           the status page (WithStatusPage)

// maxTopN bounds ?n= so a typo cannot ask for an absurd allocation.
const maxTopN = 10000

// NodesResponse is the body of GET /v1/nodes and GET /v1/top.
type NodesResponse struct {
	// Self is the name of the agent that answered.
	Self string `json:"self"`
	// Built is when the snapshot the answer comes from was built.
	Built time.Time `json:"built"`
	// By is the ranking used (the agent's default when not asked for).
	By rank.By `json:"by"`
	// Pool is the pool asked for, empty for all.
	Pool string `json:"pool,omitempty"`
	// Nodes are, for /v1/nodes, the candidates best first followed by the
	// other members by name; for /v1/top, the best N candidates (equal
	// scores in random order).
	Nodes []NodeJSON `json:"nodes"`
}

// NodeJSON is one member as the API shows it.
type NodeJSON struct {
	Name      string   `json:"name"`
	Addr4     string   `json:"addr4,omitempty"`
	Addr6     string   `json:"addr6,omitempty"`
	Gossip    string   `json:"gossip,omitempty"`
	State     string   `json:"state"`
	Collector bool     `json:"collector,omitempty"`
	Pools     []string `json:"pools,omitempty"`
	Roles     []string `json:"roles,omitempty"`
	// HostKeys are the machine's ssh host public keys in known_hosts form
	// ("ssh-ed25519 AAAA..."), for `peerload known-hosts`.
	HostKeys []string `json:"host_keys,omitempty"`
	// Candidate says whether the node may be handed out; Reasons says why
	// not otherwise.
	Candidate bool     `json:"candidate"`
	Reasons   []string `json:"reasons,omitempty"`
	// Score is the node's score under the response's By (0 without a
	// report); lower is better.
	Score float64 `json:"score"`
	// Rank is the 1-based rank among candidates (equal scores share a
	// rank), 0 when the node is not a candidate.
	Rank int `json:"rank"`
	// ReportAge is how old the latest report is, in seconds; -1 when no
	// report arrived yet.
	ReportAge float64 `json:"report_age_seconds"`
	// Report is the latest report's load, nil before the first one.
	Report *LoadJSON `json:"report,omitempty"`
	// Failing lists the failing health checks of the latest report.
	Failing []report.CheckResult `json:"failing,omitempty"`
}

// LoadJSON is a report's load in JSON-friendly units.
type LoadJSON struct {
	Generation uint64  `json:"generation"`
	Seq        uint64  `json:"seq"`
	Load1      float64 `json:"load1"`
	Load5      float64 `json:"load5"`
	Load15     float64 `json:"load15"`
	CPUs       int     `json:"cpus"`
	CPUUtil    float64 `json:"cpu_util"`
	// MemTotal, MemAvailable and SwapUsed are in bytes.
	MemTotal     uint64 `json:"mem_total_bytes"`
	MemAvailable uint64 `json:"mem_available_bytes"`
	SwapUsed     uint64 `json:"swap_used_bytes"`
	// MemAvailablePercent is MemAvailable/MemTotal in percent (100 when
	// unknown).
	MemAvailablePercent float64 `json:"mem_available_percent"`
	// CPUPressure is PSI cpu "some avg10" in percent, -1 without PSI.
	CPUPressure   float64 `json:"cpu_pressure"`
	Users         int     `json:"users"`
	UptimeSeconds float64 `json:"uptime_seconds"`
}

// DrainResponse is the body of GET /v1/drain and of the control socket's
// answers.
type DrainResponse struct {
	Node    string `json:"node"`
	Drained bool   `json:"drained"`
	Reason  string `json:"reason,omitempty"`
	// Changed says whether a drain or undrain changed anything (false for
	// an undrain of a node that was not drained).
	Changed bool `json:"changed"`
}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// apiSource is what the API reads from and acts on; an *agent.Agent in
// production, plain functions in tests.
type apiSource struct {
	name     func() string
	snapshot func() *rank.Snapshot
	drained  func() (bool, string)
	// verify, when set, pings nodes before /v1/top hands them out.
	verify func([]rank.NodeStatus) []bool
	now    func() time.Time
}

// NewHandler serves the local HTTP API of a (see the package comment
// above for the routes) and gatherer's metrics on /metrics (the default
// gatherer when nil). It only reads; bind the listener to loopback unless
// you mean to publish the cluster's state.
func NewHandler(a *agent.Agent, gatherer prometheus.Gatherer) http.Handler {
	return newHandler(apiSource{
		name:     a.Name,
		snapshot: a.Snapshot,
		drained:  a.Drained,
		verify:   a.Answering,
		now:      time.Now,
	}, gatherer)
}

// WithStatusPage serves page, the read-only status page (agent/status), at
// / and under /status/ beside api, which answers everything else; a nil
// page leaves api alone.
func WithStatusPage(api, page http.Handler) http.Handler {
	if page == nil {
		return api
	}
	mux := http.NewServeMux()
	mux.Handle("/", api)
	for _, p := range []string{"/{$}", "/status/", "/status.json"} {
		mux.Handle(p, page)
	}
	return readOnlyMethods(mux)
}

// readOnlyMethods answers 405 to every method but GET, HEAD and OPTIONS, so
// nothing served beside the API can be made to change anything either.
func readOnlyMethods(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			h.ServeHTTP(w, r)
		default:
			readOnly(w)
		}
	})
}

func newHandler(src apiSource, gatherer prometheus.Gatherer) http.Handler {
	if gatherer == nil {
		gatherer = prometheus.DefaultGatherer
	}
	if src.now == nil {
		src.now = time.Now
	}
	h := &apiHandler{src: src, herd: herd.New(herd.Config{}), handed: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "peerload", Subsystem: "api", Name: "handed_out_total",
		Help: "Machines /v1/top handed out (peerload top, ssh and hostfile), by node.",
	}, []string{"node"})}
	if reg, ok := gatherer.(prometheus.Registerer); ok {
		reg.MustRegister(h.handed)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/nodes", h.nodes)
	mux.HandleFunc("/v1/top", h.top)
	mux.HandleFunc("/v1/drain", h.drain)
	mux.HandleFunc("/v1/undrain", func(w http.ResponseWriter, _ *http.Request) { readOnly(w) })
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint %s", r.URL.Path))
	})
	return readOnlyMethods(mux)
}

type apiHandler struct {
	src apiSource
	// herd counts what /v1/top hands out (peerload top, ssh, hostfile on
	// this machine), so users who log in one after another spread.
	herd   *herd.Herd
	handed *prometheus.CounterVec
}

// query holds the validated common query parameters.
type query struct {
	pool string
	by   rank.By
	n    int
	herd bool
}

func parseQuery(r *http.Request, allowN bool) (query, error) {
	q := query{n: 1}
	v := r.URL.Query()
	for key := range v {
		switch key {
		case "pool", "by":
		case "n", "herd":
			if !allowN {
				return q, fmt.Errorf("unknown parameter %q", key)
			}
		default:
			return q, fmt.Errorf("unknown parameter %q", key)
		}
	}
	q.pool = v.Get("pool")
	if len(q.pool) > 63 {
		return q, fmt.Errorf("parameter pool: %q is longer than 63 bytes", q.pool)
	}
	if s := v.Get("by"); s != "" {
		by, err := rank.ParseBy(s)
		if err != nil {
			return q, fmt.Errorf("parameter by: %w", err)
		}
		q.by = by
	}
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTopN {
			return q, fmt.Errorf("parameter n: %q is not a number from 1 to %d", s, maxTopN)
		}
		q.n = n
	}
	if allowN {
		on, err := rank.ParseHerd(v.Get("herd"))
		if err != nil {
			return q, fmt.Errorf("parameter %w", err)
		}
		q.herd = on
	}
	return q, nil
}

func (h *apiHandler) snapshot() *rank.Snapshot {
	if s := h.src.snapshot(); s != nil {
		return s
	}
	return &rank.Snapshot{Built: h.src.now(), Score: rank.DefaultScoreConfig()}
}

// rankedRequest is what both read routes start from: the query, the
// snapshot and its ranking under the asked (or configured) order.
type rankedRequest struct {
	q       query
	snap    *rank.Snapshot
	by      rank.By
	ranking *rank.Ranking
}

// ranked checks the method and the query and ranks the current snapshot;
// on a bad request it has already answered and returns false.
func (h *apiHandler) ranked(w http.ResponseWriter, r *http.Request, withN bool) (rankedRequest, bool) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return rankedRequest{}, false
	}
	q, err := parseQuery(r, withN)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return rankedRequest{}, false
	}
	rr := rankedRequest{q: q, snap: h.snapshot(), by: q.by}
	if rr.by == "" {
		rr.by = rr.snap.Score.By
	}
	rr.ranking = rr.snap.Rank(q.pool, rr.by)
	return rr, true
}

func (h *apiHandler) nodes(w http.ResponseWriter, r *http.Request) {
	rr, ok := h.ranked(w, r, false)
	if !ok {
		return
	}
	q, snap, by, ranking := rr.q, rr.snap, rr.by, rr.ranking
	now := h.src.now()
	resp := h.response(snap, q, by)
	ranked := make(map[string]bool, ranking.Len())
	for i := range ranking.Nodes {
		n := &ranking.Nodes[i]
		ranked[n.Name] = true
		resp.Nodes = append(resp.Nodes, nodeJSON(n, ranking.Rank(i), now))
	}
	for i := range snap.Nodes {
		n := snap.Nodes[i]
		if ranked[n.Name] || !n.InPool(q.pool) {
			continue
		}
		if n.Report != nil {
			n.Score = rank.Score(n.Report.Load, snap.Score, by)
		}
		resp.Nodes = append(resp.Nodes, nodeJSON(&n, 0, now))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *apiHandler) top(w http.ResponseWriter, r *http.Request) {
	rr, ok := h.ranked(w, r, true)
	if !ok {
		return
	}
	q, snap, by, ranking := rr.q, rr.snap, rr.by, rr.ranking
	now := h.src.now()
	if q.herd {
		// What this machine's users were handed a moment ago weighs on
		// the machines until their reports show it (rank.Policy.Herd).
		ch, _ := rank.Policy{Pool: q.pool, By: by, Fallback: rank.FallbackNone, Herd: h.herd}.Choose(snap, nil, now)
		ranking = ch.Ranking
	}
	rankOf := make(map[string]int, ranking.Len())
	for i := range ranking.Nodes {
		rankOf[ranking.Nodes[i].Name] = ranking.Rank(i)
	}
	resp := h.response(snap, q, by)
	var names []string
	for _, n := range h.answering(ranking.Pick(0, nil), q.n) {
		resp.Nodes = append(resp.Nodes, nodeJSON(&n, rankOf[n.Name], now))
		names = append(names, n.Name)
		h.handed.WithLabelValues(n.Name).Inc()
	}
	if q.herd && r.Method == http.MethodGet {
		h.herd.Handed(names, now)
	}
	writeJSON(w, http.StatusOK, resp)
}

// answering returns the first n of order (all when n <= 0) that answer a
// ping right now, asking in batches of the number still missing.
func (h *apiHandler) answering(order []rank.NodeStatus, n int) []rank.NodeStatus {
	if n <= 0 || n > len(order) {
		n = len(order)
	}
	if h.src.verify == nil {
		return order[:n]
	}
	var out []rank.NodeStatus
	for len(out) < n && len(order) > 0 {
		batch := order[:min(n-len(out), len(order))]
		order = order[len(batch):]
		for i, ok := range h.src.verify(batch) {
			if ok {
				out = append(out, batch[i])
			}
		}
	}
	return out
}

func (h *apiHandler) response(snap *rank.Snapshot, q query, by rank.By) *NodesResponse {
	self := snap.Self
	if self == "" && h.src.name != nil {
		self = h.src.name()
	}
	return &NodesResponse{Self: self, Built: snap.Built, By: by, Pool: q.pool, Nodes: []NodeJSON{}}
}

func nodeJSON(n *rank.NodeStatus, rank int, now time.Time) NodeJSON {
	j := NodeJSON{
		Name:      n.Name,
		Addr4:     addrString(n.Addr4),
		Addr6:     addrString(n.Addr6),
		Gossip:    n.Gossip,
		State:     n.State,
		Collector: n.Collector,
		Pools:     n.Pools,
		Roles:     n.Roles,
		HostKeys:  hostKeyStrings(n.HostKeys),
		Candidate: n.Candidate,
		Reasons:   n.Reasons,
		Score:     n.Score,
		Rank:      rank,
		ReportAge: -1,
	}
	if n.Report != nil {
		l := n.Report.Load
		j.ReportAge = max(now.Sub(n.Received).Seconds(), 0)
		j.Failing = n.Report.Failing
		j.Report = &LoadJSON{
			Generation:          n.Report.Generation,
			Seq:                 n.Report.Seq,
			Load1:               l.Load1,
			Load5:               l.Load5,
			Load15:              l.Load15,
			CPUs:                l.CPUs,
			CPUUtil:             l.CPUUtil,
			MemTotal:            l.MemTotal,
			MemAvailable:        l.MemAvailable,
			SwapUsed:            l.SwapUsed,
			MemAvailablePercent: 100 * l.MemAvailableFraction(),
			CPUPressure:         l.CPUPressure,
			Users:               l.Users,
			UptimeSeconds:       l.Uptime.Seconds(),
		}
	}
	return j
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// drain answers GET with this node's drain state. Changing it is for the
// control socket (control.go): any web page the user opens can send
// requests to a loopback HTTP port, so nothing here changes anything.
func (h *apiHandler) drain(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	on, reason := h.src.drained()
	resp := DrainResponse{Drained: on, Reason: reason}
	if h.src.name != nil {
		resp.Node = h.src.name()
	}
	writeJSON(w, http.StatusOK, resp)
}

// readOnly answers a request that would change something: 405, and where
// changes go instead.
func readOnly(w http.ResponseWriter) {
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, http.StatusMethodNotAllowed,
		"the HTTP API is read-only: drain and undrain go through the agent's control socket (`peerload drain`, `peerload undrain`)")
}

func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorResponse{Error: msg})
}

// hostKeyStrings decodes gossiped host keys into known_hosts form; what
// does not decode is left out (it came from another member's meta).
func hostKeyStrings(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	keys, _ := hostkeys.Decode(b)
	var out []string
	for _, k := range keys {
		out = append(out, k.String())
	}
	return out
}
