#!/usr/bin/env bash
# Installs what the tests and benchmarks drive, when it is missing:
# named (bind9), dig/nsupdate/tsig-keygen (bind9-dnsutils), dnsperf,
# promtool (prometheus: the alert rule tests), chromium (the status page's
# browser test), lintian and systemd-nspawn (systemd-container: the package
# tests).
set -euo pipefail
need=()
command -v named >/dev/null 2>&1 || [ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null 2>&1 && command -v nsupdate >/dev/null 2>&1 && command -v tsig-keygen >/dev/null 2>&1 || need+=(bind9-dnsutils)
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# The package tests (make test-deb): lintian, and systemd-nspawn to boot a
# throwaway copy of the machine the package is installed into.
command -v lintian >/dev/null 2>&1 || need+=(lintian)
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
# The Caddy benchmark (scripts/bench-caddy.sh): wrk, an HTTP load generator.
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing ${need[*]}; run 'sudo apt-get install ${need[*]}'" >&2
	exit 1
fi
echo "install-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts named as a service on install; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now named >/dev/null 2>&1 || true; fi
# Likewise the Prometheus server: only its promtool is wanted.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
pkill -x named 2>/dev/null || true
