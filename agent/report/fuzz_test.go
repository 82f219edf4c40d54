package report

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeReport feeds DecodeReport arbitrary bytes: it must never panic,
// and whatever it accepts must survive a round trip through AppendReport
// unchanged, so relaying a report (push/pull) never alters it.
func FuzzDecodeReport(f *testing.F) {
	seeds := []*Report{
		{Node: "lab01", Generation: 1, Seq: 1},
		{
			Node: "lab02.cs.example.edu", Generation: 1 << 40, Seq: 123456, Age: 1500 * time.Millisecond,
			Load: Load{
				Load1: 1.5, Load5: 0.75, Load15: 0.25, CPUs: 16, CPUUtil: 0.42,
				MemTotal: 64 << 30, MemAvailable: 12 << 30, SwapUsed: 1 << 20,
				CPUPressure: 3.5, Users: 7, Uptime: 40 * 24 * time.Hour,
			},
			Failing: []CheckResult{{Name: "drain", Reason: "drained: disk swap"}, {Name: "tmp", Reason: "/tmp is 97.0% full (limit 95%)"}},
		},
		{Node: strings.Repeat("n", MaxNameBytes), Load: Load{CPUPressure: -1}, Failing: make([]CheckResult, maxFailing)},
	}
	for _, r := range seeds {
		b := AppendReport(nil, r)
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(b, AppendReport(nil, seeds[0])...))
	}
	f.Add([]byte{})
	f.Add([]byte{reportVersion})
	f.Add([]byte{2, 1, 'x'})
	// Reports of later releases: framed, of versions this release never
	// wrote, with fields appended.
	for _, r := range seeds {
		f.Add(AppendFramedReport(nil, r))
		f.Add(futureReport(r, 9, []byte{0x7e, 3, 1, 2, 3}))
		f.Add(futureReport(r, 255, nil)[:8])
	}

	f.Fuzz(func(t *testing.T, b []byte) {
		r, rest, err := DecodeReport(b)
		if err != nil {
			if r != nil || rest != nil {
				t.Fatalf("error %v with report %+v and rest %d bytes", err, r, len(rest))
			}
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest is %d bytes of %d", len(rest), len(b))
		}
		enc := AppendReport(nil, r)
		if len(enc) > maxReportBytes {
			t.Fatalf("re-encoded report is %d bytes, more than maxReportBytes %d", len(enc), maxReportBytes)
		}
		r2, rest2, err := DecodeReport(enc)
		if err != nil {
			t.Fatalf("re-encoded report does not decode: %v\nreport %+v", err, r)
		}
		if len(rest2) != 0 {
			t.Fatalf("re-encoded report leaves %d bytes", len(rest2))
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the report:\n %+v\n %+v", r, r2)
		}
	})
}
