#!/usr/bin/env bash
# Installs the real SMTP clients the end-to-end suite (./e2e, `make e2e`) drives:
# swaks (with its TLS modules), curl, python3, openssl and Postfix's
# smtp-source load generator; dnsmasq (dnsmasq-base, no service) serves the
# test zone of the sender authentication tests.
#
# Idempotent: installs only what is missing, runs `apt-get update` at most once
# and only when something has to be installed. Non-interactive (no stdin
# needed, CI-safe). Needs root (or sudo) for apt-get when anything is missing.
#
# Postfix is installed for its smtp-source tool only: debconf is preseeded with
# "No configuration" and the package's maintainer scripts are not allowed to
# start the Postfix daemon (a temporary policy-rc.d), so nothing listens on
# port 25 afterwards.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	fi
fi

have() { command -v "$1" >/dev/null 2>&1; }

# smtp-source lives in /usr/sbin on Debian, which is not on every user's PATH.
have_smtp_source() {
	have smtp-source || [ -x /usr/sbin/smtp-source ] || [ -x /usr/lib/postfix/sbin/smtp-source ]
}

# dnsmasq is in /usr/sbin too.
have_dnsmasq() {
	have dnsmasq || [ -x /usr/sbin/dnsmasq ]
}

# swaks needs IO::Socket::SSL (and Net::SSLeay) for --tls / --tls-on-connect.
have_perl_tls() {
	have perl && perl -MIO::Socket::SSL -MNet::SSLeay -e 1 >/dev/null 2>&1
}

pkgs=()
have swaks || pkgs+=(swaks)
have_perl_tls || pkgs+=(libio-socket-ssl-perl libnet-ssleay-perl)
have curl || pkgs+=(curl)
have python3 || pkgs+=(python3)
have openssl || pkgs+=(openssl)
have_dnsmasq || pkgs+=(dnsmasq-base)
need_postfix=0
if ! have_smtp_source; then
	need_postfix=1
	pkgs+=(postfix)
fi

if [ "${#pkgs[@]}" -eq 0 ]; then
	echo "e2e-deps: all tools present (swaks, curl, python3, openssl, smtp-source, dnsmasq)"
	exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ -z "$SUDO" ]; then
	echo "e2e-deps: missing packages: ${pkgs[*]}; run as root or install them by hand" >&2
	exit 1
fi

echo "e2e-deps: installing ${pkgs[*]}"

policy_created=0
cleanup() {
	if [ "$policy_created" -eq 1 ]; then
		$SUDO rm -f /usr/sbin/policy-rc.d
	fi
}
trap cleanup EXIT

if [ "$need_postfix" -eq 1 ]; then
	# Answer postfix's debconf question up front: no mail configuration.
	printf '%s\n' \
		'postfix postfix/main_mailer_type select No configuration' \
		'postfix postfix/mailname string localhost' |
		$SUDO debconf-set-selections
	# Keep the maintainer scripts from starting the daemon (invoke-rc.d
	# honours policy-rc.d; exit 101 = action forbidden). Only when no policy
	# exists already, and removed again on exit.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
		$SUDO chmod 0755 /usr/sbin/policy-rc.d
		policy_created=1
	fi
fi

$SUDO apt-get update -q </dev/null
$SUDO apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${pkgs[@]}" </dev/null

missing=()
have swaks || missing+=(swaks)
have_perl_tls || missing+=("perl IO::Socket::SSL")
have curl || missing+=(curl)
have python3 || missing+=(python3)
have openssl || missing+=(openssl)
have_dnsmasq || missing+=(dnsmasq)
have_smtp_source || missing+=(smtp-source)
if [ "${#missing[@]}" -ne 0 ]; then
	echo "e2e-deps: still missing after install: ${missing[*]}" >&2
	exit 1
fi
echo "e2e-deps: ok"
