#!/usr/bin/env bash
# Installs HAProxy for `make scale` without starting Debian's haproxy service
# (a temporary policy-rc.d forbids it; the tests run their own instance).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
[ "$(id -u)" = 0 ] || { echo "scale-deps: run as root to install haproxy" >&2; exit 1; }
policy_created=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod 0755 /usr/sbin/policy-rc.d
	policy_created=1
fi
trap '[ "$policy_created" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends haproxy </dev/null
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ]
echo "scale-deps: haproxy installed"
