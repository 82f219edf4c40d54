package rfc2136

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := backoff{Min: time.Second, Max: 30 * time.Second}
	var got []time.Duration
	for range 7 {
		got = append(got, b.fail())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v seconds", got, want)
		}
	}
	b.reset()
	if d := b.fail(); d != time.Second {
		t.Fatalf("after reset: %s, want 1s", d)
	}
}
