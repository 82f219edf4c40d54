package gossip

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseKeyring: a keyring file is admin input; parsing never panics,
// and every key it accepts has an AES size.
func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("# primary\nAAAAAAAAAAAAAAAAAAAAAA==\n"))
	f.Add([]byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n# old\nAAAAAAAAAAAAAAAAAAAAAA==\n"))
	f.Add([]byte("not base64!\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseKeyring(b)
		if err != nil {
			return
		}
		for _, k := range keys {
			if n := len(k); n != 16 && n != 24 && n != 32 {
				t.Fatalf("accepted a %d-byte key", n)
			}
		}
	})
}

// FuzzReadJoinFile: a join file is admin input; reading never panics and
// every address it accepts has a port.
func FuzzReadJoinFile(f *testing.F) {
	f.Add([]byte("lab01:7946\n# comment\n10.0.0.2:7946 # inline\n\n"))
	f.Add([]byte("lab01\n"))
	f.Add([]byte("[fd00::1]:7946\n"))
	path := filepath.Join(f.TempDir(), "machines.txt")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		addrs, err := ReadJoinFile(path)
		if err != nil {
			return
		}
		for _, a := range addrs {
			if a == "" {
				t.Fatal("accepted an empty address")
			}
		}
	})
}
