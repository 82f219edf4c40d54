package rfc2136

import (
	"slices"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/rank"
	"github.com/peerload/peerload/agent/report"
)

// loaded is node i with a 4-core report of load1 sampled now.
func loaded(i int, load1 float64) rank.NodeStatus {
	n := node(i, 0)
	n.Report = &report.Report{Node: n.Name, Load: report.Load{Load1: load1, CPUs: 4}}
	n.Received = time.Now()
	return n
}

// TestUpdaterHerd: with a TTL of one second and reports whose load never
// shows the logins (only their users do), the herd counts the published
// machine as handed out and the name moves on to the next best within a
// few TTLs; with herd off it stays on the least-loaded machine and nothing
// is counted. Without logins the herd counts nothing either.
func TestUpdaterHerd(t *testing.T) {
	for _, noHerd := range []bool{false, true} {
		z := startZoneServer(t, "example.edu", testKey)
		cfg := testConfig(z.Addr)
		cfg.Top, cfg.TTL, cfg.NoHerd = 1, 1, noHerd
		u, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		src := newFakeSource("dns1")
		run(t, u, src)
		src.publish(t, u.Roles(), loaded(1, 0.4), loaded(2, 0.8), loaded(3, 1.2))
		waitUntil(t, 5*time.Second, "lab01 in the zone", func() bool {
			return slices.Equal(z.Records(testName), addrs("127.0.1.1"))
		})
		// Two and a half TTLs without logins: nothing counted, nothing
		// moves (an absence, so it is watched for a while, not polled).
		time.Sleep(2500 * time.Millisecond)
		if got := value(u.m.handed.WithLabelValues(testName)); got != 0 {
			t.Fatalf("handed_out_total = %v without logins, want 0", got)
		}
		if got := z.Records(testName); !slices.Equal(got, addrs("127.0.1.1")) {
			t.Fatalf("without logins the zone holds %v, want lab01 still", got)
		}
		// A student logs in on lab01: its users rise, its load not yet.
		busy := loaded(1, 0.4)
		busy.Report.Load.Users = 1
		src.publish(t, u.Roles(), busy, loaded(2, 0.8), loaded(3, 1.2))
		if !noHerd {
			// After a TTL lab01 counts as handed out: 2 (all of one
			// answer) on its load is past lab02's 0.8 beyond the margin.
			waitUntil(t, 10*time.Second, "the name to move on from lab01", func() bool {
				return !slices.Equal(z.Records(testName), addrs("127.0.1.1"))
			})
			if got := value(u.m.handed.WithLabelValues(testName)); got < 1 {
				t.Errorf("handed_out_total = %v, want at least 1", got)
			}
			continue
		}
		// Herd off: three TTLs later (each of which moved the name with the
		// herd) lab01 still holds it and nothing was counted.
		time.Sleep(3 * time.Second)
		if got := z.Records(testName); !slices.Equal(got, addrs("127.0.1.1")) {
			t.Errorf("herd off: the zone holds %v, want lab01 still", got)
		}
		if got := value(u.m.handed.WithLabelValues(testName)); got != 0 {
			t.Errorf("herd off: handed_out_total = %v, want 0", got)
		}
	}
}
