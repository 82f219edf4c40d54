package main

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

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

// statusColumn is one column of the status table.
type statusColumn struct {
	head string
	cell func(n *api.NodeJSON) string
}

// statusColumns are the status table's columns: the narrow set fits 80
// columns with names of up to about 10 characters, --wide adds the rest.
func statusColumns(wide bool) []statusColumn {
	num := func(f func(l *api.LoadJSON) string) func(n *api.NodeJSON) string {
		return func(n *api.NodeJSON) string { return loadField(n, f) }
	}
	name := statusColumn{"NAME", func(n *api.NodeJSON) string { return n.Name }}
	addr := statusColumn{"ADDRESS", func(n *api.NodeJSON) string { return orDash(nodeAddress(n)) }}
	state := statusColumn{"STATE", nodeState}
	rankCol := statusColumn{"RANK", func(n *api.NodeJSON) string {
		if !n.Candidate {
			return "-"
		}
		return strconv.Itoa(n.Rank)
	}}
	score := statusColumn{"SCORE", func(n *api.NodeJSON) string {
		if n.Report == nil {
			return "-"
		}
		return strconv.FormatFloat(n.Score, 'f', 3, 64)
	}}
	load1 := statusColumn{"LOAD1", num(func(l *api.LoadJSON) string { return strconv.FormatFloat(l.Load1, 'f', 2, 64) })}
	cpus := statusColumn{"CPUS", num(func(l *api.LoadJSON) string { return strconv.Itoa(l.CPUs) })}
	// Memory in use, as the status page and the score count it, and as
	// %MEM means in ps and top: higher is busier, like LOAD1 and CPU%.
	mem := statusColumn{"MEM%", num(func(l *api.LoadJSON) string { return fmt.Sprintf("%.0f%%", 100-l.MemAvailablePercent) })}
	users := statusColumn{"USERS", num(func(l *api.LoadJSON) string { return strconv.Itoa(l.Users) })}
	age := statusColumn{"AGE", func(n *api.NodeJSON) string { return formatAge(n.ReportAge) }}
	pools := statusColumn{"POOLS", func(n *api.NodeJSON) string { return orDash(strings.Join(n.Pools, ",")) }}
	notesCol := statusColumn{"NOTES", notes}
	if !wide {
		return []statusColumn{name, state, rankCol, score, load1, cpus, mem, pools, notesCol}
	}
	return []statusColumn{name, addr, state, rankCol, score, load1,
		{"LOAD5", num(func(l *api.LoadJSON) string { return strconv.FormatFloat(l.Load5, 'f', 2, 64) })},
		{"LOAD15", num(func(l *api.LoadJSON) string { return strconv.FormatFloat(l.Load15, 'f', 2, 64) })},
		cpus,
		{"CPU%", num(func(l *api.LoadJSON) string { return fmt.Sprintf("%.0f%%", 100*l.CPUUtil) })},
		mem,
		{"MEM AVAIL", num(func(l *api.LoadJSON) string { return formatGiB(l.MemAvailable) })},
		users, age, pools, notesCol}
}

// writeStatusTable is `peerload status`: every node, candidates best first.
// The last column (the notes) is cut to keep lines within width; width 0
// cuts nothing (--wide).
func writeStatusTable(w io.Writer, resp *api.NodesResponse, wide bool, width int) error {
	cols := statusColumns(wide)
	rows := [][]string{make([]string, len(cols))}
	for i, c := range cols {
		rows[0][i] = c.head
	}
	for i := range resp.Nodes {
		row := make([]string, len(cols))
		for j, c := range cols {
			row[j] = c.cell(&resp.Nodes[i])
		}
		rows = append(rows, row)
	}
	return writeTable(w, rows, width)
}

// writeTable aligns rows in columns two spaces apart and cuts the last
// column with "…" so that no line is wider than width (0: no limit).
func writeTable(w io.Writer, rows [][]string, width int) error {
	if len(rows) == 0 {
		return nil
	}
	last := len(rows[0]) - 1
	widths := make([]int, last)
	for _, row := range rows {
		for i := range widths {
			widths[i] = max(widths[i], utf8.RuneCountInString(row[i]))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		line := make([]byte, 0, 128)
		for i := range widths {
			line = append(line, row[i]...)
			line = append(line, strings.Repeat(" ", widths[i]-utf8.RuneCountInString(row[i])+2)...)
		}
		rest := row[last]
		if width > 0 {
			room := max(width-utf8.RuneCount(line), 8)
			if utf8.RuneCountInString(rest) > room {
				rest = string([]rune(rest)[:room-1]) + "…"
			}
		}
		b.Write(line)
		b.WriteString(rest)
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// nodeState is the STATE column: the membership state, "collector" for an
// alive collector.
func nodeState(n *api.NodeJSON) string {
	if n.Collector && n.State == "alive" {
		return "collector"
	}
	return n.State
}

// formatGiB prints a byte count in GiB with one decimal.
func formatGiB(b uint64) string {
	return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + "G"
}

// loadSummary is one line of a node's load for people: `ssh -v`.
func loadSummary(n *api.NodeJSON) string {
	if n.Report == nil {
		return "no load report yet"
	}
	l := n.Report
	return fmt.Sprintf("load1 %.2f on %d CPUs, %.0f%% of memory free (%s), %d users, report %s old",
		l.Load1, l.CPUs, l.MemAvailablePercent, formatGiB(l.MemAvailable), l.Users, formatAge(n.ReportAge))
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
		if r == n.State || r == "collector" {
			continue // the STATE column says it
		}
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
