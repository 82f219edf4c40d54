package main

import (
	"context"
	"fmt"

	"github.com/peerload/peerload/agent/api"
)

// defaultControl is where `peerload agent` puts its control socket unless
// told otherwise, and where drain and undrain look for it: the agent
// unit's RuntimeDirectory. A variable so that tests can point it at a
// place they own.
var defaultControl = "/run/peerload/control.sock"

func (c *cli) runDrain(args []string) error {
	f := c.newFlagSet("drain", "[flags]", `
Take this machine out of the candidate set (for maintenance) while it stays
a member and keeps reporting. The agent keeps the flag in its --state-dir,
so it survives restarts, until 'peerload undrain'.

Only root and members of the agent's --control-group (peerload-admin when
it exists) may drain: the request goes through the agent's control socket,
which tells the agent who asks, and the agent logs who drained and why.

    sudo peerload drain --reason "disk replacement"`)
	reason := f.String("reason", "", "`REASON` shown by peerload status (one line, at most 120 bytes; default: who drained)")
	control := f.controlFlag()
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewControlClient(*control).Drain(ctx, *reason)
	if err != nil {
		return err
	}
	if resp.Changed {
		fmt.Fprintf(c.stdout, "%s drained: %s\n", resp.Node, resp.Reason)
	} else {
		fmt.Fprintf(c.stdout, "%s was already drained: %s\n", resp.Node, resp.Reason)
	}
	return nil
}

func (c *cli) runUndrain(args []string) error {
	f := c.newFlagSet("undrain", "[flags]", `
Bring this machine back into the candidate set after 'peerload drain'.
Like drain, only for root and members of the agent's --control-group.`)
	control := f.controlFlag()
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewControlClient(*control).Undrain(ctx)
	if err != nil {
		return err
	}
	if resp.Changed {
		fmt.Fprintf(c.stdout, "%s undrained\n", resp.Node)
	} else {
		fmt.Fprintf(c.stdout, "%s was not drained; nothing changed\n", resp.Node)
	}
	return nil
}
