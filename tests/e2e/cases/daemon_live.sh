# shellcheck shell=bash
# daemon_live: soconfigd owns the configuration.  A long-lived python3
# client under the preload opens a TCP socket to a python3 server (also
# preloaded) after each change made with soconfig -F (add tcplog on top,
# move it to the bottom, remove datafilt), by editing the file by hand
# (inotify) and by SIGHUP; soconfig -p shows that each new socket follows
# the configuration of its time while the older sockets keep their stack.
# The file written back keeps its comments; soconfigd -t and a broken
# edit report FILE:LINE: problem, and the daemon keeps its configuration.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=(python3 curl)

# lines_above FILE N: FILE has more than N lines.
lines_above()
{
	[ "$(wc -l <"$1")" -gt "$2" ]
}

# open_sock: the holder opens one more socket; prints its descriptor.
open_sock()
{
	local n
	n=$(wc -l <"$E2E_TMP/holder.out")
	echo open >"$E2E_TMP/holder.fifo"
	wait_for "$E2E_WAIT_LIMIT" lines_above "$E2E_TMP/holder.out" "$n" ||
	    fail "the holder did not open a socket"
	tail -n 1 "$E2E_TMP/holder.out" | awk '{ print $2 }'
}

# filters_of FD: the filters line soconfig -p shows for FD of the holder.
filters_of()
{
	soconfig -p "$HOLDER" >"$E2E_TMP/pfiles.txt" ||
	    fail "soconfig -p $HOLDER failed"
	awk -v fd="$1" '$1 == fd":" { getline; sub(/^ *filters: /, ""); print }' \
	    "$E2E_TMP/pfiles.txt"
}

# expect_filters FD WANT: fail unless soconfig -p shows WANT for FD.
expect_filters()
{
	local got
	got=$(filters_of "$1")
	log "fd $1: filters: $got"
	[ "$got" = "$2" ] || {
		cat "$E2E_TMP/pfiles.txt"
		fail "fd $1: filters '$got', expected '$2'"
	}
}

# list_has PATTERN: soconfig -l shows a line matching PATTERN.
list_has()
{
	soconfig -l 2>/dev/null | grep -qE -- "$1"
}

run_case()
{
	local conf="$E2E_TMP/etc/sockfilter.conf" port a b c d e f g out rc
	if ! preloaded; then
		log "--no-preload: nothing to observe without the library"
		return 0
	fi
	need_daemon
	mkdir -p "$E2E_TMP/etc"
	cat >"$conf" <<CONF
# sockfilter test configuration: this comment must survive soconfig -F.
module_path = [ "$E2E_MODDIR" ];
filters = (
  # datafilt counts everything
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
  }
);
# trailing comment
CONF
	start_daemon "$conf"

	port=$(free_port tcp) || fail "no free port"
	set_daemon_preload
	mkdir -p "$E2E_TMP/docs"
	printf 'hello\n' >"$E2E_TMP/docs/index.html"
	start_bg server "${PRELOAD_ENV[@]}" python3 -m http.server \
	    --bind 127.0.0.1 --directory "$E2E_TMP/docs" "$port"
	wait_port "$port" tcp "$BG_PID"

	cat >"$E2E_TMP/holder.py" <<'PY'
import os, socket, sys
port = int(sys.argv[1])
fifo = os.open(sys.argv[2], os.O_RDWR)
keep = []
with os.fdopen(fifo, "r") as cmds:
    for line in cmds:
        if line.strip() == "open":
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            keep.append(s)
            print("fd", s.fileno(), flush=True)
        elif line.strip() == "quit":
            break
PY
	mkfifo "$E2E_TMP/holder.fifo"
	start_bg holder "${PRELOAD_ENV[@]}" python3 "$E2E_TMP/holder.py" \
	    "$port" "$E2E_TMP/holder.fifo"
	HOLDER=$(child_pid "$BG_PID")
	HOLDER_BG=$BG_PID

	a=$(open_sock)
	expect_filters "$a" "datafilt(auto)"

	# Add tcplog on top: the next socket has it, the first one not.
	soconfig -F tcplog tcplog auto top inet:stream:tcp,inet6:stream:tcp \
	    -o path="$E2E_TMP/tcplog.jsonl" || fail "soconfig -F tcplog failed"
	b=$(open_sock)
	expect_filters "$b" "tcplog(auto), datafilt(auto)"
	expect_filters "$a" "datafilt(auto)"

	# Reorder: tcplog to the bottom.
	soconfig -F tcplog || fail "soconfig -F tcplog (unconfigure) failed"
	soconfig -F tcplog tcplog auto bottom inet:stream:tcp ||
	    fail "soconfig -F tcplog ... bottom failed"
	c=$(open_sock)
	expect_filters "$c" "datafilt(auto), tcplog(auto)"
	expect_filters "$b" "tcplog(auto), datafilt(auto)"

	# Remove datafilt: it stays on the sockets that have it.
	soconfig -F datafilt || fail "soconfig -F datafilt (unconfigure) failed"
	d=$(open_sock)
	expect_filters "$d" "tcplog(auto)"
	expect_filters "$a" "datafilt(auto)"
	expect_filters "$c" "datafilt(auto), tcplog(auto)"

	# The file was rewritten in place, comments kept.
	grep -q 'this comment must survive' "$conf" ||
	    fail "the leading comment of the file was lost"
	grep -q '# trailing comment' "$conf" || fail "the trailing comment was lost"
	grep -q 'name      = "datafilt"' "$conf" &&
	    fail "datafilt is still in the file"
	soconfig -l >"$E2E_TMP/list.txt" || fail "soconfig -l failed"
	cat "$E2E_TMP/list.txt"
	expect_grep '^tcplog +tcplog +auto +bottom' "$E2E_TMP/list.txt" \
	    "soconfig -l"

	# An edit by hand: inotify reloads it.
	sed -i 's/placement = "bottom"/placement = "top"/' "$conf"
	cat >>"$conf" <<CONF
# added by hand
CONF
	python3 - "$conf" "$E2E_MODDIR" <<'PY'
import sys
p, mod = sys.argv[1], sys.argv[2]
s = open(p).read()
i = s.rindex(")")
s = s[:i] + ''',
  {
    name = "xorfilt"; module = "xorfilt"; attach = "prog";
    sockets = [ "inet:stream:tcp" ];
  }
''' + s[i:]
open(p + ".new", "w").write(s)
PY
	mv "$conf.new" "$conf"
	wait_for "$E2E_WAIT_LIMIT" list_has '^xorfilt +xorfilt +prog' ||
	    fail "an edit of the file was not picked up (inotify)"
	e=$(open_sock)
	expect_filters "$e" "tcplog(auto)"

	# A broken edit: reported with file and line, configuration kept.
	cp "$conf" "$E2E_TMP/good.conf"
	printf 'filters = ( { name = "x"; attach = "sometimes"; sockets = [ "inet:stream:tcp" ]; } );\n' \
	    >"$E2E_TMP/etc/broken.conf"
	out=$("$E2E_SBINDIR/soconfigd" -t -c "$E2E_TMP/etc/broken.conf" 2>&1)
	rc=$?
	log "soconfigd -t on a broken file: status $rc: $out"
	[ "$rc" != 0 ] || fail "soconfigd -t accepted a broken file"
	[[ $out == *"broken.conf:1: "*"attach must be"* ]] ||
	    fail "soconfigd -t did not name file, line and problem: $out"
	cp "$E2E_TMP/etc/broken.conf" "$conf"
	kill -HUP "$DAEMON_PID"
	wait_for "$E2E_WAIT_LIMIT" grep -q 'sockfilter.conf:1: .*keeping configuration' \
	    "$E2E_TMP/soconfigd.err" ||
	    fail "a broken file was not reported as FILE:LINE: problem"
	f=$(open_sock)
	expect_filters "$f" "tcplog(auto)"

	# SIGHUP with a good file again.
	cp "$E2E_TMP/good.conf" "$conf"
	sed -i 's/placement = "top"/placement = "bottom"/' "$conf"
	kill -HUP "$DAEMON_PID"
	wait_for "$E2E_WAIT_LIMIT" list_has '^tcplog .* bottom' ||
	    fail "SIGHUP did not reload the file"
	g=$(open_sock)
	expect_filters "$g" "tcplog(auto)"
	expect_filters "$a" "datafilt(auto)"

	echo quit >"$E2E_TMP/holder.fifo"
	finish_bg "$HOLDER_BG" || fail "the holder failed"
	[ -s "$E2E_TMP/tcplog.jsonl" ] || fail "tcplog wrote no records"
	log "tcplog records: $(wc -l <"$E2E_TMP/tcplog.jsonl")"
}
