package gossip

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"github.com/hashicorp/memberlist"
)

// sockets is memberlist's transport on real sockets: UDP for packets and
// TCP for streams, on one address and port. It does what
// memberlist.NetTransport does, with one difference. NetTransport reads
// every packet into a fresh 64 KB buffer and hands that buffer on, so
// packet buffers were nearly all of an idle agent's garbage, growing with
// the cluster, and each packet waiting in memberlist's queues held 64 KB.
// sockets reads into one buffer and hands on a copy of the packet's own
// length.
type sockets struct {
	ip      net.IP // bound to, possibly unspecified
	udp     *net.UDPConn
	tcp     *net.TCPListener
	packets chan *memberlist.Packet
	streams chan net.Conn
	closing atomic.Bool
	wg      sync.WaitGroup
	log     *slog.Logger
}

// Big enough for any UDP datagram, since memberlist's packets have no
// size limit of their own.
const maxPacket = 65536

// udpRecvBuf is the socket receive buffer asked for (the kernel may cap
// it): a burst of gossip from many members must not overflow it.
const udpRecvBuf = 2 << 20

// listen binds TCP and UDP on ip:port. With port 0 the kernel picks a
// TCP port, which UDP then takes too; if UDP has it already, it tries
// again with another.
func listen(ip net.IP, port int, log *slog.Logger) (*sockets, error) {
	if ip == nil {
		ip = net.IPv4zero
	}
	s := &sockets{ip: ip, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), log: log}
	for try := 0; ; try++ {
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: ip, Port: port})
		if err != nil {
			return nil, err
		}
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: tcp.Addr().(*net.TCPAddr).Port})
		if err != nil {
			tcp.Close()
			if port == 0 && try < 10 {
				continue
			}
			return nil, err
		}
		s.tcp, s.udp = tcp, udp
		break
	}
	for size := udpRecvBuf; size > 0; size /= 2 {
		if s.udp.SetReadBuffer(size) == nil {
			break
		}
	}
	s.wg.Add(2)
	go s.readPackets()
	go s.acceptStreams()
	return s, nil
}

// Port is the port bound, the one the kernel picked for port 0.
func (s *sockets) Port() int { return s.tcp.Addr().(*net.TCPAddr).Port }

// FinalAdvertiseAddr is ip:port when ip is given. Otherwise it is the
// address bound to or, when that is unspecified, the host's private
// IPv4 address (as NetTransport decides).
func (s *sockets) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	if ip != "" {
		a := net.ParseIP(ip)
		if a == nil {
			return nil, 0, fmt.Errorf("not an IP address: %q", ip)
		}
		if a4 := a.To4(); a4 != nil {
			a = a4
		}
		return a, port, nil
	}
	if !s.ip.IsUnspecified() {
		return s.ip, s.Port(), nil
	}
	private, err := sockaddr.GetPrivateIP()
	if err != nil {
		return nil, 0, fmt.Errorf("find a private address: %w", err)
	}
	a := net.ParseIP(private)
	if a == nil {
		return nil, 0, errors.New("no private IP address found to advertise, and none given")
	}
	return a, s.Port(), nil
}

// WriteTo sends one packet. memberlist addresses members as IP:port, which
// parses without the resolver; anything else (a host name) is resolved.
func (s *sockets) WriteTo(b []byte, addr string) (time.Time, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return time.Time{}, err
		}
		ap = a.AddrPort()
	}
	_, err = s.udp.WriteToUDPAddrPort(b, ap)
	return time.Now(), err
}

func (s *sockets) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return s.WriteTo(b, a.Addr)
}

// DialTimeout opens a stream from the address bound to (memberlist's own
// transport lets the kernel pick the source), so that members' allow
// lists see the address this member gossips from on multi-homed hosts.
func (s *sockets) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if !s.ip.IsUnspecified() {
		d.LocalAddr = &net.TCPAddr{IP: s.ip}
	}
	return d.Dial("tcp", addr)
}

func (s *sockets) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return s.DialTimeout(a.Addr, timeout)
}

func (s *sockets) PacketCh() <-chan *memberlist.Packet { return s.packets }
func (s *sockets) StreamCh() <-chan net.Conn           { return s.streams }

// Shutdown closes both sockets and waits for their readers, which must
// not be blocked handing something over (see countingTransport.Shutdown).
func (s *sockets) Shutdown() error {
	s.closing.Store(true)
	s.tcp.Close()
	s.udp.Close()
	s.wg.Wait()
	return nil
}

func (s *sockets) readPackets() {
	defer s.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := s.udp.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.log.Error("gossip: reading a UDP packet", "err", err)
			continue
		}
		if n == 0 {
			continue // memberlist's messages are at least one byte
		}
		s.packets <- &memberlist.Packet{Buf: append([]byte(nil), buf[:n]...), From: from, Timestamp: at}
	}
}

func (s *sockets) acceptStreams() {
	defer s.wg.Done()
	var delay time.Duration
	for {
		c, err := s.tcp.AcceptTCP()
		if err != nil {
			if s.closing.Load() {
				return
			}
			// Out of file descriptors, say: back off up to a second.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			s.log.Error("gossip: accepting a stream", "err", err, "retry in", delay)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.streams <- c
	}
}

var _ memberlist.NodeAwareTransport = (*sockets)(nil)
