package main

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestKnownHostsWithoutKeys: an agent that knows no host keys (still
// starting, or no machine reads its /etc/ssh) must not turn the README's
// `known-hosts --out /etc/ssh/ssh_known_hosts` into a file of comments that
// makes ssh refuse every machine: the command fails with one line and the
// old file stays as it was. Once keys are known, --out replaces the file
// whole.
func TestKnownHostsWithoutKeys(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	dir := t.TempDir()
	file := filepath.Join(dir, "ssh_known_hosts")
	const old = "lab01 ssh-ed25519 AAAAold\n"
	if err := os.WriteFile(file, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"known-hosts", "--name", "cslab.example.edu", "--api", fake.addr()},
		{"known-hosts", "--name", "cslab.example.edu", "--api", fake.addr(), "--out", file},
	} {
		out, errOut, code := run(args...)
		want := "peerload known-hosts: no host keys known: none of the 4 machines has gossiped one"
		if code != 1 || out != "" || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d %q %q, want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != old {
		t.Errorf("after the failure %s holds %q, want the old %q", file, b, old)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left behind in %s: %v", dir, entries)
	}

	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	fake.nodes[0].HostKeys = []string{key}
	out, errOut, code := run("known-hosts", "--name", "cslab.example.edu", "--api", fake.addr(), "--out", file)
	if code != 0 || out != "" || errOut != "peerload known-hosts: warning: no host keys known for lab01, lab03, lab04\n" {
		t.Errorf("known-hosts --out with one key: exit %d %q %q", code, out, errOut)
	}
	b, _ := os.ReadFile(file)
	if want := "cslab.example.edu,lab02,127.0.1.2 " + key + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("%s:\n%s\nwant the line %q", file, b, want)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("%s: %v %v, want mode 0644", file, st.Mode(), err)
	}
}
