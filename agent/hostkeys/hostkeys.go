// Package hostkeys solves the one-name-many-machines problem of ssh: every
// machine of a lab has its own host key, so `ssh cslab.example.edu` warns
// whenever the name lands on another machine, and the classic workaround,
// one private key copied to every machine, turns one stolen machine into a
// stolen lab. Instead each agent reads its machine's public host keys
// (Read), gossips them in a compact form (Encode, Decode), and any member
// can write an ssh_known_hosts file (KnownHosts) in which the virtual name,
// each machine's name and its addresses map to that machine's own keys, or
// one @cert-authority line when the site signs host keys with an SSH CA.
//
// The package has no cluster or network code: the agent decides where the
// encoded keys travel (node meta or a message of their own).
package hostkeys

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Key is one public host key.
type Key struct {
	ssh.PublicKey
}

// ParseKey parses one public key in authorized_keys / .pub form ("type
// base64 [comment]"); the comment is dropped, it names no host.
func ParseKey(line string) (Key, error) {
	pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return Key{}, err
	}
	if _, ok := pk.(*ssh.Certificate); ok {
		return Key{}, errors.New("a certificate, not a plain public key")
	}
	return Key{pk}, nil
}

// String is the key in known_hosts form: "type base64".
func (k Key) String() string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k.PublicKey)), "\n")
}

// Equal reports whether two keys are the same key.
func (k Key) Equal(o Key) bool {
	return k.PublicKey != nil && o.PublicKey != nil && bytes.Equal(k.Marshal(), o.Marshal())
}

// hostKeyGlob matches the public host keys sshd generates, one per type,
// and not their certificates (ssh_host_*_key-cert.pub).
const hostKeyGlob = "etc/ssh/ssh_host_*_key.pub"

// Read returns the public host keys of the machine whose file system is
// at root ("/" normally; a test or a container gives another), most
// preferred type first. A machine without host keys (no sshd) has none and
// no error; a key file that cannot be read or parsed is an error naming
// the file.
func Read(root string) ([]Key, error) {
	paths, err := filepath.Glob(filepath.Join(root, hostKeyGlob))
	if err != nil {
		return nil, err
	}
	var keys []Key
	for _, path := range paths {
		k, err := readKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("hostkeys: %s: %w", path, err)
		}
		if !slices.ContainsFunc(keys, k.Equal) {
			keys = append(keys, k)
		}
	}
	sortKeys(keys)
	return keys, nil
}

// readKeyFile parses the first key line of a .pub file.
func readKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		return ParseKey(line)
	}
	if err := sc.Err(); err != nil {
		return Key{}, err
	}
	return Key{}, errors.New("no public key in the file")
}

// keyTypes are the host key types in order of preference, with their code
// on the wire. Codes are part of the gossip format: never reuse one.
// ssh clients negotiate a type they hold a known key for, so when space is
// short the keys at the end are the ones to leave out: Ed25519 is small and
// what OpenSSH prefers, RSA is large.
var keyTypes = []struct {
	name string
	code byte
}{
	{ssh.KeyAlgoED25519, 1},
	{ssh.KeyAlgoECDSA256, 2},
	{ssh.KeyAlgoECDSA384, 3},
	{ssh.KeyAlgoECDSA521, 4},
	{ssh.KeyAlgoSKED25519, 5},
	{ssh.KeyAlgoSKECDSA256, 6},
	{ssh.KeyAlgoRSA, 7},
}

// rank is a key type's place in keyTypes; unknown types come last.
func rank(typ string) int {
	for i, t := range keyTypes {
		if t.name == typ {
			return i
		}
	}
	return len(keyTypes)
}

// sortKeys orders keys by preference of their type, stably.
func sortKeys(keys []Key) {
	slices.SortStableFunc(keys, func(a, b Key) int { return rank(a.Type()) - rank(b.Type()) })
}
