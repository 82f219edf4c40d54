package agent

import (
	"testing"
	"time"

	"github.com/peerload/peerload/agent/report"
)

// TestStaleFollowsTheSendersPromise: a report stays true for twice the
// lifetime its sender promised, whatever this member's own timings are,
// and StaleAfter only caps that.
func TestStaleFollowsTheSendersPromise(t *testing.T) {
	local := DefaultLocalConfig() // refresh 2 s: it would call a LAN agent stale after a few seconds
	lan := DefaultConfig()
	r := &report.Report{Lifetime: lan.lifetime()}
	if got := local.staleAfter(r); got != 2*(15+2)*time.Second {
		t.Errorf("local member, LAN sender: stale after %s, want 34s", got)
	}
	if got := lan.staleAfter(&report.Report{Lifetime: local.lifetime()}); got != 4500*time.Millisecond {
		t.Errorf("LAN member, local sender: stale after %s, want 4.5s", got)
	}
	if got := local.staleAfter(&report.Report{}); got != 2*v1Lifetime {
		t.Errorf("version 1 sender: stale after %s, want %s", got, 2*v1Lifetime)
	}
	local.StaleAfter = 10 * time.Second
	if got := local.staleAfter(r); got != 10*time.Second {
		t.Errorf("capped: stale after %s, want 10s", got)
	}
}

// TestProfilesChangeOnlyTimings: applying a profile keeps every setting
// that is not a timing (the state dir, the bind address, checks).
func TestProfilesChangeOnlyTimings(t *testing.T) {
	c := DefaultConfig()
	c.StateDir, c.BindAddr, c.Checks.SSHPort = "/srv/state", "10.1.2.3", 2222
	if err := c.SetProfile(ProfileLocal); err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/srv/state" || c.BindAddr != "10.1.2.3" || c.Checks.SSHPort != 2222 {
		t.Errorf("profile changed non-timing settings: %+v", c)
	}
	if c.Interval != 250*time.Millisecond || c.Memberlist.RetransmitMult != 4 || c.Memberlist.EnableCompression {
		t.Errorf("local profile: interval %s retransmit %d compression %v", c.Interval, c.Memberlist.RetransmitMult, c.Memberlist.EnableCompression)
	}
	if err := c.SetProfile("wan"); err == nil || err.Error() != `unknown timing profile "wan" (want lan or local)` {
		t.Errorf("SetProfile(wan) = %v", err)
	}
}
