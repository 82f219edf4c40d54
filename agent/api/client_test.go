package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent/rank"
)

func TestClientAgainstAPI(t *testing.T) {
	f := &fakeAPISource{snap: apiTestSnapshot()}
	srv := httptest.NewServer(newHandler(f.source(), prometheus.NewRegistry()))
	defer srv.Close()
	ctx := context.Background()
	for _, addr := range []string{strings.TrimPrefix(srv.URL, "http://"), srv.URL, srv.URL + "/"} {
		c := NewClient(addr)
		top, err := c.Top(ctx, 2, "", rank.ByCPU, false)
		if err != nil {
			t.Fatalf("%s: top: %v", addr, err)
		}
		if got := apiNames(top.Nodes); got != "lab3,lab2" || top.By != rank.ByCPU {
			t.Errorf("%s: top = %s by %s", addr, got, top.By)
		}
	}
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"))
	nodes, err := c.Nodes(ctx, "gpu", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := apiNames(nodes.Nodes); got != "lab3,lab1" || nodes.Pool != "gpu" || nodes.By != rank.ByCombined {
		t.Errorf("nodes = %s pool %q by %q", got, nodes.Pool, nodes.By)
	}
	if top, err := c.Top(ctx, 0, "", "", false); err != nil || len(top.Nodes) != 1 {
		t.Errorf("top with n=0 = %v, %v; want the best one", top, err)
	}
	_, err = c.Top(ctx, 1, "", rank.By("bogus"), false)
	if err == nil || !strings.Contains(err.Error(), "parameter by") {
		t.Errorf("top by bogus: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	_, err = NewClient(addr).Top(context.Background(), 1, "", "", false)
	if err == nil {
		t.Fatal("top against a closed port succeeded")
	}
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("error %T %v is not an UnreachableError", err, err)
	}
	want := "cannot reach peerload agent at " + addr + " (is `peerload agent` running?)"
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error = %q, want it to start with %q", err, want)
	}
}

func TestClientNotAnAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/top" {
			w.Write([]byte("<html>hello</html>"))
			return
		}
		http.Error(w, "teapot", http.StatusTeapot)
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	if _, err := c.Top(context.Background(), 1, "", "", false); err == nil || !strings.Contains(err.Error(), "bad answer") {
		t.Errorf("top from a web server: %v", err)
	}
	if _, err := c.Nodes(context.Background(), "", ""); err == nil || !strings.Contains(err.Error(), "418") {
		t.Errorf("nodes from a teapot: %v", err)
	}
}
