package gossip

import (
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// wants is msgWant: a member asks a node for its report whole (the relay
// for an epoch it missed, the repairer for an overdue report), and every
// member, of every release, answers with its own. It remembers when it
// last asked each node, so the two together never ask one node too often.
// Its methods are called concurrently from memberlist's goroutines and
// the repair loop; none blocks.
type wants struct {
	self   string
	table  *table
	roster *roster
	list   *lazyList

	mu sync.Mutex
	// asked is when this member last asked each node for its report.
	asked map[string]time.Time
}

func newWants(self string, t *table, r *roster, list *lazyList) *wants {
	return &wants{self: self, table: t, roster: r, list: list, asked: make(map[string]time.Time)}
}

// due reports whether name may be asked at now, when it was last asked
// every ago or earlier, and if so records that it is.
func (w *wants) due(name string, now time.Time, every time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if now.Sub(w.asked[name]) < every {
		return false
	}
	w.asked[name] = now
	return true
}

// ask sends msgWant to nodes. A lost request or answer is asked again.
func (w *wants) ask(nodes []memberlist.Node) {
	ml := w.list.now()
	if len(nodes) == 0 || ml == nil {
		return
	}
	msg := report.AppendName([]byte{msgWant}, w.self)
	for i := range nodes {
		_ = send(ml, &nodes[i], kindRepair, msg)
	}
}

// answer sends this member's report whole to the member that asked, with
// its age: the asker dates it from when it was published, not from the
// answer, so a report repaired late does not seem to keep its node's
// promise longer than the node made it (see repairer).
func (w *wants) answer(from string) {
	n, live := w.roster.node(from)
	own, ok := w.table.aged(w.self, time.Now())
	proto := w.roster.speaking()
	ml := w.list.now()
	if !live || !ok || from == w.self || ml == nil {
		return
	}
	_ = send(ml, &n, kindRepair, report.AppendReportAt([]byte{msgReport}, own, proto))
}
