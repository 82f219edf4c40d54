package gossip

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

// ReadJoinFile reads host:port lines (PeerMon's machines.txt): blank lines
// and '#' comments are ignored; a line without a port is an error naming
// the file and line.
func ReadJoinFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("join file: %w", err)
	}
	defer f.Close()
	var addrs []string
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(s, '#'); i >= 0 {
			s = strings.TrimSpace(s[:i])
		}
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("join file %s: line %d: %q: want host:port", path, line, s)
		}
		addrs = append(addrs, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("join file %s: %w", path, err)
	}
	return addrs, nil
}
