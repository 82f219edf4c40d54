package test

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/report"
	"github.com/peerload/peerload/test/lab"
)

// walkSampler is a node whose load1 random-walks. Every sample carries its
// number in Uptime (whole seconds), so a receiver can tell exactly which
// sample a report came from and when that sample was taken.
type walkSampler struct {
	mu    sync.Mutex
	rnd   *rand.Rand
	load1 float64
	step  float64
	k     uint64
	taken []time.Time // taken[k] is when sample k was handed out
}

func (w *walkSampler) Sample() (report.Load, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.load1 = min(max(w.load1+w.rnd.NormFloat64()*w.step, 0), 16)
	w.k++
	w.taken = append(w.taken, time.Now())
	return report.Load{Load1: w.load1, Load5: w.load1, Load15: w.load1, CPUs: 4, MemTotal: 16 << 30,
		MemAvailable: 12 << 30, CPUPressure: -1, Uptime: time.Duration(w.k) * time.Second}, nil
}

func (w *walkSampler) takenAt(k uint64) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.taken[k-1]
}

// BenchmarkGossip runs in-process clusters with the LAN defaults (2 s
// sampling, 15 s refresh, encrypted gossip) whose loads random-walk, and
// reports how long a new report takes to reach every other member (from
// the moment the sample was taken) and what gossip sends per node.
// Run: go test -run '^$' -bench Gossip -benchtime 1x ./test/
func BenchmarkGossip(b *testing.B) {
	// The window spans whole push/pull periods (memberlist scales 30 s up
	// with the cluster: 30 s at N = 10, 90 s at N = 100), and at least
	// 90 s: with one 30 s period at N = 10 the bytes per second were
	// bimodal, about 200 or 310 B/s in runs of the same build, as a round
	// of full-state exchanges fell inside the window or not; over 90 s,
	// four runs of two builds measured 235 to 291 B/s.
	for _, n := range []int{10, 100} {
		window := max(memberlistPushPullScale(30*time.Second, n), 90*time.Second)
		if s := os.Getenv("PEERLOAD_BENCH_WINDOW"); s != "" {
			if d, err := time.ParseDuration(s); err == nil {
				window = d
			}
		}
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			for range b.N {
				benchCluster(b, n, window)
			}
		})
	}
}

// memberlistPushPullScale is memberlist's own scaling of the push/pull
// interval with the cluster size (its util.go pushPullScale).
func memberlistPushPullScale(interval time.Duration, n int) time.Duration {
	const threshold = 32
	if n <= threshold {
		return interval
	}
	mult := math.Ceil(math.Log2(float64(n))-math.Log2(threshold)) + 1.0
	return time.Duration(mult) * interval
}

// seen is when an observer first held a node's report k (its Seq; the
// sample it came from is in sampleOf).
type seen struct {
	k  uint64
	at time.Time
}

func benchCluster(b *testing.B, n int, window time.Duration) {
	key := make([]byte, 32)
	key[0] = 42
	samplers := make([]*walkSampler, n)
	agents := make([]*agent.Agent, n)
	for i := range n {
		c := agent.DefaultConfig()
		c.Name = fmt.Sprintf("bench%03d", i)
		c.BindAddr, c.BindPort = "127.0.0.1", 0
		c.StateDir = ""
		c.Checks.SSHPort = 0
		c.Checks.Root = b.TempDir()
		c.Keys = [][]byte{key}
		c.Addr4 = netip.AddrFrom4([4]byte{127, 0, 2, byte(i)})
		c.Logger = slog.New(slog.DiscardHandler)
		c.Memberlist.LogOutput = io.Discard
		samplers[i] = &walkSampler{rnd: rand.New(rand.NewPCG(uint64(i), 7)), load1: 0.5 + float64(i%8)/4, step: 0.05}
		c.Sampler = samplers[i]
		if i > 0 {
			c.Join = []string{agents[0].GossipAddr()}
		}
		a, err := agent.New(c)
		if err != nil {
			b.Fatal(err)
		}
		agents[i] = a
		defer a.Shutdown()
	}
	// Wait until every member holds a report from every other one.
	deadline := time.Now().Add(180 * time.Second)
	for {
		ok := true
		for _, a := range agents {
			if a.Snapshot().Rank("", "").Len() != n {
				ok = false
				break
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("cluster of %d did not converge in 180s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Each observer records when it first saw each sample number of each
	// node.
	var mu sync.Mutex
	firstSeen := make([]map[string][]seen, n)  // observer -> node -> increasing seq
	sampleOf := map[string]map[uint64]uint64{} // node -> seq -> sample number
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range agents {
		firstSeen[i] = map[string][]seen{}
		ch, cancel := a.Subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			for {
				select {
				case <-stop:
					return
				case <-ch:
				}
				now := time.Now()
				s := a.Snapshot()
				mu.Lock()
				for _, ns := range s.Nodes {
					if ns.Report == nil {
						continue
					}
					if ns.Name == a.Name() {
						// A node's own report is whole: its uptime is
						// the sample number (others may hold it rebuilt
						// from a compact entry, uptime approximate).
						if sampleOf[ns.Name] == nil {
							sampleOf[ns.Name] = map[uint64]uint64{}
						}
						sampleOf[ns.Name][ns.Report.Seq] = uint64(ns.Report.Load.Uptime / time.Second)
						continue
					}
					k := ns.Report.Seq
					l := firstSeen[i][ns.Name]
					if len(l) == 0 || l[len(l)-1].k < k {
						firstSeen[i][ns.Name] = append(l, seen{k, now})
					}
				}
				mu.Unlock()
			}
		}()
	}
	bytes0 := sumBytes(agents)
	start := time.Now()
	time.Sleep(window)
	bytes1 := sumBytes(agents)
	elapsed := time.Since(start)
	time.Sleep(2 * time.Second) // let the last reports land
	close(stop)
	wg.Wait()

	// For every report sent inside the window (a sample whose number some
	// observer saw), the time until the last other member had it or a newer
	// one.
	var lat []float64
	reports := 0
	for src := range agents {
		name := agents[src].Name()
		ks := map[uint64]bool{}
		for obs := range agents {
			for _, s := range firstSeen[obs][name] {
				ks[s.k] = true
			}
		}
		for k := range ks {
			sample, ok := sampleOf[name][k]
			if !ok {
				continue
			}
			taken := samplers[src].takenAt(sample)
			if taken.Before(start) || taken.After(start.Add(window)) {
				continue
			}
			reports++
			var worst time.Duration
			complete := true
			for obs := range agents {
				if obs == src {
					continue
				}
				l := firstSeen[obs][name]
				i, _ := slices.BinarySearchFunc(l, k, func(s seen, k uint64) int { return int(s.k) - int(k) })
				if i == len(l) {
					complete = false
					break
				}
				worst = max(worst, l[i].at.Sub(taken))
			}
			if complete {
				lat = append(lat, float64(worst)/float64(time.Millisecond))
			}
		}
	}
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatalf("no report reached every member inside the window")
	}
	perNode := float64(bytes1-bytes0) / float64(n) / elapsed.Seconds()
	b.ReportMetric(percentile(lat, 50), "p50-ms")
	b.ReportMetric(percentile(lat, 99), "p99-ms")
	b.ReportMetric(perNode, "B/s/node")
	b.ReportMetric(float64(reports)/float64(n)/elapsed.Seconds()*60, "reports/node/min")
	b.ReportMetric(float64(len(lat))/float64(max(reports, 1))*100, "complete-%")
}

func sumBytes(agents []*agent.Agent) uint64 {
	var t uint64
	for _, a := range agents {
		t += a.Stats().Bytes
	}
	return t
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// BenchmarkAgentIdle starts 10 real `peerload agent` processes with the
// LAN defaults on loopback and reports the median resident memory, CPU use
// and wake-ups (times one of its threads was put on a CPU, per second) of
// one agent while the cluster is idle.
// Run: make build && PEERLOAD_BIN=$PWD/bin go test -run '^$' -bench AgentIdle -benchtime 1x ./test/
func BenchmarkAgentIdle(b *testing.B) {
	for range b.N {
		agents := make([]*agentProc, 10)
		for i := range agents {
			opts := agentOptions{Name: fmt.Sprintf("idle%02d", i), Advertise: fmt.Sprintf("127.0.1.%d", i+1),
				Profile: "lan"}
			if i > 0 {
				opts.Join = []string{agents[0].Gossip()}
			}
			agents[i] = startAgent(b, opts)
		}
		waitFor(b, 30*time.Second, func() (bool, string) {
			res := runPeerload(b, "top", "-n", "10", "--api", agents[9].API())
			return len(res.Lines()) == 10, res.String()
		})
		time.Sleep(5 * time.Second) // settle: start-up allocations, first push/pulls
		s0 := make([]lab.Sched, len(agents))
		for i, a := range agents {
			s0[i] = procSched(b, agentPid(a))
		}
		start := time.Now()
		time.Sleep(20 * time.Second)
		elapsed := time.Since(start).Seconds()
		var rss, cpu, wakes []float64
		for i, a := range agents {
			s := procSched(b, agentPid(a))
			cpu = append(cpu, (s.CPU-s0[i].CPU)/elapsed*100)
			wakes = append(wakes, float64(s.Runs-s0[i].Runs)/elapsed)
			rss = append(rss, procRSSMB(b, agentPid(a)))
		}
		slices.Sort(rss)
		slices.Sort(cpu)
		slices.Sort(wakes)
		b.ReportMetric(percentile(rss, 50), "RSS-MB")
		b.ReportMetric(percentile(cpu, 50), "CPU-%")
		b.ReportMetric(percentile(wakes, 50), "wakeups/s")
		b.ReportMetric(rss[len(rss)-1], "max-RSS-MB")
	}
}

// procRSSMB is VmRSS of pid in MB.
func procRSSMB(b testing.TB, pid int) float64 {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

func procSched(b testing.TB, pid int) lab.Sched {
	s, err := lab.ProcSched(pid)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func agentPid(a *agentProc) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cmd.Process.Pid
}
