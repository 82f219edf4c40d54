// Command peerload runs the peerload cluster member (`peerload agent`) and
// the small tools that use it: `top`, `ssh`, `hostfile`, `status`, `drain`,
// `undrain`, `nsupdate`, `keygen`, `completion` and `version`. Every
// subcommand is a thin layer: flags become a config, the agent package does
// the work.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
)

func main() {
	c := &cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, exec: syscall.Exec, terminal: stdoutTerminal}
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
	// terminal reports whether stdout is a terminal and its width in
	// columns (0 when unknown); nil means not a terminal.
	terminal func() (bool, int)
	// lookupHost resolves a host name (net.DefaultResolver.LookupHost when
	// nil); `peerload ssh` checks the name it hands to ssh with it.
	lookupHost func(ctx context.Context, host string) ([]string, error)

	// describe makes the next flagSet.parse record its flag set in
	// described and stop the command (errDescribe): how completion and
	// the global flags learn a command's flags without running it.
	describe  bool
	described *flagSet
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
		{"drain", "take this machine out of the candidate set (admins)", (*cli).runDrain},
		{"undrain", "bring this machine back into the candidate set (admins)", (*cli).runUndrain},
		{"nsupdate", "keep a DNS name on the best machines via RFC 2136 updates", (*cli).runNsupdate},
		{"keygen", "generate a gossip encryption key", (*cli).runKeygen},
		{"known-hosts", "print an ssh_known_hosts file for every machine and virtual name", (*cli).runKnownHosts},
		{"simulate", "compare placement policies in a simulated lab", (*cli).runSimulate},
		{"completion", "print a bash or zsh completion script", (*cli).runCompletion},
		{"version", "print the version and commit of this binary", (*cli).runVersion},
	}
}

// globalFlags may also come before the command (`peerload --api HOST:PORT
// top`); they are handed to the command, which must define them.
var globalFlags = []string{"api", "control"}

// errHelp means --help was asked for and the usage was printed.
var errHelp = errors.New("help printed")

// errDescribe stops a command run in describe mode right after it defined
// its flags.
var errDescribe = errors.New("describe only")

// usageError is a command line that does not parse; it exits 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run executes one command line and returns the exit code: 0 success, 1
// failure, 2 bad usage.
func (c *cli) run(args []string) int {
	var global []string
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-h", "-help", "--help":
			c.usage(c.stdout)
			return 0
		case "-version", "--version":
			args[0] = "version"
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !slices.Contains(globalFlags, name) {
			fmt.Fprintf(c.stderr, "peerload: unknown flag %s before the command (flags before it: --%s; see `peerload --help`)\n",
				args[0], strings.Join(globalFlags, ", --"))
			return 2
		}
		if !hasValue {
			if len(args) < 2 {
				fmt.Fprintf(c.stderr, "peerload: --%s needs a value\n", name)
				return 2
			}
			value, args = args[1], args[1:]
		}
		global = append(global, "--"+name, value)
		args = args[1:]
	}
	if len(args) == 0 {
		c.usage(c.stderr)
		return 2
	}
	name := args[0]
	if name == "help" {
		if len(args) > 1 {
			return c.run([]string{args[1], "--help"})
		}
		c.usage(c.stdout)
		return 0
	}
	cmd, ok := lookupCommand(name)
	if !ok {
		fmt.Fprintf(c.stderr, "peerload: unknown command %q (see `peerload --help`)\n", name)
		return 2
	}
	if len(global) > 0 {
		f := describe(cmd)
		for i := 0; i < len(global); i += 2 {
			if f.Lookup(global[i][2:]) == nil {
				fmt.Fprintf(c.stderr, "peerload: %s does not apply to `peerload %s`\n", global[i], name)
				return 2
			}
		}
	}
	return c.exitCode(name, cmd.run(c, append(global, args[1:]...)))
}

func lookupCommand(name string) (command, bool) {
	for _, cmd := range commands() {
		if cmd.name == name {
			return cmd, true
		}
	}
	return command{}, false
}

// describe returns cmd's flag set, defined but not parsed.
func describe(cmd command) *flagSet {
	d := &cli{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, describe: true}
	_ = cmd.run(d, nil)
	if d.described == nil {
		panic("peerload: command " + cmd.name + " did not parse its flags")
	}
	return d.described
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

Usage: peerload [--api ADDR:PORT] [--control PATH] <command> [flags] [args]

Commands:
`)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", cmd.name, cmd.summary)
	}
	fmt.Fprint(w, `
Run 'peerload <command> --help' for the flags of one command.

Client commands talk to the local agent's read-only API at --api ADDR:PORT,
else $PEERLOAD_API, else `+defaultAPI+`. Drain and undrain use its
control socket at --control PATH, else $PEERLOAD_CONTROL, else
`+defaultControl+`. Both flags may come before the command.

Examples:
  ssh $(peerload top)            log in on the least-loaded machine
  peerload top -n 4 -v           the best four, with their load
  peerload hostfile -n 8 hosts   an Open MPI hostfile of the best eight
  source <(peerload completion bash)   tab completion in this shell
`)
}

// noArgs fails when a command that takes none got positional arguments.
func noArgs(args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("unexpected argument %q", args[0])}
	}
	return nil
}

// apiFlag registers --api for the client commands: $PEERLOAD_API, else
// the default agent address. A value without a port fails at once, naming
// the flag (or the variable), rather than as a DNS lookup of the whole
// string when the command first calls the agent.
func (f *flagSet) apiFlag() *string {
	def := defaultAPI
	env := f.c.getenv("PEERLOAD_API")
	if env != "" {
		def = env
	}
	addr := f.String("api", def, "API `ADDR:PORT` of the local agent (env PEERLOAD_API)")
	f.checks = append(f.checks, func() error {
		err := checkAPIAddr(*addr)
		if err == nil {
			return nil
		}
		set := false
		f.Visit(func(fl *flag.Flag) { set = set || fl.Name == "api" })
		if !set && env != "" {
			return &usageError{fmt.Errorf("$PEERLOAD_API %q: %v", env, err)}
		}
		return &flagError{Flag: "api", Value: *addr, Err: err}
	})
	return addr
}

// checkAPIAddr accepts what api.NewClient takes: HOST:PORT or an http(s)
// URL with a host.
func checkAPIAddr(s string) error {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		switch {
		case err != nil:
			return errors.New("not a URL")
		case u.Scheme != "http" && u.Scheme != "https":
			return fmt.Errorf("scheme %q: want http or https", u.Scheme)
		case u.Host == "":
			return errors.New("URL without a host")
		}
		return nil
	}
	_, _, err := parseHostPort(s)
	return err
}

// controlFlag registers --control for drain and undrain: $PEERLOAD_CONTROL,
// else the agent's default control socket.
func (f *flagSet) controlFlag() *string {
	def := defaultControl
	if env := f.c.getenv("PEERLOAD_CONTROL"); env != "" {
		def = env
	}
	return f.String("control", def, "control socket `PATH` of the local agent (env PEERLOAD_CONTROL)")
}
