package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFileKB is RssFile of /proc/self/status: the pages of files, the
// binary's above all, mapped in this process.
func rssFileKB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "RssFile:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseStartupPages: the test binary, like peerload, has mapped much
// of itself by now; releasing unmaps it, and the program keeps running
// (this test returning is that part).
func TestReleaseStartupPages(t *testing.T) {
	before := rssFileKB(t)
	releaseStartupPages()
	if after := rssFileKB(t); after >= before {
		t.Errorf("RssFile %d kB after releasing, %d kB before: nothing was unmapped", after, before)
	} else {
		t.Logf("RssFile %d kB -> %d kB", before, after)
	}
}
