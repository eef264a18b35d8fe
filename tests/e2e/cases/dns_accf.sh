# shellcheck shell=bash
# dns_accf: a single-threaded DNS-over-TCP server (helpers.py dns-tcp: one
# connection at a time, in accept order) with accf_dns automatic.
#
# A slow client (helpers.py dns-slow) sends the 2-byte length and half
# its query, then waits; dig +tcp asks meanwhile.  Without the preload
# the server accepts the slow client first and is stuck reading it:
# dig is answered only after the slow client's second write (the
# server's log shows accept(slow) before accept(dig)).  Under the preload
# the slow client stays in the library until its query is whole: dig is
# answered while it is still incomplete (accept(dig) logged first), then
# the slow client's second write releases it and it gets its answer.
#
# A client that sends half a query and then EOF is released at EOF: the
# server sees its partial bytes, then EOF ("eof PORT partial N"), with
# and without the preload alike.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(dig python3)

# dns_round TAG PREFIX...: the server under the command prefix, the slow
# client and dig, then a client that leaves early.
dns_round()
{
	local tag=$1 d port srv slow slowport digpid eofpid eofport i rc
	shift
	d=$E2E_TMP/$tag
	mkdir -p "$d"
	port=$(free_port tcp) || fail "no free port"
	start_bg "dns-$tag" "$@" python3 "$E2E_SRC/helpers.py" dns-tcp \
	    127.0.0.1 "$port" "$d/server.log"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"

	start_bg "slow-$tag" python3 "$E2E_SRC/helpers.py" dns-slow \
	    127.0.0.1 "$port" slow.accf.test "$d/go"
	slow=$BG_PID
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		grep -q '^sent-first' "$E2E_TMP/slow-$tag.out" && break
		alive "$slow" || fail "$tag: the slow client exited early"
		sleep 0.1
	done
	grep -q '^sent-first' "$E2E_TMP/slow-$tag.out" ||
	    fail "$tag: the slow client did not send its first piece"
	slowport=$(sed -n 's/^port //p' "$E2E_TMP/slow-$tag.out")

	if [ "$tag" = base ]; then
		# The server is stuck on the slow client: dig waits for it.
		# Wait until the server has accepted the slow client, start
		# dig, then let the slow client finish.
		for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
			grep -q "^accept $slowport\$" "$d/server.log" 2>/dev/null &&
			    break
			sleep 0.1
		done
		grep -q "^accept $slowport\$" "$d/server.log" ||
		    fail "base: the server never accepted the slow client"
		start_bg "dig-$tag" dig +tcp +short +tries=1 +timeout=20 \
		    @127.0.0.1 -p "$port" fast.accf.test
		digpid=$BG_PID
		: >"$d/go"
		finish_bg "$digpid" 30
		expect_ok "dig ($tag)" "$?"
	else
		run_client "dig-$tag" dig +tcp +short +tries=1 +timeout=20 \
		    @127.0.0.1 -p "$port" fast.accf.test
		rc=$?
		expect_ok "dig ($tag)" "$rc"
		# dig was served while the slow client was incomplete.
		alive "$slow" || fail "$tag: the slow client ended before its second write"
		: >"$d/go"
	fi
	grep -qx '192.0.2.7' "$E2E_TMP/dig-$tag.out" ||
	    fail "$tag: dig's answer: $(cat "$E2E_TMP/dig-$tag.out")"
	finish_bg "$slow" 30
	expect_ok "slow client ($tag)" "$?"
	grep -qx '192.0.2.7' "$E2E_TMP/slow-$tag.out" ||
	    fail "$tag: the slow client's answer: $(cat "$E2E_TMP/slow-$tag.out")"

	# Half a query, then EOF.
	start_bg "eof-$tag" python3 "$E2E_SRC/helpers.py" dns-slow \
	    127.0.0.1 "$port" eof.accf.test "$d/go" eof
	eofpid=$BG_PID
	finish_bg "$eofpid" 30
	expect_ok "eof client ($tag)" "$?"
	grep -qx 'eof' "$E2E_TMP/eof-$tag.out" ||
	    fail "$tag: the eof client: $(cat "$E2E_TMP/eof-$tag.out")"
	eofport=$(sed -n 's/^port //p' "$E2E_TMP/eof-$tag.out")
	# The server logs before it closes, and the client saw that close.
	cat "$d/server.log"
	grep -Eq "^eof $eofport partial [1-9][0-9]*\$" "$d/server.log" ||
	    fail "$tag: the server did not see the partial query then EOF"
	alive "$srv" || fail "$tag: the server died"
	SERVER_LOG=$d/server.log
	SLOW_PORT=$slowport
}

# line ERE: the number of the first line of the server's log matching
# ERE (empty when none).
line()
{
	grep -n -m 1 -E -- "$1" "$SERVER_LOG" | cut -d: -f1
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" a b
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "accf_dns";
    module    = "accf_dns";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp" ];
  }
);
CONF

	dns_round base "${BASE_ENV[@]}"
	# The slow client first, and dig answered only after it.
	[ "$(line '^accept ')" = "$(line "^accept $SLOW_PORT\$")" ] ||
	    fail "base: the slow client was not accepted first"
	a=$(line "^query $SLOW_PORT slow\\.accf\\.test\$")
	b=$(line '^query [0-9]+ fast\.accf\.test$')
	[[ -n $a && -n $b ]] ||
	    fail "base: a query was not answered"
	[ "$a" -lt "$b" ] || fail "base: dig was answered before the slow client"
	log "base: the slow client was accepted first and held dig up"

	preloaded || return 0
	set_preload "$conf"
	dns_round pre "${PRELOAD_ENV[@]}"
	# dig accepted and answered before the slow client was accepted.
	a=$(line "^accept $SLOW_PORT\$")
	b=$(line '^query [0-9]+ fast\.accf\.test$')
	[[ -n $a && -n $b ]] ||
	    fail "pre: a client was not served"
	[ "$b" -lt "$a" ] ||
	    fail "pre: the slow client was accepted before dig was answered"
	grep -q "^query $SLOW_PORT slow.accf.test\$" "$SERVER_LOG" ||
	    fail "pre: the slow client's query was not answered"
	log "pre: dig answered while the slow client was incomplete"
}
