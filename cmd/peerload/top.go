package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/rank"
)

// requestTimeout bounds one call to the local agent.
const requestTimeout = 10 * time.Second

// rankFlags are --by and --pool, shared by the commands that pick nodes.
type rankFlags struct {
	by   string
	pool string
}

func (f *flagSet) rankFlags() *rankFlags {
	r := &rankFlags{}
	f.StringVar(&r.by, "by", "", "rank by `cpu`, mem or combined (default: the agent's --by)")
	f.StringVar(&r.pool, "pool", "", "only machines in this `pool`")
	return r
}

func (r *rankFlags) parse() (rank.By, error) {
	if r.by == "" {
		return "", nil
	}
	by, err := rank.ParseBy(r.by)
	if err != nil {
		return "", &flagError{Flag: "by", Value: r.by, Err: errors.New("want cpu, mem or combined")}
	}
	return by, nil
}

// errNoCandidate is the one line printed when nothing can be handed out.
func errNoCandidate(pool string) error {
	if pool != "" {
		return fmt.Errorf("no candidate machine in pool %q right now (see `peerload status --pool %s`)", pool, pool)
	}
	return errors.New("no candidate machine right now (see `peerload status`)")
}

func (c *cli) runTop(args []string) error {
	f := c.newFlagSet("top", "[-n N] [--by cpu|mem|combined] [--pool P] [-v] [--ip] [--json]", `
Print the least-loaded machines, best first, one name a line:

    ssh $(peerload top)

Machines with equal scores (closer than the agent's --delta) come out in
random order, so repeated calls spread users across equally good machines.
Exits 1 when no machine is a candidate or the agent cannot be reached.`)
	n := f.Int("n", 1, "how many machines")
	rf := f.rankFlags()
	verbose := f.Bool("v", false, "print a table with score and load")
	ip := f.Bool("ip", false, "print the IPv4 address (IPv6 when there is none) instead of the name")
	asJSON := f.Bool("json", false, "print the agent's JSON answer")
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	if *n < 1 {
		return &flagError{Flag: "n", Value: fmt.Sprint(*n), Err: errors.New("must be at least 1")}
	}
	by, err := rf.parse()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	resp, err := api.NewClient(*apiAddr).Top(ctx, *n, rf.pool, by)
	if err != nil {
		return err
	}
	if len(resp.Nodes) == 0 {
		return errNoCandidate(rf.pool)
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(resp)
	case *verbose:
		return writeTopTable(c.stdout, resp.Nodes)
	default:
		return writeNames(c.stdout, resp.Nodes, *ip)
	}
}
