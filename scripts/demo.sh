#!/usr/bin/env bash
#
# demo.sh: sockfilter in five minutes.  Installs what is missing, builds
# (reusing build/), then runs real programs on loopback under the preload:
#
#   1. datafilt, attached automatically to every TCP socket by the default
#      configuration: python3 -m http.server and curl, with the debug log
#      showing each attach decision and the trace file the truss view;
#   2. xorfilt, attached by the programs themselves (FIL_ATTACH): two
#      python3 programs talk through a socat relay that is not preloaded,
#      and a hex dump shows what the wire carried next to what the
#      receiver read;
#   3. what the filters did: datafilt's one-line summary per socket.
#
# Every process the demo starts is stopped by PID when it ends, however it
# ends.  Nothing is installed system-wide; temporary files go to one
# directory that is removed (SF_DEMO_KEEP=1 keeps it).
#
# usage: scripts/demo.sh

# cleanup and the steps' helpers run from traps and loops.
# shellcheck disable=SC2317

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$ROOT" || exit 2

if [ -t 1 ]; then
	B=$'\e[1m' D=$'\e[2m' R=$'\e[0m'
else
	B="" D="" R=""
fi

heading()
{
	printf '\n%s== %s ==%s\n' "$B" "$*" "$R"
}

# say TEXT...: an explanation, wrapped.
say()
{
	printf '%s\n' "$*" | fold -s -w 78
}

# show LABEL FILE: FILE's lines, indented and labelled.
show()
{
	local label=$1 file=$2
	[ -s "$file" ] || { printf '  %s(%s: nothing)%s\n' "$D" "$label" "$R"; return; }
	sed "s/^/  $label| /" "$file" | cut -c 1-160
}

die()
{
	printf '\ndemo.sh: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------------
# Processes and cleanup.
# ---------------------------------------------------------------------

PIDS=()
TMP=""

alive()
{
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ]
}

# stop PID [SIGNAL]: SIGNAL (TERM), up to 5 s to go, then KILL; reaps it.
stop()
{
	local pid=$1 sig=${2:-TERM} i
	alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	kill "-$sig" "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

cleanup()
{
	local i
	trap - EXIT INT TERM HUP
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		stop "${PIDS[i]}"
	done
	if [ -n "$TMP" ]; then
		if [ "${SF_DEMO_KEEP:-0}" = 1 ]; then
			printf 'kept %s\n' "$TMP"
		else
			rm -rf -- "$TMP"
		fi
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start NAME CMD...: run CMD in the background (at most 120 s), output in
# $TMP/NAME.out and .err; its PID in LAST.  SIGINT is restored to its
# default so that python3 can be stopped the way a person would (^C), which
# lets it exit normally and the filters detach.
LAST=""
start()
{
	local name=$1
	shift
	( trap - INT; exec timeout -s INT -k 5 120 "$@" ) \
	    >"$TMP/$name.out" 2>"$TMP/$name.err" </dev/null &
	LAST=$!
	PIDS+=("$LAST")
}

# wait_listen PORT PID: wait until something listens on 127.0.0.1:PORT.
wait_listen()
{
	local port=$1 pid=$2 i
	for ((i = 0; i < 100; i++)); do
		if [ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
			return 0
		fi
		alive "$pid" || return 1
		sleep 0.1
	done
	return 1
}

# wait_exit PID [SECONDS]: wait for PID to end by itself; its status.
wait_exit()
{
	local pid=$1 limit=${2:-30} i
	for ((i = 0; i < limit * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	alive "$pid" && return 124
	wait "$pid"
}

free_port()
{
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# ---------------------------------------------------------------------
# 0. Dependencies and build.
# ---------------------------------------------------------------------

heading "0. Dependencies and build"
bash scripts/deps.sh || die "scripts/deps.sh failed"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sockfilter-demo.XXXXXX") || die "mktemp failed"
if [ ! -f build/CMakeCache.txt ]; then
	CC=${CC:-gcc} cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    >"$TMP/configure.log" 2>&1 ||
	    { cat "$TMP/configure.log"; die "cmake configure failed"; }
fi
cmake --build build --parallel 2 --target sockfilter datafilt xorfilt \
    >"$TMP/build.log" 2>&1 || { tail -n 40 "$TMP/build.log"; die "build failed"; }
LIB=$ROOT/build/lib/libsockfilter.so
[ -f "$LIB" ] || die "$LIB was not built"
# Debian's python3, not a version manager's shim (a shell script that
# would run under the preload too).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || die "python3 is missing"
say "Built $LIB and its modules in build/lib/sockfilter/ (datafilt.so, xorfilt.so)."

# The default configuration with one change: datafilt's verbose parameter,
# so that it prints a summary line for every socket when it detaches.
CONF=$TMP/demo.conf
sed 's/verbose = false;/verbose = true;/' conf/sockfilter.conf >"$CONF"
say "Configuration: conf/sockfilter.conf, with datafilt's parameter verbose = true:"
grep -E '^[[:space:]]*(name|attach|sockets|params)' "$CONF" | sed 's/^ */  /'

PRE=(env -u LD_PRELOAD LD_PRELOAD="$LIB" SOCKFILTER_CONF="$CONF")
ok=1

# ---------------------------------------------------------------------
# 1. datafilt: a web server and curl.
# ---------------------------------------------------------------------

heading "1. datafilt on every TCP socket: python3 -m http.server and curl"
say "Both programs are unmodified; LD_PRELOAD puts libsockfilter.so under them. \
The configuration attaches datafilt automatically to every TCP socket. \
SOCKFILTER_DEBUG=1 makes the library log its decisions to standard error."

mkdir -p "$TMP/www"
printf '<html><body><h1>Hello through sockfilter</h1></body></html>\n' \
    >"$TMP/www/index.html"
head -c 1048576 /dev/urandom >"$TMP/www/random.bin"
port=$(free_port) || die "no free port"
start server "${PRE[@]}" SOCKFILTER_DEBUG=1 "$PY" -m http.server \
    --bind 127.0.0.1 --directory "$TMP/www" "$port"
server=$LAST
wait_listen "$port" "$server" || { show server "$TMP/server.err"; die "the web server did not start"; }
printf '\n$ LD_PRELOAD=%s SOCKFILTER_CONF=demo.conf \\\n    SOCKFILTER_DEBUG=1 python3 -m http.server --bind 127.0.0.1 %s &\n' \
    "${LIB#"$ROOT"/}" "$port"

printf '\n$ LD_PRELOAD=... SOCKFILTER_DEBUG=1 curl http://127.0.0.1:%s/index.html\n' "$port"
timeout 30 "${PRE[@]}" SOCKFILTER_DEBUG=1 curl -sS --noproxy '*' \
    "http://127.0.0.1:$port/index.html" -o "$TMP/index.html" \
    2>"$TMP/curl1.err" </dev/null || { ok=0; say "curl failed"; }
show "curl stderr" "$TMP/curl1.err"
show "page" "$TMP/index.html"

printf '\n$ LD_PRELOAD=... SOCKFILTER_TRACE=trace.txt curl http://127.0.0.1:%s/random.bin\n' "$port"
say "SOCKFILTER_TRACE names a file that gets one line per interposed call on a \
filtered socket (the truss view)."
timeout 30 "${PRE[@]}" SOCKFILTER_TRACE="$TMP/trace.txt" curl -sS \
    --noproxy '*' "http://127.0.0.1:$port/random.bin" -o "$TMP/random.bin" \
    2>"$TMP/curl2.err" </dev/null || { ok=0; say "curl failed"; }
show "curl stderr" "$TMP/curl2.err"
if [ -s "$TMP/trace.txt" ]; then
	head -n 8 "$TMP/trace.txt" >"$TMP/trace.head"
	show "trace" "$TMP/trace.head"
	printf '  %s(%d lines in all)%s\n' "$D" "$(wc -l <"$TMP/trace.txt")" "$R"
fi
if cmp -s "$TMP/www/random.bin" "$TMP/random.bin"; then
	say "The 1 MiB file arrived intact: $(sha256sum <"$TMP/random.bin" | cut -c 1-16)... on both sides."
else
	ok=0
	say "The 1 MiB file differs from the original!"
fi

# ^C, as a person would stop it: python3 exits normally, the library sees
# the sockets close and datafilt detaches (and prints its summary).
stop "$server" INT
printf '\nThe server, stopped with ^C (its standard error):\n'
show server "$TMP/server.err"

# ---------------------------------------------------------------------
# 2. xorfilt: the wire and the reader.
# ---------------------------------------------------------------------

heading "2. xorfilt: what an observer sees versus what the program reads"
say "xorfilt is configured with attach = \"prog\": it attaches only to sockets \
whose program asks for it, with setsockopt(fd, SOL_FILTER, FIL_ATTACH, \
\"xorfilt\") right after socket().  It XORs every byte sent with its key (90, \
0x5a) and every byte read again, so two programs that both use it talk \
normally while the wire carries scrambled bytes.  Below, a python3 sender and \
a python3 receiver use it, and a socat relay between them, not preloaded, \
records the bytes it forwards (socat -r)."

cat >"$TMP/filters.py" <<'EOF'
import socket, struct

SOL_FILTER, FIL_ATTACH, FIL_LIST = 0xFFFC, 0x1, 0x3
FILF_PROG = 0x1
FIL_INFO = struct.Struct("ii32s")      # struct fil_info


def attach(s, name):
    s.setsockopt(SOL_FILTER, FIL_ATTACH, name.encode())


def stack(s):
    raw = s.getsockopt(SOL_FILTER, FIL_LIST, FIL_INFO.size * 16)
    out = []
    for i in range(len(raw) // FIL_INFO.size):
        flags, pos, name = FIL_INFO.unpack_from(raw, i * FIL_INFO.size)
        kind = "prog" if flags & FILF_PROG else "auto"
        out.append("%s (%s)" % (name.split(b"\0")[0].decode(), kind))
    return ", ".join(out) + "   [FIL_LIST, top first]"
EOF
cat >"$TMP/receiver.py" <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[3])
from filters import attach, stack

ls = socket.socket()
attach(ls, "xorfilt")                  # before any other operation
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(1)
c, _ = ls.accept()                     # inherits the listener's filters
print("receiver: accepted socket:", stack(c))
data = b""
while True:
    chunk = c.recv(65536)
    if not chunk:
        break
    data += chunk
open(sys.argv[2], "wb").write(data)
print("receiver: read %d bytes: %r" % (len(data), data.decode(errors="replace")))
EOF
cat >"$TMP/sender.py" <<'EOF'
import socket, sys
sys.path.insert(0, sys.argv[3])
from filters import attach, stack

s = socket.socket()
attach(s, "xorfilt")
print("sender:   socket:", stack(s))
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode())
s.close()
print("sender:   sent %d bytes" % len(sys.argv[2].encode()))
EOF

msg="Hello, socket filters! The quick brown fox jumps over the lazy dog."
rport=$(free_port) || die "no free port"
start receiver "${PRE[@]}" "$PY" "$TMP/receiver.py" "$rport" "$TMP/received.bin" "$TMP"
receiver=$LAST
if ! wait_listen "$rport" "$receiver"; then
	show receiver "$TMP/receiver.err"
	die "the receiver did not start (is FIL_ATTACH working?)"
fi
wport=$(free_port) || die "no free port"
start relay env -u LD_PRELOAD socat -r "$TMP/wire.bin" \
    "TCP-LISTEN:$wport,bind=127.0.0.1,reuseaddr" "TCP:127.0.0.1:$rport"
relay=$LAST
wait_listen "$wport" "$relay" || { show relay "$TMP/relay.err"; die "the socat relay did not start"; }

printf '\n$ LD_PRELOAD=... python3 receiver.py %s &          # xorfilt via FIL_ATTACH\n' "$rport"
printf '$ socat -r wire.bin TCP-LISTEN:%s TCP:127.0.0.1:%s &  # no preload: the observer\n' "$wport" "$rport"
printf '$ LD_PRELOAD=... python3 sender.py %s "%s"\n' "$wport" "$msg"
timeout 30 "${PRE[@]}" "$PY" "$TMP/sender.py" "$wport" "$msg" "$TMP" \
    >"$TMP/sender.out" 2>"$TMP/sender.err" </dev/null || ok=0
wait_exit "$receiver" 30 || ok=0
wait_exit "$relay" 10 || stop "$relay"
show sender "$TMP/sender.out"
show receiver "$TMP/receiver.out"
[ -s "$TMP/sender.err" ] && show "sender stderr" "$TMP/sender.err"
[ -s "$TMP/receiver.err" ] && show "receiver stderr" "$TMP/receiver.err"

printf '\nWhat the socat relay forwarded (the wire, hexdump -C):\n'
if [ -s "$TMP/wire.bin" ]; then
	hexdump -C "$TMP/wire.bin" | head -n 8 | sed 's/^/  /'
else
	ok=0
	printf '  (nothing)\n'
fi
printf '\nWhat the receiver read (hexdump -C):\n'
if [ -s "$TMP/received.bin" ]; then
	hexdump -C "$TMP/received.bin" | head -n 8 | sed 's/^/  /'
else
	ok=0
	printf '  (nothing)\n'
fi
if [ -s "$TMP/wire.bin" ] && [ "$(cat "$TMP/received.bin" 2>/dev/null)" = "$msg" ] &&
    ! cmp -s "$TMP/wire.bin" "$TMP/received.bin"; then
	say "Same length, different bytes: 'H' (0x48) went over the wire as 0x12 \
(0x48 XOR 0x5a), and the receiver's xorfilt turned it back."
else
	ok=0
	say "Unexpected: the receiver did not read the message, or the wire carried it in clear."
fi

# ---------------------------------------------------------------------
# 3. Summaries.
# ---------------------------------------------------------------------

heading "3. What the filters did"
say "datafilt (verbose = true) prints one line per socket when it detaches: \
bytes and calls it saw in each direction, control operations, events."
: >"$TMP/summaries"
for f in server curl1 curl2 receiver sender; do
	grep -E '^datafilt:' "$TMP/$f.err" 2>/dev/null |
	    sed "s/^/$(printf '%-8s' "$f")| /" >>"$TMP/summaries"
done
if [ -s "$TMP/summaries" ]; then
	sed 's/^/  /' "$TMP/summaries" | cut -c 1-160
else
	printf '  (no summary lines)\n'
fi
say "The sender's and receiver's sockets carry xorfilt above datafilt: \
datafilt, nearer the protocol, counted the scrambled bytes."

heading "Done"
if [ "$ok" = 1 ]; then
	say "Every step worked.  Every process the demo started has been stopped."
	status=0
else
	say "Some step did not work as described (see above).  Every process the \
demo started has been stopped."
	status=1
fi
say "Next: README.md (configuration, writing a filter), scripts/test.sh (the tests)."
exit "$status"
