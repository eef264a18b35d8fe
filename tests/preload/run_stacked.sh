#!/bin/sh
# run_stacked.sh PROGRAM...: each PROGRAM must print the same standard
# output with no preload, with LD_PRELOAD=spy:libsockfilter and with
# LD_PRELOAD=libsockfilter:spy (SF_TEST_LIB, SF_TEST_SPY, SF_TEST_CONF as
# in run_pair.sh), and the spy must report that it was in the call chain
# (libsockfilter binds libc with RTLD_NEXT, so in the lib-first order the
# spy sees the library's own calls to the kernel).
set -u
lib=${SF_TEST_LIB:?SF_TEST_LIB must name libsockfilter.so}
spy=${SF_TEST_SPY:?SF_TEST_SPY must name the spy preload}
conf=${SF_TEST_CONF:-$(cd "$(dirname "$0")" && pwd)/preload.conf}
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

fail=0
for prog in "$@"; do
	name=$(basename "$prog")
	timeout 60 "$prog" >"$tmp/none" 2>"$tmp/none.err"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL $name without preload: exit $rc"
		cat "$tmp/none.err"
		fail=1
	fi
	for order in spy-first lib-first; do
		if [ $order = spy-first ]; then
			pre=$spy:$lib
		else
			pre=$lib:$spy
		fi
		timeout 60 env LD_PRELOAD="${LD_PRELOAD:+$LD_PRELOAD:}$pre" \
		    SOCKFILTER_CONF="$conf" "$prog" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		ok=1
		if [ $rc -ne 0 ]; then
			echo "$name $order: exit $rc"
			ok=0
		fi
		if ! diff -u --label none "$tmp/none" --label "$order" \
		    "$tmp/out"; then
			ok=0
		fi
		if ! grep -q '^spy: saw calls' "$tmp/err"; then
			echo "$name $order: the spy saw no calls"
			ok=0
		fi
		if [ $ok -eq 1 ]; then
			echo "PASS $name $order"
		else
			echo "FAIL $name $order; its stderr:"
			cat "$tmp/err"
			fail=1
		fi
	done
done
exit $fail
