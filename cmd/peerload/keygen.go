package main

import (
	"encoding/base64"
	"fmt"

	"github.com/peerload/peerload/agent/gossip"
)

func (c *cli) runKeygen(args []string) error {
	f := c.newFlagSet("keygen", "[flags]", `
Generate a random AES-256 gossip encryption key. Without --out the key is
printed in base64; with it a new keyring file (mode 0600) is written, which
is never overwritten. Give every agent the same keyring with --keyring. The
packaged daemons run as user peerload: install the file on each machine as

    install -o root -g peerload -m 0640 keyring /etc/peerload/keyring`)
	out := f.String("out", "", "write a new keyring `FILE` instead of printing the key")
	if err := f.parseNoArgs(args); err != nil {
		return err
	}
	key, err := gossip.GenerateKey()
	if err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(c.stdout, base64.StdEncoding.EncodeToString(key))
		return nil
	}
	if err := gossip.WriteKeyring(*out, [][]byte{key}); err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "peerload keygen: wrote keyring %s\n", *out)
	return nil
}
