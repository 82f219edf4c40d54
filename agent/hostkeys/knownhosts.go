package hostkeys

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Host is one machine as an ssh_known_hosts file needs it.
type Host struct {
	// Name is how users reach the machine by name (its member name,
	// normally the host name).
	Name string
	// Addrs are the addresses DNS hands out for it.
	Addrs []netip.Addr
	// Keys are its public host keys.
	Keys []Key
}

// Options shape a known_hosts file.
type Options struct {
	// Names are the virtual names (cslab.example.edu) that may land on
	// any of the hosts. ssh_known_hosts patterns (*.cslab.example.edu)
	// are allowed here.
	Names []string
	// Port is the ssh port when it is not 22: every name becomes
	// [name]:port, as ssh looks it up.
	Port int
	// CA, when set, is the site's SSH host CA: the file is one
	// @cert-authority line for every name and address, and the hosts'
	// own keys are not listed (they present certificates).
	CA *Key
}

// KnownHosts writes an ssh_known_hosts file in which every virtual name,
// each host's name and each of its addresses map to that host's own keys:
// ssh accepts a name listed with several keys when any of them matches, so
// `ssh cslab.example.edu` verifies whichever machine the name resolved to,
// and no machine needs another's private key. Hosts are written in name
// order; a host without keys is listed as a comment. Names that could
// break the file (spaces, commas, leading @ # |, pattern characters in
// host names) are an error naming the host.
func KnownHosts(w io.Writer, hosts []Host, opt Options) error {
	if opt.Port < 0 || opt.Port > 65535 {
		return fmt.Errorf("hostkeys: port %d out of range", opt.Port)
	}
	for _, n := range opt.Names {
		if err := checkName(n, true); err != nil {
			return fmt.Errorf("hostkeys: virtual name %q: %w", n, err)
		}
	}
	hosts = slices.Clone(hosts)
	slices.SortFunc(hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	for i, h := range hosts {
		if err := checkName(h.Name, false); err != nil {
			return fmt.Errorf("hostkeys: host %q: %w", h.Name, err)
		}
		if i > 0 && hosts[i-1].Name == h.Name {
			return fmt.Errorf("hostkeys: host %q listed twice", h.Name)
		}
	}

	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# ssh_known_hosts written by peerload for %s: %d machines\n", orNone(opt.Names), len(hosts))
	if opt.CA != nil {
		patterns := slices.Clone(opt.Names)
		for _, h := range hosts {
			patterns = append(patterns, hostPatterns(h)...)
		}
		fmt.Fprintf(bw, "@cert-authority %s %s\n", strings.Join(patternList(patterns, opt.Port), ","), opt.CA)
		return bw.Flush()
	}
	for _, h := range hosts {
		if len(h.Keys) == 0 {
			fmt.Fprintf(bw, "# %s: no host keys known\n", h.Name)
			continue
		}
		names := strings.Join(patternList(append(slices.Clone(opt.Names), hostPatterns(h)...), opt.Port), ",")
		keys := slices.Clone(h.Keys)
		sortKeys(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "%s %s\n", names, k)
		}
	}
	return bw.Flush()
}

// hostPatterns are a host's name and addresses.
func hostPatterns(h Host) []string {
	out := []string{h.Name}
	for _, a := range h.Addrs {
		out = append(out, a.Unmap().String())
	}
	return out
}

// patternList dedups names in order and adds a non-default port.
func patternList(names []string, port int) []string {
	var out []string
	for _, n := range names {
		if port != 0 && port != 22 {
			n = "[" + n + "]:" + strconv.Itoa(port)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// checkName rejects names that would change the meaning of a known_hosts
// line. Wildcards are for the admin's virtual names only.
func checkName(n string, wildcards bool) error {
	switch {
	case n == "":
		return errors.New("empty")
	case strings.ContainsAny(n, " \t\r\n,"):
		return errors.New("contains a space or comma")
	case strings.ContainsAny(n[:1], "@#|!"):
		return errors.New("starts with @, #, | or !")
	case strings.ContainsAny(n, "[]"):
		return errors.New("contains [ or ]")
	case !wildcards && strings.ContainsAny(n, "*?"):
		return errors.New("contains a pattern character")
	}
	return nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "(no virtual name)"
	}
	return strings.Join(names, ", ")
}
