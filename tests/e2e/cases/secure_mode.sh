# shellcheck shell=bash
# secure_mode: in a setuid program (AT_SECURE) the environment chooses
# nothing.  SOCKFILTER_SECURE=1 gives the same behaviour without a setuid
# binary: the configuration named by SOCKFILTER_CONF (here one that
# attaches denyconnect from a module_path of its own) must be ignored, so
# curl's fetch succeeds; the same environment without SOCKFILTER_SECURE
# makes it fail.  The server is not preloaded.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(curl python3)

run_case()
{
	local docs="$E2E_TMP/docs" deny="$E2E_TMP/deny.conf" port url rc

	if ! preloaded; then
		skip "needs the preload"
	fi
	need_file "$E2E_TESTMODS/denyconnect.so"
	mkdir -p "$docs"
	printf 'reachable\n' >"$docs/index.html"
	cat >"$deny" <<CONF
module_path = [ "$E2E_TESTMODS" ];
filters = (
  {
    name      = "denyconnect";
    module    = "denyconnect";
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

	set_preload "$deny"
	run_client curl-deny "${PRELOAD_ENV[@]}" curl -sS --fail \
	    --noproxy '*' "$url"
	rc=$?
	[ "$rc" -ne 0 ] ||
	    fail "curl succeeded: the denying configuration did not apply"

	set_preload "$deny" SOCKFILTER_SECURE=1
	run_client curl-secure "${PRELOAD_ENV[@]}" curl -sS --fail \
	    --noproxy '*' "$url"
	rc=$?
	expect_ok "curl in secure mode (SOCKFILTER_CONF ignored)" "$rc"
	expect_same "$docs/index.html" "$E2E_TMP/curl-secure.out" \
	    "page in secure mode"
}
