#!/usr/bin/env bash
# bench-dns.sh: how fast CoreDNS answers a peerload name compared with the
# same answer from a zone file, measured with dnsperf on loopback.
#
# One bin/coredns serves example.edu with peerload (top 5) in front of file.
# Five `peerload agent` processes with equal fake loads make five equally
# good candidates, so every peerload answer is shuffled afresh. Compared:
#
#   peerload  A cslab.example.edu     5 records, precomputed, shuffled per query
#   file      A static5.example.edu   5 records from zones/db.example.edu
#
# Both go through the same server block and plugin chain in the same
# process. Throughput: $ROUNDS alternating rounds of $SECS s each, medians
# reported. Latency: one run of each at a fixed 10k queries/s, p50/p99 from
# dnsperf's per-query output. Prints a Markdown block for BENCHMARKS.md.
# Takes about a minute.
#
# Usage: scripts/bench-dns.sh   (after `make build`; needs dnsperf and dig)
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PEERLOAD=$ROOT/bin/peerload
COREDNS=$ROOT/bin/coredns
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-6}
FIXED_QPS=${FIXED_QPS:-10000}
LAT_SECS=${LAT_SECS:-5}
CLIENTS=${CLIENTS:-4}

die() { echo "bench-dns: $*" >&2; exit 1; }

[ -x "$PEERLOAD" ] || die "$PEERLOAD not found: run \`make build\`"
[ -x "$COREDNS" ] || die "$COREDNS not found: run \`make build\`"
command -v dnsperf >/dev/null || die "dnsperf not installed (scripts/install-deps.sh)"
command -v dig >/dev/null || die "dig not installed (scripts/install-deps.sh)"

# free_port: a loopback port free for TCP and UDP right now, not handed out
# before by this script.
used=" "
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 30000))
		case $used in *" $p "*) continue ;; esac
		if command -v ss >/dev/null 2>&1; then
			ss -H -lntu 2>/dev/null | awk -v p=":$p" '{ if (substr($5, length($5) - length(p) + 1) == p) f = 1 } END { exit !f }' && continue
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		fi
		used="$used$p "
		echo "$p"
		return
	done
	die "no free port"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/peerload-bench-dns.XXXXXX")
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		local alive=0
		for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir -p "$TMP/logs"

# Five agents with the same fake load: five equally good candidates.
NODES=5
first=""
for i in $(seq 1 $NODES); do
	name=bench$i
	scripts/demo-load.sh init "$TMP/proc/$name" 4 8192 0.5
	mkdir -p "$TMP/root/$name/tmp"
	gossip=$(free_port)
	api=$(free_port)
	args=(agent --name "$name" --bind "127.0.0.1:$gossip" --api "127.0.0.1:$api" --advertise "127.0.2.$i"
		--proc "$TMP/proc/$name" --root "$TMP/root/$name" --state-dir "$TMP/state/$name"
		--ssh-port 0 --interval 250ms --refresh 2s --stale-after 8s)
	[ -n "$first" ] && args+=(--join "$first")
	"$PEERLOAD" "${args[@]}" >"$TMP/logs/$name.log" 2>&1 &
	pids+=($!)
	[ -z "$first" ] && first=127.0.0.1:$gossip
done

DNS=$(free_port)
MEMBER=$(free_port)
cat >"$TMP/Corefile" <<EOF
example.edu:$DNS {
    bind 127.0.0.1
    peerload cslab.example.edu {
        top 5
        ttl 30
        bind 127.0.0.1:$MEMBER
        join $first
    }
    file $ROOT/zones/db.example.edu
}
EOF
"$COREDNS" -conf "$TMP/Corefile" >"$TMP/logs/coredns.log" 2>&1 &
pids+=($!)

# Wait (up to 30 s) until peerload hands out all five agents.
deadline=$((SECONDS + 30))
until [ "$(dig @127.0.0.1 -p "$DNS" +short +tries=1 +time=1 cslab.example.edu A 2>/dev/null | grep -c '^127\.0\.2\.')" -eq $NODES ]; do
	if [ $SECONDS -ge $deadline ]; then
		tail -n 5 "$TMP"/logs/*.log >&2
		die "peerload did not answer with $NODES candidates within 30 s"
	fi
	sleep 0.2
done
[ "$(dig @127.0.0.1 -p "$DNS" +short static5.example.edu A | wc -l)" -eq 5 ] || die "static5.example.edu does not have 5 A records"

echo "cslab.example.edu A" >"$TMP/peerload.txt"
echo "static5.example.edu A" >"$TMP/file.txt"

# qps KIND: one throughput run, prints queries per second.
qps() {
	dnsperf -s 127.0.0.1 -p "$DNS" -d "$TMP/$1.txt" -l "$SECS" -c "$CLIENTS" -T 1 -q 200 2>&1 |
		tee -a "$TMP/logs/dnsperf.log" | awk '/Queries per second:/ { printf "%.0f\n", $4 }'
}

# latency KIND: one run at FIXED_QPS, prints "p50_ms p99_ms lost".
latency() {
	dnsperf -s 127.0.0.1 -p "$DNS" -d "$TMP/$1.txt" -l "$LAT_SECS" -c "$CLIENTS" -T 1 -Q "$FIXED_QPS" -v 2>&1 |
		awk '/^> / { print $NF } /Queries lost:/ { print "lost " $3 >"/dev/stderr" }' 2>"$TMP/$1.lost" |
		sort -n | awk '{ v[NR] = $1 } END {
			if (NR == 0) { print "- - -"; exit }
			p50 = v[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]; p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
			printf "%.3f %.3f\n", p50 * 1000, p99 * 1000 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "bench-dns: $ROUNDS rounds of ${SECS}s per kind, then ${LAT_SECS}s at $FIXED_QPS qps each..." >&2
pl_runs=() file_runs=()
for r in $(seq 1 "$ROUNDS"); do
	# Alternate which goes first so drift (CPU frequency, neighbours) evens out.
	if [ $((r % 2)) = 1 ]; then
		pl_runs+=("$(qps peerload)")
		file_runs+=("$(qps file)")
	else
		file_runs+=("$(qps file)")
		pl_runs+=("$(qps peerload)")
	fi
	echo "bench-dns: round $r: peerload ${pl_runs[-1]} qps, file ${file_runs[-1]} qps" >&2
done
pl_qps=$(printf '%s\n' "${pl_runs[@]}" | median)
file_qps=$(printf '%s\n' "${file_runs[@]}" | median)
ratio=$(awk -v a="$pl_qps" -v b="$file_qps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')

read -r pl_p50 pl_p99 < <(latency peerload)
read -r file_p50 file_p99 < <(latency file)
pl_lost=$(awk '{ print $2 }' "$TMP/peerload.lost")
file_lost=$(awk '{ print $2 }' "$TMP/file.lost")

# The answers really differed in order: count distinct orders in 20 answers.
orders=$(for _ in $(seq 1 20); do dig @127.0.0.1 -p "$DNS" +short cslab.example.edu A | paste -sd' '; done | sort -u | wc -l)

cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?')
dver=$(dnsperf -h 2>&1 | awk '/^Version/ { print $2; exit }')

cat <<EOF
### DNS: peerload vs. a zone file (scripts/bench-dns.sh)

One \`bin/coredns\` on loopback, one server block \`example.edu\` with \`peerload\` (top 5, five
equally loaded agents, so every answer is shuffled: $orders distinct orders in 20 answers) in front
of \`file\`; both names answer five A records through the same plugin chain. dnsperf $dver,
$CLIENTS clients, $ncpu CPUs ($cpu) shared by CoreDNS, dnsperf and five agents.

| query | answered by | QPS (median of $ROUNDS × ${SECS}s) | runs | p50 / p99 at $FIXED_QPS qps | lost |
|---|---|---:|---|---|---:|
| \`A cslab.example.edu\` | peerload | $pl_qps | ${pl_runs[*]} | ${pl_p50} ms / ${pl_p99} ms | ${pl_lost:-?} |
| \`A static5.example.edu\` | file | $file_qps | ${file_runs[*]} | ${file_p50} ms / ${file_p99} ms | ${file_lost:-?} |

peerload / file throughput: **$ratio**.
EOF
