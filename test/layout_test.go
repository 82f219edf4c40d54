package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeLayoutMatchesTheTree checks README.md's layout table against
// the packages of every module: each package has a row, and each row names
// a directory that is a package.
func TestReadmeLayoutMatchesTheTree(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "github.com/peerload/peerload/...")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]bool{}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(repo, dir)
		if err != nil {
			t.Fatal(err)
		}
		pkgs[filepath.ToSlash(rel)] = true
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "| package | what it is |")
	if !ok {
		t.Fatal(`README.md has no layout table ("| package | what it is |")`)
	}
	table, _, _ = strings.Cut(table, "\n\n")
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([^`]+)` \\|").FindAllStringSubmatch(table, -1) {
		rows[m[1]] = true
		if !pkgs[m[1]] {
			t.Errorf("README.md's layout names %s, which is not a package", m[1])
		}
	}
	for p := range pkgs {
		if p != "." && !rows[p] {
			t.Errorf("package %s has no row in README.md's layout table", p)
		}
	}
}
