package gossip

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// countingTransport wraps the sockets transport (or, in simulations, an
// in-memory one) and counts what gossip sends, packets and streams
// alike, by kind (see kind.go), so /metrics and the benchmark can show the
// real cost per node (encryption and labels included) and what it goes to.
type countingTransport struct {
	memberlist.NodeAwareTransport
	// packets and bytes are what was sent of each kind: UDP packets and
	// their bytes, and for kindPushPull the bytes written on streams.
	packets  [numKinds]atomic.Uint64
	bytes    [numKinds]atomic.Uint64
	streams  chan net.Conn
	incoming chan *memberlist.Packet
	done     chan struct{}
	allow    []netip.Prefix
	refused  atomic.Uint64
	log      *slog.Logger
	// refusedFrom are the sources already logged, so a stranger that
	// keeps trying is one line; bounded against address scans.
	refusedMu   sync.Mutex
	refusedFrom map[netip.Addr]bool
}

// refuse counts a packet or stream from outside the allow list and logs
// its source the first time, so the refused side says why a join fails.
func (t *countingTransport) refuse(a net.Addr) {
	t.refused.Add(1)
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return
	}
	t.refusedMu.Lock()
	first := !t.refusedFrom[ap.Addr()] && len(t.refusedFrom) < 256
	t.refusedFrom[ap.Addr()] = true
	t.refusedMu.Unlock()
	if !first {
		return
	}
	t.log.Warn("refused gossip from outside the allow list", "from", ap.Addr())
}

// newCountingTransport wraps nt. With a non-empty allow list it also drops
// packets and streams from other sources: memberlist's CIDRsAllowed only
// stops others from joining, not from reading this member's state through a
// push/pull of their own.
func newCountingTransport(nt memberlist.NodeAwareTransport, allow []netip.Prefix, log *slog.Logger) *countingTransport {
	t := &countingTransport{NodeAwareTransport: nt, streams: make(chan net.Conn), incoming: make(chan *memberlist.Packet),
		done: make(chan struct{}), allow: allow, log: log, refusedFrom: map[netip.Addr]bool{}}
	go func() {
		for {
			select {
			case p := <-nt.PacketCh():
				if !t.allowed(p.From) {
					t.refuse(p.From)
					continue
				}
				select {
				case t.incoming <- p:
				case <-t.done:
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	go func() {
		for {
			select {
			case c := <-nt.StreamCh():
				if !t.allowed(c.RemoteAddr()) {
					t.refuse(c.RemoteAddr())
					c.Close()
					continue
				}
				select {
				case t.streams <- &countingConn{Conn: c, t: t}:
				case <-t.done:
					c.Close()
					return
				}
			case <-t.done:
				return
			}
		}
	}()
	return t
}

func (t *countingTransport) allowed(a net.Addr) bool {
	if len(t.allow) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return false
	}
	return t.allowedIP(ap.Addr().Unmap())
}

// allowedIP reports whether ip is inside the allow list (or there is none).
func (t *countingTransport) allowedIP(ip netip.Addr) bool {
	if len(t.allow) == 0 {
		return true
	}
	for _, p := range t.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// PacketCh hands memberlist the packets from allowed sources.
func (t *countingTransport) PacketCh() <-chan *memberlist.Packet { return t.incoming }

// StreamCh hands memberlist the incoming streams, wrapped so that what
// this member answers on them is counted too.
func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown stops the proxies and the wrapped transport. Until the wrapped
// transport has stopped, what its listeners still hand over is dropped:
// a listener blocked handing over a packet or stream would never see the
// shutdown, and the wrapped Shutdown waits for it forever.
func (t *countingTransport) Shutdown() error {
	close(t.done)
	stopped := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-t.NodeAwareTransport.PacketCh():
			case c := <-t.NodeAwareTransport.StreamCh():
				c.Close()
			case <-stopped:
				return
			}
		}
	}()
	err := t.NodeAwareTransport.Shutdown()
	close(stopped)
	<-drained
	return err
}

var _ memberlist.NodeAwareTransport = (*countingTransport)(nil)

// WriteTo is memberlist's packet without a node name: its own.
func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.count(kindProbe, len(b))
	return t.NodeAwareTransport.WriteTo(b, addr)
}

// WriteToAddress counts a packet under the kind send tagged its address
// with, and sends it with the tag removed.
func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	var k kind
	k, a.Name = untag(a.Name)
	t.count(k, len(b))
	return t.NodeAwareTransport.WriteToAddress(b, a)
}

func (t *countingTransport) count(k kind, n int) {
	t.packets[k].Add(1)
	t.bytes[k].Add(uint64(n))
}

// sent is what was sent of every kind so far.
func (t *countingTransport) sent() map[string]Traffic {
	out := make(map[string]Traffic, numKinds)
	for k := range numKinds {
		out[kindNames[k]] = Traffic{Packets: t.packets[k].Load(), Bytes: t.bytes[k].Load()}
	}
	return out
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NodeAwareTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, t: t}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

// countingConn counts bytes written on a stream (push/pull, fallback
// pings), whichever side dialled, as kindPushPull.
type countingConn struct {
	net.Conn
	t *countingTransport
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.t.bytes[kindPushPull].Add(uint64(n))
	return n, err
}

// Traffic is what gossip sent of one kind.
type Traffic struct {
	// Packets counts UDP packets (none for KindPushPull), Bytes their
	// bytes, or the bytes written on streams, as they leave the host.
	Packets uint64
	Bytes   uint64
}
