package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/peerload/peerload/internal/buildinfo"
)

// versionInfo is `peerload version --json`.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

func (c *cli) runVersion(args []string) error {
	f := c.newFlagSet("version", "[flags]", "Print the version and git commit of this binary (include them in bug reports).")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	v := versionInfo{buildinfo.Version(), buildinfo.Commit(), runtime.Version(), runtime.GOOS, runtime.GOARCH}
	if *asJSON {
		return writeJSON(c.stdout, v)
	}
	fmt.Fprintf(c.stdout, "peerload %s (commit %s, %s %s/%s)\n", v.Version, v.Commit, v.Go, v.OS, v.Arch)
	return nil
}

// writeJSON is every command's --json output: indented, one document.
func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
