#!/bin/sh
# bench-rfc2136.sh: RFC 2136 mode against a real BIND named on loopback.
# Measures load change -> dig at named shows the new set (p50/p99 over
# ~20 changes) and UPDATE messages per hour under steady noisy load while
# the top-N does not change (must be 0). Prints a Markdown block for
# BENCHMARKS.md. Takes about 90 s.
#
#   scripts/bench-rfc2136.sh            # builds bin/peerload first
#   PEERLOAD_BIN=/abs/bin scripts/bench-rfc2136.sh
#   PEERLOAD_BENCH_CHANGES=20 PEERLOAD_BENCH_WINDOW_S=60 (defaults)
set -eu
cd "$(dirname "$0")/.."
for p in named dig tsig-keygen; do
	if ! command -v "$p" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$p" ]; then
		echo "bench-rfc2136: $p not installed (run scripts/install-deps.sh)" >&2
		exit 1
	fi
done
if [ -z "${PEERLOAD_BIN:-}" ]; then
	mkdir -p bin
	go build -o bin/peerload ./cmd/peerload
	PEERLOAD_BIN="$(pwd)/bin"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! PEERLOAD_BIN="$PEERLOAD_BIN" \
	go test -count=1 -timeout 5m -run '^$' -bench '^BenchmarkRFC2136$' -benchtime 1x ./test/ >"$out" 2>&1; then
	cat "$out" >&2
	echo "bench-rfc2136: FAILED" >&2
	exit 1
fi
sed -n '/<!-- BEGIN bench-rfc2136 -->/,/<!-- END bench-rfc2136 -->/p' "$out"
