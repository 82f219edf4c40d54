#!/usr/bin/env bash
# check-modules: what `make lint` checks about the repository's Go modules
# (README.md, "Modules"). The developer commands and `make` run in the
# workspace go.work makes; a site that builds its own Caddy or CoreDNS
# reads only a plugin module's go.mod. These checks keep the two the same:
#
#  - go.work uses every module in the tree, so no module is left out of
#    `make lint` and `make test`;
#  - every module is tidy on its own (GOWORK=off): its go.mod names every
#    module its packages and tests need, which the workspace would hide;
#  - the workspace builds each module's packages and tests with the same
#    module versions as that module alone. The workspace selects, for a
#    module two go.mod files require (quic-go in Caddy's and CoreDNS's
#    graphs), the higher version; then the tests and bin/ would run code
#    the module's users never get. Raise the lower go.mod to match (`go
#    get` in that module) or leave both alone.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
fail=0

if [ "$(go env GOWORK)" != "$top/go.work" ]; then
	echo "check-modules: go env GOWORK is '$(go env GOWORK)', not $top/go.work (is GOWORK set in the environment?)" >&2
	exit 1
fi

mapfile -t modules < <(go list -m -f '{{.Dir}}' | sed "s|^$top|.|")

# Every go.mod, tracked or new (not ignored), is a module of the workspace.
while read -r gomod; do
	dir=./$(dirname "$gomod")
	dir=${dir%/.}
	found=0
	for m in "${modules[@]}"; do [ "$m" = "$dir" ] && found=1; done
	if [ $found = 0 ]; then
		echo "check-modules: $gomod is not in go.work: go work use $dir" >&2
		fail=1
	fi
done < <(git ls-files --cached --others --exclude-standard -- go.mod '*/go.mod')

# This repository's modules are left out: alone they carry the placeholder
# version of their replace directives, in the workspace none.
list='{{with .Module}}{{.Path}} {{.Version}}{{end}}'
for m in "${modules[@]}"; do
	if ! diff=$(cd "$m" && GOWORK=off go mod tidy -diff 2>&1); then
		echo "check-modules: $m is not tidy on its own (make tidy):" >&2
		echo "$diff" >&2
		fail=1
		continue
	fi
	alone=$(cd "$m" && GOWORK=off go list -deps -test -f "$list" ./... | grep -v '^github.com/peerload/peerload' | sort -u)
	workspace=$(cd "$m" && go list -deps -test -f "$list" ./... | grep -v '^github.com/peerload/peerload' | sort -u)
	if [ "$alone" != "$workspace" ]; then
		echo "check-modules: the workspace builds $m with other versions than its go.mod selects (< alone, > workspace):" >&2
		diff <(echo "$alone") <(echo "$workspace") | grep '^[<>]' >&2 || true
		fail=1
	fi
done
exit $fail
