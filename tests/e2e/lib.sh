# shellcheck shell=bash
#
# lib.sh: helpers for the end-to-end cases.  run.sh sources this file, then
# one case file, in a subshell per case, and calls e2e_setup before the
# case's run_case.  Every process a case starts runs under `timeout` (a
# hang guard, never an assertion) and is killed by PID when the case ends.
#
# Set by run.sh:
#   E2E_CASE      the case name
#   E2E_SRC       tests/e2e in the source tree (helpers.py lives there)
#   E2E_BUILD     the build directory
#   E2E_LIB       libsockfilter.so
#   E2E_MODDIR    the shipped modules (datafilt.so, xorfilt.so)
#   E2E_TESTMODS  the test-only modules (denyconnect.so)
#   E2E_BINDIR    the test programs (xfer, filopt)
#   E2E_PRELOAD   1: preload the library; 0: run everything without it
#                 (checks the cases' plumbing, filter effects are not checked)
#   E2E_REASON    file that receives the one-line reason of a FAIL or SKIP
#   E2E_KEEP      1: keep the case's temporary directory

# Hang guards, in seconds.
E2E_CLIENT_LIMIT=${E2E_CLIENT_LIMIT:-60}
E2E_BG_LIMIT=${E2E_BG_LIMIT:-600}
E2E_WAIT_LIMIT=${E2E_WAIT_LIMIT:-20}

E2E_PIDS=()
E2E_TMP=""
BG_PID=""
PRELOAD_ENV=()
# Baseline runs: nothing of ours in the environment.
BASE_ENV=(env -u LD_PRELOAD -u SOCKFILTER_CONF -u SOCKFILTER_DEBUG
	-u SOCKFILTER_TRACE -u SOCKFILTER_SOCKET)

# log MSG...: a progress line in the case's log.
log()
{
	printf '%s: %s\n' "$E2E_CASE" "$*"
}

# fail MSG...: the case fails with MSG (ends the case's subshell).
fail()
{
	printf 'FAIL: %s\n' "$*"
	printf '%s\n' "$*" >"$E2E_REASON"
	exit 1
}

# skip MSG...: the case cannot run here (ends the case's subshell).
skip()
{
	printf 'SKIP: %s\n' "$*"
	printf '%s\n' "$*" >"$E2E_REASON"
	exit 77
}

# need PROGRAM...: skip unless every PROGRAM is on PATH.
need()
{
	local p
	for p in "$@"; do
		command -v "$p" >/dev/null 2>&1 ||
		    skip "$p is not installed (apt-get install -y $p)"
	done
}

# need_file FILE...: fail unless every FILE exists (built artefacts).
need_file()
{
	local f
	for f in "$@"; do
		[ -e "$f" ] || fail "$f is missing: build the project first"
	done
}

# preloaded: true when the library is preloaded in this run.
preloaded()
{
	[ "$E2E_PRELOAD" = 1 ]
}

# set_preload CONF [NAME=VALUE...]: PRELOAD_ENV becomes the command prefix
# that runs a program under the library with configuration CONF (and the
# extra variables); without the preload in --no-preload mode.
set_preload()
{
	local conf=$1
	shift
	PRELOAD_ENV=("${BASE_ENV[@]}" "SOCKFILTER_CONF=$conf" "$@")
	if preloaded; then
		PRELOAD_ENV+=("LD_PRELOAD=$E2E_LIB")
	fi
}

# set_preload_runtime CONF [NAME=VALUE...]: set_preload, with the
# sanitizer runtime (SF_PRELOAD_PREFIX, set by scripts/test.sh in a
# sanitizer pass) first in LD_PRELOAD.  For programs that crash without
# it, such as those linked with jemalloc (redis): ASan loaded later, as a
# dependency of the instrumented library, finds malloc already taken.
# Not for curl, which hangs with it (scripts/test.sh explains why).
set_preload_runtime()
{
	local i
	set_preload "$@"
	preloaded && [ -n "${SF_PRELOAD_PREFIX:-}" ] || return 0
	for i in "${!PRELOAD_ENV[@]}"; do
		[ "${PRELOAD_ENV[i]}" = "LD_PRELOAD=$E2E_LIB" ] &&
		    PRELOAD_ENV[i]="LD_PRELOAD=$SF_PRELOAD_PREFIX:$E2E_LIB"
	done
}

# e2e_setup: temporary directory and the cleanup trap.
e2e_setup()
{
	E2E_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sf-e2e.$E2E_CASE.XXXXXX") ||
	    fail "mktemp failed"
	trap e2e_cleanup EXIT
	trap 'exit 129' HUP
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# alive PID: true while PID runs (a zombie does not count).
alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# stop_pid PID: TERM, up to 5 s to go, then KILL; reaps it.
stop_pid()
{
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		log "PID $pid ignored SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

# e2e_cleanup: the EXIT trap: stop every started PID (newest first), show
# the programs' standard error when the case did not pass, remove the
# temporary directory.
e2e_cleanup()
{
	local rc=$? i f
	trap - EXIT
	for ((i = ${#E2E_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${E2E_PIDS[i]}"
	done
	if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "$E2E_TMP" ]; then
		for f in "$E2E_TMP"/*.err; do
			[ -s "$f" ] || continue
			printf -- '--- %s (last 30 lines)\n' "${f##*/}"
			tail -n 30 "$f" | cut -c 1-300
		done
	fi
	if [ -n "$E2E_TMP" ]; then
		if [ "${E2E_KEEP:-0}" = 1 ]; then
			printf 'kept %s\n' "$E2E_TMP"
		else
			rm -rf -- "$E2E_TMP"
		fi
	fi
	exit "$rc"
}

# free_port [tcp|udp] [HOST]: print a port that was free on loopback.
free_port()
{
	python3 - "${1:-tcp}" "${2:-127.0.0.1}" <<'EOF'
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[2] else socket.AF_INET
typ = socket.SOCK_STREAM if sys.argv[1] == "tcp" else socket.SOCK_DGRAM
s = socket.socket(fam, typ)
s.bind((sys.argv[2], 0))
print(s.getsockname()[1])
EOF
}

# have_ipv6: true when ::1 can be bound.
have_ipv6()
{
	python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' \
	    2>/dev/null
}

# start_bg NAME CMD...: run CMD in the background with standard output and
# error in $E2E_TMP/NAME.out and NAME.err; its PID in BG_PID and E2E_PIDS.
start_bg()
{
	local name=$1
	shift
	timeout -k 5 "$E2E_BG_LIMIT" "$@" >"$E2E_TMP/$name.out" \
	    2>"$E2E_TMP/$name.err" </dev/null &
	BG_PID=$!
	E2E_PIDS+=("$BG_PID")
}

# finish_bg PID [SECONDS]: wait up to SECONDS (the client limit) for a
# background program to end by itself; returns its status, 124 if it is
# still running (it is then left to the cleanup).
finish_bg()
{
	local pid=$1 limit=${2:-$E2E_CLIENT_LIMIT} i
	for ((i = 0; i < limit * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && return 124
	wait "$pid"
}

# wait_port PORT [tcp|udp] [PID]: wait until something listens on PORT
# (tcp) or has bound it (udp), as /proc/net shows, so that no probe
# connection reaches the server; fail after E2E_WAIT_LIMIT seconds or as
# soon as PID is gone.
wait_port()
{
	local port=$1 proto=${2:-tcp} pid=${3:-} hex state i f files=()
	hex=$(printf '%04X' "$port")
	state=0A
	[ "$proto" = udp ] && state=07
	for f in "/proc/net/$proto" "/proc/net/${proto}6"; do
		[ -r "$f" ] && files+=("$f")
	done
	[ "${#files[@]}" -gt 0 ] || fail "cannot read /proc/net/$proto"
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		if awk -v p=":$hex" -v st="$state" \
		    'substr($2, length($2) - 4) == p && $4 == st { f = 1 }
		     END { exit !f }' "${files[@]}"; then
			return 0
		fi
		if [ -n "$pid" ] && ! alive "$pid"; then
			fail "the server (PID $pid) exited before binding $proto port $port"
		fi
		sleep 0.1
	done
	fail "nothing bound $proto port $port after $E2E_WAIT_LIMIT s"
}

# run_client [-i FILE] [-t SECONDS] NAME CMD...: run CMD in the foreground
# under a hang guard, standard input from FILE (default /dev/null), output
# in $E2E_TMP/NAME.out and NAME.err; returns CMD's status.  A status of
# 124 or 137 means the hang guard fired, which callers report as a hang.
run_client()
{
	local in=/dev/null limit=$E2E_CLIENT_LIMIT name rc
	while [ $# -gt 0 ]; do
		case $1 in
		-i) in=$2; shift 2 ;;
		-t) limit=$2; shift 2 ;;
		*) break ;;
		esac
	done
	name=$1
	shift
	timeout -k 5 "$limit" "$@" >"$E2E_TMP/$name.out" \
	    2>"$E2E_TMP/$name.err" <"$in"
	rc=$?
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		log "$name: still running after $limit s, killed (hang guard)"
	fi
	return "$rc"
}

# expect_ok NAME STATUS: fail unless a client's STATUS is 0.
expect_ok()
{
	local name=$1 rc=$2
	case $rc in
	0) ;;
	124 | 137) fail "$name hung (hang guard fired)" ;;
	*) fail "$name exited with status $rc" ;;
	esac
}

# expect_same FILE1 FILE2 WHAT: fail unless the files are byte-identical.
expect_same()
{
	local out
	out=$(cmp -- "$1" "$2" 2>&1) || fail "$3: differs: $out"
}

# expect_grep PATTERN FILE WHAT: fail unless FILE matches PATTERN
# (extended regular expression, case-insensitive).
expect_grep()
{
	grep -Eiq -- "$1" "$2" || fail "$3: no line matching /$1/ in ${2##*/}"
}

# sha FILE: the SHA-256 of FILE.
sha()
{
	local h
	h=$(sha256sum <"$1") || return 1
	printf '%s\n' "${h%% *}"
}

# ---------------------------------------------------------------------
# The rechunk test filter (tests/filters/rechunk.c).
#
# E2E_RECHUNK_TIMERS=1 makes rechunk_check require the timer path (bytes
# held and injected from sof_timer_arm timers); the default 0 accepts the
# immediate path a core without filter timers falls back to, and only
# reports which path ran.
# ---------------------------------------------------------------------
E2E_RECHUNK_TIMERS=${E2E_RECHUNK_TIMERS:-1}
# E2E_RECHUNK_PARAMS="KEY=VALUE ...": extra rechunk params for every case
# (e.g. "hold_in=0" holds only outgoing bytes, "hold_ms=20").
E2E_RECHUNK_PARAMS=${E2E_RECHUNK_PARAMS:-}

# rechunk_conf FILE [KEY=VALUE...]: a configuration attaching rechunk
# automatically to every TCP socket (inet and inet6 stream), summary
# lines appended to $E2E_TMP/rechunk.log; extra params as KEY=VALUE
# (VALUE written as is: quote strings yourself), then E2E_RECHUNK_PARAMS.
rechunk_conf()
{
	local file=$1 kv params="" extra=()
	shift
	need_file "$E2E_TESTMODS/rechunk.so"
	read -ra extra <<<"$E2E_RECHUNK_PARAMS"
	for kv in "$@" "${extra[@]}"; do
		params+=" ${kv%%=*} = ${kv#*=};"
	done
	cat >"$file" <<CONF
module_path = [ "$E2E_TESTMODS", "$E2E_MODDIR" ];
filters = (
  {
    name      = "rechunk";
    module    = "rechunk";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp", "inet6:stream:tcp" ];
    params    = { summary = "$E2E_TMP/rechunk.log";$params };
  }
);
CONF
}

# rechunk_sum KEY [FILE]: the sum of counter KEY (out_bytes, blocks,
# held_out, timer, immediate, errors, ...) over every summary line of
# FILE (default $E2E_TMP/rechunk.log); "held" is held_out + held_in.
rechunk_sum()
{
	awk -v k="$1" '
	{
		for (i = 1; i <= NF; i++) {
			split($i, kv, "=")
			if (kv[1] == k || (k == "held" && kv[1] ~ /^held_/))
				s += kv[2]
		}
	}
	END { print s + 0 }' "${2:-$E2E_TMP/rechunk.log}" 2>/dev/null || echo 0
}

# rechunk_check WHAT: the rechunk filter ran in this preloaded run: at
# least one summary line, blocks re-chunked; with E2E_RECHUNK_TIMERS=1
# also bytes held and injected from timers, never the immediate path.
# Logs the counters either way.  Nothing to check without the preload.
rechunk_check()
{
	local what=$1 f=$E2E_TMP/rechunk.log n blocks held timer imm
	preloaded || return 0
	[ -s "$f" ] || fail "$what: rechunk wrote no summary line (not attached?)"
	n=$(grep -c '^rechunk: ' "$f")
	blocks=$(rechunk_sum blocks)
	held=$(rechunk_sum held)
	timer=$(rechunk_sum timer)
	imm=$(rechunk_sum immediate)
	log "$what: rechunk on $n sockets: blocks $blocks, held $held," \
	    "timer $timer, immediate $imm, merged $(rechunk_sum merged)," \
	    "errors $(rechunk_sum errors), dropped $(rechunk_sum dropped)"
	[ "$blocks" -gt 0 ] || fail "$what: rechunk re-chunked nothing"
	if [ "$E2E_RECHUNK_TIMERS" = 1 ]; then
		grep -q 'timers=no' "$f" &&
		    fail "$what: sof_timer_arm failed (timers=no) with E2E_RECHUNK_TIMERS=1"
		[ "$held" -gt 0 ] && [ "$timer" -gt 0 ] ||
		    fail "$what: the timer path did not run (held $held, timer $timer)"
		[ "$imm" = 0 ] ||
		    fail "$what: rechunk fell back to the immediate path $imm times"
	elif [ "$timer" -gt 0 ]; then
		log "$what: the timer path ran (E2E_RECHUNK_TIMERS=1 would require it)"
	else
		log "$what: immediate path only (no filter timers in this core)"
	fi
}

# rechunk_reset: start a new summary file (before the next preloaded run).
rechunk_reset()
{
	: >"$E2E_TMP/rechunk.log"
}

# ---------------------------------------------------------------------
# soconfigd.  E2E_SBINDIR holds soconfigd, soconfig and sockfilter.
# ---------------------------------------------------------------------

# SF_SOCK: the daemon's socket of the case (SOCKFILTER_SOCKET).
SF_SOCK=""
DAEMON_PID=""

# need_daemon: fail unless the daemon's programs are built.
need_daemon()
{
	need_file "$E2E_SBINDIR/soconfigd" "$E2E_SBINDIR/soconfig" \
	    "$E2E_SBINDIR/sockfilter"
	: "${SF_SOCK:=$E2E_TMP/run/soconfigd.sock}"
}

# soconfig ARGS...: run soconfig against the case's daemon (hang guard).
soconfig()
{
	SOCKFILTER_SOCKET=$SF_SOCK timeout -k 5 "$E2E_CLIENT_LIMIT" \
	    "$E2E_SBINDIR/soconfig" "$@"
}

# start_daemon CONF [NAME]: soconfigd -c CONF on SF_SOCK in the
# background (DAEMON_PID: soconfigd itself), then wait until it answers.
start_daemon()
{
	local conf=$1 name=${2:-soconfigd} i
	need_daemon
	start_bg "$name" "${BASE_ENV[@]}" "$E2E_SBINDIR/soconfigd" -c "$conf" \
	    -s "$SF_SOCK"
	DAEMON_PID=$(child_pid "$BG_PID")
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		# This daemon, not one still running on the socket.
		if soconfig -V 2>/dev/null | grep -q " pid $DAEMON_PID "; then
			return 0
		fi
		alive "$DAEMON_PID" ||
		    fail "soconfigd exited: $(tail -n 3 "$E2E_TMP/$name.err")"
		sleep 0.1
	done
	fail "soconfigd did not answer on $SF_SOCK after $E2E_WAIT_LIMIT s"
}

# set_daemon_preload [NAME=VALUE...]: PRELOAD_ENV runs a program under the
# library with the case's daemon (no SOCKFILTER_CONF).
set_daemon_preload()
{
	PRELOAD_ENV=("${BASE_ENV[@]}" "SOCKFILTER_SOCKET=$SF_SOCK" "$@")
	if preloaded; then
		PRELOAD_ENV+=("LD_PRELOAD=$E2E_LIB")
	fi
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds (a
# condition reached asynchronously, never a timing assertion); status 1
# if it never did.
wait_for()
{
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# jq_py EXPR FILE: evaluate a Python expression on the JSON in FILE
# (bound to j) and print the result.
jq_py()
{
	python3 -c 'import json,sys; j=json.load(open(sys.argv[2])); print(eval(sys.argv[1]))' \
	    "$1" "$2"
}

# child_pid PID: the program a start_bg PID (its `timeout`) runs.
child_pid()
{
	local c i
	for ((i = 0; i < E2E_WAIT_LIMIT * 10; i++)); do
		c=$(pgrep -P "$1" | head -n 1)
		[ -n "$c" ] && { printf '%s\n' "$c"; return 0; }
		sleep 0.1
	done
	fail "no child of PID $1"
}
