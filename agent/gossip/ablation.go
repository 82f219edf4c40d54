package gossip

// testOptions are the settings only this package's tests and benchmarks
// change (through export_test.go), on a Config before New; the zero value
// is a release's member.
type testOptions struct {
	// protocolMax and protocolWrite override report.ProtocolMax and
	// report.ProtocolWrite (0: this build's), so one test process can run
	// members of several releases.
	protocolMax, protocolWrite int
	// ablations turns ideas of the design off for BenchmarkIdeas.
	ablations ablations
}

// ablations each turn one idea of the design off, so BenchmarkIdeas can
// weigh it on a running cluster; the zero value is the design. New reads
// them once, to choose the implementation each part of the member uses:
// nothing on the way of a message reads them.
type ablations struct {
	// fanOut sends every report whole to every member, without the relay
	// grid (the design before it).
	fanOut bool
	// whole relays whole reports only, never compact entries.
	whole bool
	// oneColumn lays the grid out as one column: every agent sends its
	// batch to every agent.
	oneColumn bool
	// fullPushPull makes the periodic push/pull carry every report held,
	// not only this member's own.
	fullPushPull bool
}
