# shellcheck shell=bash
# Shared by bench/run.sh and bench/callgrind.sh (sourced, not run).
#
# Sets up the three ways a benchmark program is run:
#   a  no preload
#   b  LD_PRELOAD=libsockfilter.so, a configuration with no filters
#   c  LD_PRELOAD=libsockfilter.so, datafilt automatic on inet:stream:tcp
# and checks, from what sendrecv prints on standard error, that each run
# measured what it claims (library loaded or not, filters on the sockets).
#
# Needs: BUILD_DIR set, TMP a private temporary directory.

SENDRECV=$BUILD_DIR/bench/sendrecv
LIBSF=$BUILD_DIR/lib/libsockfilter.so
MODDIR=$BUILD_DIR/lib/sockfilter

bench_die() {
	echo "${0##*/}: $*" >&2
	exit 2
}

bench_setup() {
	[ -x "$SENDRECV" ] || bench_die "$SENDRECV not built"
	[ -f "$LIBSF" ] || bench_die "$LIBSF not built"
	[ -f "$MODDIR/datafilt.so" ] || bench_die "$MODDIR/datafilt.so not built"
	SENDRECV=$(realpath "$SENDRECV")
	LIBSF=$(realpath "$LIBSF")
	MODDIR=$(realpath "$MODDIR")
	if ! nm -D --defined-only "$LIBSF" 2>/dev/null | grep -qw sof_register; then
		if [ "${SF_BENCH_NO_VERIFY:-0}" = 1 ]; then
			echo "${0##*/}: warning: $LIBSF does not export" \
			    "sof_register (a stub?); measuring anyway" >&2
		else
			bench_die "$LIBSF does not export sof_register" \
			    "(a stub?); SF_BENCH_NO_VERIFY=1 measures anyway"
		fi
	fi
	cat >"$TMP/none.conf" <<EOF
# bench (b): the preload with nothing to attach.
module_path = [ "$MODDIR" ];
filters = ( );
EOF
	cat >"$TMP/datafilt.conf" <<EOF
# bench (c): the identity filter on every TCP/IPv4 socket.
module_path = [ "$MODDIR" ];
filters = (
  {
    name    = "datafilt";
    module  = "datafilt";
    attach  = "auto";
    sockets = [ "inet:stream:tcp" ];
  }
);
EOF
}

# bench_env WAY: set the array ENVARGS to the env(1) arguments of a run
# of WAY.  No daemon (a socket path that does not exist), no debug or
# trace output.
bench_env() {
	ENVARGS=(-u SOCKFILTER_DEBUG -u SOCKFILTER_TRACE)
	case $1 in
	a) ENVARGS+=(-u LD_PRELOAD -u SOCKFILTER_CONF) ;;
	b) ENVARGS+=("LD_PRELOAD=$LIBSF" "SOCKFILTER_CONF=$TMP/none.conf") ;;
	c) ENVARGS+=("LD_PRELOAD=$LIBSF" "SOCKFILTER_CONF=$TMP/datafilt.conf") ;;
	*) bench_die "bad way $1" ;;
	esac
	ENVARGS+=("SOCKFILTER_SOCKET=$TMP/no-daemon.sock")
}

bench_way_name() {
	case $1 in
	a) echo "no preload" ;;
	b) echo "preload, no filter" ;;
	c) echo "preload + datafilt" ;;
	esac
}

# bench_verify WAY STDERR-FILE: did the run measure what WAY means?
bench_verify() {
	local way=$1 line want ok=1
	line=$(grep -m1 '^sendrecv: preload=' "$2") ||
	    bench_die "($way) no setup line from sendrecv: $(cat "$2")"
	case $way in
	a) want="preload=no client=n/a server=n/a" ;;
	b) want="preload=yes client=- server=-" ;;
	c) want="preload=yes client=datafilt server=datafilt" ;;
	esac
	case $way:$line in
	a:"sendrecv: $want") ;;
	# An unfiltered socket may answer FIL_LIST with nothing or not at all.
	b:"sendrecv: preload=yes client="[-n]*" server="[-n]*)
		case $line in *datafilt*) ok=0 ;; esac ;;
	c:"sendrecv: $want") ;;
	*) ok=0 ;;
	esac
	[ $ok = 1 ] && return 0
	if [ "${SF_BENCH_NO_VERIFY:-0}" = 1 ]; then
		echo "${0##*/}: warning: ($way) expected '$want', got" \
		    "'${line#sendrecv: }'" >&2
		return 0
	fi
	bench_die "($way) expected '$want', got '${line#sendrecv: }'"
}
