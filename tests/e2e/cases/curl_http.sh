# shellcheck shell=bash
# curl_http: python3 -m http.server and curl, both under the preload with
# datafilt automatic on every TCP socket (inet and inet6 stream), fetch a
# directory listing, small files, an empty file and 1 MiB of random bytes;
# every body is byte-identical to the same fetch without the preload, and
# the debug log (SOCKFILTER_DEBUG=1) shows datafilt attaching.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(curl python3)

# fetch TAG: fetch every URL of the case into $E2E_TMP/TAG/, with the
# command prefix in FETCH_ENV; the status of curl.
fetch()
{
	local tag=$1 f args=()
	mkdir -p "$E2E_TMP/$tag"
	for f in "${files[@]}"; do
		args+=(-o "$E2E_TMP/$tag/$f" "http://127.0.0.1:$port/$f")
	done
	args+=(-o "$E2E_TMP/$tag/listing.html" "http://127.0.0.1:$port/")
	if [ "$v6" = 1 ]; then
		args+=(-o "$E2E_TMP/$tag/random6.bin"
		    "http://[::1]:$port/random.bin")
	fi
	run_client "curl-$tag" "${FETCH_ENV[@]}" curl -sS --fail \
	    --noproxy '*' "${args[@]}"
}

run_case()
{
	local docs="$E2E_TMP/docs" conf="$E2E_TMP/sockfilter.conf" port
	local bind=127.0.0.1 f rc
	files=(index.html hello.txt empty.txt text.txt random.bin)
	v6=0
	if have_ipv6; then
		v6=1
		bind=::
	else
		log "no IPv6 loopback: inet6 is not exercised"
	fi

	mkdir -p "$docs"
	printf '<html><body>sockfilter e2e</body></html>\n' >"$docs/index.html"
	printf 'hello, world\n' >"$docs/hello.txt"
	: >"$docs/empty.txt"
	seq 1 20000 >"$docs/text.txt"
	head -c 1048576 /dev/urandom >"$docs/random.bin"

	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
  }
);
CONF

	# Without the preload.
	port=$(free_port tcp) || fail "no free port"
	start_bg server-base "${BASE_ENV[@]}" python3 -m http.server \
	    --bind "$bind" --directory "$docs" "$port"
	wait_port "$port" tcp "$BG_PID"
	FETCH_ENV=("${BASE_ENV[@]}")
	fetch base
	rc=$?
	expect_ok "curl without the preload" "$rc"
	stop_pid "$BG_PID"

	# Server and client under the preload, the client with the debug log.
	port=$(free_port tcp) || fail "no free port"
	set_preload "$conf"
	start_bg server "${PRELOAD_ENV[@]}" python3 -m http.server \
	    --bind "$bind" --directory "$docs" "$port"
	wait_port "$port" tcp "$BG_PID"
	FETCH_ENV=("${PRELOAD_ENV[@]}" SOCKFILTER_DEBUG=1)
	fetch pre
	rc=$?
	expect_ok "curl under the preload" "$rc"

	for f in "${files[@]}"; do
		expect_same "$docs/$f" "$E2E_TMP/base/$f" "$f without the preload"
		expect_same "$E2E_TMP/base/$f" "$E2E_TMP/pre/$f" \
		    "$f under the preload"
	done
	expect_same "$E2E_TMP/base/listing.html" "$E2E_TMP/pre/listing.html" \
	    "directory listing under the preload"
	if [ "$v6" = 1 ]; then
		expect_same "$docs/random.bin" "$E2E_TMP/pre/random6.bin" \
		    "random.bin over IPv6 under the preload"
	fi
	log "$(( ${#files[@]} + 1 + v6 )) bodies identical with and without the preload"

	if preloaded; then
		expect_grep datafilt "$E2E_TMP/curl-pre.err" \
		    "SOCKFILTER_DEBUG=1 log of curl"
		log "debug log mentions datafilt:"
		grep -i datafilt "$E2E_TMP/curl-pre.err" | head -n 5
	fi
}
