# shellcheck shell=bash
# tcplog: one record per TCP connection.  With soconfigd running, a
# python3 server (tcplog automatic) and three curl fetches started by the
# launcher (`sockfilter -a tcplog -- curl`: tcplog is configured "prog",
# -a makes it automatic for that program) leave one record per side of
# each connection in the JSON-lines file, with the addresses, pids,
# programs and byte counts that match the transfers, and a clean end
# (close or peer_eof: which side closes first is a race, never a reset);
# `soconfig log -f` streams the same records.  With the daemon stopped,
# the file still gets every record, and `sockfilter -c FILE` runs a
# program on a configuration file of its own.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3 curl)

NFETCH=3

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" log="$E2E_TMP/tcplog.jsonl"
	local port i sizes server follow nrec
	if ! preloaded; then
		log "--no-preload: no records without the library"
		return 0
	fi
	need_daemon
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  { name = "tcplog"; module = "tcplog"; attach = "prog";
    sockets = [ "inet:stream:tcp", "inet6:stream:tcp" ];
    params = { path = "$log"; }; }
);
CONF
	start_daemon "$conf"
	mkdir -p "$E2E_TMP/docs"
	head -c 20000 /dev/urandom >"$E2E_TMP/docs/blob.bin"

	# Follow the live stream from the start.
	SOCKFILTER_SOCKET=$SF_SOCK start_bg follow "$E2E_SBINDIR/soconfig" log -f
	follow=$BG_PID
	sleep 0.2 # only so that the first records find the follower: the
	# comparison below does not depend on it (the file is the reference)

	port=$(free_port tcp) || fail "no free port"
	start_bg server "${BASE_ENV[@]}" "SOCKFILTER_SOCKET=$SF_SOCK" \
	    "$E2E_SBINDIR/sockfilter" -a tcplog -- python3 -m http.server \
	    --bind 127.0.0.1 --directory "$E2E_TMP/docs" "$port"
	wait_port "$port" tcp "$BG_PID"
	server=$(child_pid "$BG_PID")

	: >"$E2E_TMP/sizes.txt"
	for ((i = 0; i < NFETCH; i++)); do
		run_client "curl$i" "${BASE_ENV[@]}" "SOCKFILTER_SOCKET=$SF_SOCK" \
		    "$E2E_SBINDIR/sockfilter" -a tcplog -- curl -sS --fail \
		    --noproxy '*' -o /dev/null \
		    -w '%{size_request} %{size_header} %{size_download} %{local_port}\n' \
		    "http://127.0.0.1:$port/blob.bin"
		expect_ok "curl $i" $?
		cat "$E2E_TMP/curl$i.out" >>"$E2E_TMP/sizes.txt"
	done
	# Each connection: the curl side at its exit, the server side when
	# it closes; wait for all 2 x NFETCH records.
	wait_for "$E2E_WAIT_LIMIT" lines_are "$log" $((2 * NFETCH)) ||
	    fail "expected $((2 * NFETCH)) records in the file"
	cat "$log"
	python3 - "$log" "$E2E_TMP/sizes.txt" "$port" "$server" <<'PY' ||
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
sizes = [list(map(int, l.split())) for l in open(sys.argv[2])]
port, server = int(sys.argv[3]), int(sys.argv[4])
bad = []
for req, hdr, body, lport in sizes:
    act = [r for r in recs if r["role"] == "active" and r["local"] == f"127.0.0.1:{lport}"]
    pas = [r for r in recs if r["role"] == "passive" and r["remote"] == f"127.0.0.1:{lport}"]
    if len(act) != 1 or len(pas) != 1:
        bad.append(f"port {lport}: {len(act)} active, {len(pas)} passive records")
        continue
    a, p = act[0], pas[0]
    # Who closes first is a race (curl stops at Content-Length, the
    # server shuts down after writing): either clean end, never a reset.
    clean = ("close", "peer_eof")
    for who, r in (("curl", a), ("server", p)):
        if r["end"] not in clean:
            bad.append(f"{who} {lport}: end = {r['end']!r}, expected one of {clean}")
    want = {"prog": "curl", "remote": f"127.0.0.1:{port}", "bytes_out": req,
            "bytes_in": hdr + body}
    for k, v in want.items():
        if a[k] != v:
            bad.append(f"curl {lport}: {k} = {a[k]!r}, expected {v!r}")
    want = {"pid": server, "prog": "python3", "local": f"127.0.0.1:{port}",
            "bytes_in": req, "bytes_out": hdr + body}
    for k, v in want.items():
        if p[k] != v:
            bad.append(f"server {lport}: {k} = {p[k]!r}, expected {v!r}")
    for r in (a, p):
        if not (0 <= r["duration"] < 60) or not r["start"].endswith("Z"):
            bad.append(f"{lport}: bad start/duration {r}")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PY
	fail "the records do not match the transfers"
	log "$((2 * NFETCH)) records match the transfers"

	# The live stream has the same records.
	wait_for "$E2E_WAIT_LIMIT" lines_are "$E2E_TMP/follow.out" $((2 * NFETCH)) ||
	    fail "soconfig log -f did not stream $((2 * NFETCH)) records"
	python3 - "$log" "$E2E_TMP/follow.out" <<'PY' ||
import json, sys
a = sorted(json.dumps(json.loads(l), sort_keys=True) for l in open(sys.argv[1]))
b = sorted(json.dumps(json.loads(l), sort_keys=True) for l in open(sys.argv[2]))
sys.exit(0 if a == b else 1)
PY
	fail "soconfig log -f and the file differ"
	log "soconfig log -f streamed the same records"
	stop_pid "$follow"

	# No daemon: the file still gets every record (the server keeps the
	# daemon's last configuration, curl reads the same file itself).
	stop_pid "$DAEMON_PID"
	nrec=$(wc -l <"$log")
	run_client curl-nodaemon "${BASE_ENV[@]}" "SOCKFILTER_SOCKET=$SF_SOCK" \
	    "SOCKFILTER_CONF=$conf" \
	    "$E2E_SBINDIR/sockfilter" -a tcplog -- curl -sS --fail \
	    --noproxy '*' -o /dev/null "http://127.0.0.1:$port/blob.bin"
	expect_ok "curl without the daemon" $?
	wait_for "$E2E_WAIT_LIMIT" lines_are "$log" $((nrec + 2)) ||
	    fail "without the daemon the records did not reach the file"
	log "without the daemon: 2 more records in the file"

	# sockfilter -c: a file of its own (tcplog automatic there).
	sed 's/attach = "prog"/attach = "auto"/; s#tcplog.jsonl#own.jsonl#' \
	    "$conf" >"$E2E_TMP/own.conf"
	run_client curl-own "${BASE_ENV[@]}" "$E2E_SBINDIR/sockfilter" \
	    -c "$E2E_TMP/own.conf" -- curl -sS --fail --noproxy '*' \
	    -o /dev/null "http://127.0.0.1:$port/blob.bin"
	expect_ok "curl under sockfilter -c" $?
	[ "$(wc -l <"$E2E_TMP/own.jsonl")" = 1 ] ||
	    fail "sockfilter -c: expected 1 record in own.jsonl"
	expect_grep '"role":"active"' "$E2E_TMP/own.jsonl" "sockfilter -c record"
}

# lines_are FILE N: FILE has exactly N lines (at least: more is an error
# the caller sees when it reads them).
lines_are()
{
	[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}
