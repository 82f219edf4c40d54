# bench-lib.sh: what the benchmark scripts that start their own processes
# share. Source it with NAME set (the script's name, for messages and its
# temporary directory); it gives die, free_port, a temporary directory TMP
# (with TMP/logs) and pids, whose processes are stopped on exit.

die() { echo "$NAME: $*" >&2; exit 1; }

# free_port: a loopback port free for TCP and UDP right now, not handed out
# before by this script. Ports come from below the kernel's ephemeral range
# (a port an outgoing connection holds cannot be bound either), and every
# socket counts, not only listening ones.
used=" "
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$eph_lo" -gt 21024 ] 2>/dev/null || eph_lo=32768
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % (eph_lo - 20000)))
		case $used in *" $p "*) continue ;; esac
		if command -v ss >/dev/null 2>&1; then
			ss -H -antu 2>/dev/null | awk -v p=":$p" '{ if (substr($5, length($5) - length(p) + 1) == p) f = 1 } END { exit !f }' && continue
		else
			(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
		fi
		used="$used$p "
		echo "$p"
		return
	done
	die "no free port"
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/peerload-$NAME.XXXXXX")
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
