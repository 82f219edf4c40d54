package rfc2136

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/miekg/dns"
)

// BuildUpdate returns the one UPDATE message that atomically replaces name's
// A and AAAA RRsets in zone with addrs: both RRsets are deleted and the new
// records added in the same message, so a resolver never sees the name
// half-updated. An empty addrs only deletes. The message is unsigned; the
// updater signs it last.
func BuildUpdate(zone, name string, ttl uint32, addrs []netip.Addr) *dns.Msg {
	name = dns.CanonicalName(name)
	m := new(dns.Msg)
	m.SetUpdate(dns.CanonicalName(zone))
	m.RemoveRRset([]dns.RR{
		&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET}},
		&dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET}},
	})
	var add []dns.RR
	for _, a := range sortedAddrs(addrs) {
		if a.Is4() {
			add = append(add, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()})
		} else {
			add = append(add, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	if len(add) > 0 {
		m.Insert(add)
	}
	return m
}

// sortedAddrs returns addrs unmapped, deduplicated and sorted: the canonical
// form in which address sets are compared (order never matters).
func sortedAddrs(addrs []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if a.IsValid() {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return slices.Compact(out)
}

// sameSet reports whether a and b hold the same addresses, ignoring order.
func sameSet(a, b []netip.Addr) bool {
	return slices.Equal(sortedAddrs(a), sortedAddrs(b))
}

// Failure is a failed exchange with the DNS server, classified so the
// updater logs and counts it by reason.
type Failure struct {
	// Reason is a short label: an rcode name (REFUSED, NOTAUTH, SERVFAIL),
	// a TSIG error (BADSIG, BADKEY, BADTIME), "timeout", "network" or
	// "tsig-verify" (the answer's signature did not check out).
	Reason string
	Err    error
}

func (f *Failure) Error() string { return f.Err.Error() }
func (f *Failure) Unwrap() error { return f.Err }

// exchange sends m (signed with key when set) to server over TCP and
// classifies anything but NOERROR as a *Failure.
func exchange(ctx context.Context, server string, key *Key, m *dns.Msg, what string) (*dns.Msg, error) {
	c := &dns.Client{Net: "tcp"}
	if key != nil {
		key.sign(m, c)
	}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if r != nil && r.Rcode != dns.RcodeSuccess {
		reason := dns.RcodeToString[r.Rcode]
		if reason == "" {
			reason = fmt.Sprintf("RCODE%d", r.Rcode)
		}
		if t := r.IsTsig(); t != nil && t.Error != dns.RcodeSuccess {
			if s := dns.RcodeToString[int(t.Error)]; s != "" {
				reason = s
			} else {
				reason = fmt.Sprintf("TSIG%d", t.Error)
			}
		}
		return r, &Failure{Reason: reason, Err: fmt.Errorf("%s at %s: server answered %s", what, server, reason)}
	}
	if err != nil {
		reason := "network"
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
			reason = "timeout"
		case errors.Is(err, dns.ErrSig), errors.Is(err, dns.ErrTime), errors.Is(err, dns.ErrSecret), errors.Is(err, dns.ErrKeyAlg):
			reason = "tsig-verify"
		}
		return r, &Failure{Reason: reason, Err: fmt.Errorf("%s at %s: %w", what, server, err)}
	}
	return r, nil
}

// readName asks server directly (TCP, no recursion) for name's A and AAAA
// records and returns the addresses it holds.
func readName(ctx context.Context, server string, key *Key, name string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		m := new(dns.Msg)
		m.SetQuestion(dns.CanonicalName(name), qt)
		m.RecursionDesired = false
		r, err := exchange(ctx, server, key, m, "read "+dns.TypeToString[qt]+" "+name)
		if err != nil {
			var f *Failure
			if r != nil && r.Rcode == dns.RcodeNameError && errors.As(err, &f) {
				continue // NXDOMAIN: the name holds nothing yet
			}
			return nil, err
		}
		if !r.Authoritative {
			// A cache or a secondary that lags would make the resync
			// "repair" toward old data.
			return nil, fmt.Errorf("read %s %s: %s is not authoritative for it (no AA bit)", dns.TypeToString[qt], name, server)
		}
		for _, rr := range r.Answer {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A); ok && dns.CanonicalName(rr.Hdr.Name) == dns.CanonicalName(name) {
					out = append(out, a.Unmap())
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA); ok && dns.CanonicalName(rr.Hdr.Name) == dns.CanonicalName(name) {
					out = append(out, a)
				}
			}
		}
	}
	return sortedAddrs(out), nil
}
