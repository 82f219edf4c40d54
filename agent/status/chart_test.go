package status

import (
	"testing"
	"time"
)

func TestBinsPath(t *testing.T) {
	b := newBins(t0, 10*time.Second, 10)
	for _, s := range []int{0, 2, 3, 9} { // 1 s bins; bin 1 empty, 4..8 empty
		b.add(t0.Add(time.Duration(s)*time.Second+time.Millisecond), float64(s))
	}
	b.add(t0.Add(-time.Second), 100)                 // before the span: ignored
	b.add(t0.Add(10*time.Second), 100)               // after it: ignored
	b.add(t0.Add(3*time.Second+time.Millisecond), 5) // bin 3 averages 3 and 5
	// One empty bin is bridged, five are a gap; bin 9 alone is a dash.
	got := string(b.path(nil, 0, 0, 100, 10, 10, 2*time.Second, 0))
	if want := "M5 10L25 8L35 6M90 1L100 1"; got != want {
		t.Fatalf("path %q, want %q", got, want)
	}
	if b.max() != 9 {
		t.Fatalf("max %v", b.max())
	}
	if got := string(newBins(t0, time.Second, 4).path(nil, 0, 0, 1, 1, 1, 0, 0)); got != "" {
		t.Fatalf("empty bins drew %q", got)
	}
}

func TestNiceCeil(t *testing.T) {
	for v, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 3: 5, 7: 10, 30: 50, 120: 200} {
		if got := niceCeil(v); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", v, got, want)
		}
	}
}
