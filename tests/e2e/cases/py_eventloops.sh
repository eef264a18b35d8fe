# shellcheck shell=bash
# py_eventloops: python3 event loops under the rechunk test filter
# (tests/filters/rechunk.c), automatic on every TCP socket of server and
# client: an asyncio streams echo server and client, and a selectors echo
# server and client over nonblocking sockets, each with 8 concurrent
# connections of 60 messages of mixed sizes (1 B to 256 KiB, some
# pipelined), over IPv4 and IPv6.  Every echo must be byte-identical and
# the connections end with EOF both ways, as without the preload; the
# filter's summaries show that it re-chunked (and, once filter timers
# exist, held and injected) the data.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

CONNS=8
MSGS=60

# loop_round TAG KIND HOST PREFIX...: one KIND (asyncio or selectors)
# server and client exchange under the command prefix PREFIX.
loop_round()
{
	local tag=$1 kind=$2 host=$3 port rc srv
	shift 3
	port=$(free_port tcp "$host") || fail "no free port"
	start_bg "$kind-echo-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    "$kind-echo" "$host" "$port"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	run_client "$kind-client-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    "$kind-client" "$host" "$port" "$CONNS" "$MSGS"
	rc=$?
	cat "$E2E_TMP/$kind-client-$tag.out"
	expect_ok "$kind client ($tag, $host)" "$rc"
	expect_grep "^PASS $kind-client: $CONNS connections, $((CONNS * MSGS)) messages" \
	    "$E2E_TMP/$kind-client-$tag.out" "$kind client ($tag, $host)"
	stop_pid "$srv"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" hosts=(127.0.0.1) host kind

	if have_ipv6; then
		hosts+=(::1)
	else
		log "no IPv6 loopback: inet6 is not exercised"
	fi
	rechunk_conf "$conf"
	for kind in asyncio selectors; do
		for host in "${hosts[@]}"; do
			loop_round "base" "$kind" "$host" "${BASE_ENV[@]}"
		done
	done
	set_preload "$conf"
	for kind in asyncio selectors; do
		rechunk_reset
		for host in "${hosts[@]}"; do
			loop_round "pre" "$kind" "$host" "${PRELOAD_ENV[@]}"
		done
		rechunk_check "$kind"
	done
}
