package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peerload/peerload/internal/atomicfile"
)

// File names inside the state dir.
const (
	generationFile = "generation"
	drainFile      = "drain"
)

// stateStore keeps what must survive a restart of the agent: the report
// generation and the drain flag. With a directory each lives in its own
// small file, replaced atomically (temp file + rename) so a crash never
// leaves half a value; without one both live in memory only. Safe for
// concurrent use.
type stateStore struct {
	dir string // "" keeps everything in memory

	mu         sync.Mutex
	generation uint64 // in-memory mode: the last generation handed out
	drained    bool
	reason     string
}

// openState opens (creating it 0755 if missing) the state dir, checks that
// it is writable so a read-only or mis-owned directory fails at start rather
// than at the first drain, and loads the drain flag. dir "" keeps the state
// in memory only.
func openState(dir string) (*stateStore, error) {
	s := &stateStore{dir: dir}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return nil, fmt.Errorf("state dir %s is not writable: %w", dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())

	b, err := os.ReadFile(filepath.Join(dir, drainFile))
	switch {
	case err == nil:
		s.drained, s.reason = true, strings.TrimSpace(string(b))
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("state dir: read drain flag: %w", err)
	}
	return s, nil
}

// NextGeneration returns a generation larger than any this node used
// before, so the cluster prefers this run's reports over those of an earlier
// run still circulating in gossip.
//
// With a state dir it increments the number in the generation file (a
// missing file counts as 0). Without one there is nothing to increment,
// yet a restart must still supersede the old run's reports: the wall
// clock in nanoseconds is larger than any earlier run's as long as the clock
// does not step back, and two calls in one process still return increasing
// values.
func (s *stateStore) NextGeneration() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		s.generation = max(uint64(time.Now().UnixNano()), s.generation+1)
		return s.generation, nil
	}
	path := filepath.Join(s.dir, generationFile)
	var g uint64
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		text := strings.TrimSpace(string(b))
		if g, err = strconv.ParseUint(text, 10, 64); err != nil {
			return 0, fmt.Errorf("state file %s holds %q, not a generation number (remove it to start over)", path, text)
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("read generation: %w", err)
	}
	if g == ^uint64(0) {
		return 0, fmt.Errorf("state file %s: generation cannot grow further", path)
	}
	g++
	if err := atomicfile.Write(path, []byte(strconv.FormatUint(g, 10)+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("agent: write generation: %w", err)
	}
	return g, nil
}

// Drain reports the drain flag and its reason.
func (s *stateStore) Drain() (on bool, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drained, s.reason
}

// SetDrain sets or clears the drain flag. On disk the flag is the presence
// of the drain file, which holds the reason, so an operator can also drain a
// node that is down with `echo maintenance > /var/lib/peerload/drain`.
// Reasons are kept to one line.
func (s *stateStore) SetDrain(on bool, reason string) error {
	reason = strings.Join(strings.Fields(reason), " ")
	if !on {
		reason = ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir != "" {
		path := filepath.Join(s.dir, drainFile)
		if on {
			if err := atomicfile.Write(path, []byte(reason+"\n"), 0o644); err != nil {
				return fmt.Errorf("agent: set drain flag: %w", err)
			}
		} else if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("agent: clear drain flag: %w", err)
		}
	}
	s.drained, s.reason = on, reason
	return nil
}
