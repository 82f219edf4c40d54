package gossip

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ReadKeyring reads gossip encryption keys from path: one base64 key a line
// (16, 24 or 32 bytes once decoded, for AES-128, -192 or -256), blank lines
// and '#' comments ignored. The first key is the primary one, used to
// encrypt; the others are only tried when decrypting, which is how a key is
// rotated without a flag day: add the new key second everywhere, reload,
// move it first everywhere, reload, then drop the old one.
func ReadKeyring(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	keys, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return keys, nil
}

// parseKeyring is ReadKeyring without the file.
func parseKeyring(data []byte) ([][]byte, error) {
	var keys [][]byte
	seen := make(map[string]int)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("line %d: more than one key on the line", n)
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			if key, err = base64.RawStdEncoding.DecodeString(line); err != nil {
				return nil, fmt.Errorf("line %d: key is not base64: %w", n, err)
			}
		}
		if err := checkKeySize(key); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if first, dup := seen[string(key)]; dup {
			return nil, fmt.Errorf("line %d: same key as line %d", n, first)
		}
		seen[string(key)] = n
		keys = append(keys, key)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys (an empty keyring would silently turn encryption off)")
	}
	return keys, nil
}

func checkKeySize(key []byte) error {
	switch len(key) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("key is %d bytes, want 16, 24 or 32", len(key))
}

// GenerateKey returns a new random AES-256 key.
func GenerateKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("keyring: generate key: %w", err)
	}
	return key, nil
}

// WriteKeyring writes keys (the first is primary) to a new file readable
// only by its owner. It never overwrites an existing file: replacing a
// keyring by accident would cut this node off from the cluster.
func WriteKeyring(path string, keys [][]byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("keyring %s: no keys to write", path)
	}
	var b bytes.Buffer
	b.WriteString("# peerload gossip keyring: one base64 AES key a line, the first is primary.\n")
	for i, k := range keys {
		if err := checkKeySize(k); err != nil {
			return fmt.Errorf("keyring %s: key %d: %w", path, i+1, err)
		}
		b.WriteString(base64.StdEncoding.EncodeToString(k))
		b.WriteByte('\n')
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("keyring %s already exists; not overwriting it (remove it first to replace it)", path)
	}
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("keyring: write %s: %w", path, err)
	}
	return nil
}
