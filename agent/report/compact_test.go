package report

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestCompactRebuildsTheReport(t *testing.T) {
	base := sampleReport()
	base.Base = base.Seq
	base.Failing = nil
	next := *base
	next.Seq, next.Age = base.Seq+5, 300*time.Millisecond
	next.Load.Load1, next.Load.CPUUtil, next.Load.MemAvailable = 3.14, 0.5, 4<<30
	if StartsEpoch(base, &next) {
		t.Fatal("a change of hot fields only starts an epoch")
	}
	if _, ok := CompactOf(base, 1); ok {
		t.Fatal("the report that begins an epoch went compact")
	}
	c, ok := CompactOf(&next, NodeID(next.Node))
	if !ok {
		t.Fatal("the next report cannot go compact")
	}
	b := AppendCompact(nil, c)
	if len(b) != 11 {
		t.Errorf("compact entry is %d bytes, want 11", len(b))
	}
	got, rest, err := DecodeCompact(append(b, 0xEE))
	if err != nil || len(rest) != 1 {
		t.Fatalf("decode: %v, %d bytes left", err, len(rest))
	}
	r, ok := got.Rebuild(base, 10*time.Second)
	if !ok {
		t.Fatal("rebuild on the epoch's first report failed")
	}
	want := next
	want.Load.Uptime = base.Load.Uptime + 10*time.Second
	if math.Abs(float64(r.Load.MemAvailable)-float64(want.Load.MemAvailable)) > float64(want.Load.MemTotal)/compactMemScale+1024 {
		t.Errorf("memory available %d, want about %d", r.Load.MemAvailable, want.Load.MemAvailable)
	}
	r.Load.MemAvailable = want.Load.MemAvailable
	if !reflect.DeepEqual(r, &want) {
		t.Errorf("rebuilt\n %+v\nwant\n %+v", r, &want)
	}
	// A later report of the epoch rebuilds on a rebuilt one.
	next2 := next
	next2.Seq++
	c2, _ := CompactOf(&next2, 1)
	if r2, ok := c2.Rebuild(r, 0); !ok || r2.Seq != next2.Seq {
		t.Errorf("rebuild on a rebuilt report: %+v %v", r2, ok)
	}
	// Another epoch cannot rebuild it.
	other := *base
	other.Generation++
	if _, ok := got.Rebuild(&other, 0); ok {
		t.Error("rebuilt on another generation")
	}
	if _, ok := got.Rebuild(nil, 0); ok {
		t.Error("rebuilt on nothing")
	}
}

func TestStartsEpoch(t *testing.T) {
	base := sampleReport()
	base.Base = base.Seq
	cases := []struct {
		name string
		mod  func(*Report)
		want bool
	}{
		{"hot fields", func(r *Report) { r.Load.Load1 += 3; r.Load.CPUUtil = 0.9; r.Load.MemAvailable /= 2 }, false},
		{"load5 drifts a little", func(r *Report) { r.Load.Load5 += 0.1 }, false},
		{"load5 moves", func(r *Report) { r.Load.Load5 += 1 }, true},
		{"a check fails", func(r *Report) { r.Failing = append(r.Failing, CheckResult{Name: "tmp"}) }, true},
		{"a user logs in", func(r *Report) { r.Load.Users++ }, true},
		{"restart", func(r *Report) { r.Generation++ }, true},
		{"epoch full", func(r *Report) { r.Seq = base.Seq + MaxEpochReports }, true},
		{"huge load", func(r *Report) { r.Load.Load1 = 1000 }, true},
	}
	for _, tc := range cases {
		next := *base
		next.Seq++
		tc.mod(&next)
		if got := StartsEpoch(base, &next); got != tc.want {
			t.Errorf("%s: StartsEpoch = %v, want %v", tc.name, got, tc.want)
		}
	}
	if !StartsEpoch(nil, base) {
		t.Error("the first report must start an epoch")
	}
}

func TestBatchRoundTrip(t *testing.T) {
	whole := []*Report{sampleReport(), {Node: "b", Generation: 1, Seq: 1, Base: 1}}
	compact := []Compact{{ID: 7, Epoch: 9, Delta: 3, Age: 2 * time.Second, Load1: 1.25, CPUUtil: 0.5, MemAvailable: 0.5}}
	b := AppendBatch(nil, whole, compact)
	w, c, err := DecodeBatch(b)
	if err != nil || !reflect.DeepEqual(w, whole) || len(c) != 1 || c[0].ID != 7 || c[0].Delta != 3 || c[0].Age != 2*time.Second {
		t.Fatalf("batch round trip: %+v %+v %v", w, c, err)
	}
	for i := range len(b) {
		if _, _, err := DecodeBatch(b[:i]); err == nil {
			t.Fatalf("truncated batch (%d of %d bytes) decoded", i, len(b))
		}
	}
	// What follows the entries is a later release's: ignored.
	if w, c, err := DecodeBatch(append(b, 0)); err != nil || len(w) != 2 || len(c) != 1 {
		t.Errorf("trailing byte: %d reports, %d entries, %v", len(w), len(c), err)
	}
}

// FuzzDecodeBatch: DecodeBatch and DecodeFramedBatch never panic on
// arbitrary bytes, and every entry they return is one a member can send on.
func FuzzDecodeBatch(f *testing.F) {
	whole := []*Report{sampleReport()}
	compact := []Compact{{ID: 1, Delta: 1}, {ID: 2, Epoch: 3, Delta: 4, Load1: 2}}
	f.Add(AppendBatch(nil, whole, compact))
	f.Add([]byte{0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add(AppendFramedBatch(nil, whole, compact))
	// Later releases: a framed report and a framed batch of versions
	// this release never wrote, with fields appended.
	later := binary.AppendUvarint(nil, 2)
	later = append(later, futureReport(whole[0], 9, []byte{0x7e, 1, 0})...)
	later = append(later, 7, 1, 0xff)
	f.Add(append(AppendCompact(binary.AppendUvarint(later, 1), compact[1]), 0x7e, 1, 0))
	f.Add(append([]byte{9, 4}, AppendFramedBatch(nil, whole, compact)[2:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func([]byte) ([]*Report, []Compact, error){DecodeBatch, DecodeFramedBatch} {
			w, c, _ := decode(b)
			for _, r := range w {
				if r == nil || r.Node == "" {
					t.Fatalf("decoded an empty report from %x", b)
				}
			}
			if got := AppendBatch(nil, w, c); len(got) > 2+len(b)+len(w)*maxReportBytes+len(c)*12 {
				t.Fatalf("re-encoded batch grew from %d to %d bytes", len(b), len(got))
			}
		}
	})
}

// TestMetaRelaysFlag: the relay flag survives a round trip, and the meta
// of an earlier release (no flag) reads as a member outside the grid.
func TestMetaRelaysFlag(t *testing.T) {
	b, err := AppendMeta(Meta{Relays: true, Collector: true})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := DecodeMeta(b); err != nil || !m.Relays || !m.Collector {
		t.Errorf("round trip: %+v %v", m, err)
	}
	if m, err := DecodeMeta([]byte{metaVersion, 0, 0, 0, 0, 0}); err != nil || m.Relays {
		t.Errorf("earlier release's meta: %+v %v", m, err)
	}
}
