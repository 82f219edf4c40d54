//go:build !peerload_next

package report

import (
	"encoding/hex"
	"net/netip"
	"testing"
	"time"
)

// TestWritesWhat010Reads: what this release writes to any member is, byte
// for byte, what 0.1.0 wrote (the hex below came from 0.1.0's encoders,
// tag v0.1.0, on the same values), so 0.1.0's released decoders read it.
// The synthetic next release appends fields, so the test is not built
// with -tags peerload_next.
func TestWritesWhat010Reads(t *testing.T) {
	r := goldenReport()
	c := Compact{ID: 0xabcdef, Epoch: 9, Delta: 3, Age: 2 * time.Second, Load1: 1.25, CPUUtil: 0.5, MemAvailable: 0.5}
	meta := func(m Meta) []byte {
		b, err := AppendMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"report", AppendReport(nil, r), golden010Report},
		{"report at protocol 1", AppendReportAt(nil, r, Protocol1), golden010Report},
		{"batch", AppendBatch(nil, []*Report{r}, []Compact{c}), "01" + golden010Report + "01abcdef090314007d7d8000"},
		{"state", AppendState(nil, []*Report{r}), "01" + golden010Report},
		{"hello", AppendHello(nil, "lab07", "10.0.0.7:7946"), "056c616230370d31302e302e302e373a37393436"},
		{"name", AppendName(nil, "lab07"), "056c61623037"},
		{"meta", meta(Meta{Relays: true, Addr4: netip.MustParseAddr("10.0.0.7"), Pools: []string{"gpu"}}), "0102040a00000700010367707500"},
		{"meta with host keys", meta(Meta{Collector: true, Relays: true, HostKeys: []byte{1, 2, 3}}), "01030000000003010203"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s (0.1.0's)", tc.name, got, tc.want)
		}
	}
	if p := Speaking(ProtocolWrite, nil); p != Protocol1 {
		t.Errorf("this release speaks protocol %d alone; it writes protocol 1 until the next release", p)
	}
}

// golden010Report is 0.1.0's AppendReport of goldenReport.
const golden010Report = "03056c616230370329dc0be884013fc000003f4000003e800000083ecccccd808080088080800380084020000003a0e3130103746d700466756c6c01"
