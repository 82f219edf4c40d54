package lab

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// GossipPort is the agents' gossip port (peerload's default).
const GossipPort = 7946

// AgentAPI is where every lab agent serves its API, on its own host's
// loopback (peerload's default).
const AgentAPI = "127.0.0.1:1981"

// AgentOptions describe one `peerload agent` of the lab. The zero value is
// a candidate with 4 CPUs and load 0.10 that joins the lab's seeds with the
// lab's keyring, label and allow list, at LAN timings (the defaults).
type AgentOptions struct {
	// Collector makes the agent a collector (--collector).
	Collector bool
	// Join overrides the seeds to join (host:port); nil joins Lab.Seeds.
	Join []string
	// Keyring overrides the lab's keyring file; "-" runs without one.
	Keyring string
	// Label overrides the lab's cluster label; "-" runs without one.
	Label string
	// Allow overrides the lab's allow list; []string{} allows everyone.
	Allow []string
	// CPUs of the fake proc root (default 4).
	CPUs int
	// Load1 is the starting 1-minute load (default 0.10).
	Load1 float64
	// Pools tags the machine (--pool).
	Pools []string
	// Extra flags, appended last.
	Extra []string
	// NoStart adds the agent without starting it.
	NoStart bool
	// Bin is the peerload binary to run (another release's, see
	// BuildRelease); empty runs the lab's.
	Bin string
}

// Agent is a host running `peerload agent`.
type Agent struct {
	*Host
	Proc *FakeProc
	// Process is the running agent; Kill, Stop and Start it for faults.
	Process *Process
	Opts    AgentOptions
}

// AddAgent adds a host called name running a `peerload agent` (see
// AgentOptions). The first three agents become the lab's seeds, which every
// later member joins unless told otherwise.
func (l *Lab) AddAgent(name string, opts AgentOptions) *Agent {
	l.t.Helper()
	return l.AddAgentAt(name, netip.Addr{}, opts)
}

// AddAgents adds n agents named prefix1..prefixN with the same options
// (e.g. a 100-machine lab for a benchmark) and returns them in order.
func (l *Lab) AddAgents(prefix string, n int, opts AgentOptions) []*Agent {
	l.t.Helper()
	out := make([]*Agent, n)
	for i := range out {
		out[i] = l.AddAgent(fmt.Sprintf("%s%d", prefix, i+1), opts)
	}
	return out
}

// AddAgentAt is AddAgent on a host with the given address (the zero
// address picks the next free one).
func (l *Lab) AddAgentAt(name string, addr netip.Addr, opts AgentOptions) *Agent {
	l.t.Helper()
	var h *Host
	if addr.IsValid() {
		h = l.AddHostAt(name, addr)
	} else {
		h = l.AddHost(name)
	}
	if opts.CPUs == 0 {
		opts.CPUs = 4
	}
	proc, err := newFakeProcAt(filepath.Join(h.Dir, "proc"), opts.CPUs)
	if err != nil {
		l.t.Fatalf("lab: %s: %v", name, err)
	}
	if opts.Load1 > 0 {
		proc.SetLoad(l.t, opts.Load1, opts.Load1, opts.Load1)
	}
	root := filepath.Join(h.Dir, "root")
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		l.t.Fatalf("lab: %v", err)
	}
	a := &Agent{Host: h, Proc: proc, Opts: opts}
	a.Process = h.NewProcess("agent", cmp.Or(opts.Bin, l.peerload))
	a.Process.MetricsAddr = AgentAPI
	a.Process.ArgsFunc = func() []string { return l.agentArgs(a, root) }
	l.mu.Lock()
	l.agents = append(l.agents, a)
	l.mu.Unlock()
	if !opts.NoStart {
		a.Process.Start()
	}
	return a
}

// agentArgs are the agent's command line flags; the seeds it joins are the
// ones that exist when it (re)starts.
func (l *Lab) agentArgs(a *Agent, root string) []string {
	h, opts := a.Host, a.Opts
	join := opts.Join
	if join == nil {
		join = l.Seeds()
	}
	join = slices.DeleteFunc(slices.Clone(join), func(s string) bool { return s == gossipAddr(h) })
	args := []string{"agent",
		"--name", h.Name,
		"--bind", gossipAddr(h),
		"--advertise", h.Addr.String(),
		"--api", AgentAPI,
		"--state-dir", filepath.Join(h.Dir, "state"),
		"--root", root,
		"--ssh-port", "0",
	}
	if !opts.Collector {
		// Each agent its own control socket: the default path is one
		// for the whole machine, and may be a real agent's.
		args = append(args, "--proc", a.Proc.Dir, "--control", h.ControlSocket())
	}
	if len(join) > 0 {
		args = append(args, "--join", strings.Join(join, ","))
	}
	args = append(args, l.memberFlags(opts.Keyring, opts.Label, opts.Allow)...)
	if len(opts.Pools) > 0 {
		args = append(args, "--pool", strings.Join(opts.Pools, ","))
	}
	if opts.Collector {
		args = append(args, "--collector")
	}
	return append(args, opts.Extra...)
}

// memberFlags are the security flags of a member: keyring, label, allow,
// each the lab's unless overridden ("-" for none).
func (l *Lab) memberFlags(keyring, label string, allow []string) []string {
	var args []string
	switch keyring {
	case "":
		if l.Keyring != "" {
			args = append(args, "--keyring", l.Keyring)
		}
	case "-":
	default:
		args = append(args, "--keyring", keyring)
	}
	switch label {
	case "":
		args = append(args, "--label", l.Label)
	case "-":
	default:
		args = append(args, "--label", label)
	}
	if allow == nil {
		allow = l.Allow
	}
	if len(allow) > 0 {
		args = append(args, "--allow", strings.Join(allow, ","))
	}
	return args
}

func gossipAddr(h *Host) string { return fmt.Sprintf("%s:%d", h.Addr, GossipPort) }

// Gossip is the agent's gossip address, host:port, for --join.
func (a *Agent) Gossip() string { return gossipAddr(a.Host) }

// Seeds are the gossip addresses of the first three agents added (started
// or not): what every member joins by default, like a lab's join list.
func (l *Lab) Seeds() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, a := range l.agents {
		if len(out) == 3 {
			break
		}
		if !a.Opts.Collector {
			out = append(out, a.Gossip())
		}
	}
	return out
}

// Agents returns every agent in the order they were added.
func (l *Lab) Agents() []*Agent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.agents)
}

// SetLoad sets the agent's 1, 5 and 15 minute loads to load.
func (a *Agent) SetLoad(load float64) { a.Proc.SetLoad(a.lab.t, load, load, load) }

// Node is one machine as a member's API shows it (/v1/nodes).
type Node struct {
	Name      string   `json:"name"`
	Addr4     string   `json:"addr4"`
	State     string   `json:"state"`
	Collector bool     `json:"collector"`
	Candidate bool     `json:"candidate"`
	Reasons   []string `json:"reasons"`
	Rank      int      `json:"rank"`
	ReportAge float64  `json:"report_age_seconds"`
	Report    *struct {
		Generation uint64  `json:"generation"`
		Seq        uint64  `json:"seq"`
		Load1      float64 `json:"load1"`
	} `json:"report"`
}

// View is what a member knows of the cluster at one moment.
type View struct {
	Self  string `json:"self"`
	Nodes []Node `json:"nodes"`
}

// Candidates are the names of the candidates, best first.
func (v View) Candidates() []string {
	var out []string
	for _, n := range v.Nodes {
		if n.Candidate {
			out = append(out, n.Name)
		}
	}
	return out
}

// Alive are the names of the members in state alive, sorted.
func (v View) Alive() []string {
	var out []string
	for _, n := range v.Nodes {
		if n.State == "alive" {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Names are the names of every node listed, sorted.
func (v View) Names() []string {
	var out []string
	for _, n := range v.Nodes {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// Node returns the named node, or nil.
func (v View) Node(name string) *Node {
	for i := range v.Nodes {
		if v.Nodes[i].Name == name {
			return &v.Nodes[i]
		}
	}
	return nil
}

// getJSON GETs http://api+path from inside the host and decodes the JSON.
func (h *Host) getJSON(api, path string, v any) error {
	body, err := h.Get(api, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s%s on %s: %w", api, path, h.Name, err)
	}
	return nil
}

// Get fetches http://api+path from inside the host (2 s limit) and returns
// the body of a 200 answer.
func (h *Host) Get(api, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+api+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.HTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", h.Name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, fmt.Errorf("%s%s on %s: %w", api, path, h.Name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s%s on %s: %s: %s", api, path, h.Name, resp.Status, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// View asks the agent's API for every node it knows (/v1/nodes).
func (a *Agent) View() (View, error) {
	var v View
	return v, a.getJSON(AgentAPI, "/v1/nodes", &v)
}

// Top asks the agent's API for its n best candidates that answer a ping
// right now (/v1/top, what `peerload top` and `peerload ssh` use).
func (a *Agent) Top(n int) ([]string, error) {
	var v View
	if err := a.getJSON(AgentAPI, fmt.Sprintf("/v1/top?n=%d", n), &v); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(v.Nodes))
	for _, n := range v.Nodes {
		out = append(out, n.Name)
	}
	return out, nil
}

// Metrics scrapes http://api/metrics from inside the host; parse values
// with Metric.
func (h *Host) Metrics(api string) (Metrics, error) {
	body, err := h.Get(api, "/metrics")
	if err != nil {
		return nil, err
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, fmt.Errorf("%s/metrics on %s: %w", api, h.Name, err)
	}
	return Metrics(fams), nil
}

// Member is a lab member with an API that lists what it knows.
type Member interface {
	View() (View, error)
	String() string
}

// WaitView polls m's view until cond holds, failing the test with cond's
// last message (or the API error) after timeout (agenttest.WaitFor).
func WaitView(t testing.TB, timeout time.Duration, m Member, cond func(View) (bool, string)) {
	t.Helper()
	agenttest.WaitFor(t, timeout, "the view of "+m.String(), func() (bool, string) {
		v, err := m.View()
		if err != nil {
			return false, fmt.Sprintf("view of %s: %v", m, err)
		}
		return cond(v)
	})
}

// SeesAlive is a WaitView condition: every name in want is alive, and
// every other node listed is not (dead, left or absent).
func SeesAlive(want ...string) func(View) (bool, string) {
	want = slices.Sorted(slices.Values(want))
	return func(v View) (bool, string) {
		got := v.Alive()
		return slices.Equal(got, want), fmt.Sprintf("alive %v, want %v", got, want)
	}
}

// SeesCandidates is a WaitView condition: exactly want (in any order) are
// candidates.
func SeesCandidates(want ...string) func(View) (bool, string) {
	want = slices.Sorted(slices.Values(want))
	return func(v View) (bool, string) {
		got := slices.Sorted(slices.Values(v.Candidates()))
		return slices.Equal(got, want), fmt.Sprintf("candidates %v, want %v", got, want)
	}
}

// Names are the names of hosts.
func Names(hosts ...*Agent) []string {
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h.Name
	}
	return out
}
