# shellcheck shell=bash
# threaded_echo: mtecho (tests/e2e/mtecho.c), a pre-threaded echo server
# (6 threads blocking in accept() on one listener) and a client of 6
# threads, each opening 8 connections in turn and exchanging 40 checked
# requests of 1 B to 48 KiB on each (sometimes two in flight; half the
# connections end with shutdown(SHUT_WR) and wait for EOF): 48
# connections, both programs under the rechunk test filter, automatic on
# every TCP socket.  Both print the same counts as without the preload,
# with no mismatch or I/O error.  Labelled "threaded": scripts/test.sh
# runs it in the ThreadSanitizer build too, where the programs, the
# library and the filter are instrumented.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=()

THREADS=6
CONNS=8
MSGS=40

# exchange TAG PREFIX...
exchange()
{
	local tag=$1 port srv rc
	shift
	port=$(free_port tcp) || fail "no free port"
	start_bg "server-$tag" "$@" "$E2E_BINDIR/mtecho" server "$port" \
	    "$THREADS" $((THREADS * CONNS))
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	run_client -t 120 "client-$tag" "$@" "$E2E_BINDIR/mtecho" client \
	    "$port" "$THREADS" "$CONNS" "$MSGS" 7
	rc=$?
	cat "$E2E_TMP/client-$tag.out"
	expect_ok "mtecho client ($tag)" "$rc"
	finish_bg "$srv" 30
	rc=$?
	cat "$E2E_TMP/server-$tag.out"
	expect_ok "mtecho server ($tag)" "$rc"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf"

	need_file "$E2E_BINDIR/mtecho"
	rechunk_conf "$conf"
	exchange base "${BASE_ENV[@]}"
	set_preload "$conf"
	rechunk_reset
	exchange pre "${PRELOAD_ENV[@]}"
	expect_same "$E2E_TMP/client-base.out" "$E2E_TMP/client-pre.out" \
	    "client's counts with and without the preload"
	expect_same "$E2E_TMP/server-base.out" "$E2E_TMP/server-pre.out" \
	    "server's counts with and without the preload"
	rechunk_check "mtecho"
}
