# shellcheck shell=bash
# daemon_stats: soconfigd gathers the counters of every interposed
# process, exited ones included.  A python3 server and five curl fetches
# (each a new process) run under the preload with datafilt automatic;
# soconfig -s --json then equals what the case did: one active attach per
# curl plus the server's listener, one passive attach per connection,
# bytes in and out equal to curl's request and response sizes on both
# sides, nothing denied, and nactive back to the listener alone.
# soconfig -p shows the server's listener with its filter; soconfig -s
# prints the same numbers as a table.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3 curl)

NFETCH=5

# nactive_is N: datafilt's nactive is N.
nactive_is()
{
	soconfig -s --json >"$E2E_TMP/nact.json" 2>/dev/null &&
	    [ "$(jq_py 'j["filters"]["datafilt"]["nactive"]' "$E2E_TMP/nact.json")" = "$1" ]
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" port i req=0 resp=0 sizes server
	local v want
	if ! preloaded; then
		log "--no-preload: no counters without the library"
		return 0
	fi
	need_daemon
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  { name = "datafilt"; module = "datafilt"; attach = "auto";
    sockets = [ "inet:stream:tcp", "inet6:stream:tcp" ]; }
);
CONF
	start_daemon "$conf"
	mkdir -p "$E2E_TMP/docs"
	head -c 30000 /dev/urandom >"$E2E_TMP/docs/blob.bin"
	printf 'small\n' >"$E2E_TMP/docs/small.txt"

	port=$(free_port tcp) || fail "no free port"
	set_daemon_preload
	start_bg server "${PRELOAD_ENV[@]}" python3 -m http.server \
	    --bind 127.0.0.1 --directory "$E2E_TMP/docs" "$port"
	wait_port "$port" tcp "$BG_PID"
	server=$(child_pid "$BG_PID")

	for ((i = 0; i < NFETCH; i++)); do
		f=small.txt
		[ $((i % 2)) = 0 ] && f=blob.bin
		run_client "curl$i" "${PRELOAD_ENV[@]}" curl -sS --fail \
		    --noproxy '*' -o /dev/null \
		    -w '%{size_request} %{size_header} %{size_download}\n' \
		    "http://127.0.0.1:$port/$f"
		expect_ok "curl $i" $?
		read -r -a sizes <"$E2E_TMP/curl$i.out"
		req=$((req + sizes[0]))
		resp=$((resp + sizes[1] + sizes[2]))
	done
	log "requests $req bytes, responses $resp bytes in $NFETCH fetches"

	# The server closes its side on its own schedule: wait for it.
	wait_for "$E2E_WAIT_LIMIT" nactive_is 1 ||
	    fail "datafilt nactive never came back to 1 (the listener)"
	soconfig -s --json >"$E2E_TMP/stats.json" || fail "soconfig -s --json failed"
	cat "$E2E_TMP/stats.json"
	for v in "tot_active_attach $((NFETCH + 1))" \
	    "tot_passive_attach $NFETCH" "bytes_in $((req + resp))" \
	    "bytes_out $((req + resp))" "denied 0" "attach_failures 0" \
	    "nactive 1" "ndeferred 0"; do
		set -- $v
		want=$2
		got=$(jq_py "j['filters']['datafilt']['$1']" "$E2E_TMP/stats.json")
		[ "$got" = "$want" ] || fail "datafilt $1 = $got, expected $want"
	done
	for v in defer_closed defer_close_backlog defer_close_failed; do
		got=$(jq_py "j['global']['$v']" "$E2E_TMP/stats.json")
		[ "$got" = 0 ] || fail "global $v = $got, expected 0"
	done
	[ "$(jq_py 'j["exited"]' "$E2E_TMP/stats.json")" = "$NFETCH" ] ||
	    fail "exited processes: expected $NFETCH"
	[ "$(jq_py 'j["processes"]' "$E2E_TMP/stats.json")" = 1 ] ||
	    fail "live processes: expected 1 (the server)"
	log "counters equal what the case did"

	soconfig -s >"$E2E_TMP/stats.txt" || fail "soconfig -s failed"
	cat "$E2E_TMP/stats.txt"
	expect_grep "^datafilt +1 +0 +$((NFETCH + 1)) +$NFETCH +$((req + resp)) +$((req + resp)) +0" \
	    "$E2E_TMP/stats.txt" "soconfig -s table"

	soconfig -p "$server" >"$E2E_TMP/pfiles.txt" || fail "soconfig -p failed"
	cat "$E2E_TMP/pfiles.txt"
	expect_grep "^$server:[[:space:]]+python3" "$E2E_TMP/pfiles.txt" "soconfig -p"
	expect_grep 'S_IFSOCK inet:stream:tcp' "$E2E_TMP/pfiles.txt" "soconfig -p"
	expect_grep '^ +filters: datafilt\(auto\)$' "$E2E_TMP/pfiles.txt" \
	    "soconfig -p"
	soconfig -P >"$E2E_TMP/procs.txt" || fail "soconfig -P failed"
	expect_grep "^ +$server +[0-9]+ +1 +python3" "$E2E_TMP/procs.txt" "soconfig -P"
}
