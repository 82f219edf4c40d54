package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/agenttest"
	"github.com/peerload/peerload/agent/gossip"
)

// TestMetricsSentByKind: an agent's /metrics splits what gossip sent by
// kind, one series for every kind, and the split adds up to the totals
// alert rules and dashboards already use. Gossip keeps sending between the
// reads of one scrape, so the test waits for a scrape during which nothing
// was sent.
func TestMetricsSentByKind(t *testing.T) {
	var regs []*prometheus.Registry
	agents, _ := agenttest.Cluster(t, 2, func(c *agent.Config) {
		reg := prometheus.NewRegistry()
		c.Registerer = reg
		regs = append(regs, reg)
	})
	tc := &testCluster{agents: agents}
	tc.waitCandidates(t, 2)
	for i, reg := range regs {
		agenttest.WaitFor(t, 20*time.Second, agents[i].Name()+"'s kinds to add up to its totals", func() (bool, string) {
			fams, err := reg.Gather()
			if err != nil {
				return false, err.Error()
			}
			bytes, _ := sum(fams, "peerload_gossip_bytes_sent_total")
			byKind, kinds := sum(fams, "peerload_gossip_bytes_sent_by_kind_total")
			packets, _ := sum(fams, "peerload_gossip_packets_sent_total")
			packetsByKind, packetKinds := sum(fams, "peerload_gossip_packets_sent_by_kind_total")
			want := slices.Sorted(slices.Values(gossip.Kinds()))
			wantPackets := slices.DeleteFunc(slices.Clone(want), func(k string) bool { return k == gossip.KindPushPull })
			if !slices.Equal(kinds, want) || !slices.Equal(packetKinds, wantPackets) {
				t.Fatalf("kinds: bytes %v, packets %v; want %v (packets without pushpull)", kinds, packetKinds, want)
			}
			return bytes > 0 && byKind == bytes && packetsByKind == packets,
				fmt.Sprintf("bytes %v by kind %v, packets %v by kind %v", bytes, byKind, packets, packetsByKind)
		})
	}
}

// sum is the sum of the counter name's series and their kind labels (in
// the order Gather sorts them).
func sum(fams []*dto.MetricFamily, name string) (float64, []string) {
	total, kinds := 0.0, []string{}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			total += m.GetCounter().GetValue()
			for _, l := range m.GetLabel() {
				if l.GetName() == "kind" {
					kinds = append(kinds, l.GetValue())
				}
			}
		}
	}
	return total, kinds
}
