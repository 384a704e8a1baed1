#!/usr/bin/env bash
# compare.sh: the comparison walk-through of pinglab. It runs three scenarios of the
# UDP pinger, saves each run with --csv, and draws them together with "pinglab plot" and
# "pinglab report":
#
#   1. no loss:          a UDP echo server on loopback;
#   2. server drop 20%:  the same server dropping 20% of the datagrams (seeded, reproducible);
#   3. lossy drop 20%:   a lab (pinglab lab up) whose server host drops 20% of UDP to its port
#                        with an nftables rule (pinglab lossy drop). It needs root; where it
#                        cannot run, the script says why and goes on with the first two.
#
# Usage: scripts/compare.sh [-o DIR] [-c COUNT] [-i INTERVAL] [--no-lab] [--docs]
#   -o DIR       where the CSVs, compare.png and report.md go (default: a new temporary
#                folder, named at the end; nothing is written in the working tree)
#   -c COUNT     probes per scenario (default 200)
#   -i INTERVAL  seconds between probes (default 0.02)
#   --no-lab     leave out the lab scenario
#   --docs       also copy the figure and the table to docs/compare.png and docs/compare.md
#                (the README's)
# It builds pinglab from this tree unless PINGLAB names a binary.
set -euo pipefail

out=""
count=200
nolab=0
interval=0.02
docs=0
while [ $# -gt 0 ]; do
	case "$1" in
	-o) out=$2; shift 2 ;;
	-c) count=$2; shift 2 ;;
	-i) interval=$2; shift 2 ;;
	--docs) docs=1; shift ;;
	--no-lab) nolab=1; shift ;;
	-h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "$out" ]; then
	out=$(mktemp -d "${TMPDIR:-/tmp}/pinglab-compare.XXXXXX")
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
tmp=$(mktemp -d)
bin=${PINGLAB:-$tmp/pinglab}

# Processes this script started (their process groups), and whether it brought a lab up:
# the trap ends exactly those and takes down only its own lab.
pids=()
lab=0
cleanup() {
	for pid in "${pids[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ "$lab" = 1 ]; then
		"$bin" lossy clear --netns pinglab-server >/dev/null 2>&1 || true
		"$bin" lab down >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -z "${PINGLAB:-}" ]; then
	(cd "$root" && go build -o "$bin" ./cmd/pinglab)
fi

# start_server LOG ARGS...: runs "pinglab udp server ARGS" in its own process group and waits
# for its first line, which names the address it listens on.
start_server() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 &
	pids+=($!)
	for _ in $(seq 100); do
		if grep -q 'UDP echo server on' "$log" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "${pids[-1]}" 2>/dev/null; then
			break
		fi
		sleep 0.1
	done
	echo "compare.sh: the UDP server did not start:" >&2
	cat "$log" >&2
	return 1
}

# server_addr LOG: the address a server's first line names ("... on 127.0.0.1:40123: ...").
server_addr() {
	sed -n 's/^UDP echo server on \([^ ]*\):.*/\1/p' "$1" | head -n 1
}

# ping_run NAME ARGS...: one scenario's run, quiet, saved to NAME.csv.
ping_run() {
	local name=$1
	shift
	echo "== $name"
	"$@" -c "$count" -i "$interval" -q --csv "$out/$name.csv" || true
	runs+=("$out/$name.csv")
}

runs=()
labels=()

start_server "$out/server-noloss.log" "$bin" udp server --listen 127.0.0.1:0 --quiet
ping_run noloss "$bin" udp ping "$(server_addr "$out/server-noloss.log")"
labels+=(--label "no loss")

start_server "$out/server-drop20.log" "$bin" udp server --listen 127.0.0.1:0 --drop 20% --seed 1 --quiet
ping_run server-drop20 "$bin" udp ping "$(server_addr "$out/server-drop20.log")"
labels+=(--label "server drop 20%")

# The lab scenario: only as root, only when no lab is up already (the script must not take
# down a lab someone else is using), and only when "lab up" works here.
skip=""
if [ "$nolab" = 1 ]; then
	skip="--no-lab"
elif [ "$(id -u)" != 0 ]; then
	skip="needs root (pinglab lab and lossy use network namespaces and nftables)"
elif [ -e /run/netns/pinglab-client ] || [ -e /run/netns/pinglab-server ]; then
	skip="a pinglab lab is up already; run 'pinglab lab down' first to include it"
elif ! "$bin" lab up >"$out/lab-up.log" 2>&1; then
	skip="pinglab lab up failed: $(tail -n 1 "$out/lab-up.log")"
	"$bin" lab down >/dev/null 2>&1 || true
fi
if [ -z "$skip" ]; then
	lab=1
	start_server "$out/server-lab.log" "$bin" lab exec server -- "$bin" udp server --listen :12000 --quiet
	if "$bin" lossy drop --netns pinglab-server --prob 20% --proto udp --port 12000 >"$out/lossy.log" 2>&1; then
		ping_run lab-lossy-drop20 "$bin" lab exec client -- "$bin" udp ping 10.77.1.2:12000
		labels+=(--label "lab: lossy drop 20%")
	else
		echo "== lab: lossy drop 20% skipped: pinglab lossy drop failed: $(tail -n 1 "$out/lossy.log")"
	fi
else
	echo "== lab: lossy drop 20% skipped: $skip"
fi

"$bin" plot "${runs[@]}" "${labels[@]}" -o "$out/compare.png"
"$bin" report "${runs[@]}" "${labels[@]}" >"$out/report.md"
echo
cat "$out/report.md"
echo
echo "wrote $out/compare.png, $out/report.md and the runs' CSVs"
if [ "$docs" = 1 ]; then
	mkdir -p "$root/docs"
	cp "$out/compare.png" "$root/docs/compare.png"
	cp "$out/report.md" "$root/docs/compare.md"
	echo "copied to docs/compare.png and docs/compare.md"
fi
