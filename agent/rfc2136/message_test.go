package rfc2136

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestBuildUpdate(t *testing.T) {
	m := BuildUpdate("Example.EDU", "cslab.example.edu", 30, addrs("127.0.1.3", "fd00::1", "127.0.1.1", "127.0.1.3"))
	if m.Opcode != dns.OpcodeUpdate {
		t.Fatalf("opcode %s", dns.OpcodeToString[m.Opcode])
	}
	if len(m.Question) != 1 || m.Question[0].Name != "example.edu." || m.Question[0].Qtype != dns.TypeSOA {
		t.Fatalf("zone section %v", m.Question)
	}
	if len(m.Answer) != 0 {
		t.Fatalf("prerequisites %v, want none", m.Answer)
	}
	var got []string
	for _, rr := range m.Ns {
		got = append(got, rr.String())
	}
	want := []string{
		"cslab.example.edu.\t0\tCLASS255\tA\t",
		"cslab.example.edu.\t0\tCLASS255\tAAAA\t",
		"cslab.example.edu.\t30\tIN\tA\t127.0.1.1",
		"cslab.example.edu.\t30\tIN\tA\t127.0.1.3",
		"cslab.example.edu.\t30\tIN\tAAAA\tfd00::1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("update section:\n%q\nwant\n%q", got, want)
	}
	if _, err := m.Pack(); err != nil {
		t.Fatalf("pack: %v", err)
	}
}

func TestBuildUpdateDeleteOnly(t *testing.T) {
	m := BuildUpdate("example.edu.", "cslab.example.edu.", 30, nil)
	if len(m.Ns) != 2 || m.Ns[0].Header().Class != dns.ClassANY || m.Ns[1].Header().Class != dns.ClassANY {
		t.Fatalf("want two RRset deletions, got %v", m.Ns)
	}
}

func TestExchangeSignedAndRcodes(t *testing.T) {
	key := &Key{Name: "upd.key.", Algorithm: dns.HmacSHA256, Secret: "lsincbpj18uJbEtsLtMSgPMdKuLP/mdB/KmdtD06994="}
	z := startZoneServer(t, "example.edu", key)
	ctx := context.Background()

	m := BuildUpdate("example.edu", "cslab.example.edu", 60, addrs("127.0.1.1"))
	if _, err := exchange(ctx, z.Addr, key, m, "update"); err != nil {
		t.Fatalf("signed update: %v", err)
	}
	got := z.LastUpdate()
	if tsig := got.IsTsig(); tsig == nil || tsig.Hdr.Name != "upd.key." || tsig.Algorithm != dns.HmacSHA256 {
		t.Fatalf("TSIG missing or wrong (must be the last extra record): %v", got.Extra)
	}
	if r, err := readName(ctx, z.Addr, key, "cslab.example.edu"); err != nil || !slices.Equal(r, addrs("127.0.1.1")) {
		t.Fatalf("read back %v, %v", r, err)
	}
	if z.ttls["cslab.example.edu."] != 60 {
		t.Fatalf("ttl %d", z.ttls["cslab.example.edu."])
	}

	reasonOf := func(err error) string {
		var f *Failure
		if !errors.As(err, &f) {
			t.Fatalf("error %v is not a *Failure", err)
		}
		return f.Reason
	}
	wrong := &Key{Name: "upd.key.", Algorithm: dns.HmacSHA256, Secret: "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}
	_, err := exchange(ctx, z.Addr, wrong, BuildUpdate("example.edu", "cslab.example.edu", 60, addrs("127.0.1.9")), "update")
	if r := reasonOf(err); r != "BADSIG" {
		t.Fatalf("wrong secret: reason %q (%v)", r, err)
	}
	unknown := &Key{Name: "other.key.", Algorithm: dns.HmacSHA256, Secret: key.Secret}
	_, err = exchange(ctx, z.Addr, unknown, BuildUpdate("example.edu", "cslab.example.edu", 60, addrs("127.0.1.9")), "update")
	if r := reasonOf(err); r != "BADKEY" {
		t.Fatalf("unknown key: reason %q (%v)", r, err)
	}
	z.Fail(dns.RcodeRefused)
	_, err = exchange(ctx, z.Addr, key, BuildUpdate("example.edu", "cslab.example.edu", 60, addrs("127.0.1.9")), "update")
	if r := reasonOf(err); r != "REFUSED" {
		t.Fatalf("refused: reason %q (%v)", r, err)
	}
	if got := z.Records("cslab.example.edu"); !slices.Equal(got, addrs("127.0.1.1")) {
		t.Fatalf("records changed by failed updates: %v", got)
	}
	_, err = exchange(ctx, "127.0.0.1:1", key, BuildUpdate("example.edu", "cslab.example.edu", 60, nil), "update")
	if r := reasonOf(err); r != "network" {
		t.Fatalf("closed port: reason %q (%v)", r, err)
	}
}

// TestReadNameNeedsAuthority: the resync must not "repair" toward what a
// cache or a lagging secondary says.
func TestReadNameNeedsAuthority(t *testing.T) {
	z := startZoneServer(t, "example.edu", nil)
	z.mu.Lock()
	z.records["cslab.example.edu."] = []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	z.notAuth = true
	z.mu.Unlock()
	if got, err := readName(context.Background(), z.Addr, nil, "cslab.example.edu"); err == nil || !strings.Contains(err.Error(), "not authoritative") {
		t.Fatalf("non-authoritative answer: got %v, err %v", got, err)
	}
	z.mu.Lock()
	z.notAuth = false
	z.mu.Unlock()
	got, err := readName(context.Background(), z.Addr, nil, "cslab.example.edu")
	if err != nil || len(got) != 1 || got[0] != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("authoritative answer: got %v, err %v", got, err)
	}
}
