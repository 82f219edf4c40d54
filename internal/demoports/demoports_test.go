package demoports

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoFilesAgree: the demo script and the two examples it runs use
// the ports of this package. Change a port here and there together.
func TestDemoFilesAgree(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tt := range []struct {
		file string
		want []string
	}{
		{"scripts/demo.sh", []string{
			fmt.Sprintf("NODES=%d\n", Machines),
			fmt.Sprintf("gossip=$((%d + i)) api=$((%d + i))", FirstGossip-1, FirstAPI-1),
			fmt.Sprintf(`--bind "$IP:$((%d + i))" --api "$IP:$((%d + i))"`, FirstGossip-1, FirstAPI-1),
			fmt.Sprintf(`--join "$IP:%d"`, Gossip(1)),
			fmt.Sprintf("DNS_PORT=%d\n", DNS),
			fmt.Sprintf("port_busy tcp %d ", CoreDNSGossip),
			fmt.Sprintf("port_busy tcp %d ", CaddyGossip),
			fmt.Sprintf("for p in %d %d %d; do", CaddySticky, CaddyBest, CaddyAdmin),
			fmt.Sprintf("$IP:%d", API(1)),
		}},
		{"Corefile.example", []string{
			fmt.Sprintf("example.edu:%d {", DNS),
			fmt.Sprintf("health 127.0.0.1:%d", CoreDNSHealth),
			fmt.Sprintf("ready 127.0.0.1:%d", CoreDNSReady),
			fmt.Sprintf("prometheus 127.0.0.1:%d", CoreDNSMetrics),
			fmt.Sprintf("bind 127.0.0.1:%d", CoreDNSGossip),
			fmt.Sprintf("join 127.0.0.1:%d", Gossip(1)),
		}},
		{"Caddyfile.example", []string{
			fmt.Sprintf("admin 127.0.0.1:%d", CaddyAdmin),
			fmt.Sprintf("bind 127.0.0.1:%d", CaddyGossip),
			fmt.Sprintf("join 127.0.0.1:%d", Gossip(1)),
			fmt.Sprintf("http://127.0.0.1:%d {", CaddySticky),
			fmt.Sprintf("http://127.0.0.1:%d {", CaddyBest),
		}},
	} {
		text := read(tt.file)
		for _, w := range tt.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not have %q: keep its ports and internal/demoports the same", tt.file, w)
			}
		}
	}
}

func TestAllHasEachPortOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range All() {
		key := fmt.Sprint(p.Proto, p.Port)
		if seen[key] {
			t.Errorf("%v listed twice", p)
		}
		seen[key] = true
	}
	if len(seen) != 24 {
		t.Errorf("%d ports, want the demo's 24", len(seen))
	}
}
