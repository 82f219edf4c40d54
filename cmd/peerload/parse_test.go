package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// errBadPort is a Value's own error, which parse passes on for a type it
// does not know.
var errBadPort = errors.New("want a port from 1 to 65535")

// portValue is a flag.Value of a type parse does not know.
type portValue struct{}

func (p *portValue) String() string { return "" }
func (p *portValue) Set(s string) error {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return errBadPort
	}
	return nil
}

// TestParseErrorLines: every way a command line can be wrong is one line
// of peerload's own words, naming the flag, and exit 2. parse judges the
// syntax itself, so none of these depends on the flag package's messages.
func TestParseErrorLines(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		// Syntax no flag can have.
		{[]string{"top", "---x"}, "peerload top: bad flag syntax: ---x"},
		{[]string{"top", "-=x"}, "peerload top: bad flag syntax: -=x"},
		{[]string{"top", "--=x"}, "peerload top: bad flag syntax: --=x"},
		// Unknown flags, named as typed.
		{[]string{"top", "--nope=1"}, "peerload top: unknown flag --nope (see `peerload top --help`)"},
		{[]string{"top", "--x"}, "peerload top: unknown flag --x (see `peerload top --help`)"},
		{[]string{"keygen", "-nope"}, "peerload keygen: unknown flag -nope (see `peerload keygen --help`)"},
		{[]string{"top", "-", "--nope"}, "peerload top: unknown flag --nope (see `peerload top --help`)"},
		// A missing value names what goes there.
		{[]string{"status", "--interval"}, "peerload status: --interval needs INTERVAL"},
		{[]string{"agent", "--weight-cpu"}, "peerload agent: --weight-cpu needs WEIGHT"},
		{[]string{"known-hosts", "--port"}, "peerload known-hosts: --port needs PORT"},
		{[]string{"top", "--n"}, "peerload top: -n needs N"},
		// A value that does not parse says what it should look like.
		{[]string{"agent", "--collector=maybe"}, `peerload agent: --collector "maybe": want true or false`},
		{[]string{"agent", "--delta", "x"}, `peerload agent: --delta "x": not a number`},
		{[]string{"agent", "--check-timeout", "5"}, `peerload agent: --check-timeout "5": not a duration (like 500ms, 2s or 1m30s)`},
		{[]string{"simulate", "--seed", "x"}, `peerload simulate: --seed "x": not a whole number`},
		{[]string{"top", "-n", "-v"}, `peerload top: -n "-v": not a whole number`},
		{[]string{"top", "-n99999999999999999999"}, `peerload top: -n "99999999999999999999": not a whole number`},
		// After --, nothing is a flag.
		{[]string{"top", "--", "-n"}, `peerload top: unexpected argument "-n"`},
		// What ssh(1) would take is pointed after --.
		{[]string{"ssh", "-p2222"}, "peerload ssh: unknown flag -p2222: options for ssh itself go after --, as in `peerload ssh -- -p2222 ...`"},
		{[]string{"ssh", "-oBatchMode=yes"}, "peerload ssh: unknown flag -oBatchMode: options for ssh itself go after --, as in `peerload ssh -- -oBatchMode=yes ...`"},
		{[]string{"ssh", "-4"}, "peerload ssh: unknown flag -4: options for ssh itself go after --, as in `peerload ssh -- -4 ...`"},
		{[]string{"ssh", "--lx"}, "peerload ssh: unknown flag --lx (see `peerload ssh --help`)"},
	} {
		out, errOut, code := run(tt.args...)
		if code != 2 || out != "" || strings.TrimSuffix(errOut, "\n") != tt.want || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d stdout %q stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

// TestParseHelpForms: -h, -help, --help and --help=true all print the
// command's usage on stdout and exit 0, wherever they stand.
func TestParseHelpForms(t *testing.T) {
	for _, args := range [][]string{
		{"top", "-h"}, {"top", "-help"}, {"top", "--help=true"}, {"top", "-n", "2", "--help"}, {"hostfile", "out.txt", "-h"},
	} {
		out, errOut, code := run(args...)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, "Usage: peerload "+args[0]) {
			t.Errorf("%q: exit %d stdout %.40q stderr %q", args, code, out, errOut)
		}
	}
}

// TestParseSyntax: the forms a flag may take, and positional arguments
// among them.
func TestParseSyntax(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		n       int
		verbose bool
		pos     []string
	}{
		{[]string{"-n", "3"}, 3, false, nil},
		{[]string{"--n=3"}, 3, false, nil},
		{[]string{"-n=3", "-v"}, 3, true, nil},
		{[]string{"-n3", "-v=false"}, 3, false, nil},
		{[]string{"a", "-n", "2", "b", "-v"}, 2, true, []string{"a", "b"}},
		{[]string{"-v", "false"}, 1, true, []string{"false"}},
		{[]string{"-", "-n", "4"}, 4, false, []string{"-"}},
		{[]string{"-n", "-4"}, -4, false, nil},
		{[]string{"-v", "--", "-n", "5", "--"}, 1, true, []string{"-n", "5", "--"}},
	} {
		c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
		f := c.newFlagSet("test", "", "")
		n := f.Int("n", 1, "`N`")
		verbose := f.Bool("v", false, "")
		pos, err := f.parse(tt.args)
		if err != nil || *n != tt.n || *verbose != tt.verbose || strings.Join(pos, " ") != strings.Join(tt.pos, " ") {
			t.Errorf("%q: n=%d v=%v args %q err %v; want n=%d v=%v args %q", tt.args, *n, *verbose, pos, err, tt.n, tt.verbose, tt.pos)
		}
	}
}

// TestParseOwnValueError: a value of a type parse does not know fails
// with the Value's own words.
func TestParseOwnValueError(t *testing.T) {
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	f := c.newFlagSet("test", "", "")
	f.Var(&portValue{}, "port", "`PORT`")
	_, err := f.parse([]string{"--port", "ssh"})
	var fe *flagError
	if !errors.As(err, &fe) || !errors.Is(err, errBadPort) || err.Error() != `--port "ssh": want a port from 1 to 65535` {
		t.Errorf("err %v, want a *flagError wrapping errBadPort", err)
	}
}
