package status

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

func TestAllowFrom(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}
	for remote, want := range map[string]bool{
		"127.0.0.1:5000":      true,
		"127.0.0.170:5000":    true,
		"[::1]:5000":          true,
		"[::ffff:10.1.2.3]:1": true,
		"10.1.2.3:5000":       true,
		"[2001:db8::1]:80":    true,
		"10.2.0.1:5000":       false,
		"192.168.1.1:5000":    false,
		"garbage":             false,
	} {
		if got := allowed(remote, allow); got != want {
			t.Errorf("allowed(%s) = %v, want %v", remote, got, want)
		}
	}
}

func TestServeStopsWithContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.171:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, NewHandler(NewRecorder(Options{})), nil, nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / from loopback = %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
