package rfc2136

import (
	"crypto/hmac"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Key is one TSIG key as BIND's tsig-keygen writes it.
type Key struct {
	// Name is the key name, fully qualified and lower case as TSIG wants.
	Name string
	// Algorithm is the miekg/dns algorithm name, e.g. dns.HmacSHA256.
	Algorithm string
	// Secret is the base64 secret exactly as in the file.
	Secret string
}

// algorithms maps the names BIND accepts in a key statement to the TSIG
// algorithm names on the wire.
var algorithms = map[string]string{
	"hmac-sha256":              dns.HmacSHA256,
	"hmac-sha512":              dns.HmacSHA512,
	"hmac-sha384":              dns.HmacSHA384,
	"hmac-sha224":              dns.HmacSHA224,
	"hmac-sha1":                dns.HmacSHA1,
	"hmac-md5":                 dns.HmacMD5,
	"hmac-md5.sig-alg.reg.int": dns.HmacMD5,
}

// ReadKeyFile reads a BIND key file (one or more `key "name" { algorithm
// ...; secret "..."; };` statements, with #, // and /* */ comments) and
// returns the key called name, or the only key when name is empty. An
// hmac-md5 key is refused unless allowMD5 is set. Every error names the file
// and the problem.
func ReadKeyFile(path, name string, allowMD5 bool) (Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("tsig key: %w", err)
	}
	keys, err := ParseKeys(string(data))
	if err != nil {
		return Key{}, fmt.Errorf("tsig key file %s: %w", path, err)
	}
	k, err := selectKey(keys, name)
	if err != nil {
		return Key{}, fmt.Errorf("tsig key file %s: %w", path, err)
	}
	if k.Algorithm == dns.HmacMD5 && !allowMD5 {
		return Key{}, fmt.Errorf("tsig key file %s: key %q uses hmac-md5, which is broken; make a new key with tsig-keygen (hmac-sha256) or allow md5 explicitly (--allow-md5 / allow-md5)", path, k.Name)
	}
	return k, nil
}

func selectKey(keys []Key, name string) (Key, error) {
	if len(keys) == 0 {
		return Key{}, errors.New("no key statement found")
	}
	if name == "" {
		if len(keys) > 1 {
			names := make([]string, len(keys))
			for i, k := range keys {
				names[i] = strings.TrimSuffix(k.Name, ".")
			}
			return Key{}, fmt.Errorf("holds %d keys (%s); say which one to use", len(keys), strings.Join(names, ", "))
		}
		return keys[0], nil
	}
	want := dns.CanonicalName(name)
	for _, k := range keys {
		if k.Name == want {
			return k, nil
		}
	}
	return Key{}, fmt.Errorf("no key named %q", name)
}

// ParseKeys parses the key statements of a BIND configuration fragment.
// Anything other than key statements is an error, so a wrong file (a zone
// file, a named.conf) is caught at start.
func ParseKeys(text string) ([]Key, error) {
	toks, err := tokenize(text)
	if err != nil {
		return nil, err
	}
	p := &keyParser{toks: toks}
	var keys []Key
	seen := map[string]bool{}
	for !p.done() {
		t := p.next()
		if t.text != "key" || t.quoted {
			return nil, fmt.Errorf("line %d: expected a key statement, found %q", t.line, t.text)
		}
		k, err := p.key()
		if err != nil {
			return nil, err
		}
		if seen[k.Name] {
			return nil, fmt.Errorf("key %q defined twice", strings.TrimSuffix(k.Name, "."))
		}
		seen[k.Name] = true
		keys = append(keys, k)
	}
	return keys, nil
}

type token struct {
	text   string
	quoted bool
	line   int
}

type keyParser struct {
	toks []token
	i    int
}

func (p *keyParser) done() bool { return p.i >= len(p.toks) }

func (p *keyParser) next() token {
	if p.done() {
		line := 1
		if len(p.toks) > 0 {
			line = p.toks[len(p.toks)-1].line
		}
		return token{line: line}
	}
	t := p.toks[p.i]
	p.i++
	return t
}

func (p *keyParser) expect(s string) error {
	t := p.next()
	if t.quoted || t.text != s {
		if t.text == "" && !t.quoted {
			return fmt.Errorf("line %d: unexpected end of file, expected %q", t.line, s)
		}
		return fmt.Errorf("line %d: expected %q, found %q", t.line, s, t.text)
	}
	return nil
}

// key parses `NAME { algorithm ALG; secret "B64"; };` after the key keyword.
func (p *keyParser) key() (Key, error) {
	nt := p.next()
	if nt.text == "" || (!nt.quoted && (nt.text == "{" || nt.text == ";")) {
		return Key{}, fmt.Errorf("line %d: key statement without a name", nt.line)
	}
	if _, ok := dns.IsDomainName(nt.text); !ok {
		return Key{}, fmt.Errorf("line %d: key name %q is not a valid domain name", nt.line, nt.text)
	}
	k := Key{Name: dns.CanonicalName(nt.text)}
	if err := p.expect("{"); err != nil {
		return Key{}, err
	}
	var alg string
	for {
		t := p.next()
		if !t.quoted && t.text == "}" {
			break
		}
		switch {
		case t.quoted || t.text == "":
			if t.text == "" && !t.quoted {
				return Key{}, fmt.Errorf("line %d: unexpected end of file in key %q", t.line, nt.text)
			}
			return Key{}, fmt.Errorf("line %d: unexpected %q in key %q", t.line, t.text, nt.text)
		case t.text == "algorithm":
			v := p.next()
			if v.text == "" || (!v.quoted && (v.text == ";" || v.text == "}")) {
				return Key{}, fmt.Errorf("line %d: algorithm without a value in key %q", v.line, nt.text)
			}
			alg = strings.ToLower(v.text)
		case t.text == "secret":
			v := p.next()
			if !v.quoted {
				return Key{}, fmt.Errorf("line %d: secret of key %q must be a quoted string", v.line, nt.text)
			}
			k.Secret = v.text
		default:
			return Key{}, fmt.Errorf("line %d: unknown option %q in key %q", t.line, t.text, nt.text)
		}
		if err := p.expect(";"); err != nil {
			return Key{}, err
		}
	}
	if err := p.expect(";"); err != nil {
		return Key{}, err
	}
	if alg == "" {
		return Key{}, fmt.Errorf("key %q has no algorithm", nt.text)
	}
	wire, ok := algorithms[alg]
	if !ok {
		return Key{}, fmt.Errorf("key %q: algorithm %q not supported (want hmac-sha256, hmac-sha512, hmac-sha384, hmac-sha224 or hmac-sha1)", nt.text, alg)
	}
	k.Algorithm = wire
	if k.Secret == "" {
		return Key{}, fmt.Errorf("key %q has no secret", nt.text)
	}
	raw, err := base64.StdEncoding.DecodeString(k.Secret)
	if err != nil {
		return Key{}, fmt.Errorf("key %q: secret is not valid base64: %v", nt.text, err)
	}
	if len(raw) == 0 {
		return Key{}, fmt.Errorf("key %q: secret is empty", nt.text)
	}
	return k, nil
}

// tokenize splits BIND configuration syntax into words, quoted strings and
// the punctuation { } ;, dropping comments.
func tokenize(s string) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < len(s) && s[i+1] == '/'):
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			start := line
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: comment never closed", start)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{text: string(c), line: line})
			i++
		case c == '"':
			end := strings.IndexAny(s[i+1:], "\"\n")
			if end < 0 || s[i+1+end] != '"' {
				return nil, fmt.Errorf("line %d: quoted string never closed", line)
			}
			toks = append(toks, token{text: s[i+1 : i+1+end], quoted: true, line: line})
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"#", rune(s[j])) && !(s[j] == '/' && j+1 < len(s) && (s[j+1] == '/' || s[j+1] == '*')) {
				j++
			}
			toks = append(toks, token{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

// md5Provider signs and verifies hmac-md5 TSIG, which miekg/dns no longer
// does itself; it is only used when md5 was explicitly allowed.
type md5Provider struct{ name, secret string }

func (p md5Provider) Generate(msg []byte, t *dns.TSIG) ([]byte, error) {
	if dns.CanonicalName(t.Hdr.Name) != p.name || dns.CanonicalName(t.Algorithm) != dns.HmacMD5 {
		return nil, dns.ErrSecret
	}
	raw, err := base64.StdEncoding.DecodeString(p.secret)
	if err != nil {
		return nil, err
	}
	h := hmac.New(md5.New, raw)
	h.Write(msg)
	return h.Sum(nil), nil
}

func (p md5Provider) Verify(msg []byte, t *dns.TSIG) error {
	b, err := p.Generate(msg, t)
	if err != nil {
		return err
	}
	mac, err := hex.DecodeString(t.MAC)
	if err != nil {
		return err
	}
	if !hmac.Equal(b, mac) {
		return dns.ErrSig
	}
	return nil
}

// sign adds the TSIG record for k to m (last, as TSIG must be) and sets up c
// to sign and verify with it.
func (k *Key) sign(m *dns.Msg, c *dns.Client) {
	m.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	if k.Algorithm == dns.HmacMD5 {
		c.TsigProvider = md5Provider{name: k.Name, secret: k.Secret}
		return
	}
	c.TsigSecret = map[string]string{k.Name: k.Secret}
}
