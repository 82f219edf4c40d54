package gossip

import (
	"log/slog"
	"net"
	"testing"
	"time"
)

// TestTransportShutdownUnderTraffic: packets keep arriving while the
// transport shuts down (peers still probe a leaving member). Shutdown must
// return: a listener blocked handing a packet to a proxy that already
// stopped would never see the shutdown.
func TestTransportShutdownUnderTraffic(t *testing.T) {
	for range 5 {
		nt, err := listen(net.IPv4(127, 0, 0, 1), 0, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ct := newCountingTransport(nt, nil, slog.New(slog.DiscardHandler))
		addr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: nt.Port()}

		// Nobody reads ct.PacketCh (as before memberlist starts, or after
		// it stopped reading): the first packet ties up the proxy.
		conn, err := net.DialUDP("udp", nil, addr)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		flooding := make(chan struct{})
		go func() {
			defer close(flooding)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = conn.Write([]byte{1, 2, 3})
				time.Sleep(100 * time.Microsecond)
			}
		}()
		time.Sleep(20 * time.Millisecond) // let packets queue up behind the proxy

		done := make(chan error, 1)
		go func() { done <- ct.Shutdown() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Shutdown did not return within 10 s while packets kept arriving")
		}
		close(stop)
		<-flooding
		conn.Close()
	}
}
