package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// TestControlIsForAdmins runs a real agent and plays the people of a lab:
// root drains with the README's command and no flags; the user nobody
// (runuser) can neither undrain nor drain and is told why in one line; a
// web page's cross-origin POST to the API changes nothing; and once
// nobody's group is the agent's --control-group, nobody may. The agent
// logs who drained and undrained, and why.
func TestControlIsForAdmins(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root to run commands as nobody")
		}
		t.Skip("needs root to run commands as nobody")
	}
	runuser := requireProgram(t, "runuser")
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	group, err := user.LookupGroupId(nobody.Gid)
	if err != nil {
		t.Fatal(err)
	}
	bin := peerloadBin(t)

	// nobody must be able to reach the socket's directory, so that only
	// the socket itself decides (t.TempDir is private to root).
	dir, err := os.MkdirTemp("", "plctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, agentOptions{Name: "ctl1", StateDir: filepath.Join(dir, "state"), Advertise: "127.0.1.1"})
	sock := a.Control()
	env := []string{"PEERLOAD_CONTROL=" + sock} // where this test's agent keeps it; the README's needs no flag
	drained := func() api.DrainResponse {
		t.Helper()
		var d api.DrainResponse
		waitFor(t, 10*time.Second, func() (bool, string) {
			resp, err := http.Get("http://" + a.API() + "/v1/drain")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(&d) == nil, resp.Status
		})
		return d
	}
	// nobody runs its own copy of the binary: the checkout may sit in a
	// directory private to root (a fresh clone under mktemp -d does).
	nobodyBin := filepath.Join(dir, "peerload")
	if err := copyExecutable(bin, nobodyBin); err != nil {
		t.Fatal(err)
	}
	asNobody := func(args ...string) cmdResult {
		t.Helper()
		full := append([]string{"-u", nobody.Username, "--", "env", "PEERLOAD_CONTROL=" + sock, nobodyBin}, args...)
		return runCmd(t, nil, runuser, full...)
	}

	// Root, the README's command.
	waitFor(t, 10*time.Second, func() (bool, string) {
		_, err := os.Stat(sock)
		return err == nil, fmt.Sprint(err)
	})
	res := runCmd(t, env, bin, "drain", "--reason", "disk replacement")
	if res.Code != 0 || res.Stdout != "ctl1 drained: disk replacement\n" {
		t.Fatalf("root: peerload drain --reason \"disk replacement\": %s", res)
	}

	// nobody: refused, one line saying who may.
	want := "peerload %s: only root may drain or undrain this machine (an admin can let a group do it too: peerload agent --control-group GROUP)\n"
	for _, cmd := range [][]string{{"undrain"}, {"drain", "--reason", "student prank"}} {
		res := asNobody(cmd...)
		if res.Code != 1 || res.Stdout != "" || res.Stderr != fmt.Sprintf(want, cmd[0]) {
			t.Errorf("nobody: peerload %s: %s", strings.Join(cmd, " "), res)
		}
	}
	if d := drained(); !d.Drained || d.Reason != "disk replacement" {
		t.Errorf("after nobody's attempts: %+v, want still drained for the disk replacement", d)
	}

	// A web page: a cross-origin POST (a form or fetch in "no-cors" mode
	// needs no preflight) to the API changes nothing.
	for _, path := range []string{"/v1/undrain", "/v1/drain"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+a.API()+path, strings.NewReader("reason=prank"))
		req.Header.Set("Content-Type", "text/plain")
		req.Header.Set("Origin", "http://evil.example")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("cross-origin POST %s: %s, want 405", path, resp.Status)
		}
	}
	if d := drained(); !d.Drained || d.Reason != "disk replacement" {
		t.Errorf("after the cross-origin POSTs: %+v", d)
	}

	res = runCmd(t, env, bin, "undrain")
	if res.Code != 0 || res.Stdout != "ctl1 undrained\n" {
		t.Fatalf("root: peerload undrain: %s", res)
	}
	for _, want := range []string{`msg=drained node=ctl1 reason="disk replacement" by="root (uid 0`, `msg=undrained node=ctl1 by="root (uid 0`} {
		if !strings.Contains(a.Log(), want) {
			t.Errorf("agent log lacks %q", want)
		}
	}

	// An admin lets nobody's group drain.
	a.Stop()
	a.Opts.Extra = append(a.Opts.Extra, "--control-group", group.Name)
	a.Start()
	waitFor(t, 10*time.Second, func() (bool, string) {
		st, err := os.Stat(sock)
		return err == nil && st.Mode().Perm() == 0o660, fmt.Sprint(st, err)
	})
	if res := asNobody("drain", "--reason", "lab exam"); res.Code != 0 || res.Stdout != "ctl1 drained: lab exam\n" {
		t.Errorf("nobody in the control group: drain: %s", res)
	}
	if res := asNobody("undrain"); res.Code != 0 || res.Stdout != "ctl1 undrained\n" {
		t.Errorf("nobody in the control group: undrain: %s", res)
	}
	if want := `reason="lab exam" by="` + nobody.Username + ` (uid ` + nobody.Uid; !strings.Contains(a.Log(), want) {
		t.Errorf("agent log lacks %q:\n%s", want, a.Log())
	}
}

// copyExecutable copies the program at from to to, executable by all.
func copyExecutable(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}
