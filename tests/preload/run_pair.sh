#!/bin/sh
# run_pair.sh PROGRAM [ARGS]: run PROGRAM without, then with the preload
# (SF_TEST_LIB, configuration SF_TEST_CONF, default preload.conf beside
# this script).  Both runs must exit 0 and print the same standard output.
# timeout is a hang guard only.
set -u
lib=${SF_TEST_LIB:?SF_TEST_LIB must name libsockfilter.so}
conf=${SF_TEST_CONF:-$(cd "$(dirname "$0")" && pwd)/preload.conf}
# A sanitizer runtime already in LD_PRELOAD must stay first.
pre=${LD_PRELOAD:+$LD_PRELOAD:}$lib
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

timeout 60 "$@" >"$tmp/plain" 2>"$tmp/plain.err"
rc0=$?
timeout 60 env LD_PRELOAD="$pre" SOCKFILTER_CONF="$conf" "$@" \
    >"$tmp/preload" 2>"$tmp/preload.err"
rc1=$?

fail=0
if [ $rc0 -ne 0 ]; then
	echo "run_pair: without the preload: exit $rc0"
	fail=1
fi
if [ $rc1 -ne 0 ]; then
	echo "run_pair: with the preload: exit $rc1"
	fail=1
fi
if ! diff -u --label without "$tmp/plain" --label with "$tmp/preload"; then
	echo "run_pair: outputs differ"
	fail=1
fi
if [ $fail -ne 0 ]; then
	echo "--- stderr without the preload"
	cat "$tmp/plain.err"
	echo "--- stderr with the preload"
	cat "$tmp/preload.err"
	exit 1
fi
cat "$tmp/preload"
