# shellcheck shell=bash
# deny_connect: the test filter denyconnect (tests/filters/denyconnect.c,
# its connect callback returns SOF_RVAL_EACCES), automatic on TCP, makes
# curl's connect() fail: curl exits non-zero and its verbose log says
# "Permission denied".  Without the filter (no preload, or the preload
# with datafilt only) the same fetch succeeds.  The server is not
# preloaded.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(curl python3)

run_case()
{
	local docs="$E2E_TMP/docs" deny="$E2E_TMP/deny.conf"
	local plain="$E2E_TMP/plain.conf" port url rc

	need_file "$E2E_TESTMODS/denyconnect.so"
	mkdir -p "$docs"
	printf 'reachable\n' >"$docs/index.html"
	cat >"$deny" <<CONF
module_path = [ "$E2E_TESTMODS", "$E2E_MODDIR" ];
filters = (
  {
    name      = "denyconnect";
    module    = "denyconnect";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
  }
);
CONF
	cat >"$plain" <<CONF
module_path = [ "$E2E_TESTMODS", "$E2E_MODDIR" ];
filters = (
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
  }
);
CONF

	port=$(free_port tcp) || fail "no free port"
	url="http://127.0.0.1:$port/"
	start_bg server "${BASE_ENV[@]}" python3 -m http.server \
	    --bind 127.0.0.1 --directory "$docs" "$port"
	wait_port "$port" tcp "$BG_PID"

	run_client curl-base "${BASE_ENV[@]}" curl -sS --fail --noproxy '*' \
	    "$url"
	rc=$?
	expect_ok "curl without the preload" "$rc"
	expect_same "$docs/index.html" "$E2E_TMP/curl-base.out" \
	    "page without the preload"

	set_preload "$plain"
	run_client curl-plain "${PRELOAD_ENV[@]}" curl -sS --fail \
	    --noproxy '*' "$url"
	rc=$?
	expect_ok "curl under the preload without denyconnect" "$rc"
	expect_same "$docs/index.html" "$E2E_TMP/curl-plain.out" \
	    "page under the preload without denyconnect"

	if ! preloaded; then
		log "--no-preload: denyconnect cannot attach, not checked"
		return 0
	fi
	set_preload "$deny"
	# -v: curl's plain error says "Couldn't connect to server"; the
	# verbose log carries connect()'s strerror.
	run_client curl-deny "${PRELOAD_ENV[@]}" curl -sS -v --fail \
	    --noproxy '*' "$url"
	rc=$?
	log "curl with denyconnect: status $rc"
	grep -Ei 'connect|denied' "$E2E_TMP/curl-deny.err" | head -n 5
	case $rc in
	0) fail "curl succeeded although denyconnect denies connect()" ;;
	124 | 137) fail "curl with denyconnect hung (hang guard fired)" ;;
	esac
	[ ! -s "$E2E_TMP/curl-deny.out" ] ||
	    fail "curl with denyconnect received a body"
	expect_grep 'Permission denied' "$E2E_TMP/curl-deny.err" \
	    "curl's log with denyconnect"
}
