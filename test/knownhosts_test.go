package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKnownHostsWithRealSSHD: three machines, each with its own generated
// host keys and a real sshd on its own address; `peerload known-hosts`
// from the gossip gives an ssh_known_hosts file with which ssh, strict
// about host keys, logs in to whichever machine the virtual name lands on
// without a warning, and no machine shares another's private key.
func TestKnownHostsWithRealSSHD(t *testing.T) {
	sshd := requireProgram(t, "/usr/sbin/sshd")
	ssh := requireProgram(t, "ssh")
	keygen := requireProgram(t, "ssh-keygen")
	if os.Getuid() != 0 {
		t.Skip("sshd needs root")
	}
	dir := t.TempDir()
	clientKey := filepath.Join(dir, "id_ed25519")
	if res := runCmd(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", clientKey); res.Code != 0 {
		t.Fatalf("ssh-keygen: %s", res)
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // sshd's privilege separation dir
		t.Fatal(err)
	}

	const machines = 3
	agents := make([]*agentProc, machines)
	ports := make([]int, machines)
	for i := range agents {
		root := filepath.Join(dir, fmt.Sprintf("root%d", i+1))
		if err := os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755); err != nil {
			t.Fatal(err)
		}
		hostKey := filepath.Join(root, "etc/ssh/ssh_host_ed25519_key")
		if res := runCmd(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", hostKey); res.Code != 0 {
			t.Fatalf("ssh-keygen: %s", res)
		}
		addr := fmt.Sprintf("127.0.1.%d", 60+i)
		ports[i] = freePort(t)
		startSSHD(t, sshd, root, hostKey, authorized, addr, ports[0])
		opts := agentOptions{Name: fmt.Sprintf("lab%d", i+1), Advertise: addr, Root: root}
		if i > 0 {
			opts.Join = []string{agents[0].Gossip()}
		}
		agents[i] = startAgent(t, opts)
	}
	api := agents[0].API()
	var known string
	waitFor(t, 30*time.Second, func() (bool, string) {
		res := runPeerload(t, "known-hosts", "--name", "cslab.example.edu", "--port", fmt.Sprint(ports[0]), "--api", api)
		known = res.Stdout
		return res.Code == 0 && strings.Count(known, "ssh-ed25519") == machines, res.String()
	})
	knownFile := filepath.Join(dir, "ssh_known_hosts")
	if err := os.WriteFile(knownFile, []byte(known), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each machine's own key is listed under its address and the virtual
	// name; ssh checks the name (HostKeyAlias stands for DNS resolving
	// cslab.example.edu to that machine; sshd is not on port 22 here, so
	// the name is [cslab.example.edu]:port as ssh looks it up) and the
	// address (CheckHostIP).
	alias := fmt.Sprintf("[cslab.example.edu]:%d", ports[0])
	for i := range agents {
		addr := fmt.Sprintf("127.0.1.%d", 60+i)
		res := runCmd(t, nil, ssh, "-F", "/dev/null", "-i", clientKey, "-p", fmt.Sprint(ports[0]),
			"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "CheckHostIP=yes",
			"-o", "UserKnownHostsFile=/dev/null", "-o", "GlobalKnownHostsFile="+knownFile,
			"-o", "HostKeyAlias="+alias, "-o", "ConnectTimeout=10",
			"root@"+addr, "echo", "landed")
		if res.Code != 0 || strings.TrimSpace(res.Stdout) != "landed" || strings.Contains(res.Stderr, "WARNING") {
			t.Errorf("ssh cslab.example.edu (-> %s): %s\nknown_hosts:\n%s", addr, res, known)
		}
	}
	// An impostor on the name's address range with a key of its own is
	// refused: the file vouches only for the machines' own keys.
	impostor := filepath.Join(dir, "impostor")
	if err := os.MkdirAll(impostor, 0o755); err != nil {
		t.Fatal(err)
	}
	if res := runCmd(t, nil, keygen, "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(impostor, "key")); res.Code != 0 {
		t.Fatal(res)
	}
	startSSHD(t, sshd, impostor, filepath.Join(impostor, "key"), authorized, "127.0.1.63", ports[0])
	bad := runCmd(t, nil, ssh, "-F", "/dev/null", "-i", clientKey, "-p", fmt.Sprint(ports[0]),
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile="+knownFile, "-o", "HostKeyAlias="+alias, "-o", "ConnectTimeout=10",
		"root@127.0.1.63", "echo", "landed")
	if bad.Code == 0 || !strings.Contains(bad.Stderr, "Host key verification failed") {
		t.Errorf("ssh to an impostor: %s", bad)
	}
	res := runCmd(t, nil, keygen, "-F", alias, "-f", knownFile)
	if res.Code != 0 || strings.Count(res.Stdout, "ssh-ed25519") != machines {
		t.Errorf("ssh-keygen -F cslab.example.edu: %s", res)
	}
}

// startSSHD runs a real sshd on addr:port with hostKey, accepting root
// with the keys in authorized, until the test ends.
func startSSHD(t *testing.T, sshd, dir, hostKey, authorized, addr string, port int) {
	t.Helper()
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress %s:%d
HostKey %s
PermitRootLogin prohibit-password
AuthorizedKeysFile %s
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile none
StrictModes no
`, addr, port, hostKey, authorized)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sshd, "-D", "-e", "-f", conf)
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd on %s:\n%s", addr, log.String())
		}
	})
	waitFor(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(log.String(), "Server listening"), log.String()
	})
}
