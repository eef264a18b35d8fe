#!/bin/bash
# bench/accept.sh BUILD_DIR: accept filters side by side in one run, with
# bench/acceptbench (a small accept-and-respond server, its load client
# and an idle-connection flooder) on loopback.
#
# Part 1, connections per second and latency of the epoll server, four
# ways:
#   none   no preload, no filter
#   defer  no preload, Linux TCP_DEFER_ACCEPT on the listener
#   data   LD_PRELOAD=libsockfilter.so, accf_data automatic
#   http   LD_PRELOAD=libsockfilter.so, accf_http automatic
# Part 2, the same load while FLOOD_N idle connections are held open, for
# none and http, against the epoll server (nginx's shape: every
# connection in one epoll set) and the iterative server (one connection
# at a time, 200 ms receive timeout: a small daemon's shape).
#
# Every measurement runs ROUNDS times, the ways interleaved and their
# order rotated from round to round; the tables give medians and ratios
# to "none".  Each server start is checked (library loaded or not, the
# listener's filters from FIL_LIST): a mismatch stops the script.
#
# Environment: ROUNDS (3), SECS (2, per measurement), CONC (4 client
# threads), FLOOD_N (200), PIN=CPULIST (taskset for every program).
# A report, not a test: it exits 0 whatever the figures, 2 on failure.
# About 100 s with the defaults.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
BUILD_DIR=$1
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-2}
CONC=${CONC:-4}
FLOOD_N=${FLOOD_N:-200}
PIN=${PIN:-}

AB=$BUILD_DIR/bench/acceptbench
LIBSF=$BUILD_DIR/lib/libsockfilter.so
MODDIR=$BUILD_DIR/lib/sockfilter

die() {
	echo "${0##*/}: $*" >&2
	exit 2
}

[ -x "$AB" ] || die "$AB not built"
[ -f "$LIBSF" ] || die "$LIBSF not built"
[ -f "$MODDIR/accf_http.so" ] || die "$MODDIR/accf_http.so not built"
AB=$(realpath "$AB")
LIBSF=$(realpath "$LIBSF")
MODDIR=$(realpath "$MODDIR")

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sfbench-accept.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
pin=()
if [ -n "$PIN" ]; then
	command -v taskset >/dev/null || die "PIN needs taskset"
	pin=(taskset -c "$PIN")
fi

for f in accf_data accf_http; do
	cat >"$TMP/$f.conf" <<EOF
module_path = [ "$MODDIR" ];
filters = (
  { name = "$f"; module = "$f"; attach = "auto";
    sockets = [ "inet:stream:tcp" ]; }
);
EOF
done

# way_env WAY: ENVARGS (env arguments) and SRVARGS (server options).
way_env() {
	# env's -u options first: they end at the first NAME=VALUE.
	ENVARGS=(-u SOCKFILTER_DEBUG -u SOCKFILTER_TRACE)
	SRVARGS=()
	case $1 in
	none) ENVARGS+=(-u LD_PRELOAD -u SOCKFILTER_CONF) ;;
	defer)
		ENVARGS+=(-u LD_PRELOAD -u SOCKFILTER_CONF)
		SRVARGS=(-D)
		;;
	data) ENVARGS+=("LD_PRELOAD=$LIBSF" "SOCKFILTER_CONF=$TMP/accf_data.conf") ;;
	http) ENVARGS+=("LD_PRELOAD=$LIBSF" "SOCKFILTER_CONF=$TMP/accf_http.conf") ;;
	*) die "bad way $1" ;;
	esac
	ENVARGS+=("SOCKFILTER_SOCKET=$TMP/no-daemon.sock")
}

want_setup() {
	case $1 in
	none | defer) echo "acceptbench: preload=no listener=n/a" ;;
	data) echo "acceptbench: preload=yes listener=accf_data" ;;
	http) echo "acceptbench: preload=yes listener=accf_http" ;;
	esac
}

# stop PID: kill one program this script started.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# measure WAY MODE FLOOD: one server, maybe a flood, one client run; the
# client's result line on standard output.
measure() {
	local way=$1 mode=$2 flood=$3 srv fl="" port i line out
	way_env "$way"
	: >"$TMP/srv.out"
	timeout -k 5 600 "${pin[@]}" env "${ENVARGS[@]}" "$AB" server \
	    -m "$mode" "${SRVARGS[@]}" >"$TMP/srv.out" 2>"$TMP/srv.err" &
	srv=$!
	PIDS+=("$srv")
	for ((i = 0; i < 100; i++)); do
		grep -q '^port ' "$TMP/srv.out" && break
		kill -0 "$srv" 2>/dev/null || break
		sleep 0.05
	done
	port=$(sed -n 's/^port //p' "$TMP/srv.out")
	[ -n "$port" ] || { cat "$TMP/srv.err" >&2; die "($way) the server did not start"; }
	line=$(grep -m1 '^acceptbench: preload=' "$TMP/srv.err" || true)
	[ "$line" = "$(want_setup "$way")" ] ||
	    die "($way) expected '$(want_setup "$way")', got '$line'"
	if [ "$flood" -gt 0 ]; then
		: >"$TMP/flood.out"
		timeout -k 5 600 "${pin[@]}" "$AB" flood -p "$port" \
		    -n "$flood" -d $((SECS + 60)) >"$TMP/flood.out" &
		fl=$!
		PIDS+=("$fl")
		for ((i = 0; i < 200; i++)); do
			grep -q '^flood ' "$TMP/flood.out" && break
			kill -0 "$fl" 2>/dev/null || die "($way) the flood failed"
			sleep 0.05
		done
		grep -q '^flood ' "$TMP/flood.out" || die "($way) the flood did not start"
	fi
	out=$(timeout -k 5 $((SECS + 60)) "${pin[@]}" "$AB" client \
	    -p "$port" -c "$CONC" -d "$SECS") || die "($way) the client failed"
	[ -n "$fl" ] && stop "$fl"
	stop "$srv"
	echo "$out"
}

field() {
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# med KEY FILE: median of KEY over the result lines of FILE.
med() {
	while read -r l; do field "$1" "$l"; done <"$2" | median
}

# run_set NAME MODE FLOOD WAY...: ROUNDS rounds of every WAY, rotated;
# results in $TMP/NAME.WAY.
run_set() {
	local name=$1 mode=$2 flood=$3 r i n out way
	shift 3
	local ways=("$@")
	n=${#ways[@]}
	for ((r = 0; r < ROUNDS; r++)); do
		for ((i = 0; i < n; i++)); do
			way=${ways[(r + i) % n]}
			out=$(measure "$way" "$mode" "$flood")
			echo "$out" >>"$TMP/$name.$way"
			printf 'round %d  %-12s %-6s %s\n' $((r + 1)) "$name" \
			    "$way" "$out" >&2
		done
	done
}

echo "acceptbench: $AB"
echo "library:     $LIBSF"
echo "machine:     $(nproc) CPUs, $(uname -r); pinned to CPUs: ${PIN:-no}"
echo "runs:        $ROUNDS rounds of $SECS s, $CONC client threads, ways interleaved"
echo

run_set rate epoll 0 none defer data http
echo "Part 1: the epoll server, one GET per connection, medians of $ROUNDS rounds"
echo "(latency: connect to the answer's EOF; ratio: conns/s of the way / none)"
echo
printf '%-34s %10s %8s %8s %7s %7s\n' way conns/s p50_us p99_us ratio errors
base=$(med conns_per_s "$TMP/rate.none")
for way in none defer data http; do
	case $way in
	none) desc="(a) no filter" ;;
	defer) desc="(b) TCP_DEFER_ACCEPT" ;;
	data) desc="(c) accf_data (preload)" ;;
	http) desc="(d) accf_http (preload)" ;;
	esac
	cps=$(med conns_per_s "$TMP/rate.$way")
	printf '%-34s %10.0f %8.0f %8.0f %7.3f %7s\n' "$desc" "$cps" \
	    "$(med p50_us "$TMP/rate.$way")" "$(med p99_us "$TMP/rate.$way")" \
	    "$(awk -v x="$cps" -v y="$base" 'BEGIN { printf "%.3f", x / y }')" \
	    "$(while read -r l; do field errors "$l"; done <"$TMP/rate.$way" |
		awk '{ s += $1 } END { print s + 0 }')"
done
echo

for mode in epoll iter; do
	run_set "q-$mode" "$mode" 0 none http
	run_set "f-$mode" "$mode" "$FLOOD_N" none http
done
echo "Part 2: $FLOOD_N idle connections held open during the load, medians"
echo "(ratio: conns/s with the flood / without it, same server and way;"
echo "errors: client connections that failed or timed out (2 s), summed)"
echo
printf '%-6s %-22s %10s %10s %7s %8s %7s\n' server way "quiet c/s" \
    "flood c/s" ratio "p99_us" errors
for mode in epoll iter; do
	for way in none http; do
		q=$(med conns_per_s "$TMP/q-$mode.$way")
		f=$(med conns_per_s "$TMP/f-$mode.$way")
		printf '%-6s %-22s %10.0f %10.0f %7.3f %8.0f %7s\n' "$mode" \
		    "$([ "$way" = none ] && echo "no filter" || echo "accf_http (preload)")" \
		    "$q" "$f" \
		    "$(awk -v x="$f" -v y="$q" 'BEGIN { printf "%.3f", (y > 0 ? x / y : 0) }')" \
		    "$(med p99_us "$TMP/f-$mode.$way")" \
		    "$(while read -r l; do field errors "$l"; done <"$TMP/f-$mode.$way" |
			awk '{ s += $1 } END { print s + 0 }')"
	done
done
