package watch

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// fakeSource hands out the snapshot a test sets and notifies like an
// agent: coalesced, never blocking.
type fakeSource struct {
	mu   sync.Mutex
	snap *rank.Snapshot
	ch   chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{snap: &rank.Snapshot{}, ch: make(chan struct{}, 1)}
}

func (f *fakeSource) Snapshot() *rank.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSource) Subscribe() (<-chan struct{}, func()) { return f.ch, func() {} }

func (f *fakeSource) set(s *rank.Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
	select {
	case f.ch <- struct{}{}:
	default:
	}
}

// TestRun: every reason to rebuild is reported as such, with the latest
// snapshot, and Run ends with its context.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newFakeSource()
		signal := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(t.Context())
		var (
			mu   sync.Mutex
			whys []Why
			last *rank.Snapshot
		)
		dueAt := time.Now().Add(3 * time.Second)
		done := make(chan struct{})
		go func() {
			defer close(done)
			Run(ctx, src, Options{Every: 10 * time.Second, Signal: signal}, func(why Why) time.Time {
				mu.Lock()
				defer mu.Unlock()
				whys, last = append(whys, why), src.Snapshot()
				if why == Start {
					return dueAt
				}
				return time.Time{}
			})
		}()
		synctest.Wait()
		newSnap := &rank.Snapshot{}
		src.set(newSnap)
		synctest.Wait()
		signal <- struct{}{}
		synctest.Wait()
		time.Sleep(10 * time.Second) // the due time (3 s, replaced: never), then the tick
		synctest.Wait()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		want := []Why{Start, Change, Signal, Tick}
		if len(whys) != len(want) {
			t.Fatalf("rebuilt for %v, want %v", whys, want)
		}
		for i := range want {
			if whys[i] != want[i] {
				t.Fatalf("rebuilt for %v, want %v", whys, want)
			}
		}
		if last != newSnap {
			t.Error("rebuild did not read the latest snapshot")
		}
	})
}

// TestRunDue: the time rebuild returns calls it again then.
func TestRunDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		start := time.Now()
		var at []time.Duration
		Run(ctx, newFakeSource(), Options{}, func(Why) time.Time {
			at = append(at, time.Since(start))
			if len(at) == 3 {
				cancel()
			}
			return time.Now().Add(2 * time.Second)
		})
		if len(at) != 3 || at[1] != 2*time.Second || at[2] != 4*time.Second {
			t.Fatalf("called at %v, want 0s 2s 4s", at)
		}
	})
}
