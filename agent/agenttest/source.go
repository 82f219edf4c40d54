package agenttest

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/peerload/peerload/agent/rank"
)

// Source is a snapshot source the test feeds, what an agent is to its
// readers (watch.Source): Set hands out a new snapshot and notifies as an
// agent does, coalesced and never blocking.
type Source struct {
	mu   sync.Mutex
	snap *rank.Snapshot
	ch   chan struct{}
}

// NewSource is a source holding snap (nil: none yet).
func NewSource(snap *rank.Snapshot) *Source {
	return &Source{snap: snap, ch: make(chan struct{}, 1)}
}

// Snapshot returns the snapshot set last.
func (s *Source) Snapshot() *rank.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Subscribe returns the source's one notification channel.
func (s *Source) Subscribe() (<-chan struct{}, func()) { return s.ch, func() {} }

// Set makes snap the current snapshot and notifies.
func (s *Source) Set(snap *rank.Snapshot) {
	s.Replace(snap)
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

// FreeLoopbackPort returns a port free for TCP and UDP on 127.0.0.1 now,
// for a member's gossip address.
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// Replace makes snap the current snapshot without notifying, as an agent
// rebuilds its snapshot when nothing changed enough to announce.
func (s *Source) Replace(snap *rank.Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}
