//go:build peerload_next

package report

// The synthetic next release, built only for the mixed-version lab test
// (test/compat_test.go): it advertises and writes a protocol above this
// release's, bumps every version it writes, and appends fields nobody
// knows to every message, as a real next release would. It must stay in
// one cluster with this release and with 0.1.0.
const (
	ProtocolMax         = Protocol2 + 1
	ProtocolWrite       = Protocol2 + 1
	FramedReportVersion = 5
	framedBatchVersion  = 3
	compactVersion      = 2
)

// unknownFields look like a field a future release appends (a tag, a
// length and a value); every reader must skip them.
var unknownFields = []byte{0x7e, 0x04, 'n', 'e', 'x', 't'}
