package api

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzAPIRequest: any request to the local API, from anyone who can reach
// it, gets an answer and never a panic; a malformed one gets a 4xx.
func FuzzAPIRequest(f *testing.F) {
	f.Add("GET", "/v1/top?n=3&pool=gpu&by=cpu", "", "")
	f.Add("GET", "/v1/nodes?by=mem", "", "")
	f.Add("POST", "/v1/drain", "application/json", `{"reason":"disk"}`)
	f.Add("POST", "/v1/drain", "application/x-www-form-urlencoded", "reason=%zz")
	f.Add("GET", "/v1/top?n=99999999999999999999", "", "")
	f.Fuzz(func(t *testing.T, method, target, ctype, body string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t\x00#") || !validMethod(method) {
			return
		}
		if _, err := url.ParseRequestURI(target); err != nil {
			return // net/http's server answers 400 before any handler
		}
		src := &fakeAPISource{snap: apiTestSnapshot()}
		h := newHandler(src.source(), prometheus.NewRegistry())
		req := httptest.NewRequest(method, "http://127.0.0.1:1981"+target, strings.NewReader(body))
		req.RemoteAddr = "127.0.0.1:5555"
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d", method, target, rec.Code)
		}
	})
}

func validMethod(m string) bool {
	if m == "" || len(m) > 16 {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return m != http.MethodConnect
}
