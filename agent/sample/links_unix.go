//go:build unix

package sample

import (
	"os"
	"syscall"
)

// linkCount is the number of hard links to fi's file; for a directory,
// two more than its subdirectories on most file systems, and on /proc a
// fixed number plus the processes.
func linkCount(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}
