// Command peerload runs the peerload cluster member (`peerload agent`) and
// the small tools that use it: `top`, `ssh`, `hostfile`, `status`, `drain`,
// `undrain`, `nsupdate`, `keygen` and `version`. Every subcommand is a thin
// layer: flags become a config, the agent package does the work.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags '-X main.version=...'.
var version = "dev"

func main() {
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, exec: syscall.Exec}
	os.Exit(c.run(os.Args[1:]))
}

// cli is the process environment of one invocation, replaceable in tests.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// exec replaces the process (syscall.Exec); `peerload ssh` uses it.
	exec func(argv0 string, argv []string, envv []string) error
	// signals, when set, replaces os/signal for `agent` and `status --watch`.
	signals chan os.Signal
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(c *cli, args []string) error
}

func commands() []command {
	return []command{
		{"agent", "run the cluster member on this machine", (*cli).runAgent},
		{"top", "print the least-loaded machines, best first", (*cli).runTop},
		{"ssh", "ssh to the least-loaded machine", (*cli).runSSH},
		{"hostfile", "write an MPI hostfile of the least-loaded machines", (*cli).runHostfile},
		{"status", "show every machine the agent knows", (*cli).runStatus},
		{"drain", "take this machine out of the candidate set", (*cli).runDrain},
		{"undrain", "bring this machine back into the candidate set", (*cli).runUndrain},
		{"nsupdate", "keep a DNS name on the best machines via RFC 2136 updates", func(_ *cli, args []string) error { return runNsupdate(args) }},
		{"keygen", "generate a gossip encryption key", (*cli).runKeygen},
		{"known-hosts", "print an ssh_known_hosts file for every machine and virtual name", (*cli).runKnownHosts},
		{"simulate", "compare placement policies in a simulated lab", (*cli).runSimulate},
		{"version", "print the version", (*cli).runVersion},
	}
}

// errHelp means --help was asked for and the usage was printed.
var errHelp = flag.ErrHelp

// usageError is a command line that does not parse; it exits 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run executes one command line and returns the exit code: 0 success, 1
// failure, 2 bad usage.
func (c *cli) run(args []string) int {
	if len(args) == 0 {
		c.usage(c.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			return c.run([]string{args[1], "--help"})
		}
		c.usage(c.stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	for _, cmd := range commands() {
		if cmd.name == name {
			return c.exitCode(name, cmd.run(c, args[1:]))
		}
	}
	fmt.Fprintf(c.stderr, "peerload: unknown command %q (see `peerload --help`)\n", name)
	return 2
}

func (c *cli) exitCode(name string, err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	msg := strings.TrimSpace(err.Error())
	fmt.Fprintf(c.stderr, "peerload %s: %s\n", name, msg)
	var ue *usageError
	var fe *flagError
	if errors.As(err, &ue) || errors.As(err, &fe) {
		return 2
	}
	return 1
}

func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, `peerload: lab machines gossip their load; land on the least-loaded one.

Usage: peerload <command> [flags] [args]

Commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Run 'peerload <command> --help' for the flags of one command.

Client commands talk to the local agent's API at --api ADDR, else
$PEERLOAD_API, else `+defaultAPI+`.

Examples:
  ssh $(peerload top)            log in on the least-loaded machine
  peerload top -n 4 -v           the best four, with their load
  peerload hostfile -n 8 hosts   an Open MPI hostfile of the best eight
`)
}

// flagSet is a subcommand's flags with its help text. Parse errors are
// returned, never printed by the flag package.
type flagSet struct {
	*flag.FlagSet
	c        *cli
	synopsis string
	help     string
}

func (c *cli) newFlagSet(name, synopsis, help string) *flagSet {
	fs := flag.NewFlagSet("peerload "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, c: c, synopsis: synopsis, help: help}
}

func (f *flagSet) printUsage() {
	w := f.c.stdout
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", f.Name(), f.synopsis, strings.TrimSpace(f.help))
	has := false
	f.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprint(w, "\nFlags:\n")
		f.SetOutput(w)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
}

// parse parses args, allowing flags and positional arguments to mix
// (`hostfile out.txt -n 4`). Everything after "--" is positional.
func (f *flagSet) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage()
				return nil, errHelp
			}
			return nil, &usageError{err}
		}
		rest := f.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// noArgs fails when a command that takes none got positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// apiFlag registers --api for the client commands: $PEERLOAD_API, else
// the default agent address.
func (f *flagSet) apiFlag() *string {
	def := defaultAPI
	if env := f.c.getenv("PEERLOAD_API"); env != "" {
		def = env
	}
	return f.String("api", def, "agent API `ADDR:PORT` (env PEERLOAD_API)")
}

func (c *cli) runVersion(args []string) error {
	f := c.newFlagSet("version", "", "Print the version of this binary.")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "peerload %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
