package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// corednsProc is a running bin/coredns.
type corednsProc struct {
	DNSPort     int
	ReadyAddr   string
	MetricsAddr string
	Corefile    string
	cmd         *exec.Cmd
	done        chan struct{}
	log         *lockedBuffer
}

// corednsOptions rewrite Corefile.example for a test.
type corednsOptions struct {
	Join []string // gossip host:port the member joins
	Top  int      // 0 keeps the example's top
}

// startCoreDNS runs bin/coredns with Corefile.example, its ports replaced
// by free ones, its join list by opts.Join and the zone file by the
// repository's, and waits until /ready answers 200 (peerload joined and
// holds reports).
func startCoreDNS(t *testing.T, opts corednsOptions) *corednsProc {
	t.Helper()
	example, err := os.ReadFile(filepath.Join("..", "Corefile.example"))
	if err != nil {
		t.Fatalf("Corefile.example: %v", err)
	}
	zone, err := filepath.Abs(filepath.Join("..", "zones", "db.example.edu"))
	if err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 5)
	c := &corednsProc{
		DNSPort:     ports[0],
		ReadyAddr:   fmt.Sprintf("127.0.0.1:%d", ports[2]),
		MetricsAddr: fmt.Sprintf("127.0.0.1:%d", ports[3]),
		log:         &lockedBuffer{},
	}
	corefile := string(example)
	replace := func(old, new string) {
		t.Helper()
		if !strings.Contains(corefile, old) {
			t.Fatalf("Corefile.example no longer contains %q", old)
		}
		corefile = strings.ReplaceAll(corefile, old, new)
	}
	replace("example.edu:1053", fmt.Sprintf("example.edu:%d", c.DNSPort))
	replace("health 127.0.0.1:8091", fmt.Sprintf("health 127.0.0.1:%d", ports[1]))
	replace("ready 127.0.0.1:8181", "ready "+c.ReadyAddr)
	replace("prometheus 127.0.0.1:9153", "prometheus "+c.MetricsAddr)
	replace("bind 127.0.0.1:7950", fmt.Sprintf("bind 127.0.0.1:%d", ports[4]))
	replace("join 127.0.0.1:7946", "join "+strings.Join(opts.Join, " "))
	replace("file zones/db.example.edu", "file "+zone)
	if opts.Top > 0 {
		replace("top 8", "top "+strconv.Itoa(opts.Top))
	}
	return runCoreDNS(t, c, corefile)
}

// runCoreDNS starts bin/coredns on corefile in a temporary directory for
// c (whose ReadyAddr the Corefile's ready plugin listens on), stops it in
// t.Cleanup (printing its log when the test failed) and waits until
// /ready answers 200: every peerload block joined and holds reports.
func runCoreDNS(t *testing.T, c *corednsProc, corefile string) *corednsProc {
	t.Helper()
	c.Corefile = corefile
	if c.log == nil {
		c.log = &lockedBuffer{}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(path, []byte(corefile), 0o644); err != nil {
		t.Fatal(err)
	}

	c.cmd = exec.Command(binPath(t, "coredns"), "-conf", path)
	c.cmd.Dir = dir
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start coredns: %v", err)
	}
	c.done = make(chan struct{})
	go func() {
		err := c.cmd.Wait()
		fmt.Fprintf(c.log, "--- exit: %v\n", err)
		close(c.done)
	}()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("Corefile:\n%s\ncoredns log:\n%s", c.Corefile, c.log.String())
		}
	})
	waitFor(t, 30*time.Second, func() (bool, string) {
		select {
		case <-c.done:
			t.Fatalf("coredns exited: %s", c.log.String())
		default:
		}
		code, body := httpGet(c.ReadyAddr, "/ready")
		return code == http.StatusOK, fmt.Sprintf("ready: %d %s", code, body)
	})
	return c
}

func (c *corednsProc) stop() {
	if !signalWait(c.cmd, c.done, syscall.SIGTERM, 10*time.Second) {
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func httpGet(addr, path string) (int, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

// digSet is the sorted +short answer of qname/qtype, over TCP when tcp.
func digSet(t *testing.T, c *corednsProc, qname, qtype string, tcp bool) []string {
	t.Helper()
	args := []string{qname, qtype}
	if tcp {
		args = append(args, "+tcp")
	}
	got := digShort(t, "127.0.0.1", c.DNSPort, args...)
	slices.Sort(got)
	return got
}

// digTXT is the TXT answer of qname, one RFC 1464 attribute map per
// record, in rank order (as dig prints them).
func digTXT(t *testing.T, c *corednsProc, qname string, tcp bool) []map[string]string {
	t.Helper()
	args := []string{qname, "TXT"}
	if tcp {
		args = append(args, "+tcp")
	}
	var out []map[string]string
	for _, line := range digShort(t, "127.0.0.1", c.DNSPort, args...) {
		attrs, err := parseTXTAttrs(line)
		if err != nil {
			t.Fatalf("%s TXT: %v", qname, err)
		}
		out = append(out, attrs)
	}
	return out
}

// parseTXTAttrs reads one TXT record as dig prints it ("a=1" "b=2 3") as
// RFC 1464 attributes: each character-string is one attribute=value, the
// name ending at the first "=" not quoted by a backquote. It fails on a
// string without one, or on an attribute given twice.
func parseTXTAttrs(line string) (map[string]string, error) {
	attrs := map[string]string{}
	for _, s := range digStrings(line) {
		var name strings.Builder
		value, found := "", false
		for i := 0; i < len(s) && !found; i++ {
			switch c := s[i]; {
			case c == '`' && i+1 < len(s):
				i++
				name.WriteByte(s[i])
			case c == '=':
				value, found = s[i+1:], true
			default:
				name.WriteByte(c)
			}
		}
		if !found || name.Len() == 0 {
			return nil, fmt.Errorf("%q in %s is not attribute=value", s, line)
		}
		if _, dup := attrs[name.String()]; dup {
			return nil, fmt.Errorf("attribute %q twice in %s", name.String(), line)
		}
		attrs[name.String()] = value
	}
	return attrs, nil
}

// digStrings splits dig's presentation of a TXT record into its
// character-strings, undoing the \" \\ and \DDD escapes.
func digStrings(line string) []string {
	var out []string
	for i := 0; i < len(line); i++ {
		if line[i] != '"' {
			continue
		}
		var b strings.Builder
		for i++; i < len(line) && line[i] != '"'; i++ {
			if line[i] == '\\' && i+3 < len(line) && isDigits(line[i+1:i+4]) {
				n, _ := strconv.Atoi(line[i+1 : i+4])
				b.WriteByte(byte(n))
				i += 3
				continue
			}
			if line[i] == '\\' && i+1 < len(line) {
				i++
			}
			b.WriteByte(line[i])
		}
		out = append(out, b.String())
	}
	return out
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// TestDNS drives bin/coredns (Corefile.example) in front of three real
// agent processes with fake proc roots: answers follow load, drain and
// crashes within seconds, over UDP and TCP, and the DNS server never
// answers with itself.
func TestDNS(t *testing.T) {
	requireProgram(t, "dig")
	agents := startCluster(t, "lab", 3)
	all := []string{"127.0.1.1", "127.0.1.2", "127.0.1.3"}
	c := startCoreDNS(t, corednsOptions{Join: []string{agents[0].Gossip()}, Top: 2})

	// waitAnswer polls until every answer (UDP and TCP) for the virtual name
	// is exactly want (sorted), five polls in a row: equally loaded agents
	// are handed out in random order, so a single matching answer may come
	// by chance before the change under test has arrived.
	waitAnswer := func(what string, want ...string) {
		t.Helper()
		streak := 0
		waitFor(t, 15*time.Second, func() (bool, string) {
			udp := digSet(t, c, "cslab.example.edu", "A", false)
			tcp := digSet(t, c, "cslab.example.edu", "A", true)
			if slices.Equal(udp, want) && slices.Equal(tcp, want) {
				streak++
			} else {
				streak = 0
			}
			return streak >= 5,
				fmt.Sprintf("%s: A over UDP %v, over TCP %v, want %v (%d in a row)", what, udp, tcp, want, streak)
		})
	}

	t.Run("equal load spreads", func(t *testing.T) {
		seen := map[string]bool{}
		waitFor(t, 15*time.Second, func() (bool, string) {
			got := digSet(t, c, "cslab.example.edu", "A", false)
			if len(got) != 2 {
				return false, fmt.Sprintf("A = %v, want 2 records", got)
			}
			for _, ip := range got {
				if !slices.Contains(all, ip) {
					t.Fatalf("answer %s is not one of the agents %v", ip, all)
				}
				seen[ip] = true
			}
			return len(seen) == 3, fmt.Sprintf("after repeated queries saw only %v of 3 equally loaded agents", seen)
		})
	})

	t.Run("load changes", func(t *testing.T) {
		agents[0].Opts.Proc.SetLoad(t, 12, 12, 12)
		waitAnswer("lab1 loaded", "127.0.1.2", "127.0.1.3")
		agents[0].Opts.Proc.SetLoad(t, 0.1, 0.1, 0.1)
		agents[1].Opts.Proc.SetLoad(t, 12, 12, 12)
		waitAnswer("lab2 loaded", "127.0.1.1", "127.0.1.3")
		agents[1].Opts.Proc.SetLoad(t, 0.1, 0.1, 0.1)
	})

	t.Run("TXT", func(t *testing.T) {
		var txt []map[string]string
		waitFor(t, 15*time.Second, func() (bool, string) {
			txt = digTXT(t, c, "cslab.example.edu", false)
			return len(txt) == 3, fmt.Sprintf("TXT = %q, want one record per agent", txt)
		})
		slices.SortFunc(txt, func(a, b map[string]string) int { return strings.Compare(a["node"], b["node"]) })
		for i, attrs := range txt {
			if attrs["node"] != fmt.Sprintf("lab%d", i+1) || !strings.HasPrefix(attrs["addr"], "127.0.1.") || attrs["rank"] == "" ||
				attrs["load1"] == "" || attrs["cpus"] != "4" {
				t.Errorf("TXT %q: want node=lab%d, its address, rank and the load", attrs, i+1)
			}
		}
		node := digTXT(t, c, "lab2.cslab.example.edu", true)
		if len(node) != 1 || node[0]["node"] != "lab2" || node[0]["state"] != "alive" || node[0]["candidate"] != "true" ||
			node[0]["addr"] != "127.0.1.2" {
			t.Errorf("lab2 TXT = %q", node)
		}
		if got := digSet(t, c, "LAB2.CsLab.example.edu", "A", false); !slices.Equal(got, []string{"127.0.1.2"}) {
			t.Errorf("LAB2.CsLab A = %v, want 127.0.1.2", got)
		}
	})

	t.Run("negative answers and the static zone", func(t *testing.T) {
		out := runDig(t, "127.0.0.1", c.DNSPort, "nope.cslab.example.edu", "A")
		if !strings.Contains(out, "status: NXDOMAIN") || !strings.Contains(out, "IN\tSOA\tns.example.edu.") || !strings.Contains(out, " aa") {
			t.Errorf("unknown node: want authoritative NXDOMAIN with the SOA, got\n%s", out)
		}
		out = runDig(t, "127.0.0.1", c.DNSPort, "cslab.example.edu", "MX")
		if !strings.Contains(out, "status: NOERROR") || !strings.Contains(out, "ANSWER: 0") || !strings.Contains(out, "SOA") {
			t.Errorf("MX: want NODATA with the SOA, got\n%s", out)
		}
		if got := digSet(t, c, "www.example.edu", "A", false); !slices.Equal(got, []string{"192.0.2.80"}) {
			t.Errorf("www.example.edu (file plugin) = %v", got)
		}
		if got := digSet(t, c, "static5.example.edu", "A", false); len(got) != 5 {
			t.Errorf("static5.example.edu (file plugin) = %v, want 5 records", got)
		}
	})

	t.Run("drain", func(t *testing.T) {
		res := runPeerload(t, "drain", "--control", agents[2].Control(), "--reason", "maintenance")
		if res.Code != 0 {
			t.Fatalf("drain: %s", res)
		}
		waitAnswer("lab3 drained", "127.0.1.1", "127.0.1.2")
		waitFor(t, 10*time.Second, func() (bool, string) {
			node := digTXT(t, c, "lab3.cslab.example.edu", false)
			return len(node) == 1 && node[0]["candidate"] == "false" && strings.Contains(fmt.Sprint(node[0]), "maintenance"),
				fmt.Sprintf("lab3 TXT = %q, want candidate=false with the drain reason", node)
		})
		if res := runPeerload(t, "undrain", "--control", agents[2].Control()); res.Code != 0 {
			t.Fatalf("undrain: %s", res)
		}
		waitFor(t, 15*time.Second, func() (bool, string) {
			txt := digTXT(t, c, "cslab.example.edu", false)
			return len(txt) == 3, fmt.Sprintf("after undrain TXT = %q, want 3 candidates", txt)
		})
	})

	t.Run("reload keeps the member", func(t *testing.T) {
		// SIGUSR1 reloads the Corefile: the new instance starts before the
		// old one stops, and must share the gossip member and its port.
		_ = c.cmd.Process.Signal(syscall.SIGUSR1)
		waitFor(t, 15*time.Second, func() (bool, string) {
			log := c.log.String()
			return strings.Contains(log, "Reloading complete"), "waiting for the reload"
		})
		if log := c.log.String(); strings.Contains(log, "address already in use") || strings.Contains(log, "Restart failed") {
			t.Fatalf("reload failed:\n%s", log)
		}
		if got := digSet(t, c, "cslab.example.edu", "A", false); len(got) != 2 {
			t.Errorf("after reload A = %v, want 2 records", got)
		}
	})

	t.Run("crash", func(t *testing.T) {
		agents[0].Kill()
		waitAnswer("lab1 killed", "127.0.1.2", "127.0.1.3")
		waitFor(t, 10*time.Second, func() (bool, string) {
			txt := digTXT(t, c, "cslab.example.edu", false)
			return len(txt) == 2 && txt[0]["node"] != "lab1" && txt[1]["node"] != "lab1",
				fmt.Sprintf("TXT after kill = %q", txt)
		})
	})

	t.Run("metrics", func(t *testing.T) {
		code, body := httpGet(c.MetricsAddr, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("metrics: %d", code)
		}
		for _, m := range []string{
			`coredns_peerload_requests_total{qtype="A",server="dns://127.0.0.1:` + strconv.Itoa(c.DNSPort) + `"}`,
			`coredns_peerload_answers_total{outcome="candidates"`,
			`coredns_peerload_answers_total{outcome="nxdomain"`,
			`coredns_peerload_candidates{name="cslab.example.edu.",server="dns://127.0.0.1:` + strconv.Itoa(c.DNSPort) + `"} 2`,
			`coredns_peerload_members{server=`,
			`coredns_peerload_snapshot_age_seconds{server=`,
		} {
			if !strings.Contains(body, m) {
				t.Errorf("metrics lack %s", m)
			}
		}
	})
}
