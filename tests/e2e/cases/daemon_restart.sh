# shellcheck shell=bash
# daemon_restart: programs do not depend on the daemon.  Under a steady
# load (two loops of curl fetches, every curl and the python3 server under
# the preload, datafilt automatic), soconfigd is killed with SIGKILL,
# started again, stopped with SIGTERM and started again: no request
# fails, the server picks the daemon up again each time, and because its
# counters live in its own region the restarted daemon reports every
# connection it ever accepted.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3 curl)

NLOOP=2
NPER=60

# done_count: requests finished so far.
done_count()
{
	cat "$E2E_TMP"/load*.out 2>/dev/null | wc -l
}

# at_least N: at least N requests finished.
at_least()
{
	[ "$(done_count)" -ge "$1" ]
}

# registered PID: the daemon lists PID among its processes.
registered()
{
	soconfig -P 2>/dev/null | awk -v p="$1" '$1 == p { f = 1 } END { exit !f }'
}

passive_is()
{
	soconfig -s --json >"$E2E_TMP/s.json" 2>/dev/null &&
	    [ "$(jq_py 'j["filters"]["datafilt"]["tot_passive_attach"]' "$E2E_TMP/s.json")" = "$1" ]
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" port server i total fails
	if ! preloaded; then
		log "--no-preload: nothing to restart for"
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
	start_daemon "$conf" soconfigd1
	mkdir -p "$E2E_TMP/docs"
	head -c 4000 /dev/urandom >"$E2E_TMP/docs/blob.bin"
	port=$(free_port tcp) || fail "no free port"
	# When the daemon is down, new programs read the same file.
	set_daemon_preload "SOCKFILTER_CONF=$conf"
	start_bg server "${PRELOAD_ENV[@]}" python3 -m http.server \
	    --bind 127.0.0.1 --directory "$E2E_TMP/docs" "$port"
	wait_port "$port" tcp "$BG_PID"
	server=$(child_pid "$BG_PID")
	wait_for "$E2E_WAIT_LIMIT" registered "$server" ||
	    fail "the server never registered"

	cat >"$E2E_TMP/load.sh" <<'SH'
# load.sh N URL: N fetches, one line each: ok, or fail STATUS.
n=$1 url=$2
shift 2
for ((k = 0; k < n; k++)); do
	if "$@" curl -sS --fail --noproxy '*' -o /dev/null --max-time 20 "$url"; then
		echo ok
	else
		echo "fail $?"
	fi
done
SH
	for ((i = 0; i < NLOOP; i++)); do
		start_bg "load$i" bash "$E2E_TMP/load.sh" "$NPER" \
		    "http://127.0.0.1:$port/blob.bin" "${PRELOAD_ENV[@]}"
		LOADS+=("$BG_PID")
	done
	total=$((NLOOP * NPER))

	wait_for 60 at_least $((total / 6)) || fail "the load does not progress"
	log "SIGKILL the daemon after $(done_count) requests"
	kill -KILL "$DAEMON_PID"
	wait_for 60 at_least $((total / 3)) || fail "the load stalled without the daemon"
	start_daemon "$conf" soconfigd2
	log "daemon back after $(done_count) requests"
	wait_for "$E2E_WAIT_LIMIT" registered "$server" ||
	    fail "the server did not pick the restarted daemon up"
	wait_for 60 at_least $((total / 2)) || fail "the load stalled"
	log "SIGTERM the daemon after $(done_count) requests"
	stop_pid "$DAEMON_PID"
	wait_for 60 at_least $((2 * total / 3)) || fail "the load stalled without the daemon"
	start_daemon "$conf" soconfigd3
	log "daemon back after $(done_count) requests"
	for i in "${LOADS[@]}"; do
		finish_bg "$i" 120 || fail "a load loop failed or hung"
	done
	fails=$(cat "$E2E_TMP"/load*.out | grep -vc '^ok$')
	log "$(done_count) requests, $fails failed"
	[ "$(done_count)" = "$total" ] || fail "only $(done_count) of $total requests ran"
	[ "$fails" = 0 ] || fail "$fails requests failed while the daemon restarted"
	wait_for "$E2E_WAIT_LIMIT" registered "$server" ||
	    fail "the server did not pick the third daemon up"
	# Its counters are its own: every connection since it started.
	wait_for "$E2E_WAIT_LIMIT" passive_is "$total" ||
	    fail "datafilt tot_passive_attach is not $total after the restarts: $(cat "$E2E_TMP/s.json")"
	log "the third daemon counts all $total connections of the server"
}

LOADS=()
