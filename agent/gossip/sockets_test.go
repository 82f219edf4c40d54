package gossip

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func testSockets(t *testing.T) *sockets {
	t.Helper()
	s, err := listen(net.IPv4(127, 0, 0, 1), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown() })
	return s
}

// TestSocketsPacketsAndStreams: what one member writes to another's port
// arrives there, packets over UDP and streams over TCP, from the address
// the sender is bound to.
func TestSocketsPacketsAndStreams(t *testing.T) {
	a, b := testSockets(t), testSockets(t)
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port()))
	if _, err := a.WriteTo([]byte("ping"), to); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-b.PacketCh():
		if string(p.Buf) != "ping" || p.From.String() != net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())) || p.Timestamp.IsZero() {
			t.Errorf("packet %q from %s at %v", p.Buf, p.From, p.Timestamp)
		}
		if cap(p.Buf) > 64 {
			t.Errorf("a 4-byte packet holds a %d-byte buffer", cap(p.Buf))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no packet within 10 s")
	}

	c, err := a.DialTimeout(to, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("push")); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-b.StreamCh():
		defer s.Close()
		got := make([]byte, 4)
		if _, err := io.ReadFull(s, got); err != nil || string(got) != "push" {
			t.Errorf("stream read %q, %v", got, err)
		}
		if h, _, _ := net.SplitHostPort(s.RemoteAddr().String()); h != "127.0.0.1" {
			t.Errorf("stream from %s", s.RemoteAddr())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no stream within 10 s")
	}
}

// TestSocketsAllocateWhatArrives: reading a packet costs about its own
// size. memberlist's NetTransport allocated 64 KB for each, nearly all of
// an idle agent's garbage.
func TestSocketsAllocateWhatArrives(t *testing.T) {
	a, b := testSockets(t), testSockets(t)
	to := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port()))
	const n = 200
	msg := make([]byte, 300)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := a.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
		select {
		case <-b.PacketCh():
		case <-time.After(10 * time.Second):
			t.Fatal("no packet within 10 s")
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 4096 {
		t.Errorf("%d bytes allocated per 300-byte packet, want at most 4096", per)
	}
}

func TestSocketsAdvertise(t *testing.T) {
	s := testSockets(t)
	for _, tc := range []struct {
		ip   string
		port int
		want string
	}{
		{"", 0, net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port()))},
		{"10.1.2.3", 7946, "10.1.2.3:7946"},
		{"::ffff:10.1.2.3", 7946, "10.1.2.3:7946"},
		{"fd00::1", 7946, "[fd00::1]:7946"},
	} {
		ip, port, err := s.FinalAdvertiseAddr(tc.ip, tc.port)
		if err != nil {
			t.Errorf("FinalAdvertiseAddr(%q, %d): %v", tc.ip, tc.port, err)
			continue
		}
		if got := net.JoinHostPort(ip.String(), strconv.Itoa(port)); got != tc.want {
			t.Errorf("FinalAdvertiseAddr(%q, %d) = %s, want %s", tc.ip, tc.port, got, tc.want)
		}
	}
	if _, _, err := s.FinalAdvertiseAddr("lab01", 7946); err == nil {
		t.Error("FinalAdvertiseAddr(lab01) took a host name")
	}
}

// TestSocketsPortInUse names the address in its error.
func TestSocketsPortInUse(t *testing.T) {
	s := testSockets(t)
	_, err := listen(net.IPv4(127, 0, 0, 1), s.Port(), slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(s.Port())) || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("second listen on one port: %v", err)
	}
}
