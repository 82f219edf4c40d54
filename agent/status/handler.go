package status

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The status page's routes, all read-only (GET and HEAD):
//
//	GET /                 the page (server-rendered; works without JavaScript)
//	GET /status/live      the page's live part, which status.js refetches every 2 s
//	GET /status.json      the same data as JSON (?node=NAME adds its history)
//	GET /status/status.js, /status/status.css, /status/icon.svg   embedded assets
//
// Every route takes ?pool=P (only that pool), ?q=TEXT (machine names
// containing it), ?sort=COLUMN and ?desc=1.

//go:embed web
var webFS embed.FS

// securityHeaders go on every answer: the page loads nothing from
// anywhere else and runs no inline script, and no other site may frame it.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
}

// NewHandler serves r's status page (see the routes above). It only reads:
// every other method is refused. Mount it at / of an address of its own,
// or beside an API for the paths /, /status/ and /status.json.
func NewHandler(r *Recorder) http.Handler { return newHandler(r) }

func newHandler(r *Recorder) *handler {
	h := &handler{r: r}
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", h.page)
	mux.HandleFunc("/status/live", h.live)
	mux.HandleFunc("/status.json", h.json)
	for _, name := range []string{"status.js", "status.css", "icon.svg"} {
		mux.HandleFunc("/status/"+name, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Cache-Control", "max-age=300")
			http.ServeFileFS(w, req, webFS, "web/"+name)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		http.Error(w, "no such page: "+req.URL.Path, http.StatusNotFound)
	})
	h.mux = mux
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "the status page is read-only", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, req)
}

type handler struct {
	r     *Recorder
	mux   *http.ServeMux
	cache pageCache
}

func (h *handler) page(w http.ResponseWriter, req *http.Request) {
	h.html(w, req, "page", (*view).writePage)
}

func (h *handler) live(w http.ResponseWriter, req *http.Request) {
	h.html(w, req, "live", (*view).writeLive)
}

func (h *handler) html(w http.ResponseWriter, req *http.Request, part string, write func(*view, *bytes.Buffer)) {
	q, err := parseQuery(req.URL.Query(), false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := part + "?" + req.URL.RawQuery
	now := h.r.opts.Now()
	e := h.cache.get(key, h.r.Version(), now)
	if e == nil {
		v := h.r.buildView(q, false)
		var buf bytes.Buffer
		write(v, &buf)
		e = &rendered{key: key, version: v.Version, at: now, plain: buf.Bytes()}
		h.cache.put(e)
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Encoding")
	body := e.plain
	if acceptsGzip(req) {
		hd.Set("Content-Encoding", "gzip")
		body = e.gzipped()
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// rendered is one page rendered for one recorder version and query. Every
// viewer polling the same page within a second shares it, so the cost of
// rendering (tens of ms at 500 machines) does not grow with the viewers.
type rendered struct {
	key     string
	version uint64
	at      time.Time
	plain   []byte
	gzOnce  sync.Once
	gz      []byte
}

func (e *rendered) gzipped() []byte {
	e.gzOnce.Do(func() {
		var buf bytes.Buffer
		gz := gzips.Get().(*gzip.Writer)
		defer gzips.Put(gz)
		gz.Reset(&buf)
		gz.Write(e.plain)
		gz.Close()
		e.gz = buf.Bytes()
	})
	return e.gz
}

// pageCache holds the few newest rendered pages.
type pageCache struct {
	mu      sync.Mutex
	entries []*rendered // newest first
	off     bool        // benchmarks measure rendering
}

const (
	pageCacheSize = 8
	pageCacheAge  = time.Second
)

func (c *pageCache) get(key string, version uint64, now time.Time) *rendered {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if e.key == key && e.version == version && now.Sub(e.at) < pageCacheAge && !c.off {
			return e
		}
	}
	return nil
}

func (c *pageCache) put(e *rendered) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = slices.DeleteFunc(c.entries, func(o *rendered) bool { return o.key == e.key })
	c.entries = slices.Insert(c.entries, 0, e)
	if len(c.entries) > pageCacheSize {
		c.entries = c.entries[:pageCacheSize]
	}
}

func (h *handler) json(w http.ResponseWriter, req *http.Request) {
	q, err := parseQuery(req.URL.Query(), true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	if err := json.NewEncoder(buf).Encode(h.r.buildView(q, true)); err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	write(w, req, "application/json", buf.Bytes())
}

var (
	buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	gzips   = sync.Pool{New: func() any { w, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed); return w }}
)

func getBuffer() *bytes.Buffer  { b := buffers.Get().(*bytes.Buffer); b.Reset(); return b }
func putBuffer(b *bytes.Buffer) { buffers.Put(b) }

// write sends body, gzipped when the client takes it: at 500 machines the
// page is a few hundred KB of very repetitive markup.
func write(w http.ResponseWriter, req *http.Request, ctype string, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", ctype)
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Encoding")
	if !acceptsGzip(req) {
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
		return
	}
	hd.Set("Content-Encoding", "gzip")
	gz := gzips.Get().(*gzip.Writer)
	defer gzips.Put(gz)
	gz.Reset(w)
	gz.Write(body)
	gz.Close()
}

func acceptsGzip(req *http.Request) bool {
	for _, part := range strings.Split(req.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(params, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
