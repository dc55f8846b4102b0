#!/usr/bin/env bash
# Sourced by the image scripts: makes Debian's Docker usable here.
#   - installs docker.io when /usr/bin/docker is missing (apt-get, as root);
#   - starts dockerd by hand when no daemon answers (no init system manages it
#     on these machines) and stops it again on exit (docker_down).
# Uses /usr/bin/docker explicitly: a newer client in /usr/local/bin may shadow
# it and fails with BuildKit ("buildx component is missing"); builds use the
# legacy builder (DOCKER_BUILDKIT=0). Nothing is pulled: no registry is reachable.
DOCKER=/usr/bin/docker
export DOCKER_BUILDKIT=0
dockerd_pid=""

docker_up() {
	if [ ! -x "$DOCKER" ] || ! command -v dockerd >/dev/null; then
		echo "docker-up: installing docker.io"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io </dev/null
	fi
	if "$DOCKER" info >/dev/null 2>&1; then
		return 0
	fi
	echo "docker-up: starting dockerd"
	dockerd >"${TMPDIR:-/tmp}/dockerd-otelcol-smtp.log" 2>&1 &
	dockerd_pid=$!
	for _ in $(seq 1 60); do
		if "$DOCKER" info >/dev/null 2>&1; then return 0; fi
		if ! kill -0 "$dockerd_pid" 2>/dev/null; then break; fi
		sleep 0.5
	done
	cat "${TMPDIR:-/tmp}/dockerd-otelcol-smtp.log" >&2
	echo "docker-up: dockerd did not come up" >&2
	return 1
}

docker_down() {
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null || true
		wait "$dockerd_pid" 2>/dev/null || true
		dockerd_pid=""
	fi
}
