package main

import (
	"bufio"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
)

// releaseStartupPages unmaps the pages of the peerload binary's code and
// read-only data that this process has mapped so far; they stay in the
// page cache, and the next use of any of them maps it again. Start-up runs
// every package's initialisation, parses flags and starts the API, which
// maps (64 KB at a time, the kernel's fault-around) most of the binary,
// while an idle member executes a small part of it. Called once start-up
// is over, it leaves mapped only what the member runs from then on.
// Writable mappings are left alone: they hold the program's data.
// Errors are ignored: the pages merely stay mapped.
func releaseStartupPages() {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	code := uint64(reflect.ValueOf(releaseStartupPages).Pointer())
	type mapping struct {
		lo, hi   uint64
		writable bool
		file     string // device and inode
	}
	var maps []mapping
	var binary string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 00400000-009c4000 r-xp 00000000 fd:00 1234 /usr/bin/peerload
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[4] == "0" {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		m := mapping{writable: strings.Contains(fields[1], "w"), file: fields[3] + " " + fields[4]}
		if m.lo, err = strconv.ParseUint(lo, 16, 64); err != nil {
			continue
		}
		if m.hi, err = strconv.ParseUint(hi, 16, 64); err != nil {
			continue
		}
		if m.lo <= code && code < m.hi {
			binary = m.file
		}
		maps = append(maps, m)
	}
	for _, m := range maps {
		if m.file != binary || m.writable {
			continue
		}
		// Not syscall.Madvise: its []byte would have to be made from a
		// bare address.
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, uintptr(m.lo), uintptr(m.hi-m.lo), syscall.MADV_DONTNEED)
	}
}
