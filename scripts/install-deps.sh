#!/usr/bin/env bash
# Installs what the tests and benchmarks drive, when it is missing:
# named (bind9), dig/nsupdate/tsig-keygen (bind9-dnsutils), dnsperf,
# promtool (prometheus: the alert rule tests), chromium (the status page's
# browser test) and for the namespace lab (test/lab) ip (iproute2) and nft
# (nftables).
#
# It never stops a process it did not start: services of the packages it
# installs are kept from starting during the install (policy-rc.d), and a
# service that starts anyway is stopped through the init system, by name,
# only when this run installed its package.
set -euo pipefail
need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 && command -v nsupdate >/dev/null 2>&1 && command -v tsig-keygen >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || need+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing ${need[*]}; run 'sudo apt-get install ${need[*]}'" >&2
	exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive

# Debian starts a package's service on install (bind9's named, nftables'
# ruleset loader); the tests run their own. invoke-rc.d and
# deb-systemd-invoke ask policy-rc.d first: exit 101 means "do not start".
# A site's own policy-rc.d is left alone (it already decides).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	printf '#!/bin/sh\n# written by peerload scripts/install-deps.sh for one install\nexit 101\n' >"$policy"
	chmod 755 "$policy"
fi
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

# Belt and braces, only for the packages this run installed: if the service
# of bind9 (named) or prometheus (only its promtool is wanted) is running
# all the same, stop and disable that unit (never other processes, which
# belong to someone else).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	for pair in bind9:named prometheus:prometheus; do
		if [[ " ${need[*]} " == *" ${pair%%:*} "* ]]; then
			systemctl disable --now "${pair#*:}.service" >/dev/null 2>&1 || true
		fi
	done
fi
