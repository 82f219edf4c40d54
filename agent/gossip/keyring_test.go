package gossip

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func keyringB64(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{fill}, n))
}

func TestKeyringRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyring")
	content := "# cluster keys\n\n" + keyringB64(32, 1) + "\n  " + keyringB64(16, 2) + "  # old key, remove after rotation\n" + strings.TrimRight(keyringB64(24, 3), "=") + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 || !bytes.Equal(keys[0], bytes.Repeat([]byte{1}, 32)) || len(keys[1]) != 16 || len(keys[2]) != 24 {
		t.Errorf("keys = %x", keys)
	}
}

func TestKeyringReadErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, content, want string }{
		{"empty", "", "no keys"},
		{"comments only", "# nothing here\n\n", "no keys"},
		{"wrong size", "# c\n\n" + keyringB64(20, 1) + "\n", "line 3: key is 20 bytes, want 16, 24 or 32"},
		{"not base64", keyringB64(32, 1) + "\nnot*base64!\n", "line 2: key is not base64"},
		{"two on a line", keyringB64(32, 1) + " " + keyringB64(32, 2) + "\n", "line 1: more than one key"},
		{"duplicate", keyringB64(32, 1) + "\n" + keyringB64(32, 1) + "\n", "line 2: same key as line 1"},
	} {
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyring(path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keyring "+path+": ") {
			t.Errorf("%s: err = %v, want \"keyring %s: ...%s...\"", tc.name, err, path, tc.want)
		}
	}
	missing := filepath.Join(dir, "missing")
	if _, err := ReadKeyring(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestKeyringGenerateWriteRead(t *testing.T) {
	k1, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := GenerateKey()
	if len(k1) != 32 || bytes.Equal(k1, k2) || bytes.Equal(k1, make([]byte, 32)) {
		t.Fatalf("GenerateKey gave %x and %x", k1, k2)
	}
	path := filepath.Join(t.TempDir(), "keyring")
	if err := WriteKeyring(path, [][]byte{k1, k2}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("keyring mode = %v, %v; want 0600", fi.Mode(), err)
	}
	keys, err := ReadKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !bytes.Equal(keys[0], k1) || !bytes.Equal(keys[1], k2) {
		t.Errorf("read back %x, want %x %x", keys, k1, k2)
	}

	before, _ := os.ReadFile(path)
	err = WriteKeyring(path, [][]byte{k2})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !strings.Contains(err.Error(), path) {
		t.Errorf("overwrite: err = %v, want a refusal naming the file", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("refused overwrite still changed the file")
	}
}

func TestKeyringWriteRejectsBadKeys(t *testing.T) {
	dir := t.TempDir()
	if err := WriteKeyring(filepath.Join(dir, "a"), nil); err == nil {
		t.Error("writing no keys succeeded")
	}
	err := WriteKeyring(filepath.Join(dir, "b"), [][]byte{make([]byte, 32), make([]byte, 7)})
	if err == nil || !strings.Contains(err.Error(), "key 2: key is 7 bytes") {
		t.Errorf("bad key size: err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); err == nil {
		t.Error("a rejected keyring was still created")
	}
}
