#!/usr/bin/env bash
# bench.sh: pinglab's performance against its peers, side by side in one run.
#
#   sudo scripts/bench.sh              # the full run, ~5 minutes: 5 rounds, 100,000-probe floods, 10,000 TCP clients
#   sudo scripts/bench.sh --quick      # ~1.5 minutes: 3 rounds, smaller floods and loads
#   sudo scripts/bench.sh --no-schedule  # skip the 60-second schedule check (target 5)
#   sudo scripts/bench.sh --proxy-only   # only what pinglab proxy adds, ~30 s
#   scripts/bench.sh --rounds N --out FILE
#
# It builds pinglab (and the load tool scripts/loadgen and the naive Go echo server), starts
# every server once, then runs the comparisons in rounds, peers and pinglab interleaved within
# each round, and prints a Markdown table of the medians over the rounds, their ratios and
# whether each performance target is met. Everything runs on loopback (127.0.0.1); the
# throughput figures with the server on CPU 1 and the load on CPU 0 (taskset).
# Root is needed: iputils ping and pinglab ping only flood (-f, -i 0.01) as root.
# Peers: iputils ping, python3 (the assignment's servers in scripts/bench/), socat, and the
# naive goroutine-per-connection Go echo of scripts/bench/naiveecho.
set -euo pipefail

quick=0
schedule=1
proxy_only=0
rounds=
out=
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) quick=1 ;;
	--no-schedule) schedule=0 ;;
	--proxy-only) proxy_only=1 ;;
	--rounds) rounds="$2"; shift ;;
	--out) out="$2"; shift ;;
	-h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$quick" = 1 ]; then
	rounds=${rounds:-3}
	flood_count=30000
	udp_secs=1
	tcp_conns=2000
	tcp_secs=3
	sat_conns=2000
	sat_interval=20ms
	sat_secs=2
else
	rounds=${rounds:-5}
	flood_count=100000
	udp_secs=2
	tcp_conns=10000
	tcp_secs=5
	sat_conns=10000
	sat_interval=100ms
	sat_secs=3
fi

log() { printf '%s\n' "bench: $*" >&2; }
die() { printf '%s\n' "bench.sh: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "run as root (sudo): iputils ping and pinglab ping flood (-f, -i 0.01) only as root"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# What the peers need. socat is installed when missing (Debian: apt-get install socat).
need=()
command -v ping >/dev/null || need+=(iputils-ping)
command -v socat >/dev/null || need+=(socat)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]} (apt-get)"
	apt-get install -y "${need[@]}" >/dev/null || die "cannot install ${need[*]}; install them and run again"
fi
ping -V 2>&1 | grep -q iputils || die "ping is not iputils ping"
command -v go >/dev/null || die "go is needed to build pinglab"

# 10,000 TCP clients and their server need 10,000 descriptors each; Go raises its own soft limit
# to the hard one, but python3 does not.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((tcp_conns + 100)) ] ||
	die "RLIMIT_NOFILE $(ulimit -n) is below $((tcp_conns + 100)); raise it (ulimit -Hn)"

work=$(mktemp -d /tmp/pinglab-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

log "building pinglab, loadgen and naiveecho"
go build -o "$work/pinglab" ./cmd/pinglab
go build -o "$work/loadgen" ./scripts/loadgen
go build -o "$work/naiveecho" ./scripts/bench/naiveecho
pl=$work/pinglab
lg=$work/loadgen

# Throughput is measured with the server on one core and the load on the other, as the issue's
# "pinned" peer figures are: on a 2-core machine an unpinned server and load tool take turns on
# both cores, and the figure says more about the scheduler than about the server.
pin_server=()
pin_load=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
	pin_server=(taskset -c 1)
	pin_load=(taskset -c 0)
fi

# Ports: a random base, so that two runs (or a left-over server) do not meet.
base=$((20000 + RANDOM % 10000)) # below the ephemeral ports (32768 up)
port() { echo $((base + $1)); }

# start NAME CMD...: start a server in the background, its output in $work/NAME.log.
declare -A pid_of
start() {
	local name=$1
	shift
	"$@" >"$work/$name.log" 2>&1 &
	pid_of[$name]=$!
	pids+=($!)
}
# stop NAME: SIGTERM and wait, so that pinglab's servers print their statistics.
stop() {
	kill -TERM "${pid_of[$1]}" 2>/dev/null || true
	wait "${pid_of[$1]}" 2>/dev/null || true
}
wait_udp() { sleep 0.3; }
wait_tcp() {
	local i
	for i in $(seq 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	die "no server on port $1: $(cat "$work"/*.log | tail -5)"
}

# Results: results[key] is a space-separated list of one figure per round.
declare -A results
add() { results[$1]="${results[$1]:-} $2"; }
median() {
	# shellcheck disable=SC2086
	printf '%s\n' ${results[$1]:-} | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'
}
# field KEY TEXT: the value of key=value in a loadgen line.
field() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# rtt_median: the median of "time=X ms" over ping's per-reply lines on stdin, in µs.
rtt_median() {
	grep -o 'time=[0-9.]*' | cut -d= -f2 | sort -g |
		awk '{a[NR]=$1} END {if (NR) printf "%.0f\n", 1000*a[int((NR+1)/2)]; else print "n/a"}'
}
# flood_rate FILE: packets/s and loss% from a ping summary ("N packets transmitted, M received,
# L% packet loss, time Tms").
flood_rate() {
	grep -a '^[0-9]* packets transmitted' "$1" | head -1 |
		sed -E 's/^([0-9]+) packets transmitted, ([0-9]+) received.*, ([0-9.]+)% packet loss, time ([0-9]+)ms.*/\1 \2 \3 \4/' |
		awk '{printf "%.0f %s\n", $1 / ($4 / 1000), $3}'
}
# udp_received NAME SECONDS: datagrams/s a pinglab UDP server received, from its statistics.
udp_received() { awk -v s="$2" '$1 == "total" {printf "%.0f\n", $2 / s}' "$work/$1.log"; }
rss_kb() { awk '$1 == "VmHWM:" {print $2}' "/proc/$1/status"; }

load1() { cut -d' ' -f1 /proc/loadavg; }
loads=("$(load1)")

# What pinglab proxy adds: the RTT median of one probe in flight straight to a
# server and through a proxy with no impairment, UDP and TCP, interleaved in each round; and
# its forwarding rate, loadgen's echoes through it (each echo is two datagrams forwarded).
# Fresh servers of their own, so that the rest of the bench does not share them.
proxy_started=0
p50_us() { sed -n 's|^rtt p50/p90/p99 = \([0-9.]*\)/.*|\1|p' | awk '{printf "%.0f\n", $1 * 1000}'; }
proxy_round() {
	if [ "$proxy_started" = 0 ]; then
		start pxudp "$pl" udp server -q -l "127.0.0.1:$(port 20)"
		start pxtcp "$pl" tcp server -q -l "127.0.0.1:$(port 21)"
		start pxu "$pl" proxy -q -l "127.0.0.1:$(port 22)" --to "127.0.0.1:$(port 20)"
		start pxt "$pl" proxy -q --proto tcp -l "127.0.0.1:$(port 23)" --to "127.0.0.1:$(port 21)"
		wait_udp
		for p in 21 23; do wait_tcp "$(port $p)"; done
		proxy_started=1
	fi
	add px_udp_direct "$("$pl" udp ping -i 0 -c 3000 -q --percentiles "127.0.0.1:$(port 20)" | p50_us)"
	add px_udp_via "$("$pl" udp ping -i 0 -c 3000 -q --percentiles "127.0.0.1:$(port 22)" | p50_us)"
	add px_tcp_direct "$("$pl" tcp ping -i 0 -c 3000 -q --percentiles "127.0.0.1:$(port 21)" | p50_us)"
	add px_tcp_via "$("$pl" tcp ping -i 0 -c 3000 -q --percentiles "127.0.0.1:$(port 23)" | p50_us)"
	add px_fwd_direct "$(field echoes_per_s "$("$lg" udp -addr "127.0.0.1:$(port 20)" -duration "${udp_secs}s")")"
	add px_fwd "$(field echoes_per_s "$("$lg" udp -addr "127.0.0.1:$(port 22)" -duration "${udp_secs}s")")"
}
proxy_rows() {
	local ud uv td tv fd fv
	ud=$(median px_udp_direct) uv=$(median px_udp_via) td=$(median px_tcp_direct) tv=$(median px_tcp_via)
	fd=$(median px_fwd_direct) fv=$(median px_fwd)
	echo "| 16 | \`pinglab proxy\`, no impairment: UDP RTT p50, one probe in flight (µs) | via proxy $uv | direct $ud | +$((uv - ud)) µs | < 50 µs added | $(ok "$uv - $ud < 50") |"
	echo "| 16 | \`pinglab proxy\`, no impairment: TCP RTT p50, one probe in flight (µs) | via proxy $tv | direct $td | +$((tv - td)) µs | < 50 µs added | $(ok "$tv - $td < 50") |"
	echo "| 16 | \`pinglab proxy\` forwarding: UDP echoes/s, 4 clients × 32 in flight (datagrams forwarded/s: twice that) | via proxy $fv ($((fv * 2)) forwarded/s) | direct $fd | $(r "$fv" "$fd") | reported | – |"
}
ok() { awk "BEGIN {print ($1) ? \"yes\" : \"**no**\"}"; }
r() { awk -v a="$1" -v b="$2" 'BEGIN {if (b + 0 == 0 || a == "n/a" || b == "n/a") print "n/a"; else printf "%.2f×\n", a / b}'; }
if [ "$proxy_only" = 1 ]; then
	for i in $(seq "$rounds"); do
		log "proxy round $i of $rounds (load average $(load1))"
		proxy_round
	done
	{
		echo "pinglab $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $rounds rounds, medians over the rounds; load average 1 min $(load1)"
		echo
		echo "| # | what | pinglab | peer | ratio | target | met |"
		echo "| --- | --- | --- | --- | --- | --- | --- |"
		proxy_rows
	} | tee ${out:+"$out"}
	exit 0
fi

# Target 5 runs in the background through the whole bench: one probe a second costs the other
# measurements nothing, and the schedule is checked under the bench's own load.
if [ "$schedule" = 1 ]; then
	log "target 5: 60 probes at -i 1 in the background (--no-schedule skips it)"
	"$pl" ping -c 60 -i 1 -q --csv "$work/schedule.csv" 127.0.0.1 >"$work/schedule.out" 2>&1 &
	sched_pid=$!
	pids+=($sched_pid)
fi

# The servers that live through the rounds.
start pyudp "${pin_server[@]}" python3 scripts/bench/udp_server.py "$(port 1)"
start pludp "${pin_server[@]}" "$pl" udp server -q -l "127.0.0.1:$(port 2)"
# The one-in-flight round trip is a latency: its servers are not pinned (a pinned server
# shares its core with the client).
start pyudp1 python3 scripts/bench/udp_server.py "$(port 5)"
start pludp1 "$pl" udp server -q -l "127.0.0.1:$(port 6)"
start socat "${pin_server[@]}" socat -T 1 "UDP4-RECVFROM:$(port 3),reuseaddr,fork" EXEC:cat
start naive "${pin_server[@]}" "$work/naiveecho" "127.0.0.1:$(port 12)"
# Every load client comes from 127.0.0.1: the per-host cap is the whole server's here.
start pltcp "${pin_server[@]}" "$pl" tcp server -q -l "127.0.0.1:$(port 13)" --max-conns-per-host 16384
wait_udp
for p in 12 13; do wait_tcp "$(port $p)"; done

for r in $(seq "$rounds"); do
	log "round $r of $rounds (load average $(load1))"
	loads+=("$(load1)")

	# 1. ICMP RTT, 200 probes at 10 ms.
	add rtt_iputils "$(ping -c 200 -i 0.01 127.0.0.1 | rtt_median)"
	add rtt_pinglab "$("$pl" ping -c 200 -i 0.01 127.0.0.1 | rtt_median)"

	# 2. Flood, dots to a file in memory (the summary is read from it).
	ping -f -c "$flood_count" 127.0.0.1 >"$work/flood-iputils.out" 2>&1 || true
	"$pl" ping -f -c "$flood_count" 127.0.0.1 >"$work/flood-pinglab.out" 2>&1 || true
	read -r rate loss < <(flood_rate "$work/flood-iputils.out")
	add flood_iputils "$rate"
	add floodloss_iputils "$loss"
	read -r rate loss < <(flood_rate "$work/flood-pinglab.out")
	add flood_pinglab "$rate"
	add floodloss_pinglab "$loss"

	# 3. UDP echo, 64-byte datagrams, 4 clients x 32 in flight.
	add udp_python "$(field echoes_per_s "$("${pin_load[@]}" "$lg" udp -addr "127.0.0.1:$(port 1)" -duration "${udp_secs}s")")"
	add udp_pinglab "$(field echoes_per_s "$("${pin_load[@]}" "$lg" udp -addr "127.0.0.1:$(port 2)" -duration "${udp_secs}s")")"
	if [ "$r" = 1 ]; then
		# socat forks and runs cat per datagram: one round, one datagram in flight is plenty.
		add udp_socat "$(field echoes_per_s "$("$lg" udp -addr "127.0.0.1:$(port 3)" -clients 1 -window 1 -timeout 100ms -duration 1s)")"
	fi
	# The emulation costs the server: datagrams it handles per second, from its own statistics,
	# fresh servers with and without --drop 20% --delay 1ms, 4 x 256 in flight.
	for emu in plain emul; do
		flags=()
		[ "$emu" = emul ] && flags=(--drop 20% --delay 1ms)
		start "udp-$emu" "${pin_server[@]}" "$pl" udp server -q -l "127.0.0.1:$(port 4)" "${flags[@]}"
		wait_udp
		"${pin_load[@]}" "$lg" udp -addr "127.0.0.1:$(port 4)" -window 256 -duration "${udp_secs}s" >/dev/null
		stop "udp-$emu"
		add "udprx_$emu" "$(udp_received "udp-$emu" "$udp_secs")"
	done
	# One client, one datagram in flight: pinglab's client, RTT p50 in µs.
	for s in python:5 pinglab:6; do
		p50=$("$pl" udp ping -i 0 -c 3000 -q --percentiles "127.0.0.1:$(port "${s#*:}")" |
			sed -n 's|^rtt p50/p90/p99 = \([0-9.]*\)/.*|\1|p')
		add "udp1_${s%:*}" "$(awk -v v="$p50" 'BEGIN {printf "%.0f\n", v * 1000}')"
	done
	proxy_round

	# 4. TCP saturation, as the issue measures it: sat_conns connections each pinging every
	# sat_interval, more than any of the servers answers; the figure is what comes back.
	# (The threaded Python server is measured once, after the rounds: see below.)
	for s in naive:12 pinglab:13; do
		add "sat_${s%:*}" "$(field msgs_per_s "$("${pin_load[@]}" "$lg" tcp -addr "127.0.0.1:$(port "${s#*:}")" -conns "$sat_conns" -interval "$sat_interval" -ramp 1s -duration "${sat_secs}s")")"
	done
done

# 4. TCP, tcp_conns clients at one ping a second each: once, against a fresh pinglab server
# (its peak RSS is the figure) and the naive Go echo.
log "target 4: $tcp_conns TCP clients at 1 ping/s (load average $(load1))"
for s in pinglab naive; do
	if [ "$s" = pinglab ]; then
		start tcp10k "$pl" tcp server -q -l "127.0.0.1:$(port 14)" --max-conns-per-host 16384
	else
		start tcp10k "$work/naiveecho" "127.0.0.1:$(port 14)"
	fi
	wait_tcp "$(port 14)"
	line=$("$lg" tcp -addr "127.0.0.1:$(port 14)" -conns "$tcp_conns" -interval 1s -ramp 1s -duration "${tcp_secs}s")
	add "c10k_p50_$s" "$(field p50_ms "$line")"
	add "c10k_p99_$s" "$(field p99_ms "$line")"
	add "c10k_failed_$s" "$(field failed "$line")"
	add "c10k_rss_$s" "$(awk -v k="$(rss_kb "${pid_of[tcp10k]}")" 'BEGIN {printf "%.1f\n", k / 1024}')"
	stop tcp10k
	sleep 1 # let the 10,000 sockets leave before the next server takes the port
done

# 6. Start-up: pinglab --version, 30 runs, median in ms.
for _ in $(seq 30); do
	t0=$EPOCHREALTIME
	"$pl" --version >/dev/null
	t1=$EPOCHREALTIME
	add version "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) * 1000}')"
	t0=$EPOCHREALTIME
	ping -V >/dev/null
	t1=$EPOCHREALTIME
	add version_iputils "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f\n", (b - a) * 1000}')"
done

# 5. The schedule: the 60th probe's send time against 59 s after the first, in ms.
sched="skipped (--no-schedule)"
sched_ok="–"
if [ "$schedule" = 1 ]; then
	log "waiting for the 60-probe schedule run to end"
	wait "$sched_pid" || true
	drift=$(awk -F, '$1 == 1 {a = $2} $1 == 60 {b = $2} END {if (a && b) printf "%.3f\n", (b - a - 59) * 1000; else print "n/a"}' "$work/schedule.csv")
	sched="60th probe left 59 s $drift ms after the first"
	sched_ok=$(awk -v d="$drift" 'BEGIN {print (d != "n/a" && d >= -2 && d <= 2) ? "yes" : "**no**"}')
fi
# 4. TCP saturation of the assignment's threaded Python server, last and once: a thread per
# connection, its 10,000 threads load the machine (load average in the thousands) for whatever
# runs after them. A fresh server, and a longer ramp so that it has accepted every connection.
log "target 4: saturation of the threaded Python server, $sat_conns connections (load average $(load1))"
start pytcp "${pin_server[@]}" python3 scripts/bench/tcp_server.py "$(port 11)"
wait_tcp "$(port 11)"
add sat_python "$(field msgs_per_s "$("${pin_load[@]}" "$lg" tcp -addr "127.0.0.1:$(port 11)" -conns "$sat_conns" -interval "$sat_interval" -ramp 5s -duration "${sat_secs}s")")"
stop pytcp

loads+=("$(load1)")

# The table.

m_rtt_i=$(median rtt_iputils) m_rtt_p=$(median rtt_pinglab)
m_fl_i=$(median flood_iputils) m_fl_p=$(median flood_pinglab)
m_fll_i=$(median floodloss_iputils) m_fll_p=$(median floodloss_pinglab)
m_udp_py=$(median udp_python) m_udp_pl=$(median udp_pinglab) m_udp_so=$(median udp_socat)
m_rx_plain=$(median udprx_plain) m_rx_emul=$(median udprx_emul)
m_u1_py=$(median udp1_python) m_u1_pl=$(median udp1_pinglab)
m_sat_py=$(median sat_python) m_sat_nv=$(median sat_naive) m_sat_pl=$(median sat_pinglab)
m_p99_pl=$(median c10k_p99_pinglab) m_p99_nv=$(median c10k_p99_naive)
m_p50_pl=$(median c10k_p50_pinglab) m_p50_nv=$(median c10k_p50_naive)
m_rss_pl=$(median c10k_rss_pinglab) m_rss_nv=$(median c10k_rss_naive)
m_f_pl=$(median c10k_failed_pinglab) m_f_nv=$(median c10k_failed_naive)
m_ver=$(median version) m_ver_i=$(median version_iputils)

{
	echo "pinglab $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $rounds rounds$([ "$quick" = 1 ] && echo ' (--quick)'), medians over the rounds; load average 1 min at each round: ${loads[*]}"
	echo
	echo "| # | what | pinglab | peer | ratio | target | met |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	echo "| 1 | ICMP RTT median, 200 probes at 10 ms (µs) | $m_rtt_p | iputils ping $m_rtt_i | $(r "$m_rtt_p" "$m_rtt_i") | ≤ 1.10× | $(ok "$m_rtt_p <= 1.10 * $m_rtt_i") |"
	echo "| 2 | flood \`ping -f -c $flood_count\` (packets/s; loss) | $m_fl_p; ${m_fll_p}% | iputils ping $m_fl_i; ${m_fll_i}% | $(r "$m_fl_p" "$m_fl_i") | ≥ 0.90×, 0% loss | $(ok "$m_fl_p >= 0.9 * $m_fl_i && $m_fll_p == 0") |"
	echo "| 3 | UDP echoes/s, 64 B, 4 clients × 32 in flight (server and load pinned to a core each) | $m_udp_pl | Python $m_udp_py; socat (1 in flight) $m_udp_so | $(r "$m_udp_pl" "$m_udp_py") | ≥ 1.15× Python | $(ok "$m_udp_pl >= 1.15 * $m_udp_py") |"
	echo "| 3 | UDP server datagrams/s handled, \`--drop 20% --delay 1ms\` vs none (4 × 256 in flight) | $m_rx_emul | itself, no emulation: $m_rx_plain | $(r "$m_rx_emul" "$m_rx_plain") | ≥ 0.95× | $(ok "$m_rx_emul >= 0.95 * $m_rx_plain") |"
	echo "| 3 | UDP RTT p50, one client, one datagram in flight (µs) | $m_u1_pl | Python $m_u1_py | $(r "$m_u1_pl" "$m_u1_py") | ≤ 1.00× | $(ok "$m_u1_pl <= $m_u1_py") |"
	echo "| 4 | TCP, $tcp_conns clients at 1 ping/s: p99 (p50) ms | $m_p99_pl ($m_p50_pl) | naive Go $m_p99_nv ($m_p50_nv) | $(r "$m_p99_pl" "$m_p99_nv") | p99 ≤ 5 ms | $(ok "$m_p99_pl <= 5 && $m_f_pl == 0") |"
	echo "| 4 | TCP, $tcp_conns clients: server peak RSS (MB) | $m_rss_pl | naive Go $m_rss_nv | $(r "$m_rss_pl" "$m_rss_nv") | ≤ 64 MB | $(ok "$m_rss_pl <= 64") |"
	echo "| 4 | TCP saturation, $sat_conns connections × 1 ping per $sat_interval (messages/s) | $m_sat_pl | naive Go $m_sat_nv | $(r "$m_sat_pl" "$m_sat_nv") | ≥ 1.10× | $(ok "$m_sat_pl >= 1.1 * $m_sat_nv") |"
	echo "| 4 | | | Python threaded (once, after the rounds) $m_sat_py | $(r "$m_sat_pl" "$m_sat_py") | ≥ 10× | $(ok "$m_sat_pl >= 10 * $m_sat_py") |"
	echo "| 5 | schedule, 60 probes at -i 1 | $sched | | | within ±2 ms | $sched_ok |"
	echo "| 6 | \`pinglab --version\` (ms, median of 30) | $m_ver | \`ping -V\` $m_ver_i | $(r "$m_ver" "$m_ver_i") | ≤ 20 ms | $(ok "$m_ver <= 20") |"
	proxy_rows
} | tee ${out:+"$out"}
