package lab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Metrics are the metric families of one /metrics scrape, by name.
type Metrics map[string]*dto.MetricFamily

// Value sums the samples of the counter, gauge or untyped metric name whose
// labels include every name=value pair given in labels; -1 when the
// family is missing.
func (m Metrics) Value(name string, labels ...string) float64 {
	fam, ok := m[name]
	if !ok {
		return -1
	}
	sum := 0.0
	for _, s := range fam.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.GetCounter().GetValue()
		case s.Gauge != nil:
			sum += s.GetGauge().GetValue()
		case s.Untyped != nil:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(s *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range s.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Memory is a process's resident memory in kB from /proc/PID/status.
type Memory struct {
	// RSS (VmRSS) is everything resident, including the pages of the
	// binary and libraries, which the kernel drops from memory and faults
	// back in under memory pressure.
	RSS int64
	// Anon (RssAnon) is the anonymous part: heap, stacks, runtime. This
	// is what a leak grows.
	Anon int64
}

// ReadMemory reads VmRSS and RssAnon of a process.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range []struct {
			prefix string
			dst    *int64
		}{{"VmRSS:", &m.RSS}, {"RssAnon:", &m.Anon}} {
			if rest, ok := strings.CutPrefix(sc.Text(), field.prefix); ok {
				v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err != nil {
					return Memory{}, fmt.Errorf("/proc/%d/status: %s %w", pid, field.prefix, err)
				}
				*field.dst = v
				found++
			}
		}
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("/proc/%d/status: no VmRSS or RssAnon", pid)
	}
	return m, nil
}
