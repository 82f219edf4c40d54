package main

import (
	"context"
	"fmt"

	"github.com/peerload/peerload/agent/api"
)

func (c *cli) runDrain(args []string) error {
	f := c.newFlagSet("drain", "[--reason R]", `
Take this machine out of the candidate set (for maintenance) while it stays
a member and keeps reporting. The flag is kept in the agent's --state-dir,
so it survives restarts, until 'peerload undrain'. The agent accepts this
only from loopback.`)
	reason := f.String("reason", "", "why, shown by `peerload status` (one line, at most 120 bytes)")
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewClient(*apiAddr).Drain(ctx, *reason)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s drained: %s\n", resp.Node, resp.Reason)
	return nil
}

func (c *cli) runUndrain(args []string) error {
	f := c.newFlagSet("undrain", "", `
Bring this machine back into the candidate set after 'peerload drain'.`)
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewClient(*apiAddr).Undrain(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s undrained\n", resp.Node)
	return nil
}
