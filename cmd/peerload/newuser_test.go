package main

// Tests for what a new user met (issue "The CLI and the demo as a person
// uses them"): one test, or table row, per surprise.

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/report"
)

// TestHelpIsGNUStyle: every command's help writes flags as --name (or -n),
// with a value name that says what goes there, each default once, and no
// line ends in a space (drain --help once showed "-reason peerload status",
// nsupdate two defaults for one flag, "Usage: peerload undrain ").
func TestHelpIsGNUStyle(t *testing.T) {
	singleDashLong := regexp.MustCompile(`(^|\s)-[a-z][a-z-]+`)
	for _, cmd := range commands() {
		out, _, code := run(cmd.name, "--help")
		if code != 0 {
			t.Fatalf("%s --help: exit %d", cmd.name, code)
		}
		usage := strings.SplitN(out, "\n", 2)[0]
		if !strings.HasPrefix(usage, "Usage: peerload "+cmd.name+" ") {
			t.Errorf("%s: usage line %q", cmd.name, usage)
		}
		for i, line := range strings.Split(out, "\n") {
			if strings.HasSuffix(line, " ") {
				t.Errorf("%s --help line %d ends in a space: %q", cmd.name, i+1, line)
			}
		}
		flagsPart := out[strings.Index(out, "\nFlags:\n")+1:]
		if m := singleDashLong.FindString(flagsPart); m != "" {
			t.Errorf("%s --help writes a long flag with one dash: %q", cmd.name, m)
		}
		f := describe(cmd)
		f.VisitAll(func(fl *flag.Flag) {
			if f.aliases[fl.Name] != "" {
				return
			}
			v := valueName(fl)
			if upper := strings.ReplaceAll(v, "IPv6", "IPV6"); !isBoolFlag(fl) && (v == "" || upper != strings.ToUpper(upper)) {
				t.Errorf("%s %s: value name %q, want an upper-case word saying what goes there", cmd.name, dashed(fl.Name), v)
			}
			head := "  " + dashed(fl.Name)
			if short := f.shortFor(fl.Name); short != "" {
				head = "  -" + short + ", " + dashed(fl.Name)
			}
			if v != "" {
				head += " " + v
			}
			i := strings.Index(flagsPart, head+" ")
			if i < 0 {
				i = strings.Index(flagsPart, head+"\n")
			}
			if i < 0 {
				t.Errorf("%s --help lacks %q", cmd.name, head)
				return
			}
			entry := flagsPart[i+len(head):]
			if next := regexp.MustCompile(`\n  -`).FindStringIndex(entry); next != nil {
				entry = entry[:next[0]]
			}
			if strings.Count(entry, "default") > 1 {
				t.Errorf("%s %s: two defaults in %q", cmd.name, dashed(fl.Name), entry)
			}
			if strings.Contains(entry, "`") && !strings.Contains(entry, "`peerload") {
				t.Errorf("%s %s: stray back quote in %q", cmd.name, dashed(fl.Name), entry)
			}
		})
	}
	out, _, _ := run("drain", "--help")
	if !strings.Contains(out, "\n  --reason REASON ") {
		t.Errorf("drain --help does not show --reason REASON:\n%s", out)
	}
	// A collector hands out no address and samples nothing.
	out, _, _ = run("nsupdate", "--help")
	for _, absent := range []string{"--advertise", "--proc "} {
		if strings.Contains(out, absent) {
			t.Errorf("nsupdate --help offers %s", absent)
		}
	}
}

// TestErrorsAreGNUStyle: errors name flags as typed (-n, --interval), one
// line each.
func TestErrorsAreGNUStyle(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"top", "-n", "0"}, `peerload top: -n "0": must be at least 1`},
		{[]string{"top", "-n", "x"}, `peerload top: -n "x": not a whole number`},
		{[]string{"top", "-n"}, "peerload top: -n needs N"},
		{[]string{"top", "--nope"}, "peerload top: unknown flag --nope (see `peerload top --help`)"},
		{[]string{"top", "-x"}, "peerload top: unknown flag -x (see `peerload top --help`)"},
		{[]string{"status", "--interval", "soon"}, `peerload status: --interval "soon": not a duration (like 500ms, 2s or 1m30s)`},
		{[]string{"top", "-v=maybe"}, `peerload top: -v "maybe": want true or false`},
		{[]string{"hostfile", "--format", "lam", "-"}, `peerload hostfile: --format "lam": want openmpi, mpich or slurm`},
	} {
		_, errOut, code := run(tt.args...)
		if code != 2 || strings.TrimSuffix(errOut, "\n") != tt.want {
			t.Errorf("%q: exit %d %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestGlobalFlagsBeforeCommand: `peerload --api X top` works like
// `peerload top --api X`.
func TestGlobalFlagsBeforeCommand(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	for _, args := range [][]string{
		{"--api", fake.addr(), "top"},
		{"--api=" + fake.addr(), "top"},
		{"-api", fake.addr(), "top", "-n", "1"},
	} {
		if out, errOut, code := run(args...); code != 0 || out != "lab02\n" {
			t.Errorf("%q: exit %d %q %q", args, code, out, errOut)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--api", "x:1", "keygen"}, "peerload: --api does not apply to `peerload keygen`"},
		{[]string{"--bogus", "top"}, "peerload: unknown flag --bogus before the command (flags before it: --api, --control; see `peerload --help`)"},
		{[]string{"--api"}, "peerload: --api needs a value"},
	} {
		if _, errOut, code := run(tt.args...); code != 2 || strings.TrimSuffix(errOut, "\n") != tt.want {
			t.Errorf("%q: exit %d %q, want %q", tt.args, code, errOut, tt.want)
		}
	}
}

// TestShortFlagsGlued: -n4, -s2 and bundled switches (-vr) work as GNU
// tools accept them.
func TestShortFlagsGlued(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{}
	if out, errOut, code := tc.run("top", "-n3", "--api", fake.addr()); code != 0 || out != "lab02\nlab03\nlab01\n" {
		t.Errorf("top -n3: exit %d %q %q", code, out, errOut)
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=3" {
		t.Errorf("top -n3 asked %q", q)
	}
	if out, _, code := tc.run("hostfile", "-n2", "-s2", "--api", fake.addr(), "-"); code != 0 || out != "lab02 slots=2\nlab03 slots=2\n" {
		t.Errorf("hostfile -n2 -s2: exit %d %q", code, out)
	}
	if out, _, code := tc.run("top", "-vr", "-n4", "--api", fake.addr()); code != 0 || !strings.HasPrefix(out, "RANK") {
		t.Errorf("top -vr -n4: exit %d %q", code, out)
	}
}

// TestSSHOptionsHint: an ssh option before -- is pointed after it.
func TestSSHOptionsHint(t *testing.T) {
	_, errOut, code := run("ssh", "-l", "alice")
	want := "peerload ssh: unknown flag -l: options for ssh itself go after --, as in `peerload ssh -- -l ...`\n"
	if code != 2 || errOut != want {
		t.Errorf("ssh -l alice: exit %d %q, want %q", code, errOut, want)
	}
}

// TestPeerloadSSHWords: $PEERLOAD_SSH is a command with its own options.
func TestPeerloadSSHWords(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{env: map[string]string{"PEERLOAD_SSH": "echo  -v -F my_config"}}
	_, errOut, code := tc.run("ssh", "--api", fake.addr(), "--", "-A")
	if code != 0 || filepath.Base(tc.execed[0]) != "echo" || strings.Join(tc.execed[1:], " ") != "echo -v -F my_config -A lab02" {
		t.Errorf("PEERLOAD_SSH with words: exit %d %q exec %q", code, errOut, tc.execed)
	}
}

// TestTopRandom is smarterSSH -r: candidates in random order, load ignored.
func TestTopRandom(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	orders := map[string]int{}
	firsts := map[string]int{}
	for range 60 {
		out, errOut, code := run("top", "-r", "-n", "3", "--api", fake.addr())
		if code != 0 || errOut != "" {
			t.Fatalf("top -r: exit %d %q", code, errOut)
		}
		names := strings.Fields(out)
		sorted := slices.Sorted(slices.Values(names))
		if strings.Join(sorted, " ") != "lab01 lab02 lab03" {
			t.Fatalf("top -r -n 3 = %q, want the three candidates", names)
		}
		orders[out]++
		firsts[names[0]]++
	}
	if len(firsts) != 3 || len(orders) < 3 {
		t.Errorf("60 random lists: firsts %v, %d orders; want every machine first sometimes", firsts, len(orders))
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=10000" {
		t.Errorf("top -r asked %q, want every candidate", q)
	}
	if out, _, code := run("top", "--random", "--api", fake.addr()); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("top --random: exit %d %q, want one machine", code, out)
	}
}

// TestSSHAmongBest is smarterSSH -n: a random pick among the best N, and
// -v says why.
func TestSSHAmongBest(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	picked := map[string]int{}
	for range 40 {
		tc := &testCLI{env: map[string]string{"PEERLOAD_SSH": "true"}}
		if _, errOut, code := tc.run("ssh", "-n", "2", "--api", fake.addr()); code != 0 {
			t.Fatalf("ssh -n 2: exit %d %q", code, errOut)
		}
		picked[tc.execed[len(tc.execed)-1]]++
	}
	if q := fake.lastQuery(); q != "GET /v1/top?n=2" {
		t.Errorf("ssh -n 2 asked %q", q)
	}
	if len(picked) != 2 || picked["lab02"] == 0 || picked["lab03"] == 0 {
		t.Errorf("ssh -n 2 picked %v, want both lab02 and lab03 and nothing else", picked)
	}

	tc := &testCLI{env: map[string]string{"PEERLOAD_SSH": "true"}}
	out, errOut, code := tc.run("ssh", "-v", "-n2", "--api", fake.addr(), "--", "-A")
	pick := tc.execed[len(tc.execed)-1]
	for _, want := range []string{
		"peerload ssh: " + pick + " is at random among the best 2 answering candidates, ranked by combined (lower score is better):",
		"RANK  NAME", "lab02", "lab03",
		"peerload ssh: " + pick + ": load1 ",
		"peerload ssh: running true -A " + pick + "\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("ssh -v: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code != 0 || out != "" || strings.Contains(errOut, "lab01") {
		t.Errorf("ssh -v: exit %d stdout %q; lab01 (not among the best 2) shown: %v", code, out, strings.Contains(errOut, "lab01"))
	}
}

// TestHostfileCountCPUsAlone: --count-cpus counts CPUs without --cpus
// (autoMPIgen's "N processes").
func TestHostfileCountCPUsAlone(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	out, _, code := run("hostfile", "-n", "10", "--count-cpus", "--api", fake.addr(), "-")
	if code != 0 || out != "lab02 slots=4\nlab03 slots=6\n" {
		t.Errorf("hostfile -n 10 --count-cpus: exit %d %q", code, out)
	}
	out, _, code = run("hostfile", "-n", "16", "--count-cpus", "--format", "slurm", "--api", fake.addr(), "-")
	if code != 0 || strings.Count(out, "\n") != 16 || strings.Count(out, "lab03\n") != 8 {
		t.Errorf("README's SLURM example: exit %d %q", code, out)
	}
	// With -s each machine counts as -s slots.
	out, _, code = run("hostfile", "-n", "5", "-s", "2", "--count-cpus", "--api", fake.addr(), "-")
	if code != 0 || out != "lab02 slots=2\nlab03 slots=2\nlab01 slots=1\n" {
		t.Errorf("hostfile -n 5 -s 2 --count-cpus: exit %d %q", code, out)
	}
}

// TestTopTooFew: asking for more machines than there are says so.
func TestTopTooFew(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	out, errOut, code := run("top", "-n", "5", "--api", fake.addr())
	if code != 0 || out != "lab02\nlab03\nlab01\n" || errOut != "peerload top: warning: only 3 candidate machines, asked for 5\n" {
		t.Errorf("top -n 5 of 3: exit %d %q %q", code, out, errOut)
	}
	fake.nodes = append(labNodes()[:1], labNodes()[3:]...)
	fake.nodes[0].Pools = []string{"gpu"}
	_, errOut, _ = run("top", "-n", "2", "--pool", "gpu", "--api", fake.addr())
	if errOut != "peerload top: warning: only 1 candidate machines in pool \"gpu\", asked for 2\n" {
		t.Errorf("top -n 2 --pool gpu: %q", errOut)
	}
}

// TestJSONExcludesFormatting: --json with a flag that changes the plain
// output is refused, not silently ignored.
func TestJSONExcludesFormatting(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"top", "--json", "--ip"}, "peerload top: --json and --ip exclude each other\n"},
		{[]string{"top", "--json", "-v"}, "peerload top: --json and -v exclude each other\n"},
		{[]string{"status", "--json", "--wide"}, "peerload status: --wide and --json exclude each other\n"},
		{[]string{"status", "--json", "--watch"}, "peerload status: --watch and --json exclude each other\n"},
	} {
		if out, errOut, code := run(tt.args...); code != 2 || out != "" || errOut != tt.want {
			t.Errorf("%q: exit %d %q %q, want %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestStatusUnknownPool: a pool no machine is in is named as such, with
// the pools there are, by `status` and by the commands that hand machines
// out, instead of a bare header or "no candidate right now"; a pool whose
// machines are all out sends the user to `status --pool P`.
func TestStatusUnknownPool(t *testing.T) {
	nodes := labNodes()
	nodes[0].Pools = []string{"cslab"}
	nodes[1].Pools = []string{"big", "cslab"}
	nodes[3].Pools = []string{"drained"}
	fake := newFakeAgentAPI(t, nodes...)
	fake.poolFilter = true
	for _, cmd := range [][]string{{"top"}, {"ssh"}, {"hostfile", "-"}} {
		args := append(cmd, "--pool", "gpu", "--api", fake.addr())
		out, errOut, code := (&testCLI{env: map[string]string{"PEERLOAD_SSH": "true"}}).run(args...)
		want := "peerload " + cmd[0] + `: no machine is in pool "gpu"; pools: big, cslab, drained` + "\n"
		if code != 1 || out != "" || errOut != want {
			t.Errorf("%q: exit %d %q %q, want %q", args, code, out, errOut, want)
		}
	}
	if _, errOut, code := run("top", "--pool", "drained", "--api", fake.addr()); code != 1 ||
		errOut != "peerload top: no candidate machine in pool \"drained\" right now (see `peerload status --pool drained`)\n" {
		t.Errorf("top --pool drained: exit %d %q", code, errOut)
	}
	out, errOut, code := run("status", "--pool", "gpu", "--api", fake.addr())
	if code != 1 || out != "" || errOut != `peerload status: no machine is in pool "gpu"; pools: big, cslab, drained`+"\n" {
		t.Errorf("status --pool gpu: exit %d %q %q", code, out, errOut)
	}
	out, _, code = run("status", "--pool", "big", "--api", fake.addr())
	if code != 0 || !strings.Contains(out, "lab03") || strings.Contains(out, "lab02") {
		t.Errorf("status --pool big: exit %d %q", code, out)
	}
}

// TestStatusFits80Columns: the default table fits an 80-column terminal
// and shows pools; --wide shows everything.
func TestStatusFits80Columns(t *testing.T) {
	nodes := labNodes()
	nodes[0].Pools = []string{"cslab", "gpu"}
	nodes[3].Reasons = []string{"drain: drained: the new disk arrives on Thursday, ask Sam before undraining it"}
	nodes[3].Failing = []report.CheckResult{{Name: "drain", Reason: "drained: the new disk arrives on Thursday, ask Sam before undraining it"},
		{Name: "tmp", Reason: "/tmp is 97% full"}}
	nodes = append(nodes, api.NodeJSON{Name: "lab05", State: "dead", ReportAge: 42, Reasons: []string{"dead"},
		Report: &api.LoadJSON{Load1: 1, CPUs: 4, MemAvailablePercent: 50}})
	fake := newFakeAgentAPI(t, nodes...)
	out, _, code := run("status", "--api", fake.addr())
	if code != 0 {
		t.Fatalf("status: exit %d", code)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("%d columns: %q", n, line)
		}
	}
	for _, want := range []string{"POOLS", "cslab,gpu", "drained: the new", "…", "lab05  dead"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// A wider terminal shows more of the notes.
	tc := &testCLI{terminal: func() (bool, int) { return true, 200 }}
	out, _, _ = tc.run("status", "--api", fake.addr())
	if !strings.Contains(out, "ask Sam before undraining it; tmp: /tmp is 97% full") {
		t.Errorf("status on a 200-column terminal cut the notes:\n%s", out)
	}
	out, _, code = run("status", "--wide", "--api", fake.addr())
	for _, want := range []string{"ADDRESS", "LOAD5", "LOAD15", "CPU%", "MEM%", "MEM AVAIL", "USERS", "AGE", "127.0.1.2", "42s",
		"ask Sam before undraining it; tmp: /tmp is 97% full"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status --wide lacks %q:\n%s", want, out)
		}
	}
}

// TestStatusWatchNotTerminal: --watch into a pipe or file prints tables
// one after another, without terminal escapes.
func TestStatusWatchNotTerminal(t *testing.T) {
	fake := newFakeAgentAPI(t, labNodes()...)
	tc := &testCLI{sig: make(chan os.Signal, 1)}
	tc.sig <- os.Interrupt
	out, _, code := tc.run("status", "--watch", "--interval", "100ms", "--api", fake.addr())
	if code != 0 || strings.Contains(out, "\033") || !strings.HasPrefix(out, "peerload status  agent ") || !strings.Contains(out, "lab02") {
		t.Errorf("status --watch into a pipe: exit %d %q", code, out)
	}
}

// TestCompletion: the scripts come from the command definitions and work
// in the shells.
func TestCompletion(t *testing.T) {
	bashScript, _, code := run("completion", "bash")
	if code != 0 {
		t.Fatalf("completion bash: exit %d", code)
	}
	for _, cmd := range commands() {
		f := describe(cmd)
		f.VisitAll(func(fl *flag.Flag) {
			if !strings.Contains(bashScript, dashed(fl.Name)) {
				t.Errorf("bash completion lacks %s %s", cmd.name, dashed(fl.Name))
			}
		})
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal("bash not found")
	}
	file := filepath.Join(t.TempDir(), "peerload.bash")
	os.WriteFile(file, []byte(bashScript), 0o644)
	for _, tt := range []struct {
		line string // what was typed, the cursor at its end
		want string // COMPREPLY, space-separated
	}{
		{"peerload hos", "hostfile"},
		{"peerload --api 127.0.0.1:1981 sta", "status"},
		{"peerload top --b", "--by"},
		{"peerload top --by ", "cpu mem combined"},
		{"peerload status --w", "--watch --wide"},
		{"peerload hostfile --format m", "mpich"},
		{"peerload agent --profile l", "lan local"},
		{"peerload completion ", "bash zsh"},
		{"peerload help dr", "drain"},
		{"peerload nsupdate --fallback ", "keep all none"},
		{"peerload top -", "-n --random -r --by --pool --herd -v --ip --json --api --help"},
	} {
		words := strings.Fields(tt.line)
		if strings.HasSuffix(tt.line, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, fmt.Sprintf("%q", w))
		}
		script := fmt.Sprintf(`source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _peerload; echo "${COMPREPLY[*]}"`,
			file, strings.Join(quoted, " "), len(words)-1)
		out, err := exec.Command(bash, "-c", script).CombinedOutput()
		got := strings.Fields(string(out))
		want := strings.Fields(tt.want)
		slices.Sort(got)
		slices.Sort(want)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: completions %q (%v), want %q", tt.line, got, err, want)
		}
	}

	zshScript, _, code := run("completion", "zsh")
	if code != 0 || !strings.HasPrefix(zshScript, "#compdef peerload\n") || !strings.Contains(zshScript, "'--by[rank by RANKING]:RANKING:(cpu mem combined)'") {
		t.Fatalf("completion zsh: exit %d\n%s", code, zshScript)
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("zsh not found (make test installs it)")
		}
		t.Log("zsh not found: its completion is only checked as text")
		return
	}
	zfile := filepath.Join(t.TempDir(), "_peerload")
	os.WriteFile(zfile, []byte(zshScript), 0o644)
	out, err := exec.Command(zsh, "-f", "-c", "autoload -U compinit && compinit -u -D && source "+zfile+" && print -r -- $_comps[peerload]").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_peerload" {
		t.Errorf("zsh: loading the completion: %v\n%s", err, out)
	}
	if out, err := exec.Command(zsh, "-n", zfile).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}

	if _, errOut, code := run("completion", "fish"); code != 2 || !strings.Contains(errOut, `unknown shell "fish" (want bash or zsh)`) {
		t.Errorf("completion fish: exit %d %q", code, errOut)
	}
}

// TestAgentWithoutDefaultControl: a second agent on a machine, or one run
// by hand without root, cannot take the default control socket; it runs
// and says so instead of failing, while an explicit --control must work.
func TestAgentWithoutDefaultControl(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an agent")
	}
	blocker := filepath.Join(t.TempDir(), "file")
	os.WriteFile(blocker, nil, 0o644)
	old := defaultControl
	defaultControl = filepath.Join(blocker, "control.sock") // its directory is a file
	t.Cleanup(func() { defaultControl = old })

	var stderr agenttest.LogBuffer
	sig := make(chan os.Signal, 1)
	c := &cli{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }, signals: sig}
	done := make(chan int, 1)
	go func() {
		done <- c.run([]string{"agent", "--name", "second", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0",
			"--state-dir", t.TempDir(), "--root", t.TempDir(), "--ssh-port", "0", "--profile", "local"})
	}()
	agenttest.WaitFor(t, 10*time.Second, "the agent to start", func() (bool, string) {
		return strings.Contains(stderr.String(), "agent second: gossip on"), stderr.String()
	})
	want := `msg="no control socket: drain and undrain will not reach this agent; give it one with --control PATH" node=second path=` + defaultControl
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, stderr.String())
	}
	sig <- syscall.SIGTERM
	if code := <-done; code != 0 {
		t.Errorf("exit %d:\n%s", code, stderr.String())
	}
}
