package gossip

import (
	"slices"
	"strings"

	"github.com/hashicorp/memberlist"
)

// What gossip sends, by kind, so that the cost of each mechanism shows on
// its own (issue 24: the next cut should be obvious). memberlist frames,
// encrypts and labels a packet before the transport sees it, so the
// transport cannot read what a packet carries; instead every message of
// this package goes out through send, which names its kind in the address
// memberlist hands the transport (memberlist.Address.Name, which memberlist
// passes through untouched for transports that need it), and the transport
// counts the packet under that kind and strips the tag before the packet
// leaves. Everything else memberlist sends by itself. The kinds thus add
// up exactly to what the transport counts, whatever memberlist's framing.
const (
	// KindProbe is every UDP packet not of this package's messages:
	// memberlist's pings, acks and indirect probes, its membership
	// rumours (alive, suspect, dead) on their own or piggybacked, and the
	// collectors' direct probes (prober).
	KindProbe = "probe"
	// KindReport is a node's report sent to the collectors as it
	// publishes it, compact or whole as to its relays (or, under the
	// fanOut ablation, whole to every member).
	KindReport = "report"
	// KindRelay is the relay grid: a node's report to its relays and the
	// batches each agent sends its column.
	KindRelay = "relay"
	// KindRepair is msgWant, a member asking a node for its report, and
	// the report sent in answer.
	KindRepair = "repair"
	// KindGreeting is a member introducing itself: msgHello and the
	// report it sends a member that joins, and msgLeave when it leaves.
	KindGreeting = "greeting"
	// KindPushPull is every byte written on TCP streams: memberlist's
	// push/pull (joins and the periodic exchange), and its fallback pings
	// over TCP when a UDP ping went unanswered. Streams have no packets
	// of their own here; their headers are the kernel's.
	KindPushPull = "pushpull"
)

// kind indexes the counters of countingTransport.
type kind uint8

const (
	kindProbe kind = iota
	kindReport
	kindRelay
	kindRepair
	kindGreeting
	kindPushPull
	numKinds
)

var kindNames = [numKinds]string{KindProbe, KindReport, KindRelay, KindRepair, KindGreeting, KindPushPull}

// Kinds are the kinds Stats.Sent counts, in a fixed order.
func Kinds() []string { return slices.Clone(kindNames[:]) }

// kindTag starts a tagged node name: no member's name starts with a NUL
// (names are host names), so a tagged name is never a real one.
const kindTag = "\x00"

// send sends msg to n with memberlist's SendBestEffort, counted as k.
func send(ml *memberlist.Memberlist, n *memberlist.Node, k kind, msg []byte) error {
	to := *n
	to.Name = kindTag + string('0'+rune(k)) + n.Name
	return ml.SendBestEffort(&to, msg)
}

// untag splits a node name that send tagged into the kind and the name;
// any other name is memberlist's own packet, a probe.
func untag(name string) (kind, string) {
	rest, ok := strings.CutPrefix(name, kindTag)
	if !ok || rest == "" {
		return kindProbe, name
	}
	k := kind(rest[0] - '0')
	if k >= numKinds {
		return kindProbe, name
	}
	return k, rest[1:]
}
