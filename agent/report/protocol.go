package report

// Upgrades. A lab upgrades one machine at a time and may run two releases
// side by side for a week, so every message a member reads must be read by
// the release before it and the release after it. 0.1.0's decoders are
// released and cannot change: they reject a report above version 3 and a
// meta version other than 1, stop a batch at the first report they cannot
// read, and read compact entries by position. So:
//
//   - What every member reads, whatever it runs, stays in 0.1.0's format:
//     node meta (one blob memberlist sends to every member, including ones
//     that join later), push/pull state (memberlist asks for it without
//     saying for whom) and greetings. New fields go only after the fields
//     0.1.0 reads, where its decoders ignore them.
//   - What goes to chosen members (a report to a collector, a batch to a
//     column) is written at the highest protocol every live member
//     advertises (gossip's speaking level, from memberlist's delegate
//     version range), so a newer format reaches only members that read it.
//   - Today's decoders read tomorrow's formats: a report of a version above
//     reportVersion carries its length and begins with the fields of
//     version 3, so a reader takes those and skips what follows; a framed
//     batch gives every compact entry a length and a version; every
//     decoder ignores bytes after the fields it knows. Nothing is rejected
//     for being newer. A new format is read by one release and written by
//     the next (memberlist's MsgpackUseNewTimeFormat pattern).
//
// The protocols a member advertises:
//
//	1  0.1.0, which advertises nothing (memberlist shows 0): whole reports
//	   of version 3 and batches of AppendBatch.
//	2  reads framed reports (FramedReportVersion and above) and framed
//	   batches (AppendFramedBatch), skipping fields and entries it cannot
//	   read.
//
// ProtocolMax and ProtocolWrite are per build: protocol_current.go for
// releases, protocol_next.go for the synthetic next release the
// mixed-version lab test runs (go build -tags peerload_next).

// Protocol1 is 0.1.0's protocol, spoken whenever any live member does not
// advertise more.
const Protocol1 = 1

// Protocol2 reads framed reports and framed batches.
const Protocol2 = 2

// Speaking is the protocol a sender that writes up to write (this build:
// ProtocolWrite) speaks when its live members (itself included) advertise
// the protocols in advertised: the lowest of them, capped by write, and
// never below Protocol1. A member
// that advertises 0 (0.1.0, or a node whose version memberlist has not
// learnt yet: memberlist#180) counts as Protocol1, so a missing
// advertisement only ever makes a sender speak older.
func Speaking(write int, advertised []uint8) int {
	p := write
	for _, a := range advertised {
		p = min(p, max(int(a), Protocol1))
	}
	return max(p, Protocol1)
}
