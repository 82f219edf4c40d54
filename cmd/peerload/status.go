package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/peerload/peerload/agent/api"
)

// clearScreen moves the cursor home and clears the terminal (ANSI).
const clearScreen = "\033[H\033[2J"

func (c *cli) runStatus(args []string) error {
	f := c.newFlagSet("status", "[--watch] [--interval D] [--by B] [--pool P] [--json]", `
Show every machine the local agent knows: candidates best first with their
rank, then the others with the failing checks or reasons that keep them out
(drained, stale report, suspect, ...). AGE is how old the latest load report
is. --watch redraws the table every --interval until interrupted.`)
	watch := f.Bool("watch", false, "refresh in place until interrupted")
	interval := f.Duration("interval", 2*time.Second, "refresh `interval` for --watch")
	asJSON := f.Bool("json", false, "print the agent's JSON answer")
	rf := f.rankFlags()
	apiAddr := f.apiFlag()
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(rest); err != nil {
		return err
	}
	if *interval < 100*time.Millisecond {
		return &flagError{Flag: "interval", Value: interval.String(), Err: errors.New("must be at least 100ms")}
	}
	if *watch && *asJSON {
		return &usageError{errors.New("--watch and --json exclude each other")}
	}
	by, err := rf.parse()
	if err != nil {
		return err
	}
	client := api.NewClient(*apiAddr)
	render := func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		defer cancel()
		resp, err := client.Nodes(ctx, rf.pool, by)
		if err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if *asJSON {
			enc := json.NewEncoder(&buf)
			enc.SetIndent("", "  ")
			err = enc.Encode(resp)
		} else {
			err = writeStatusTable(&buf, resp)
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
	for {
		out, err := render()
		header := fmt.Sprintf("peerload status  agent %s  %s  (every %s, Ctrl-C to stop)\n\n",
			client.Addr(), time.Now().Format("15:04:05"), *interval)
		if err != nil {
			out = []byte(err.Error() + "\n")
		}
		fmt.Fprint(c.stdout, clearScreen+header+string(out))
		select {
		case <-sig:
			return nil
		case <-tick.C:
		}
	}
}
