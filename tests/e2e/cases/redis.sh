# shellcheck shell=bash
# redis: redis-server (its ae event loop on epoll) under redis-benchmark,
# plain and pipelined (-P 16), 20000 requests per test of SET, GET, INCR,
# LPUSH, LPOP and MSET, and a redis-cli session with checked replies
# (SET/GET, INCR, LPUSH/LRANGE, APPEND, a 1 MiB value SET and read back
# whole); server and clients under the rechunk test filter, automatic on
# every TCP socket.  redis-benchmark reports every test and no error,
# every reply is the expected one, as without the preload; the filter's
# summaries show it re-chunked the traffic.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(redis-server redis-benchmark redis-cli)

BENCH_N=${BENCH_N:-20000}
# Under the preload rechunk holds the tail of every request for a few ms,
# so each takes that much longer: fewer requests keep the run bounded.
BENCH_N_PRE=${BENCH_N_PRE:-5000}
BENCH_TESTS=set,get,incr,lpush,lpop,mset

# cli PREFIX... -- ARGS...: one redis-cli command, its output on stdout.
cli()
{
	local pre=()
	while [ "$1" != -- ]; do
		pre+=("$1")
		shift
	done
	shift
	timeout -k 5 "$E2E_CLIENT_LIMIT" "${pre[@]}" redis-cli -h 127.0.0.1 \
	    -p "$port" "$@" </dev/null
}

# expect_reply WHAT WANT GOT
expect_reply()
{
	[ "$3" = "$2" ] || fail "$1: replied '$3', expected '$2'"
}

# session TAG PREFIX...: redis-server under PREFIX, benchmarks, commands.
session()
{
	local tag=$1 srv p out n got nreq
	shift
	port=$(free_port tcp) || fail "no free port"
	start_bg "redis-$tag" "$@" redis-server --port "$port" \
	    --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
	    --dir "$E2E_TMP" --logfile "$E2E_TMP/redis-$tag.log"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	nreq=$BENCH_N
	[ "$tag" = pre ] && nreq=$BENCH_N_PRE
	for p in 1 16; do
		run_client "bench-$tag-P$p" "$@" redis-benchmark -h 127.0.0.1 \
		    -p "$port" -n "$nreq" -c 20 -P "$p" -t "$BENCH_TESTS" \
		    --csv
		expect_ok "redis-benchmark -P $p ($tag)" "$?"
		out=$E2E_TMP/bench-$tag-P$p.out
		cat "$out"
		grep -qi error "$out" "$E2E_TMP/bench-$tag-P$p.err" &&
		    fail "redis-benchmark -P $p ($tag) reported an error"
		# One result line per test (MSET's is "MSET (10 keys)").
		n=$(grep -cE '^"(SET|GET|INCR|LPUSH|LPOP|MSET[^"]*)","[0-9.]+"' "$out")
		[ "$n" = 6 ] ||
		    fail "redis-benchmark -P $p ($tag): $n of 6 tests reported"
	done

	expect_reply "SET" OK "$(cli "$@" -- SET greeting hello)"
	expect_reply "GET" hello "$(cli "$@" -- GET greeting)"
	cli "$@" -- DEL counter >/dev/null
	for n in 1 2 3; do
		expect_reply "INCR $n" "$n" "$(cli "$@" -- INCR counter)"
	done
	expect_reply "INCRBY" 103 "$(cli "$@" -- INCRBY counter 100)"
	cli "$@" -- DEL list >/dev/null
	expect_reply "LPUSH" 5 "$(cli "$@" -- LPUSH list a b c d e)"
	expect_reply "LRANGE" "$(printf 'e\nd\nc\nb\na')" \
	    "$(cli "$@" -- LRANGE list 0 -1)"
	expect_reply "APPEND" 12 "$(cli "$@" -- APPEND greeting ", world")"
	expect_reply "GET after APPEND" "hello, world" \
	    "$(cli "$@" -- GET greeting)"
	# 1 MiB of base64 (no newline): -x sends standard input as the
	# last argument.
	timeout -k 5 "$E2E_CLIENT_LIMIT" "$@" redis-cli -h 127.0.0.1 \
	    -p "$port" -x SET big <"$E2E_TMP/big.txt" >"$E2E_TMP/set-big-$tag.out" ||
	    fail "redis-cli -x SET big ($tag) failed"
	expect_reply "SET 1 MiB" OK "$(cat "$E2E_TMP/set-big-$tag.out")"
	expect_reply "STRLEN" 1048576 "$(cli "$@" -- STRLEN big)"
	cli "$@" -- --raw GET big >"$E2E_TMP/get-big-$tag.out" ||
	    fail "redis-cli GET big ($tag) failed"
	# --raw ends the reply with a newline.
	got=$(head -c 1048576 "$E2E_TMP/get-big-$tag.out" | sha256sum)
	[ "${got%% *}" = "$(sha "$E2E_TMP/big.txt")" ] ||
	    fail "GET of the 1 MiB value ($tag) differs from what was SET"
	expect_reply "GETRANGE" "$(tail -c 16 "$E2E_TMP/big.txt")" \
	    "$(cli "$@" -- GETRANGE big -16 -1)"
	log "$tag: 2 benchmarks without errors, 16 replies as expected"
	# SIGTERM: redis-server shuts down cleanly (exit(0), atexit).
	stop_pid "$srv"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf"

	head -c 786432 /dev/urandom | base64 -w0 >"$E2E_TMP/big.txt"
	rechunk_conf "$conf"
	session base "${BASE_ENV[@]}"
	# redis uses jemalloc: under ASan the runtime must be loaded first.
	set_preload_runtime "$conf"
	rechunk_reset
	session pre "${PRELOAD_ENV[@]}"
	rechunk_check "redis-server, redis-benchmark and redis-cli"
}
