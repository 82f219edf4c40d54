package gossip

import "time"

// Exported for the tests of package gossip_test.
var (
	Columns     = columns
	RelayPeriod = relayPeriod
)

// Ablation bits, one per field of ablations.
const (
	AblateFanOut = 1 << iota
	AblateWhole
	AblateOneColumn
	AblateFullPushPull
)

// SetAblations makes a member of cfg run with the ideas of the design
// that bits names switched off.
func SetAblations(cfg *Config, bits uint32) {
	cfg.test.ablations = ablations{
		fanOut:       bits&AblateFanOut != 0,
		whole:        bits&AblateWhole != 0,
		oneColumn:    bits&AblateOneColumn != 0,
		fullPushPull: bits&AblateFullPushPull != 0,
	}
}

// ReconnectTarget is the address m's reconnector would join now, or "".
func ReconnectTarget(m *Member) string { return m.reconnect.target(time.Now()) }

// Hello is m receiving a greeting from the member name at addr.
func Hello(m *Member, name, addr string) { m.greeter.hello(name, addr) }

// SetProtocols makes a member of cfg advertise protocol max and write up
// to write, as a member of another release would.
func SetProtocols(cfg *Config, max, write int) {
	cfg.test.protocolMax, cfg.test.protocolWrite = max, write
}

// Lists reports whether m's roster lists name as a live member (alive or
// suspect to memberlist), and whether it counts name as a candidate: listed,
// holding its report and not suspect to m's own probes.
func Lists(m *Member, name string) (listed, candidate bool) {
	if _, listed = m.roster.node(name); !listed {
		return false, false
	}
	_, held := m.table.aged(name, time.Now())
	m.probes.mu.Lock()
	suspect := m.probes.missed[name] >= probeMisses
	m.probes.mu.Unlock()
	return true, held && !suspect
}

// Listed is how many live members m's roster lists, m included.
func Listed(m *Member) int { return m.roster.size() }
