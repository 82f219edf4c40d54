package main

import "testing"

func TestDebianVersion(t *testing.T) {
	for in, want := range map[string]string{
		"23c9c45":                "0~git.23c9c45",
		"a654b21-dirty":          "0~git.a654b21+dirty",
		"v1.2.0":                 "1.2.0",
		"v1.2.0-3-gabc1234":      "1.2.0+git3.gabc1234",
		"1.2.0-3-g23c9c45-dirty": "1.2.0+git3.g23c9c45+dirty",
	} {
		got, err := DebianVersion(in)
		if err != nil || got != want {
			t.Errorf("DebianVersion(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "dev", "release candidate"} {
		if _, err := DebianVersion(bad); err == nil {
			t.Errorf("DebianVersion(%q) succeeded", bad)
		}
	}
}
