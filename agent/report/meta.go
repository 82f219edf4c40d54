package report

import (
	"fmt"
	"net/netip"

	"github.com/hashicorp/memberlist"
)

// Meta is what rides in memberlist's node meta: small and static (it
// travels with every membership message, so load never goes here).
type Meta struct {
	Collector bool
	// Relays says the member takes part in the relay grid (gossip's
	// msgRelay and msgBatch). Members of earlier releases do not: they get
	// every report whole and straight, like collectors.
	Relays bool
	Addr4  netip.Addr
	Addr6  netip.Addr
	Pools  []string
	Roles  []string
}

const metaVersion = 1

// AppendMeta encodes m as: version, flags (1 collector, 2 relays), addr4 (len+bytes), addr6
// (len+bytes), pools and roles (count, then len+bytes each). It fails when
// the result does not fit memberlist's node meta.
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
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("pools, roles and addresses take %d bytes of node meta, at most %d fit", len(b), memberlist.MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes what AppendMeta wrote; malformed input is an error,
// never a panic.
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	d := decoder{b: b}
	if v := d.byte(); d.err == nil && v != metaVersion {
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
	return m, d.err
}
