# shellcheck shell=bash
# socat_accf_data: a socat echo server in single-connection mode
# (TCP-LISTEN without fork: it serves the first connection it accepts,
# then exits) with accf_data automatic, and socat -d -d logging each
# accept with the peer's port.
#
# An idle client (helpers.py idle) connects first, then a socat client
# sends 20 lines.  Without the preload socat accepts the idle client (its
# log names that port).  Under the preload the idle client never reaches
# socat: socat accepts the client that sent data, echoes its bytes
# back byte for byte and exits; the idle connection the library held is
# closed with the listener (socat closes it after its accept) or at the
# latest when socat exits.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(socat python3)

# server TAG PORT PREFIX...: start the socat echo server; PID in SRV.
server()
{
	local tag=$1 port=$2
	shift 2
	start_bg "socat-$tag" "$@" socat -d -d \
	    "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" PIPE
	SRV=$BG_PID
	wait_port "$port" tcp "$SRV"
}

# idle TAG PORT: the idle client; its PID in IDLE, its port in IDLE_PORT.
idle()
{
	local tag=$1 port=$2 i
	start_bg "idle-$tag" python3 "$E2E_SRC/helpers.py" idle 127.0.0.1 \
	    "$port" "$E2E_TMP/$tag.stop"
	IDLE=$BG_PID
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		grep -q '^port ' "$E2E_TMP/idle-$tag.out" && break
		alive "$IDLE" || fail "$tag: the idle client exited early"
		sleep 0.1
	done
	IDLE_PORT=$(sed -n 's/^port //p' "$E2E_TMP/idle-$tag.out")
	[ -n "$IDLE_PORT" ] || fail "$tag: the idle client did not connect"
}

# accepted TAG PORT: did socat log an accept from 127.0.0.1:PORT?
accepted()
{
	grep -Eq "accepting connection from .*127\.0\.0\.1:$2( |\$)" \
	    "$E2E_TMP/socat-$1.err"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" port i rc

	printf 'accf_data line %s\n' {1..20} >"$E2E_TMP/input.txt"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "accf_data";
    module    = "accf_data";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp" ];
  }
);
CONF

	# Without the preload: socat takes the idle client.
	port=$(free_port tcp) || fail "no free port"
	server base "$port" "${BASE_ENV[@]}"
	idle base "$port"
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		accepted base "$IDLE_PORT" && break
		sleep 0.1
	done
	accepted base "$IDLE_PORT" ||
	    fail "base: socat did not accept the idle client"
	log "base: socat accepted the idle client (port $IDLE_PORT)"
	: >"$E2E_TMP/base.stop"
	finish_bg "$IDLE" 30
	expect_ok "idle client (base)" "$?"
	stop_pid "$SRV"

	preloaded || return 0
	set_preload "$conf"
	port=$(free_port tcp) || fail "no free port"
	server pre "$port" "${PRELOAD_ENV[@]}"
	idle pre "$port"
	# -t: after sending EOF, wait (bounded) for the echo's EOF.
	run_client -i "$E2E_TMP/input.txt" client-pre socat -t 20 - \
	    "TCP:127.0.0.1:$port"
	rc=$?
	expect_ok "socat client (pre)" "$rc"
	expect_same "$E2E_TMP/input.txt" "$E2E_TMP/client-pre.out" \
	    "echo under accf_data"
	# One connection served: socat exits by itself.
	finish_bg "$SRV" 30
	expect_ok "socat server (pre)" "$?"
	grep 'accepting connection' "$E2E_TMP/socat-pre.err"
	accepted pre "$IDLE_PORT" &&
	    fail "pre: the idle client reached socat under accf_data"
	[ "$(grep -c 'accepting connection' "$E2E_TMP/socat-pre.err")" = 1 ] ||
	    fail "pre: socat did not accept exactly one connection"
	# The listener's close closed the connection the library held.
	: >"$E2E_TMP/pre.stop"
	finish_bg "$IDLE" 30
	expect_ok "idle client (pre)" "$?"
	grep -qx closed "$E2E_TMP/idle-pre.out" ||
	    fail "pre: the held idle connection was not closed with the listener"
	log "pre: only the client with data reached socat; the idle one was closed when socat let go of it"
}
