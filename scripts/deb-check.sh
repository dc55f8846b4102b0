#!/usr/bin/env bash
# `make deb` (after nfpm built the package): installs it on this machine and
# proves it is complete and works, then purges it.
#   - dpkg -i; the files, the conffile, the system user;
#   - systemd-analyze verify of the unit prints nothing at all (it exits 0
#     even on a misspelled key, so any output is a failure), and the unit has
#     the hardening keys;
#   - the packaged config validates;
#   - the installed binary, run as otelcol-smtp with the unit's capability set
#     (setpriv; no systemd as PID 1 here), takes a mail on 127.0.0.1 (port 25
#     when it is free: the CAP_NET_BIND_SERVICE path) and writes the record
#     where the packaged config says;
#   - lintian reports no error;
#   - dpkg -P leaves nothing behind but the system user.
# Needs root. Usage: scripts/deb-check.sh dist/otelcol-smtp_<version>_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
deb=${1:?usage: $0 <package.deb>}
pkg=otelcol-smtp
user=otelcol-smtp
unit=/lib/systemd/system/otelcol-smtp.service
fail() { echo "deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root (dpkg -i)"

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v lintian >/dev/null || missing+=(lintian)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v python3 >/dev/null || missing+=(python3)
if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q </dev/null
	apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

# dpkg with a wait for the dpkg lock (another apt/dpkg may be running), at
# most five minutes.
dpkg_locked() {
	local out
	for _ in $(seq 1 150); do
		if out=$(dpkg "$@" 2>&1); then echo "$out"; return 0; fi
		grep -q 'lock' <<<"$out" || { echo "$out" >&2; return 1; }
		sleep 2
	done
	echo "$out" >&2
	return 1
}

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	if dpkg -s "$pkg" >/dev/null 2>&1; then dpkg_locked -P "$pkg" >/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# A package left over from an interrupted run is purged first.
if dpkg -s "$pkg" >/dev/null 2>&1; then dpkg_locked -P "$pkg" >/dev/null; fi
before=$(mktemp -p "$tmp")
find /etc /usr /var/lib /lib -xdev -path /var/lib/dpkg -prune -o -path /var/lib/apt -prune -o -print 2>/dev/null | sort >"$before"

echo "deb: lintian $deb"
lintian --tag-display-limit 0 "$deb" 2>&1 | tee "$tmp/lintian" || true
if grep -q '^E:' "$tmp/lintian"; then fail "lintian reports errors"; fi

dpkg_locked -i "$deb"
for f in /usr/bin/otelcol-smtp /etc/otelcol-smtp/config.yaml "$unit" \
	/usr/share/doc/otelcol-smtp/copyright /usr/share/doc/otelcol-smtp/changelog.gz; do
	[ -e "$f" ] || fail "$f is not installed"
done
grep -qx /etc/otelcol-smtp/config.yaml "/var/lib/dpkg/info/$pkg.conffiles" || fail "config.yaml is not a conffile"
getent passwd "$user" >/dev/null || fail "postinst did not create the user $user"
uid=$(id -u "$user")
[ "$uid" -lt 1000 ] || fail "$user is not a system user (uid $uid)"
[ "$(stat -c %U /var/lib/otelcol-smtp)" = "$user" ] || fail "/var/lib/otelcol-smtp is not owned by $user"
echo "deb: installed; files, conffile and system user $user (uid $uid) present"

out=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify failed: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed (any output is a failure): $out"
for key in User=otelcol-smtp AmbientCapabilities=CAP_NET_BIND_SERVICE NoNewPrivileges=true \
	ProtectSystem=strict StateDirectory=otelcol-smtp Restart=on-failure; do
	grep -qx "$key" "$unit" || fail "the unit lacks $key"
done
echo "deb: systemd-analyze verify: silent; hardening keys present"

setpriv_user=(setpriv --reuid="$user" --regid="$user" --init-groups --no-new-privs)
(cd /var/lib/otelcol-smtp && "${setpriv_user[@]}" /usr/bin/otelcol-smtp validate --config /etc/otelcol-smtp/config.yaml) ||
	fail "the packaged config does not validate"
echo "deb: the packaged config validates"

# Run as the service user with the unit's capabilities. Port 25 when free;
# metrics and health check moved to free ports so nothing else collides.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1",int(sys.argv[1])))' "$1" 2>/dev/null; }
if port_free 25; then port=25; else port=$(free_port); echo "deb: port 25 is in use here; using $port"; fi
health=$(free_port)
(cd /var/lib/otelcol-smtp && exec setpriv --reuid="$user" --regid="$user" --init-groups \
	--inh-caps=+net_bind_service --ambient-caps=+net_bind_service --no-new-privs \
	/usr/bin/otelcol-smtp --config /etc/otelcol-smtp/config.yaml \
	--set=receivers::smtp::port="$port" \
	--set=extensions::health_check::endpoint="127.0.0.1:$health" \
	--set=service::telemetry::metrics::level=none) >"$tmp/run.log" 2>&1 &
pid=$!
subject="deb check $$ $(date +%s)"
python3 scripts/send-test-mail.py "$port" "$subject" || { cat "$tmp/run.log"; fail "the installed binary did not take the mail on port $port"; }
records=/var/lib/otelcol-smtp/smtp-records.jsonl
for _ in $(seq 1 50); do grep -qF "$subject" "$records" 2>/dev/null && break; sleep 0.2; done
grep -qF "$subject" "$records" || { cat "$tmp/run.log"; fail "no record in $records"; }
[ "$(stat -c %U "$records")" = "$user" ] || fail "$records is not written by $user"
python3 -c 'import sys,urllib.request; urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=5)' "$health" ||
	fail "the health check does not answer"
kill -TERM "$pid"
wait "$pid" || { cat "$tmp/run.log"; fail "exit status $? after SIGTERM"; }
pid=""
echo "deb: run as $user on 127.0.0.1:$port: mail taken (250), record in $records, health check 200, clean SIGTERM stop"

dpkg_locked -P "$pkg"
after=$(mktemp -p "$tmp")
find /etc /usr /var/lib /lib -xdev -path /var/lib/dpkg -prune -o -path /var/lib/apt -prune -o -print 2>/dev/null | sort >"$after"
left=$(comm -13 "$before" "$after" | grep -v -e '^/etc/passwd' -e '^/etc/group' -e '^/etc/shadow' -e '^/etc/gshadow' -e '^/etc/subuid' -e '^/etc/subgid' || true)
[ -z "$left" ] || fail "dpkg -P left behind: $left"
getent passwd "$user" >/dev/null || fail "the system user should stay after purge"
echo "deb: dpkg -P left nothing but the system user; ok"
