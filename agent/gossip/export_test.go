package gossip

// Exported for the tests of package gossip_test.
var (
	Columns     = columns
	RelayPeriod = relayPeriod
)
