#!/usr/bin/env bash
# bench-status.sh: the status page (agent/status) at 500 machines and the
# memory of its history at 100 and 1,000, printed as a markdown section for
# BENCHMARKS.md. Takes about 30 s.
#
#   - BenchmarkPage renders the page of 500 machines with a full hour of
#     history (synthetic snapshots, every machine's load on a random walk of
#     its own) through the real handler, without its render cache: server
#     time per page and the bytes sent, plain and gzipped;
#   - BenchmarkObserve is the recorder's cost per snapshot with full rings;
#   - TestHistoryMemory feeds an hour of 2 s snapshots and measures the
#     live heap it keeps.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

go test -count=1 -run '^TestHistoryMemory$' -v ./agent/status/ >"$out/mem.txt" 2>&1 || { cat "$out/mem.txt" >&2; exit 1; }
go test -count=1 -run '^$' -bench '^(BenchmarkPage|BenchmarkObserve)$' -benchtime 2s ./agent/status/ >"$out/bench.txt" 2>&1 ||
	{ cat "$out/bench.txt" >&2; exit 1; }

# field NAME UNIT: the value before UNIT on the benchmark line of NAME.
field() { awk -v n="$1" -v u="$2" 'index($1, n"-") == 1 { for (i = 2; i <= NF; i++) if ($i == u) print $(i-1) }' "$out/bench.txt"; }
ms() { awk -v v="$(field "$1" ns/op)" 'BEGIN { printf "%.1f", v / 1e6 }'; }
kb() { awk -v v="$(field "$1" bytes)" 'BEGIN { printf "%.0f", v / 1024 }'; }
us() { awk -v v="$(field "$1" ns/op)" 'BEGIN { printf "%.0f", v / 1e3 }'; }
# mem N: "KiB (bytes a machine)" from the memory test's log line for N machines.
mem() { sed -n "s/.*history of $1 machines: \([0-9]*\) KiB (\([0-9]*\) bytes a machine).*/\1 KiB (\2 bytes a machine)/p" "$out/mem.txt"; }

cat <<EOF
### Status page (agent/status)

\`go test -run '^\$' -bench '^(BenchmarkPage|BenchmarkObserve)\$' -benchtime 2s ./agent/status/\` and
\`go test -run '^TestHistoryMemory\$' -v ./agent/status/\` (scripts/bench-status.sh)

The page of **500 machines** with a full hour of history (synthetic snapshots every 2 s, each
machine's load on a random walk of its own), rendered by the real handler with its render cache
off: server time per request and the bytes sent. Viewers asking for the same page within a
second share one render, so the cost per snapshot does not grow with the number of browsers.

| request | server time | sent |
|---|---:|---:|
| \`GET /\` (whole page) | $(ms BenchmarkPage/page) ms | $(kb BenchmarkPage/page) KiB |
| \`GET /\`, gzip | $(ms BenchmarkPage/page-gzip) ms | $(kb BenchmarkPage/page-gzip) KiB |
| \`GET /status/live\`, gzip (what the page refetches every 2 s) | $(ms BenchmarkPage/live-gzip) ms | $(kb BenchmarkPage/live-gzip) KiB |
| \`GET /status.json\`, gzip | $(ms BenchmarkPage/json-gzip) ms | $(kb BenchmarkPage/json-gzip) KiB |

History kept in memory (one point per 2 s interval for 5 min, 10 s means for the hour, per
machine and for the cluster), measured as live heap after an hour of snapshots: **$(mem 100)**
at 100 machines, **$(mem 1000)** at 1,000. Recording one snapshot costs
$(us BenchmarkObserve/machines=100) µs at 100 machines and $(us BenchmarkObserve/machines=1000) µs at 1,000.
EOF
