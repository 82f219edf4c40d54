package hostkeys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// detReader is a deterministic byte stream for key generation, so keys
// (and golden output) are the same on every run.
type detReader struct {
	seed []byte
	n    uint64
	buf  []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		h := sha256.Sum256(append(r.seed, byte(r.n), byte(r.n>>8), byte(r.n>>16)))
		r.n++
		r.buf = append(r.buf, h[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// testKeys returns an Ed25519, an ECDSA P-256 and (when withRSA) an RSA
// public key, deterministic per seed.
func testKeys(t testing.TB, seed string, withRSA bool) []Key {
	t.Helper()
	r := &detReader{seed: []byte(seed)}
	edPub, _, err := ed25519.GenerateKey(r)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		t.Fatal(err)
	}
	raw := []any{edPub, &ec.PublicKey}
	if withRSA {
		rk, err := rsa.GenerateKey(r, 2048)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, &rk.PublicKey)
	}
	var keys []Key
	for _, k := range raw {
		pk, err := ssh.NewPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, Key{pk})
	}
	return keys
}

// writeHostKeys lays keys out as sshd does: /etc/ssh/ssh_host_TYPE_key.pub.
func writeHostKeys(t *testing.T, root string, keys []Key) {
	t.Helper()
	dir := filepath.Join(root, "etc/ssh")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{ssh.KeyAlgoED25519: "ed25519", ssh.KeyAlgoECDSA256: "ecdsa", ssh.KeyAlgoRSA: "rsa"}
	for _, k := range keys {
		line := k.String() + " root@lab01\n"
		if err := os.WriteFile(filepath.Join(dir, "ssh_host_"+files[k.Type()]+"_key.pub"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRead(t *testing.T) {
	root := t.TempDir()
	keys := testKeys(t, "lab01", true)
	writeHostKeys(t, root, []Key{keys[2], keys[1], keys[0]})
	// A certificate and a private key beside them are not read.
	os.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key-cert.pub"), []byte("garbage\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/ssh/ssh_host_ed25519_key"), []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o600)

	got, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("Read: %d keys, want 3", len(got))
	}
	for i, want := range []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoRSA} {
		if got[i].Type() != want || !got[i].Equal(keys[i]) {
			t.Errorf("key %d: %s, want the %s key", i, got[i].Type(), want)
		}
	}
}

func TestReadNoKeys(t *testing.T) {
	got, err := Read(t.TempDir())
	if err != nil || len(got) != 0 {
		t.Fatalf("Read of a machine without sshd: %v, %v; want no keys, no error", got, err)
	}
}

func TestReadBadFile(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	path := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key.pub")
	for _, content := range []string{"ssh-ed25519 not-base64!\n", "# only a comment\n", ""} {
		os.WriteFile(path, []byte(content), 0o644)
		_, err := Read(root)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Read of %q: error %v, want one naming %s", content, err, path)
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	keys := testKeys(t, "lab01", true)
	b := Encode(keys, 0)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(keys) {
		t.Fatalf("decoded %d keys, want %d", len(got), len(keys))
	}
	for i := range keys {
		if !got[i].Equal(keys[i]) {
			t.Errorf("key %d changed in the round trip: %s", i, got[i])
		}
	}
	// Compact: well below the OpenSSH text form.
	var text int
	for _, k := range keys {
		text += len(k.String())
	}
	if len(b) > text*3/4 {
		t.Errorf("encoding is %d bytes, the text form %d", len(b), text)
	}
	t.Logf("ed25519+ecdsa256+rsa2048: %d bytes encoded, %d as text", len(b), text)
}

func TestEncodeLimit(t *testing.T) {
	keys := testKeys(t, "lab01", true)
	ed := Encode(keys[:1], 0)
	if len(ed) != 1+38 {
		t.Errorf("one Ed25519 key encodes to %d bytes, want 39", len(ed))
	}
	// Room for Ed25519 and ECDSA but not RSA: RSA is left out.
	b := Encode([]Key{keys[2], keys[0], keys[1]}, 150)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 150 || len(got) != 2 || got[0].Type() != ssh.KeyAlgoED25519 || got[1].Type() != ssh.KeyAlgoECDSA256 {
		t.Errorf("Encode within 150 bytes: %d bytes, keys %v; want Ed25519 and ECDSA", len(b), got)
	}
}

func TestDecodeSkipsUnknownCodes(t *testing.T) {
	keys := testKeys(t, "lab01", false)
	b := Encode(keys[:1], 0)
	// A newer agent's entry: code 200, 3 bytes of body.
	b = append(b, 200, 3, 'x', 'y', 'z')
	b = append(b, Encode(keys[1:2], 0)[1:]...)
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Equal(keys[0]) || !got[1].Equal(keys[1]) {
		t.Errorf("Decode with an unknown entry: %v, want the two known keys", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(testKeys(t, "lab01", false), 0)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"version":       append([]byte{9}, good[1:]...),
		"truncated":     good[:len(good)-5],
		"bad length":    {codecVersion, 1, 0xff},
		"corrupt key":   {codecVersion, 1, 3, 1, 2, 3},
		"name too long": {codecVersion, 0, 50, 'a'},
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s: Decode(%x) succeeded", name, b)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(testKeys(f, "lab01", false), 0))
	f.Add([]byte{codecVersion, 0, 3, 'a', 'b', 'c', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := Decode(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		again, err := Decode(Encode(keys, 0))
		if err != nil || len(again) != len(keys) {
			t.Fatalf("re-encoding %d keys: %v, %d keys", len(keys), err, len(again))
		}
	})
}

// lab is three machines with their own keys.
func lab(t *testing.T) []Host {
	return []Host{
		{Name: "lab02", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.2")}, Keys: testKeys(t, "lab02", false)},
		{Name: "lab01", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1")}, Keys: testKeys(t, "lab01", false)},
		{Name: "lab03", Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.3")}},
	}
}

func TestKnownHostsFormat(t *testing.T) {
	hosts := lab(t)
	var buf bytes.Buffer
	if err := KnownHosts(&buf, hosts, Options{Names: []string{"cslab.example.edu"}}); err != nil {
		t.Fatal(err)
	}
	want := "# ssh_known_hosts written by peerload for cslab.example.edu: 3 machines\n" +
		"cslab.example.edu,lab01,10.0.0.1,2001:db8::1 " + hosts[1].Keys[0].String() + "\n" +
		"cslab.example.edu,lab01,10.0.0.1,2001:db8::1 " + hosts[1].Keys[1].String() + "\n" +
		"cslab.example.edu,lab02,10.0.0.2 " + hosts[0].Keys[0].String() + "\n" +
		"cslab.example.edu,lab02,10.0.0.2 " + hosts[0].Keys[1].String() + "\n" +
		"# lab03: no host keys known\n"
	if buf.String() != want {
		t.Errorf("KnownHosts:\n%s\nwant:\n%s", buf.String(), want)
	}
}

// check verifies key for host (as ssh would look it up) against a
// known_hosts file with x/crypto's OpenSSH-compatible parser.
func check(t *testing.T, file, host string, port int, key ssh.PublicKey) error {
	t.Helper()
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatalf("known_hosts does not parse: %v", err)
	}
	addr := &net.TCPAddr{IP: net.ParseIP("192.0.2.99"), Port: port}
	return cb(net.JoinHostPort(host, strconv.Itoa(port)), addr, key)
}

func TestKnownHostsVerifies(t *testing.T) {
	hosts := lab(t)
	for _, port := range []int{22, 2222} {
		file := filepath.Join(t.TempDir(), "ssh_known_hosts")
		var buf bytes.Buffer
		if err := KnownHosts(&buf, hosts, Options{Names: []string{"cslab.example.edu"}, Port: port}); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(file, buf.Bytes(), 0o644)
		lab01, lab02 := hosts[1].Keys, hosts[0].Keys
		// The virtual name accepts every machine's own keys.
		for _, k := range append(append([]Key{}, lab01...), lab02...) {
			if err := check(t, file, "cslab.example.edu", port, k); err != nil {
				t.Errorf("port %d: cslab.example.edu with a lab key: %v", port, err)
			}
		}
		// A machine's name and address accept only that machine's keys.
		for _, host := range []string{"lab01", "10.0.0.1", "2001:db8::1"} {
			if err := check(t, file, host, port, lab01[0]); err != nil {
				t.Errorf("port %d: %s with its own key: %v", port, host, err)
			}
			var ke *knownhosts.KeyError
			if err := check(t, file, host, port, lab02[0]); err == nil || !asKeyError(err, &ke) || len(ke.Want) == 0 {
				t.Errorf("port %d: %s accepted lab02's key (err %v)", port, host, err)
			}
		}
		// A stranger's key is refused for the virtual name.
		if err := check(t, file, "cslab.example.edu", port, testKeys(t, "stranger", false)[0]); err == nil {
			t.Errorf("port %d: the virtual name accepted a stranger's key", port)
		}
	}
}

func asKeyError(err error, ke **knownhosts.KeyError) bool {
	k, ok := err.(*knownhosts.KeyError)
	*ke = k
	return ok
}

func TestKnownHostsCA(t *testing.T) {
	hosts := lab(t)
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	ca := Key{signer.PublicKey()}
	var buf bytes.Buffer
	if err := KnownHosts(&buf, hosts, Options{Names: []string{"cslab.example.edu", "*.cslab.example.edu"}, CA: &ca}); err != nil {
		t.Fatal(err)
	}
	want := "# ssh_known_hosts written by peerload for cslab.example.edu, *.cslab.example.edu: 3 machines\n" +
		"@cert-authority cslab.example.edu,*.cslab.example.edu,lab01,10.0.0.1,2001:db8::1,lab02,10.0.0.2,lab03,10.0.0.3 " + ca.String() + "\n"
	if buf.String() != want {
		t.Fatalf("KnownHosts with a CA:\n%s\nwant:\n%s", buf.String(), want)
	}
	file := filepath.Join(t.TempDir(), "ssh_known_hosts")
	os.WriteFile(file, buf.Bytes(), 0o644)
	// A host certificate signed by the CA verifies for the virtual name.
	cert := &ssh.Certificate{Key: hosts[1].Keys[0].PublicKey, CertType: ssh.HostCert, ValidPrincipals: []string{"cslab.example.edu"}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(&detReader{seed: []byte("sig")}, signer); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(file)
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsHostAuthority: func(auth ssh.PublicKey, addr string) bool {
		return cb(addr, &net.TCPAddr{IP: net.ParseIP("192.0.2.99"), Port: 22}, auth) == nil
	}}
	if err := checker.CheckHostKey("cslab.example.edu:22", &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 22}, cert); err != nil {
		t.Errorf("CA-signed host certificate refused: %v", err)
	}
}

func TestKnownHostsBadNames(t *testing.T) {
	key := testKeys(t, "lab01", false)
	for _, tc := range []struct {
		hosts []Host
		opt   Options
		want  string
	}{
		{[]Host{{Name: "lab 01", Keys: key}}, Options{}, `host "lab 01"`},
		{[]Host{{Name: "lab01,evil", Keys: key}}, Options{}, `host "lab01,evil"`},
		{[]Host{{Name: "@revoked", Keys: key}}, Options{}, `host "@revoked"`},
		{[]Host{{Name: "lab*", Keys: key}}, Options{}, `host "lab*"`},
		{[]Host{{Name: "", Keys: key}}, Options{}, `host ""`},
		{[]Host{{Name: "lab01", Keys: key}, {Name: "lab01"}}, Options{}, "listed twice"},
		{nil, Options{Names: []string{"#x"}}, `virtual name "#x"`},
		{nil, Options{Port: 70000}, "port 70000"},
	} {
		err := KnownHosts(&bytes.Buffer{}, tc.hosts, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("KnownHosts(%v, %+v): %v, want an error with %q", tc.hosts, tc.opt, err, tc.want)
		}
	}
}
