#!/usr/bin/env bash
# compat.sh - compile and test the smtp receiver against a newer OpenTelemetry
# Collector release than the one pinned in go.mod, without touching the
# repository: the tree is copied to a temporary folder, every collector module
# (go.opentelemetry.io/collector/...) the root go.mod requires is upgraded
# there with `go get` (v1.x modules -> $COMPAT_STABLE, v0.x -> $COMPAT_BETA),
# then `go mod tidy`, `go build ./...` and the receiver's tests run.
#
# Usage: scripts/compat.sh                  (defaults: v0.165.0 / v1.71.0)
#        COMPAT_BETA=v0.165.0 COMPAT_STABLE=v1.71.0 scripts/compat.sh
#        KEEP_COMPAT_DIR=1 scripts/compat.sh   (keep the temporary copy)
set -euo pipefail

BETA="${COMPAT_BETA:-v0.165.0}"
STABLE="${COMPAT_STABLE:-v1.71.0}"
GO="${GO:-go}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/smtpreceiver-compat.XXXXXX")"
cleanup() {
	if [[ "${KEEP_COMPAT_DIR:-}" == "1" ]]; then
		echo "compat: temporary copy kept in $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT

log() { printf 'compat: %s\n' "$*"; }
fail() { printf 'compat: FAILED: %s\n' "$*" >&2; exit 1; }

# requires FILE: prints "path version direct|indirect" for each require line.
requires() {
	awk '
		/^require[ \t]*\($/ { inreq = 1; next }
		inreq && /^\)/      { inreq = 0; next }
		inreq && NF >= 2    { print $1, $2, ($0 ~ /\/\/ indirect/ ? "indirect" : "direct"); next }
		/^require[ \t]+[^( \t]/ { print $2, $3, ($0 ~ /\/\/ indirect/ ? "indirect" : "direct") }
	' "$1"
}
# collector_requires FILE: like requires, restricted to collector modules.
collector_requires() {
	requires "$1" | awk '$1 ~ /^go\.opentelemetry\.io\/collector(\/|$)/'
}
target_version() {
	case "$1" in
		v0.*) echo "$BETA" ;;
		*) echo "$STABLE" ;;
	esac
}

log "$("$GO" version)"
log "target collector versions: v0.x modules -> $BETA, v1.x (stable) modules -> $STABLE"
log "copying $ROOT to $WORK (without .git, _build, bin, .tools)"
tar -C "$ROOT" \
	--exclude=./.git --exclude=./_build --exclude=./bin --exclude=./.tools \
	--exclude=./.e2e --exclude=./dist \
	-cf - . | tar -C "$WORK" -xf -
cd "$WORK"

cp go.mod go.mod.orig
direct=()
indirect=()
while read -r path version kind; do
	spec="$path@$(target_version "$version")"
	if [[ "$kind" == direct ]]; then direct+=("$spec"); else indirect+=("$spec"); fi
done < <(collector_requires go.mod)
[[ ${#direct[@]} -gt 0 ]] || fail "no go.opentelemetry.io/collector modules required directly by go.mod"

log "go get (direct requirements): ${direct[*]}"
"$GO" get "${direct[@]}" || fail "go get of the direct collector requirements"

if [[ ${#indirect[@]} -gt 0 ]]; then
	log "go get (indirect requirements): ${indirect[*]}"
	if ! "$GO" get "${indirect[@]}"; then
		# A module may no longer exist (or be served) at the target version;
		# upgrade the others one by one and let MVS/tidy settle the rest.
		log "retrying indirect requirements one by one"
		for spec in "${indirect[@]}"; do
			"$GO" get "$spec" >/dev/null 2>&1 || log "warning: skipped $spec (not available)"
		done
	fi
fi

log "go mod tidy"
"$GO" mod tidy || fail "go mod tidy"

echo
log "collector modules after the upgrade (was -> now):"
declare -A before=()
while read -r path version _; do before[$path]="$version"; done < <(collector_requires go.mod.orig)
while read -r path version kind; do
	printf '  %-70s %-10s -> %s%s\n' "$path" "${before[$path]:-(new)}" "$version" \
		"$([[ $kind == indirect ]] && echo ' (indirect)')"
done < <(collector_requires go.mod)
echo

log "go build ./..."
"$GO" build ./... || fail "go build ./... against collector $BETA / $STABLE"

log "go test -count=1 ./receiver/... ./internal/..."
"$GO" test -count=1 ./receiver/... ./internal/... || fail "tests against collector $BETA / $STABLE"

log "OK: receiver builds and passes its tests against collector $BETA / $STABLE"
