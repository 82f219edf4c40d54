package peerload

import (
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
)

// freeLoopbackPort returns a port free for TCP and UDP on 127.0.0.1.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// TestMemberRefcount: blocks (and a reloaded instance) with one bind
// address share one running member; the last release leaves and frees the
// port so a new member can bind it again.
func TestMemberRefcount(t *testing.T) {
	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Name: "coredns-test"}
	m1, err := acquireMember(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A reload: the new instance acquires before the old one releases.
	m2, err := acquireMember(spec)
	if err != nil {
		t.Fatalf("second acquire on the same bind: %v", err)
	}
	if m1 != m2 || m1.agent != m2.agent {
		t.Fatal("same bind address, different members")
	}
	if err := releaseMember(m1); err != nil {
		t.Fatal(err)
	}
	if snap := m2.agent.Snapshot(); snap == nil {
		t.Fatal("member stopped while still referenced")
	}
	if err := releaseMember(m2); err != nil {
		t.Fatal(err)
	}
	members.Lock()
	_, still := members.m[spec.Bind]
	members.Unlock()
	if still {
		t.Fatal("released member still registered")
	}
	// The port is free again: a fresh member starts on it.
	m3, err := acquireMember(spec)
	if err != nil {
		t.Fatalf("acquire after full release: %v", err)
	}
	if m3 == m1 {
		t.Fatal("got the shut down member back")
	}
	if err := releaseMember(m3); err != nil {
		t.Fatal(err)
	}
}

// TestMemberHearsCluster runs a real collector member next to an in-process
// agent and checks the handler's answers and readiness follow it.
func TestMemberHearsCluster(t *testing.T) {
	cfg := agent.DefaultLocalConfig()
	cfg.Name = "lab01"
	cfg.Logger = stdlog.New(io.Discard, "", 0)
	cfg.Addr4 = mustAddr("127.0.1.1")
	cfg.Sampler = fixedSampler{agent.Load{Load1: 0.5, CPUs: 4, MemTotal: 8 << 30, MemAvailable: 4 << 30, CPUPressure: -1}}
	lab, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lab.Shutdown() })

	spec := memberSpec{Bind: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), Join: []string{lab.GossipAddr()}}
	m, err := acquireMember(spec)
	if err != nil {
		t.Fatal(err)
	}
	p := newTestPeerLoad(testConfig(), nil)
	stop := p.watch(m.agent)
	t.Cleanup(func() {
		stop()
		_ = releaseMember(m)
	})
	deadline := time.Now().Add(15 * time.Second)
	for !p.Ready() || len(answerIPs(query(t, p, "cslab.example.edu.", 1))) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no answer from the cluster: ready %v, snapshot %+v", p.Ready(), m.agent.Snapshot())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := answerIPs(query(t, p, "cslab.example.edu.", 1)); len(got) != 1 || got[0] != "127.0.1.1" {
		t.Errorf("A = %v, want only lab01's 127.0.1.1 (never the collector)", got)
	}
}

type fixedSampler struct{ l agent.Load }

func (f fixedSampler) Sample() (agent.Load, error) { return f.l, nil }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
