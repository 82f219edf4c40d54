package report

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// Meta is what rides in memberlist's node meta: small and static (it
// travels with every membership message, so load never goes here).
type Meta struct {
	Collector bool
	// Relays says the member takes part in the relay grid (gossip's
	// msgRelay and msgBatch). Members of builds before it do not: they get
	// every report whole and straight.
	Relays bool
	Addr4  netip.Addr
	Addr6  netip.Addr
	Pools  []string
	Roles  []string
	// HostKeys are the machine's ssh host public keys (agent/hostkeys's
	// encoding), so `peerload known-hosts` can vouch for every machine a
	// virtual name lands on.
	HostKeys []byte
}

// metaVersion is the version of the meta layout. 0.1.0 rejects meta of
// any other version and takes the member for a collector, which is never
// a candidate, so it stays 1 for as long as a release promises to run
// beside 0.1.0 (README, Compatibility): meta goes to every member, new
// and old alike, and cannot be negotiated. New fields go at the end.
const metaVersion = 1

// AppendMeta encodes m as: version, flags (1 collector, 2 relays), addr4
// (len+bytes), addr6 (len+bytes), pools and roles (count, then len+bytes
// each), then the host keys (uvarint length + bytes) when there are any
// or more fields follow. Fields are only ever added at the end: every
// release's decoder (0.1.0's too) ignores what follows the fields it
// knows, so older members read newer meta. It fails when the result does
// not fit memberlist's node meta.
func AppendMeta(c Meta) ([]byte, error) {
	b := []byte{metaVersion, 0}
	if c.Collector {
		b[1] |= 1
	}
	if c.Relays {
		b[1] |= 2
	}
	addr := func(ip netip.Addr) {
		if !ip.IsValid() {
			b = append(b, 0)
			return
		}
		s := ip.AsSlice()
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	addr(c.Addr4)
	addr(c.Addr6)
	for _, list := range [][]string{c.Pools, c.Roles} {
		if len(list) > 255 {
			return nil, fmt.Errorf("too many pools or roles")
		}
		b = append(b, byte(len(list)))
		for _, s := range list {
			if len(s) > 255 {
				return nil, fmt.Errorf("pool or role %q too long", s)
			}
			b = appendString(b, s, 255)
		}
	}
	if len(c.HostKeys) > 0 || len(unknownFields) > 0 {
		b = binary.AppendUvarint(b, uint64(len(c.HostKeys)))
		b = append(b, c.HostKeys...)
	}
	b = append(b, unknownFields...)
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("pools, roles, addresses and host keys take %d bytes of node meta, at most %d fit", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes what AppendMeta wrote; malformed input is an error,
// never a panic. Meta of a later version is read as far as this release
// knows its fields (a member is never taken for a collector for being
// newer), and what follows them is ignored.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v < metaVersion {
		return m, fmt.Errorf("meta version %d not supported", v)
	}
	flags := d.byte()
	m.Collector, m.Relays = flags&1 != 0, flags&2 != 0
	addr := func() netip.Addr {
		n := int(d.byte())
		if d.err != nil || n == 0 {
			return netip.Addr{}
		}
		if len(d.b) < n || (n != 4 && n != 16) {
			d.err = errTruncated
			return netip.Addr{}
		}
		ip, _ := netip.AddrFromSlice(d.b[:n])
		d.b = d.b[n:]
		return ip
	}
	m.Addr4 = addr()
	m.Addr6 = addr()
	for _, list := range []*[]string{&m.Pools, &m.Roles} {
		n := int(d.byte())
		for i := 0; i < n && d.err == nil; i++ {
			*list = append(*list, d.string(255))
		}
	}
	if d.err == nil && len(d.b) > 0 {
		n := int(d.uvarintMax(memberlist.MetaMaxSize))
		if d.err == nil && len(d.b) < n {
			d.err = errTruncated
		}
		if d.err == nil && n > 0 {
			m.HostKeys, d.b = append([]byte(nil), d.b[:n]...), d.b[n:]
		}
	}
	return m, d.err
}
