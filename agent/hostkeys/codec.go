package hostkeys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/ssh"
)

// codecVersion is the first byte of an encoding. A decoder refuses other
// versions; within a version, entries with a type code it does not know
// are skipped, so a newer agent may add key types.
const codecVersion = 1

// Encode packs keys for gossip, most preferred type first: a version byte,
// then per key its type code (0: the type name follows, uvarint-prefixed)
// and the uvarint-prefixed SSH wire blob without its leading type name,
// which the code already says. An Ed25519 key takes 38 bytes, ECDSA P-256
// 83, RSA-3072 about 400. With limit > 0 the result stays within limit
// bytes: keys that do not fit are left out, least preferred first (a
// client only needs one key of a type it can negotiate).
func Encode(keys []Key, limit int) []byte {
	keys = slices.Clone(keys)
	sortKeys(keys)
	out := []byte{codecVersion}
	for _, k := range keys {
		entry := appendEntry(nil, k)
		if limit > 0 && len(out)+len(entry) > limit {
			continue
		}
		out = append(out, entry...)
	}
	return out
}

func appendEntry(b []byte, k Key) []byte {
	typ := k.Type()
	body := wireBody(k.Marshal(), typ)
	code := byte(0)
	for _, t := range keyTypes {
		if t.name == typ {
			code = t.code
		}
	}
	b = append(b, code)
	if code == 0 {
		b = binary.AppendUvarint(b, uint64(len(typ)))
		b = append(b, typ...)
	}
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// wireBody strips the leading type-name string from an SSH public key
// blob (RFC 4253 section 6.6).
func wireBody(blob []byte, typ string) []byte {
	if len(blob) >= 4 {
		n := int(binary.BigEndian.Uint32(blob))
		if n == len(typ) && len(blob) >= 4+n && string(blob[4:4+n]) == typ {
			return blob[4+n:]
		}
	}
	return blob // not reached for keys from ssh.ParsePublicKey
}

// Decode unpacks what Encode made. Entries of unknown type codes are
// skipped; anything malformed is an error, never a panic.
func Decode(b []byte) ([]Key, error) {
	if len(b) == 0 {
		return nil, errors.New("hostkeys: empty encoding")
	}
	if b[0] != codecVersion {
		return nil, fmt.Errorf("hostkeys: encoding version %d, want %d", b[0], codecVersion)
	}
	b = b[1:]
	var keys []Key
	for len(b) > 0 {
		code := b[0]
		b = b[1:]
		typ := ""
		if code == 0 {
			name, rest, err := lengthPrefixed(b)
			if err != nil {
				return nil, fmt.Errorf("hostkeys: key type name: %w", err)
			}
			typ, b = string(name), rest
		} else {
			for _, t := range keyTypes {
				if t.code == code {
					typ = t.name
				}
			}
		}
		body, rest, err := lengthPrefixed(b)
		if err != nil {
			return nil, fmt.Errorf("hostkeys: key body: %w", err)
		}
		b = rest
		if typ == "" {
			continue // a type this version does not know
		}
		blob := binary.BigEndian.AppendUint32(nil, uint32(len(typ)))
		blob = append(append(blob, typ...), body...)
		pk, err := ssh.ParsePublicKey(blob)
		if err != nil {
			return nil, fmt.Errorf("hostkeys: %s key: %w", typ, err)
		}
		if _, ok := pk.(*ssh.Certificate); ok {
			return nil, fmt.Errorf("hostkeys: %s is a certificate type", typ)
		}
		keys = append(keys, Key{pk})
	}
	return keys, nil
}

// lengthPrefixed splits a uvarint-length-prefixed field off b.
func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, nil, errors.New("bad length")
	}
	b = b[w:]
	if n > uint64(len(b)) {
		return nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", n, len(b))
	}
	return b[:n], b[n:], nil
}
