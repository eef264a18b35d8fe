# shellcheck shell=bash
# fork_exec: sockets that cross fork() and exec() keep their filters.
# The rechunk test filter is automatic on every TCP socket.
#  - A python3 socketserver.ForkingTCPServer echo server (accept, fork, the
#    child serves) and a selectors client with 6 connections: every echo
#    identical; under the preload the forked children's copies of the
#    accepted sockets are filtered (rechunk summaries from pids other than
#    the server's, with bytes in and out).
#  - A listening socket made without CLOEXEC, then exec of a program that
#    serves it (socket.socket(fileno=N)): the asyncio client's echoes are
#    identical, the exec'd server's debug log (SOCKFILTER_DEBUG=1) shows
#    the inherited socket adopted, and its accepted sockets are filtered.
#  - A connected socket made without CLOEXEC, then exec of a client that
#    uses it: the same checks on the client side ("opened" summary of the
#    exec'd pid carrying every byte of the exchange).

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

# fork_round TAG PREFIX...
fork_round()
{
	local tag=$1 port rc srv spid
	shift
	port=$(free_port tcp) || fail "no free port"
	start_bg "fork-$tag" "$@" python3 "$E2E_SRC/helpers.py" forking-echo \
	    127.0.0.1 "$port"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	run_client "fork-client-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    selectors-client 127.0.0.1 "$port" 6 40
	rc=$?
	cat "$E2E_TMP/fork-client-$tag.out"
	expect_ok "client of the forking server ($tag)" "$rc"
	expect_grep '^PASS selectors-client: 6 connections, 240 messages' \
	    "$E2E_TMP/fork-client-$tag.out" "client of the forking server ($tag)"
	spid=$(sed -n 's/^server pid \([0-9]*\)$/\1/p' "$E2E_TMP/fork-$tag.out")
	stop_pid "$srv"
	[ "$tag" = pre ] && preloaded || return 0
	[ -n "$spid" ] || fail "the forking server did not print its pid"
	# Children: accepted sockets with traffic, not in the server's pid.
	n=$(awk -v s="$spid" '$1 == "rechunk:" && $3 != s && $4 == "accepted" &&
	    /in_bytes=[1-9]/ && /out_bytes=[1-9]/' "$E2E_TMP/rechunk.log" |
	    wc -l)
	log "forking server $spid: $n forked children filtered their connection"
	[ "$n" = 6 ] ||
	    fail "expected 6 filtered connections in forked children, found $n"
}

# exec_round TAG PREFIX...
exec_round()
{
	local tag=$1 port port2 rc srv echo spid cpid sent
	shift
	port=$(free_port tcp) || fail "no free port"
	start_bg "exec-listen-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    exec-listen 127.0.0.1 "$port"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	run_client "exec-lclient-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    asyncio-client 127.0.0.1 "$port" 4 30
	rc=$?
	cat "$E2E_TMP/exec-lclient-$tag.out"
	expect_ok "client of the exec'd server ($tag)" "$rc"
	expect_grep '^PASS asyncio-client: 4 connections, 120 messages' \
	    "$E2E_TMP/exec-lclient-$tag.out" "client of the exec'd server ($tag)"
	port2=$(free_port tcp) || fail "no free port"
	start_bg "echo-$tag" "$@" python3 "$E2E_SRC/helpers.py" tcp-echo \
	    127.0.0.1 "$port2"
	echo=$BG_PID
	wait_port "$port2" tcp "$echo"
	run_client "exec-connect-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    exec-connect 127.0.0.1 "$port2" 50
	rc=$?
	cat "$E2E_TMP/exec-connect-$tag.out"
	expect_ok "exec'd client ($tag)" "$rc"
	expect_grep '^PASS fd-client: 1 connections, 50 messages' \
	    "$E2E_TMP/exec-connect-$tag.out" "exec'd client ($tag)"
	stop_pid "$echo"
	stop_pid "$srv"
	[ "$tag" = pre ] && preloaded || return 0

	spid=$(sed -n 's/^pid \([0-9]*\): inherited.*/\1/p' \
	    "$E2E_TMP/exec-listen-$tag.out")
	cpid=$(sed -n 's/^pid \([0-9]*\): inherited.*/\1/p' \
	    "$E2E_TMP/exec-connect-$tag.out")
	[ -n "$spid" ] && [ -n "$cpid" ] || fail "the exec'd programs did not print their pids"
	expect_grep 'inherited socket adopted' "$E2E_TMP/exec-listen-$tag.err" \
	    "debug log of the exec'd server"
	expect_grep 'inherited socket adopted' "$E2E_TMP/exec-connect-$tag.err" \
	    "debug log of the exec'd client"
	n=$(awk -v s="$spid" '$1 == "rechunk:" && $3 == s && $4 == "accepted" &&
	    /in_bytes=[1-9]/' "$E2E_TMP/rechunk.log" | wc -l)
	log "exec'd server $spid: $n accepted sockets filtered"
	[ "$n" = 4 ] ||
	    fail "expected 4 filtered connections in the exec'd server, found $n"
	sent=$(sed -n 's/^PASS fd-client: .* messages, \([0-9]*\) bytes.*/\1/p' \
	    "$E2E_TMP/exec-connect-$tag.out")
	grep "^rechunk: pid $cpid opened" "$E2E_TMP/rechunk.log"
	grep -q "^rechunk: pid $cpid opened .* out_bytes=$sent .*in_bytes=$sent " \
	    "$E2E_TMP/rechunk.log" ||
	    fail "no rechunk summary of the exec'd client's inherited socket carrying its $sent bytes"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf"

	rechunk_conf "$conf"
	fork_round base "${BASE_ENV[@]}"
	exec_round base "${BASE_ENV[@]}"
	set_preload "$conf" SOCKFILTER_DEBUG=1
	rechunk_reset
	fork_round pre "${PRELOAD_ENV[@]}"
	rechunk_check "forking server"
	rechunk_reset
	exec_round pre "${PRELOAD_ENV[@]}"
	rechunk_check "exec-inherited sockets"
}
