package report

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"testing"
	"time"
)

func sampleReport() *Report {
	return &Report{
		Node: "lab03", Generation: 7, Seq: 12345, Base: 12300, Age: 1500 * time.Millisecond, Lifetime: 17 * time.Second,
		Load: Load{Load1: 0.5, Load5: 0.25, Load15: 2, CPUs: 8, CPUUtil: 0.125,
			MemTotal: 16 << 30, MemAvailable: 9 << 30, SwapUsed: 1 << 20, CPUPressure: 1.5,
			Users: 3, Uptime: 36 * time.Hour},
		Failing: []CheckResult{{Name: "nologin", Reason: "/etc/nologin: maintenance"}},
	}
}

func TestReportRoundTrip(t *testing.T) {
	r := sampleReport()
	b := AppendReport(nil, r)
	got, rest, err := DecodeReport(append(b, 0xEE))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rest, []byte{0xEE}) {
		t.Errorf("rest = %x, want the trailing byte", rest)
	}
	if !reflect.DeepEqual(got, r) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
	}
	healthy := *r
	healthy.Failing = nil
	if n := len(AppendReport(nil, &healthy)); n > 64 {
		t.Errorf("a healthy report takes %d bytes, want <= 64", n)
	}
}

func TestDecodeReportRejectsTruncatedAndGarbage(t *testing.T) {
	b := AppendReport(nil, sampleReport())
	for i := range len(b) {
		if _, _, err := DecodeReport(b[:i]); err == nil {
			t.Fatalf("truncated to %d of %d bytes decoded without error", i, len(b))
		}
	}
	bad := [][]byte{
		{9},           // unknown version
		{1, 0},        // empty name
		{1, 200, 'x'}, // name longer than the data
		append([]byte{1, 1, 'n'}, bytes.Repeat([]byte{0xff}, 12)...), // endless varint
	}
	for _, in := range bad {
		if _, _, err := DecodeReport(in); err == nil {
			t.Errorf("DecodeReport(%x) succeeded", in)
		}
	}
	// Numbers that no real node reports.
	for _, l := range []float64{math.NaN(), math.Inf(1), 1e12} {
		if _, _, err := DecodeReport(AppendReport(nil, &Report{Node: "n", Load: Load{Load1: l}})); err == nil {
			t.Errorf("load1 %v decoded without error", l)
		}
	}
}

func TestReportOrdering(t *testing.T) {
	old := &Report{Generation: 1, Seq: 100}
	if !(&Report{Generation: 1, Seq: 101}).Newer(old) {
		t.Error("higher seq must win")
	}
	if !(&Report{Generation: 2, Seq: 1}).Newer(old) {
		t.Error("a new generation must win even with a lower seq")
	}
	if (&Report{Generation: 1, Seq: 100}).Newer(old) {
		t.Error("an equal report is not newer")
	}
	if !old.Newer(nil) {
		t.Error("anything is newer than nothing")
	}
}

// TestDecodeOlderVersions: reports of the previous releases (version 1
// without Lifetime, version 2 without Base) still decode, each its own
// epoch, so a rolling upgrade keeps every member's load.
func TestDecodeOlderVersions(t *testing.T) {
	r := sampleReport()
	b := AppendReport(nil, r)
	b = b[:len(b)-len(binary.AppendUvarint(nil, r.Seq-r.Base))] // version 3 without Base
	r.Base = r.Seq
	v2 := append([]byte{2}, b[1:]...)
	got, rest, err := DecodeReport(v2)
	if err != nil || len(rest) != 0 || !reflect.DeepEqual(got, r) {
		t.Fatalf("v2 report: %+v %d %v, want %+v", got, len(rest), err, r)
	}
	r.Lifetime = 0
	v1 := appendString([]byte{1}, r.Node, MaxNameBytes)
	v1 = binary.AppendUvarint(v1, r.Generation)
	v1 = binary.AppendUvarint(v1, r.Seq)
	v1 = binary.AppendUvarint(v1, uint64(r.Age/time.Millisecond))
	lifetime := len(binary.AppendUvarint(nil, uint64(17*time.Second/time.Millisecond)))
	v1 = append(v1, b[len(v1)+lifetime:]...) // the same fields without Lifetime
	got, rest, err = DecodeReport(v1)
	if err != nil || len(rest) != 0 || !reflect.DeepEqual(got, r) {
		t.Fatalf("v1 report: %+v %d %v, want %+v", got, len(rest), err, r)
	}
}
