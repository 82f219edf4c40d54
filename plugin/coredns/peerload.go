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
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"

	"github.com/peerload/peerload/agent/rank"
)

// PeerLoad is the plugin handler of one peerload block.
type PeerLoad struct {
	Next plugin.Handler

	cfg *config
	// names are cfg.names longest first, so a nested virtual name wins.
	names []string
	// zone is the SOA apex used for each name's negative answers; zones
	// are its distinct values.
	zone  map[string]string
	zones []string

	state atomic.Pointer[answerSet]
	// soas is the SOA of each zone in negative answers (by apex, always
	// holding every zone): the next plugin's when it serves one, else a
	// synthesized one. The watcher replaces it; ServeDNS only reads it.
	soas    atomic.Pointer[map[string]*dns.SOA]
	servers atomic.Pointer[[]string] // `server` label values for gauges
	// readiness is the watched source when it can tell it joined.
	readiness atomic.Pointer[readinessSource]
}

// snapshotSource is what the handler reads the cluster from; *agent.Agent
// is one, tests use synthetic snapshots.
type snapshotSource interface {
	Snapshot() *rank.Snapshot
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
		if !slices.Contains(p.zones, z) {
			p.zones = append(p.zones, z)
		}
	}
	soas := make(map[string]*dns.SOA, len(p.zones))
	for _, z := range p.zones {
		soas[z] = p.fallbackSOA(z)
	}
	p.soas.Store(&soas)
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
		order := na.v4.pick(na.top, buf[:0])
		rrs := make([]dns.A, len(order))
		m.Answer = make([]dns.RR, len(order))
		for k, i := range order {
			rrs[k] = dns.A{Hdr: hdr(owner, dns.TypeA, na.ttl), A: na.v4.ips[i]}
			m.Answer[k] = &rrs[k]
		}
	case dns.TypeAAAA:
		var buf [maxTop + 8]int
		order := na.v6.pick(na.top, buf[:0])
		rrs := make([]dns.AAAA, len(order))
		m.Answer = make([]dns.RR, len(order))
		for k, i := range order {
			rrs[k] = dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, na.ttl), AAAA: na.v6.ips[i]}
			m.Answer[k] = &rrs[k]
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

// soa is a copy (a plugin further out may change the reply) of the SOA
// of name's zone for a negative answer.
func (p *PeerLoad) soa(name string) dns.RR {
	s := *(*p.soas.Load())[p.zone[name]]
	return &s
}

// fallbackSerial is the serial of a synthesized SOA. It is fixed: nothing
// transfers this zone, and a serial that changed with every snapshot made
// the same zone look different from one answer to the next.
const fallbackSerial = 1

// fallbackSOA is the SOA of zone when no plugin after this one serves it:
// mname ns.<zone>, negative TTL (minimum) the configured ttl.
func (p *PeerLoad) fallbackSOA(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     hdr(zone, dns.TypeSOA, p.cfg.ttl),
		Ns:      dnsJoin("ns", zone),
		Mbox:    dnsJoin("hostmaster", zone),
		Serial:  fallbackSerial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  p.cfg.ttl,
	}
}

// refreshSOAs asks the next plugin for the SOA of every zone and publishes
// what it found, the synthesized SOA where it found nothing. It reports
// whether every zone had one. It runs off the answer path: the lookup goes
// through the rest of the chain.
func (p *PeerLoad) refreshSOAs() (all bool) {
	all = true
	soas := make(map[string]*dns.SOA, len(p.zones))
	for _, z := range p.zones {
		s := p.chainSOA(z)
		if s == nil {
			all = false
			s = p.fallbackSOA(z)
		}
		soas[z] = s
	}
	p.soas.Store(&soas)
	return all
}

// chainSOA is the SOA of zone as the next plugin answers it (an
// authoritative NOERROR answer holding the apex's SOA), its TTL lowered to
// its MINIMUM (RFC 2308 section 3: the TTL of a negative answer), or nil.
func (p *PeerLoad) chainSOA(zone string) (soa *dns.SOA) {
	if p.Next == nil {
		return nil
	}
	defer func() {
		// The server recovers a panicking plugin for a query; this lookup
		// runs in our goroutine and must not take CoreDNS down.
		if r := recover(); r != nil {
			log.Warningf("SOA lookup of %s through the next plugin panicked: %v", zone, r)
			soa = nil
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), soaTimeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	w := nonwriter.New(loopbackWriter{})
	if _, err := p.Next.ServeDNS(ctx, w, q); err != nil || w.Msg == nil {
		return nil
	}
	if w.Msg.Rcode != dns.RcodeSuccess || !w.Msg.Authoritative {
		return nil
	}
	for _, rr := range w.Msg.Answer {
		if s, ok := rr.(*dns.SOA); ok && strings.EqualFold(s.Hdr.Name, zone) {
			c := *s
			c.Hdr.Ttl = min(c.Hdr.Ttl, c.Minttl)
			return &c
		}
	}
	return nil
}

// loopbackWriter is the client of the watcher's own lookups: plugins may
// ask for the addresses, and nonwriter.Writer catches the reply before it
// reaches WriteMsg here.
type loopbackWriter struct{}

func (loopbackWriter) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53}
}
func (loopbackWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0}
}
func (loopbackWriter) WriteMsg(*dns.Msg) error     { return nil }
func (loopbackWriter) Write(b []byte) (int, error) { return len(b), nil }
func (loopbackWriter) Close() error                { return nil }
func (loopbackWriter) TsigStatus() error           { return nil }
func (loopbackWriter) TsigTimersOnly(bool)         {}
func (loopbackWriter) Hijack()                     {}

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
	set := buildAnswers(p.cfg, snap, p.state.Load())
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
// the latest snapshot), and every clockRefresh for what only the clock
// changes. A second goroutine keeps the negative answers' SOA current, so
// a slow plugin further down never delays a rebuild. stop ends both and
// waits.
func (p *PeerLoad) watch(src snapshotSource) (stop func()) {
	if r, ok := src.(readinessSource); ok {
		p.readiness.Store(&r)
	}
	ch, cancel := src.Subscribe()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(clockRefresh)
		defer tick.Stop()
		var last *rank.Snapshot
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
	})
	wg.Go(func() {
		for {
			wait := soaRefresh
			if !p.refreshSOAs() {
				wait = soaRetry
			}
			t := time.NewTimer(wait)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		cancel()
	}
}
