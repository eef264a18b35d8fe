# shellcheck shell=bash
# nginx_wrk: nginx (epoll, edge-triggered; a master and 2 worker
# processes; sendfile on) serves static files of 1 KiB and 1 MiB to wrk
# (-t2 -c8 -d2s) and to curl, with the rechunk test filter automatic on
# every TCP socket of nginx, wrk and curl.  wrk reports requests and no
# error ("Non-2xx or 3xx responses", "Socket errors" absent), the
# bodies of several curl fetches hash to the files' SHA-256, as without
# the preload; the filter's summaries show it re-chunked the traffic.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(nginx wrk curl)

WRK_SECS=${WRK_SECS:-2}

# nginx_conf FILE PORT: the generated configuration.
nginx_conf()
{
	local user=""
	# As root nginx would switch its workers to "nobody", who cannot
	# read the case's private directory.
	[ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
	cat >"$1" <<CONF
$user
daemon off;
master_process on;
worker_processes 2;
pid $E2E_TMP/nginx.pid;
error_log $E2E_TMP/nginx-error.log info;
events {
    worker_connections 256;
    use epoll;
}
http {
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path $E2E_TMP/ngx-body;
    proxy_temp_path $E2E_TMP/ngx-proxy;
    fastcgi_temp_path $E2E_TMP/ngx-fastcgi;
    uwsgi_temp_path $E2E_TMP/ngx-uwsgi;
    scgi_temp_path $E2E_TMP/ngx-scgi;
    types { application/octet-stream bin; }
    server {
        listen 127.0.0.1:$2;
        root $E2E_TMP/docs;
    }
}
CONF
}

# wrk_errors FILE: fail if wrk's report shows an error or no request.
wrk_errors()
{
	local f=$1 what=$2 reqs
	grep -E 'requests in|Non-2xx|Socket errors' "$f"
	grep -q 'Non-2xx' "$f" && fail "$what: $(grep 'Non-2xx' "$f")"
	grep -q 'Socket errors' "$f" && fail "$what: $(grep 'Socket errors' "$f")"
	reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' "$f")
	[ "${reqs:-0}" -gt 0 ] || fail "$what: wrk completed no request"
}

# serve TAG PREFIX...: nginx under PREFIX, wrk and curl against it.
serve()
{
	local tag=$1 port srv f rc i
	shift
	port=$(free_port tcp) || fail "no free port"
	nginx_conf "$E2E_TMP/nginx-$tag.conf" "$port"
	start_bg "nginx-$tag" "$@" nginx -p "$E2E_TMP" \
	    -c "$E2E_TMP/nginx-$tag.conf"
	srv=$BG_PID
	wait_port "$port" tcp "$srv"
	for f in 1k.bin 1m.bin; do
		run_client -t 60 "wrk-$tag-$f" "$@" wrk -t2 -c8 \
		    -d"${WRK_SECS}s" "http://127.0.0.1:$port/$f"
		rc=$?
		expect_ok "wrk $f ($tag)" "$rc"
		wrk_errors "$E2E_TMP/wrk-$tag-$f.out" "wrk $f ($tag)"
	done
	mkdir -p "$E2E_TMP/$tag"
	args=()
	for i in 1 2 3 4; do
		for f in 1k.bin 1m.bin; do
			args+=(-o "$E2E_TMP/$tag/$i-$f"
			    "http://127.0.0.1:$port/$f")
		done
	done
	run_client "curl-$tag" "$@" curl -sS --fail --noproxy '*' \
	    --parallel --parallel-max 4 "${args[@]}"
	rc=$?
	expect_ok "curl ($tag)" "$rc"
	# TERM is nginx's fast shutdown: the workers exit, then the master.
	stop_pid "$srv"
	for i in 1 2 3 4; do
		for f in 1k.bin 1m.bin; do
			[ "$(sha "$E2E_TMP/$tag/$i-$f")" = "${sums[$f]}" ] ||
			    fail "fetch $i of $f ($tag): SHA-256 differs from the file's"
		done
	done
	log "$tag: 8 curl bodies hash to their files' SHA-256"
}

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" f
	declare -gA sums

	mkdir -p "$E2E_TMP/docs" "$E2E_TMP/logs"
	head -c 1024 /dev/urandom >"$E2E_TMP/docs/1k.bin"
	head -c 1048576 /dev/urandom >"$E2E_TMP/docs/1m.bin"
	for f in 1k.bin 1m.bin; do
		sums[$f]=$(sha "$E2E_TMP/docs/$f")
	done
	rechunk_conf "$conf"
	serve base "${BASE_ENV[@]}"
	set_preload "$conf"
	rechunk_reset
	serve pre "${PRELOAD_ENV[@]}"
	rechunk_check "nginx, wrk and curl"
	# Both worker processes served under the filter.
	log "pids with accepted sockets: $(awk '$4 == "accepted" { print $3 }' \
	    "$E2E_TMP/rechunk.log" | sort -u | tr '\n' ' ')"
}
