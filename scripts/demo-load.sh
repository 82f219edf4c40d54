#!/usr/bin/env bash
# demo-load.sh: fake /proc roots whose load drifts, for `make run` (see
# scripts/demo.sh) and manual experiments. Each root has the files the agent
# samples, in the shape of the real ones: loadavg, stat, meminfo, uptime,
# net/tcp and net/tcp6. Files are replaced atomically (write, then rename).
#
#   demo-load.sh init DIR CPUS MEM_MIB LOAD1   create a proc root
#   demo-load.sh step DIR...                   one random-walk step for each
#   demo-load.sh set DIR LOAD1                 set the load (no drift)
#   demo-load.sh drift [SECONDS] DIR...        step every SECONDS (default 1) forever
set -euo pipefail

die() { echo "demo-load.sh: $*" >&2; exit 1; }

# render DIR WALK [LOAD1]: update the state in DIR/.demo (random walk when
# WALK is 1, or set load1 to LOAD1) and rewrite the proc files from it.
render() {
	local dir=$1 walk=$2 setload=${3:-}
	[ -f "$dir/.demo" ] || die "$dir is not a demo proc root (run: demo-load.sh init $dir ...)"
	awk -v seed="$RANDOM$RANDOM" -v dir="$dir" -v walk="$walk" -v setload="$setload" '
	function clamp(v, lo, hi) { return v < lo ? lo : (v > hi ? hi : v) }
	{ cpus = $1; memt = $2; l1 = $3; l5 = $4; l15 = $5; avail = $6; busy = $7; idle = $8; up = $9 }
	END {
		srand(seed)
		if (setload != "") {
			l1 = setload + 0
		} else if (walk == 1) {
			# A random walk of about a quarter of a CPU a second, an
			# occasional burst (someone starts a build), and a pull back
			# toward the middle so nodes keep overtaking each other.
			l1 += (rand() - 0.5) * cpus * 0.5
			if (rand() < 0.04) l1 += cpus * rand()
			l1 += (cpus * 0.5 - l1) * 0.05
			l1 = clamp(l1, 0.01 + rand() * 0.1, cpus * 2)
			avail = clamp(avail + (rand() - 0.5) * memt * 0.04, memt * 0.05, memt * 0.95)
		}
		# The 5 and 15 minute averages follow the 1 minute one slowly.
		l5 += (l1 - l5) / 5
		l15 += (l1 - l15) / 15
		u = clamp(l1 / cpus, 0, 1)
		busy += int(u * 100); idle += int((1 - u) * 100); up += 1
		printf "%d %d %.2f %.2f %.2f %d %d %d %d\n", cpus, memt, l1, l5, l15, avail, busy, idle, up > (dir "/.demo.tmp")
		printf "%.2f %.2f %.2f %d/%d %d\n", l1, l5, l15, int(l1) + 1, 200 + cpus * 10, 4000 + up > (dir "/loadavg.tmp")
		printf "cpu  %d 0 0 %d 0 0 0 0 0 0\n", busy * cpus, idle * cpus > (dir "/stat.tmp")
		for (i = 0; i < cpus; i++) printf "cpu%d %d 0 0 %d 0 0 0 0 0 0\n", i, busy, idle > (dir "/stat.tmp")
		printf "intr 305379 0 0 0\nctxt 490240\nbtime 1795480259\nprocesses 6889\nprocs_running %d\nprocs_blocked 0\nsoftirq 124317 0 11281 5 26993 37663 0 737 23193 0 24445\n", int(l1) + 1 > (dir "/stat.tmp")
		printf "MemTotal:       %d kB\nMemFree:        %d kB\nMemAvailable:   %d kB\nBuffers:           12864 kB\nCached:           297592 kB\nSwapCached:            0 kB\nSwapTotal:        2097148 kB\nSwapFree:         2097148 kB\n", memt, avail / 2, avail > (dir "/meminfo.tmp")
		printf "%d.00 %d.00\n", up, up * cpus > (dir "/uptime.tmp")
	}' "$dir/.demo"
	local f
	for f in .demo loadavg stat meminfo uptime; do
		mv -f "$dir/$f.tmp" "$dir/$f"
	done
}

cmd=${1:-}
shift || true
case $cmd in
init)
	[ $# -eq 4 ] || die "usage: demo-load.sh init DIR CPUS MEM_MIB LOAD1"
	dir=$1 cpus=$2 mem=$3 load=$4
	mkdir -p "$dir/net"
	memkb=$((mem * 1024))
	echo "$cpus $memkb $load $load $load $((memkb * 3 / 4)) 0 0 1000" >"$dir/.demo"
	hdr="  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
	echo "$hdr" >"$dir/net/tcp"
	echo "$hdr" >"$dir/net/tcp6"
	render "$dir" 0
	;;
step)
	for dir in "$@"; do render "$dir" 1; done
	;;
set)
	[ $# -eq 2 ] || die "usage: demo-load.sh set DIR LOAD1"
	render "$1" 0 "$2"
	;;
drift)
	interval=1
	if [ $# -gt 0 ] && [[ $1 =~ ^[0-9.]+$ ]]; then interval=$1; shift; fi
	[ $# -gt 0 ] || die "usage: demo-load.sh drift [SECONDS] DIR..."
	while :; do
		for dir in "$@"; do render "$dir" 1; done
		sleep "$interval"
	done
	;;
*)
	die "usage: demo-load.sh init|step|set|drift ... (see the comment at the top)"
	;;
esac
