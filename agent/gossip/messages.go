package gossip

// Message types on the wire, the first byte of every user message.
const (
	msgReport byte = 1 // one whole Report, sent by its node
	msgState  byte = 2 // push/pull state: every report a member holds
	msgLeave  byte = 3 // a member's goodbye, so others show it as left
	msgHello  byte = 4 // a member's name and address, sent to members it meets
	msgRelay  byte = 5 // a batch with its sender's report, to relay to a column
	msgBatch  byte = 6 // a batch of reports relayed to a column
	msgWant   byte = 7 // a member's name: it asks for the receiver's report (a missed epoch, an overdue report)
	// Protocol 2 (report.Protocol2): sent only while every live member
	// advertises it (see roster.speaking).
	msgRelay2 byte = 8 // msgRelay as a framed batch
	msgBatch2 byte = 9 // msgBatch as a framed batch
)

// Message types are only ever appended: a type a member does not know
// comes from a later release and is dropped (counted "unknown"), and a
// sender uses a new one only with members that advertise its protocol.

// What became of an incoming report or message, as New's received counts
// it.
const (
	resultApplied = "applied"  // newer than what was held
	resultOld     = "old"      // not newer, or of this member or no member
	resultNoEpoch = "no_epoch" // a compact entry of an epoch not held
	resultInvalid = "invalid"  // did not decode (what did is applied)
	resultUnknown = "unknown"  // a message type of a later release
)
