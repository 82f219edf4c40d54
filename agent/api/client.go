package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// Client talks to an agent's local HTTP API (see NewHandler); the CLI's
// top, status, drain and hostfile subcommands are built on it.
type Client struct {
	addr string // host:port, for messages
	base *url.URL
	http *http.Client
}

// NewClient returns a client for the agent API at addr, either host:port
// or an http:// URL.
func NewClient(addr string) *Client {
	base := &url.URL{Scheme: "http", Host: addr}
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil {
			base = u
			addr = u.Host
		}
	}
	return &Client{addr: addr, base: base, http: &http.Client{Timeout: 10 * time.Second}}
}

// Addr is the agent address the client talks to.
func (c *Client) Addr() string { return c.addr }

// Nodes returns every node the agent knows (candidates best first, then the
// rest by name) in pool ("" for all) ranked by by ("" for the agent's
// default).
func (c *Client) Nodes(ctx context.Context, pool string, by rank.By) (*NodesResponse, error) {
	q := url.Values{}
	setNonEmpty(q, "pool", pool)
	setNonEmpty(q, "by", string(by))
	var resp NodesResponse
	if err := c.do(ctx, http.MethodGet, "/v1/nodes", q, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// Top returns the best n candidates (n <= 0 means 1), counted by the
// agent's herd unless herd is false.
func (c *Client) Top(ctx context.Context, n int, pool string, by rank.By, herd bool) (*NodesResponse, error) {
	q := url.Values{}
	if !herd {
		q.Set("herd", "off") // only when asked: an agent before 0.2 knows no herd
	}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	setNonEmpty(q, "pool", pool)
	setNonEmpty(q, "by", string(by))
	var resp NodesResponse
	if err := c.do(ctx, http.MethodGet, "/v1/top", q, nil, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

func setNonEmpty(q url.Values, key, value string) {
	if value != "" {
		q.Set(key, value)
	}
}

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("peerload agent at %s: %w", c.addr, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("peerload agent at %s: read answer: %w", c.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		se := &StatusError{Addr: c.addr, Code: resp.StatusCode, Msg: resp.Status}
		var e ErrorResponse
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			se.Msg = e.Error
		}
		return se
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("peerload agent at %s: bad answer (is it a peerload agent?): %w", c.addr, err)
	}
	return nil
}

// unreachable turns a transport error into the one line a user needs.
func (c *Client) unreachable(err error) error {
	var opErr *net.OpError
	cause := err
	if errors.As(err, &opErr) && opErr.Err != nil {
		cause = opErr.Err
	} else {
		var uErr *url.Error
		if errors.As(err, &uErr) {
			cause = uErr.Err
		}
	}
	return &UnreachableError{Addr: c.addr, Err: cause}
}

// StatusError is an answer other than 200 OK, with the agent's message.
type StatusError struct {
	Addr string
	Code int
	Msg  string
}

func (e *StatusError) Error() string { return fmt.Sprintf("peerload agent at %s: %s", e.Addr, e.Msg) }

// UnreachableError is returned when no agent answers at Addr.
type UnreachableError struct {
	Addr string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach peerload agent at %s (is `peerload agent` running?): %v", e.Addr, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }
