package gossip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUntag: a name send tagged comes back whole with its kind; any
// other name is memberlist's own packet, a probe, and stays as it is.
func TestUntag(t *testing.T) {
	for k := range numKinds {
		for _, name := range []string{"lab01", "", "\x00"} {
			to := kindTag + string('0'+rune(k)) + name
			if got, gotName := untag(to); got != k || gotName != name {
				t.Errorf("untag(%q) = %s, %q; want %s, %q", to, kindNames[got], gotName, kindNames[k], name)
			}
		}
	}
	for _, name := range []string{"", "lab01", "\x00", "\x009lab01", "\x00/lab01", "0lab01"} {
		if k, got := untag(name); k != kindProbe || got != name {
			t.Errorf("untag(%q) = %s, %q; want probe and the name as it is", name, kindNames[k], got)
		}
	}
}

// TestEverySendHasAKind: this package's messages go out through send
// only, so that none is counted as memberlist's own.
func TestEverySendHasAKind(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "kind.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, call := range []string{".SendBestEffort(", ".SendReliable(", ".SendToAddress(", ".SendTo("} {
			if strings.Contains(string(b), call) {
				t.Errorf("%s calls memberlist's %s directly: send it with send and a kind", f, strings.Trim(call, ".("))
			}
		}
	}
}
