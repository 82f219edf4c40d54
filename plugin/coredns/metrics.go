package peerload

import (
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// requestsTotal counts the queries peerload answered, by query type.
	requestsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "requests_total",
		Help:      "Counter of queries answered by peerload, by query type.",
	}, []string{"server", "qtype"})
	// answersTotal counts the answers by outcome: candidates, fallback,
	// node, nodata, nxdomain.
	answersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "answers_total",
		Help:      "Counter of peerload answers by outcome (candidates, fallback, node, nodata, nxdomain).",
	}, []string{"server", "outcome"})
	// candidatesGauge is the number of live candidates behind each virtual name.
	candidatesGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "candidates",
		Help:      "Number of live candidates for each virtual name.",
	}, []string{"server", "name"})
	// snapshotAgeGauge is how fresh the data behind the answers is: the age
	// of the newest report they were built from (the snapshot itself is
	// rebuilt all the time and says nothing about that).
	snapshotAgeGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "snapshot_age_seconds",
		Help:      "Age in seconds of the newest load report the answers are built from.",
	}, []string{"server"})
	// handedTotal counts the machines handed out in the virtual name's A
	// and AAAA answers, by node: what the herd counts, and how a burst
	// spread.
	handedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "handed_out_total",
		Help:      "Counter of machines handed out in answers for the virtual names, by node.",
	}, []string{"server", "node"})
	// membersGauge is the number of alive cluster members seen.
	membersGauge = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "peerload",
		Name:      "members",
		Help:      "Number of alive cluster members (collectors included) in the latest snapshot.",
	}, []string{"server"})
)
