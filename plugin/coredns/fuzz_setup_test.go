package peerload

import (
	"strings"
	"testing"
)

// FuzzSetup: a Corefile block is admin input; parsing never panics and a
// block that parses has at least one name and a member.
func FuzzSetup(f *testing.F) {
	f.Add("cslab.example.edu {\n top 2\n ttl 30\n pool gpu\n by cpu\n fallback all\n}")
	f.Add("cslab.example.edu {\n bind 127.0.0.1:7950\n join 127.0.0.1:7946\n label x\n allow 127.0.0.0/8\n profile local\n stale 20s\n}")
	f.Add("cslab.example.edu {\n update 127.0.0.1:53 {\n zone example.edu\n insecure-no-tsig\n }\n}")
	f.Add("cslab.example.edu { name \"a b\" }")
	f.Fuzz(func(t *testing.T, block string) {
		if strings.ContainsAny(block, "\x00") {
			return
		}
		cfg, err := parse(testController("peerload " + block))
		if err != nil {
			return
		}
		if len(cfg.names) == 0 || cfg.member == nil {
			t.Fatalf("parsed %q into %+v", block, cfg)
		}
	})
}
