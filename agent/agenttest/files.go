package agenttest

import (
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/gossip"
)

// Key is a fresh gossip encryption key.
func Key(t testing.TB) []byte {
	t.Helper()
	k, err := gossip.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Keyring writes keys (one fresh key when none) to a keyring file name in
// a temporary directory and returns its path.
func Keyring(t testing.TB, name string, keys ...[]byte) string {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{Key(t)}
	}
	path := filepath.Join(t.TempDir(), name)
	if err := gossip.WriteKeyring(path, keys); err != nil {
		t.Fatal(err)
	}
	return path
}

// RecordStarts is agent.New recording every configuration it starts an
// agent with, for a test that replaces how members start; started returns
// them in order.
func RecordStarts() (start func(*agent.Config) (*agent.Agent, error), started func() []*agent.Config) {
	var (
		mu   sync.Mutex
		cfgs []*agent.Config
	)
	start = func(cfg *agent.Config) (*agent.Agent, error) {
		mu.Lock()
		c := *cfg
		cfgs = append(cfgs, &c)
		mu.Unlock()
		return agent.New(cfg)
	}
	started = func() []*agent.Config {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(cfgs)
	}
	return start, started
}
