// Command peerload-plot draws the PNG plots of `peerload simulate --plot
// DIR`, which runs it: DIR is its argument, and the simulation (a
// sim.PlotInput) comes as JSON on its standard input. The plotting
// libraries live in this program, not in peerload, so that no peerload
// process loads them: gonum/plot's package init alone parses twelve
// embedded fonts, megabytes resident in every idle agent. Build it with
// `make build`; it writes bin/peerload-plot beside bin/peerload.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/peerload/peerload/internal/sim"
	"github.com/peerload/peerload/internal/sim/simplot"
)

const usage = `Usage: peerload-plot DIR

Draw the plots of a simulation into DIR (created when missing), read as
JSON from standard input: sim-slowdown.png and sim-sessions.png, or
sim-top-ttl.png for a sweep. Prints "wrote PATH" on standard error for
each file.

This is the helper ` + "`peerload simulate --plot DIR`" + ` runs; it is not usually
run by hand. peerload looks for it beside its own executable, then on PATH.
The plotting libraries live here so that peerload, the agent above all,
does not load them.

Flags:
  -h, --help  print this help
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the program with its arguments and standard streams; it returns
// the exit code: 0 success, 1 bad input or a plot that cannot be written,
// 2 bad usage.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("peerload-plot", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "peerload-plot: %v (see peerload-plot --help)\n", err)
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "peerload-plot: want one argument, the DIR to write the plots into (see peerload-plot --help)")
		return 2
	}
	if f, ok := stdin.(*os.File); ok && isTerminal(f) {
		fmt.Fprintln(stderr, "peerload-plot: reads a simulation as JSON from standard input, not a terminal: run `peerload simulate --plot DIR` instead")
		return 2
	}
	in, err := readInput(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "peerload-plot: reading the simulation from standard input: %v\n", err)
		return 1
	}
	files, err := simplot.Write(fs.Arg(0), in)
	if err != nil {
		fmt.Fprintf(stderr, "peerload-plot: %v\n", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stderr, "wrote", f)
	}
	return 0
}

// readInput reads exactly one PlotInput. A field it does not know means
// another version of peerload wrote it; better to say so than to draw
// without it.
func readInput(r io.Reader) (*sim.PlotInput, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var in sim.PlotInput
	if err := dec.Decode(&in); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no input")
		}
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return nil, fmt.Errorf("%w: peerload-plot is not the version of peerload that ran it", err)
		}
		return nil, err
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one JSON document")
	}
	return &in, nil
}

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
