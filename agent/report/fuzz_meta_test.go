package report

import (
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
)

// FuzzDecodeMeta: node meta comes from any member; decoding never panics
// and what decodes survives a round trip.
func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{},
		{Collector: true, Roles: []string{"nsupdate:example.edu./cslab.example.edu."}},
		{Addr4: netip.MustParseAddr("10.0.0.1"), Addr6: netip.MustParseAddr("fd00::1"), Pools: []string{"gpu", "cslab"}},
	} {
		b, err := AppendMeta(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		// A later release's meta: a higher version, host keys and a
		// field nobody knows yet.
		later := append([]byte{2}, b[1:]...)
		f.Add(append(later, 0, 0x7e, 2, 'n', 'x'))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		enc, err := AppendMeta(m)
		if err != nil {
			return // decodes, but too large to send again: fine
		}
		m2, err := DecodeMeta(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %+v -> %+v (%v)", m, m2, err)
		}
	})
}

// FuzzDecodeState: push/pull state and greetings come from any member;
// decoding never panics.
func FuzzDecodeState(f *testing.F) {
	f.Add(AppendState(nil, []*Report{{Node: "lab01", Generation: 1, Seq: 2}, {Node: "lab02", Lifetime: 17e9}}))
	f.Add(AppendHello(nil, "lab01", "10.0.0.1:7946"))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	// A later release's state: framed reports, one it cannot read, and a
	// trailer.
	later := binary.AppendUvarint(nil, 3)
	later = append(later, futureReport(&Report{Node: "lab01", Generation: 1, Seq: 2}, 9, []byte{1, 2})...)
	later = append(later, 7, 2, 0xff, 0xff)
	later = AppendReport(later, &Report{Node: "lab02", Lifetime: 17e9})
	f.Add(append(later, 0x7e, 1, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		reports, _ := DecodeState(b)
		for _, r := range reports {
			if r == nil || r.Node == "" {
				t.Fatalf("decoded an empty report from %x", b)
			}
		}
		_, _, _ = DecodeHello(b)
		_, _ = DecodeName(b)
	})
}
