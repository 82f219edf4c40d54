package test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/test/lab"
)

// release010 is release 0.1.0's commit (tag v0.1.0).
const release010 = "e50cb2b"

// upgradeTimeout bounds one machine's way back into every answer after
// its agent restarted on a new release: the agent starts, joins (its seeds
// answer at once), and its first report reaches every collector straight
// and every agent within a relay period. A join broadcast lost on a busy
// machine is repaired by the next push/pull (30 s at LAN timings) or the
// greeting, so the deadline is above that.
const upgradeTimeout = 45 * time.Second

// TestLabRollingUpgrade upgrades a 10-machine lab one machine at a time
// through three releases, under DNS load: 0.1.0 (built from git), this
// tree (bin/) and the synthetic next release (-tags peerload_next: every
// version bumped, fields nobody knows appended everywhere). Each step
// stops a machine's agent and starts the next release's on the same state
// dir, then waits until every collector answers with it and every agent
// lists it as a candidate.
//
// It runs as one rolling pass rather than a matrix of pairs, so every mix
// occurs (a full matrix would take several times as long on a 2-core
// machine):
//
//  1. 0.1.0 → this tree on every agent, while the lab also has a 0.1.0,
//     a current and a next CoreDNS; the first agents go on to next, so
//     0.1.0, current and next agents run side by side. Everyone speaks
//     protocol 1, the 0.1.0 members' own.
//  2. The 0.1.0 CoreDNS is upgraded to this tree's: the members now speak
//     protocol 2, which next writes (framed reports and batches with
//     fields this tree does not know) and this tree reads. The remaining
//     agents go to next.
//  3. The current CoreDNS servers go to next: protocol 3.
//
// Throughout, every answer of every CoreDNS (A, top 16: every candidate)
// holds every machine except those being upgraded at the time, none is
// SERVFAIL or empty, the servers give the same set, and no member counts
// a message it could not read.
func TestLabRollingUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two releases and runs a lab")
	}
	lab.RequireRoot(t)
	old := lab.BuildRelease(t, "0.1.0", release010)
	next := lab.BuildTags(t, "next", "peerload_next")
	cur := lab.Release{Name: "current", Peerload: lab.BinPath(t, "peerload"), CoreDNS: lab.BinPath(t, "coredns")}
	start := time.Now()

	l := lab.New(t, lab.Options{PinNeighbors: true})
	agents := l.AddAgents("h", 10, lab.AgentOptions{Bin: old.Peerload})
	release := map[*lab.Agent]lab.Release{}
	for _, a := range agents {
		release[a] = old
	}
	all := slices.Sorted(slices.Values(lab.Names(agents...)))
	addrs := map[string]string{}
	for _, a := range agents {
		addrs[a.Addr.String()] = a.Name
	}
	dnsOld := l.AddCoreDNS("dnsold", lab.CoreDNSOptions{Top: 16, TTL: 5, Bin: old.CoreDNS})
	dnsCur := l.AddCoreDNS("dnscur", lab.CoreDNSOptions{Top: 16, TTL: 5, Bin: cur.CoreDNS})
	dnsNext := l.AddCoreDNS("dnsnext", lab.CoreDNSOptions{Top: 16, TTL: 5, Bin: next.CoreDNS})
	servers := []*lab.CoreDNS{dnsOld, dnsCur, dnsNext}
	client := l.AddHost("client")
	waitMembers(t, lab.StartupTimeout, members(agents), all)
	for _, c := range servers {
		waitAnswers(t, lab.StartupTimeout, client, c, addrs, all)
	}
	t.Logf("lab up in %s", time.Since(start).Round(time.Second))

	// Each server gets its own load, stopped before the server itself is
	// upgraded; every answer is judged against the machines up at the
	// time it was asked.
	var tr transitions
	loads := map[*lab.CoreDNS]*serverLoad{}
	for _, c := range servers {
		loads[c] = startLoad(client, c)
	}
	defer func() {
		for _, ld := range loads {
			ld.stop()
		}
	}()

	step := 0
	upgrade := func(a *lab.Agent, to lab.Release) {
		t.Helper()
		step++
		from := release[a]
		began := time.Now()
		tr.begin(a.Name, began)
		if err := a.Process.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		a.Process.Path = to.Peerload
		a.Process.Start()
		release[a] = to
		back := waitEverywhere(t, client, servers, agents, a, addrs, all)
		tr.end(a.Name, back)
		t.Logf("step %2d: %s %s -> %s, back everywhere after %s", step, a.Name, from.Name, to.Name, back.Sub(began).Round(10*time.Millisecond))
		checkReadable(t, agents, servers)
	}
	upgradeDNS := func(c *lab.CoreDNS, to lab.Release) {
		t.Helper()
		loads[c].stop()
		check(t, loads[c], &tr, addrs, all)
		delete(loads, c)
		if err := c.Process.Stop(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		c.Process.Path = to.CoreDNS
		c.Start()
		waitAnswers(t, upgradeTimeout, client, c, addrs, all)
		loads[c] = startLoad(client, c)
		t.Logf("%s -> %s", c.Name, to.Name)
	}

	// 1: 0.1.0 → current everywhere, the first agents on to next.
	for i, a := range agents {
		upgrade(a, cur)
		if i >= 4 {
			upgrade(agents[i-4], next)
		}
	}
	waitProtocol(t, agents[0].Host, lab.AgentAPI, 1)
	// 2: the last 0.1.0 member goes; next writes protocol 2 to current.
	upgradeDNS(dnsOld, cur)
	waitProtocol(t, agents[0].Host, lab.AgentAPI, 2)
	for _, a := range agents[6:] {
		upgrade(a, next)
	}
	waitProtocol(t, agents[0].Host, lab.AgentAPI, 2)
	// 3: next only.
	upgradeDNS(dnsOld, next)
	upgradeDNS(dnsCur, next)
	for _, a := range agents {
		waitProtocol(t, a.Host, lab.AgentAPI, 3)
	}
	for _, c := range servers {
		waitAnswers(t, upgradeTimeout, client, c, addrs, all)
	}
	checkReadable(t, agents, servers)
	for c, ld := range loads {
		ld.stop()
		check(t, ld, &tr, addrs, all)
		delete(loads, c)
	}
	if crashes := l.Crashes(); len(crashes) > 0 {
		t.Errorf("programs exited unexpectedly:\n%s", strings.Join(crashes, "\n"))
	}
	t.Logf("rolling upgrade of %d steps in %s", step, time.Since(start).Round(time.Second))
}

// waitAnswers waits until server answers VName with exactly the
// machines want.
func waitAnswers(t *testing.T, timeout time.Duration, client *lab.Host, server *lab.CoreDNS, addrs map[string]string, want []string) {
	t.Helper()
	agenttest.WaitFor(t, timeout, server.Name+" to answer every machine", func() (bool, string) {
		got, err := answerNames(client, server, addrs)
		return err == nil && slices.Equal(got, want), fmt.Sprintf("%s answers %v (%v), want %v", server.Name, got, err, want)
	})
}

// answerNames asks server for VName's A records and returns the machines
// they name, sorted.
func answerNames(client *lab.Host, server *lab.CoreDNS, addrs map[string]string) ([]string, error) {
	m, err := client.Lookup(server.Server(), lab.VName, dns.TypeA)
	if err != nil {
		return nil, err
	}
	if m.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("rcode %s", dns.RcodeToString[m.Rcode])
	}
	return namesOf(lab.AnswerAddrs(m), addrs), nil
}

func namesOf(as []string, addrs map[string]string) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		name, ok := addrs[a]
		if !ok {
			name = "?" + a
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// waitEverywhere waits until a restarted agent is back: every server
// answers with every machine, all of them with the same set, and every
// agent lists every machine as a candidate. It returns when that was
// first seen.
func waitEverywhere(t *testing.T, client *lab.Host, servers []*lab.CoreDNS, agents []*lab.Agent, a *lab.Agent, addrs map[string]string, all []string) time.Time {
	t.Helper()
	agenttest.WaitFor(t, upgradeTimeout, a.Name+" to be a candidate everywhere", func() (bool, string) {
		for _, c := range servers {
			if got, err := answerNames(client, c, addrs); err != nil || !slices.Equal(got, all) {
				return false, fmt.Sprintf("%s answers %v (%v)", c.Name, got, err)
			}
		}
		for _, o := range agents {
			v, err := o.View()
			if err != nil {
				return false, err.Error()
			}
			if got := slices.Sorted(slices.Values(v.Candidates())); !slices.Equal(got, all) {
				return false, fmt.Sprintf("%s lists candidates %v", o.Name, got)
			}
		}
		return true, ""
	})
	return time.Now()
}

// waitProtocol waits until the member whose metrics are at api on h
// speaks protocol want (peerload_gossip_protocol): a member learns that
// another left within memberlist's gossip of the leave.
func waitProtocol(t *testing.T, h *lab.Host, api string, want int) {
	t.Helper()
	agenttest.WaitFor(t, upgradeTimeout, fmt.Sprintf("%s to speak protocol %d", h.Name, want), func() (bool, string) {
		m, err := h.Metrics(api)
		if err != nil {
			return false, err.Error()
		}
		got := m.Value("peerload_gossip_protocol")
		return got == float64(want), fmt.Sprintf("%s speaks protocol %v", h.Name, got)
	})
}

// checkReadable fails the test when a running member counted a message it
// could not read (peerload_reports_received_total{result="invalid"} or
// "unknown", since its start): a newer member wrote something an older
// one does not read.
func checkReadable(t *testing.T, agents []*lab.Agent, servers []*lab.CoreDNS) {
	t.Helper()
	type scrape struct {
		h   *lab.Host
		api string
	}
	var all []scrape
	for _, a := range agents {
		all = append(all, scrape{a.Host, lab.AgentAPI})
	}
	for _, c := range servers {
		all = append(all, scrape{c.Host, lab.CoreDNSMetrics})
	}
	for _, s := range all {
		m, err := s.h.Metrics(s.api)
		if err != nil {
			t.Errorf("metrics of %s: %v", s.h.Name, err)
			continue
		}
		for _, result := range []string{"invalid", "unknown"} {
			if n := m.Value("peerload_reports_received_total", "result", result); n > 0 {
				t.Errorf("%s counted %v messages %s", s.h.Name, n, result)
			}
		}
	}
}

// transitions are the times each machine was being upgraded: from the
// stop of its old agent until it was seen back everywhere.
type transitions struct {
	mu      sync.Mutex
	windows []window
}

type window struct {
	name       string
	from, till time.Time
}

func (tr *transitions) begin(name string, at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.windows = append(tr.windows, window{name: name, from: at})
}

func (tr *transitions) end(name string, at time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := range tr.windows {
		if tr.windows[i].name == name && tr.windows[i].till.IsZero() {
			tr.windows[i].till = at
		}
	}
}

// upgrading reports whether name was being upgraded at some moment of
// [from, till].
func (tr *transitions) upgrading(name string, from, till time.Time) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, w := range tr.windows {
		if w.name == name && !till.Before(w.from) && (w.till.IsZero() || !from.After(w.till)) {
			return true
		}
	}
	return false
}

// serverLoad is a steady A query load on one server until stopped.
type serverLoad struct {
	server *lab.CoreDNS
	cancel context.CancelFunc
	done   chan struct{}
	res    lab.LoadResult
	err    error
}

// startLoad sends server 100 queries a second (a stub resolver's two
// tries each) until stop.
func startLoad(client *lab.Host, server *lab.CoreDNS) *serverLoad {
	ctx, cancel := context.WithCancel(context.Background())
	ld := &serverLoad{server: server, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(ld.done)
		ld.res, ld.err = client.RunDNSLoad(ctx, lab.DNSLoad{Server: server.Server(), Qname: lab.VName, Qtype: dns.TypeA,
			Rate: 100, Count: 100 * 3600, Tries: 2, Sockets: 4})
	}()
	return ld
}

func (ld *serverLoad) stop() {
	ld.cancel()
	<-ld.done
}

// check judges every answer of a stopped load: no failure or empty
// answer, and every machine that was not being upgraded while the query
// was in flight is in it.
func check(t *testing.T, ld *serverLoad, tr *transitions, addrs map[string]string, all []string) {
	t.Helper()
	if ld.err != nil && !errors.Is(ld.err, context.Canceled) {
		t.Errorf("load on %s: %v", ld.server.Name, ld.err)
	}
	t.Logf("load on %s: %s", ld.server.Name, ld.res)
	bad := 0
	for _, a := range ld.res.Answers {
		if a.Rcode < 0 && a.Err != nil && errors.Is(a.Err, context.Canceled) {
			continue
		}
		got := namesOf(a.Addrs, addrs)
		var missing []string
		for _, name := range all {
			if !slices.Contains(got, name) && !tr.upgrading(name, a.Sent, a.Sent.Add(a.RTT)) {
				missing = append(missing, name)
			}
		}
		if a.Rcode != dns.RcodeSuccess || len(missing) > 0 || len(got) > len(all) {
			if bad++; bad <= 5 {
				t.Errorf("%s at %s: rcode %d, answer %v, missing %v (%v)", ld.server.Name, a.Sent.Format("15:04:05.000"), a.Rcode, got, missing, a.Err)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d bad answers in all", ld.server.Name, bad)
	}
}
