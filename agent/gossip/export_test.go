package gossip

import "time"

// Exported for the tests of package gossip_test.
var (
	Columns     = columns
	RelayPeriod = relayPeriod
)

// Ablation bits (see ablateFanOut...).
const (
	AblateFanOut       = ablateFanOut
	AblateWhole        = ablateWhole
	AblateOneColumn    = ablateOneColumn
	AblateFullPushPull = ablateFullPushPull
)

// SetAblation switches ideas of the design off on a running member.
func SetAblation(m *Member, bits uint32) { m.ablate.Store(bits) }

// ReconnectTarget is the address reconnectLoop would join now, or "".
func ReconnectTarget(m *Member) string { return m.reconnectTarget(time.Now()) }

// Hello is m receiving a greeting from the member name at addr.
func Hello(m *Member, name, addr string) { m.hello(name, addr) }

// SetProtocols makes a member of cfg advertise protocol max and write up
// to write, as a member of another release would.
func SetProtocols(cfg *Config, max, write int) { cfg.protocolMax, cfg.protocolWrite = max, write }
