#!/usr/bin/env bash
# soak.sh: `make soak`. Ten minutes of churn in the namespace lab
# (TestLabSoak in test/lab_soak_test.go with LAB_SOAK=10m): agents killed,
# leaving, rejoining and joining, drains, load changes, DNS and API queries.
# It fails unless the memory and goroutines of every process that runs
# throughout stay flat, and writes the curve to docs/soak.md,
# docs/soak-memory.png and docs/soak-goroutines.png, and docs/soak.md into
# BENCHMARKS.md (its "## Soak" section; scripts/bench.sh keeps it).
# Needs root for the network namespaces. LAB_SOAK=3m for a shorter run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PEERLOAD_BIN=${PEERLOAD_BIN:-$PWD/bin}
export LAB_SOAK=${LAB_SOAK:-10m}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "soak: $LAB_SOAK of churn in the namespace lab" >&2
status=0
LAB_SOAK_OUT=$out go test -count=1 -timeout 40m -run '^TestLabSoak$' -v ./test/ >"$out/log" 2>&1 || status=$?
grep -E '^\s+lab_soak_test.go|^\s+\| |^(--- |ok|FAIL)' "$out/log" >&2 || true
if [ ! -f "$out/soak.md" ]; then
	tail -n 60 "$out/log" >&2
	echo "soak: no report written (exit $status)" >&2
	exit $((status == 0 ? 1 : status))
fi
cp "$out/soak-memory.png" "$out/soak-goroutines.png" docs/
cp "$out/soak.md" docs/soak.md
# Replace the "## Soak" section of BENCHMARKS.md (up to the next "## "
# heading or the end), or append it.
awk -v f=docs/soak.md '
	/^## Soak/ { while ((getline l < f) > 0) print l; skip = 1; done = 1; next }
	skip && /^## / { skip = 0; print "" }
	!skip { print }
	END { if (!done) { print ""; while ((getline l < f) > 0) print l } }
' BENCHMARKS.md >BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
echo "soak: wrote docs/soak.md, docs/soak-*.png and the Soak section of BENCHMARKS.md" >&2
exit "$status"
