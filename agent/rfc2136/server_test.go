package rfc2136

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// zoneServer is a tiny in-process primary for one zone: it answers A/AAAA
// queries from its records and applies UPDATEs signed with its key,
// answering NOTAUTH (BADSIG/BADKEY) for bad signatures like BIND does.
type zoneServer struct {
	Addr string
	zone string
	srv  *dns.Server

	mu      sync.Mutex
	records map[string][]netip.Addr // name -> addresses
	ttls    map[string]uint32
	updates []*dns.Msg
	rcode   int // forced answer to updates (0: apply them)
	// notAuth answers queries without the AA bit, like a cache or a
	// secondary that is not authoritative.
	notAuth bool
}

func startZoneServer(t *testing.T, zone string, key *Key) *zoneServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zoneServer{Addr: l.Addr().String(), zone: dns.CanonicalName(zone), records: map[string][]netip.Addr{}, ttls: map[string]uint32{}}
	z.srv = &dns.Server{Listener: l, Net: "tcp", Handler: z,
		MsgAcceptFunc: func(dh dns.Header) dns.MsgAcceptAction {
			// The default accept func answers UPDATE with NOTIMP.
			if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate {
				return dns.MsgAccept
			}
			return dns.DefaultMsgAcceptFunc(dh)
		}}
	if key != nil {
		z.srv.TsigSecret = map[string]string{key.Name: key.Secret}
	}
	started := make(chan struct{})
	z.srv.NotifyStartedFunc = func() { close(started) }
	go z.srv.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("zone server did not start")
	}
	t.Cleanup(func() { z.srv.Shutdown() })
	return z
}

func (z *zoneServer) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	z.mu.Lock()
	m.Authoritative = !z.notAuth // a primary answers for its own zone
	z.mu.Unlock()
	if t := r.IsTsig(); t != nil {
		if err := w.TsigStatus(); err != nil {
			m.Rcode = dns.RcodeNotAuth
			tsigErr := dns.RcodeBadSig
			if err == dns.ErrSecret {
				tsigErr = dns.RcodeBadKey
			}
			m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
			m.Extra[len(m.Extra)-1].(*dns.TSIG).Error = uint16(tsigErr)
			w.WriteMsg(m) // unsigned MAC: the client cannot verify it
			return
		}
		m.SetTsig(t.Hdr.Name, t.Algorithm, 300, time.Now().Unix())
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	switch r.Opcode {
	case dns.OpcodeUpdate:
		z.updates = append(z.updates, r.Copy())
		if z.rcode != 0 {
			m.Rcode = z.rcode
			break
		}
		for _, rr := range r.Ns {
			h := rr.Header()
			name := dns.CanonicalName(h.Name)
			switch {
			case h.Class == dns.ClassANY: // delete RRset
				keep := z.records[name][:0:0]
				for _, a := range z.records[name] {
					if (h.Rrtype == dns.TypeA) != a.Is4() {
						keep = append(keep, a)
					}
				}
				z.records[name] = keep
			case h.Class == dns.ClassINET:
				switch rr := rr.(type) {
				case *dns.A:
					a, _ := netip.AddrFromSlice(rr.A)
					z.records[name] = append(z.records[name], a.Unmap())
				case *dns.AAAA:
					a, _ := netip.AddrFromSlice(rr.AAAA)
					z.records[name] = append(z.records[name], a)
				}
				z.ttls[name] = h.Ttl
			}
		}
	default:
		q := r.Question[0]
		name := dns.CanonicalName(q.Name)
		for _, a := range z.records[name] {
			if a.Is4() && q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: z.ttls[name]}, A: a.AsSlice()})
			}
			if a.Is6() && q.Qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: z.ttls[name]}, AAAA: a.AsSlice()})
			}
		}
	}
	w.WriteMsg(m)
}

// Records returns what the server holds for name, sorted.
func (z *zoneServer) Records(name string) []netip.Addr {
	z.mu.Lock()
	defer z.mu.Unlock()
	return sortedAddrs(z.records[dns.CanonicalName(name)])
}

// Set replaces name's records behind the updater's back (a hand edit).
func (z *zoneServer) Set(name string, a []netip.Addr) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records[dns.CanonicalName(name)] = a
}

// Updates is how many UPDATE messages arrived.
func (z *zoneServer) Updates() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return len(z.updates)
}

// LastUpdate is the last UPDATE message that arrived.
func (z *zoneServer) LastUpdate() *dns.Msg {
	z.mu.Lock()
	defer z.mu.Unlock()
	if len(z.updates) == 0 {
		return nil
	}
	return z.updates[len(z.updates)-1]
}

// Fail makes updates answer rcode (0 applies them again).
func (z *zoneServer) Fail(rcode int) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.rcode = rcode
}
