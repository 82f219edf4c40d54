package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/internal/atomicfile"
)

// allNodes asks the agent for every candidate (the API's limit).
const allNodes = 10000

func (c *cli) runHostfile(args []string) error {
	var formats []string
	for name, desc := range hostfileFormats {
		formats = append(formats, fmt.Sprintf("    %-8s %s", name, desc))
	}
	sort.Strings(formats)
	f := c.newFlagSet("hostfile", "[flags] FILE", `
Write an MPI hostfile of the least-loaded machines, best first (in the
spirit of PeerMon's autoMPIgen). FILE "-" writes to standard output; a file
is replaced atomically.

-n counts machines (0: every candidate). With --count-cpus it counts CPUs
instead: the best machines are taken until their CPUs add up to N, each
with as many slots as it has CPUs, the last one with only as many as are
still needed (with -s, each machine counts as -s slots instead). Each
machine gets -s slots, or with --cpus as many slots as it has CPUs. When
fewer machines or slots are available than asked for, what there is gets
written and a warning printed.

Formats:
`+strings.Join(formats, "\n"))
	n := f.Int("n", 0, "`N` machines, or N CPUs with --count-cpus (0: all candidates)")
	slots := f.Int("s", 1, "`SLOTS` per machine")
	cpus := f.Bool("cpus", false, "give each machine as many slots as it has CPUs")
	countCPUs := f.Bool("count-cpus", false, "-n counts CPUs (processes), not machines; implies --cpus unless -s is given")
	format := f.String("format", "openmpi", "hostfile `FORMAT`: openmpi, mpich or slurm")
	f.choose("format", "openmpi", "mpich", "slurm")
	ip := f.Bool("ip", false, "write addresses instead of names")
	rf := f.handOutFlags()
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return &usageError{errors.New("want exactly one FILE argument (\"-\" for standard output)")}
	}
	file := rest[0]
	slotsSet := false
	f.Visit(func(fl *flag.Flag) { slotsSet = slotsSet || fl.Name == "s" })
	switch {
	case *n < 0:
		return &flagError{Flag: "n", Value: fmt.Sprint(*n), Err: errors.New("must not be negative")}
	case *slots < 1:
		return &flagError{Flag: "s", Value: fmt.Sprint(*slots), Err: errors.New("must be at least 1")}
	case slotsSet && *cpus:
		return &usageError{errors.New("-s and --cpus exclude each other")}
	case *countCPUs && *n == 0:
		return &usageError{errors.New("--count-cpus needs -n N, the number of CPUs")}
	}
	if *countCPUs && !slotsSet {
		*cpus = true
	}
	if _, ok := hostfileFormats[*format]; !ok {
		return &flagError{Flag: "format", Value: *format, Err: errors.New("want openmpi, mpich or slurm")}
	}
	rk, err := rf.parse()
	if err != nil {
		return err
	}

	ask := *n
	if ask == 0 || *countCPUs {
		ask = allNodes
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	client := api.NewClient(*apiAddr)
	resp, err := handOut(ctx, client, ask, rk)
	if err != nil {
		return err
	}
	plan := hostfilePlan{N: *n, Slots: *slots, CPUs: *cpus, CountCPUs: *countCPUs, IP: *ip}
	hosts, warning, err := plan.hosts(resp.Nodes)
	if err != nil {
		return err
	}
	if warning != "" {
		fmt.Fprintf(c.stderr, "peerload hostfile: warning: %s\n", warning)
	}
	var buf bytes.Buffer
	if err := writeHostfile(&buf, hosts, *format); err != nil {
		return err
	}
	if file == "-" {
		_, err := c.stdout.Write(buf.Bytes())
		return err
	}
	if err := atomicfile.Write(file, buf.Bytes(), 0o644); err != nil {
		return err
	}
	total := 0
	for _, h := range hosts {
		total += h.Slots
	}
	fmt.Fprintf(c.stderr, "peerload hostfile: wrote %d machines, %d slots to %s\n", len(hosts), total, file)
	return nil
}

// hostfilePlan turns a ranking into hostfile lines.
type hostfilePlan struct {
	N         int  // machines, or slots with CountCPUs; 0 all
	Slots     int  // slots per machine unless CPUs
	CPUs      bool // slots = the machine's CPU count
	CountCPUs bool
	IP        bool
}

// hosts returns the lines for nodes (best first) and a warning when fewer
// machines or slots are available than asked for.
func (p hostfilePlan) hosts(nodes []api.NodeJSON) ([]hostSlots, string, error) {
	var out []hostSlots
	total := 0
	for i := range nodes {
		if p.CountCPUs && total >= p.N {
			break
		}
		if !p.CountCPUs && p.N > 0 && len(out) >= p.N {
			break
		}
		host, err := hostOf(&nodes[i], p.IP)
		if err != nil {
			return nil, "", err
		}
		slots := p.Slots
		if p.CPUs {
			slots = 1
			if r := nodes[i].Report; r != nil && r.CPUs > 0 {
				slots = r.CPUs
			}
		}
		if p.CountCPUs {
			slots = min(slots, p.N-total)
		}
		out = append(out, hostSlots{Host: host, Slots: slots})
		total += slots
	}
	var warning string
	switch {
	case p.CountCPUs && total < p.N:
		warning = fmt.Sprintf("only %d slots on %d candidate machines, asked for %d", total, len(out), p.N)
	case !p.CountCPUs && p.N > 0 && len(out) < p.N:
		warning = fmt.Sprintf("only %d candidate machines, asked for %d", len(out), p.N)
	}
	return out, warning, nil
}
