#!/usr/bin/env bash
# demo.sh (`make run`): a four-machine peerload cluster on loopback.
#
#   lab01..lab04  gossip $IP:7946..7949, API and status page $IP:1981..1984,
#                 advertising $NET.1..$NET.4, each with its own fake /proc
#                 whose load drifts (scripts/demo-load.sh) and its control
#                 socket (drain, undrain) in its state dir
#   CoreDNS       when bin/coredns and Corefile.example exist: DNS on
#                 $IP:1053 for cslab.example.edu, gossip on 7950
#   Caddy         when bin/caddy and Caddyfile.example exist: each machine's
#                 web service on $NET.x:8088, the least-loaded one behind
#                 $IP:8080 (sticky) and :8081, admin on :2019, gossip on 7951
#
# $IP is $PEERLOAD_DEMO_IP, default 127.0.0.1 (tests run demos on other
# loopback addresses). $NET, the machines' addresses, is 127.0.1 for
# 127.0.0.1 and 127.D.1 for any other 127.A.B.D ($PEERLOAD_DEMO_NET sets
# it), so demos on different addresses share no address and port: the
# Corefile and Caddyfile examples are rewritten to them. Everything lives in
# a temporary directory; with $PEERLOAD_DEMO_LOGS set, the logs are copied
# there when the demo ends.
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
if [ "$IP" = 127.0.0.1 ]; then
	NET=${PEERLOAD_DEMO_NET:-127.0.1}
else
	NET=${PEERLOAD_DEMO_NET:-127.${IP##*.}.1}
fi

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

# port_busy PROTO PORT [ADDR]: is something listening on ADDR:PORT
# (default $IP), or on every address, with tcp or udp?
port_busy() {
	local proto=$1 port=$2 addr=${3:-$IP}
	if command -v ss >/dev/null 2>&1; then
		local flag=-lnt
		[ "$proto" = udp ] && flag=-lnu
		ss -H "$flag" 2>/dev/null | awk -v a="$addr:$port" -v p=":$port" '
			$4 == a || $4 == "0.0.0.0" p || $4 == "*" p || $4 == "[::]" p { found = 1 }
			END { exit !found }'
		return
	fi
	# Without ss only TCP can be probed.
	[ "$proto" = tcp ] && (exec 3<>"/dev/tcp/$addr/$port") 2>/dev/null
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
	for p in 8080 8081 2019; do
		port_busy tcp $p && busy+=("$p/tcp (Caddy)")
	done
	for i in $(seq 1 $NODES); do
		port_busy tcp 8088 "$NET.$i" && busy+=("$NET.$i:8088/tcp (web service of lab0$i)")
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
		--bind "$IP:$((7945 + i))" --api "$IP:$((1980 + i))" --advertise "$NET.$i"
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
	sed -e "s/127\.0\.0\.1/$IP/g" -e "s/127\.0\.1\./$NET./g" "$CADDYFILE" >"$TMP/Caddyfile"
	XDG_DATA_HOME=$TMP/caddy XDG_CONFIG_HOME=$TMP/caddy "$CADDY" run --config "$TMP/Caddyfile" --adapter caddyfile >"$TMP/logs/caddy.log" 2>&1 &
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

# try COMMAND WHAT: one line of the instructions, WHAT beside COMMAND, or
# below it when both do not fit in 80 columns.
try() {
	if [ -z "$2" ]; then
		printf '  %s\n' "$1"
	elif [ ${#1} -le 40 ]; then
		printf '  %-40s  %s\n' "$1" "$2"
	elif [ $((2 + ${#1} + 2 + ${#2})) -le 80 ]; then
		printf '  %s  %s\n' "$1" "$2"
	else
		printf '  %s\n  %-40s  %s\n' "$1" "" "$2"
	fi
} 2>/dev/null
P=bin/peerload
cat <<EOF

peerload demo: lab01..lab04 on $IP, advertising $NET.1..4,
their load drifting every second. In another terminal, try:

EOF
# Every line stays within 80 columns but the first, which holds the
# temporary directory's name; the others say $D.
try "D=$TMP" "(the demo's files)"
[ "$IP" = 127.0.0.1 ] || try "export PEERLOAD_API=$IP:1981" "talk to this demo's lab01"
try "$P top" "the least-loaded machine"
try "$P top -v -n 4" "all four, best first, with load"
try "$P status --watch" "every machine, refreshed in place"
try "$P top --api $IP:1982" "ask lab02's agent, not lab01's"
try "$P hostfile -n 3 --cpus -" "an MPI hostfile of the best three"
try "$P ssh --ip -v" "explain the pick, ssh to its address"
try "" "(names are not in DNS; no sshd runs)"
try "http://$IP:1981/" "the status page, in a browser"
try "curl -s $IP:1981/v1/nodes" "the JSON API; also /metrics"
try "export PEERLOAD_CONTROL=\$D/state/lab01/control.sock" ""
try "$P drain --reason test" "take lab01 out (undrain: back in)"
if [ $run_dns = 1 ]; then
	try "dig @$IP -p $DNS_PORT cslab.example.edu" "the best machines' addresses"
	try "dig @$IP -p $DNS_PORT TXT cslab.example.edu" "why they were picked"
else
	echo
	echo "(DNS not started: bin/coredns or Corefile.example is missing.)"
fi
# --- web (Caddy, Caddyfile.example) ---
if [ $run_web = 1 ]; then
	try "curl -s $IP:8080" "a new web session: the best machine"
	try "curl -s -b \$D/jar -c \$D/jar $IP:8080" "a session that keeps its machine"
else
	echo "(Web not started: bin/caddy or Caddyfile.example is missing.)"
fi
# --- end web ---
cat <<EOF

Logs: \$D/logs/   More load on lab02: scripts/demo-load.sh set \$D/proc/lab02 20
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
