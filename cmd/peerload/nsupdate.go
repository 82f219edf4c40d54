package main

import "errors"

// runNsupdate is the `peerload nsupdate` subcommand (RFC 2136 mode).
// Placeholder until the updater lands.
func runNsupdate(args []string) error {
	return errors.New("nsupdate: not implemented yet")
}
