#!/usr/bin/env bash
# demo.sh (`make run`): a four-machine peerload cluster on loopback.
#
#   lab01..lab04  gossip 127.0.0.1:7946..7949, API 127.0.0.1:1981..1984,
#                 advertising 127.0.1.1..127.0.1.4, each with its own fake
#                 /proc whose load drifts (scripts/demo-load.sh)
#   CoreDNS       when bin/coredns and Corefile.example exist: DNS on
#                 127.0.0.1:1053 for cslab.example.edu, gossip on 7950
#   Caddy         when bin/caddy and Caddyfile.example exist: each machine's
#                 web service on 127.0.1.x:8088, the least-loaded one behind
#                 127.0.0.1:8080 (sticky) and :8081, gossip on 7951
#
# Everything lives in a temporary directory that Ctrl-C removes.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PEERLOAD=$ROOT/bin/peerload
COREDNS=$ROOT/bin/coredns
COREFILE=$ROOT/Corefile.example
NODES=4
DNS_PORT=1053

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

# port_busy PROTO PORT: is something listening on 127.0.0.1:PORT (or any
# address) with tcp or udp?
port_busy() {
	local proto=$1 port=$2
	if command -v ss >/dev/null 2>&1; then
		local flag=-lnt
		[ "$proto" = udp ] && flag=-lnu
		ss -H "$flag" 2>/dev/null | awk -v p=":$port" '{ if (substr($4, length($4) - length(p) + 1) == p) found = 1 } END { exit !found }'
		return
	fi
	# Without ss only TCP can be probed.
	[ "$proto" = tcp ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
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
	for p in $(grep -oE '127\.0\.0\.1:(8091|8181|9153)' Corefile.example | cut -d: -f2); do
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
	echo "demo: these ports are already in use (another demo or agent running?):" >&2
	printf '  %s\n' "${busy[@]}" >&2
	die "stop what uses them and try again"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/peerload-demo.XXXXXX")
pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "demo: stopping..."
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	# Give the agents their graceful leave, then make sure.
	for _ in $(seq 1 70); do
		local alive=0
		for pid in "${pids[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	rm -rf "$TMP"
	echo "demo: stopped, removed $TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

scripts/demo-load.sh drift 1 "${procs[@]}" &
pids+=($!)

for i in $(seq 1 $NODES); do
	name=lab0$i
	args=(agent --name "$name"
		--bind "127.0.0.1:$((7945 + i))" --api "127.0.0.1:$((1980 + i))" --advertise "127.0.1.$i"
		--proc "$TMP/proc/$name" --root "$TMP/root/$name" --state-dir "$TMP/state/$name"
		--ssh-port 0 --profile local)
	[ "$i" -gt 1 ] && args+=(--join 127.0.0.1:7946)
	"$PEERLOAD" "${args[@]}" >"$TMP/logs/$name.log" 2>&1 &
	pids+=($!)
done

if [ $run_dns = 1 ]; then
	"$COREDNS" -conf "$COREFILE" -dns.port $DNS_PORT >"$TMP/logs/coredns.log" 2>&1 &
	pids+=($!)
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
until [ "$("$PEERLOAD" top -n $NODES --api 127.0.0.1:1981 2>/dev/null | wc -l)" -eq $NODES ]; do
	if [ $SECONDS -ge $deadline ]; then
		echo "demo: the cluster did not form within 20 s; last lines of the logs:" >&2
		tail -n 5 "$TMP"/logs/*.log >&2
		exit 1
	fi
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || { tail -n 20 "$TMP"/logs/*.log >&2; die "a demo process exited early"; }
	done
	sleep 0.2
done

cat <<EOF

peerload demo: lab01..lab04 on loopback (advertising 127.0.1.1..127.0.1.4),
their load drifting every second. In another terminal, try:

  bin/peerload top                        the least-loaded machine
  bin/peerload top -v -n 4                all four, best first, with their load
  bin/peerload status --watch             every machine, refreshed in place
  bin/peerload top --api 127.0.0.1:1982   ask lab02's agent instead of lab01's
  bin/peerload hostfile -n 3 --cpus -     an Open MPI hostfile of the best three
  bin/peerload drain --reason test        take lab01 out (undrain brings it back)
  curl -s 127.0.0.1:1981/v1/nodes         the JSON API; /metrics for Prometheus
EOF
if [ $run_dns = 1 ]; then
	cat <<EOF
  dig @127.0.0.1 -p $DNS_PORT cslab.example.edu       the best machines' addresses
  dig @127.0.0.1 -p $DNS_PORT TXT cslab.example.edu   why they were picked
EOF
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
	for pid in "${pids[@]}"; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "demo: a demo process (pid $pid) exited; last lines of the logs:" >&2
			tail -n 5 "$TMP"/logs/*.log >&2
			exit 1
		fi
	done
	sleep 1
done
