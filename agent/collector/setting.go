package collector

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/peerload/peerload/agent/gossip"
)

// CheckKeyring reads the keyring file as the member will, so that a
// configuration with a missing or bad file fails when it is read, naming
// the setting, rather than when the member starts. "" (no encryption) is
// fine.
func CheckKeyring(path string) error {
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	if st.IsDir() {
		return fmt.Errorf("keyring: %s is a directory", path)
	}
	if _, err := gossip.ReadKeyring(path); err != nil {
		// One form for every error: "keyring: <file>: <what, which line>".
		var pe *fs.PathError
		inner := errors.Unwrap(err)
		switch {
		case inner == nil:
			return fmt.Errorf("keyring: %w", err)
		case errors.As(inner, &pe):
			return fmt.Errorf("keyring: %w", inner)
		default:
			return fmt.Errorf("keyring: %s: %w", path, inner)
		}
	}
	return nil
}

// ParseInt parses the value of an integer setting of a front end's
// configuration, from lo to hi; errors name the setting.
func ParseInt(setting, value string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil {
		return 0, fmt.Errorf("%s: '%s' is not a number", setting, value)
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%s: %d out of range %d..%d", setting, n, lo, hi)
	}
	return n, nil
}
