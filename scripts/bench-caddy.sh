#!/usr/bin/env bash
# bench-caddy.sh: what lb_policy peerload costs a Caddy reverse proxy,
# compared with lb_policy random over the same backends in the same run,
# measured with wrk on loopback; and the policy's own cost per request
# (go test -bench Select ./plugin/caddy/).
#
# Five `peerload agent` processes with equal fake loads (LAN timings) make
# five equally good candidates, so peerload picks at random among all five
# on every request, as random does: both spread the same load over the
# same backends. One bin/caddy serves the backends (a `respond` site on
# 127.0.1.195..199); another is the proxy with two sites over those five
# upstreams, one per policy. Throughput and latency: $ROUNDS alternating
# rounds of $SECS s per policy (wrk, $CONNS connections, one thread),
# medians reported; any failed or timed-out request (10 s) aborts the run. With 2 or more CPUs the proxy runs on one CPU and wrk
# with the backends on another (taskset; PIN=0 turns this off).
# Takes about a minute and a half.
#
# Usage: scripts/bench-caddy.sh   (after `make build`; needs wrk)
# Binaries come from $PEERLOAD_BIN (default bin/), as in the tests.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${PEERLOAD_BIN:-$ROOT/bin}
PEERLOAD=$BIN/peerload
CADDY=$BIN/caddy
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-6}
CONNS=${CONNS:-16}
PIN=${PIN:-1}

NAME=bench-caddy
. scripts/bench-lib.sh

[ -x "$PEERLOAD" ] || die "$PEERLOAD not found: run \`make build\`"
[ -x "$CADDY" ] || die "$CADDY not found: run \`make build\`"
command -v wrk >/dev/null || die "wrk not installed (scripts/install-deps.sh)"

# Pinning: wrk and the backends on the first CPU this script may use, the
# proxy on the second.
read -r cpu_a cpu_b < <(awk '/^Cpus_allowed_list:/ {
	n = split($2, r, ","); k = 0
	for (i = 1; i <= n && k < 2; i++) { m = split(r[i], b, "-"); for (c = b[1]; c <= (m > 1 ? b[2] : b[1]) && k < 2; c++) { printf "%d ", c; k++ } }
	print "" }' /proc/self/status 2>/dev/null || true)
PROXY_PIN=() CLIENT_PIN=() pinned="no"
if [ "$PIN" = 1 ] && command -v taskset >/dev/null && [ -n "${cpu_b:-}" ]; then
	PROXY_PIN=(taskset -c "$cpu_b") CLIENT_PIN=(taskset -c "$cpu_a") pinned="the proxy on CPU $cpu_b, wrk and the backends on CPU $cpu_a"
fi

# Five agents with the same fake load, LAN timings.
NODES=5
first=""
upstreams=""
BACKEND_PORT=$(free_port)
for i in $(seq 1 $NODES); do
	name=web$i
	ip=127.0.1.$((194 + i))
	scripts/demo-load.sh init "$TMP/proc/$name" 4 8192 0.5
	mkdir -p "$TMP/root/$name/tmp"
	gossip=$(free_port)
	api=$(free_port)
	args=(agent --name "$name" --bind "127.0.0.1:$gossip" --api "127.0.0.1:$api" --advertise "$ip"
		--proc "$TMP/proc/$name" --root "$TMP/root/$name" --state-dir "$TMP/state/$name" --ssh-port 0)
	[ -n "$first" ] && args+=(--join "$first")
	"$PEERLOAD" "${args[@]}" >"$TMP/logs/$name.log" 2>&1 &
	pids+=($!)
	[ -z "$first" ] && first=127.0.0.1:$gossip
	upstreams="$upstreams $ip:$BACKEND_PORT"
done

BACKEND_ADMIN=$(free_port)
cat >"$TMP/Caddyfile.backends" <<EOF
{
	admin 127.0.0.1:$BACKEND_ADMIN
}
http://:$BACKEND_PORT {
	bind$(for i in $(seq 1 $NODES); do printf ' 127.0.1.%d' $((194 + i)); done)
	respond "ok"
}
EOF
ADMIN=$(free_port)
MEMBER=$(free_port)
PL=$(free_port)
RND=$(free_port)
cat >"$TMP/Caddyfile.proxy" <<EOF
{
	admin 127.0.0.1:$ADMIN
}
http://127.0.0.1:$PL {
	bind 127.0.0.1
	reverse_proxy$upstreams {
		lb_policy peerload {
			bind 127.0.0.1:$MEMBER
			join $first
		}
	}
}
http://127.0.0.1:$RND {
	bind 127.0.0.1
	reverse_proxy$upstreams {
		lb_policy random
	}
}
EOF
export XDG_DATA_HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy
"${CLIENT_PIN[@]}" "$CADDY" run --config "$TMP/Caddyfile.backends" --adapter caddyfile >"$TMP/logs/backends.log" 2>&1 &
pids+=($!)
"${PROXY_PIN[@]}" "$CADDY" run --config "$TMP/Caddyfile.proxy" --adapter caddyfile >"$TMP/logs/proxy.log" 2>&1 &
pids+=($!)

# metric SERIES: its value on the proxy's admin /metrics ("" if absent).
metric() {
	curl -s "http://127.0.0.1:$ADMIN/metrics" 2>/dev/null | awk -v s="$1" 'index($0, s " ") == 1 { print $2 }'
}

# Wait (up to 60 s) until the proxy's member counts all five candidates.
deadline=$((SECONDS + 60))
until [ "$(metric "caddy_reverse_proxy_peerload_candidates{member=\"127.0.0.1:$MEMBER\",pool=\"\"}")" = "$NODES" ]; do
	if [ $SECONDS -ge $deadline ]; then
		tail -n 5 "$TMP"/logs/*.log >&2
		die "the proxy's member did not see $NODES candidates within 60 s"
	fi
	sleep 0.2
done
# ... and until both sites answer through the proxy (the backends' Caddy
# starts beside it).
deadline=$((SECONDS + 30))
for port in $PL $RND; do
	until [ "$(curl -s "http://127.0.0.1:$port/")" = ok ]; do
		if [ $SECONDS -ge $deadline ]; then
			tail -n 5 "$TMP"/logs/*.log >&2
			die "the site on port $port does not answer through the proxy within 30 s"
		fi
		sleep 0.2
	done
done

# run KIND: one wrk run; prints "requests/s p99_ms".
run() {
	local port=$RND
	[ "$1" = peerload ] && port=$PL
	"${CLIENT_PIN[@]}" wrk -t1 -c"$CONNS" -d"${SECS}s" --timeout 10s --latency "http://127.0.0.1:$port/" 2>&1 |
		tee -a "$TMP/logs/wrk.log" | awk '
		function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
		$1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
		/Non-2xx|Socket errors/ { bad = 1 }
		END { if (bad) print "errors"; else printf "%.0f %.2f\n", rps, p99 }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "bench-caddy: $ROUNDS rounds of ${SECS}s per policy..." >&2
load_before=$(cut -d' ' -f1 /proc/loadavg)
pl_rps=() rnd_rps=() pl_p99=() rnd_p99=()
for r in $(seq 1 "$ROUNDS"); do
	kinds="peerload random"
	[ $((r % 2)) = 0 ] && kinds="random peerload"
	for k in $kinds; do
		out=$(run "$k")
		if [ "$out" = errors ]; then
			tail -n 15 "$TMP/logs/wrk.log" "$TMP/logs/proxy.log" >&2
			die "wrk saw failed requests ($k)"
		fi
		read -r rps p99 <<<"$out"
		if [ "$k" = peerload ]; then pl_rps+=("$rps") pl_p99+=("$p99"); else rnd_rps+=("$rps") rnd_p99+=("$p99"); fi
		echo "bench-caddy: round $r: $k $rps requests/s, p99 $p99 ms" >&2
	done
done
load_after=$(cut -d' ' -f1 /proc/loadavg)
best=$(metric 'caddy_reverse_proxy_peerload_selections_total{outcome="best"}')
random=$(metric 'caddy_reverse_proxy_peerload_selections_total{outcome="random"}')
m_pl_rps=$(printf '%s\n' "${pl_rps[@]}" | median)
m_rnd_rps=$(printf '%s\n' "${rnd_rps[@]}" | median)
m_pl_p99=$(printf '%s\n' "${pl_p99[@]}" | median)
m_rnd_p99=$(printf '%s\n' "${rnd_p99[@]}" | median)
ratio=$(awk -v a="$m_pl_rps" -v b="$m_rnd_rps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
p99ratio=$(awk -v a="$m_pl_p99" -v b="$m_rnd_p99" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')

echo "bench-caddy: the policy's cost per request (go test -bench Select)..." >&2
go test -count=5 -run '^$' -bench '^BenchmarkSelect$' -benchtime 200000x ./plugin/caddy/ >"$TMP/select.txt" 2>&1 ||
	{ cat "$TMP/select.txt" >&2; die "go test -bench Select failed"; }
# ns NAME: the median ns/op of a sub-benchmark.
ns() { awk -v n="BenchmarkSelect/$1-" 'index($1, n) == 1 { print $3 }' "$TMP/select.txt" | median; }

ncpu=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
cpu=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo unknown)
wver=$(wrk -v 2>&1 | awk 'NR == 1 { print $2 }' || true) # wrk -v exits 1

cat <<EOF
### Caddy: lb_policy peerload vs. random (scripts/bench-caddy.sh)

One \`bin/caddy\` proxy on loopback with two sites over the same five upstreams (a \`respond\` site of
another \`bin/caddy\` on 127.0.1.195..199): \`lb_policy peerload\` and \`lb_policy random\`. Five
agents with equal fake loads (LAN timings) make five equally good machines, so both policies
spread the requests over all five. wrk $wver, $CONNS keep-alive connections, one thread; $ncpu
CPUs ($cpu); pinned: $pinned. $ROUNDS alternating rounds of ${SECS}s per policy, medians reported;
during the runs the policy picked a live candidate $best times and fell back to random
$random times. The machine's load average was $load_before before and $load_after after the runs
(on a shared machine, other processes' too: every figure below includes their contention).

| policy | requests/s (median of $ROUNDS × ${SECS}s) | runs | p99 latency (median) | runs |
|---|---:|---|---:|---|
| \`lb_policy peerload\` | $m_pl_rps | ${pl_rps[*]} | $m_pl_p99 ms | ${pl_p99[*]} |
| \`lb_policy random\` | $m_rnd_rps | ${rnd_rps[*]} | $m_rnd_p99 ms | ${rnd_p99[*]} |

peerload / random throughput: **$ratio** (goal ≥ 0.95); p99 latency: **$p99ratio**.

The selection itself, \`go test -bench '^BenchmarkSelect\$' ./plugin/caddy/\` (median of 5 runs of
200,000 picks, wall time on the same shared CPUs; no allocation), five equal machines among the
upstreams. A static pool (upstreams in the configuration) has its hosts looked up once per change
of the cluster; a pool in a new order on every request (dynamic upstreams) has them looked up
every time:

| upstreams | \`lb_policy peerload\`, static pool | peerload, new order per request | \`lb_policy random\` |
|---:|---:|---:|---:|
| 5 | $(ns peerload/upstreams=5) ns | $(ns peerload-lookup/upstreams=5) ns | $(ns random/upstreams=5) ns |
| 50 | $(ns peerload/upstreams=50) ns | $(ns peerload-lookup/upstreams=50) ns | $(ns random/upstreams=50) ns |
EOF
