// Package buildinfo holds the version and commit every peerload binary
// prints (`peerload version`, `coredns -version`), so a bug report names
// the exact build.
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// version and commit are set at build time:
//
//	-ldflags '-X github.com/peerload/peerload/internal/buildinfo.version=v1.2.0
//	          -X github.com/peerload/peerload/internal/buildinfo.commit=abc1234'
//
// `make build` sets both from git. Without them the commit comes from the
// VCS stamp `go build` records in the binary, when there is one.
var (
	version = "dev"
	commit  = ""
)

// Version is the release (git describe) the binary was built from, "dev"
// when unknown.
func Version() string { return version }

// Commit is the short git commit the binary was built from, with
// "-dirty" when the tree had uncommitted changes, or "unknown".
func Commit() string {
	if commit != "" {
		return commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return "unknown"
	}
	return shortCommit(rev) + dirty
}

// shortCommit abbreviates a full hash the way git log --oneline does.
func shortCommit(rev string) string {
	rev = strings.TrimSpace(rev)
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
