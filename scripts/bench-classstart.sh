#!/usr/bin/env bash
# bench-classstart.sh: the class-start comparison (issue 21), printed as a
# markdown section for BENCHMARKS.md. Needs root (network namespaces),
# named and getent, and bin/ built. Takes about 18 minutes on 2 cores:
# 90 real agents, 2 CoreDNS, 3 named, and 15 minutes of one simulated day
# replayed in real time, then `peerload simulate` on the same day.
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERLOAD_BIN=${PEERLOAD_BIN:-$PWD/bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "bench-classstart: three arms side by side, one simulated day (about 18 minutes)" >&2
PEERLOAD_CLASSSTART_OUT="$out/classstart.md" go test -count=1 -timeout 40m -run '^$' -bench '^BenchmarkClassStart$' -benchtime 1x ./test/ >"$out/log.txt" 2>&1 ||
	{ cat "$out/log.txt" >&2; exit 1; }
cat "$out/classstart.md"
