#!/usr/bin/env bash
# iputils-tests.sh: run iputils' own ping tests (test/ping/*.t, Perl) with pinglab standing in
# for ping, and with the system's ping beside it, so that the two can be compared.
#
#   scripts/iputils-tests.sh /path/to/iputils      # a checkout of github.com/iputils/iputils
#
# CI cannot fetch iputils, so TestParity (cmd/pinglab) carries the same checks, written anew,
# and meson.build's cases; this script runs the originals where a checkout is at hand. It needs
# Debian's libtest-command-perl and libsocket-getaddrinfo-perl.
set -euo pipefail
src=${1:?usage: scripts/iputils-tests.sh /path/to/iputils}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
(cd "$root" && go build -o "$bin/pinglab" ./cmd/pinglab)
export PATH="$bin:$PATH" LC_ALL=C LANG=C
for t in "$src"/test/ping/*.t; do
	for cmd in "pinglab ping" ping; do
		echo "=== $(basename "$t") with $cmd"
		perl "$t" "$cmd" 2>&1 | grep -E '^(ok|not ok)|Looks like' || true
	done
done
