package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The peerload binary is what every machine of a cluster keeps in memory
// while its agent runs: its size is most of an idle agent's resident set.
// These tests keep out what made it grow before.

var peerloadBuild struct {
	once sync.Once
	dir  string // TestMain removes it
	err  error
}

// builtPeerload is the peerload binary linked as `make build` links it
// (static: CGO_ENABLED=0), built once for the tests of this file.
func builtPeerload(t *testing.T) string {
	t.Helper()
	peerloadBuild.once.Do(func() {
		if peerloadBuild.dir, peerloadBuild.err = os.MkdirTemp("", "peerload-test-agent-"); peerloadBuild.err != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(peerloadBuild.dir, "peerload"), ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			peerloadBuild.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if peerloadBuild.err != nil {
		t.Fatal(peerloadBuild.err)
	}
	return filepath.Join(peerloadBuild.dir, "peerload")
}

// maxBinaryBytes is how large the peerload binary may grow. It was
// 18.83 MB (go1.26.8, linux/amd64) when this guard came, 14.1 MB idle
// VmRSS (BENCHMARKS.md "The CLI: our own parser or a library"); the 1.2 MB
// of headroom lets ordinary features in and stops a new library the size
// of a plotting stack, a template engine or a second RPC framework.
const maxBinaryBytes = 20_000_000

// TestBinarySize fails when the binary outgrows maxBinaryBytes. Before
// raising the limit, find what grew (go tool nm -size -sort size, or
// go version -m for new modules) and measure an idle agent's VmRSS: the
// figures in BENCHMARKS.md are the targets it is held to.
func TestBinarySize(t *testing.T) {
	st, err := os.Stat(builtPeerload(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > maxBinaryBytes {
		t.Errorf("peerload is %.2f MB, more than the %.1f MB it may be: every machine's agent keeps it mapped, and its pages are most of an idle agent's memory",
			float64(st.Size())/1e6, float64(maxBinaryBytes)/1e6)
	}
	t.Logf("peerload is %.2f MB (limit %.1f MB)", float64(st.Size())/1e6, float64(maxBinaryBytes)/1e6)
}

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
	bin := builtPeerload(t)
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
