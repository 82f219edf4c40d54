package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Release is a build of peerload's programs for a mixed-version lab.
type Release struct {
	// Name says which build it is ("0.1.0", "current", "next").
	Name string
	// Peerload and CoreDNS are the binaries.
	Peerload, CoreDNS string
}

// buildTimeout bounds one build: CoreDNS links for a while on a busy
// machine, and the first build of a release may compile every module.
const buildTimeout = 10 * time.Minute

// repoRoot is the top of the git checkout the tests run in.
func repoRoot(t testing.TB) string {
	t.Helper()
	res := runCommand(t.Context(), "git", "rev-parse", "--show-toplevel")
	if res.Code != 0 {
		t.Fatalf("lab: the mixed-version tests build releases from git: %s", res)
	}
	return strings.TrimSpace(res.Stdout)
}

// BuildRelease builds cmd/peerload and cmd/coredns of the commit rev (a
// tag or hash) from this checkout's git history, once per commit: the
// binaries are kept under the user's cache directory
// (peerload-releases/<commit>), so later runs start at once. The source
// is a `git archive` of the commit, built with its own go.mod and go.sum
// from the module cache.
func BuildRelease(t testing.TB, name, rev string) Release {
	t.Helper()
	root := repoRoot(t)
	res := runCommand(t.Context(), "git", "-C", root, "rev-parse", "--verify", rev+"^{commit}")
	if res.Code != 0 {
		t.Fatalf("lab: release %s (%s) is not in this checkout's history (fetch its tag): %s", name, rev, res)
	}
	commit := strings.TrimSpace(res.Stdout)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "peerload-releases", commit)
	rel := Release{Name: name, Peerload: filepath.Join(dir, "peerload"), CoreDNS: filepath.Join(dir, "coredns")}
	if exists(rel.Peerload) && exists(rel.CoreDNS) {
		return rel
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatalf("lab: %v", err)
	}
	src := t.TempDir()
	archive := fmt.Sprintf("git -C %q archive %s | tar -x -C %q", root, commit, src)
	if res := runCommand(t.Context(), "sh", "-c", archive); res.Code != 0 {
		t.Fatalf("lab: unpack release %s: %s", name, res)
	}
	// Build into a fresh directory and rename it into place, so a build
	// killed half-way never leaves a cache entry behind.
	out, err := os.MkdirTemp(filepath.Dir(dir), commit+".build-")
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	defer os.RemoveAll(out)
	goBuild(t, src, out, "-ldflags", "-X github.com/peerload/peerload/internal/buildinfo.version="+name)
	if err := os.Rename(out, dir); err != nil && !(exists(rel.Peerload) && exists(rel.CoreDNS)) {
		t.Fatalf("lab: cache release %s: %v", name, err)
	}
	return rel
}

// BuildTags builds cmd/peerload and cmd/coredns of this checkout with the
// given build tags (e.g. peerload_next, the synthetic next release) into a
// directory of the test's; Go's build cache keeps it quick after the
// first time.
func BuildTags(t testing.TB, name, tags string) Release {
	t.Helper()
	out := t.TempDir()
	goBuild(t, repoRoot(t), out, "-tags", tags, "-ldflags", "-X github.com/peerload/peerload/internal/buildinfo.version="+name)
	return Release{Name: name, Peerload: filepath.Join(out, "peerload"), CoreDNS: filepath.Join(out, "coredns")}
}

// goBuild builds the two programs of the module in dir into out.
func goBuild(t testing.TB, dir, out string, flags ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	args := append([]string{"build", "-o", out + "/"}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, "./cmd/peerload", "./cmd/coredns")...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lab: go build in %s: %v\n%s", dir, err, b)
	}
	t.Logf("built %s in %s", dir, time.Since(start).Round(time.Second))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
