package peerload

import (
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
)

// selections makes five new sessions through a Selection configured with
// herd (as a Caddyfile gives it: "" is the default, on) against machines
// whose reports never show the sessions, ranking again after each as the
// module's watcher does when its herd changes, and returns the upstreams
// picked.
func selections(t *testing.T, herdSetting string) []string {
	t.Helper()
	s := &Selection{Cluster: Cluster{Herd: herdSetting}}
	s.policy = s.rankPolicy(defaultSelectionTop)
	s.cur.Store(emptyChoice)
	snap := snapshotOfNodes(
		machine("lab01", "10.0.0.1", 0.4), machine("lab02", "10.0.0.2", 0.8),
		machine("lab03", "10.0.0.3", 1.2), machine("lab04", "10.0.0.4", 1.6),
		machine("lab05", "10.0.0.5", 2.0))
	pool := upstreams("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80", "10.0.0.5:80")
	for _, u := range pool {
		u.Host = new(reverseproxy.Host)
	}
	var got []string
	for range 5 {
		s.cur.Store(buildChoice(s.policy, snap, s.cur.Load(), "", time.Now()))
		u := s.Select(pool, nil, nil)
		if u == nil {
			t.Fatal("nothing selected")
		}
		got = append(got, u.Dial)
	}
	return got
}

// TestSelectionHerd: with the default herd five new sessions in a row go
// to different machines before any report shows them; with herd off every
// one goes to the least-loaded machine.
func TestSelectionHerd(t *testing.T) {
	on := selections(t, "")
	seen := map[string]bool{}
	for _, d := range on {
		seen[d] = true
	}
	if len(seen) < 3 {
		t.Errorf("herd on (default): five sessions went to %v, want at least three machines", on)
	}
	for _, d := range selections(t, "off") {
		if d != "10.0.0.1:80" {
			t.Errorf("herd off: a session went to %s, want 10.0.0.1:80 (the least loaded) every time", d)
		}
	}
}

// TestGetUpstreamsHerd: the upstream source's lists move on to other
// machines as it hands them out, and stay put with herd off.
func TestGetUpstreamsHerd(t *testing.T) {
	for _, tt := range []struct {
		herd string
		want int // distinct machines in the first place of five lists
	}{{"", 3}, {"off", 1}} {
		u := &Upstreams{Cluster: Cluster{Herd: tt.herd, Top: 1}, Port: 8888}
		u.policy = u.rankPolicy(1)
		u.cur.Store(emptyChoice)
		snap := snapshotOfNodes(
			machine("lab01", "10.0.0.1", 0.4), machine("lab02", "10.0.0.2", 0.8),
			machine("lab03", "10.0.0.3", 1.2), machine("lab04", "10.0.0.4", 1.6))
		first := map[string]bool{}
		for range 5 {
			u.cur.Store(buildChoice(u.policy, snap, u.cur.Load(), "8888", time.Now()))
			list, err := u.GetUpstreams(nil)
			if err != nil {
				t.Fatal(err)
			}
			first[list[0].Dial] = true
		}
		if (tt.want > 1 && len(first) < tt.want) || (tt.want == 1 && len(first) != 1) {
			t.Errorf("herd %q: first upstreams %v, want %d distinct", tt.herd, first, tt.want)
		}
	}
}
