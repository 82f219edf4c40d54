package status

import (
	"bytes"
	"fmt"
	"html"
	"strconv"
	"time"
)

// The page is written by the Go code below, not by html/template.
// Executing a template looks fields and methods up by name through
// reflect. When a binary can do that, the linker must keep every exported
// method of every type that could reach an interface, which costs every
// agent binary size and resident memory on every machine of the cluster
// (BENCHMARKS.md, "Idle agent").
//
// Nothing reaches the page unescaped. Every value goes through page.f,
// which escapes it for HTML text and quoted attribute values, the only
// two places this page puts values. The page has no inline script or
// style, and the Content-Security-Policy forbids them. The only values
// that go through as they are have type markup, which this file writes.

// markup is HTML this file wrote; page.f writes it as it is.
type markup string

// page writes HTML into a buffer.
type page struct{ *bytes.Buffer }

// f writes format, a piece of the page, with its arguments in the verbs
// (%s, %d, %v). Numbers go in as they are, markup as it is, and anything
// else as its escaped text.
func (p page) f(format string, args ...any) {
	for i, a := range args {
		switch a := a.(type) {
		case markup:
			args[i] = string(a)
		case int, uint64, float64:
		case string:
			args[i] = html.EscapeString(a)
		default:
			args[i] = html.EscapeString(fmt.Sprint(a))
		}
	}
	fmt.Fprintf(p, format, args...)
}

// when is m if cond holds and nothing otherwise.
func when(cond bool, m markup) markup {
	if cond {
		return m
	}
	return ""
}

func f2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// The page's three ways of showing a time: in the text, in a tooltip, and
// for machines (and status.js).
func clock(t time.Time) string { return t.Local().Format("15:04:05") }
func full(t time.Time) string  { return t.Local().Format("2006-01-02 15:04:05 MST") }
func stamp(t time.Time) string { return t.Format(time.RFC3339) }

// writePage writes the whole page: the header, the filter form, and the
// live part.
func (v *view) writePage(b *bytes.Buffer) {
	p := page{b}
	p.f(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>peerload · %s</title>
<link rel="stylesheet" href="/status/status.css">
<link rel="icon" href="/status/icon.svg" type="image/svg+xml">
<script src="/status/status.js" defer></script>
<noscript><meta http-equiv="refresh" content="10"></noscript>
</head>
<body>
<header>
<h1>peerload</h1>
<span class="self">served by <b>%s</b></span>
<span id="conn" class="conn">not live: reload for news</span>
</header>
<form id="filter" method="get" action="./">
<label>pool <select name="pool">
<option value="">all</option>`, v.Self, v.Self)
	for _, pool := range v.Pools {
		p.f("\n<option%s>%s</option>", when(pool == v.Query.Pool, " selected"), pool)
	}
	p.f(`
</select></label>
<label>machine <input name="q" value="%s" placeholder="name contains" size="14"></label>`, v.Query.Filter)
	if v.Query.Sort != "rank" {
		p.f(`<input type="hidden" name="sort" value="%s">`, v.Query.Sort)
	}
	if v.Query.Desc {
		p.f(`<input type="hidden" name="desc" value="1">`)
	}
	p.f(`
<button type="submit">filter</button>
</form>
<main id="live" data-version="%d">
`, v.Version)
	v.writeLive(b)
	p.f("\n</main>\n</body>\n</html>\n")
}

// writeLive writes the part of the page that status.js refetches from
// /status/live and swaps in: the summary, the chart, the events and the
// table.
func (v *view) writeLive(b *bytes.Buffer) {
	p := page{b}
	p.f(`
<section class="summary">
<p><b>%d</b> of %d machines are candidates · median load1 <b>%s</b> · busiest <b>%s</b>
· updated <time id="updated" datetime="%s" title="%s">%s</time></p>
<div class="top">
`, v.Candidates, v.Total, f2(v.Median), f2(v.Busiest), stamp(v.Built), full(v.Built), clock(v.Built))
	v.Chart.write(p, v.Span)
	p.f(`
<section class="events">
<h2>Events</h2>
<ol id="events">`)
	for _, e := range v.Events {
		class := markup("good")
		if e.Bad() {
			class = "bad"
		}
		p.f("\n"+`<li class="%s" data-kind="%s"><time datetime="%s" title="%s">%s</time> <span class="kind">%s</span> %s %s</li>`,
			class, e.Kind, stamp(e.Time), full(e.Time), clock(e.Time), e.Kind,
			when(e.Node != "", markup("<b>"+html.EscapeString(e.Node)+"</b>")), e.Text)
	}
	if len(v.Events) == 0 {
		p.f("\n" + `<li class="none">nothing happened since this member started</li>`)
	}
	p.f(`
</ol>
</section>
</div>
</section>
<section class="machines">
<h2>Machines%s</h2>
<table id="machines">
<thead><tr>`, when(v.Shown != v.Total, markup(fmt.Sprintf(" <small>(%d of %d shown)</small>", v.Shown, v.Total))))
	for _, c := range v.Columns {
		p.f(`<th%s><a href="%s">%s</a></th>`, when(c.Sorted != "", markup(` class="sorted `+html.EscapeString(c.Sorted)+`"`)), c.Href, c.Title)
	}
	p.f(`
<th>load1, last %s</th><th>pools</th><th>why not a candidate</th>
</tr></thead>
<tbody>`, v.Span)
	for i := range v.Rows {
		v.Rows[i].write(p)
	}
	if len(v.Rows) == 0 {
		what := markup("known yet")
		if v.Query.Pool != "" || v.Query.Filter != "" {
			what = "matches the filter"
		}
		p.f("\n"+`<tr><td colspan="13">no machine %s</td></tr>`, what)
	}
	p.f("\n</tbody>\n</table>\n</section>\n")
}

// write writes the cluster chart, which covers span.
func (c *chart) write(p page, span string) {
	p.f(`
<figure class="cluster">
<svg id="cluster-chart" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="cluster-title">
<title id="cluster-title">Cluster over the last %s: median and busiest load1 (left axis), candidates (right axis)</title>
<g class="grid">
<line x1="%d" y1="%d" x2="%d" y2="%d"/>
<line x1="%d" y1="%d" x2="%d" y2="%d"/>`, c.W, c.H, c.W, c.H, span, c.L, c.T, c.Right, c.T, c.L, c.Bottom, c.Right, c.Bottom)
	for _, t := range c.Ticks {
		p.f("\n"+`<line x1="%v" y1="%d" x2="%v" y2="%d"/>`, t.X, c.T, t.X, c.Bottom)
	}
	p.f(`
</g>
<g class="axis">
<text x="%d" y="%d" dx="-4" dy="4" text-anchor="end">%v</text>
<text x="%d" y="%d" dx="-4" text-anchor="end">0</text>
<text x="%d" y="%d" dx="4" dy="4">%v</text>
<text x="%d" y="%d" dx="4">0</text>`, c.L, c.T, c.LoadTop, c.L, c.Bottom, c.Right, c.T, c.CandTop, c.Right, c.Bottom)
	for _, t := range c.Ticks {
		p.f("\n"+`<text x="%v" y="%d" dy="-3" text-anchor="middle">%s</text>`, t.X, c.H, t.Label)
	}
	p.f(`
</g>
<path class="cand" d="%s"/>
<path class="median" d="%s"/>
<path class="busiest" d="%s"/>
</svg>
<figcaption><span class="key median">median load1</span> <span class="key busiest">busiest load1</span> <span class="key cand">candidates</span></figcaption>
</figure>
`, c.Candidates, c.Median, c.Busiest)
}

// write writes one machine's row of the table.
func (r *row) write(p page) {
	state := r.State
	switch {
	case r.Collector:
		state = "collector"
	case r.Candidate:
		state = "candidate"
	}
	t := &r.Text
	p.f(`
<tr class="%s" data-name="%s">
<td class="name">%s</td>
<td class="state">%s</td>
<td class="num">%s</td>
<td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td>
<td class="num" title="%s CPUs">%s</td><td class="num">%s</td><td class="num">%s</td>
<td class="spark">`, r.Class(), r.Name, r.Name, state, t.Rank, t.Score, t.Load1, t.Load5, t.Load15, t.CPUs, t.CPU, t.Mem, t.Users)
	if r.Spark != "" {
		p.f(`<svg class="spark" viewBox="0 0 120 24" width="120" height="24" role="img"><title>%s</title><path d="%s"/></svg>`, r.SparkNote, r.Spark)
	}
	p.f(`</td>
<td>%s</td>
<td class="why">%s</td>
</tr>`, t.Pools, t.Why)
}
