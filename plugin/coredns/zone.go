package peerload

import (
	"context"
	"net"
	"slices"
	"strings"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// zoneData is what the plugins after peerload serve of one zone, as the
// watcher last found it.
type zoneData struct {
	// soa is the SOA of negative answers: the zone's own when served,
	// else a synthesized one.
	soa *dns.SOA
	// served: the next plugin answers the zone's SOA authoritatively, so
	// it holds the zone's data (file, say).
	served bool
	// signed: that SOA came with an RRSIG, the zone data is signed
	// offline, and peerload's answers cannot join its NSEC chain.
	signed bool
	// chainless: nothing after peerload answered the zone's SOA at all
	// (no plugin, or one that left the reply to the server), so without
	// peerload the server fails the zone's apex; peerload answers it, and
	// the name server its made-up SOA names (see unservedApex). A plugin
	// that answers without authority (forward) keeps the apex.
	chainless bool
}

// apexKind says whether a virtual name is the apex of its zone, and where
// the apex's SOA and NS come from then.
type apexKind int

const (
	apexNone        apexKind = iota // the name is inside a zone
	apexServed                      // its own zone, served by the next plugin
	apexSynthesized                 // its own zone, made up by peerload
)

// The name server a synthesized apex names in its SOA and NS records is
// ns.dns.<apex>, which peerload answers with the server's own addresses,
// as CoreDNS's kubernetes plugin does for its zones.
const (
	nsLabel       = "ns.dns"
	nsParentLabel = "dns"
)

// soa is a copy (a plugin further out may change the reply) of the SOA
// of name's zone for a negative answer.
func (p *PeerLoad) soa(name string) dns.RR {
	s := *(*p.zoneData.Load())[p.zone[name]].soa
	return &s
}

// fallbackSerial is the serial of a synthesized SOA. It is fixed: nothing
// transfers this zone, and a serial that changed with every snapshot made
// the same zone look different from one answer to the next.
const fallbackSerial = 1

// fallbackSOA is the SOA of zone when no plugin after this one serves it:
// mname ns.dns.<zone>, negative TTL (minimum) the configured ttl.
func (p *PeerLoad) fallbackSOA(zone string) *dns.SOA {
	return &dns.SOA{
		Hdr:     hdr(zone, dns.TypeSOA, p.cfg.ttl),
		Ns:      dnsJoin(nsLabel, zone),
		Mbox:    dnsJoin("hostmaster", zone),
		Serial:  fallbackSerial,
		Refresh: 7200,
		Retry:   1800,
		Expire:  86400,
		Minttl:  p.cfg.ttl,
	}
}

// apexRRs are the SOA or NS record of a virtual name that is the apex of
// a zone peerload makes up.
func (p *PeerLoad) apexRRs(name, owner string, qtype uint16) []dns.RR {
	switch qtype {
	case dns.TypeSOA:
		s := *(*p.zoneData.Load())[name].soa
		s.Hdr.Name = owner
		return []dns.RR{&s}
	case dns.TypeNS:
		return []dns.RR{&dns.NS{Hdr: hdr(owner, dns.TypeNS, p.cfg.ttl), Ns: dnsJoin(nsLabel, name)}}
	}
	return nil
}

// nsAddrRRs answer ns.dns.<apex>: the addresses the server block listens
// on. ANY is answered as RFC 8482 allows: over UDP one RRset.
func (p *PeerLoad) nsAddrRRs(owner string, qtype uint16, tcp bool) []dns.RR {
	var out []dns.RR
	for _, ip := range *p.nsAddrs.Load() {
		switch v4 := ip.To4(); {
		case v4 != nil && (qtype == dns.TypeA || qtype == dns.TypeANY):
			out = append(out, &dns.A{Hdr: hdr(owner, dns.TypeA, p.cfg.ttl), A: v4})
		case v4 == nil && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
			out = append(out, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA, p.cfg.ttl), AAAA: ip})
		}
	}
	if qtype == dns.TypeANY && !tcp && len(out) > 0 {
		t := out[0].Header().Rrtype
		keep := out[:0]
		for _, rr := range out {
			if rr.Header().Rrtype == t {
				keep = append(keep, rr)
			}
		}
		out = keep
	}
	return out
}

// unservedApex finds the zone whose made-up SOA names qname, when no
// plugin after peerload answers for that zone and its apex is no virtual name
// (match handles those): qname is the apex itself (sub ""), its name
// server ns.dns.<zone> (sub nsLabel) or the empty non-terminal between
// them (sub nsParentLabel). The SOA peerload puts in its negative answers
// names ns.dns.<zone> as the zone's primary (RFC 1035 section 3.3.13), so
// the same server must answer for that name and for the zone's SOA and NS,
// not fail them.
func (p *PeerLoad) unservedApex(qname string) (zone, sub string, ok bool) {
	zd := *p.zoneData.Load()
	for _, z := range p.zones {
		if !zd[z].chainless || slices.Contains(p.names, z) {
			continue
		}
		switch qname {
		case z:
			return z, "", true
		case dnsJoin(nsLabel, z):
			return z, nsLabel, true
		case dnsJoin(nsParentLabel, z):
			return z, nsParentLabel, true
		}
	}
	return "", "", false
}

// serveZoneApex answers a query unservedApex matched: SOA and NS at the
// apex, the server's addresses at ns.dns.<zone>, NODATA with the SOA for
// everything else there; transfers are refused, as for a virtual name.
func (p *PeerLoad) serveZoneApex(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, state request.Request, zone, sub string) (int, error) {
	server := metrics.WithServer(ctx)
	qtype := state.QType()
	requestsTotal.WithLabelValues(server, qtypeLabel(qtype)).Inc()
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	owner := state.QName()
	tcp := qtype == dns.TypeANY && state.Proto() == "tcp"
	switch {
	case qtype == dns.TypeAXFR || qtype == dns.TypeIXFR:
		m.Rcode, m.Authoritative = dns.RcodeRefused, false
	case sub == nsLabel:
		m.Answer = p.nsAddrRRs(owner, qtype, tcp)
	case sub == "" && (qtype == dns.TypeSOA || qtype == dns.TypeNS):
		m.Answer = p.apexRRs(zone, owner, qtype)
	case sub == "" && qtype == dns.TypeANY:
		// RFC 8482, as for a virtual name: one RRset over UDP.
		m.Answer = p.apexRRs(zone, owner, dns.TypeSOA)
		if tcp {
			m.Answer = append(m.Answer, p.apexRRs(zone, owner, dns.TypeNS)...)
		}
	}
	outcome := outcomeZone
	switch {
	case m.Rcode == dns.RcodeRefused:
		outcome = outcomeRefused
	case len(m.Answer) == 0:
		outcome = outcomeNoData
		s := *(*p.zoneData.Load())[zone].soa
		m.Ns = []dns.RR{&s}
	}
	answersTotal.WithLabelValues(server, outcome).Inc()
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeSuccess, plugin.Error(pluginName, err)
	}
	return dns.RcodeSuccess, nil
}

// boundAddrs are the addresses a server block's clients reach it on: its
// listen addresses, or every interface's (loopback only when there is
// nothing else) when it listens on all of them.
func boundAddrs(sc *dnsserver.Config) []net.IP {
	var ips, loop []net.IP
	add := func(ip net.IP) {
		switch {
		case ip == nil || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast():
		case ip.IsLoopback():
			loop = append(loop, ip)
		default:
			ips = append(ips, ip)
		}
	}
	for _, h := range sc.ListenHosts {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip) // given explicitly: loopback too
			continue
		}
		addrs, err := net.InterfaceAddrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				add(n.IP)
			}
		}
	}
	if len(ips) == 0 {
		return loop
	}
	return ips
}

// refreshZones asks the next plugin for the SOA of every zone and
// publishes what it found, the synthesized SOA where it found nothing. It
// reports whether every zone had one. It runs off the answer path: the
// lookup goes through the rest of the chain.
func (p *PeerLoad) refreshZones() (all bool) {
	all = true
	prev := *p.zoneData.Load()
	zd := make(map[string]zoneData, len(p.zones))
	for _, z := range p.zones {
		d := p.chainZone(z)
		if d.soa == nil {
			all = false
			d.soa = p.fallbackSOA(z)
		}
		if d.signed && !prev[z].signed {
			log.Errorf("zone %s is signed in its zone data (its SOA has an RRSIG): the answers for %s cannot be "+
				"validated and its NSEC records deny them; serve the zone unsigned and sign it online with "+
				"the dnssec plugin (see the DNSSEC section of the README)", z, strings.Join(p.namesIn(z), ", "))
		}
		zd[z] = d
	}
	p.zoneData.Store(&zd)
	return all
}

// namesIn are the virtual names of zone z.
func (p *PeerLoad) namesIn(z string) []string {
	var out []string
	for _, n := range p.cfg.names {
		if p.zone[n] == z {
			out = append(out, n)
		}
	}
	return out
}

// chainZone asks the next plugin for the SOA of zone, with the DO bit so
// that a zone signed offline shows its RRSIG. A zone is served when the
// answer is an authoritative NOERROR holding the apex's SOA; the SOA's TTL
// is lowered to its MINIMUM (RFC 2308 section 3: the TTL of a negative
// answer).
func (p *PeerLoad) chainZone(zone string) (d zoneData) {
	if p.Next == nil {
		return zoneData{chainless: true}
	}
	defer func() {
		// The server recovers a panicking plugin for a query; this lookup
		// runs in our goroutine and must not take CoreDNS down.
		if r := recover(); r != nil {
			log.Warningf("SOA lookup of %s through the next plugin panicked: %v", zone, r)
			d = zoneData{}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), soaTimeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	q.SetEdns0(dns.DefaultMsgSize, true)
	w := nonwriter.New(loopbackWriter{})
	if _, err := p.Next.ServeDNS(ctx, w, q); err != nil || w.Msg == nil {
		return zoneData{chainless: true}
	}
	if w.Msg.Rcode != dns.RcodeSuccess || !w.Msg.Authoritative {
		return zoneData{}
	}
	for _, rr := range w.Msg.Answer {
		switch rr := rr.(type) {
		case *dns.SOA:
			if strings.EqualFold(rr.Hdr.Name, zone) {
				c := *rr
				c.Hdr.Ttl = min(c.Hdr.Ttl, c.Minttl)
				d.soa, d.served = &c, true
			}
		case *dns.RRSIG:
			if rr.TypeCovered == dns.TypeSOA {
				d.signed = true
			}
		}
	}
	if d.soa == nil {
		return zoneData{}
	}
	return d
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
