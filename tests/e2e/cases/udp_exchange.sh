# shellcheck shell=bash
# udp_exchange: a python3 UDP client and echo server, both under the
# preload with datafilt automatic on UDP (inet and inet6 dgram), exchange
# datagrams from 0 to 65507 bytes, a burst, a truncating short read,
# sendmsg/recvmsg_into with several buffers and MSG_PEEK: every datagram
# comes back whole, alone and in order, as without the preload; the debug
# log shows datafilt.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3)

# exchange TAG HOST PREFIX...: one client run against an echo server on
# HOST, both under the command prefix PREFIX.
exchange()
{
	local tag=$1 host=$2 port rc echo_pid
	shift 2
	port=$(free_port udp "$host") || fail "no free port"
	start_bg "echo-$tag" "$@" python3 "$E2E_SRC/helpers.py" udp-echo \
	    "$host" "$port"
	echo_pid=$BG_PID
	wait_port "$port" udp "$echo_pid"
	run_client "client-$tag" "$@" python3 "$E2E_SRC/helpers.py" \
	    udp-client "$host" "$port"
	rc=$?
	log "$tag: $(grep -c '^PASS' "$E2E_TMP/client-$tag.out") checks passed"
	grep -v '^PASS' "$E2E_TMP/client-$tag.out"
	grep '^FAIL' "$E2E_TMP/client-$tag.out" >/dev/null &&
	    fail "$(grep -c '^FAIL' "$E2E_TMP/client-$tag.out") datagram checks failed ($tag, $host): first: $(grep -m 1 '^FAIL' "$E2E_TMP/client-$tag.out")"
	expect_ok "UDP client ($tag, $host)" "$rc"
	grep -q '^PASS' "$E2E_TMP/client-$tag.out" ||
	    fail "UDP client ($tag, $host) printed no PASS line"
	stop_pid "$echo_pid"
}

# fam HOST: inet or inet6.
fam()
{
	case $1 in
	*:*) echo inet6 ;;
	*) echo inet ;;
	esac
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" hosts=(127.0.0.1) host f

	if have_ipv6; then
		hosts+=(::1)
	else
		log "no IPv6 loopback: inet6 is not exercised"
	fi
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:dgram:udp", "inet6:dgram:udp" ];
  }
);
CONF

	for host in "${hosts[@]}"; do
		exchange "base-$(fam "$host")" "$host" "${BASE_ENV[@]}"
	done
	set_preload "$conf" SOCKFILTER_DEBUG=1
	for host in "${hosts[@]}"; do
		exchange "pre-$(fam "$host")" "$host" "${PRELOAD_ENV[@]}"
		if preloaded; then
			for f in "client-pre-$(fam "$host")" \
			    "echo-pre-$(fam "$host")"; do
				expect_grep datafilt "$E2E_TMP/$f.err" \
				    "SOCKFILTER_DEBUG=1 log of $f"
			done
		fi
	done
}
