#!/usr/bin/env bash
# `make image`: builds the otelcol-smtp image FROM scratch and proves it works
# the way it is meant to run:
#   - the binary is static (a dynamically linked one cannot start in scratch);
#   - tags <version> and dev, OCI labels, USER 10001:10001, under 100 MB;
#   - the built-in default config validates;
#   - run read-only, with every capability dropped and no-new-privileges,
#     with a mounted config: a mail sent to the published port (127.0.0.1
#     only) gets 250 and its record appears in the container's output;
#   - stopped with SIGTERM, it exits cleanly; the container is removed.
# Usage: VERSION=x.y.z scripts/image.sh   (the Makefile passes VERSION)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/docker-up.sh

image=otelcol-smtp
version=${VERSION:?VERSION must be set (make image sets it)}
binary=bin/otelcol-smtp
name="otelcol-smtp-check-$$"
tmp=$(mktemp -d)

cleanup() {
	"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	docker_down
}
trap cleanup EXIT
fail() { echo "image: FAIL: $*" >&2; exit 1; }

ldd_out=$(LC_ALL=C ldd "$binary" 2>&1 || true)
grep -q 'not a dynamic executable' <<<"$ldd_out" ||
	fail "$binary is dynamically linked; it must be built with CGO_ENABLED=0 (make build does): $ldd_out"

# The CA bundle the exporters verify TLS backends with.
if [ ! -f /etc/ssl/certs/ca-certificates.crt ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates </dev/null
fi
mkdir -p dist/image
cp /etc/ssl/certs/ca-certificates.crt dist/image/ca-certificates.crt

docker_up
"$DOCKER" build -q --build-arg VERSION="$version" -t "$image:$version" -t "$image:dev" . >/dev/null
echo "image: built $image:$version and $image:dev"

# Metadata: user, entrypoint, labels, size.
[ "$("$DOCKER" image inspect -f '{{.Config.User}}' "$image:dev")" = "10001:10001" ] || fail "USER is not 10001:10001"
[ "$("$DOCKER" image inspect -f '{{json .Config.Entrypoint}}' "$image:dev")" = '["/otelcol-smtp"]' ] || fail "ENTRYPOINT"
[ "$("$DOCKER" image inspect -f '{{json .Config.Cmd}}' "$image:dev")" = '["--config","/etc/otelcol-smtp/config.yaml"]' ] || fail "CMD"
label() { "$DOCKER" image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$1\"}}" "$image:dev"; }
[ "$(label version)" = "$version" ] || fail "label version is '$(label version)', want $version"
[ -n "$(label source)" ] && [ -n "$(label licenses)" ] || fail "labels source and licenses must be set"
size=$("$DOCKER" image inspect -f '{{.Size}}' "$image:dev")
[ "$size" -lt 100000000 ] || fail "image is $size bytes, must be under 100 MB"
echo "image: user 10001:10001, labels ok, $((size / 1000000)) MB"

hardened=(--read-only --cap-drop ALL --security-opt no-new-privileges)

# The default config in the image validates.
"$DOCKER" run --rm "${hardened[@]}" "$image:dev" validate --config /etc/otelcol-smtp/config.yaml ||
	fail "the image's default config does not validate"

# Run with a mounted config, as a user would, and send one mail.
cat >"$tmp/config.yaml" <<'YAML'
receivers:
  smtp:
    name: image_check
    address: 0.0.0.0
    port: 2525
exporters:
  debug:
    verbosity: detailed
service:
  pipelines:
    logs:
      receivers: [smtp]
      exporters: [debug]
YAML
chmod 0644 "$tmp/config.yaml"
"$DOCKER" run -d --name "$name" "${hardened[@]}" -p 127.0.0.1::2525 \
	-v "$tmp/config.yaml:/etc/otelcol-smtp/config.yaml:ro" "$image:dev" >/dev/null
port=$("$DOCKER" port "$name" 2525/tcp | head -1 | sed 's/.*://')
echo "image: container $name serves SMTP on 127.0.0.1:$port"

subject="image check $$ $(date +%s)"
python3 scripts/send-test-mail.py "$port" "$subject" || { "$DOCKER" logs "$name" 2>&1 | tail -30; fail "no 250 from the container"; }
# (The logs are read whole: grep -q on a pipe would fail it under pipefail.)
has_record() { grep -qF "email.subject: Str($subject)" <<<"$("$DOCKER" logs "$name" 2>&1)"; }
for _ in $(seq 1 50); do
	if has_record; then break; fi
	sleep 0.2
done
has_record || { "$DOCKER" logs "$name" 2>&1 | tail -30; fail "no record in the container output"; }
echo "image: mail accepted (250) and its record printed by the container"

# Read-only and capability-free really hold inside.
[ "$("$DOCKER" inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$name")" = true ] || fail "not read-only"
"$DOCKER" inspect -f '{{json .HostConfig.CapDrop}}' "$name" | grep -q ALL || fail "capabilities not dropped"

"$DOCKER" stop -t 20 "$name" >/dev/null
code=$("$DOCKER" inspect -f '{{.State.ExitCode}}' "$name")
[ "$code" = 0 ] || { "$DOCKER" logs "$name" 2>&1 | tail -20; fail "exit code $code after SIGTERM"; }
echo "image: stopped cleanly (exit 0); ok"
