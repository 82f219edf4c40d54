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
	// Timeout is how long one query waits for its answer (default 2 s).
	Timeout time.Duration
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
	var maxRTT time.Duration
	for _, a := range r.Answers {
		maxRTT = max(maxRTT, a.RTT)
	}
	return fmt.Sprintf("%d queries: %d timeouts or errors, %d SERVFAIL, %d empty, max RTT %s, %d sent late",
		len(r.Answers), timeouts, servfail, empty, maxRTT.Round(time.Millisecond), r.Late)
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

// query sends one query on c and waits for the answer with its id.
func query(c *dns.Conn, ld DNSLoad, sent time.Time) Answer {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(ld.Qname), ld.Qtype)
	a := Answer{Sent: sent, Rcode: -1}
	if err := c.WriteMsg(m); err != nil {
		a.Err = err
		return a
	}
	deadline := sent.Add(ld.Timeout)
	for {
		_ = c.SetReadDeadline(deadline)
		r, err := c.ReadMsg()
		if err != nil {
			a.Err = err
			a.RTT = time.Since(sent)
			return a
		}
		if r.Id != m.Id {
			continue // a late answer to an earlier, timed-out query
		}
		a.RTT = time.Since(sent)
		a.Rcode = r.Rcode
		a.Addrs = AnswerAddrs(r)
		return a
	}
}
