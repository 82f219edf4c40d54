package packaging

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestReproducible builds the .deb and the .rpm twice from this checkout,
// into fresh directories, as `make release` does, and fails unless the two
// builds are the same bytes: a release can be rebuilt and checked against
// its SHA256SUMS. Most of the time goes to linking; the compiled packages
// come from the build cache (`make deb` warmed it with the same flags).
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages twice")
	}
	need(t, "make", "git", "dpkg-deb")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	build := func(n string) map[string]string {
		dir := filepath.Join(t.TempDir(), n)
		start := time.Now()
		cmd := exec.Command("make", "--no-print-directory", "-C", repo, "packages",
			"PKG_FORMATS=deb,rpm", "PKG_BIN="+filepath.Join(dir, "bin"), "PKG_OUT="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make packages: %v\n%s", err, out)
		}
		t.Logf("build %s: %v", n, time.Since(start).Round(time.Second))
		sums := map[string]string{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue // bin/ and the peerload.deb/.rpm symlinks
			}
			sums[e.Name()] = sha256File(t, filepath.Join(dir, e.Name()))
		}
		for _, f := range []string{"peerload.deb", "peerload.rpm"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Fatalf("make packages wrote no %s: %v", f, err)
			}
		}
		for _, b := range []string{"peerload", "peerload-plot", "coredns"} {
			sums["bin/"+b] = sha256File(t, filepath.Join(dir, "bin", b))
		}
		return sums
	}
	first, second := build("1"), build("2")
	if len(first) != 5 {
		t.Errorf("first build: %v, want a .deb, an .rpm and three binaries", first)
	}
	for name, sum := range first {
		switch other, ok := second[name]; {
		case !ok:
			t.Errorf("%s only in the first build", name)
		case other != sum:
			t.Errorf("%s differs between two builds of one commit: sha256 %s and %s", name, sum, other)
		default:
			t.Logf("%s  %s", sum, name)
		}
	}
	for name := range second {
		if _, ok := first[name]; !ok {
			t.Errorf("%s only in the second build", name)
		}
	}
	if t.Failed() && first["bin/peerload"] != second["bin/peerload"] {
		t.Log("the binaries differ: look for a build flag or an embedded path (go version -m, go tool buildid)")
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
