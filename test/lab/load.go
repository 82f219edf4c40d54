package lab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// DNSLoad describes a steady DNS query load from one host.
type DNSLoad struct {
	Server netip.AddrPort
	Qname  string
	Qtype  uint16
	// Rate is queries per second; Count bounds the total.
	Rate, Count int
	// Timeout is how long one try waits for its answer (default 2 s).
	Timeout time.Duration
	// Tries is how often a query is sent before it counts as timed out
	// (default 1). A stub resolver tries twice (resolv.conf attempts:2),
	// so a datagram the kernel dropped is not a failed lookup.
	Tries int
	// Sockets is how many UDP sockets (one query in flight each) carry
	// the load (default 16).
	Sockets int
}

// Answer is the outcome of one query of a load.
type Answer struct {
	// Sent is when the query left; RTT how long the answer took.
	Sent time.Time
	RTT  time.Duration
	// Rcode is the answer's rcode, -1 for a timeout or socket error.
	Rcode int
	Addrs []string
	Err   error
	// Tries is how many tries it took (more than 1: a datagram was lost).
	Tries int
}

// LoadResult is every answer of a load, in the order the queries were sent.
type LoadResult struct {
	Answers []Answer
	// Late counts queries sent more than 100 ms after their slot (every
	// socket was waiting): the generator, not the server, fell behind.
	Late int
}

// Count returns how many answers match keep.
func (r LoadResult) Count(keep func(Answer) bool) int {
	n := 0
	for _, a := range r.Answers {
		if keep(a) {
			n++
		}
	}
	return n
}

func (r LoadResult) String() string {
	timeouts := r.Count(func(a Answer) bool { return a.Rcode < 0 })
	servfail := r.Count(func(a Answer) bool { return a.Rcode == dns.RcodeServerFailure })
	empty := r.Count(func(a Answer) bool { return a.Rcode == dns.RcodeSuccess && len(a.Addrs) == 0 })
	retried := r.Count(func(a Answer) bool { return a.Tries > 1 })
	var maxRTT time.Duration
	for _, a := range r.Answers {
		maxRTT = max(maxRTT, a.RTT)
	}
	return fmt.Sprintf("%d queries: %d timeouts or errors, %d SERVFAIL, %d empty, %d answered on a retry, max RTT %s, %d sent late",
		len(r.Answers), timeouts, servfail, empty, retried, maxRTT.Round(time.Millisecond), r.Late)
}

// RunDNSLoad sends the load from inside the host, paced at Rate until
// Count queries went out or ctx ended, and returns every answer.
func (h *Host) RunDNSLoad(ctx context.Context, ld DNSLoad) (LoadResult, error) {
	if ld.Timeout == 0 {
		ld.Timeout = 2 * time.Second
	}
	if ld.Sockets == 0 {
		ld.Sockets = 16
	}
	ld.Tries = max(ld.Tries, 1)
	if ld.Rate <= 0 || ld.Count <= 0 {
		return LoadResult{}, fmt.Errorf("dns load: rate %d and count %d must be positive", ld.Rate, ld.Count)
	}
	conns := make([]*dns.Conn, ld.Sockets)
	for i := range conns {
		var c net.Conn
		if err := h.Do(func() (err error) {
			c, err = net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(ld.Server))
			return err
		}); err != nil {
			for _, c := range conns[:i] {
				c.Close()
			}
			return LoadResult{}, err
		}
		conns[i] = &dns.Conn{Conn: c, UDPSize: dns.DefaultMsgSize}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	res := LoadResult{Answers: make([]Answer, ld.Count)}
	slots := make(chan int)
	var wg sync.WaitGroup
	var lateMu sync.Mutex
	start := time.Now()
	interval := time.Second / time.Duration(ld.Rate)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range slots {
				sent := time.Now()
				if sent.Sub(start.Add(time.Duration(i)*interval)) > 100*time.Millisecond {
					lateMu.Lock()
					res.Late++
					lateMu.Unlock()
				}
				res.Answers[i] = query(c, ld, sent)
			}
		}()
	}
	sent := 0
	for i := range ld.Count {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		select {
		case slots <- i:
			sent++
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(slots)
	wg.Wait()
	res.Answers = res.Answers[:sent]
	return res, ctx.Err()
}

// query sends one query on c and waits for the answer with its id, up to
// ld.Tries times; RTT runs from the first try.
func query(c *dns.Conn, ld DNSLoad, sent time.Time) Answer {
	a := Answer{Sent: sent, Rcode: -1}
	for a.Tries < ld.Tries {
		a.Tries++
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(ld.Qname), ld.Qtype)
		if err := c.WriteMsg(m); err != nil {
			a.Err = err
			continue
		}
		deadline := time.Now().Add(ld.Timeout)
		for {
			_ = c.SetReadDeadline(deadline)
			r, err := c.ReadMsg()
			if err != nil {
				a.Err = err
				a.RTT = time.Since(sent)
				break
			}
			if r.Id != m.Id {
				continue // a late answer to an earlier, timed-out try
			}
			a.RTT = time.Since(sent)
			a.Rcode, a.Addrs, a.Err = r.Rcode, AnswerAddrs(r), nil
			return a
		}
	}
	return a
}
