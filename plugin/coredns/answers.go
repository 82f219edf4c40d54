package peerload

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peerload/peerload/agent/rank"
)

// Outcomes of an answer, the `outcome` label of answers_total.
const (
	outcomeCandidates = "candidates" // the virtual name with live candidates
	outcomeFallback   = "fallback"   // the virtual name answered by the fallback
	outcomeNode       = "node"       // a <node>.<name> answer
	outcomeNoData     = "nodata"
	outcomeNXDomain   = "nxdomain"
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
	// v4 and v6 are the ranked nodes with an address of that family, so
	// an A answer holds top records while top IPv4 nodes exist however
	// many IPv6-only ones rank above them.
	v4, v6 hostGroups
	// txt is one TXT record (its strings) per ranked node, best first.
	txt [][]string
}

// hostGroups are the addresses of one family of ranked nodes, up to the
// end of the group of equal score that holds the top-th one; groups are
// the start index of each group followed by len(ips).
type hostGroups struct {
	ips    []net.IP
	groups []int
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

// buildAnswers precomputes the answers of cfg from snap. prev is the set
// published before (for fallback keep), never nil.
func buildAnswers(cfg *config, snap *rank.Snapshot, prev *answerSet) *answerSet {
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

	choice, kept := cfg.policy().Choose(snap, prev.kept)
	set.kept = kept
	if choice.Ranking.Len() > 0 {
		outcome, ttl, extra := outcomeCandidates, cfg.ttl, ""
		if choice.Fallback {
			outcome, ttl, extra = outcomeFallback, min(cfg.ttl, fallbackTTL), "fallback="+string(cfg.fallback)
		}
		na := newNameAnswer(choice.Ranking, cfg.top, ttl, snap.Built, outcome, extra)
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
	na := &nameAnswer{outcome: outcome, ttl: ttl, top: top}
	na.v4 = newHostGroups(r, top, ip4)
	na.v6 = newHostGroups(r, top, ip6)
	for i := range r.Nodes {
		n := &r.Nodes[i]
		words := []string{
			"node=" + n.Name,
			"addr=" + nodeAddr(n),
			"rank=" + strconv.Itoa(r.Rank(i)),
			"score=" + strconv.FormatFloat(n.Score, 'f', 2, 64),
		}
		words = append(words, loadWords(n, now, false)...)
		if extra != "" {
			words = append(words, extra)
		}
		na.txt = append(na.txt, txtStrings(words))
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

// pick returns the indexes into h.ips of one answer: the top best, each
// group of equal scores shuffled afresh so equally good nodes share the
// load. buf is reused when it is large enough.
func (h *hostGroups) pick(top int, buf []int) []int {
	order := buf[:0]
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
	return order
}

func newNodeAnswer(n *rank.NodeStatus, snap *rank.Snapshot, by rank.By) *nodeAnswer {
	words := []string{
		"node=" + n.Name,
		"state=" + n.State,
		"candidate=" + strconv.FormatBool(n.Candidate),
		"addr=" + nodeAddr(n),
	}
	if a := ip6(n); a != nil && ip4(n) != nil {
		words = append(words, "addr6="+a.String())
	}
	if n.Gossip != "" {
		words = append(words, "gossip="+n.Gossip)
	}
	if len(n.Pools) > 0 {
		words = append(words, "pools="+strings.Join(n.Pools, ","))
	}
	if n.Report != nil {
		words = append(words, "score="+strconv.FormatFloat(rank.Score(n.Report.Load, snap.Score, by), 'f', 2, 64))
	} else {
		words = append(words, "report=none")
	}
	words = append(words, loadWords(n, snap.Built, true)...)
	txt := txtStrings(words)
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
			txt = append(txt, txtStrings([]string{"reason=" + r})...)
		}
	}
	for _, c := range checks {
		txt = append(txt, txtStrings([]string{"check=" + c})...)
	}
	return &nodeAnswer{a4: ip4(n), a6: ip6(n), txt: txt}
}

// loadWords are the RFC 1464 attribute=value words describing a node's
// latest report; full adds the less important ones.
func loadWords(n *rank.NodeStatus, now time.Time, full bool) []string {
	if n.Report == nil {
		return nil
	}
	l := n.Report.Load
	w := []string{"load1=" + strconv.FormatFloat(l.Load1, 'f', 2, 64)}
	if full {
		w = append(w,
			"load5="+strconv.FormatFloat(l.Load5, 'f', 2, 64),
			"load15="+strconv.FormatFloat(l.Load15, 'f', 2, 64))
	}
	w = append(w,
		"cpus="+strconv.Itoa(l.CPUs),
		fmt.Sprintf("cpu=%.0f%%", 100*l.CPUUtil),
		fmt.Sprintf("mem_avail=%.0f%%", 100*l.MemAvailableFraction()))
	if full {
		w = append(w, "mem_total="+humanBytes(l.MemTotal), "swap_used="+humanBytes(l.SwapUsed))
		if l.CPUPressure >= 0 {
			w = append(w, fmt.Sprintf("psi_cpu=%.1f%%", l.CPUPressure))
		}
	}
	w = append(w, "users="+strconv.Itoa(l.Users))
	if full {
		w = append(w, "uptime="+l.Uptime.Round(time.Second).String())
	}
	age := max(n.Age(now), 0)
	return append(w, "age="+age.Round(time.Second).String())
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

// maxTXTString is the longest character-string a TXT record can hold.
const maxTXTString = 255

// txtStrings joins words with spaces into as few TXT character-strings as
// fit 255 bytes each, breaking only between words (or inside a word longer
// than that), escaped for miekg/dns's presentation format.
func txtStrings(words []string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, txtEscape(cur.String()))
			cur.Reset()
		}
	}
	for _, w := range words {
		for len(w) > maxTXTString {
			flush()
			out = append(out, txtEscape(w[:maxTXTString]))
			w = w[maxTXTString:]
		}
		if cur.Len() > 0 && cur.Len()+1+len(w) > maxTXTString {
			flush()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	flush()
	return out
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
