package lab

import (
	"math"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/sample"
	"github.com/peerload/peerload/internal/sim"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// One tick with one task from idle: 1 − e^(−5/60), e^(−5/300), e^(−5/900).
func TestFoldLoad(t *testing.T) {
	got := FoldLoad([3]float64{}, 1)
	want := [3]float64{0.07995558537067671, 0.016528546178364382, 0.0055401519951032707}
	for i := range got {
		if !near(got[i], want[i]) {
			t.Errorf("load[%d] = %.17g, want %.17g", i, got[i], want[i])
		}
	}
	// Twelve ticks (a minute) of 2 tasks from 0: 2·(1 − e^(−1)).
	var l [3]float64
	for range 12 {
		l = FoldLoad(l, 2)
	}
	if want := 2 * (1 - math.Exp(-1)); !near(l[0], want) {
		t.Errorf("load1 after a minute of 2 tasks = %v, want %v", l[0], want)
	}
	// At steady state it stays.
	if got := FoldLoad([3]float64{3, 3, 3}, 3); !near(got[0], 3) || !near(got[2], 3) {
		t.Errorf("steady load moved: %v", got)
	}
}

// Four 60 s sessions at once on two cores each run at half speed and take
// 120 s (slowdown 2); then three on two cores: the 30 s one is done at
// 45 s (1.5), the 120 s ones at 135 s (1.125): the simulator's
// TestProcessorSharing, on the lab's model.
func TestMachineProcessorSharing(t *testing.T) {
	m := NewMachine(2, time.Hour)
	var ss []*Session
	for range 4 {
		ss = append(ss, m.Place(60, true))
	}
	m.AdvanceTo(119 * time.Second)
	if m.Runnable() != 4 {
		t.Fatalf("at 119 s %d running, want 4", m.Runnable())
	}
	m.AdvanceTo(121 * time.Second)
	if m.Runnable() != 0 {
		t.Fatalf("at 121 s %d running, want 0", m.Runnable())
	}
	for _, s := range ss {
		if s.End != 120*time.Second || !near(s.Slowdown(0), 2) {
			t.Errorf("session ended at %v, slowdown %v; want 120s, 2", s.End, s.Slowdown(0))
		}
	}

	m = NewMachine(2, time.Hour)
	short := m.Place(30, true)
	long := []*Session{m.Place(120, true), m.Place(120, true)}
	m.AdvanceTo(10 * time.Minute)
	if short.End != 45*time.Second || !near(short.Slowdown(0), 1.5) {
		t.Errorf("30 s session: end %v slowdown %v, want 45s 1.5", short.End, short.Slowdown(0))
	}
	for _, s := range long {
		if s.End != 135*time.Second || !near(s.Slowdown(0), 1.125) {
			t.Errorf("120 s session: end %v slowdown %v, want 135s 1.125", s.End, s.Slowdown(0))
		}
	}
}

// Background processes share the cores too, and the kernel ticks from its
// phase on; a session still running counts with its time so far.
func TestMachineBackgroundAndTicks(t *testing.T) {
	m := NewMachine(1, 2*time.Second)
	m.AddBackground(1)
	s := m.Place(10, true)
	m.AdvanceTo(2 * time.Second) // first tick, 2 runnable
	if want := 2 * (1 - math.Exp(-5.0/60)); !near(m.Load()[0], want) {
		t.Errorf("load1 after the first tick = %v, want %v", m.Load()[0], want)
	}
	m.AdvanceTo(7 * time.Second) // second tick
	if want := FoldLoad(FoldLoad([3]float64{}, 2), 2); !near(m.Load()[0], want[0]) {
		t.Errorf("load1 after two ticks = %v, want %v", m.Load()[0], want[0])
	}
	// Half a core each: 10 s of work done at 20 s.
	m.AdvanceTo(19 * time.Second)
	if got := s.Slowdown(19 * time.Second); !near(got, 1.9) {
		t.Errorf("running session's slowdown at 19 s = %v, want 1.9", got)
	}
	m.AdvanceTo(20 * time.Second)
	if s.End != 20*time.Second || m.Runnable() != 1 {
		t.Errorf("session end %v, runnable %d; want 20s, 1", s.End, m.Runnable())
	}
	m.AddBackground(-1)
	m.AddBackground(-1)
	if m.Runnable() != 0 {
		t.Errorf("runnable %d after the background left, want 0", m.Runnable())
	}
}

// A model samples busiest/mean during a burst as the simulator does:
// every 5 s from its start to a minute after its last login.
func TestModelBurstRatios(t *testing.T) {
	day := &sim.Day{
		Background: [][]sim.DaySpan{{{Start: 0, End: time.Hour}}, {{Start: 0, End: time.Hour}}, nil, nil},
		Bursts:     []time.Duration{10 * time.Second},
		TickPhase:  make([]time.Duration, 4),
		End:        time.Hour,
	}
	m := NewModel(day, 4, 20*time.Second)
	m.AdvanceTo(10 * time.Second) // sample 1: 1 1 0 0 → busiest 1 × 4 / 2
	m.Place(0, 1000, true)
	m.Place(0, 1000, true)
	m.AdvanceTo(15 * time.Second) // sample 2: 3 1 0 0 → 3 × 4 / 4
	m.AdvanceTo(2 * time.Minute)  // the rest, to 10 s + 20 s + 60 s
	got := m.BurstRatios(0)
	if len(got) != 17 {
		t.Fatalf("%d samples, want 17 (10 s to 90 s every 5 s): %v", len(got), got)
	}
	if got[0] != 2 || got[1] != 3 || got[16] != 3 {
		t.Errorf("ratios %v, want 2, then 3", got)
	}
	if mean, n := m.MeanSlowdown(); n != 2 || !near(mean, (2*time.Minute-10*time.Second).Seconds()/1000) {
		t.Errorf("mean slowdown %v of %d, want the running sessions' time so far ÷ work", mean, n)
	}
	if m.Unfinished() != 2 {
		t.Errorf("unfinished %d, want 2", m.Unfinished())
	}
}

// The agent's sampler reads what WriteSessions writes: the loads, the
// memory and one logged-in user per session.
func TestWriteSessionsReadByTheAgent(t *testing.T) {
	p := NewFakeProc(t, 4)
	for _, users := range []int{3, 1} {
		if err := p.WriteSessions([3]float64{1.25, 0.5, 0.25}, users, 10<<20); err != nil {
			t.Fatal(err)
		}
		s, err := sample.NewProc(p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.Sample()
		if err != nil {
			t.Fatal(err)
		}
		if l.Load1 != 1.25 || l.Load5 != 0.5 || l.Load15 != 0.25 || l.Users != users || l.MemAvailable != 10<<30 || l.MemTotal != 16<<30 {
			t.Errorf("sampled load %v/%v/%v, %d users, %d of %d bytes available; want 1.25/0.5/0.25, %d, %d of %d",
				l.Load1, l.Load5, l.Load15, l.Users, l.MemAvailable, l.MemTotal, users, 10<<30, 16<<30)
		}
	}
}
