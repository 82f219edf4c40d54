package gossip_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// memNet is an in-memory network for many memberlist instances in one
// process: packets arrive after a latency drawn per packet (a LAN's
// 0.1–0.5 ms by default), streams are synchronous pipes opened after one
// latency. A member that shut down drops what is sent to it, like a dead
// machine. It counts bytes as the wire would: every packet and stream
// write once, plus IPv4 and UDP (or TCP) headers.
type memNet struct {
	mu      sync.RWMutex
	nodes   map[string]*memTransport
	next    uint32
	latency func() time.Duration
	drop    atomic.Pointer[func(from, to string) bool]
	// watch, when set, sees the size of every packet sent (without
	// headers).
	watch atomic.Pointer[func(from, to string, size int)]
	// cut, when set, separates members as a partition does: packets and
	// new streams between the addresses it returns true for are lost.
	cut atomic.Pointer[func(from, to string) bool]
	// Wire is every byte sent, headers included.
	wire atomic.Uint64
	// overflow counts packets lost because the receiver's buffer was full.
	overflow atomic.Uint64
}

// ipUDPHeaders and ipTCPHeaders are the header bytes of one IPv4 packet.
const (
	ipUDPHeaders = 20 + 8
	ipTCPHeaders = 20 + 32 // TCP with timestamps
	tcpMSS       = 1448
)

func newMemNet() *memNet {
	return &memNet{
		nodes: map[string]*memTransport{},
		latency: func() time.Duration {
			return 100*time.Microsecond + rand.N(400*time.Microsecond)
		},
	}
}

// setDrop makes the network lose every packet for whose sender's and
// receiver's addresses drop returns true (nil: none).
func (n *memNet) setDrop(drop func(from, to string) bool) {
	if drop == nil {
		n.drop.Store(nil)
		return
	}
	n.drop.Store(&drop)
}

// setCut partitions the network: packets and stream dials between the
// addresses for which cut returns true are lost (nil heals it).
func (n *memNet) setCut(cut func(from, to string) bool) {
	if cut == nil {
		n.cut.Store(nil)
		return
	}
	n.cut.Store(&cut)
}

// cutOff reports whether a partition separates from and to.
func (n *memNet) cutOff(from, to string) bool {
	cut := n.cut.Load()
	return cut != nil && (*cut)(from, to)
}

// NewTransport is a transport at the next free address, 10.0.x.y:7946.
func (n *memNet) NewTransport() *memTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.next++
	ip := net.IPv4(10, 0, byte(n.next>>8), byte(n.next))
	t := &memTransport{net: n, ip: ip, port: 7946, addr: fmt.Sprintf("%s:7946", ip),
		packets: make(chan *memberlist.Packet, 1024), streams: make(chan net.Conn, 16), done: make(chan struct{})}
	n.nodes[t.addr] = t
	return t
}

type memTransport struct {
	net     *memNet
	ip      net.IP
	port    int
	addr    string
	packets chan *memberlist.Packet
	streams chan net.Conn
	done    chan struct{}
	once    sync.Once
	// sent is what this member put on the wire, headers included.
	sent atomic.Uint64
	// dials counts the streams (push/pulls) this member opened.
	dials atomic.Uint64
	// udpPackets, udpBytes and streamBytes are what this member handed
	// the network, headers not included.
	udpPackets, udpBytes, streamBytes atomic.Uint64
	// names are the node names packets were addressed to.
	names sync.Map
}

var _ memberlist.NodeAwareTransport = (*memTransport)(nil)

func (t *memTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) { return t.ip, t.port, nil }

func (t *memTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *memTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	now := time.Now()
	t.udpPackets.Add(1)
	t.udpBytes.Add(uint64(len(b)))
	if _, seen := t.names.Load(a.Name); !seen {
		t.names.Store(a.Name, true)
	}
	t.sent.Add(uint64(len(b) + ipUDPHeaders))
	t.net.wire.Add(uint64(len(b) + ipUDPHeaders))
	if watch := t.net.watch.Load(); watch != nil {
		(*watch)(t.addr, a.Addr, len(b))
	}
	t.net.mu.RLock()
	dest := t.net.nodes[a.Addr]
	t.net.mu.RUnlock()
	if drop := t.net.drop.Load(); dest == nil || (drop != nil && (*drop)(t.addr, a.Addr)) || t.net.cutOff(t.addr, a.Addr) {
		return now, nil // a packet into the void
	}
	p := &memberlist.Packet{Buf: append([]byte(nil), b...), From: &net.UDPAddr{IP: t.ip, Port: t.port}}
	time.AfterFunc(t.net.latency(), func() {
		p.Timestamp = time.Now()
		// A member that cannot keep up loses what its socket buffer
		// cannot hold, as a UDP socket does (and the simulation's memory
		// stays bounded).
		select {
		case dest.packets <- p:
		case <-dest.done:
		default:
			t.net.overflow.Add(1)
		}
	})
	return now, nil
}

func (t *memTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *memTransport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *memTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *memTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	t.dials.Add(1)
	t.net.mu.RLock()
	dest := t.net.nodes[a.Addr]
	t.net.mu.RUnlock()
	if dest == nil {
		return nil, errors.New("connection refused")
	}
	if t.net.cutOff(t.addr, a.Addr) {
		time.Sleep(timeout)
		return nil, errors.New("i/o timeout")
	}
	time.Sleep(3 * t.net.latency()) // the handshake
	local, remote := net.Pipe()
	select {
	case dest.streams <- &memConn{Conn: remote, t: dest}:
	case <-dest.done:
		return nil, errors.New("connection refused")
	case <-time.After(timeout):
		return nil, errors.New("connect timeout")
	}
	return &memConn{Conn: local, t: t}, nil
}

func (t *memTransport) Shutdown() error {
	t.once.Do(func() {
		close(t.done)
		t.net.mu.Lock()
		delete(t.net.nodes, t.addr)
		t.net.mu.Unlock()
	})
	return nil
}

// memConn counts a stream's writes as TCP segments.
type memConn struct {
	net.Conn
	t *memTransport
}

func (c *memConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	segs := (n + tcpMSS - 1) / tcpMSS
	c.t.streamBytes.Add(uint64(n))
	c.t.sent.Add(uint64(n + segs*ipTCPHeaders))
	c.t.net.wire.Add(uint64(n + segs*ipTCPHeaders))
	return n, err
}
