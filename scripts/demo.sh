#!/usr/bin/env bash
# demo.sh (`make run`): a four-machine peerload cluster on loopback.
#
#   lab01..lab04  gossip $IP:7946..7949, API $IP:1981..1984, advertising
#                 127.0.1.1..127.0.1.4, each with its own fake /proc whose
#                 load drifts (scripts/demo-load.sh) and its control socket
#                 (drain, undrain) in its state dir
#   CoreDNS       when bin/coredns and Corefile.example exist: DNS on
#                 $IP:1053 for cslab.example.edu, gossip on 7950
#   Caddy         when bin/caddy and Caddyfile.example exist: each machine's
#                 web service on 127.0.1.x:8088, the least-loaded one behind
#                 127.0.0.1:8080 (sticky) and :8081, gossip on 7951
#
# $IP is $PEERLOAD_DEMO_IP, default 127.0.0.1 (tests run demos on other
# loopback addresses). Everything lives in a temporary directory; with
# $PEERLOAD_DEMO_LOGS set, the logs are copied there when the demo ends.
#
# However the demo ends (Ctrl-C, a closed terminal, kill, a closed pipe, an
# error), one cleanup that nothing interrupts stops everything the demo
# started and removes the directory, within 2 s. Each process runs in a
# session of its own, so the terminal's signals reach only this script,
# which stops them in order.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PEERLOAD=$ROOT/bin/peerload
COREDNS=$ROOT/bin/coredns
COREFILE=$ROOT/Corefile.example
NODES=4
DNS_PORT=1053
IP=${PEERLOAD_DEMO_IP:-127.0.0.1}

die() { echo "demo: $*" >&2; exit 1; }

[ -x "$PEERLOAD" ] || die "$PEERLOAD not found: run \`make build\` (or \`make run\`) first"

run_dns=0
if [ -x "$COREDNS" ] && [ -f "$COREFILE" ]; then
	run_dns=1
fi
# --- web (Caddy, Caddyfile.example) ---
CADDY=$ROOT/bin/caddy
CADDYFILE=$ROOT/Caddyfile.example
run_web=0
if [ -x "$CADDY" ] && [ -f "$CADDYFILE" ]; then
	run_web=1
fi
# --- end web ---

# port_busy PROTO PORT: is something listening on $IP:PORT (or on every
# address) with tcp or udp?
port_busy() {
	local proto=$1 port=$2
	if command -v ss >/dev/null 2>&1; then
		local flag=-lnt
		[ "$proto" = udp ] && flag=-lnu
		ss -H "$flag" 2>/dev/null | awk -v a="$IP:$port" -v p=":$port" '
			$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { found = 1 }
			END { exit !found }'
		return
	fi
	# Without ss only TCP can be probed.
	[ "$proto" = tcp ] && (exec 3<>"/dev/tcp/$IP/$port") 2>/dev/null
}

busy=()
for i in $(seq 1 $NODES); do
	gossip=$((7945 + i)) api=$((1980 + i))
	port_busy tcp $gossip && busy+=("$gossip/tcp (gossip of lab0$i)")
	port_busy udp $gossip && busy+=("$gossip/udp (gossip of lab0$i)")
	port_busy tcp $api && busy+=("$api/tcp (API of lab0$i)")
done
if [ $run_dns = 1 ]; then
	port_busy tcp 7950 && busy+=("7950/tcp (gossip of CoreDNS)")
	port_busy udp 7950 && busy+=("7950/udp (gossip of CoreDNS)")
	port_busy tcp $DNS_PORT && busy+=("$DNS_PORT/tcp (DNS)")
	port_busy udp $DNS_PORT && busy+=("$DNS_PORT/udp (DNS)")
	# health, ready and prometheus of Corefile.example
	for p in $(grep -oE '127\.0\.0\.1:(8091|8181|9153)' "$COREFILE" | cut -d: -f2); do
		port_busy tcp "$p" && busy+=("$p/tcp (CoreDNS health/ready/metrics)")
	done
fi
# --- web (Caddy, Caddyfile.example) ---
if [ $run_web = 1 ]; then
	port_busy tcp 7951 && busy+=("7951/tcp (gossip of Caddy)")
	port_busy udp 7951 && busy+=("7951/udp (gossip of Caddy)")
	for p in 8080 8081 8088 2019; do
		port_busy tcp $p && busy+=("$p/tcp (Caddy)")
	done
fi
# --- end web ---
if [ ${#busy[@]} -gt 0 ]; then
	echo "demo: these ports of $IP are already in use (another demo or agent running?):" >&2
	printf '  %s\n' "${busy[@]}" >&2
	die "stop what uses them and try again"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/peerload-demo.XXXXXX")
dns_pids=() pids=() sleeper=""
mkfifo "$TMP/nap"
exec {napfd}<>"$TMP/nap"

# say prints to stderr and never fails: the terminal may be gone (EIO) or
# the pipe closed (EPIPE), and the cleanup must go on.
say() { printf '%s\n' "$*" >&2 2>/dev/null || true; }

# start CMD...: run a demo process in a session of its own.
start() {
	if command -v setsid >/dev/null 2>&1; then
		setsid "$@" {napfd}>&- &
	else
		"$@" {napfd}>&- &
	fi
}

# now_ms sets NOW to the wall clock in milliseconds, without a fork.
now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	NOW=$((t / 1000))
}

# nap: 20 ms without a fork (a read that times out on a FIFO nobody
# writes), so the cleanup keeps time on a loaded machine.
nap() { read -r -t 0.02 -u "$napfd" 2>/dev/null || true; }

# stop_all DEADLINE PID...: TERM each process group, then wait until they
# exited or the clock (ms, see now_ms) passed DEADLINE.
stop_all() {
	local deadline=$1 pid alive
	shift
	[ $# -gt 0 ] || return 0
	for pid in "$@"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	done
	while :; do
		alive=0
		for pid in "$@"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		now_ms
		[ $alive = 0 ] || [ "$NOW" -ge "$deadline" ] && return 0
		nap
	done
}

# cleanup CODE: stop everything, remove $TMP, exit CODE, within 2 s.
# Signals are ignored from here on and no failing command stops it
# half-way.
cleanup() {
	local code=$1 pid start
	trap '' INT TERM HUP PIPE
	trap - EXIT
	set +eu
	now_ms
	start=$NOW
	[ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
	# CoreDNS leaves first, while the agents still hear its goodbye; an
	# agent leaves within a second. Whatever still runs at 1.7 s is killed.
	stop_all $((start + 600)) "${dns_pids[@]}"
	stop_all $((start + 1700)) "${pids[@]}"
	for pid in "${dns_pids[@]}" "${pids[@]}"; do
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "${PEERLOAD_DEMO_LOGS:-}" ]; then
		mkdir -p "$PEERLOAD_DEMO_LOGS" && cp "$TMP"/logs/* "$PEERLOAD_DEMO_LOGS"/
	fi 2>/dev/null
	rm -rf "$TMP"
	[ -t 2 ] && say ""
	say "demo: stopped, removed $TMP"
	exit "$code"
}
trap 'cleanup $?' EXIT
trap 'cleanup 0' INT TERM HUP PIPE

# pause SECONDS: sleep, but let a signal's trap run at once (bash runs a
# trap only when the foreground command ends; `wait` ends at a signal).
pause() {
	sleep "$1" &
	sleeper=$!
	wait "$sleeper" || true
	sleeper=""
}

mkdir -p "$TMP/logs"
# Different machines: CPUs, memory (MiB) and starting load.
cpus=(4 8 4 16)
mem=(8192 16384 8192 65536)
load=(0.5 3.0 1.2 6.0)
procs=()
for i in $(seq 1 $NODES); do
	name=lab0$i
	scripts/demo-load.sh init "$TMP/proc/$name" "${cpus[$((i - 1))]}" "${mem[$((i - 1))]}" "${load[$((i - 1))]}"
	procs+=("$TMP/proc/$name")
	mkdir -p "$TMP/root/$name/tmp" "$TMP/state/$name"
done

start scripts/demo-load.sh drift 1 "${procs[@]}"
pids+=($!)

for i in $(seq 1 $NODES); do
	name=lab0$i
	args=(agent --name "$name"
		--bind "$IP:$((7945 + i))" --api "$IP:$((1980 + i))" --advertise "127.0.1.$i"
		--proc "$TMP/proc/$name" --root "$TMP/root/$name" --state-dir "$TMP/state/$name"
		--control "$TMP/state/$name/control.sock"
		--ssh-port 0 --profile local)
	[ "$i" -gt 1 ] && args+=(--join "$IP:7946")
	start "$PEERLOAD" "${args[@]}" >"$TMP/logs/$name.log" 2>&1
	pids+=($!)
done

if [ $run_dns = 1 ]; then
	sed "s/127\.0\.0\.1/$IP/g" "$COREFILE" >"$TMP/Corefile"
	start "$COREDNS" -conf "$TMP/Corefile" -dns.port $DNS_PORT >"$TMP/logs/coredns.log" 2>&1
	dns_pids+=($!)
fi

# --- web (Caddy, Caddyfile.example) ---
if [ $run_web = 1 ]; then
	# Caddy keeps its state (autosaved config, certificates) in the demo's
	# directory, not in the home directory.
	XDG_DATA_HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy "$CADDY" run --config "$CADDYFILE" --adapter caddyfile >"$TMP/logs/caddy.log" 2>&1 &
	pids+=($!)
fi
# --- end web ---

# Wait (up to 20 s) until lab01 sees all four machines.
deadline=$((SECONDS + 20))
until [ "$("$PEERLOAD" top -n $NODES --api "$IP:1981" 2>/dev/null | wc -l)" -eq $NODES ]; do
	if [ $SECONDS -ge $deadline ]; then
		echo "demo: the cluster did not form within 20 s; last lines of the logs:" >&2
		tail -n 5 "$TMP"/logs/*.log >&2
		exit 1
	fi
	for pid in "${pids[@]}" "${dns_pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$TMP"/logs/*.log >&2; die "a demo process exited early"; }
	done
	pause 0.2
done

# try COMMAND WHAT: one line of the instructions.
try() { printf '  %-46s %s\n' "$1" "$2" 2>/dev/null; }
P=bin/peerload
[ "$IP" = 127.0.0.1 ] || P="bin/peerload --api $IP:1981"
cat <<EOF

peerload demo: lab01..lab04 on $IP (advertising 127.0.1.1..127.0.1.4),
their load drifting every second. In another terminal, try:

EOF
try "$P top" "the least-loaded machine"
try "$P top -v -n 4" "all four, best first, with their load"
try "$P status --watch" "every machine, refreshed in place"
try "bin/peerload top --api $IP:1982" "ask lab02's agent instead of lab01's"
try "$P hostfile -n 3 --cpus -" "an Open MPI hostfile of the best three"
try "curl -s $IP:1981/v1/nodes" "the JSON API; /metrics for Prometheus"
try "export PEERLOAD_CONTROL=$TMP/state/lab01/control.sock" ""
try "bin/peerload drain --reason test" "take lab01 out (undrain brings it back)"
if [ $run_dns = 1 ]; then
	try "dig @$IP -p $DNS_PORT cslab.example.edu" "the best machines' addresses"
	try "dig @$IP -p $DNS_PORT TXT cslab.example.edu" "why they were picked"
else
	echo
	echo "(DNS not started: bin/coredns or Corefile.example is missing.)"
fi
# --- web (Caddy, Caddyfile.example) ---
if [ $run_web = 1 ]; then
	cat <<EOF
  curl -s 127.0.0.1:8080                  a new web session lands on the best machine
  curl -s -b $TMP/jar -c $TMP/jar 127.0.0.1:8080   a session that keeps its machine
EOF
else
	echo "(Web not started: bin/caddy or Caddyfile.example is missing.)"
fi
# --- end web ---
cat <<EOF

Logs: $TMP/logs/   Push a machine's load: scripts/demo-load.sh set $TMP/proc/lab02 20
Press Ctrl-C to stop.
EOF

# Watch the children: if one dies, say so and stop the demo.
while :; do
	for pid in "${pids[@]}" "${dns_pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			say "demo: a demo process (pid $pid) exited; last lines of the logs:"
			tail -n 5 "$TMP"/logs/*.log >&2 2>/dev/null
			exit 1
		fi
	done
	pause 1
done
