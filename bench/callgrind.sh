#!/bin/bash
# bench/callgrind.sh BUILD_DIR: user-space instructions per send()/recv()
# call, counted by valgrind --tool=callgrind (deterministic, unlike the
# wall clock of bench/run.sh), three ways:
#   (a) no preload
#   (b) LD_PRELOAD=libsockfilter.so, a configuration with no filters
#   (c) LD_PRELOAD=libsockfilter.so, datafilt automatic on inet:stream:tcp
# sendrecv -m pair runs N1 and N2 iterations of one send() and one recv()
# of SIZE bytes; Ir(N2)-Ir(N1) over N2-N1 is the cost of one send+recv
# pair with every start-up cost cancelled.  The added cost per call is
# half the difference of a pair's cost from (a).  Targets: at most 15
# added instructions per call on an unfiltered socket (b), at most 400
# with datafilt (c).
#
# Environment: N1 (1000), N2 (11000), SIZES ("64"; e.g. "64 16K" also
# reports bigger messages, for information: the targets are for 64),
# KEEP=DIR keeps the callgrind outputs there (for callgrind_annotate),
# SF_BENCH_NO_VERIFY=1 to measure even when the preload is not in effect.
#
# A report, not a test: it exits 0 whether or not the targets are met,
# 2 if something failed to run.
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
# shellcheck disable=SC2034 # read by common.sh
BUILD_DIR=$1
N1=${N1:-1000}
N2=${N2:-11000}
SIZES=${SIZES:-64}
TARGET_B=15
TARGET_C=400

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sfcallgrind.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# shellcheck source=bench/common.sh disable=SC1091
. "$(dirname "$0")/common.sh"
bench_setup
command -v valgrind >/dev/null ||
    bench_die "valgrind not found (apt-get install -y valgrind)"
[ "$N2" -gt "$N1" ] || bench_die "N2 must be larger than N1"

# ir WAY SIZE N: total Ir of the sendrecv process of one run.
#
# valgrind runs env(1), which sets the way's environment and execs
# sendrecv; --trace-children=yes follows the exec (the preload must be
# in the environment of the measured process, not of valgrind itself,
# which is a shell script here).  The exec keeps the pid, so the output
# file cg.PID ends up being sendrecv's; its cmd: line is checked.
ir() {
	local way=$1 size=$2 n=$3 dir=$TMP/$1.$2.$3 out files f
	mkdir "$dir"
	bench_env "$way"
	if ! out=$(valgrind --tool=callgrind --trace-children=yes \
	    --callgrind-out-file="$dir/cg.%p" --log-file="$dir/vg.%p" \
	    env "${ENVARGS[@]}" "$SENDRECV" -m pair -s "$size" -n "$n" \
	    2>"$dir/err"); then
		cat "$dir/err" "$dir"/vg.* >&2
		bench_die "($way) valgrind sendrecv -s $size -n $n failed"
	fi
	bench_verify "$way" "$dir/err"
	# One send and one recv per iteration, or the division is wrong.
	case " $out " in
	*" sends=$n recvs=$n "*) ;;
	*) echo "${0##*/}: warning: ($way) short transfers: $out" >&2 ;;
	esac
	files=$(grep -l "^cmd: .*${SENDRECV##*/} " "$dir"/cg.* || true)
	[ "$(wc -w <<<"$files")" = 1 ] ||
	    bench_die "($way) no single callgrind output of sendrecv in $dir"
	f=$(sed -n 's/^totals: *\([0-9][0-9]*\).*/\1/p' "$files")
	[ -n "$f" ] || f=$(sed -n 's/^summary: *\([0-9][0-9]*\).*/\1/p' "$files")
	[ -n "$f" ] || bench_die "($way) no totals: line in $files"
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP"
		cp "$files" "$KEEP/callgrind.out.$way.$size.$n"
	fi
	echo "$f"
}

echo "sendrecv: $SENDRECV"
echo "library:  $LIBSF"
echo "$(valgrind --version), sendrecv -m pair, N1=$N1 N2=$N2"
echo

# verdict X T: does X meet the target "at most T"?
verdict() {
	if awk -v x="$1" -v t="$2" 'BEGIN { exit !(x <= t) }'; then
		echo "meets the target (<= $2)"
	else
		echo "MISSES the target (<= $2)"
	fi
}

for size in $SIZES; do
	declare -A pair
	printf '%-22s %6s %14s %14s %12s %14s\n' "way" size "Ir(N1)" "Ir(N2)" \
	    "Ir/pair" "added/call"
	for way in a b c; do
		i1=$(ir "$way" "$size" "$N1")
		i2=$(ir "$way" "$size" "$N2")
		pair[$way]=$(awk -v a="$i1" -v b="$i2" -v n1="$N1" -v n2="$N2" \
		    'BEGIN { printf "%.2f", (b - a) / (n2 - n1) }')
		if [ "$way" = a ]; then
			added="-"
		else
			added=$(awk -v x="${pair[$way]}" -v y="${pair[a]}" \
			    'BEGIN { printf "%.2f", (x - y) / 2 }')
		fi
		printf '%-22s %6s %14s %14s %12s %14s\n' \
		    "($way) $(bench_way_name "$way")" "$size" "$i1" "$i2" \
		    "${pair[$way]}" "$added"
	done
	add_b=$(awk -v x="${pair[b]}" -v y="${pair[a]}" \
	    'BEGIN { printf "%.2f", (x - y) / 2 }')
	add_c=$(awk -v x="${pair[c]}" -v y="${pair[a]}" \
	    'BEGIN { printf "%.2f", (x - y) / 2 }')
	echo
	if [ "$size" = 64 ]; then
		echo "added per call, unfiltered socket (b-a)/2: $add_b" \
		    "instructions: $(verdict "$add_b" $TARGET_B)"
		echo "added per call, datafilt          (c-a)/2: $add_c" \
		    "instructions: $(verdict "$add_c" $TARGET_C)"
	else
		echo "added per call at $size bytes (information; the targets" \
		    "are for 64): (b-a)/2 = $add_b, (c-a)/2 = $add_c"
	fi
	echo
	unset pair
done
exit 0
