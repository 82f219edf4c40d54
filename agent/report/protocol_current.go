//go:build !peerload_next

package report

// This release reads protocol 2 and writes protocol 1: protocol 2 is read
// first, so that the release that writes it finds every member of the
// release before it reading it.
const (
	// ProtocolMax is the highest protocol this release reads; members
	// advertise it as memberlist's DelegateProtocolMax.
	ProtocolMax = Protocol2
	// ProtocolWrite is the highest protocol this release writes.
	ProtocolWrite = Protocol1
	// FramedReportVersion is the report version written at protocol 2.
	FramedReportVersion = 4
	// framedBatchVersion and compactVersion head a framed batch.
	framedBatchVersion = 2
	compactVersion     = 1
)

// unknownFields is what this build appends after the fields it writes,
// for readers to skip: nothing. The synthetic next release appends bytes
// nobody knows, so the lab proves that this release skips them.
var unknownFields []byte
