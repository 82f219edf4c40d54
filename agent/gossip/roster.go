package gossip

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/peerload/peerload/agent/report"
)

// roster is the membership as memberlist's event delegate tells it:
// copies of the live (alive or suspect) members, the members that left or
// failed, and what the protocols look up on them (decoded meta, names
// folded to lower case, node IDs, the protocol every member reads).
// memberlist calls its event methods with its state lock held and the
// protocols read it from their own goroutines, concurrently: no method
// blocks or calls out.
type roster struct {
	self string
	// write is the highest protocol this member writes (see speaking).
	write int

	mu sync.Mutex
	// members are copies of memberlist's live nodes (see joined).
	members map[string]memberlist.Node
	// gone are the members that left or failed, newest state per name:
	// shown by View for forgetGone, and those that failed kept for
	// reconnectTimeout (see reconnector).
	gone    map[string]Gone
	leaving map[string]bool // members that said goodbye before leaving
	metas   map[string]report.Meta
	// folded maps each live member's lower-cased name to its name.
	folded map[string]string
	// ids resolves compact entries' node IDs; nil when membership changed.
	ids map[uint32]string
}

// Gone is a member that left or failed.
type Gone struct {
	Node  Node
	State string // "left" or "dead"
	At    time.Time
}

// States of a gone member.
const (
	StateDead = "dead"
	StateLeft = "left"
)

// Node is a member as memberlist knows it, with its meta decoded.
type Node struct {
	Name   string
	Gossip string // ip:port of its gossip endpoint
	Meta   report.Meta
	// Suspect is true when it missed probeMisses probe rounds in a row here.
	Suspect bool
}

func newRoster(self string, write int) *roster {
	return &roster{
		self:    self,
		write:   write,
		members: make(map[string]memberlist.Node),
		gone:    make(map[string]Gone),
		leaving: make(map[string]bool),
		metas:   make(map[string]report.Meta),
		folded:  make(map[string]string),
	}
}

// joined records a member memberlist tells of, and reports whether it
// had failed before.
func (r *roster) joined(n *memberlist.Node) (wasDead bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(n)
	delete(r.leaving, n.Name)
	g, back := r.gone[n.Name]
	delete(r.gone, n.Name)
	return back && g.State == StateDead
}

// updated records a member's new address or meta.
func (r *roster) updated(n *memberlist.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.setLocked(n)
}

// left records that a member is gone: left when it said goodbye first,
// dead otherwise (memberlist's Node.State is not kept up to date).
func (r *roster) left(n *memberlist.Node, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	state := StateDead
	if r.leaving[n.Name] {
		state = StateLeft
	}
	delete(r.leaving, n.Name)
	delete(r.members, n.Name)
	if r.folded[strings.ToLower(n.Name)] == n.Name {
		delete(r.folded, strings.ToLower(n.Name))
	}
	r.ids = nil
	r.gone[n.Name] = Gone{Node: r.nodeLocked(n), State: state, At: at}
}

// goodbye records a member's goodbye, and reports whether memberlist had
// already told of it as gone: the goodbye may arrive after that (packets
// are handled concurrently), and then the member left.
func (r *roster) goodbye(name string) (gone bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaving[name] = true
	g, gone := r.gone[name]
	if gone && g.State == StateDead {
		g.State = StateLeft
		r.gone[name] = g
	}
	return gone
}

// setLocked stores a copy of n, taken while memberlist holds its state
// lock (the event delegate's calls). memberlist.Members hands out pointers
// into that state, which memberlist rewrites (Addr, Port, Meta, State)
// when an alive message arrives: reading them later races. r.mu must be
// held.
func (r *roster) setLocked(n *memberlist.Node) {
	if _, ok := r.members[n.Name]; !ok {
		r.ids = nil
		if _, taken := r.folded[strings.ToLower(n.Name)]; !taken {
			r.folded[strings.ToLower(n.Name)] = n.Name
		}
	}
	r.members[n.Name] = *n
}

// caseTwin is the name of this member or a live member that equals name
// but for case, or "". memberlist asks for every alive message and every
// node of every push/pull, so it is a map lookup, not a scan.
func (r *roster) caseTwin(name string) string {
	if name != r.self && strings.EqualFold(name, r.self) {
		return r.self
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.folded[strings.ToLower(name)]; ok && other != name {
		return other
	}
	return ""
}

// node is a copy of the live member name.
func (r *roster) node(name string) (memberlist.Node, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.members[name]
	return n, ok
}

// size is how many live members there are, this one included.
func (r *roster) size() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// copies returns copies of the live members (what memberlist.Members
// lists), safe to read without memberlist's lock.
func (r *roster) copies() []memberlist.Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]memberlist.Node, 0, len(r.members))
	for _, n := range r.members {
		out = append(out, n)
	}
	return out
}

// nodes converts the live members among names, in order and each once.
func (r *roster) nodes(names []string) []Node {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Node, 0, len(names))
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if n, ok := r.members[name]; ok && !seen[name] {
			out, seen[name] = append(out, r.nodeLocked(&n)), true
		}
	}
	return out
}

// roles splits the live members: collectors and the members of builds
// before the relay grid (unaware, which get every report whole), this
// member aside, and the agents that relay, this member included when it
// is one.
func (r *roster) roles() (collectors, unaware, agents []memberlist.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, n := range r.members {
		meta := r.metaLocked(n.Meta)
		switch {
		case name == r.self && (meta.Collector || !meta.Relays):
		case !meta.Relays:
			unaware = append(unaware, n)
		case meta.Collector:
			collectors = append(collectors, n)
		default:
			agents = append(agents, n)
		}
	}
	return collectors, unaware, agents
}

// agents is how many live members relay (see roles).
func (r *roster) agents() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for name := range r.members {
		if meta := r.metaLocked(r.members[name].Meta); !meta.Collector && meta.Relays {
			n++
		}
	}
	return n
}

// failed lists the addresses of the members that failed within
// reconnectTimeout of now, and counts the live members.
func (r *roster) failed(now time.Time) (addrs []string, live int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gone {
		if g.State == StateDead && now.Sub(g.At) <= reconnectTimeout {
			addrs = append(addrs, g.Node.Gossip)
		}
	}
	return addrs, len(r.members)
}

// view converts the live members and the gone ones to show at now, and
// names those whose reports are kept: the live and the shown. It forgets
// a gone member that is live again, one that left forgetGone ago, and one
// that failed reconnectTimeout ago (one that failed is only hidden after
// forgetGone, for the reconnector).
func (r *roster) view(now time.Time, forgetGone time.Duration) (members []Node, gone []Gone, keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep = make(map[string]bool, len(r.members)+len(r.gone))
	for name, n := range r.members {
		members = append(members, r.nodeLocked(&n))
		keep[name] = true
	}
	for name, g := range r.gone {
		_, live := r.members[name]
		switch age := now.Sub(g.At); {
		case live || age > reconnectTimeout || age > forgetGone && g.State != StateDead:
			delete(r.gone, name)
		case age <= forgetGone:
			keep[name] = true
			gone = append(gone, g)
		}
	}
	return members, gone, keep
}

// nodeLocked converts a memberlist node; Suspect is the prober's to set.
// r.mu must be held.
func (r *roster) nodeLocked(n *memberlist.Node) Node {
	return Node{
		Name:   n.Name,
		Gossip: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		Meta:   r.metaLocked(n.Meta),
	}
}

// metaLocked decodes node meta, caching by content. A member whose meta
// cannot be understood is never a candidate. r.mu must be held.
func (r *roster) metaLocked(b []byte) report.Meta {
	if v, ok := r.metas[string(b)]; ok {
		return v
	}
	v, err := report.DecodeMeta(b)
	if err != nil {
		v = report.Meta{Collector: true}
	}
	if len(r.metas) > 4096 {
		clear(r.metas)
	}
	r.metas[string(b)] = v
	return v
}

// id returns the NodeID of name and whether it names name alone among
// the live members, so that a compact entry under it reaches name.
func (r *roster) id(name string) (uint32, bool) {
	id := report.NodeID(name)
	return id, r.nameOf(id) == name
}

// nameOf resolves a NodeID to the one live member it names, or "".
func (r *roster) nameOf(id uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = make(map[uint32]string, len(r.members))
		for name := range r.members {
			nid := report.NodeID(name)
			if _, dup := r.ids[nid]; dup {
				r.ids[nid] = ""
			} else {
				r.ids[nid] = name
			}
		}
	}
	return r.ids[id]
}

// speaking is the protocol this member writes to the members it chooses
// (reports to collectors, batches to its column): the lowest protocol any
// live member advertises, itself included, capped by what this member
// writes (report.Speaking). A member learns another's advertisement with
// its membership, before it sends to it, so a newer format never reaches
// a member that does not read it; a member that restarts on an older
// release is sent the newer format only until its alive message arrives,
// and what it missed is repaired like a lost packet.
func (r *roster) speaking() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	advertised := make([]uint8, 0, len(r.members))
	for _, n := range r.members {
		advertised = append(advertised, n.DMax)
	}
	return report.Speaking(r.write, advertised)
}
