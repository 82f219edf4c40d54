package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/peerload/peerload/agent/api"
	"github.com/peerload/peerload/agent/rank"
)

// requestTimeout bounds one call to the local agent.
const requestTimeout = 10 * time.Second

// rankFlags are --by and --pool, shared by the commands that rank nodes,
// and --herd of those that hand machines out (top, ssh, hostfile): on, the
// agent counts what it hands out to this machine's users, so people who
// log in one after another spread.
type rankFlags struct {
	by   string
	pool string
	herd string // "" for a command without --herd
}

func (f *flagSet) rankFlags() *rankFlags {
	r := &rankFlags{}
	f.StringVar(&r.by, "by", "", "rank by `RANKING`: cpu (run queue per CPU), mem (most free memory first) or combined (default: the agent's --by)")
	f.choose("by", "cpu", "mem", "combined")
	f.StringVar(&r.pool, "pool", "", "only machines in `POOL`")
	return r
}

// handOutFlags are rankFlags with --herd.
func (f *flagSet) handOutFlags() *rankFlags {
	r := f.rankFlags()
	f.StringVar(&r.herd, "herd", "on", "`HERD`: on or off; on, the agent counts the machines it hands out here and ranks them as if their load already showed it")
	f.choose("herd", "on", "off")
	return r
}

// ranking is what rankFlags ask of the agent.
type ranking struct {
	by   rank.By // "": the agent's
	pool string
	herd bool
}

func (r *rankFlags) parse() (ranking, error) {
	out := ranking{pool: r.pool, herd: true}
	if r.by != "" {
		by, err := rank.ParseBy(r.by)
		if err != nil {
			return ranking{}, &flagError{Flag: "by", Value: r.by, Err: errors.New("want cpu, mem or combined")}
		}
		out.by = by
	}
	if r.herd != "" {
		on, err := rank.ParseHerd(r.herd)
		if err != nil {
			return ranking{}, &flagError{Flag: "herd", Value: r.herd, Err: errors.New("want on or off")}
		}
		out.herd = on
	}
	return out, nil
}

// handOut asks the agent for the n best machines (allNodes: every
// candidate) as rk says, and fails with noCandidate's line when there is
// none.
func handOut(ctx context.Context, client *api.Client, n int, rk ranking) (*api.NodesResponse, error) {
	resp, err := client.Top(ctx, n, rk.pool, rk.by, rk.herd)
	if err != nil {
		return nil, err
	}
	if len(resp.Nodes) == 0 {
		return nil, noCandidate(ctx, client, rk.pool)
	}
	return resp, nil
}

// noCandidate is the one line printed when nothing can be handed out. A
// pool no machine is in is named as such, with the pools there are,
// rather than as a pool that happens to have no candidate right now.
func noCandidate(ctx context.Context, client *api.Client, pool string) error {
	if pool == "" {
		return errors.New("no candidate machine right now (see `peerload status`)")
	}
	if in, err := client.Nodes(ctx, pool, ""); err == nil && len(in.Nodes) == 0 {
		return noPool(ctx, client, pool)
	}
	return fmt.Errorf("no candidate machine in pool %q right now (see `peerload status --pool %s`)", pool, pool)
}

// exclusive fails when two flags that contradict each other are both set.
func exclusive(a, b string, aSet, bSet bool) error {
	if aSet && bSet {
		return &usageError{fmt.Errorf("%s and %s exclude each other", dashed(a), dashed(b))}
	}
	return nil
}

func (c *cli) runTop(args []string) error {
	f := c.newFlagSet("top", "[flags]", `
Print the least-loaded machines, best first, one name a line:

    ssh $(peerload top)

Machines with equal scores (closer than the agent's --delta) come out in
random order, so repeated calls spread users across equally good machines.
--random ignores load and prints candidates in random order (smarterSSH -r).
When fewer machines are candidates than -n asks for, top prints those and
a warning. Exits 1 when no machine is a candidate or the agent cannot be
reached.`)
	n := f.Int("n", 1, "how many machines, `N`")
	random := f.Bool("random", false, "pick at random among all candidates, ignoring load")
	f.alias("r", "random")
	rf := f.handOutFlags()
	verbose := f.Bool("v", false, "print a table with rank, score and load")
	ip := f.Bool("ip", false, "print the IPv4 address (IPv6 when there is none) instead of the name")
	asJSON := f.Bool("json", false, "print the agent's JSON answer")
	apiAddr := f.apiFlag()
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	if *n < 1 {
		return &flagError{Flag: "n", Value: fmt.Sprint(*n), Err: errors.New("must be at least 1")}
	}
	if err := exclusive("json", "v", *asJSON, *verbose); err != nil {
		return err
	}
	if err := exclusive("json", "ip", *asJSON, *ip); err != nil {
		return err
	}
	rk, err := rf.parse()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ask := *n
	if *random {
		ask = allNodes
	}
	client := api.NewClient(*apiAddr)
	resp, err := handOut(ctx, client, ask, rk)
	if err != nil {
		return err
	}
	if *random {
		rand.Shuffle(len(resp.Nodes), func(i, j int) { resp.Nodes[i], resp.Nodes[j] = resp.Nodes[j], resp.Nodes[i] })
		resp.Nodes = resp.Nodes[:min(*n, len(resp.Nodes))]
	}
	if len(resp.Nodes) < *n {
		fmt.Fprintf(c.stderr, "peerload top: warning: only %d candidate machines%s, asked for %d\n", len(resp.Nodes), inPool(rk.pool), *n)
	}
	switch {
	case *asJSON:
		return writeJSON(c.stdout, resp)
	case *verbose:
		return writeTopTable(c.stdout, resp.Nodes)
	default:
		return writeNames(c.stdout, resp.Nodes, *ip)
	}
}

// inPool is " in pool P" for messages, "" for all machines.
func inPool(pool string) string {
	if pool == "" {
		return ""
	}
	return fmt.Sprintf(" in pool %q", pool)
}
