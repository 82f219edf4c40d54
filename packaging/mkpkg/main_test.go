package main

import (
	"debug/buildinfo"
	"os"
	"strings"
	"testing"
)

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

// TestThirdPartyNotices reads this test binary's own build information
// (it links nfpm and its dependencies): every module in it and the Go
// standard library come with their licence text and the address of their
// source.
func TestThirdPartyNotices(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		t.Skip(err)
	}
	modCache, err := goEnv("GOMODCACHE")
	if err != nil {
		t.Skip(err)
	}
	out, err := thirdPartyNotices(map[string]string{exe: "/usr/bin/test"}, goroot, modCache)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(bi.Deps) == 0 {
		t.Fatal("the test binary has no dependencies in its build information")
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		head := d.Path + " " + d.Version + " (in /usr/bin/test)\nSource: https://proxy.golang.org/"
		if !strings.Contains(text, head) {
			t.Errorf("no section for %s %s", d.Path, d.Version)
		}
	}
	for _, want := range []string{"The Go standard library go1.", "--- LICENSE ---", "Apache License", "MPL-2.0 section 3.2"} {
		if !strings.Contains(text, want) {
			t.Errorf("notices lack %q", want)
		}
	}
	if got := escapeModulePath("github.com/BurntSushi/toml"); got != "github.com/!burnt!sushi/toml" {
		t.Errorf("escapeModulePath = %q", got)
	}
}
