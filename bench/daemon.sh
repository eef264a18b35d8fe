#!/usr/bin/env bash
#
# daemon.sh: the figures of soconfigd (not a test: prints a report).
#
#   1. per-socket cost of socket()+close() in a configured process
#      (datafilt automatic on TCP): (a) no preload, (b) configuration read
#      from the file, no daemon, (c) the same configuration published by a
#      running soconfigd.  (c) - (b) is what the daemon adds per socket.
#   2. the daemon's CPU at 1,000 connections a second: sockcost rate
#      under the preload with datafilt and tcplog on every TCP socket
#      (two tcplog records per connection go to the daemon's stream);
#      utime+stime of soconfigd from /proc over the run.
#
# usage: bench/daemon.sh BUILD_DIR [SECONDS]   (default 10)

set -u
build=$(cd "${1:?usage: bench/daemon.sh BUILD_DIR [SECONDS]}" && pwd) || exit 2
secs=${2:-10}
cost=$build/bench/sockcost
lib=$build/lib/libsockfilter.so
moddir=$build/lib/sockfilter
for f in "$cost" "$lib" "$build/bin/soconfigd" "$moddir/tcplog.so"; do
	[ -e "$f" ] || { echo "daemon.sh: $f is not built" >&2; exit 2; }
done
tmp=$(mktemp -d) || exit 2
dpid=""
trap '[ -n "$dpid" ] && kill "$dpid" 2>/dev/null; rm -rf "$tmp"' EXIT
sock=$tmp/run/soconfigd.sock
cat >"$tmp/sf.conf" <<CONF
module_path = [ "$moddir" ];
filters = (
  { name = "datafilt"; module = "datafilt"; attach = "auto";
    sockets = [ "inet:stream:tcp" ]; }
);
CONF
base=(env -u SOCKFILTER_DEBUG -u SOCKFILTER_TRACE -u SOCKFILTER_ATTACH)
n=200000

a=$("${base[@]}" "$cost" create $n | awk '{ print $2 }')
b=$("${base[@]}" SOCKFILTER_SOCKET="$sock" SOCKFILTER_CONF="$tmp/sf.conf" \
    LD_PRELOAD="$lib" "$cost" create $n | awk '{ print $2 }')
"$build/bin/soconfigd" -c "$tmp/sf.conf" -s "$sock" 2>"$tmp/d.err" &
dpid=$!
for ((i = 0; i < 50; i++)); do
	SOCKFILTER_SOCKET=$sock "$build/bin/soconfig" -V >/dev/null 2>&1 && break
	sleep 0.1
done
c=$("${base[@]}" SOCKFILTER_SOCKET="$sock" LD_PRELOAD="$lib" \
    "$cost" create $n | awk '{ print $2 }')
printf '1. socket()+close(), best of 5 x %d, datafilt attached (b, c):\n' "$n"
printf '   (a) no preload                      %6s ns\n' "$a"
printf '   (b) preload, file, no daemon        %6s ns\n' "$b"
printf '   (c) preload, soconfigd running      %6s ns\n' "$c"

SOCKFILTER_SOCKET=$sock "$build/bin/soconfig" -F tcplog tcplog auto top \
    inet:stream:tcp -o path="$tmp/tcplog.jsonl" >/dev/null ||
    { echo "daemon.sh: soconfig -F tcplog failed" >&2; exit 2; }
ticks() { awk '{ print $14 + $15 }' "/proc/$dpid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks)
r=$("${base[@]}" SOCKFILTER_SOCKET="$sock" LD_PRELOAD="$lib" \
    "$cost" rate 1000 "$secs")
t1=$(ticks)
recs=$(wc -l <"$tmp/tcplog.jsonl")
printf '2. 1,000 connections/s for %s s under the preload (datafilt, tcplog):\n' "$secs"
printf '   %s; %s tcplog records\n' "$r" "$recs"
awk -v d=$((t1 - t0)) -v hz="$hz" -v s="$secs" 'BEGIN {
	printf "   soconfigd CPU: %.2f s in %s s = %.1f %% of one core\n", d / hz, s, 100 * d / hz / s }'
