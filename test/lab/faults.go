package lab

import (
	"fmt"
	"os/exec"
	"strings"
)

// Partition cuts the lab into groups: no packet crosses between hosts of
// different groups, in either direction, until Heal. Hosts in no group
// still reach everyone. It replaces any earlier partition and keeps the
// packet loss.
func (l *Lab) Partition(groups ...[]*Host) {
	l.t.Helper()
	l.mu.Lock()
	l.groups = nil
	for _, g := range groups {
		l.groups = append(l.groups, append([]*Host(nil), g...))
	}
	l.mu.Unlock()
	l.applyFaults()
}

// Loss drops percent % of the IPv4 packets between any two hosts (each
// packet is dropped or not once, as it crosses the switch), independently
// (nftables numgen random). 0 ends the loss; a partition stays.
func (l *Lab) Loss(percent int) {
	l.t.Helper()
	if percent < 0 || percent > 100 {
		l.t.Fatalf("lab: loss %d%%: want 0 to 100", percent)
	}
	l.mu.Lock()
	l.loss = percent
	l.mu.Unlock()
	l.applyFaults()
}

// Heal ends every partition and all packet loss.
func (l *Lab) Heal() {
	l.t.Helper()
	l.mu.Lock()
	l.groups, l.loss = nil, 0
	l.mu.Unlock()
	l.applyFaults()
}

// Ruleset is the nftables ruleset of the switch now, for failure messages.
func (l *Lab) Ruleset() string {
	res := runCommand(l.t.Context(), l.ip, "netns", "exec", l.switchNS, l.nft, "list", "ruleset")
	return res.Stdout + res.Stderr
}

// applyFaults replaces the switch's forward chain with the rules for the
// current partition and loss in one nft transaction, so no packet ever
// sees half a change.
func (l *Lab) applyFaults() {
	l.t.Helper()
	l.mu.Lock()
	var b strings.Builder
	b.WriteString("add table bridge lab\n")
	b.WriteString("add chain bridge lab forward { type filter hook forward priority 0; policy accept; }\n")
	b.WriteString("flush chain bridge lab forward\n")
	for i, from := range l.groups {
		for j, to := range l.groups {
			if i == j || len(from) == 0 || len(to) == 0 {
				continue
			}
			fmt.Fprintf(&b, "add rule bridge lab forward iifname { %s } oifname { %s } drop\n", ports(from), ports(to))
		}
	}
	if l.loss > 0 {
		fmt.Fprintf(&b, "add rule bridge lab forward ether type ip numgen random mod 100 < %d drop\n", l.loss)
	}
	l.mu.Unlock()
	cmd := exec.Command(l.ip, "netns", "exec", l.switchNS, l.nft, "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("lab: nft: %v: %s\nruleset:\n%s", err, out, b.String())
	}
}

func ports(hosts []*Host) string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = fmt.Sprintf("%q", h.port)
	}
	return strings.Join(names, ", ")
}
