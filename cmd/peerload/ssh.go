package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

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
	f := c.newFlagSet("ssh", "[--by B] [--pool P] [--ip] [-- ssh-options... [command...]]", `
Log in on the least-loaded machine: runs ssh [ssh-options] HOST [command].
$PEERLOAD_SSH replaces the ssh program.

    peerload ssh
    peerload ssh --pool gpu -- -A
    peerload ssh -- -l alice uptime`)
	rf := f.rankFlags()
	ip := f.Bool("ip", false, "connect to the machine's address instead of its name")
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	by, err := rf.parse()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewClient(*apiAddr).Top(ctx, 1, rf.pool, by)
	if err != nil {
		return err
	}
	if len(resp.Nodes) == 0 {
		return errNoCandidate(rf.pool)
	}
	host, err := hostOf(&resp.Nodes[0], *ip)
	if err != nil {
		return err
	}
	prog := c.getenv("PEERLOAD_SSH")
	if prog == "" {
		prog = "ssh"
	}
	path, err := exec.LookPath(prog)
	if err != nil {
		return fmt.Errorf("cannot run ssh program %q: %w", prog, err)
	}
	opts, command := splitSSHArgs(rest)
	argv := append([]string{prog}, opts...)
	argv = append(argv, host)
	argv = append(argv, command...)
	if err := c.exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}
