package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The peerload binary is what every machine of a cluster keeps in memory
// while its agent runs: its size is most of an idle agent's resident set.
// These tests keep out what made it grow before.

func TestNoPlottingInPeerload(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var linked []string
	for pkg := range strings.Lines(string(out)) {
		for _, bad := range []string{"gonum.org/", "codeberg.org/go-fonts", "codeberg.org/go-latex", "codeberg.org/go-pdf", "golang.org/x/image"} {
			if strings.HasPrefix(pkg, bad) {
				linked = append(linked, strings.TrimSpace(pkg))
			}
		}
	}
	if len(linked) > 0 {
		t.Errorf("peerload links %s: plotting belongs in cmd/peerload-plot (internal/sim/simplot), not in every agent's memory (gonum/plot's init costs an idle agent about 4 MB resident)", strings.Join(linked, ", "))
	}
}

// TestLinkerDropsUncalledMethods builds peerload and looks for a method
// of procfs that nothing calls. The linker drops such methods unless
// reachable code looks methods up by name through reflect, as executing
// a text/template or html/template does: then it keeps every exported
// method of every type that may reach an interface (4 MB of the binary
// and 2 MB of each agent's memory when the status page was a template).
func TestLinkerDropsUncalledMethods(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "peerload")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	const uncalled = "github.com/prometheus/procfs.FS.BuddyInfo"
	for line := range strings.Lines(string(out)) {
		if strings.HasSuffix(strings.TrimSpace(line), " "+uncalled) {
			t.Fatalf("peerload keeps %s, which nothing calls: some reachable code looks methods up by name through reflect (text/template, html/template, reflect.Value.MethodByName with a computed name); find it with go build -ldflags=-dumpdep ./cmd/peerload 2>&1 | grep ReflectMethod", uncalled)
		}
	}
}
