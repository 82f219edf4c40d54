#!/usr/bin/env bash
# bench-scale.sh: gossip at scale (issue 9), printed as a markdown section
# for BENCHMARKS.md. Needs root (network namespaces) and bin/ built.
# Takes about 15 minutes on 2 cores.
#
#   1. BenchmarkLabScale: 100 real `peerload agent` processes in the
#      namespace lab (test/lab), a collector agent and two CoreDNS: wire
#      bytes from interface counters, CPU and RSS from /proc, latency to
#      the collector and to every agent, kill -9 under DNS load;
#   2. BenchmarkScale at N = 1,000 (and 100): the real gossip code,
#      memberlist included, over an in-memory network with LAN latency;
#   3. BenchmarkIdeas: each idea of the design turned off in turn on one
#      simulated cluster of 100;
#   4. PeerMon's cost from its constants, in the same accounting.
#
# PEERLOAD_SCALE_SIM=FILE takes the simulated clusters' results from FILE
# (the output of an earlier BenchmarkScale run) instead of running them
# again; the section then says so.
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERLOAD_BIN=${PEERLOAD_BIN:-$PWD/bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
say() { echo "bench-scale: $*" >&2; }

say "100 real agents in the namespace lab (about 6 minutes)"
go test -count=1 -timeout 20m -run '^$' -bench '^BenchmarkLabScale$' -benchtime 1x ./test/ >"$out/lab.txt" 2>&1 ||
	{ cat "$out/lab.txt" >&2; exit 1; }
simNote=""
if [ -n "${PEERLOAD_SCALE_SIM:-}" ]; then
	cp "$PEERLOAD_SCALE_SIM" "$out/sim.txt"
	simNote=" The simulated figures come from an earlier run of the same benchmark ($(sed -n 's/^# run: //p' "$out/sim.txt"), not from this run."
else
	sizes=${PEERLOAD_SCALE_SIZES:-100,1000}
	say "simulated clusters of $sizes (1,000: about 25 minutes)"
	PEERLOAD_SCALE_N=$sizes go test -count=1 -timeout 60m -run '^$' -bench '^BenchmarkScale$' -benchtime 1x ./agent/gossip/ >"$out/sim.txt" 2>&1 ||
		{ cat "$out/sim.txt" >&2; exit 1; }
fi
say "each idea turned off in turn (about 5 minutes)"
go test -count=1 -timeout 20m -run '^$' -bench '^BenchmarkIdeas$' -benchtime 1x ./agent/gossip/ >"$out/ideas.txt" 2>&1 ||
	{ cat "$out/ideas.txt" >&2; exit 1; }

lab=$(grep '^BenchmarkLabScale' "$out/lab.txt")
s100=$(grep '^BenchmarkScale/N=100-' "$out/sim.txt")
s1000=$(grep '^BenchmarkScale/N=1000-' "$out/sim.txt" || true)
ideas=$(grep '^BenchmarkIdeas' "$out/ideas.txt")
# m LINE UNIT: the value before UNIT ("nan" when the run is missing).
m() {
	[ -n "$1" ] || { echo nan; return; }
	awk -v u="$2" '{ for (i = 2; i <= NF; i++) if ($i == u) print $(i-1) }' <<<"$1"
}
# f FORMAT VALUE [SCALE]: VALUE × SCALE printed with FORMAT.
f() { awk -v v="$2" -v s="${3:-1}" -v fmt="$1" 'BEGIN { if (v == "nan" || v == "") printf "—"; else printf fmt, v * s }'; }
kb() { f '%.2f' "$1" 0.001; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || a == "") printf "—"; else printf "%.2f", a / b }'; }
# share PART WHOLE: PART as a percentage of WHOLE.
share() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "nan" || a == "" || b == "" || b == 0) printf "—"; else printf "%.0f", a / b * 100 }'; }
# largest LINE: the category with the most bytes per agent, and its share
# of all of them.
largest() {
	[ -n "$1" ] || { echo "not measured"; return; }
	awk '{ for (i = 2; i <= NF; i++) if ($i == "all-B/s/agent") all = $(i-1); else if ($i ~ /^[a-z-]+-B\/s\/agent$/ && $i !~ /^p99-/ && $(i-1) + 0 > best) { best = $(i-1) + 0; name = $i } }
		END { if (name == "" || all == "") print "not measured"; else { sub(/-B\/s\/agent$/, "", name); printf "%s (%.0f %% of all bytes)\n", name, best / all * 100 } }' <<<"$1"
}
# verdict VALUE GOAL: "met", "missed by N %" or "not measured".
verdict() { awk -v v="$1" -v g="$2" 'BEGIN { if (v == "nan") print "not measured"; else if (v + 0 <= g) print "met"; else printf "missed by %.0f %%\n", (v / g - 1) * 100 }'; }

# PeerMon: every 5 s a node sends its whole table (28 B per node) to 3
# peers in one UDP datagram: 8 B of UDP header, IP fragments of at most
# 1480 B each with a 20 B IP header.
peermon() { awk -v n="$1" 'BEGIN { p = 28 * n + 8; frags = int((p + 1479) / 1480); printf "%.0f", (p + 20 * frags) * 3 / 5 }'; }
# Its freshness: 5 s a hop, log4(N) hops (each node feeds 3 peers).
peermonAge() { awk -v n="$1" 'BEGIN { printf "%.0f", 5 * log(n) / log(4) }'; }
pm100=$(peermon 100)
pm1000=$(peermon 1000)

labB=$(m "$lab" B/s/agent)
simB=$(m "$s1000" B/s/agent)
cat <<EOF
### Gossip at scale: 100 real agents, 1,000 simulated (issue 9)

\`go test -run '^\$' -bench '^BenchmarkLabScale\$' -benchtime 1x ./test/\` (root: network namespaces),
\`PEERLOAD_SCALE_N=100,1000 go test -run '^\$' -bench '^BenchmarkScale\$' -benchtime 1x ./agent/gossip/\` and
\`go test -run '^\$' -bench '^BenchmarkIdeas\$' -benchtime 1x ./agent/gossip/\` (scripts/bench-scale.sh).

The load model is a class starting: every machine's load1 random-walks with σ = 0.1 per core per
second (4 cores: 0.57 per 2 s sample; load5 and load15 follow as the kernel's averages), so
about $(f '%.2f' "$(m "$s100" reports/node/s)") reports per node per second matter. Bytes are counted as the wire carries
them: every packet once, IP and UDP/TCP headers included (not Ethernet's), AES-GCM and the
cluster label included. **N = 100** is real processes: 100 \`peerload agent\` (LAN defaults, a
keyring and a label), each in its own network namespace with its own proc root, plus a collector
agent and two CoreDNS (one for the lab, one for the \`gpu\` pool of 10 machines): bytes from each
namespace's interface counters over 60 s, CPU (the threads' run time, /proc/PID/task/*/schedstat) and RSS from /proc, a sample's time
from a clock file every agent reads as its uptime (so each report carries when it was taken), the
collector's table polled every 100 ms, every agent's table once a second (agent latency to
±0.5 s), and kill -9 of the first machine of each CoreDNS answer under 20 queries/s each.
**N = 1,000** is the same gossip code (memberlist with the LAN profile, AES-GCM, a label, the
relay) for 1,000 agents and two collectors in one process over an in-memory network with
0.1–0.5 ms of latency a packet (TCP acks not counted); latency is exact there. The machine is 2
shared cores: one process runs all 1,000 members, and timers fire late when it is busy, so the
simulated latencies are upper bounds.$simNote Medians over agents unless marked p99; latencies are the
time until the *last* collector (agent) held a sample or a newer one, p99 over all samples.

| figure | goal N = 100 | **measured, 100 processes** | goal N = 1,000 | **measured, 1,000 simulated** | PeerMon N = 100 | PeerMon N = 1,000 |
|---|---:|---:|---:|---:|---:|---:|
| bytes sent per agent | ≤ 1.7 kB/s | **$(kb "$labB") kB/s** (p99 $(kb "$(m "$lab" p99-B/s/agent)")) | ≤ 5 kB/s | **$(kb "$simB") kB/s** (p99 $(kb "$(m "$s1000" p99-B/s/agent)")) | $(kb "$pm100") kB/s | $(kb "$pm1000") kB/s |
| all bytes on the wire ÷ agents (issue 24) | ≤ 1.2 kB/s | **$(kb "$(m "$lab" all-B/s/agent)") kB/s** | ≤ 4 kB/s | **$(kb "$(m "$s1000" all-B/s/agent)") kB/s** | | |
| a sample reaches every collector, p99 | ≤ 0.3 s | **$(f '%.2f' "$(m "$lab" collector-p99-s)") s** (p50 $(f '%.3f' "$(m "$lab" collector-p50-s)")) | ≤ 0.5 s | **$(f '%.2f' "$(m "$s1000" collector-p99-s)") s** (p50 $(f '%.3f' "$(m "$s1000" collector-p50-s)")) | ≈ $(peermonAge 100) s | ≈ $(peermonAge 1000) s |
| a sample reaches every agent, p99 | ≤ 5 s | **$(f '%.1f' "$(m "$lab" agent-p99-s)") s** (p50 $(f '%.1f' "$(m "$lab" agent-p50-s)")) | ≤ 10 s | **$(f '%.1f' "$(m "$s1000" agent-p99-s)") s** (p50 $(f '%.1f' "$(m "$s1000" agent-p50-s)")) | ≈ $(peermonAge 100) s | ≈ $(peermonAge 1000) s |
| agent CPU | ≤ 0.3 % | **$(f '%.2f' "$(m "$lab" CPU-%)") %** of a core | — | — | | |
| agent RSS | ≤ 12 MB | **$(f '%.1f' "$(m "$lab" RSS-MB)") MB** (anonymous $(f '%.1f' "$(m "$lab" anon-RSS-MB)") MB) | — | — | | |
| killed -9 → out of the answer | ≤ 3 s | **$(f '%.1f' "$(m "$lab" kill-top-s)") s** (lab's first), **$(f '%.1f' "$(m "$lab" kill-pool-s)") s** (pool's first) | ≤ 3 s | **$(f '%.1f' "$(m "$s1000" kill-out-s)") s** (collector: suspect) | | |

Against the goals: bytes $(verdict "$labB" 1700) at N = 100 ($(ratio "$labB" 1700) of the goal, $(ratio "$labB" "$pm100") of PeerMon's)
and $(verdict "$simB" 5000) at N = 1,000 ($(ratio "$simB" 5000) of the goal, $(ratio "$simB" "$pm1000") of PeerMon's); collectors
$(verdict "$(m "$lab" collector-p99-s)" 0.3) at N = 100 and $(verdict "$(m "$s1000" collector-p99-s)" 0.5) at N = 1,000; agents $(verdict "$(m "$lab" agent-p99-s)" 5) at N = 100
and $(verdict "$(m "$s1000" agent-p99-s)" 10) at N = 1,000; CPU $(verdict "$(m "$lab" CPU-%)" 0.3); RSS $(verdict "$(m "$lab" RSS-MB)" 12); a killed node
$(verdict "$(awk -v a="$(m "$lab" kill-top-s)" -v b="$(m "$lab" kill-pool-s)" 'BEGIN { print (a > b ? a : b) }')" 3) at N = 100. PeerMon's row is computed from its constants
(the whole table, 28 B a node, to 3 peers every 5 s in one UDP datagram, IP-fragmented; its data
is 5 s old per hop, log₄ N hops). The same cluster of 100 simulated in one process (a cross-check
of the accounting): $(kb "$(m "$s100" B/s/agent)") kB/s per agent, collectors p99 $(f '%.2f' "$(m "$s100" collector-p99-s)") s,
agents p99 $(f '%.1f' "$(m "$s100" agent-p99-s)") s. A collector sends $(kb "$(m "$lab" B/s/collector)") kB/s (its probes of the top
candidates), a CoreDNS $(kb "$(m "$lab" B/s/coredns)") kB/s. In the measured window of the 1,000-member
simulation memberlist raised $(f '%.0f' "$(m "$s1000" window-suspicions)") suspicions and $(f '%.0f' "$(m "$s1000" window-refutations)") refutations (each a rumour every
member retransmits about a dozen times; a starved simulation raises them, a quiet LAN rarely),
$(f '%.0f' "$(m "$s1000" overflow-packets)") packets overflowed a busy member's receive buffer, and $(f '%.0f' "$(m "$s1000" members-lost)") members were wrongly declared dead.
Its timers fired $(f '%.1f' "$(m "$s1000" timer-late-p50-ms)") ms late at the median and $(f '%.1f' "$(m "$s1000" timer-late-p99-ms)") ms at the 99th percentile (in the
simulation's time; the cluster of 100: $(f '%.1f' "$(m "$s100" timer-late-p99-ms)") ms). A window whose timers fire later than a tenth of memberlist's probe
timeout (50 ms) at the 99th percentile describes a starved machine, not a cluster: its figures are
withheld (—) rather than printed.

The second row is what every member of the cluster put on the wire (collectors and, in the lab, the
CoreDNS servers included) divided by the agents: a mean, where the first row is the median agent.
A member pushes/pulls its whole membership once per push/pull period (memberlist scales it: 90 s at
100 members, 180 s at 1,000) and answers about as many, so at 1,000 members about half of them take
part in one in a 60 s window: the median agent sits between those that do and those that do not,
and can move by a whole push/pull from one run to the next. The mean counts every push/pull in the
window and does not.

Bytes per category (issue 24): what every member sent (in the lab the agents, the collector and both
CoreDNS; simulated, the agents and both collectors), divided by the agents, from each member's own
counters (\`peerload_gossip_bytes_sent_by_kind_total{kind}\`) and as on the wire: IPv4 and UDP headers
added to every packet, push/pull as the bytes of its TCP streams. TCP's headers and control segments
(handshakes, acks, FINs; the simulation counts headers only) are the rest of the interface counters,
on a line of their own, so the lines add up to the total. The largest category is
**$(largest "$lab")** at N = 100 and **$(largest "$s1000")** at N = 1,000.

| category, B/s per agent | 100 processes | share | 100 simulated | 1,000 simulated |
|---|---:|---:|---:|---:|
EOF
for v in probe:"probe: memberlist's pings, acks and membership rumours, collectors' probes" \
	report:"reports to collectors" relay:"relay: reports to relays, column batches" \
	repair:"repair: requests for missed reports and the answers" greeting:"greeting: hellos, goodbyes" \
	pushpull:"push/pull: TCP stream bytes" tcp-overhead:"headers and TCP control"; do
	k=${v%%:*}
	printf '| %s | %s | %s %% | %s | %s |\n' "${v#*:}" "$(f '%.0f' "$(m "$lab" "$k-B/s/agent")")" \
		"$(share "$(m "$lab" "$k-B/s/agent")" "$(m "$lab" all-B/s/agent)")" \
		"$(f '%.0f' "$(m "$s100" "$k-B/s/agent")")" "$(f '%.0f' "$(m "$s1000" "$k-B/s/agent")")"
done
printf '| **all wire bytes ÷ agents** | **%s** | 100 %% | **%s** | **%s** |\n' "$(f '%.0f' "$(m "$lab" all-B/s/agent)")" \
	"$(f '%.0f' "$(m "$s100" all-B/s/agent)")" "$(f '%.0f' "$(m "$s1000" all-B/s/agent)")"
cat <<EOF

Each idea weighed on a simulated cluster of 100 (BenchmarkIdeas: one cluster per variant, the idea turned off for a
30 s window, everything else as designed):

| variant | bytes per agent | collectors p99 | agents p99 |
|---|---:|---:|---:|
EOF
for v in design:"the design (all on)" fanout:"every report whole to every member (the design before)" \
	whole:"relays carry whole reports (no compact entries)" onecolumn:"no grid: each agent sends its batch to every agent" \
	fullpp:"periodic push/pull carries every report" everysample:"every sample sent (not only those that can move a rank)"; do
	k=${v%%:*}
	printf '| %s | %s kB/s | %s s | %s s |\n' "${v#*:}" "$(kb "$(m "$ideas" "$k-B/s/agent")")" \
		"$(f '%.3f' "$(m "$ideas" "$k-collector-p99-s")")" "$(f '%.1f' "$(m "$ideas" "$k-agent-p99-s")")"
done
