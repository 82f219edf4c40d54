package watch

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
)

// TestRun: every reason to rebuild is reported as such, with the latest
// snapshot, and Run ends with its context.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := agenttest.NewSource(&rank.Snapshot{})
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
		src.Set(newSnap)
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
		Run(ctx, agenttest.NewSource(nil), Options{}, func(Why) time.Time {
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
