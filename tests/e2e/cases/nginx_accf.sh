# shellcheck shell=bash
# nginx_accf: nginx (a generated configuration in the case's directory,
# static files and stub_status on 127.0.0.1) with accf_http automatic on
# inet:stream:tcp.  A python3 holder opens 500 idle connections and 100
# that send half a request header and keeps them; then wrk loads a static
# file.  Without the preload nginx accepts all 600 held connections (its
# stub_status "accepts" grows by at least 600).  Under the preload none
# of them reaches nginx: "accepts" grows only by wrk's connections and
# the status fetches, every wrk request is answered 2xx with no socket
# error, and the held connections are all still open when the holder
# lets go (none closed: the backlog has room and no timeout is set).
#
# nginx runs as it does in production: a master that creates the
# listener and forks two workers that accept (the library takes the
# listener's connections in the processes that wait on it, the workers).

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(nginx wrk curl python3)

HELD_IDLE=500
HELD_PARTIAL=100
WRK_CONNS=8

# nginx_conf DIR PORT: a configuration for nginx -p DIR.
nginx_conf()
{
	local d=$1 port=$2 user=""
	# As root nginx would switch its workers to "nobody", who cannot
	# read the case's private directory.
	[ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
	mkdir -p "$d/www" "$d/tmp"
	head -c 16384 /dev/urandom | base64 >"$d/www/file.txt"
	cat >"$d/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log notice;
worker_rlimit_nofile 4096;
events { worker_connections 2048; }
http {
	access_log off;
	keepalive_requests 1000000;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	server {
		listen 127.0.0.1:$port backlog=1024;
		root $d/www;
		location = /status { stub_status; }
	}
}
EOF
}

# accepts PORT: nginx's stub_status "accepts" (one more accept itself).
accepts()
{
	local out
	out=$(timeout -k 2 10 curl -sS --max-time 8 \
	    "http://127.0.0.1:$1/status") || return 1
	# Active connections: N / server accepts handled requests / A H R
	awk 'NR == 3 { print $1 }' <<<"$out"
}

# nginx_round TAG PREFIX...: nginx under the command prefix, the holder,
# wrk; sets ACC_BEFORE, ACC_AFTER, FETCHES, WRK_OUT, HOLD_OUT.
nginx_round()
{
	local tag=$1 d port holder ngx rc i n
	shift
	d=$E2E_TMP/$tag
	port=$(free_port tcp) || fail "no free port"
	nginx_conf "$d" "$port"
	start_bg "nginx-$tag" "$@" nginx -p "$d" -e "$d/error.log" \
	    -c "$d/nginx.conf"
	ngx=$BG_PID
	wait_port "$port" tcp "$ngx"
	FETCHES=0
	ACC_BEFORE=$(accepts "$port") || fail "$tag: no stub_status"
	FETCHES=$((FETCHES + 1))
	log "$tag: accepts before: $ACC_BEFORE"

	start_bg "hold-$tag" python3 "$E2E_SRC/helpers.py" hold 127.0.0.1 \
	    "$port" "$HELD_IDLE" "$HELD_PARTIAL" "$d/hold.stop"
	holder=$BG_PID
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		grep -q '^held' "$E2E_TMP/hold-$tag.out" && break
		alive "$holder" || fail "$tag: the holder exited early"
		sleep 0.1
	done
	grep -q "^held $((HELD_IDLE + HELD_PARTIAL))\$" "$E2E_TMP/hold-$tag.out" ||
	    fail "$tag: the holder did not open its connections"
	if [ "$tag" = base ]; then
		# nginx accepts them at its own pace: wait for it (bounded).
		for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
			n=$(accepts "$port") || fail "$tag: no stub_status"
			FETCHES=$((FETCHES + 1))
			[ "$n" -ge $((ACC_BEFORE + HELD_IDLE + HELD_PARTIAL)) ] &&
			    break
			sleep 0.1
		done
	fi

	run_client -t 30 "wrk-$tag" wrk -t2 -c"$WRK_CONNS" -d2s \
	    "http://127.0.0.1:$port/file.txt"
	rc=$?
	expect_ok "wrk ($tag)" "$rc"
	WRK_OUT=$E2E_TMP/wrk-$tag.out
	cat "$WRK_OUT"
	# wrk has served its connections: whatever nginx was going to accept
	# meanwhile, it has accepted by now (its listener is level-triggered).
	ACC_AFTER=$(accepts "$port") || fail "$tag: no stub_status"
	log "$tag: accepts after: $ACC_AFTER ($FETCHES status fetches before)"

	: >"$d/hold.stop"
	finish_bg "$holder" 30
	expect_ok "holder ($tag)" "$?"
	HOLD_OUT=$(cat "$E2E_TMP/hold-$tag.out")
	log "$tag: holder: $(tr '\n' ' ' <<<"$HOLD_OUT")"
	alive "$ngx" || fail "$tag: nginx died"
	stop_pid "$ngx"
}

# wrk_all_served: every request wrk made got a 2xx answer.
wrk_all_served()
{
	local tag=$1
	grep -Eq '^ +[0-9]+ requests in' "$WRK_OUT" ||
	    fail "$tag: no request count in wrk's output"
	grep -q 'Non-2xx' "$WRK_OUT" &&
	    fail "$tag: wrk got non-2xx answers: $(grep 'Non-2xx' "$WRK_OUT")"
	grep -q 'Socket errors' "$WRK_OUT" &&
	    fail "$tag: wrk socket errors: $(grep 'Socket errors' "$WRK_OUT")"
	[ "$(awk '/ requests in/ { print $1 }' "$WRK_OUT")" -gt 0 ] ||
	    fail "$tag: wrk made no request"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" delta lim

	ulimit -n 4096 2>/dev/null
	[ "$(ulimit -n)" -ge 1400 ] ||
	    skip "RLIMIT_NOFILE $(ulimit -n) is too low for 600 held connections"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "accf_http";
    module    = "accf_http";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp" ];
  }
);
CONF

	nginx_round base "${BASE_ENV[@]}"
	wrk_all_served base
	delta=$((ACC_AFTER - ACC_BEFORE))
	log "base: accepts +$delta"
	[ "$delta" -ge $((HELD_IDLE + HELD_PARTIAL)) ] ||
	    fail "without the preload nginx accepted only $delta connections (want >= $((HELD_IDLE + HELD_PARTIAL)))"

	preloaded || return 0
	set_preload "$conf"
	nginx_round pre "${PRELOAD_ENV[@]}"
	wrk_all_served pre
	delta=$((ACC_AFTER - ACC_BEFORE))
	# wrk's connections and the status fetches (the one that reads
	# ACC_AFTER counts itself); wrk may reconnect a few.
	lim=$((2 * WRK_CONNS + FETCHES + 1))
	log "pre: accepts +$delta (wrk $WRK_CONNS connections, $FETCHES fetches)"
	[ "$delta" -le "$lim" ] ||
	    fail "under accf_http nginx accepted $delta connections (want <= $lim: the held ones reached it)"
	grep -q "^closed 0 open $((HELD_IDLE + HELD_PARTIAL))\$" <<<"$HOLD_OUT" ||
	    fail "held connections were closed under accf_http: $HOLD_OUT"
}
