package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// inNetns runs fn on an OS thread that has entered the network namespace
// mounted at nsPath, then moves the thread back. Sockets fn creates stay in
// that namespace for their whole life, so the test process can talk to a
// lab host without any address on the host's own namespace. If the thread
// cannot move back it is left locked, and the runtime retires it when the
// goroutine ends, so no other goroutine ever runs in the wrong namespace.
func inNetns(nsPath string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own netns: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open netns %s: %w", nsPath, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", nsPath, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave netns %s: %w", nsPath, err) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Do runs fn inside the host's network namespace (see inNetns): what fn
// dials or listens on belongs to the host.
func (h *Host) Do(fn func() error) error { return inNetns(h.nsPath(), fn) }

// DialContext dials from inside the host's namespace; it fits
// http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// ListenPacket opens a packet socket inside the host's namespace, e.g.
// ("udp4", "0.0.0.0:0") for a DNS client.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var c net.PacketConn
	err := h.Do(func() error {
		var err error
		c, err = net.ListenPacket(network, addr)
		return err
	})
	return c, err
}

// HTTP is an HTTP client whose connections start inside the host's
// namespace: http://127.0.0.1:1981/ is that host's agent API.
func (h *Host) HTTP() *http.Client {
	h.httpOnce.Do(func() {
		h.http = &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				DialContext:         h.DialContext,
				MaxIdleConnsPerHost: 2,
				IdleConnTimeout:     30 * time.Second,
			},
		}
	})
	return h.http
}
