#!/bin/bash
# bench/servers.sh BUILD_DIR: real servers with and without the preload,
# side by side in one run, three ways (as bench/run.sh):
#   (a) no preload
#   (b) LD_PRELOAD=libsockfilter.so, a configuration with no filters
#   (c) LD_PRELOAD=libsockfilter.so, datafilt automatic on inet:stream:tcp
# Server and load generator run the same way.  Workloads:
#   nginx-1k   nginx (2 workers, epoll, sendfile) + wrk -t2 -c8, 1 KiB file
#   nginx-1m   the same, 1 MiB file
#   redis      redis-server + redis-benchmark -t set,get -c 20
#   redis-P16  the same, pipelined 16 deep
#   bulk       bench/sendrecv -m bulk: one TCP connection, 16 KiB sends
# Each round runs every workload once each way, the ways' order rotated
# from round to round so that drift in the machine's load hits all three
# alike.  Reported: medians of the throughput (requests/s, ops/s, MB/s),
# its ratios b/a and c/a (targets: >= 0.99 and >= 0.95), and the server's
# CPU time per request (utime+stime of the server's processes from
# /proc/PID/stat, before and after the load, over the requests served;
# for bulk, the process's CPU time per MB), which swings less than the
# wall clock.  Then callgrind instruction counts of the server process
# (nginx in one process, redis-server) per request, from two runs of a
# fixed number of requests (N1, N2): (Ir(N2) - Ir(N1)) / (N2 - N1), which
# do not swing at all.
#
# Environment: ROUNDS (3), DUR (wrk seconds, 2), REDIS_N (50000),
# BULK_TOTAL (512M), WORKLOADS ("nginx-1k nginx-1m redis redis-P16
# bulk"), CALLGRIND (1; 0 skips it), CG_N1/CG_N2 (requests, 200/1200;
# a tenth of that for the 1 MiB file), KEEP=DIR keeps the callgrind
# outputs.  Runs for about 3 minutes with the defaults.
#
# A report, not a test: it exits 0 whatever the figures, 2 if a run
# failed or did not measure what it claims (library and datafilt mapped
# in the server exactly when the way says so).
set -euo pipefail

[ $# -eq 1 ] || {
	echo "usage: $0 BUILD_DIR" >&2
	exit 2
}
# shellcheck disable=SC2034 # read by common.sh
BUILD_DIR=$1
ROUNDS=${ROUNDS:-3}
DUR=${DUR:-2}
REDIS_N=${REDIS_N:-50000}
BULK_TOTAL=${BULK_TOTAL:-512M}
WORKLOADS=${WORKLOADS:-nginx-1k nginx-1m redis redis-P16 bulk}
CALLGRIND=${CALLGRIND:-1}
CG_N1=${CG_N1:-200}
CG_N2=${CG_N2:-1200}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sfservers.XXXXXX")
SERVER_PID=""
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill -TERM "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
# shellcheck source=bench/common.sh disable=SC1091
. "$(dirname "$0")/common.sh"
bench_setup
TCK=$(getconf CLK_TCK)

for p in nginx wrk redis-server redis-benchmark curl python3; do
	command -v "$p" >/dev/null ||
	    bench_die "$p not found (scripts/deps.sh installs it)"
done
if [ "$CALLGRIND" = 1 ] && ! command -v valgrind >/dev/null; then
	echo "valgrind not found: no instruction counts" >&2
	CALLGRIND=0
fi

mkdir -p "$TMP/docs"
head -c 1024 /dev/urandom >"$TMP/docs/1k.bin"
head -c 1048576 /dev/urandom >"$TMP/docs/1m.bin"

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_listen PORT PID: until PORT accepts connections (bash's /dev/tcp
# is a plain connect: nothing is sent).
wait_listen() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$2" 2>/dev/null || bench_die "the server exited at start"
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.05
	done
	bench_die "nothing listens on port $1"
}

# nginx_conf FILE PORT MASTER(on|off)
nginx_conf() {
	local user=""
	[ "$(id -u)" = 0 ] && user="user $(id -un) $(id -gn);"
	cat >"$1" <<CONF
$user
daemon off;
master_process $3;
worker_processes 2;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 512; use epoll; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_body_temp_path $TMP/ngx-body;
    proxy_temp_path $TMP/ngx-proxy;
    fastcgi_temp_path $TMP/ngx-fastcgi;
    uwsgi_temp_path $TMP/ngx-uwsgi;
    scgi_temp_path $TMP/ngx-scgi;
    types { application/octet-stream bin; }
    server { listen 127.0.0.1:$2; root $TMP/docs; }
}
CONF
}

# cpu_ticks PID...: utime+stime of the processes (every thread).
cpu_ticks() {
	local p t=0 s
	for p in "$@"; do
		s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		s=${s##*) }
		# Fields after the command: state is 3, utime 14, stime 15.
		t=$((t + $(awk '{ print $12 + $13 }' <<<"$s")))
	done
	echo "$t"
}

# server_pids: the server and its children (nginx's workers).
server_pids() {
	echo "$SERVER_PID" $(pgrep -P "$SERVER_PID" 2>/dev/null || true)
}

# check_maps WAY: the server maps the library (and datafilt) exactly
# when WAY says so.
check_maps() {
	local way=$1 p lib=0 df=0
	for p in $(server_pids); do
		grep -q libsockfilter.so "/proc/$p/maps" 2>/dev/null && lib=1
		grep -q datafilt.so "/proc/$p/maps" 2>/dev/null && df=1
	done
	case $way:$lib:$df in
	a:0:0 | b:1:0 | c:1:1) ;;
	*) bench_die "($way) server maps libsockfilter=$lib datafilt=$df" ;;
	esac
}

# start_server WAY CMD...: the server under WAY's environment.
start_server() {
	local way=$1
	shift
	bench_env "$way"
	env "${ENVARGS[@]}" "$@" >"$TMP/server.out" 2>"$TMP/server.err" &
	SERVER_PID=$!
}

stop_server() {
	kill -TERM "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
}

# One run of a workload one way: prints "THROUGHPUT CPU_PER_UNIT".
run_nginx() {
	local way=$1 file=$2 port t0 t1 out reqs rps
	port=$(free_port)
	nginx_conf "$TMP/nginx.conf" "$port" on
	start_server "$way" nginx -p "$TMP" -c "$TMP/nginx.conf"
	wait_listen "$port" "$SERVER_PID"
	sleep 0.2 # the workers
	check_maps "$way"
	t0=$(cpu_ticks $(server_pids))
	bench_env "$way"
	out=$(env "${ENVARGS[@]}" wrk -t2 -c8 -d"${DUR}s" \
	    "http://127.0.0.1:$port/$file" 2>&1) ||
	    bench_die "($way) wrk failed: $out"
	t1=$(cpu_ticks $(server_pids))
	stop_server
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		bench_die "($way) wrk saw errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out")"
	fi
	reqs=$(sed -n 's/^ *\([0-9][0-9]*\) requests in .*/\1/p' <<<"$out")
	rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
	awk -v r="$rps" -v n="$reqs" -v d=$((t1 - t0)) -v k="$TCK" \
	    'BEGIN { printf "%.1f %.2f\n", r, 1e6 * d / k / n }'
}

run_redis() {
	local way=$1 pipe=$2 port t0 t1 out ops
	port=$(free_port)
	start_server "$way" redis-server --port "$port" --bind 127.0.0.1 \
	    --save '' --appendonly no --daemonize no --logfile ''
	wait_listen "$port" "$SERVER_PID"
	check_maps "$way"
	t0=$(cpu_ticks "$SERVER_PID")
	bench_env "$way"
	out=$(env "${ENVARGS[@]}" redis-benchmark -h 127.0.0.1 -p "$port" \
	    -t set,get -n "$REDIS_N" -c 20 -P "$pipe" --csv 2>&1) ||
	    bench_die "($way) redis-benchmark failed: $out"
	t1=$(cpu_ticks "$SERVER_PID")
	stop_server
	grep -qi error <<<"$out" && bench_die "($way) redis-benchmark: $out"
	# Mean of the SET and GET rates; 2 * REDIS_N requests served.
	ops=$(awk -F'"' '$2 == "SET" || $2 == "GET" { s += $4; n++ }
	    END { if (n == 2) printf "%.1f", s / n }' <<<"$out")
	[ -n "$ops" ] || bench_die "($way) no SET/GET figures: $out"
	awk -v r="$ops" -v n=$((2 * REDIS_N)) -v d=$((t1 - t0)) -v k="$TCK" \
	    'BEGIN { printf "%.1f %.2f\n", r, 1e6 * d / k / n }'
}

run_bulk() {
	local way=$1 out mbs cpu TIMEFORMAT='%U %S'
	bench_env "$way"
	# bash's time keyword reports the child's user and system seconds.
	cpu=$( { time env "${ENVARGS[@]}" "$SENDRECV" -m bulk -s 16K \
	    -t "$BULK_TOTAL" >"$TMP/bulk.out" 2>"$TMP/bulk.err"; } 2>&1) ||
	    bench_die "($way) sendrecv failed: $(cat "$TMP/bulk.err")"
	bench_verify "$way" "$TMP/bulk.err"
	out=$(cat "$TMP/bulk.out")
	mbs=$(tr ' ' '\n' <<<"$out" | sed -n 's/^MB_per_s=//p')
	# CPU microseconds per MB moved (both ends are in this process).
	awk -v r="$mbs" -v c="$cpu" -v tot="$BULK_TOTAL" 'BEGIN {
		split(c, t, " ")
		n = tot + 0
		u = substr(tot, length(tot))
		if (u == "K") n *= 1024
		else if (u == "M") n *= 1048576
		else if (u == "G") n *= 1073741824
		printf "%.1f %.2f\n", r, 1e6 * (t[1] + t[2]) / (n / 1e6) }'
}

run_one() {
	case $1 in
	nginx-1k) run_nginx "$2" 1k.bin ;;
	nginx-1m) run_nginx "$2" 1m.bin ;;
	redis) run_redis "$2" 1 ;;
	redis-P16) run_redis "$2" 16 ;;
	bulk) run_bulk "$2" ;;
	*) bench_die "unknown workload $1" ;;
	esac
}

median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "nan"; exit }
		if (NR % 2) print v[(NR + 1) / 2]
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "library:  $LIBSF"
echo "machine:  $(nproc) CPUs, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs:     $ROUNDS rounds, the three ways interleaved; wrk -t2 -c8 -d${DUR}s," \
    "redis-benchmark -n $REDIS_N -c 20, bulk $BULK_TOTAL"
echo

ways=(a b c)
for ((r = 0; r < ROUNDS; r++)); do
	for w in $WORKLOADS; do
		for ((i = 0; i < 3; i++)); do
			way=${ways[(r + i) % 3]}
			res=$(run_one "$w" "$way")
			echo "$res" >>"$TMP/$w.$way"
			printf 'round %d  %-10s (%s)  %12s /s  cpu %10s us\n' \
			    $((r + 1)) "$w" "$way" ${res} >&2
		done
	done
done

echo "Medians of $ROUNDS rounds.  Throughput ratios (higher is better;"
echo "targets b/a >= 0.99, c/a >= 0.95) and the server's CPU time per"
echo "request (per MB for bulk; lower is better) with its ratios."
echo
printf '%-10s %-14s %12s %12s %12s %7s %7s %7s\n' workload metric \
    "(a) none" "(b) preload" "(c) datafilt" b/a c/a spread
for w in $WORKLOADS; do
	declare -A thr cpu
	spread=0
	for way in a b c; do
		thr[$way]=$(awk '{ print $1 }' "$TMP/$w.$way" | median)
		cpu[$way]=$(awk '{ print $2 }' "$TMP/$w.$way" | median)
		s=$(awk '{ print $1 }' "$TMP/$w.$way" | sort -g | awk -v m="${thr[$way]}" \
		    'NR == 1 { lo = $1 } { hi = $1 } END {
			printf "%.0f", (m > 0 ? 100 * (hi - lo) / m : 0) }')
		[ "$s" -gt "$spread" ] && spread=$s
	done
	case $w in
	redis*) unit="ops/s" ;;
	bulk) unit="MB/s" ;;
	*) unit="requests/s" ;;
	esac
	cunit="cpu us/req"
	[ "$w" = bulk ] && cunit="cpu us/MB"
	printf '%-10s %-14s %12.0f %12.0f %12.0f %7.3f %7.3f %6s%%\n' "$w" \
	    "$unit" "${thr[a]}" "${thr[b]}" "${thr[c]}" \
	    "$(awk -v x="${thr[b]}" -v y="${thr[a]}" 'BEGIN { print x / y }')" \
	    "$(awk -v x="${thr[c]}" -v y="${thr[a]}" 'BEGIN { print x / y }')" \
	    "$spread"
	printf '%-10s %-14s %12.2f %12.2f %12.2f %7.3f %7.3f\n' "" "$cunit" \
	    "${cpu[a]}" "${cpu[b]}" "${cpu[c]}" \
	    "$(awk -v x="${cpu[b]}" -v y="${cpu[a]}" 'BEGIN { print (y > 0 ? x / y : 0) }')" \
	    "$(awk -v x="${cpu[c]}" -v y="${cpu[a]}" 'BEGIN { print (y > 0 ? x / y : 0) }')"
	unset thr cpu
done
echo
echo "spread: the largest (max-min)/median of one way's throughput; ratios"
echo "closer to 1 than that are within this machine's noise.  CPU time is"
echo "counted in ticks of 1/$TCK s over the whole load."

[ "$CALLGRIND" = 1 ] || exit 0

# ---------------------------------------------------------------------
# callgrind: instructions of the server process per request.
# ---------------------------------------------------------------------

# cg_total FILE: the total Ir of a callgrind output.
cg_total() {
	local f
	f=$(sed -n 's/^totals: *\([0-9][0-9]*\).*/\1/p' "$1")
	[ -n "$f" ] || f=$(sed -n 's/^summary: *\([0-9][0-9]*\).*/\1/p' "$1")
	echo "$f"
}

# cg_server WAY KIND N: Ir of the server (nginx with master_process off,
# or redis-server) that served N requests; the load itself runs bare.
cg_server() {
	local way=$1 kind=$2 n=$3 port dir=$TMP/cg.$1.$2.$3 f urls=() i
	mkdir -p "$dir"
	port=$(free_port)
	bench_env "$way"
	case $kind in
	nginx-*)
		nginx_conf "$dir/nginx.conf" "$port" off
		valgrind --tool=callgrind --trace-children=yes \
		    --callgrind-out-file="$dir/cg.%p" --log-file="$dir/vg.%p" \
		    env "${ENVARGS[@]}" nginx -p "$TMP" -c "$dir/nginx.conf" \
		    >"$dir/out" 2>&1 &
		;;
	redis)
		valgrind --tool=callgrind --trace-children=yes \
		    --callgrind-out-file="$dir/cg.%p" --log-file="$dir/vg.%p" \
		    env "${ENVARGS[@]}" redis-server --port "$port" \
		    --bind 127.0.0.1 --save '' --appendonly no \
		    --daemonize no --logfile '' >"$dir/out" 2>&1 &
		;;
	esac
	SERVER_PID=$!
	wait_listen "$port" "$SERVER_PID"
	check_maps "$way"
	case $kind in
	nginx-*)
		# One connection, N requests (curl reuses it).
		f=1k.bin
		[ "$kind" = nginx-1m ] && f=1m.bin
		for ((i = 0; i < n; i++)); do
			urls+=(-o /dev/null "http://127.0.0.1:$port/$f")
		done
		env -u LD_PRELOAD curl -s --noproxy '*' "${urls[@]}" ||
		    bench_die "($way) curl failed"
		;;
	redis)
		env -u LD_PRELOAD redis-benchmark -h 127.0.0.1 -p "$port" \
		    -t get -n "$n" -c 1 -q >/dev/null ||
		    bench_die "($way) redis-benchmark failed"
		;;
	esac
	# TERM: both exit through exit(), and callgrind writes its totals.
	# Under valgrind a TERM is now and then lost (nginx stays in
	# epoll_wait with nothing pending, with or without the preload):
	# repeat it.
	for ((i = 0; i < 30; i++)); do
		kill -TERM "$SERVER_PID" 2>/dev/null || break
		sleep 1
		kill -0 "$SERVER_PID" 2>/dev/null || break
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=""
	f=$(grep -lE "^cmd: .*(nginx|redis-server)" "$dir"/cg.* | head -n 1)
	[ -n "$f" ] || bench_die "($way) no callgrind output of the server in $dir"
	if [ -n "${KEEP:-}" ]; then
		mkdir -p "$KEEP"
		cp "$f" "$KEEP/callgrind.out.$kind.$way.$n"
	fi
	cg_total "$f"
}

echo
echo "callgrind: instructions of the server process per request,"
echo "(Ir(N2) - Ir(N1)) / (N2 - N1); the client runs bare.  added/req is"
echo "the difference from (a)."
echo
printf '%-10s %6s %6s %14s %14s %14s %7s %7s %10s %10s\n' workload N1 N2 \
    "(a) Ir/req" "(b) Ir/req" "(c) Ir/req" b/a c/a "b added" "c added"
for kind in nginx-1k nginx-1m redis; do
	n1=$CG_N1
	n2=$CG_N2
	if [ "$kind" = nginx-1m ]; then
		n1=$((CG_N1 / 10))
		n2=$((CG_N2 / 10))
	fi
	declare -A per
	for way in a b c; do
		i1=$(cg_server "$way" "$kind" "$n1")
		i2=$(cg_server "$way" "$kind" "$n2")
		per[$way]=$(awk -v a="$i1" -v b="$i2" -v n1="$n1" -v n2="$n2" \
		    'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')
	done
	printf '%-10s %6s %6s %14s %14s %14s %7.3f %7.3f %10s %10s\n' "$kind" \
	    "$n1" "$n2" "${per[a]}" "${per[b]}" "${per[c]}" \
	    "$(awk -v x="${per[b]}" -v y="${per[a]}" 'BEGIN { print x / y }')" \
	    "$(awk -v x="${per[c]}" -v y="${per[a]}" 'BEGIN { print x / y }')" \
	    $((per[b] - per[a])) $((per[c] - per[a]))
	unset per
done
exit 0
