#!/usr/bin/env bash
# bench-memory.sh: where an idle agent's memory goes, printed as a markdown
# section for BENCHMARKS.md. Needs bin/ built. Takes about a minute.
#
# Five `peerload agent` processes on loopback (LAN defaults, an idle load)
# run for 40 s; the fifth one's memory is read from /proc/PID/smaps (the
# binary's mappings, anonymous memory) and from its /metrics (the Go
# runtime's own accounting). The binary is broken down with `go tool nm
# -size` and `go version -m`. The plotting libraries of `peerload simulate
# --plot` are not in it: they are in bin/peerload-plot, which only --plot
# runs (TestNoPlottingInPeerload keeps them out).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${PEERLOAD_BIN:-$PWD/bin}/peerload
NAME=bench-memory
. scripts/bench-lib.sh
out=$TMP

# cluster BINARY NAME: five idle agents of BINARY; sets pid to the fifth's
# once the cluster settled 40 s.
cluster() {
	local b=$1 tag=$2
	mkdir -p "$out/proc"
	cp -r agent/sample/testdata/proc/. "$out/proc/"
	local started=() gossip=() api=()
	for i in 1 2 3 4 5; do gossip[i]=$(free_port) api[i]=$(free_port); done
	api5=${api[5]}
	for i in 1 2 3 4 5; do
		mkdir -p "$out/$tag$i/state" "$out/$tag$i/root/tmp"
		local join=()
		[ "$i" -gt 1 ] && join=(--join "127.0.0.1:${gossip[1]}")
		"$b" agent --name "$tag$i" --bind "127.0.0.1:${gossip[i]}" --advertise "127.0.2.$i" --api "127.0.0.1:${api[i]}" \
			--proc "$out/proc" --root "$out/$tag$i/root" --state-dir "$out/$tag$i/state" --ssh-port 0 -q \
			"${join[@]}" >"$out/$tag$i.log" 2>&1 &
		pids+=($!)
		started+=($!)
	done
	sleep 40
	pid=${started[4]}
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "bench-memory: agent ${tag}5 exited:" >&2
		cat "$out/${tag}5.log" >&2
		exit 1
	fi
}
stop() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
	pids=()
}
# seg PID PERM: kB resident in the binary's mappings with permissions PERM.
seg() { awk -v b="$(readlink -f "/proc/$1/exe")" -v p="$2" '/^[0-9a-f]+-[0-9a-f]+ / { on = ($6 == b && $2 == p) } on && /^Rss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps"; }
status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
metric() { curl -s "http://127.0.0.1:$api5/metrics" | awk -v n="$1" '$1 == n { printf "%.0f", $2 / 1024 }'; }
mb() { awk -v v="$1" 'BEGIN { printf "%.1f", v / 1024 }'; }

cluster "$bin" mem
rss=$(status "$pid" VmRSS) anon=$(status "$pid" RssAnon) file=$(status "$pid" RssFile)
text=$(seg "$pid" r-xp) rodata=$(seg "$pid" r--p) data=$(seg "$pid" rw-p)
heapInuse=$(metric go_memstats_heap_inuse_bytes) heapAlloc=$(metric go_memstats_heap_alloc_bytes)
stack=$(metric go_memstats_stack_inuse_bytes) gcsys=$(metric go_memstats_gc_sys_bytes)
othersys=$(metric go_memstats_other_sys_bytes) mspan=$(metric go_memstats_mspan_inuse_bytes)
stop

size=$(stat -c %s "$bin")
deps=$(go version -m "$bin" | grep -c $'^\tdep')
# group PATTERN: KiB of symbols whose name starts with PATTERN.
go tool nm -size "$bin" >"$out/nm.txt"
group() { awk -v p="$1" 'index($4, p) == 1 { s += $2 } END { printf "%.0f", s / 1024 }' "$out/nm.txt"; }

cat <<EOF
### Where an idle agent's memory goes

\`scripts/bench-memory.sh\`: five \`bin/peerload agent\` on loopback (LAN defaults, idle), the fifth
read after 40 s from /proc/PID/smaps and its own /metrics; the binary from \`go tool nm -size\` and
\`go version -m\` ($deps modules linked).

| where | resident |
|---|---:|
| **VmRSS** | **$(mb "$rss") MB** |
| the binary's pages (file-backed, shared and reclaimable): code | $(mb "$text") MB |
| · read-only data (pclntab, type data, strings) | $(mb "$rodata") MB |
| · initialised data | $(mb "$data") MB |
| anonymous (the process's own) | $(mb "$anon") MB |
| · Go heap in use (live: $(mb "$heapAlloc") MB) | $(mb "$heapInuse") MB |
| · goroutine stacks | $(mb "$stack") MB |
| · GC metadata, spans, runtime | $(mb "$((gcsys + othersys + mspan))") MB (reserved; partly resident) |

The binary is $(mb "$((size / 1024))") MB. What it holds, by symbols: Prometheus client_golang $(group github.com/prometheus/client_golang) KiB with protobuf
$(group google.golang.org/protobuf) KiB and prometheus/common $(group github.com/prometheus/common) KiB, net/http $(group net/http) KiB, miekg/dns $(group github.com/miekg/dns) KiB,
procfs $(group github.com/prometheus/procfs) KiB, memberlist $(group github.com/hashicorp/memberlist) KiB with msgpack $(group github.com/hashicorp/go-msgpack) KiB, peerload itself
$(group github.com/peerload/peerload) KiB. Every package's init runs at start and touches its pages. The plotting
libraries of \`peerload simulate --plot\` (gonum/plot, whose init parses 12 embedded fonts: 4.2 MB of an
idle agent's VmRSS when they were linked) are in \`bin/peerload-plot\`, which only \`--plot\` runs.
The status page is written by Go code, not html/template: executing a template looks methods up by name
through reflect, which makes the linker keep every exported method of every type (4 MB of the binary
and 2 MB of VmRSS when it did; TestLinkerDropsUncalledMethods). Gossip reads each UDP packet into one
buffer and keeps a copy of its own size: memberlist's NetTransport allocated 64 KB per packet, nearly
all of an idle agent's garbage.
EOF
