package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// nodeAddress is the address a user reaches a node at: IPv4, else IPv6,
// else the gossip host, else "".
func nodeAddress(n *api.NodeJSON) string {
	switch {
	case n.Addr4 != "":
		return n.Addr4
	case n.Addr6 != "":
		return n.Addr6
	}
	if host, _, err := net.SplitHostPort(n.Gossip); err == nil {
		return host
	}
	return ""
}

// hostOf is what `top`, `ssh` and `hostfile` print for a node.
func hostOf(n *api.NodeJSON, ip bool) (string, error) {
	if !ip {
		return n.Name, nil
	}
	if n.Addr4 != "" {
		return n.Addr4, nil
	}
	if n.Addr6 != "" {
		return n.Addr6, nil
	}
	return "", fmt.Errorf("node %s advertises no address (start its agent with --advertise)", n.Name)
}

// writeNames prints one name (or address) a line.
func writeNames(w io.Writer, nodes []api.NodeJSON, ip bool) error {
	for i := range nodes {
		h, err := hostOf(&nodes[i], ip)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintln(w, h); err != nil {
			return err
		}
	}
	return nil
}

// writeTopTable is `top -v`.
func writeTopTable(w io.Writer, nodes []api.NodeJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RANK\tNAME\tADDRESS\tSCORE\tLOAD1\tCPUS\tMEM AVAIL\tUSERS")
	for i := range nodes {
		n := &nodes[i]
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.3f\t%s\t%s\t%s\t%s\n",
			n.Rank, n.Name, orDash(nodeAddress(n)), n.Score,
			loadField(n, func(l *api.LoadJSON) string { return strconv.FormatFloat(l.Load1, 'f', 2, 64) }),
			loadField(n, func(l *api.LoadJSON) string { return strconv.Itoa(l.CPUs) }),
			loadField(n, func(l *api.LoadJSON) string { return fmt.Sprintf("%.0f%%", l.MemAvailablePercent) }),
			loadField(n, func(l *api.LoadJSON) string { return strconv.Itoa(l.Users) }))
	}
	return tw.Flush()
}

// writeStatusTable is `peerload status`: every node, candidates best first.
func writeStatusTable(w io.Writer, resp *api.NodesResponse) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tSTATE\tRANK\tSCORE\tLOAD1\tCPUS\tMEM AVAIL\tUSERS\tAGE\tFAILING CHECKS / NOTES")
	for i := range resp.Nodes {
		n := &resp.Nodes[i]
		rank, score := "-", "-"
		if n.Candidate {
			rank = strconv.Itoa(n.Rank)
		}
		if n.Report != nil {
			score = fmt.Sprintf("%.3f", n.Score)
		}
		state := n.State
		if n.Collector {
			state += " (collector)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			n.Name, orDash(nodeAddress(n)), state, rank, score,
			loadField(n, func(l *api.LoadJSON) string { return strconv.FormatFloat(l.Load1, 'f', 2, 64) }),
			loadField(n, func(l *api.LoadJSON) string { return strconv.Itoa(l.CPUs) }),
			loadField(n, func(l *api.LoadJSON) string { return fmt.Sprintf("%.0f%%", l.MemAvailablePercent) }),
			loadField(n, func(l *api.LoadJSON) string { return strconv.Itoa(l.Users) }),
			formatAge(n.ReportAge), notes(n))
	}
	return tw.Flush()
}

func loadField(n *api.NodeJSON, f func(*api.LoadJSON) string) string {
	if n.Report == nil {
		return "-"
	}
	return f(n.Report)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// notes lists the failing checks and the other reasons a node is not a
// candidate, without saying the same thing twice.
func notes(n *api.NodeJSON) string {
	var parts []string
	seen := map[string]bool{}
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && !seen[s] {
			seen[s] = true
			parts = append(parts, s)
		}
	}
	for _, c := range n.Failing {
		switch {
		case strings.HasPrefix(c.Reason, c.Name):
			add(c.Reason)
		case c.Reason != "":
			add(c.Name + ": " + c.Reason)
		default:
			add(c.Name)
		}
	}
	for _, r := range n.Reasons {
		covered := false
		for _, c := range n.Failing {
			if strings.HasPrefix(r, c.Name) {
				covered = true
			}
		}
		if !covered {
			add(r)
		}
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "; ")
}

// formatAge prints a report age in seconds compactly ("-" for none).
func formatAge(sec float64) string {
	if sec < 0 {
		return "-"
	}
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// hostSlots is one line of a hostfile: a host and how many processes it
// takes.
type hostSlots struct {
	Host  string
	Slots int
}

// hostfileFormats documents the formats `hostfile` writes.
var hostfileFormats = map[string]string{
	"openmpi": "host slots=N (mpirun --hostfile)",
	"mpich":   "host:N (mpiexec -f)",
	"slurm":   "one line per slot (SLURM_HOSTFILE with srun --distribution=arbitrary)",
}

// writeHostfile writes hosts in one of hostfileFormats.
func writeHostfile(w io.Writer, hosts []hostSlots, format string) error {
	for _, h := range hosts {
		var err error
		switch format {
		case "openmpi":
			_, err = fmt.Fprintf(w, "%s slots=%d\n", h.Host, h.Slots)
		case "mpich":
			_, err = fmt.Fprintf(w, "%s:%d\n", h.Host, h.Slots)
		case "slurm":
			for range h.Slots {
				if _, err = fmt.Fprintln(w, h.Host); err != nil {
					break
				}
			}
		default:
			return fmt.Errorf("unknown hostfile format %q", format)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
