#!/bin/sh
# lab-walkthrough.sh: exercises 4 (loss below the server) and 5 (reject scenarios) of the
# assignment, end to end on one Linux machine, with network namespaces standing in for the
# client and server machines (and a router for TTL). It cleans up after itself, also when
# interrupted.
#
# Usage (root, or CAP_NET_ADMIN):   sudo scripts/lab-walkthrough.sh
# It builds pinglab from this tree unless PINGLAB names a binary:  PINGLAB=/usr/local/bin/pinglab
# The ICMP part needs iputils ping (Debian: iputils-ping); everything else is pinglab alone.
set -eu

# Without CAP_NET_ADMIN every step would fail: say so once and stop, before building anything.
capeff=$(sed -n 's/^CapEff:[[:space:]]*//p' /proc/self/status 2>/dev/null)
if [ -z "$capeff" ] || [ $(((0x$capeff >> 12) & 1)) = 0 ]; then
	echo "lab-walkthrough.sh: needs root (CAP_NET_ADMIN) for the lab's namespaces and nftables: sudo $0" >&2
	exit 2
fi

here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=""

cleanup() {
	set +e
	for p in $pids; do kill "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	"$PINGLAB" lossy clear --netns pinglab-server >/dev/null 2>&1
	"$PINGLAB" lab down >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${PINGLAB:-}" ]; then
	echo "# building pinglab"
	(cd "$here" && go build -o "$work/pinglab" ./cmd/pinglab)
	PINGLAB=$work/pinglab
fi
# Inside the lab hosts "pinglab" must be found by name, as the README's commands write it.
mkdir -p "$work/bin"
ln -sf "$(cd "$(dirname "$PINGLAB")" && pwd)/$(basename "$PINGLAB")" "$work/bin/pinglab"
PATH=$work/bin:$PATH
export PATH

say() { printf '\n$ %s\n' "$*"; }
run() { say "$*"; "$@" || true; }

# start HOST CMD...: run a server in a lab host, in the background, logs kept aside.
start() {
	host=$1
	shift
	pinglab lab exec "$host" -- "$@" >"$work/$host-$1-$2.log" 2>&1 &
	pids="$pids $!"
	sleep 0.5
}

if pinglab lab status >/dev/null 2>&1; then
	echo "a pinglab lab is already up; run: pinglab lab down" >&2
	trap - EXIT
	rm -rf "$work"
	exit 2
fi

echo "## Exercise 4: loss at the network interface"
run pinglab lab up
start server pinglab udp server
start server pinglab tcp server
run pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 5 -i 0.2

say "pinglab lossy netem --netns pinglab-server --dev eth0 --loss 20%"
if pinglab lossy netem --netns pinglab-server --dev eth0 --loss 20%; then
	run pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 200 -i 0.01 -q
else
	echo "# this kernel has no netem: the same loss through nftables"
fi
run pinglab lossy drop --netns pinglab-server --prob 20% --proto udp --port 12000
run pinglab lossy show --netns pinglab-server
run pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 200 -i 0.01 -q
run pinglab lab exec client -- pinglab tcp ping 10.77.1.2 -c 5 -i 0.2
run pinglab lossy clear --netns pinglab-server
run pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 200 -i 0.01 -q

echo
echo "## Exercise 5: reject scenarios"
run pinglab lossy reject --netns pinglab-server --with host-unreachable
run pinglab lab exec client -- pinglab udp ping 10.77.1.2 -c 3 -i 0.2
run pinglab lab exec client -- pinglab tcp ping 10.77.1.2 -c 3 -i 0.2
run pinglab lossy reject --netns pinglab-server --with port-unreachable --proto udp --port 12000
run pinglab lab exec client -- pinglab udp ping fd00:77:1::2 -c 3 -i 0.2
run pinglab lossy reject --netns pinglab-server --with admin-prohibited --proto icmp
run pinglab lab exec client -- pinglab ping 10.77.1.2 -c 3 -i 0.2
run pinglab lossy reject --netns pinglab-server --with tcp-reset --port 12000
run pinglab lab exec client -- pinglab tcp ping 10.77.1.2 -c 3 -i 0.2
run pinglab lab status
run pinglab lossy clear --netns pinglab-server
for p in $pids; do kill "$p" 2>/dev/null || true; done
for p in $pids; do wait "$p" 2>/dev/null || true; done
pids=""
run pinglab lab down

echo
echo "## A router in between: TTL"
run pinglab lab up --hosts 3
if command -v ping >/dev/null 2>&1; then
	run pinglab lab exec client -- ping -n -c 1 -t 1 10.77.2.2
	run pinglab lab exec client -- ping -n -c 1 10.77.2.2
fi
run pinglab lab exec client -- pinglab trace -n 10.77.2.2
run pinglab lab down
