# shellcheck shell=bash
# curl_parallel: curl (libcurl's multi interface: nonblocking sockets and
# poll) fetches 15 files at once with --parallel (1 KiB, 100 KiB and
# 1 MiB of random bytes, alternately over IPv4 and IPv6) from python3
# -m http.server (a thread per connection); server and client under the
# rechunk test filter, automatic on every TCP socket.  Every body equals
# its file, as without the preload, and the filter's summaries show that
# it re-chunked the transfers.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(curl python3)

# fetch TAG PREFIX...: the parallel fetch under PREFIX into $E2E_TMP/TAG/.
fetch()
{
	local tag=$1 port srv f n=0 host args=() rc
	shift
	port=$(free_port tcp) || fail "no free port"
	start_bg "server-$tag" "$@" python3 -m http.server --bind "$bind" \
	    --directory "$docs" "$port"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	mkdir -p "$E2E_TMP/$tag"
	for f in "${files[@]}"; do
		host=127.0.0.1
		[ "$v6" = 1 ] && [ $((n++ % 2)) = 1 ] && host='[::1]'
		args+=(-o "$E2E_TMP/$tag/$f" "http://$host:$port/$f")
	done
	run_client "curl-$tag" "$@" curl -sS --fail --noproxy '*' \
	    --parallel --parallel-max 6 "${args[@]}"
	rc=$?
	expect_ok "curl --parallel ($tag)" "$rc"
	stop_pid "$srv"
	for f in "${files[@]}"; do
		expect_same "$docs/$f" "$E2E_TMP/$tag/$f" "$f ($tag)"
	done
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" i

	docs=$E2E_TMP/docs
	bind=127.0.0.1
	v6=0
	if have_ipv6; then
		v6=1
		bind=::
	else
		log "no IPv6 loopback: inet6 is not exercised"
	fi
	mkdir -p "$docs"
	files=()
	for i in 1 2 3 4 5; do
		head -c 1024 /dev/urandom >"$docs/small$i.bin"
		head -c 102400 /dev/urandom >"$docs/mid$i.bin"
		head -c 1048576 /dev/urandom >"$docs/big$i.bin"
		files+=("small$i.bin" "mid$i.bin" "big$i.bin")
	done
	rechunk_conf "$conf"
	fetch base "${BASE_ENV[@]}"
	set_preload "$conf"
	rechunk_reset
	fetch pre "${PRELOAD_ENV[@]}"
	log "${#files[@]} bodies identical with and without the preload"
	rechunk_check "curl and http.server"
}
