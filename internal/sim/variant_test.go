package sim

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestParseVariant(t *testing.T) {
	for _, tc := range []struct {
		spec string
		ok   bool
		want func(Variant) bool
	}{
		{"herd", true, func(v Variant) bool {
			return v.Herd == "herd" && v.Weight == 2 && v.Decay == time.Minute && v.TTL == -1
		}},
		{"seen/w=rate/cap=3", true, func(v Variant) bool { return v.RateWeight && v.Cap == 3 }},
		{"plain/age/b2=6/top=5/ttl=10s", true, func(v Variant) bool {
			return v.Age && v.BestOfTwo == 6 && v.Top == 5 && v.TTL == 10*time.Second
		}},
		{"herd/attl=5s-30s", true, func(v Variant) bool { return v.MinTTL == 5*time.Second && v.MaxTTL == 30*time.Second }},
		{"seen/write=10s/w=rate", true, func(v Variant) bool { return v.Write == 10*time.Second }},
		{"herd/ttl=0s", true, func(v Variant) bool { return v.TTL == 0 }},
		{"peerload-herd", false, nil},
		{"herd/w=-1", false, nil},
		{"herd/attl=30s-5s", false, nil},
		{"herd/attl=5s", false, nil},
		{"herd/bogus", false, nil},
		{"plain/w=rate", false, nil},
		{"seen/write=10s/attl=1s-5s", false, nil},
	} {
		v, err := ParseVariant(tc.spec)
		if (err == nil) != tc.ok {
			t.Errorf("ParseVariant(%q) error %v, want ok %v", tc.spec, err, tc.ok)
			continue
		}
		if tc.ok && !tc.want(v) {
			t.Errorf("ParseVariant(%q) = %+v", tc.spec, v)
		}
	}
}

// The simulator's own herd model, with agent/herd's weight and decay, is
// agent/herd: the variant runs exactly as peerload-herd.
func TestVariantHerdIsPeerloadHerd(t *testing.T) {
	cfg := small()
	cfg.TraceEvery = 0
	cfg.Policies = []string{PolicyPeerloadHerd, "herd/w=2"}
	rs, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, b := rs[0], rs[1]
	b.Policy = a.Policy
	if !reflect.DeepEqual(a, b) {
		t.Errorf("herd/w=2 %+v\npeerload-herd %+v", b, a)
	}
}

func TestVariantsRunAndOrder(t *testing.T) {
	cfg := small()
	cfg.TraceEvery = 0
	specs := []string{"seen/w=rate/cap=4", "plain/age", "herd/b2=6", "herd/attl=2s-30s", "seen/write=10s/ttl=10s/w=rate", "herd/w=rate/top=5/ttl=5s"}
	cfg.Policies = append([]string{PolicyPeerload}, specs...)
	rs, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(specs)+1 || rs[0].Policy != PolicyPeerload {
		t.Fatalf("got %d results, first %q", len(rs), rs[0].Policy)
	}
	for i, r := range rs[1:] {
		if r.Policy != specs[i] || r.Sessions != rs[0].Sessions || r.MeanSlowdown < 1 || r.Queries == 0 {
			t.Errorf("result %d: %+v", i+1, r)
		}
	}
	// A written set is asked for as resolvers' copies expire: TTL 10 s
	// costs more queries than the lab's 30 s.
	if rs[5].Queries <= rs[0].Queries {
		t.Errorf("write with TTL 10s: %d queries, lab's TTL 30s: %d", rs[5].Queries, rs[0].Queries)
	}
}

func TestDecayingHerdLimit(t *testing.T) {
	h := newDecayingHerd(1, time.Minute, 3)
	for range 10 {
		h.handed(0, 1, 0, 10*time.Second)
	}
	if e := h.extra(0, 0, 10*time.Second); e != 3 {
		t.Errorf("extra %v after 10 hand-outs of 1 with limit 3, want 3", e)
	}
	// Seen by a report a minute later: e^-1 of it left.
	if e := h.extra(0, 70*time.Second, 70*time.Second); math.Abs(e-3/math.E) > 1e-9 {
		t.Errorf("extra %v a minute on, want %v", e, 3/math.E)
	}
}

func TestSeenHerd(t *testing.T) {
	s := time.Second
	h := newSeenHerd(2, time.Minute, 0, false)
	h.observe(0, 1, 0)
	h.handed(0, 2, 10*s, 100*s)
	// Before any report after it: all of it.
	if e := h.extra(0, 95*s, 101*s); e != 2 {
		t.Errorf("extra %v before a report, want 2", e)
	}
	// A report 4 s in shows one user arrived: 6 s of the TTL are still to
	// come (1.2) and the arrival is not in load1 yet (1).
	h.observe(0, 2, 104*s)
	if e := h.extra(0, 104*s, 104*s); math.Abs(e-2.2) > 1e-9 {
		t.Errorf("extra %v with one arrival and 6 s left, want 2.2", e)
	}
	// After the TTL only the arrival's lag remains, decaying with the
	// reports' time.
	h.observe(0, 2, 164*s)
	if e := h.extra(0, 164*s, 170*s); math.Abs(e-math.Exp(-1)) > 1e-9 {
		t.Errorf("extra %v a minute after the arrival, want e^-1", e)
	}
	// A hand-out nobody used is gone once a report comes after its TTL,
	// however many there were (a flood).
	for k := range 1000 {
		h.handed(1, 2, 10*s, 200*s+time.Duration(k)*time.Millisecond)
	}
	h.observe(1, 0, 199*s)
	h.observe(1, 0, 212*s)
	if e := h.extra(1, 212*s, 212*s); e != 0 {
		t.Errorf("extra %v after unused hand-outs expired, want 0", e)
	}
	// With a limit, a machine holds at most that much of hand-outs.
	h = newSeenHerd(1, time.Minute, 3, false)
	for range 10 {
		h.handed(0, 1, 10*s, 0)
	}
	if e := h.extra(0, 0, 0); e != 3 {
		t.Errorf("extra %v with limit 3, want 3", e)
	}
	// TTL 0: a hand-out counts until a report after it.
	h = newSeenHerd(1, time.Minute, 0, false)
	h.handed(0, 1, 0, 10*s)
	if h.extra(0, 9*s, 10*s) != 1 || h.extra(0, 11*s, 11*s) != 0 {
		t.Error("TTL 0: want 1 before the next report, 0 after")
	}
}

// A run queue that steps from 0 to 4 is read back from the kernel's
// load1, two reports at least ageSpan apart, long before load1 gets there.
func TestAgeReaderFindsTheRunQueue(t *testing.T) {
	a := newAgeReader(1, time.Minute)
	var l LoadAvg
	for tick := range 6 { // 30 s at 4 runnable
		l.Tick(4)
		load1, _, _ := l.Proc()
		a.observe(0, load1, time.Duration(tick)*LoadFreq)
	}
	q, last, ok := a.runQueue(0)
	if !ok || math.Abs(q-4) > 0.2 {
		t.Errorf("run queue %v (ok %v), want about 4; load1 is %v", q, ok, last.load1)
	}
	if got := a.load1(0, last.at+time.Hour); math.Abs(got-q) > 1e-6 {
		t.Errorf("load1 an hour on %v, want the run queue %v", got, q)
	}
	if got := a.load1(0, last.at); got != last.load1 {
		t.Errorf("load1 at the report %v, want the report's %v", got, last.load1)
	}
}

func TestDecayingCountRatio(t *testing.T) {
	var logins, answers decayingCount
	for k := range 600 { // 10 min: a login every 2 s, an answer every 10 s
		now := time.Duration(k) * time.Second
		if k%2 == 0 {
			logins.add(1, now, rateWindow)
		}
		if k%10 == 0 {
			answers.add(1, now, rateWindow)
		}
	}
	now := 600 * time.Second
	if r := logins.value(now, rateWindow) / answers.value(now, rateWindow); math.Abs(r-5) > 0.5 {
		t.Errorf("logins per answer %v, want about 5", r)
	}
}

// A flood from a client that ignores caching never hands out a machine
// that is no candidate, and the seen herd forgets it one TTL after.
func TestFloodIsForgottenWithinTheTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the lab's DNS server")
	}
	cfg := DefaultConfig()
	cfg.Duration = time.Hour
	f := Flood{At: 30 * time.Minute, QPS: 500, Duration: 10 * time.Second, Checks: []time.Duration{0, 15 * time.Second}}
	r, err := RunFlood(cfg, "seen/w=2/cap=4/top=5/ttl=10s", f)
	if err != nil {
		t.Fatal(err)
	}
	if r.Answers != 5000 || r.NonCandidates != 0 {
		t.Errorf("%d answers, %d non-candidates; want 5000, 0", r.Answers, r.NonCandidates)
	}
	if c := r.Checks[0]; c.HerdLoad < 2*c.HerdLoadNoFlood {
		t.Errorf("at the flood's end the herd holds %v, without it %v: the flood did not count", c.HerdLoad, c.HerdLoadNoFlood)
	}
	if c := r.Checks[1]; c.HerdLoad > c.HerdLoadNoFlood+5 {
		t.Errorf("15 s after the flood the herd holds %v, without it %v", c.HerdLoad, c.HerdLoadNoFlood)
	}
}
