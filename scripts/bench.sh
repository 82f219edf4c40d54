#!/usr/bin/env bash
# bench.sh: every benchmark of the project, written to BENCHMARKS.md (and
# printed). Run it as `make bench` (builds bin/ and installs dnsperf, bind9
# and dig first). Takes about 55 minutes on 2 cores.
#
#   1. gossip: in-process clusters of 10 and 100 agents (LAN defaults,
#      encrypted, loads random-walking): propagation p50/p99 of a report to
#      every other member, gossip bytes sent per node per second
#   2. idle agent: 10 real `peerload agent` processes, median RSS and CPU
#   3. DNS: dnsperf, peerload answers vs the file plugin, same process
#   4. RFC 2136: load change -> BIND answers, UPDATEs under noise
#   5. status page: render time and weight at 500 machines, history memory
#   6. Caddy: wrk through lb_policy peerload vs random, the policy's ns
#   7. gossip at scale: 100 real agents in the namespace lab, 1,000
#      simulated, each idea of the design weighed, PeerMon's row (root)
#   8. where an idle agent's memory goes
#   9. class start: three placement arms side by side in the namespace lab
#      (real agents, CoreDNS, BIND resolvers, getent) against the simulator
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERLOAD_BIN=${PEERLOAD_BIN:-$PWD/bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

say() { echo "bench: $*" >&2; }

# metric LINE UNIT: the value printed before UNIT in a go test -bench line.
metric() { awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) print $(i-1) }' <<<"$1"; }

say "gossip clusters (N=10, N=100; about 4 minutes)"
go test -count=1 -timeout 10m -run '^$' -bench '^BenchmarkGossip$' -benchtime 1x ./test/ >"$out/gossip.txt" 2>&1 ||
	{ cat "$out/gossip.txt" >&2; exit 1; }
say "idle agents (about 45 s)"
go test -count=1 -timeout 5m -run '^$' -bench '^BenchmarkAgentIdle$' -benchtime 1x ./test/ >"$out/idle.txt" 2>&1 ||
	{ cat "$out/idle.txt" >&2; exit 1; }
say "DNS (about 70 s)"
scripts/bench-dns.sh >"$out/dns.md"
say "RFC 2136 (about 2 minutes)"
scripts/bench-rfc2136.sh >"$out/rfc2136.md"
say "status page (about 30 s)"
scripts/bench-status.sh >"$out/status.md"
say "Caddy (about 90 s)"
scripts/bench-caddy.sh >"$out/caddy.md"
say "gossip at scale (about 20 minutes)"
scripts/bench-scale.sh >"$out/scale.md"
say "idle agent memory (about 2 minutes)"
scripts/bench-memory.sh >"$out/memory.md"
say "class start (about 18 minutes)"
scripts/bench-classstart.sh >"$out/classstart.md"

g10=$(grep 'BenchmarkGossip/N=10-' "$out/gossip.txt")
g100=$(grep 'BenchmarkGossip/N=100-' "$out/gossip.txt")
idle=$(grep 'BenchmarkAgentIdle' "$out/idle.txt" | grep ns/op)
row() {
	printf '| %s | %s ms | %s ms | %s B/s | %s | %s %% |\n' "$1" "$(metric "$2" p50-ms)" "$(metric "$2" p99-ms)" \
		"$(metric "$2" B/s/node)" "$(metric "$2" reports/node/min)" "$(metric "$2" complete-%)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

{
	cat <<EOF
# Benchmarks

Produced by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d), $(getconf _NPROCESSORS_ONLN) CPUs
($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(go env GOVERSION). The machine is
shared and noisy: every figure is a median or a percentile over many events in one run, and
comparisons are measured side by side in the same run.

## Gossip: propagation and cost (test/bench_gossip_test.go)

\`go test -run '^\$' -bench '^BenchmarkGossip\$' -benchtime 1x ./test/\`

Whole clusters in one process on 127.0.0.1 with the LAN defaults (2 s sampling, 15 s refresh,
memberlist's LAN timings, AES-GCM encryption). Every node's load1 random-walks (σ = 0.05 per
sample on 4 CPUs). Latency runs from the moment a sample is taken to the moment the *last* other
member's snapshot holds that report (or a newer one); bytes are everything gossip sends (probes,
reports, push/pull), counted at the transport over 90 s: whole push/pull periods (three at N = 10,
one at N = 100), since every member's full-state exchange costs more than a minute of reports. All members share the same 2 cores, so N = 100
runs 100 agents on 2 cores.

| cluster | p50 | p99 | sent per node | reports per node per min | reports that reached everyone |
|---|---:|---:|---:|---:|---:|
$(row "N = 10" "$g10")
$(row "N = 100" "$g100")

Sent per node at N = 100: **$(ratio "$(metric "$g100" B/s/node)" 1700)** of the 1.7 kB/s goal. Reports reach
collectors at once and agents within a relay period (two hops through the grid; see "Gossip at
scale" below for the goals, measured on the wire under a class-start load).

## Idle agent (10 processes)

\`make build && PEERLOAD_BIN=\$PWD/bin go test -run '^\$' -bench '^BenchmarkAgentIdle\$' -benchtime 1x ./test/\`

Ten \`bin/peerload agent\` processes on loopback with the LAN defaults and an idle load, measured
over 20 s after a 5 s settle: median VmRSS **$(metric "$idle" RSS-MB) MB** (largest $(metric "$idle" max-RSS-MB) MB;
target ≤ 12 MB), median CPU **$(metric "$idle" CPU-%) %** of one core (target ≤ 0.2 %), median
wake-ups **$(metric "$idle" wakeups/s) per second** (times one of its threads was put on a CPU,
from /proc/PID/task/*/schedstat; target ≤ 2).

EOF
	# The parts' own headings become sections of this page.
	sed 's/^### /## /' "$out/dns.md"
	echo
	# Herd-awareness against 0.1.0, measured by hand (issue 21).
	cat docs/herd-dns.md
	echo
	sed 's/^### /## /' "$out/rfc2136.md"
	echo
	sed 's/^### /## /' "$out/status.md"
	echo
	echo "<!-- BEGIN bench-caddy -->"
	sed 's/^### /## /' "$out/caddy.md"
	echo "<!-- END bench-caddy -->"
	# The placement section comes from `peerload simulate` (deterministic
	# for a seed; docs/placement.md says how it was made).
	if [ -f docs/placement.md ]; then echo; cat docs/placement.md; fi
	echo
	sed 's/^### /## /' "$out/scale.md"
	echo
	sed 's/^### /## /' "$out/memory.md"
	echo
	# Findings measured by hand, kept in docs/ so that this run keeps them.
	for f in docs/idle-floor.md docs/cli-choice.md; do cat "$f"; echo; done
	echo "<!-- BEGIN bench-classstart -->"
	sed 's/^### /## /' "$out/classstart.md"
	echo "<!-- END bench-classstart -->"
	# The soak section comes from `make soak` (scripts/soak.sh), the long
	# fuzzing one from `make fuzz-long`.
	if [ -f docs/soak.md ]; then echo; cat docs/soak.md; fi
	if [ -f docs/fuzz.md ]; then echo; cat docs/fuzz.md; fi
} >BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
cat BENCHMARKS.md
