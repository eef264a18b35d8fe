# shellcheck shell=bash
# socat_relay: a socat client sends 4 MiB of random bytes through a socat
# TCP relay to a python3 echo server and reads them back; all three under
# the preload with datafilt automatic on TCP.  The bytes come back
# byte-identical, as they do without the preload, each program's debug
# log shows datafilt, and datafilt's verbose summary of the client's
# socket counts 4 MiB in and 4 MiB out.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(socat python3)

# relay_round TAG PREFIX...: one round trip with the programs run under
# the command prefix PREFIX; the echoed bytes in $E2E_TMP/client-TAG.out.
relay_round()
{
	local tag=$1 echo_port relay_port rc
	shift
	echo_port=$(free_port tcp) || fail "no free port"
	relay_port=$(free_port tcp) || fail "no free port"
	start_bg "echo-$tag" "$@" python3 "$E2E_SRC/helpers.py" tcp-echo \
	    127.0.0.1 "$echo_port"
	wait_port "$echo_port" tcp "$BG_PID"
	start_bg "relay-$tag" "$@" socat \
	    "TCP-LISTEN:$relay_port,bind=127.0.0.1,reuseaddr" \
	    "TCP:127.0.0.1:$echo_port"
	wait_port "$relay_port" tcp "$BG_PID"
	# -t: after sending EOF, wait (bounded) for the echo's EOF.
	run_client -i "$E2E_TMP/input.bin" "client-$tag" "$@" socat -t 30 \
	    - "TCP:127.0.0.1:$relay_port"
	rc=$?
	expect_ok "socat client ($tag)" "$rc"
	finish_bg "$BG_PID" 10
	rc=$?
	expect_ok "socat relay ($tag)" "$rc"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" f

	head -c 4194304 /dev/urandom >"$E2E_TMP/input.bin"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
    params    = { verbose = true; };
  }
);
CONF

	relay_round base "${BASE_ENV[@]}"
	expect_same "$E2E_TMP/input.bin" "$E2E_TMP/client-base.out" \
	    "round trip without the preload"

	set_preload "$conf" SOCKFILTER_DEBUG=1
	relay_round pre "${PRELOAD_ENV[@]}"
	expect_same "$E2E_TMP/input.bin" "$E2E_TMP/client-pre.out" \
	    "round trip under the preload"
	log "4 MiB round trip identical with and without the preload"

	if preloaded; then
		for f in client-pre relay-pre echo-pre; do
			expect_grep datafilt "$E2E_TMP/$f.err" \
			    "SOCKFILTER_DEBUG=1 log of $f"
		done
		# datafilt's verbose summary: the client's socket saw every
		# byte both ways.
		grep -i 'datafilt:.*socket' "$E2E_TMP/client-pre.err"
		expect_grep 'datafilt:.* in 4194304 bytes.* out 4194304 bytes' \
		    "$E2E_TMP/client-pre.err" "datafilt's summary of the client's socket"
	fi
}
