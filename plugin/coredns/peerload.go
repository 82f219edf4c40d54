// Package peerload is a CoreDNS plugin that answers A, AAAA and TXT queries
// for a virtual name (e.g. cslab.example.edu) with the least-loaded machines
// of a peerload cluster. It runs a collector member of the cluster in the
// CoreDNS process and answers from precomputed state, never waiting on
// gossip.
package peerload

import (
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/watch"
)

// PeerLoad is the plugin handler of one peerload block.
type PeerLoad struct {
	Next plugin.Handler

	cfg *config
	// names are cfg.names longest first, so a nested virtual name wins.
	names []string
	// zone is the apex of each name's zone (a name may be its own apex);
	// zones are its distinct values.
	zone  map[string]string
	zones []string

	state atomic.Pointer[answerSet]
	// zoneData is what the plugins after this one serve of each zone (by
	// apex, always holding every zone). The watcher replaces it; ServeDNS
	// only reads it.
	zoneData atomic.Pointer[map[string]zoneData]
	// nsAddrs are the addresses of the name server a synthesized apex
	// names: the server block's (see boundAddrs).
	nsAddrs atomic.Pointer[[]net.IP]
	servers atomic.Pointer[[]string] // `server` label values for gauges
	// readiness is the watched source when it can tell it joined.
	readiness atomic.Pointer[readinessSource]
	// herd counts what the answers hand out (nil with `herd off`). turn
	// rotates the answers' order (see hostGroups). counts are the
	// watcher's (see handCount); handed is set by the first answer after
	// the watcher last flushed them, which kick tells it.
	herd   *herd.Herd
	turn   atomic.Uint32
	counts handCounts
	handed atomic.Bool
	kick   chan struct{}
}

// snapshotSource is what the handler reads the cluster from; *agent.Agent
// is one, tests use synthetic snapshots.
type snapshotSource = watch.Source

func newPeerLoad(cfg *config) *PeerLoad {
	p := &PeerLoad{cfg: cfg, zone: map[string]string{}, counts: handCounts{}, kick: make(chan struct{}, 1)}
	if cfg.herd {
		p.herd = herd.New(herd.Config{})
	}
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
		if !slices.Contains(p.zones, z) {
			p.zones = append(p.zones, z)
		}
	}
	zd := make(map[string]zoneData, len(p.zones))
	for _, z := range p.zones {
		zd[z] = zoneData{soa: p.fallbackSOA(z)}
	}
	p.zoneData.Store(&zd)
	p.nsAddrs.Store(&[]net.IP{})
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
	name, sub, ok := p.match(state.Name())
	if !ok && r.Opcode == dns.OpcodeQuery {
		if zone, zsub, ok := p.unservedApex(state.Name()); ok {
			return p.serveZoneApex(ctx, w, r, state, zone, zsub)
		}
	}
	if !ok || (r.Opcode != dns.OpcodeQuery && r.Opcode != dns.OpcodeNotify) {
		return plugin.NextOrFailure(p.Name(), p.Next, ctx, w, r)
	}
	qtype := state.QType()
	set := p.state.Load()
	// A name that is the apex of its zone: when the next plugin serves the
	// zone, what peerload does not own comes from there.
	var ap apexKind
	if p.zone[name] == name {
		ap = apexSynthesized
		if (*p.zoneData.Load())[name].served {
			ap = apexServed
			if !p.owns(set, sub, qtype, r.Opcode) {
				return plugin.NextOrFailure(p.Name(), p.Next, ctx, w, r)
			}
		}
	}
	server := metrics.WithServer(ctx)
	requestsTotal.WithLabelValues(server, qtypeLabel(qtype)).Inc()

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	owner := state.QName()
	// Only ANY answers differ by transport (and finding it costs).
	tcp := qtype == dns.TypeANY && state.Proto() == "tcp"

	var outcome string
	switch {
	case r.Opcode == dns.OpcodeNotify:
		outcome = outcomeNotify
		if ap == apexNone || sub != "" {
			// Not a zone: BIND answers NOTAUTH. The apex of a zone
			// peerload makes up is acknowledged, as a primary does.
			m.Rcode, m.Authoritative = dns.RcodeNotAuth, false
		}
	case qtype == dns.TypeAXFR || qtype == dns.TypeIXFR:
		// As file does without a transfer plugin allowing it: the answers
		// change every few seconds and are no zone to copy.
		outcome = outcomeRefused
		m.Rcode, m.Authoritative = dns.RcodeRefused, false
	case sub == "":
		outcome = p.answerName(m, set, name, owner, qtype, ap, tcp, server)
	default:
		outcome = p.answerNode(m, set, sub, owner, qtype, ap, tcp)
	}
	switch outcome {
	case outcomeNXDomain:
		m.Rcode = dns.RcodeNameError
		fallthrough
	case outcomeNoData:
		m.Ns = []dns.RR{p.soa(name)}
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

// owns reports whether peerload answers this query at a virtual name that
// is the apex of a zone the next plugin serves: the addresses and TXT of
// the name (and ANY), and its machines. SOA, NS and every other type at
// the apex, names below it that are no machine (its name servers, say),
// transfers and NOTIFY are the zone's.
func (p *PeerLoad) owns(set *answerSet, sub string, qtype uint16, opcode int) bool {
	if opcode != dns.OpcodeQuery || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		return false
	}
	if sub == "" {
		return qtype == dns.TypeA || qtype == dns.TypeAAAA || qtype == dns.TypeTXT || qtype == dns.TypeANY
	}
	return set.nodes[sub] != nil || set.ents[sub]
}

// answerName fills m with the answer for the virtual name itself and
// returns the outcome.
func (p *PeerLoad) answerName(m *dns.Msg, set *answerSet, name, owner string, qtype uint16, ap apexKind, tcp bool, server string) string {
	synth := ap == apexSynthesized
	if synth && (qtype == dns.TypeSOA || qtype == dns.TypeNS) {
		m.Answer = p.apexRRs(name, owner, qtype)
		return outcomeZone
	}
	na := set.names[name]
	switch {
	case qtype == dns.TypeANY:
		// RFC 8482: over UDP one RRset, the addresses first; over TCP
		// all of them.
		for _, t := range [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSOA, dns.TypeNS} {
			switch {
			case len(m.Answer) > 0 && !tcp:
			case t == dns.TypeSOA || t == dns.TypeNS:
				if synth {
					m.Answer = append(m.Answer, p.apexRRs(name, owner, t)...)
				}
			case na != nil:
				m.Answer = append(m.Answer, p.nameRRs(na, owner, t, server)...)
			}
		}
	case na != nil:
		m.Answer = p.nameRRs(na, owner, qtype, server)
	}
	switch {
	case len(m.Answer) == 0:
		return outcomeNoData
	case na == nil:
		return outcomeZone
	}
	return na.outcome
}

// nameRRs are the virtual name's records of type qtype (A, AAAA or TXT)
// for a query to server. The machines of an address answer are handed
// out: the herd and handed_out_total count them. A client that asks for
// both families (getaddrinfo) logs in once, so AAAA answers count only
// where no machine has an IPv4 address.
func (p *PeerLoad) nameRRs(na *nameAnswer, owner string, qtype uint16, server string) []dns.RR {
	// Every query allocates its records (a plugin further out may change
	// the reply), but in one block per type rather than one per record:
	// this path runs for every query, and fewer objects mean less GC.
	// The order pick returns is on the heap too: as arrays sized for the
	// largest top in this frame, they made the query's goroutine outgrow
	// its first stack on most queries, and growing and copying stacks cost
	// a large share of the throughput (BENCHMARKS.md, DNS).
	var out []dns.RR
	switch qtype {
	case dns.TypeA:
		order := na.v4.pick(na.top, p.turn.Add(1))
		p.handedOut(na.v4.handedOut(order, server))
		rrs := make([]dns.A, len(order))
		out = make([]dns.RR, len(order))
		for k, i := range order {
			rrs[k] = dns.A{Hdr: hdr(owner, dns.TypeA, na.ttl), A: na.v4.ips[i]}
			out[k] = &rrs[k]
		}
	case dns.TypeAAAA:
		order := na.v6.pick(na.top, p.turn.Add(1))
		if len(na.v4.ips) == 0 {
			p.handedOut(na.v6.handedOut(order, server))
		}
		rrs := make([]dns.AAAA, len(order))
		out = make([]dns.RR, len(order))
		for k, i := range order {
			rrs[k] = dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, na.ttl), AAAA: na.v6.ips[i]}
			out[k] = &rrs[k]
		}
	case dns.TypeTXT:
		rrs := make([]dns.TXT, len(na.txt))
		out = make([]dns.RR, len(na.txt))
		for i, t := range na.txt {
			rrs[i] = dns.TXT{Hdr: hdr(owner, dns.TypeTXT, na.ttl), Txt: t}
			out[i] = &rrs[i]
		}
	}
	return out
}

// answerNode fills m with the answer for <node>.<name>.
func (p *PeerLoad) answerNode(m *dns.Msg, set *answerSet, sub, owner string, qtype uint16, ap apexKind, tcp bool) string {
	nd := set.nodes[sub]
	if nd == nil && ap == apexSynthesized {
		switch sub {
		case nsLabel:
			m.Answer = p.nsAddrRRs(owner, qtype, tcp)
			if len(m.Answer) == 0 {
				return outcomeNoData
			}
			return outcomeZone
		case nsParentLabel:
			return outcomeNoData
		}
	}
	if nd == nil {
		if set.ents[sub] {
			return outcomeNoData
		}
		return outcomeNXDomain
	}
	ttl := p.cfg.ttl
	for _, t := range [...]uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
		if qtype != t && qtype != dns.TypeANY {
			continue
		}
		if qtype == dns.TypeANY && len(m.Answer) > 0 && !tcp {
			break // RFC 8482, as for the name
		}
		switch {
		case t == dns.TypeA && nd.a4 != nil:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(owner, dns.TypeA, ttl), A: nd.a4})
		case t == dns.TypeAAAA && nd.a6 != nil:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, ttl), AAAA: nd.a6})
		case t == dns.TypeTXT:
			m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr(owner, dns.TypeTXT, ttl), Txt: nd.txt})
		}
	}
	if len(m.Answer) == 0 {
		return outcomeNoData
	}
	return outcomeNode
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
func (p *PeerLoad) publish(snap *rank.Snapshot) {
	set := buildAnswers(p.cfg, snap, p.state.Load(), answerInputs{herd: p.herd, now: time.Now(), servers: *p.servers.Load(), counts: p.counts})
	p.state.Store(set)
	for _, s := range *p.servers.Load() {
		for _, n := range p.cfg.names {
			cnt := 0
			if na := set.names[n]; na != nil && na.outcome == outcomeCandidates {
				cnt = na.candidates
			}
			candidatesGauge.WithLabelValues(s, n).Set(float64(cnt))
		}
		membersGauge.WithLabelValues(s).Set(float64(set.alive))
	}
	p.observeAge(time.Now())
}

// observeAge sets the snapshot age gauge: how old the newest report the
// answers hold is at now (how fresh the data is). It stays unset until the
// first report arrives.
func (p *PeerLoad) observeAge(now time.Time) {
	set := p.state.Load()
	if set.newest.IsZero() {
		return
	}
	age := max(now.Sub(set.newest).Seconds(), 0)
	for _, s := range *p.servers.Load() {
		snapshotAgeGauge.WithLabelValues(s).Set(age)
	}
}

func (p *PeerLoad) setServers(s []string) { p.servers.Store(&s) }

// handedOut tells the watcher, once per flush, that answers counted what
// they handed out.
func (p *PeerLoad) handedOut(counted bool) {
	if counted && !p.handed.Load() && !p.handed.Swap(true) {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// flush moves what the answers counted into handed_out_total and the herd.
// Only the watcher (or a test) calls it.
func (p *PeerLoad) flush(now time.Time) {
	p.handed.Store(false)
	p.counts.flush(p.herd, now)
}

// sleep waits d (nothing when d <= 0) and reports false when done closed
// first.
func sleep(done <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return false
	case <-t.C:
		return true
	}
}

// Timings of the watcher.
const (
	// clockRefresh is how often the watcher rebuilds without being told
	// of a change, for what depends on the clock alone: the age words of
	// TXT answers and the snapshot age gauge. Changes of membership,
	// candidates or reports arrive by notification.
	clockRefresh = 5 * time.Second
	// soaRefresh is how often the zones' SOA is asked of the next plugin,
	// soaRetry how soon again when it served none.
	soaRefresh = time.Minute
	soaRetry   = 10 * time.Second
	// soaTimeout bounds one SOA lookup through the chain.
	soaTimeout = 2 * time.Second
)

// watch keeps the published answers current: it rebuilds them whenever src
// announces a change (a coalesced notification still ends in a read of
// the latest snapshot), after answers handed machines out (at most every
// herd.ChangeInterval, when it also moves their counts into the metric
// and the herd), and every clockRefresh for what only the clock changes.
// A second goroutine keeps what the zones hold (the negative answers'
// SOA, whether the next plugin serves a zone) current, so a slow plugin
// further down never delays a rebuild. stop ends both and waits.
func (p *PeerLoad) watch(src snapshotSource) (stop func()) {
	if r, ok := src.(readinessSource); ok {
		p.readiness.Store(&r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := ctx.Done()
	var wg sync.WaitGroup
	wg.Go(func() {
		var last *rank.Snapshot
		var flushed time.Time
		// Wake for what may change the answers: a notification, the
		// clock, or (with a herd) answers that handed machines out.
		// Their counts go to the metric and the herd at most every
		// ChangeInterval, with or without a herd.
		watch.Run(ctx, src, watch.Options{Every: clockRefresh, Signal: p.kick}, func(why watch.Why) time.Time {
			rerank := false
			if why == watch.Signal {
				if !sleep(done, herd.ChangeInterval-time.Since(flushed)) {
					return time.Time{}
				}
				flushed = time.Now()
				p.flush(flushed)
				if p.herd == nil {
					return time.Time{}
				}
				rerank = true
			}
			if snap := src.Snapshot(); snap != nil && (snap != last || rerank) {
				p.publish(snap)
				last = snap
			} else {
				p.observeAge(time.Now())
			}
			return time.Time{}
		})
	})
	// The first look at the zones is done before watch returns (in
	// OnStartup, before the server answers): a name that is the apex of a
	// zone file serves answers SOA from that file from the first query.
	all := p.refreshZones()
	wg.Go(func() {
		for {
			wait := soaRefresh
			if !all {
				wait = soaRetry
			}
			t := time.NewTimer(wait)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
			all = p.refreshZones()
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}
