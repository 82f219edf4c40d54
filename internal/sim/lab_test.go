package sim

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// oneMachine is a workload by hand: logins at the given times with the
// given CPU work (seconds) on a lab of one machine, no background.
func oneMachine(cfg *Config, at []time.Duration, work []float64) *workload {
	w := &workload{
		background:  [][]span{nil},
		samplePhase: []time.Duration{0},
		tickPhase:   []time.Duration{0},
		end:         time.Hour,
	}
	for i := range at {
		w.logins = append(w.logins, login{at: at[i], work: work[i], measured: true})
	}
	return w
}

func TestProcessorSharing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Machines, cfg.Cores = 1, 2
	// Four 60 s jobs at once on two cores: each runs at half speed and
	// takes 120 s, slowdown 2. Then one job alone: slowdown 1.
	w := oneMachine(&cfg, []time.Duration{0, 0, 0, 0, 10 * time.Minute}, []float64{60, 60, 60, 60, 30})
	r := runPolicy(&cfg, w, PolicyRandom)
	if r.Sessions != 5 || r.Unfinished != 0 {
		t.Fatalf("%d sessions, %d unfinished; want 5, 0", r.Sessions, r.Unfinished)
	}
	if want := (4*2 + 1) / 5.0; math.Abs(r.MeanSlowdown-want) > 1e-9 {
		t.Errorf("mean slowdown %v, want %v", r.MeanSlowdown, want)
	}
	// Three jobs on two cores run at 2/3 speed: the 30 s one is done at
	// 45 s (slowdown 1.5); by then the 120 s ones have done 30 s each and
	// finish their 90 s alone, at 135 s (slowdown 1.125).
	w = oneMachine(&cfg, []time.Duration{0, 0, 0}, []float64{30, 120, 120})
	r = runPolicy(&cfg, w, PolicyRandom)
	if want := (1.5 + 2*1.125) / 3; math.Abs(r.MeanSlowdown-want) > 1e-9 {
		t.Errorf("mean slowdown %v, want %v", r.MeanSlowdown, want)
	}
}

// small is a lab small enough to assert its results exactly, at the top
// and TTL of 0.1.0 so that its figures test the model, not the defaults.
func small() Config {
	cfg := DefaultConfig()
	cfg.Top, cfg.TTL = 3, 30*time.Second
	cfg.Machines, cfg.Cores = 8, 2
	cfg.Burst, cfg.BurstEvery = 6, 5*time.Minute
	cfg.Duration, cfg.Warmup = 20*time.Minute, 5*time.Minute
	cfg.Seed = 42
	cfg.TraceEvery = 30 * time.Second
	return cfg
}

func TestSmallScenarioExactly(t *testing.T) {
	rs, err := Run(small())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %.6f %.6f %.6f %.6f %d %d %d\n", r.Policy, r.MeanSlowdown, r.P95Slowdown, r.BusiestRatio, r.BusiestPeak, r.Sessions, r.Unfinished, r.Queries)
	}
	want := `round-robin 1.028149 1.217342 2.075919 2.928571 28 0 37
random 1.160580 1.500000 2.418921 2.866667 28 0 0
peermon 1.115851 1.551923 2.353123 3.038095 28 0 37
lbnamed 1.160842 1.789490 2.587091 3.357143 28 0 37
peerload-noherd 1.086710 1.500000 1.985752 2.695455 28 0 37
peerload 1.065610 1.500000 2.099059 2.738095 28 0 37
peerload-herd 1.065610 1.500000 2.099059 2.738095 28 0 37
oracle 1.000000 1.000000 1.691489 2.182540 28 0 0
`
	if got := b.String(); got != want {
		t.Errorf("results changed:\n%s\nwant:\n%s", got, want)
	}
}

func TestSameSeedSameResult(t *testing.T) {
	a, err := Run(small())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Run(small())
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of one Config differ")
	}
	for _, r := range a {
		if r.Sessions != a[0].Sessions {
			t.Errorf("%s measured %d logins, %s %d: policies must share one workload", r.Policy, r.Sessions, a[0].Policy, a[0].Sessions)
		}
	}
}

// Without resolver caches every login asks the server: the herd spreads a
// burst that plain peerload sends to the machines that looked best.
func TestHerdSpreadsBurstsWithoutCaching(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TTL = 0
	cfg.Duration = time.Hour
	cfg.Policies = []string{PolicyPeerloadNoHerd, PolicyPeerload}
	rs, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain, herd := rs[0], rs[1]
	if herd.BusiestPeak >= plain.BusiestPeak || herd.MeanSlowdown >= plain.MeanSlowdown {
		t.Errorf("peerload (busiest peak %.2f, mean slowdown %.3f) not better than without its herd (%.2f, %.3f)",
			herd.BusiestPeak, herd.MeanSlowdown, plain.BusiestPeak, plain.MeanSlowdown)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Policies = []string{"dns-magic"}
	err := cfg.Validate()
	if ce, ok := err.(*ConfigError); !ok || ce.Field != "policy" {
		t.Errorf("Validate() = %v, want a ConfigError on policy", err)
	}
	if _, err := Run(cfg); err == nil {
		t.Error("Run accepted an unknown policy")
	}
}
