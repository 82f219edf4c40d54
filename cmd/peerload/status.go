package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\033[H\033[2J"

func (c *cli) runStatus(args []string) error {
	f := c.newFlagSet("status", "[flags]", `
Show every machine the local agent knows: candidates best first with their
rank, then the others with the state, failing checks or reasons that keep
them out (drained, stale report, suspect, dead, left, ...). Machines that
died or left stay listed, with that state, for a minute.

The table fits 80 columns (a wider terminal: its width), cutting the
notes; --wide shows every column (address, load5/15, CPU use, available
memory, users, report age) and the whole notes. MEM% is the share of
memory in use (1 - MemAvailable/MemTotal; "mem used" on the status page),
CPU% the share of CPU time in use; MEM AVAIL is the memory available, in
GiB.

--watch redraws the table every --interval until interrupted; when standard
output is not a terminal it prints one table after another instead.`)
	watch := f.Bool("watch", false, "refresh in place until interrupted")
	interval := f.Duration("interval", 2*time.Second, "refresh `INTERVAL` for --watch")
	wide := f.Bool("wide", false, "every column, nothing cut")
	asJSON := f.Bool("json", false, "print the agent's JSON answer")
	rf := f.rankFlags()
	apiAddr := f.apiFlag()
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return &flagError{Flag: "interval", Value: interval.String(), Err: errors.New("must be at least 100ms")}
	}
	if err := exclusive("watch", "json", *watch, *asJSON); err != nil {
		return err
	}
	if err := exclusive("wide", "json", *wide, *asJSON); err != nil {
		return err
	}
	rk, err := rf.parse()
	if err != nil {
		return err
	}
	isTerm, _ := c.terminalWidth()
	client := api.NewClient(*apiAddr)
	render := func() ([]byte, error) {
		_, width := c.terminalWidth() // again each time: the window may change
		if *wide {
			width = 0
		}
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		resp, err := client.Nodes(ctx, rk.pool, rk.by)
		if err != nil {
			return nil, err
		}
		if len(resp.Nodes) == 0 && rk.pool != "" {
			return nil, noPool(ctx, client, rk.pool)
		}
		var buf bytes.Buffer
		if *asJSON {
			err = writeJSON(&buf, resp)
		} else {
			err = writeStatusTable(&buf, resp, *wide, width)
		}
		return buf.Bytes(), err
	}
	if !*watch {
		out, err := render()
		if err != nil {
			return err
		}
		_, err = c.stdout.Write(out)
		return err
	}

	sig := c.signals
	if sig == nil {
		sig = make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sig)
	}
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		out, err := render()
		if err != nil {
			out = []byte(err.Error() + "\n")
		}
		header := fmt.Sprintf("peerload status  agent %s  %s  (every %s, Ctrl-C to stop)\n\n",
			client.Addr(), time.Now().Format("15:04:05"), *interval)
		switch {
		case isTerm:
			header = clearScreen + header
		case frame > 0:
			header = "\n" + header
		}
		if _, err := fmt.Fprint(c.stdout, header+string(out)); err != nil {
			return nil // the reader went away (a closed pipe): nothing more to show
		}
		select {
		case <-sig:
			return nil
		case <-tick.C:
		}
	}
}

// noPool explains an empty pool: which pools the agent does know.
func noPool(ctx context.Context, client *api.Client, pool string) error {
	all, err := client.Nodes(ctx, "", "")
	if err != nil {
		return err
	}
	var pools []string
	for _, n := range all.Nodes {
		for _, p := range n.Pools {
			if !slices.Contains(pools, p) {
				pools = append(pools, p)
			}
		}
	}
	slices.Sort(pools)
	if len(pools) == 0 {
		return fmt.Errorf("no machine is in pool %q: no machine is in any pool (agents join pools with --pool)", pool)
	}
	return fmt.Errorf("no machine is in pool %q; pools: %s", pool, strings.Join(pools, ", "))
}
