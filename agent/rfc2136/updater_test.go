package rfc2136

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/rank"
)

const testName = "cslab.example.edu."

// fakeSource is a cluster member without gossip: tests publish snapshots.
type fakeSource struct {
	name  string
	mu    sync.Mutex
	snap  *rank.Snapshot
	ch    chan struct{}
	reads atomic.Int64
}

func newFakeSource(name string) *fakeSource {
	return &fakeSource{name: name, ch: make(chan struct{}, 1), snap: &rank.Snapshot{}}
}

func (f *fakeSource) Name() string { return f.name }

func (f *fakeSource) Snapshot() *rank.Snapshot {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeSource) Subscribe() (<-chan struct{}, func()) { return f.ch, func() {} }

// publish makes nodes (plus this updater itself, carrying roles) the
// cluster and waits until the updater has looked at it.
func (f *fakeSource) publish(t *testing.T, roles []string, nodes ...rank.NodeStatus) {
	t.Helper()
	self := rank.NodeStatus{Name: f.name, State: rank.StateAlive, Collector: true, Roles: roles}
	s := snapOf(append(nodes, self)...)
	s.Self = f.name
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
	// Two notifications: the second is read only after the step that
	// handled the first has finished.
	for range 2 {
		before := f.reads.Load()
		select {
		case f.ch <- struct{}{}:
		default:
		}
		waitUntil(t, 5*time.Second, "updater to read the snapshot", func() bool { return f.reads.Load() > before })
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	agenttest.WaitFor(t, timeout, what, func() (bool, string) { return cond(), "" })
}

var testKey = &Key{Name: "upd.key.", Algorithm: dns.HmacSHA256, Secret: "lsincbpj18uJbEtsLtMSgPMdKuLP/mdB/KmdtD06994="}

func testConfig(server string) Config {
	return Config{
		Server: server, Zone: "example.edu", Names: []string{"cslab.example.edu"}, Top: 2, TTL: 30,
		Key: testKey, Resync: time.Hour, Margin: 0.1, MinInterval: time.Millisecond, Settle: -1,
		Timeout: time.Second, RetryMin: 10 * time.Millisecond, RetryMax: 40 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler), Registerer: prometheus.NewRegistry(),
	}
}

// run starts u on src and stops it at cleanup; the returned channel
// yields Run's result.
func run(t *testing.T, u *Updater, src Source) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("updater did not stop")
		}
	})
	return done
}

func TestUpdaterWritesTopNAndIgnoresWobble(t *testing.T) {
	z := startZoneServer(t, "example.edu", testKey)
	u, err := New(testConfig(z.Addr))
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource("dns1")
	roles := u.Roles()
	run(t, u, src)

	src.publish(t, roles, node(1, 0.5), node(2, 0.1), node(3, 0.2), node(4, 0.9))
	waitUntil(t, 5*time.Second, "top-2 in the zone", func() bool {
		return slices.Equal(z.Records(testName), addrs("127.0.1.2", "127.0.1.3"))
	})
	if n := z.Updates(); n != 1 {
		t.Fatalf("%d updates, want 1", n)
	}
	m := z.LastUpdate()
	if m.IsTsig() == nil {
		t.Fatal("update not signed")
	}

	// Scores wobble inside the margin and the order inside the set flips:
	// nothing is sent.
	for i := range 20 {
		w := 0.04 * float64(i%3)
		src.publish(t, roles, node(1, 0.5-w), node(2, 0.2+w), node(3, 0.15-w), node(4, 0.9))
	}
	if n := z.Updates(); n != 1 {
		t.Fatalf("%d updates after wobble, want still 1", n)
	}

	// lab01 gets clearly better than the worst member: replaced.
	src.publish(t, roles, node(1, 0.01), node(2, 0.1), node(3, 0.3), node(4, 0.9))
	waitUntil(t, 5*time.Second, "lab01 in, lab03 out", func() bool {
		return slices.Equal(z.Records(testName), addrs("127.0.1.1", "127.0.1.2"))
	})
	if got := value(u.m.succeeded.WithLabelValues(testName)); got != 2 {
		t.Fatalf("succeeded = %v, want 2", got)
	}
	if got := value(u.m.active.WithLabelValues(testName)); got != 1 {
		t.Fatalf("active = %v", got)
	}
}

func TestUpdaterFailureBackoffAndRecovery(t *testing.T) {
	z := startZoneServer(t, "example.edu", testKey)
	var logs strings.Builder
	var logMu sync.Mutex
	cfg := testConfig(z.Addr)
	cfg.Logger = slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource("dns1")
	run(t, u, src)
	src.publish(t, u.Roles(), node(1, 0.1), node(2, 0.2))
	waitUntil(t, 5*time.Second, "first write", func() bool { return len(z.Records(testName)) == 2 })

	z.Fail(dns.RcodeRefused)
	src.publish(t, u.Roles(), node(3, 0.0), node(4, 0.0))
	failed := u.m.failed.WithLabelValues(testName, "REFUSED")
	waitUntil(t, 5*time.Second, "several REFUSED retries", func() bool { return value(failed) >= 3 })
	if got := z.Records(testName); !slices.Equal(got, addrs("127.0.1.1", "127.0.1.2")) {
		t.Fatalf("records changed while refused: %v", got)
	}
	logMu.Lock()
	n := strings.Count(logs.String(), "REFUSED")
	logMu.Unlock()
	if n != 1 {
		t.Fatalf("REFUSED logged %d times, want once per state change:\n%s", n, logs.String())
	}

	z.Fail(0)
	waitUntil(t, 5*time.Second, "recovery without restart", func() bool {
		return slices.Equal(z.Records(testName), addrs("127.0.1.3", "127.0.1.4"))
	})
	// The server applies the update before the updater logs its recovery.
	waitUntil(t, 5*time.Second, "recovery logged", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "answers again")
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestUpdaterResyncRepairsDrift(t *testing.T) {
	z := startZoneServer(t, "example.edu", testKey)
	cfg := testConfig(z.Addr)
	cfg.Resync = 30 * time.Millisecond
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource("dns1")
	run(t, u, src)
	src.publish(t, u.Roles(), node(1, 0.1), node(2, 0.2), node(3, 0.3))
	want := addrs("127.0.1.1", "127.0.1.2")
	waitUntil(t, 5*time.Second, "first write", func() bool { return slices.Equal(z.Records(testName), want) })

	// Someone edits the zone by hand (or the server restarts from an old
	// file) to a set that is still good enough under the margin.
	z.Set(testName, addrs("127.0.1.3", "10.9.9.9"))
	waitUntil(t, 5*time.Second, "drift repaired", func() bool { return slices.Equal(z.Records(testName), want) })
	if got := value(u.m.drift.WithLabelValues(testName)); got < 1 {
		t.Fatalf("drift repairs = %v", got)
	}
	if got := value(u.m.resyncs.WithLabelValues(testName)); got < 2 {
		t.Fatalf("resyncs = %v", got)
	}
}

func TestUpdaterFallback(t *testing.T) {
	for _, fb := range []rank.Fallback{rank.FallbackKeep, rank.FallbackNone} {
		t.Run(string(fb), func(t *testing.T) {
			z := startZoneServer(t, "example.edu", testKey)
			cfg := testConfig(z.Addr)
			cfg.Fallback = fb
			u, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			src := newFakeSource("dns1")
			run(t, u, src)
			src.publish(t, u.Roles(), node(1, 0.1))
			waitUntil(t, 5*time.Second, "first write", func() bool { return len(z.Records(testName)) == 1 })
			down := node(1, 0.1)
			down.Candidate = false
			src.publish(t, u.Roles(), down) // nobody is a candidate
			if fb == rank.FallbackKeep {
				src.publish(t, u.Roles())
				if got := z.Records(testName); len(got) != 1 || z.Updates() != 1 {
					t.Fatalf("keep blanked or rewrote the name: %v after %d updates", got, z.Updates())
				}
				return
			}
			waitUntil(t, 5*time.Second, "records deleted", func() bool { return len(z.Records(testName)) == 0 })
		})
	}
}

func TestUpdaterPassiveUntilLowerLeaves(t *testing.T) {
	z := startZoneServer(t, "example.edu", testKey)
	u, err := New(testConfig(z.Addr))
	if err != nil {
		t.Fatal(err)
	}
	roles := u.Roles()
	other := rank.NodeStatus{Name: "dns1", State: rank.StateAlive, Collector: true, Roles: roles}
	src := newFakeSource("dns2")
	run(t, u, src)
	for i := range 5 {
		src.publish(t, roles, other, node(1, 0.1*float64(i)), node(2, 0.5))
	}
	if n := z.Updates(); n != 0 {
		t.Fatalf("passive updater sent %d updates", n)
	}
	other.State = rank.StateDead
	src.publish(t, roles, other, node(1, 0.1), node(2, 0.5))
	waitUntil(t, 5*time.Second, "takeover", func() bool { return len(z.Records(testName)) == 2 })
}

func TestUpdaterRefusesMemberWithoutRole(t *testing.T) {
	u, err := New(testConfig("127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource("dns1")
	src.snap = snapOf(rank.NodeStatus{Name: "dns1", State: rank.StateAlive, Collector: true})
	err = u.Run(context.Background(), src)
	if err == nil || !strings.Contains(err.Error(), "Config.Roles") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	base := testConfig("127.0.0.1:53")
	tests := []struct {
		name   string
		change func(*Config)
		errHas string
	}{
		{"no key", func(c *Config) { c.Key = nil }, "no TSIG key"},
		{"no server", func(c *Config) { c.Server = "" }, "no server"},
		{"server without port", func(c *Config) { c.Server = "127.0.0.1" }, "want host:port"},
		{"no zone", func(c *Config) { c.Zone = "" }, "no zone"},
		{"no names", func(c *Config) { c.Names = nil }, "no name"},
		{"name outside zone", func(c *Config) { c.Names = []string{"cslab.example.com"} }, "not in zone"},
		{"bad fallback", func(c *Config) { c.Fallback = "maybe" }, "unknown fallback"},
		{"bad by", func(c *Config) { c.By = "disk" }, "unknown ranking"},
		{"negative top", func(c *Config) { c.Top = -1 }, "top"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("err = %v, want %q", err, tt.errHas)
			}
		})
	}
	c := base
	c.Key, c.Insecure = nil, true
	if _, err := New(c); err != nil {
		t.Fatalf("insecure without key: %v", err)
	}
	// Two updaters in one process share the registered metrics.
	reg := prometheus.NewRegistry()
	c.Registerer = reg
	if _, err := New(c); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c); err != nil {
		t.Fatalf("second updater on one registry: %v", err)
	}
}

var _ = netip.Addr{}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}

// TestUpdaterSetKeyRotates: a key read again on HUP is used for the next
// message, and the updater recovers from the failures of the old one.
func TestUpdaterSetKeyRotates(t *testing.T) {
	z := startZoneServer(t, "example.edu", testKey)
	cfg := testConfig(z.Addr)
	cfg.Key = &Key{Name: "old.key.", Algorithm: dns.HmacSHA256, Secret: testKey.Secret}
	u, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource("dns1")
	run(t, u, src)
	src.publish(t, u.Roles(), node(1, 0.1), node(2, 0.2))
	waitUntil(t, 5*time.Second, "the old key to be refused", func() bool {
		var m dto.Metric
		_ = u.m.failed.WithLabelValues(testName, "BADKEY").Write(&m)
		return m.GetCounter().GetValue() > 0
	})
	if got := z.Records(testName); len(got) != 0 {
		t.Fatalf("records written with a refused key: %v", got)
	}
	u.SetKey(testKey)
	u.SetKey(nil) // ignored: never unsigned
	waitUntil(t, 5*time.Second, "top-2 written with the new key", func() bool {
		return slices.Equal(z.Records(testName), addrs("127.0.1.1", "127.0.1.2"))
	})
	if m := z.LastUpdate(); m.IsTsig() == nil || m.IsTsig().Hdr.Name != testKey.Name {
		t.Fatalf("last update not signed with the new key: %v", m.IsTsig())
	}
}
