package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// sshOptsWithArg are the OpenSSH client options that take a value.
const sshOptsWithArg = "BbcDEeFIiJLlmOoPpQRSWw"

// splitSSHArgs splits what follows `peerload ssh --` into ssh options
// (which go before the host) and the remote command (after it), the way
// ssh(1) itself parses its command line.
func splitSSHArgs(args []string) (opts, command []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return opts, args[i+1:]
		}
		if len(a) < 2 || a[0] != '-' {
			return opts, args[i:]
		}
		opts = append(opts, a)
		// -lroot carries its value; -l root takes the next word.
		for j := 1; j < len(a); j++ {
			if strings.IndexByte(sshOptsWithArg, a[j]) >= 0 {
				if j == len(a)-1 && i+1 < len(args) {
					i++
					opts = append(opts, args[i])
				}
				break
			}
		}
	}
	return opts, nil
}

func (c *cli) runSSH(args []string) error {
	f := c.newFlagSet("ssh", "[flags] [-- SSH-OPTION... [COMMAND...]]", `
Log in on the least-loaded machine: runs ssh [SSH-OPTION...] HOST [COMMAND].
Options for ssh itself go after --. $PEERLOAD_SSH replaces the ssh program;
it is split into words at spaces (PEERLOAD_SSH="ssh -F my_config").

-n N picks at random among the best N machines (smarterSSH -n), so a
class logging in at once spreads out; -v says which machines were
considered and why the pick won, on standard error, before ssh starts.

    peerload ssh
    peerload ssh -n 3 -v
    peerload ssh --pool gpu -- -A
    peerload ssh -- -l alice uptime`)
	n := f.Int("n", 1, "pick at random among the best `N` machines")
	verbose := f.Bool("v", false, "explain the pick on standard error")
	rf := f.handOutFlags()
	ip := f.Bool("ip", false, "connect to the machine's address instead of its name (for names not in DNS, as in the demo)")
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if *n < 1 {
		return &flagError{Flag: "n", Value: fmt.Sprint(*n), Err: errors.New("must be at least 1")}
	}
	rk, err := rf.parse()
	if err != nil {
		return err
	}
	prog := strings.Fields(c.getenv("PEERLOAD_SSH"))
	if len(prog) == 0 {
		prog = []string{"ssh"}
	}
	path, err := exec.LookPath(prog[0])
	if err != nil {
		return fmt.Errorf("cannot run ssh program %q ($PEERLOAD_SSH): %w", prog[0], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	client := api.NewClient(*apiAddr)
	resp, err := handOut(ctx, client, *n, rk)
	if err != nil {
		return err
	}
	pick := &resp.Nodes[rand.IntN(len(resp.Nodes))]
	host, err := hostOf(pick, *ip)
	if err != nil {
		return err
	}
	if !*ip {
		c.hintUnresolved(pick)
	}
	opts, command := splitSSHArgs(rest)
	argv := append(slices.Clone(prog), opts...)
	argv = append(argv, host)
	argv = append(argv, command...)
	if *verbose {
		explainPick(c.stderr, resp, pick, *n)
		fmt.Fprintf(c.stderr, "peerload ssh: running %s\n", strings.Join(argv, " "))
	}
	if err := c.exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// explainPick is `ssh -v`: which machines were considered, by what, and
// which one won.
func explainPick(w io.Writer, resp *api.NodesResponse, pick *api.NodeJSON, n int) {
	how := "the best candidate"
	if n > 1 {
		how = fmt.Sprintf("at random among the best %d answering candidates", n)
		if len(resp.Nodes) < n {
			how = fmt.Sprintf("at random among the %d answering candidates (asked for the best %d)", len(resp.Nodes), n)
		}
	}
	fmt.Fprintf(w, "peerload ssh: %s is %s%s, ranked by %s (lower score is better):\n", pick.Name, how, inPool(resp.Pool), resp.By)
	_ = writeTopTable(w, resp.Nodes)
	fmt.Fprintf(w, "peerload ssh: %s: %s\n", pick.Name, loadSummary(pick))
}

// resolveTimeout bounds the name check before ssh starts.
const resolveTimeout = 2 * time.Second

// hintUnresolved warns, before ssh says "Could not resolve hostname", when
// the picked machine's name does not resolve here (a demo, a lab whose
// names are not in DNS) and points at --ip. It only warns: ssh may still
// know the name from its own configuration (a Host block).
func (c *cli) hintUnresolved(n *api.NodeJSON) {
	lookup := c.lookupHost
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	_, err := lookup(ctx, n.Name)
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		return
	}
	addr, _ := hostOf(n, true)
	if addr == "" {
		fmt.Fprintf(c.stderr, "peerload ssh: warning: %s does not resolve on this machine and advertises no address\n", n.Name)
		return
	}
	fmt.Fprintf(c.stderr, "peerload ssh: warning: %s does not resolve on this machine; --ip connects to its address, %s\n", n.Name, addr)
}
