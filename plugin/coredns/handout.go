package peerload

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent/herd"
)

// shareUnit is the fixed-point unit of handCount.share: an answer of n
// machines adds shareUnit/n to each of them.
const shareUnit = 1 << 20

// handCount is what the answers for one server label handed out of one
// machine since the watcher last looked. ServeDNS only adds to it, two
// atomic additions a machine; the watcher moves it into handed_out_total
// and the herd at most every herd.ChangeInterval. So the answer path
// neither reads the clock nor takes a lock for what it hands out, and the
// herd's work is per machine and interval, not per query.
type handCount struct {
	node    string
	handed  prometheus.Counter
	answers atomic.Uint64 // answers that held the machine
	share   atomic.Uint64 // the sum of 1/len(answer), in units of 1/shareUnit
}

// handCounts are a block's counts by server label and machine. Only the
// watcher (publish, flush) reads or changes the map; answers hold the
// counts themselves.
type handCounts map[[2]string]*handCount

// get returns the count of node for server, creating it.
func (h handCounts) get(server, node string) *handCount {
	k := [2]string{server, node}
	c := h[k]
	if c == nil {
		c = &handCount{node: node, handed: handedTotal.WithLabelValues(server, node)}
		h[k] = c
	}
	return c
}

// add records one answer holding counts[i] for every i in order.
func add(counts []*handCount, order []int) {
	share := uint64(shareUnit / len(order))
	for _, i := range order {
		counts[i].answers.Add(1)
		counts[i].share.Add(share)
	}
}

// flush moves what was counted into handed_out_total and, with a herd,
// into the herd as answered at now.
func (h handCounts) flush(hd *herd.Herd, now time.Time) {
	for _, c := range h {
		n := c.answers.Swap(0)
		if n == 0 {
			continue
		}
		share := c.share.Swap(0)
		c.handed.Add(float64(n))
		if hd != nil {
			hd.Answered(c.node, float64(share)/shareUnit, now)
		}
	}
}
