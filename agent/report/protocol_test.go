package report

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"slices"
	"testing"
	"time"
)

func goldenReport() *Report {
	return &Report{Node: "lab07", Generation: 3, Seq: 41, Base: 40, Age: 1500 * time.Millisecond, Lifetime: 17 * time.Second,
		Load: Load{Load1: 1.5, Load5: 0.75, Load15: 0.25, CPUs: 8, CPUUtil: 0.4, MemTotal: 16 << 30, MemAvailable: 6 << 30,
			SwapUsed: 1 << 20, CPUPressure: 2.5, Users: 3, Uptime: 90 * time.Hour},
		Failing: []CheckResult{{Name: "tmp", Reason: "full"}}}
}

// futureReport is r as a release far ahead might write it: a version this
// release has never seen, framed, with fields appended that nobody knows.
func futureReport(r *Report, version byte, appended []byte) []byte {
	body := append(AppendReport(nil, r)[1:], appended...)
	b := binary.AppendUvarint([]byte{version}, uint64(len(body)))
	return append(b, body...)
}

// roundTrip is r as it reads after a trip through the wire (the float32
// fields lose precision).
func roundTrip(t *testing.T, r *Report) *Report {
	t.Helper()
	got, _, err := DecodeReport(AppendReport(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestReadsLaterReports: a report of any version above this release's is
// read for the fields this release knows, and what a later release
// appended is skipped, so the next report of a list still decodes.
func TestReadsLaterReports(t *testing.T) {
	r := goldenReport()
	want := roundTrip(t, r)
	for _, v := range []byte{4, 5, 9, 255} {
		b := futureReport(r, v, []byte("fields of a later release"))
		b = append(b, 0xEE)
		got, rest, err := DecodeReport(b)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		if !reflect.DeepEqual(got, want) || !slices.Equal(rest, []byte{0xEE}) {
			t.Errorf("version %d: %+v, rest %x", v, got, rest)
		}
	}
	if got, rest, err := DecodeReport(AppendFramedReport(nil, r)); err != nil || !reflect.DeepEqual(got, want) || len(rest) != 0 {
		t.Errorf("framed report: %+v, rest %x, %v", got, rest, err)
	}
	for _, bad := range [][]byte{
		{0},                   // version 0 never existed
		{4},                   // no length
		{4, 10, 1, 2},         // shorter than it says
		{4, 2, 1, 'x'},        // fields of version 3 cut short
		{5, 0xff, 0xff, 0x7f}, // longer than any report may be
		futureReport(r, 6, nil)[:20],
	} {
		if _, _, err := DecodeReport(bad); err == nil {
			t.Errorf("%x decoded", bad)
		}
	}
	if got := AppendReportAt(nil, r, Protocol2); got[0] != FramedReportVersion {
		t.Errorf("protocol 2 writes version %d, want %d", got[0], FramedReportVersion)
	}
}

// TestListsSkipWhatTheyCannotRead: a batch or state that holds a report
// this release cannot read (its fields do not decode, but its frame says
// where it ends) or a compact entry out of range keeps the entries after
// it: issue 22, where one unreadable report dropped the rest of a batch.
func TestListsSkipWhatTheyCannotRead(t *testing.T) {
	good := goldenReport()
	other := &Report{Node: "lab08", Generation: 1, Seq: 2, Base: 1}
	broken := []byte{7, 3, 0xff, 0xff, 0xff} // version 7, three bytes of nothing this release reads
	c := Compact{ID: 7, Epoch: 9, Delta: 3, Load1: 1}
	badCompact := AppendCompact(nil, Compact{ID: 8, Epoch: 1, Delta: 1})
	badCompact[4] = 0 // epoch delta 0

	var batch []byte
	batch = binary.AppendUvarint(batch, 3)
	batch = append(batch, futureReport(good, 9, []byte{1, 2, 3})...)
	batch = append(batch, broken...)
	batch = AppendReport(batch, other)
	batch = binary.AppendUvarint(batch, 3)
	batch = AppendCompact(batch, c)
	batch = append(batch, badCompact...)
	batch = AppendCompact(batch, c)
	batch = append(batch, "a later release's section"...)
	w, cs, err := DecodeBatch(batch)
	if len(w) != 2 || w[0].Node != "lab07" || w[1].Node != "lab08" || len(cs) != 2 {
		t.Fatalf("batch: %d reports, %d entries (%v)", len(w), len(cs), err)
	}
	if err == nil {
		t.Error("a batch with an unreadable report decoded without an error to count")
	}

	state := binary.AppendUvarint(nil, 3)
	state = append(state, broken...)
	state = append(state, futureReport(good, 4, nil)...)
	state = AppendReport(state, other)
	state = append(state, "trailer"...)
	rs, err := DecodeState(state)
	if len(rs) != 2 || rs[0].Node != "lab07" || rs[1].Node != "lab08" || err == nil {
		t.Fatalf("state: %d reports, %v", len(rs), err)
	}
	// An unframed report that does not decode leaves nothing to find the
	// next one by: the list ends there, as in 0.1.0.
	state = binary.AppendUvarint(nil, 2)
	state = append(state, 3, 0)
	state = AppendReport(state, other)
	if rs, err := DecodeState(state); len(rs) != 0 || err == nil {
		t.Errorf("state after an unframed bad report: %d reports, %v", len(rs), err)
	}
}

// TestFramedBatch: the batch of protocol 2 round-trips, reads later batch
// and compact versions with fields appended everywhere, and skips entries
// it cannot read.
func TestFramedBatch(t *testing.T) {
	whole := []*Report{goldenReport(), {Node: "b", Generation: 1, Seq: 1, Base: 1}}
	compact := []Compact{{ID: 7, Epoch: 9, Delta: 3, Age: 2 * time.Second, Load1: 1.25, CPUUtil: 0.5, MemAvailable: 1}, {ID: 1, Delta: 1}}
	b := AppendFramedBatch(nil, whole, compact)
	w, c, err := DecodeFramedBatch(b)
	if err != nil || len(w) != 2 || !reflect.DeepEqual(w[1], whole[1]) || !reflect.DeepEqual(c, compact) {
		t.Fatalf("round trip: %+v %+v %v", w, c, err)
	}
	if limit := len(AppendBatch(nil, whole, compact)) + FramedBatchBytes(len(whole), len(compact)); len(b) > limit {
		t.Errorf("framed batch is %d bytes, FramedBatchBytes allows %d", len(b), limit)
	}
	for i := range len(b) - len(unknownFields) {
		if w, c, err := DecodeFramedBatch(b[:i]); err == nil && len(w)+len(c) == 4 {
			t.Fatalf("truncated batch (%d of %d bytes) decoded whole", i, len(b))
		}
	}

	// A batch of a later release: batch version 9, compact version 4,
	// fields appended to every entry and to the batch, one report and one
	// entry this release cannot read.
	later := []byte{9, 4}
	later = binary.AppendUvarint(later, 3)
	later = append(later, futureReport(whole[0], 12, []byte("more"))...)
	later = append(later, 12, 2, 0xff, 0xff)
	later = append(later, futureReport(whole[1], 12, nil)...)
	later = binary.AppendUvarint(later, 3)
	for i, e := range [][]byte{AppendCompact(nil, compact[0]), {1, 2, 3}, AppendCompact(nil, compact[1])} {
		e = append(e, byte(i), 0x55, 0x66)
		later = binary.AppendUvarint(later, uint64(len(e)))
		later = append(later, e...)
	}
	later = append(later, "a later section"...)
	w, c, err = DecodeFramedBatch(later)
	if len(w) != 2 || w[0].Node != "lab07" || w[1].Node != "b" || !reflect.DeepEqual(c, compact) {
		t.Fatalf("later batch: %+v %+v %v", w, c, err)
	}
	if err == nil {
		t.Error("unreadable entries skipped without an error to count")
	}
	if _, _, err := DecodeFramedBatch([]byte{1, 1, 0, 0}); err == nil {
		t.Error("batch version 1 read as a framed batch")
	}
}

// TestReadsLaterMeta: meta of a later version, with fields appended, is
// read for what this release knows; a member is never taken for a
// collector (and so never a candidate) for being newer.
func TestReadsLaterMeta(t *testing.T) {
	m := Meta{Relays: true, Addr4: netip.MustParseAddr("10.0.0.7"), Pools: []string{"gpu"}, HostKeys: []byte{1, 2}}
	b, err := AppendMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeMeta(b); err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	later := append([]byte{2}, b[1:]...)
	later = append(later, 0x7e, 3, 'a', 'b', 'c')
	if got, err := DecodeMeta(later); err != nil || !reflect.DeepEqual(got, m) {
		t.Errorf("meta version 2 with a field appended: %+v %v", got, err)
	}
	noKeys, _ := AppendMeta(Meta{Relays: true})
	noKeys = append(noKeys[:len(noKeys)-len(unknownFields)], 0, 0x7e, 1, 'x') // no host keys, then a later field
	if got, err := DecodeMeta(noKeys); err != nil || !got.Relays || got.Collector || got.HostKeys != nil {
		t.Errorf("meta without host keys and a later field: %+v %v", got, err)
	}
	if _, err := DecodeMeta([]byte{0, 2}); err == nil {
		t.Error("meta version 0 decoded")
	}
}

// TestGreetingsIgnoreLaterFields: a greeting, goodbye or request with
// fields appended reads as before.
func TestGreetingsIgnoreLaterFields(t *testing.T) {
	h := append(AppendHello(nil, "lab07", "10.0.0.7:7946"), 0x7e, 1, 'x')
	if name, addr, err := DecodeHello(h); err != nil || name != "lab07" || addr != "10.0.0.7:7946" {
		t.Errorf("hello: %q %q %v", name, addr, err)
	}
	if name, err := DecodeName(append(AppendName(nil, "lab07"), 1, 2, 3)); err != nil || name != "lab07" {
		t.Errorf("name: %q %v", name, err)
	}
}

// TestSpeaking: the lowest protocol any live member advertises, capped by
// what this build writes; a member that advertises nothing is 0.1.0.
func TestSpeaking(t *testing.T) {
	for _, tc := range []struct {
		advertised []uint8
		want       int
	}{
		{nil, ProtocolWrite},
		{[]uint8{0}, Protocol1},
		{[]uint8{2, 2, 0}, Protocol1},
		{[]uint8{2, 200}, min(2, ProtocolWrite)},
		{[]uint8{200}, ProtocolWrite},
	} {
		if got := Speaking(ProtocolWrite, tc.advertised); got != tc.want {
			t.Errorf("Speaking(%v) = %d, want %d", tc.advertised, got, tc.want)
		}
	}
	if got := Speaking(3, []uint8{2, 3}); got != 2 {
		t.Errorf("a writer of protocol 3 among readers of 2 speaks %d", got)
	}
	if ProtocolWrite > ProtocolMax {
		t.Errorf("this build writes protocol %d but reads only %d", ProtocolWrite, ProtocolMax)
	}
}
