// Package peerload is a CoreDNS plugin that answers A, AAAA and TXT queries
// for a virtual name (e.g. cslab.example.edu) with the least-loaded machines
// of a peerload cluster. It runs a collector member of the cluster in the
// CoreDNS process and answers from precomputed state, never waiting on
// gossip.
package peerload

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent"
)

// PeerLoad is the plugin handler of one peerload block.
type PeerLoad struct {
	Next plugin.Handler

	cfg *config
	// names are cfg.names longest first, so a nested virtual name wins.
	names []string
	// zone is the SOA apex used for each name's negative answers.
	zone map[string]string

	state   atomic.Pointer[answerSet]
	servers atomic.Pointer[[]string] // `server` label values for gauges
	// readiness is the watched source when it can tell it joined.
	readiness atomic.Pointer[readinessSource]
}

// snapshotSource is what the handler reads the cluster from; *agent.Agent
// is one, tests use synthetic snapshots.
type snapshotSource interface {
	Snapshot() *agent.Snapshot
	Subscribe() (<-chan struct{}, func())
}

func newPeerLoad(cfg *config) *PeerLoad {
	p := &PeerLoad{cfg: cfg, zone: map[string]string{}}
	p.names = slices.Clone(cfg.names)
	slices.SortStableFunc(p.names, func(a, b string) int { return len(b) - len(a) })
	for _, n := range cfg.names {
		z := plugin.Zones(cfg.zones).Matches(n)
		if z == "" || z == "." {
			// A root server block has no zone of its own to speak for:
			// the name is its own apex.
			z = n
		}
		p.zone[n] = z
	}
	p.state.Store(emptyAnswerSet())
	p.servers.Store(&[]string{""})
	return p
}

// Name implements plugin.Handler.
func (p *PeerLoad) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (p *PeerLoad) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	if len(r.Question) == 0 || state.QClass() != dns.ClassINET {
		return plugin.NextOrFailure(p.Name(), p.Next, ctx, w, r)
	}
	qname := state.Name()
	name, sub, ok := p.match(qname)
	if !ok {
		return plugin.NextOrFailure(p.Name(), p.Next, ctx, w, r)
	}
	server := metrics.WithServer(ctx)
	qtype := state.QType()
	requestsTotal.WithLabelValues(server, qtypeLabel(qtype)).Inc()

	set := p.state.Load()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	owner := state.QName()

	var outcome string
	if sub == "" {
		outcome = p.answerName(m, set, name, owner, qtype)
	} else {
		outcome = p.answerNode(m, set, sub, owner, qtype)
	}
	switch outcome {
	case outcomeNXDomain:
		m.Rcode = dns.RcodeNameError
		fallthrough
	case outcomeNoData:
		m.Ns = []dns.RR{p.soa(set, name)}
	}
	answersTotal.WithLabelValues(server, outcome).Inc()

	if err := w.WriteMsg(m); err != nil {
		// The reply was attempted: the server must not write another one.
		return dns.RcodeSuccess, plugin.Error(pluginName, err)
	}
	return dns.RcodeSuccess, nil
}

// match finds the virtual name qname (lower-case) is, or is below; sub is
// the part in front of it ("" for the name itself).
func (p *PeerLoad) match(qname string) (name, sub string, ok bool) {
	for _, n := range p.names {
		if qname == n {
			return n, "", true
		}
		if len(qname) > len(n)+1 && strings.HasSuffix(qname, n) && qname[len(qname)-len(n)-1] == '.' {
			return n, qname[:len(qname)-len(n)-1], true
		}
	}
	return "", "", false
}

// answerName fills m with the answer for the virtual name itself and
// returns the outcome.
func (p *PeerLoad) answerName(m *dns.Msg, set *answerSet, name, owner string, qtype uint16) string {
	na := set.names[name]
	if na == nil {
		return outcomeNoData
	}
	// Every query allocates its records (a plugin further out may change
	// the reply), but in one block per type rather than one per record:
	// this path runs for every query, and fewer objects mean less GC.
	switch qtype {
	case dns.TypeA:
		var buf [maxTop + 8]int
		order := na.pick(buf[:0])
		rrs := make([]dns.A, 0, len(order))
		m.Answer = make([]dns.RR, 0, len(order))
		for _, i := range order {
			if a := na.hosts[i].a4; a != nil {
				rrs = append(rrs, dns.A{Hdr: hdr(owner, dns.TypeA, na.ttl), A: a})
				m.Answer = append(m.Answer, &rrs[len(rrs)-1])
			}
		}
	case dns.TypeAAAA:
		var buf [maxTop + 8]int
		order := na.pick(buf[:0])
		rrs := make([]dns.AAAA, 0, len(order))
		m.Answer = make([]dns.RR, 0, len(order))
		for _, i := range order {
			if a := na.hosts[i].a6; a != nil {
				rrs = append(rrs, dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, na.ttl), AAAA: a})
				m.Answer = append(m.Answer, &rrs[len(rrs)-1])
			}
		}
	case dns.TypeTXT:
		rrs := make([]dns.TXT, len(na.txt))
		m.Answer = make([]dns.RR, len(na.txt))
		for i, t := range na.txt {
			rrs[i] = dns.TXT{Hdr: hdr(owner, dns.TypeTXT, na.ttl), Txt: t}
			m.Answer[i] = &rrs[i]
		}
	}
	if len(m.Answer) == 0 {
		return outcomeNoData
	}
	return na.outcome
}

// answerNode fills m with the answer for <node>.<name>.
func (p *PeerLoad) answerNode(m *dns.Msg, set *answerSet, sub, owner string, qtype uint16) string {
	nd := set.nodes[sub]
	if nd == nil {
		if set.ents[sub] {
			return outcomeNoData
		}
		return outcomeNXDomain
	}
	ttl := p.cfg.ttl
	switch qtype {
	case dns.TypeA:
		if nd.a4 != nil {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: nd.a4})
		}
	case dns.TypeAAAA:
		if nd.a6 != nil {
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, ttl), AAAA: nd.a6})
		}
	case dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(owner, dns.TypeTXT, ttl), Txt: nd.txt})
	}
	if len(m.Answer) == 0 {
		return outcomeNoData
	}
	return outcomeNode
}

// soa is the synthesized SOA of name's zone for negative answers: apex the
// server block's zone, mname ns.<zone>, serial the snapshot time, negative
// TTL (minimum) the configured ttl.
func (p *PeerLoad) soa(set *answerSet, name string) dns.RR {
	z := p.zone[name]
	return &dns.SOA{
		Hdr:     hdr(z, dns.TypeSOA, p.cfg.ttl),
		Ns:      dnsJoin("ns", z),
		Mbox:    dnsJoin("hostmaster", z),
		Serial:  set.serial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  p.cfg.ttl,
	}
}

func dnsJoin(label, zone string) string {
	if zone == "." {
		return label + "."
	}
	return label + "." + zone
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// qtypeLabel bounds the qtype label to the known type names.
func qtypeLabel(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "other"
}

// publish builds the answers from snap and makes them the ones ServeDNS
// reads. Only the watcher goroutine (or a test) calls it.
func (p *PeerLoad) publish(snap *agent.Snapshot) {
	set := buildAnswers(p.cfg, snap, p.state.Load())
	p.state.Store(set)
	for _, s := range *p.servers.Load() {
		for _, n := range p.cfg.names {
			cnt := 0
			if na := set.names[n]; na != nil && na.outcome == outcomeCandidates {
				cnt = len(na.txt)
			}
			candidatesGauge.WithLabelValues(s, n).Set(float64(cnt))
		}
		membersGauge.WithLabelValues(s).Set(float64(set.alive))
	}
	p.observeAge(time.Now())
}

// observeAge sets the snapshot age gauge.
func (p *PeerLoad) observeAge(now time.Time) {
	set := p.state.Load()
	if set.built.IsZero() {
		return
	}
	age := now.Sub(set.built).Seconds()
	for _, s := range *p.servers.Load() {
		snapshotAgeGauge.WithLabelValues(s).Set(age)
	}
}

func (p *PeerLoad) setServers(s []string) { p.servers.Store(&s) }

// watch keeps the published answers current: it rebuilds them whenever src
// announces a new snapshot, and checks on a timer too (a coalesced
// notification is never lost for long). stop ends it and waits.
func (p *PeerLoad) watch(src snapshotSource) (stop func()) {
	if r, ok := src.(readinessSource); ok {
		p.readiness.Store(&r)
	}
	ch, cancel := src.Subscribe()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(refreshInterval)
		defer tick.Stop()
		var last *agent.Snapshot
		for {
			if snap := src.Snapshot(); snap != nil && snap != last {
				p.publish(snap)
				last = snap
			} else {
				p.observeAge(time.Now())
			}
			select {
			case <-done:
				return
			case _, ok := <-ch:
				if !ok {
					ch = nil
				}
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		cancel()
	}
}
