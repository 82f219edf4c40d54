package main

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
)

// The third-party notices are generated when the package is built, not
// committed: the binaries link about two hundred modules (CoreDNS's and
// Caddy's dependencies among them), the set changes with every go.mod
// update, and a committed copy would drift from what is really linked.
// Reading each packaged binary's own build information gives exactly the
// modules in it, at the versions in it; their licence files come from the
// module cache, whose contents go.sum pins, so the result is reproducible.
// A module without a licence file fails the build rather than ship
// without its notice.

// licenceFile reports whether a file at a module's root is one a
// redistributor must pass on: the licence, Apache-2.0 NOTICE files
// (section 4(d)), patent grants.
func licenceFile(name string) bool {
	up := strings.ToUpper(name)
	for _, p := range []string{"LICENSE", "LICENCE", "COPYING", "NOTICE", "PATENTS", "COPYRIGHT"} {
		if strings.HasPrefix(up, p) {
			return true
		}
	}
	return false
}

// escapeModulePath is the module cache's spelling of a module path: each
// upper-case letter becomes '!' and its lower case (golang.org/x/mod's
// module.EscapePath).
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if unicode.IsUpper(r) {
			b.WriteByte('!')
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// goEnv is one `go env` value.
func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// thirdPartyNotices writes the licence texts and notices of the Go
// standard library and of every module the binaries (installed as the
// paths in installed, by binary file) were built with, from goroot and
// the module cache modCache.
func thirdPartyNotices(binaries map[string]string, goroot, modCache string) ([]byte, error) {
	type mod struct {
		path, version, dir string
		in                 []string
	}
	mods := map[string]*mod{}
	var goVersion string
	var names []string
	for bin := range binaries {
		names = append(names, bin)
	}
	slices.Sort(names)
	for _, bin := range names {
		bi, err := buildinfo.ReadFile(bin)
		if err != nil {
			return nil, fmt.Errorf("third-party notices: %w", err)
		}
		goVersion = bi.GoVersion
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			if strings.HasPrefix(d.Path, "github.com/peerload/peerload") || strings.HasPrefix(d.Version, "(") {
				continue
			}
			key := d.Path + "@" + d.Version
			m := mods[key]
			if m == nil {
				m = &mod{path: d.Path, version: d.Version, dir: filepath.Join(modCache, escapeModulePath(d.Path)+"@"+d.Version)}
				mods[key] = m
			}
			m.in = append(m.in, binaries[bin])
		}
	}
	keys := make([]string, 0, len(mods))
	for k := range mods {
		keys = append(keys, k)
	}
	slices.Sort(keys)

	var b bytes.Buffer
	rule := strings.Repeat("=", 78) + "\n"
	fmt.Fprintf(&b, `Third-party software in the peerload package

The programs in this package are statically linked Go programs. Besides
peerload (Apache-2.0, see /usr/share/doc/peerload/copyright) they contain
the Go standard library and the Go modules below, each at the version
named, with its licence and notices as the module ships them. Each
module's complete source, as built, is at the address given; that
includes the source of the MPL-2.0 modules (MPL-2.0 section 3.2).

`)
	fmt.Fprintf(&b, "%sThe Go standard library %s (in every program)\nSource: https://go.dev/dl/\n\n", rule, goVersion)
	if err := appendLicences(&b, goroot, "the Go standard library"); err != nil {
		return nil, err
	}
	for _, k := range keys {
		m := mods[k]
		slices.Sort(m.in)
		fmt.Fprintf(&b, "%s%s %s (in %s)\nSource: https://proxy.golang.org/%s/@v/%s.zip\n\n",
			rule, m.path, m.version, strings.Join(slices.Compact(m.in), ", "), escapeModulePath(m.path), m.version)
		if err := appendLicences(&b, m.dir, m.path+" "+m.version); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// appendLicences appends every licence file at dir's top level.
func appendLicences(b *bytes.Buffer, dir, what string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("third-party notices of %s: %w (is the module cache complete? go mod download)", what, err)
	}
	found := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !licenceFile(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		fmt.Fprintf(b, "--- %s ---\n\n%s\n", e.Name(), bytes.TrimRight(data, "\n"))
		b.WriteString("\n")
		found++
	}
	if found == 0 {
		return fmt.Errorf("third-party notices: %s has no licence file in %s", what, dir)
	}
	return nil
}
