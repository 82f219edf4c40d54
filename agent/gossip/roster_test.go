package gossip

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

func testNode(name string, last byte) *memberlist.Node {
	return &memberlist.Node{Name: name, Addr: net.IPv4(10, 0, 0, last), Port: 7946}
}

// TestRosterGoneStates: a member that said goodbye left, one that did not
// failed, and a goodbye that arrives after memberlist's news still makes
// it left; only the failed are tried again, a member back is no longer
// gone, and names differing only in case clash.
func TestRosterGoneStates(t *testing.T) {
	now := time.Now()
	r := newRoster("self", 2)
	for i, name := range []string{"self", "bye", "dead", "late"} {
		r.joined(testNode(name, byte(i+1)))
	}
	if r.goodbye("bye") {
		t.Fatal("goodbye of a live member reported it gone")
	}
	r.left(testNode("bye", 2), now)
	r.left(testNode("dead", 3), now)
	r.left(testNode("late", 4), now)
	if !r.goodbye("late") {
		t.Fatal("goodbye after the leave did not report it gone")
	}
	members, gone, keep := r.view(now, time.Hour)
	states := map[string]string{}
	for _, g := range gone {
		states[g.Node.Name] = g.State
	}
	if len(members) != 1 || states["bye"] != StateLeft || states["dead"] != StateDead || states["late"] != StateLeft {
		t.Fatalf("members %v, gone %v", members, states)
	}
	if !keep["self"] || !keep["dead"] {
		t.Fatalf("keep %v, want self and the gone", keep)
	}
	addrs, live := r.failed(now)
	if len(addrs) != 1 || addrs[0] != "10.0.0.3:7946" || live != 1 {
		t.Fatalf("failed %v with %d live, want only dead's address and 1", addrs, live)
	}
	if !r.joined(testNode("dead", 3)) {
		t.Fatal("a failed member that is back was not reported as back")
	}
	if _, ok := r.node("dead"); !ok {
		t.Fatal("a member that is back is not live")
	}
	if got := r.caseTwin("DEAD"); got != "dead" {
		t.Fatalf("caseTwin(DEAD) = %q, want dead", got)
	}
	if got := r.caseTwin("SELF"); got != "self" {
		t.Fatalf("caseTwin(SELF) = %q, want self", got)
	}
	if id, unique := r.id("dead"); !unique || r.nameOf(id) != "dead" {
		t.Fatal("dead's ID does not resolve to it")
	}
}
