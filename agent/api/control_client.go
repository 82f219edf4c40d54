package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"syscall"
	"time"
)

// ControlClient asks the agent on this machine, through its control
// socket, to drain or undrain it (`peerload drain`, `peerload undrain`).
type ControlClient struct {
	path string
	c    *Client
}

// NewControlClient returns a client for the control socket at path.
func NewControlClient(path string) *ControlClient {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			addr, done, err := socketAddr(path)
			if err != nil {
				return nil, err
			}
			defer done()
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		},
		DisableKeepAlives: true,
	}
	return &ControlClient{path: path, c: &Client{
		addr: path,
		base: &url.URL{Scheme: "http", Host: "peerload-control"},
		http: &http.Client{Transport: tr, Timeout: 10 * time.Second},
	}}
}

// Drain takes this machine out of the candidate set with reason ("" lets
// the agent name the caller).
func (c *ControlClient) Drain(ctx context.Context, reason string) (*DrainResponse, error) {
	body, err := json.Marshal(map[string]string{"reason": reason})
	if err != nil {
		return nil, err
	}
	return c.call(ctx, "/v1/drain", body)
}

// Undrain brings this machine back into the candidate set.
func (c *ControlClient) Undrain(ctx context.Context) (*DrainResponse, error) {
	return c.call(ctx, "/v1/undrain", []byte("{}"))
}

func (c *ControlClient) call(ctx context.Context, path string, body []byte) (*DrainResponse, error) {
	var resp DrainResponse
	err := c.c.do(ctx, http.MethodPost, path, nil, body, &resp)
	if err == nil {
		return &resp, nil
	}
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusForbidden {
		return nil, &DeniedError{Msg: se.Msg}
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		return nil, err
	}
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return nil, &DeniedError{Msg: DeniedMessage(socketGroup(c.path), currentUser())}
	case errors.Is(err, syscall.ENOENT):
		return nil, fmt.Errorf("no control socket at %s: is `peerload agent` running on this machine, and is this its --control socket?", c.path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("nothing listens on the control socket %s: is `peerload agent` running on this machine?", c.path)
	}
	return nil, fmt.Errorf("control socket %s: %w", c.path, ue.Err)
}

// DeniedError is a caller that may not drain or undrain this machine.
type DeniedError struct{ Msg string }

func (e *DeniedError) Error() string { return e.Msg }

// socketGroup is the group a socket file lets in, "" when only its owner.
func socketGroup(path string) string {
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm()&0o020 == 0 {
		return ""
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Gid == 0 {
		return ""
	}
	id := strconv.FormatUint(uint64(sys.Gid), 10)
	if g, err := user.LookupGroupId(id); err == nil {
		return g.Name
	}
	return id
}

// currentUser is the name of the user running this process.
func currentUser() string { return userName(os.Getuid()) }
