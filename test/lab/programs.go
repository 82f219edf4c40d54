package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BinDir is where the built binaries are: $PEERLOAD_BIN (set by `make
// test`), else ../bin relative to the calling test's package directory.
func BinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PEERLOAD_BIN")
	if dir == "" {
		dir = filepath.Join("..", "bin")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatalf("bin dir %q: %v", dir, err)
	}
	return abs
}

// BinPath returns the absolute path of a built binary (e.g. "peerload",
// "coredns") and fails the test when it is missing: run `make build`.
func BinPath(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(BinDir(t), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("binary %s not found (%v): run `make build` or set PEERLOAD_BIN", p, err)
	}
	return p
}

// RequireProgram returns the path of an external program (dig, named, ip,
// nft, ...). When it is missing the test fails if $CI is set, else it is
// skipped: CI must never pass by skipping what it was meant to run.
func RequireProgram(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	// named, ip, nft and tsig-keygen often live in sbin, outside a user's PATH.
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		cand := filepath.Join(dir, name)
		if st, err := os.Stat(cand); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return cand
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required (run scripts/install-deps.sh): %v", name, err)
	}
	t.Skipf("%s not installed (run scripts/install-deps.sh): %v", name, err)
	return ""
}

// RequireRoot skips the test unless it runs as root (the lab creates
// network namespaces); under $CI it fails instead, since CI runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("the namespace lab needs root (CI runs as root): running as uid %d", os.Geteuid())
	}
	t.Skipf("the namespace lab needs root to create network namespaces (running as uid %d): run `sudo make test`", os.Geteuid())
}
