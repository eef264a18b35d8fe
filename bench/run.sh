#!/bin/bash
# bench/run.sh BUILD_DIR: wall-clock cost of send/recv on a TCP loopback
# connection three ways, side by side in one run:
#   (a) no preload
#   (b) LD_PRELOAD=libsockfilter.so, a configuration with no filters
#   (c) LD_PRELOAD=libsockfilter.so, datafilt automatic on inet:stream:tcp
# Each mode of bench/sendrecv runs ROUNDS times each way, the ways
# interleaved and their order rotated from round to round so that drift in
# the machine's load hits all three alike; the table gives the medians and
# the cost ratios b/a and c/a (time per operation: 1.10 is 10 % slower).
#
# Environment: ROUNDS (5), PAIR_COUNT (200000), PINGPONG_COUNT (20000),
# BULK_SIZE (16K), BULK_TOTAL (1G), MODES ("pair pingpong bulk"),
# PIN=CPULIST runs every run under taskset -c CPULIST (PIN=0 puts the
# client and the server thread of pingpong on one CPU: much steadier),
# SF_BENCH_NO_VERIFY=1 to measure even when the preload is not in effect
# (only for trying the harness out against a stub library).
#
# A report, not a test: it exits 0 whatever the figures, 2 if a run failed.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
# shellcheck disable=SC2034 # read by common.sh
BUILD_DIR=$1
ROUNDS=${ROUNDS:-5}
PAIR_COUNT=${PAIR_COUNT:-200000}
PINGPONG_COUNT=${PINGPONG_COUNT:-20000}
BULK_SIZE=${BULK_SIZE:-16K}
BULK_TOTAL=${BULK_TOTAL:-1G}
MODES=${MODES:-pair pingpong bulk}
PIN=${PIN:-}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sfbench.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/common.sh disable=SC1091
. "$(dirname "$0")/common.sh"
bench_setup
pin=()
if [ -n "$PIN" ]; then
	command -v taskset >/dev/null || bench_die "PIN needs taskset"
	pin=(taskset -c "$PIN")
fi

mode_args() {
	case $1 in
	pair) echo "-m pair -s 64 -n $PAIR_COUNT" ;;
	pingpong) echo "-m pingpong -s 64 -n $PINGPONG_COUNT" ;;
	bulk) echo "-m bulk -s $BULK_SIZE -t $BULK_TOTAL" ;;
	*) bench_die "unknown mode $1" ;;
	esac
}

# The value of key K in a sendrecv result line.
field() {
	tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"
}

# Median of the numbers on standard input.
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "sendrecv: $SENDRECV"
echo "library:  $LIBSF"
echo "machine:  $(nproc) CPUs, $(uname -r); pinned to CPUs: ${PIN:-no}"
echo "runs:     $ROUNDS rounds, the three ways interleaved"
echo

ways=(a b c)
for ((r = 0; r < ROUNDS; r++)); do
	for mode in $MODES; do
		read -ra args <<<"$(mode_args "$mode")"
		for ((i = 0; i < 3; i++)); do
			way=${ways[(r + i) % 3]}
			bench_env "$way"
			if ! out=$("${pin[@]}" env "${ENVARGS[@]}" "$SENDRECV" "${args[@]}" \
			    2>"$TMP/err"); then
				cat "$TMP/err" >&2
				bench_die "($way) sendrecv ${args[*]} failed"
			fi
			bench_verify "$way" "$TMP/err"
			echo "$out" >>"$TMP/$mode.$way"
			printf 'round %d  %-8s (%s)  ns/op %10s  MB/s %9s\n' \
			    $((r + 1)) "$mode" "$way" "$(field ns_per_op "$out")" \
			    "$(field MB_per_s "$out")" >&2
		done
	done
done

echo "Medians of $ROUNDS rounds; ratios are of time per operation (cost):"
echo "b/a is the preload on an unfiltered socket, c/a datafilt attached."
echo
printf '%-9s %-6s %-16s %12s %12s %12s %6s %6s %7s\n' mode size metric \
    "(a) none" "(b) preload" "(c) datafilt" b/a c/a spread
for mode in $MODES; do
	size=$(field size "$(head -n1 "$TMP/$mode.a")")
	declare -A ns mb
	spread=0
	for way in a b c; do
		ns[$way]=$(while read -r l; do field ns_per_op "$l"; done \
		    <"$TMP/$mode.$way" | median)
		mb[$way]=$(while read -r l; do field MB_per_s "$l"; done \
		    <"$TMP/$mode.$way" | median)
		# Largest (max-min)/median over the three ways: the noise.
		s=$(while read -r l; do field ns_per_op "$l"; done \
		    <"$TMP/$mode.$way" | sort -g | awk -v m="${ns[$way]}" \
		    'NR == 1 { lo = $1 } { hi = $1 } END {
			printf "%.0f", 100 * (hi - lo) / m }')
		[ "$s" -gt "$spread" ] && spread=$s
	done
	case $mode in
	pair) unit="ns/(send+recv)" ;;
	pingpong) unit="ns/round trip" ;;
	bulk) unit="ns/send" ;;
	esac
	ratio_b=$(awk -v x="${ns[b]}" -v y="${ns[a]}" 'BEGIN { printf "%.3f", x / y }')
	ratio_c=$(awk -v x="${ns[c]}" -v y="${ns[a]}" 'BEGIN { printf "%.3f", x / y }')
	printf '%-9s %-6s %-16s %12.0f %12.0f %12.0f %6s %6s %6s%%\n' \
	    "$mode" "$size" "$unit" "${ns[a]}" "${ns[b]}" "${ns[c]}" \
	    "$ratio_b" "$ratio_c" "$spread"
	printf '%-9s %-6s %-16s %12.1f %12.1f %12.1f\n' "" "" "MB/s" \
	    "${mb[a]}" "${mb[b]}" "${mb[c]}"
	unset ns mb
done
echo
echo "spread: the largest (max-min)/median of one way's rounds; ratios"
echo "closer to 1 than that are within this machine's noise."
