package peerload

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/peerload/peerload/agent/herd"
	"github.com/peerload/peerload/agent/rank"
)

// Outcomes of an answer, the `outcome` label of answers_total.
const (
	outcomeCandidates = "candidates" // the virtual name with live candidates
	outcomeFallback   = "fallback"   // the virtual name answered by the fallback
	outcomeNode       = "node"       // a <node>.<name> answer
	outcomeNoData     = "nodata"
	outcomeNXDomain   = "nxdomain"
	outcomeZone       = "zone"    // SOA, NS or name server of an apex peerload makes up
	outcomeNotify     = "notify"  // a NOTIFY, acknowledged or NOTAUTH
	outcomeRefused    = "refused" // a zone transfer (AXFR, IXFR)
)

// fallbackTTL caps the TTL of fallback answers so clients come back soon.
const fallbackTTL = 5

// answerSet is everything ServeDNS needs, precomputed from one snapshot and
// published with an atomic pointer: the answer path never touches gossip
// and never locks. It is immutable once published.
type answerSet struct {
	// newest is when the newest report the answers hold was sent (zero
	// before the first report); a snapshot without reports keeps the one
	// before, so the age gauge goes on growing.
	newest time.Time
	ready  bool // the member holds at least one report
	alive  int  // alive members, collectors included

	names map[string]*nameAnswer // by virtual name (lower-case FQDN)
	// kept is what fallback keep remembers for the next build.
	kept  rank.Kept
	nodes map[string]*nodeAnswer // by lower-case node name
	// ents are empty non-terminals: labels between a name and a node whose
	// name has dots ("cs" for node "lab03.cs"), NODATA rather than NXDOMAIN.
	ents map[string]bool
}

// nameAnswer is the precomputed answer for one virtual name.
type nameAnswer struct {
	outcome string // outcomeCandidates or outcomeFallback
	ttl     uint32
	top     int
	// candidates is how many machines the ranking holds (the TXT answer
	// lists at most maxTXTRecords of them).
	candidates int
	// v4 and v6 are the ranked nodes with an address of that family, so
	// an A answer holds top records while top IPv4 nodes exist however
	// many IPv6-only ones rank above them.
	v4, v6 hostGroups
	// txt is one TXT record (its character-strings) per ranked node, best
	// first, at most maxTXTRecords of them.
	txt [][]string
}

// hostGroups are the addresses of one family of ranked nodes, up to the
// end of the group of equal score that holds the top-th one; groups are
// the start index of each group followed by len(ips). What an answer hands
// out is recorded through the handles beside each address: tallies (the
// herd's, nil with herd off) and handed (the handed_out_total counter of
// each node, by server label).
//
// With a herd each answer starts one place further into its machines
// (BIND's cyclic order): the herd counts each machine of an answer as
// equally likely to get the login, which then holds whether a resolver
// shuffles the records or the client takes the first (glibc keeps the
// order of IPv4 answers), and the herd, not the order, keeps a burst off
// the best machine.
type hostGroups struct {
	ips     []net.IP
	groups  []int
	tallies []*herd.Tally
	handed  map[string][]prometheus.Counter
}

// nodeAnswer is the answer for <node>.<name>.
type nodeAnswer struct {
	a4, a6 net.IP
	txt    []string
}

// emptyAnswerSet is what is published before the first snapshot.
func emptyAnswerSet() *answerSet {
	return &answerSet{names: map[string]*nameAnswer{}, nodes: map[string]*nodeAnswer{}, ents: map[string]bool{}}
}

// answerInputs is what an answer set is built from besides the snapshot.
type answerInputs struct {
	// herd counts the hand-outs (nil: herd off); the ranking adds what it
	// expects at now.
	herd *herd.Herd
	now  time.Time
	// servers are the `server` label values of the block's queries.
	servers []string
}

// buildAnswers precomputes the answers of cfg from snap. prev is the set
// published before (for fallback keep), never nil.
func buildAnswers(cfg *config, snap *rank.Snapshot, prev *answerSet, in answerInputs) *answerSet {
	set := emptyAnswerSet()
	set.newest = prev.newest
	if snap == nil {
		set.kept = prev.kept
		return set
	}
	var newest time.Time
	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if n.Report != nil {
			set.ready = true
			if n.Received.After(newest) {
				newest = n.Received
			}
		}
		if n.State == rank.StateAlive {
			set.alive++
		}
	}

	if !newest.IsZero() {
		set.newest = newest
	}

	choice, kept := cfg.policy(in.herd).Choose(snap, prev.kept, in.now)
	set.kept = kept
	if choice.Ranking.Len() > 0 {
		outcome, ttl, extra := outcomeCandidates, cfg.ttl, ""
		if choice.Fallback {
			outcome, ttl, extra = outcomeFallback, min(cfg.ttl, fallbackTTL), attr("fallback", string(cfg.fallback))
		}
		na := newNameAnswer(choice.Ranking, cfg.top, ttl, snap.Built, outcome, extra)
		na.v4.handles(choice.Ranking, ip4, in)
		na.v6.handles(choice.Ranking, ip6, in)
		for _, name := range cfg.names {
			set.names[name] = na
		}
	}

	for i := range snap.Nodes {
		n := &snap.Nodes[i]
		if n.Collector || !n.InPool(cfg.pool) {
			continue
		}
		key := strings.ToLower(n.Name)
		if !validNodeLabel(key) {
			continue
		}
		set.nodes[key] = newNodeAnswer(n, snap, cfg.by)
		for j := strings.IndexByte(key, '.'); j >= 0; {
			set.ents[key[j+1:]] = true
			k := strings.IndexByte(key[j+1:], '.')
			if k < 0 {
				break
			}
			j += 1 + k
		}
	}
	return set
}

// validNodeLabel reports whether s can be the first labels of a domain
// name (node names come from the cluster, not from a zone file).
func validNodeLabel(s string) bool {
	if s == "" || len(s) > 200 || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' || c == '$' {
			return false
		}
	}
	return true
}

func newNameAnswer(r *rank.Ranking, top int, ttl uint32, now time.Time, outcome, extra string) *nameAnswer {
	na := &nameAnswer{outcome: outcome, ttl: ttl, top: top, candidates: r.Len()}
	na.v4 = newHostGroups(r, top, ip4)
	na.v6 = newHostGroups(r, top, ip6)
	size := 0
	for i := range r.Nodes {
		if i == maxTXTRecords {
			break
		}
		n := &r.Nodes[i]
		txt := []string{
			attr("node", n.Name),
			attr("addr", nodeAddr(n)),
			attr("rank", strconv.Itoa(r.Rank(i))),
			attr("score", strconv.FormatFloat(n.Score, 'f', 2, 64)),
		}
		txt = append(txt, loadAttrs(n, now, false)...)
		if n.HerdLoad > 0 {
			txt = append(txt, attr("herd", strconv.FormatFloat(n.HerdLoad, 'f', 2, 64)))
		}
		if extra != "" {
			txt = append(txt, extra)
		}
		if size += txtWireLen(txt); size > maxTXTBytes {
			break
		}
		na.txt = append(na.txt, txt)
	}
	return na
}

// newHostGroups collects the addresses addr returns (nil: none of that
// family) of r's nodes, best first, up to the end of the group of equal
// score that holds the top-th of them.
func newHostGroups(r *rank.Ranking, top int, addr func(*rank.NodeStatus) net.IP) hostGroups {
	var h hostGroups
	lastRank := 0
	for i := range r.Nodes {
		a := addr(&r.Nodes[i])
		if a == nil {
			continue
		}
		if rank := r.Rank(i); rank != lastRank { // first of a group of equal scores
			if len(h.ips) >= top {
				break
			}
			h.groups = append(h.groups, len(h.ips))
			lastRank = rank
		}
		h.ips = append(h.ips, a)
	}
	h.groups = append(h.groups, len(h.ips))
	return h
}

// handles sets h's tallies and counters for the nodes of r whose address
// addr returns, in the order newHostGroups took them.
func (h *hostGroups) handles(r *rank.Ranking, addr func(*rank.NodeStatus) net.IP, in answerInputs) {
	if len(h.ips) == 0 {
		return
	}
	var names []string
	for i := range r.Nodes {
		if len(names) == len(h.ips) {
			break
		}
		if addr(&r.Nodes[i]) != nil {
			names = append(names, r.Nodes[i].Name)
		}
	}
	if in.herd != nil {
		h.tallies = make([]*herd.Tally, len(names))
		for i, n := range names {
			h.tallies[i] = in.herd.Tally(n)
		}
	}
	h.handed = make(map[string][]prometheus.Counter, len(in.servers))
	for _, s := range in.servers {
		cs := make([]prometheus.Counter, len(names))
		for i, n := range names {
			cs[i] = handedTotal.WithLabelValues(s, n)
		}
		h.handed[s] = cs
	}
}

// handedOut records that an answer for server holds h.ips[i] for every i
// in order.
func (h *hostGroups) handedOut(order []int, server string, hd *herd.Herd) {
	if hd != nil && h.tallies != nil {
		hd.HandedOut(h.tallies, order, time.Now())
	}
	if cs := h.handed[server]; cs != nil {
		for _, i := range order {
			cs[i].Inc()
		}
	}
}

// pick returns the indexes into h.ips of one answer: the top best, each
// group of equal scores shuffled afresh so equally good nodes share the
// load, and with a herd rotated by turn places (see hostGroups). The slice is new, on the heap (see nameRRs for why).
func (h *hostGroups) pick(top int, turn uint32) []int {
	order := make([]int, 0, min(len(h.ips), top+8))
	for g := 0; g+1 < len(h.groups) && len(order) < top; g++ {
		base := len(order)
		for i := h.groups[g]; i < h.groups[g+1]; i++ {
			order = append(order, i)
		}
		// A partial Fisher-Yates shuffle: only the places still free in
		// the answer need a random member of the group.
		grp := order[base:]
		want := min(len(grp), top-base)
		for i := 0; i < want && i < len(grp)-1; i++ {
			j := i + rand.IntN(len(grp)-i)
			grp[i], grp[j] = grp[j], grp[i]
		}
		order = order[:base+want]
	}
	if h.tallies != nil && len(order) > 1 {
		k := int(turn % uint32(len(order)))
		slices.Reverse(order[:k])
		slices.Reverse(order[k:])
		slices.Reverse(order)
	}
	return order
}

func newNodeAnswer(n *rank.NodeStatus, snap *rank.Snapshot, by rank.By) *nodeAnswer {
	txt := []string{
		attr("node", n.Name),
		attr("state", n.State),
		attr("candidate", strconv.FormatBool(n.Candidate)),
		attr("addr", nodeAddr(n)),
	}
	if a := ip6(n); a != nil && ip4(n) != nil {
		txt = append(txt, attr("addr6", a.String()))
	}
	if n.Gossip != "" {
		txt = append(txt, attr("gossip", n.Gossip))
	}
	if len(n.Pools) > 0 {
		txt = append(txt, attr("pools", strings.Join(n.Pools, ",")))
	}
	if n.Report != nil {
		txt = append(txt, attr("score", strconv.FormatFloat(rank.Score(n.Report.Load, snap.Score, by), 'f', 2, 64)))
	} else {
		txt = append(txt, attr("report", "none"))
	}
	txt = append(txt, loadAttrs(n, snap.Built, true)...)
	// The snapshot lists failing checks among the reasons too: show those
	// once, as checks.
	var checks []string
	if n.Report != nil {
		for _, c := range n.Report.Failing {
			if !c.OK {
				checks = append(checks, c.Name+": "+c.Reason)
			}
		}
	}
	for _, r := range n.Reasons {
		if !slices.Contains(checks, r) {
			txt = append(txt, attr("reason", r))
		}
	}
	for _, c := range checks {
		txt = append(txt, attr("check", c))
	}
	// A node's record cannot grow past what one reply holds: the reasons
	// and checks are the open-ended part, cut last first.
	for size := txtWireLen(txt); len(txt) > 1 && size > maxTXTBytes; txt = txt[:len(txt)-1] {
		size -= 1 + len(txt[len(txt)-1])
	}
	return &nodeAnswer{a4: ip4(n), a6: ip6(n), txt: txt}
}

// loadAttrs are the RFC 1464 attribute=value strings describing a node's
// latest report; full adds the less important ones.
func loadAttrs(n *rank.NodeStatus, now time.Time, full bool) []string {
	if n.Report == nil {
		return nil
	}
	l := n.Report.Load
	w := []string{attr("load1", strconv.FormatFloat(l.Load1, 'f', 2, 64))}
	if full {
		w = append(w,
			attr("load5", strconv.FormatFloat(l.Load5, 'f', 2, 64)),
			attr("load15", strconv.FormatFloat(l.Load15, 'f', 2, 64)))
	}
	w = append(w,
		attr("cpus", strconv.Itoa(l.CPUs)),
		attr("cpu", fmt.Sprintf("%.0f%%", 100*l.CPUUtil)),
		attr("mem_avail", fmt.Sprintf("%.0f%%", 100*l.MemAvailableFraction())))
	if full {
		w = append(w, attr("mem_total", humanBytes(l.MemTotal)), attr("swap_used", humanBytes(l.SwapUsed)))
		if l.CPUPressure >= 0 {
			w = append(w, attr("psi_cpu", fmt.Sprintf("%.1f%%", l.CPUPressure)))
		}
	}
	w = append(w, attr("users", strconv.Itoa(l.Users)))
	if full {
		w = append(w, attr("uptime", l.Uptime.Round(time.Second).String()))
	}
	age := max(n.Age(now), 0)
	return append(w, attr("age", age.Round(time.Second).String()))
}

func humanBytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return strconv.FormatUint(b, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit && exp < 4; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ci", float64(b)/float64(div), "KMGTP"[exp])
}

func ip4(n *rank.NodeStatus) net.IP {
	if n.Addr4.IsValid() && n.Addr4.Is4() {
		b := n.Addr4.As4()
		return net.IP(b[:])
	}
	return nil
}

func ip6(n *rank.NodeStatus) net.IP {
	if n.Addr6.IsValid() && n.Addr6.Is6() && !n.Addr6.Is4In6() {
		b := n.Addr6.As16()
		return net.IP(b[:])
	}
	return nil
}

func nodeAddr(n *rank.NodeStatus) string {
	if a := ip4(n); a != nil {
		return a.String()
	}
	if a := ip6(n); a != nil {
		return a.String()
	}
	return "none"
}

// Limits of the TXT answers.
const (
	// maxTXTString is the longest character-string a TXT record can hold.
	maxTXTString = 255
	// maxTXTRecords is how many ranked machines the virtual name's TXT
	// answer lists, best first: as many as the largest top, so every
	// machine an A answer can hold has its record. <node>.NAME shows any
	// other.
	maxTXTRecords = maxTop
	// maxTXTBytes bounds the RDATA of one TXT answer (the name's RRset, or
	// a node's record), so the reply with its owner names, a question and
	// RRSIGs always fits a 65,535-byte TCP message and is never truncated
	// there.
	maxTXTBytes = 32 << 10
)

// attr is one RFC 1464 attribute=value character-string. The attribute
// name is quoted as the RFC says (a backquote before "=", "`" and
// significant leading or trailing whitespace); the value is not, since
// the first unquoted "=" ends the name, so node names and reasons with
// spaces or "=" read back whole. The string is cut to the 255 bytes a
// character-string holds (at a UTF-8 boundary) and escaped for miekg/dns's
// presentation format.
func attr(name, value string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '=' || c == '`' || ((c == ' ' || c == '\t') && (i == 0 || i == len(name)-1)) {
			b.WriteByte('`')
		}
		b.WriteByte(c)
	}
	b.WriteByte('=')
	b.WriteString(value)
	s := b.String()
	if len(s) > maxTXTString {
		cut := maxTXTString
		for cut > maxTXTString-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return txtEscape(s)
}

// txtWireLen is the RDATA length of a TXT record with these (escaped)
// character-strings.
func txtWireLen(txt []string) int {
	n := 0
	for _, s := range txt {
		n += 1 + len(s) // an upper bound: escapes only shrink on the wire
	}
	return n
}

// txtEscape escapes s the way miekg/dns expects TXT strings: backslash and
// double quote with a backslash, other unprintable bytes as \DDD.
func txtEscape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' || c > '~' || c == '\\' || c == '"' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
