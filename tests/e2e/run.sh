#!/usr/bin/env bash
#
# run.sh: the end-to-end tests.  Real programs (curl, python3, socat and
# the small C programs of this directory) talk on loopback under
# libsockfilter.so; each case compares with the same run without the
# preload.  One PASS/FAIL/SKIP line per case, then "N passed, N failed,
# N skipped"; the status is 1 if a case failed, 77 if every case skipped,
# 0 otherwise.
#
# usage: run.sh BUILD_DIR [options] [CASE...]
#   --lib FILE       libsockfilter.so (default BUILD_DIR/lib/libsockfilter.so)
#   --moddir DIR     shipped modules (default BUILD_DIR/lib/sockfilter)
#   --testmods DIR   test-only modules (default BUILD_DIR/tests/filters)
#   --bindir DIR     xfer and filopt (default BUILD_DIR/tests/e2e)
#   --sbindir DIR    soconfigd, soconfig, sockfilter (default BUILD_DIR/bin)
#   --no-preload     run the cases without the library: checks the cases'
#                    own plumbing; what only a filter can do is not checked
#   --keep           keep each case's temporary directory
#   --list           print the case names and exit
# A CASE is a file name under cases/ without .sh; none means all of them.

# shellcheck source-path=SCRIPTDIR
set -u
set -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 2

usage()
{
	sed -n '/^# usage:/,/^# A CASE/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
	exit 2
}

build=""
lib=""
moddir=""
testmods=""
bindir=""
sbindir=""
preload=1
keep=0
list=0
cases=()
while [ $# -gt 0 ]; do
	case $1 in
	--lib) [ $# -ge 2 ] || usage; lib=$2; shift 2 ;;
	--moddir) [ $# -ge 2 ] || usage; moddir=$2; shift 2 ;;
	--testmods) [ $# -ge 2 ] || usage; testmods=$2; shift 2 ;;
	--bindir) [ $# -ge 2 ] || usage; bindir=$2; shift 2 ;;
	--sbindir) [ $# -ge 2 ] || usage; sbindir=$2; shift 2 ;;
	--no-preload) preload=0; shift ;;
	--keep) keep=1; shift ;;
	--list) list=1; shift ;;
	-h | --help) usage ;;
	-*) printf 'run.sh: unknown option %s\n' "$1" >&2; usage ;;
	*)
		if [ -z "$build" ]; then
			build=$1
		else
			cases+=("$1")
		fi
		shift
		;;
	esac
done

if [ "$list" = 1 ]; then
	for f in "$here"/cases/*.sh; do
		f=${f##*/}
		printf '%s\n' "${f%.sh}"
	done
	exit 0
fi

[ -n "$build" ] || usage
[ -d "$build" ] || { printf 'run.sh: %s: no such directory\n' "$build" >&2; exit 2; }
build=$(cd "$build" && pwd) || exit 2
: "${lib:=$build/lib/libsockfilter.so}"
: "${moddir:=$build/lib/sockfilter}"
: "${testmods:=$build/tests/filters}"
: "${bindir:=$build/tests/e2e}"
: "${sbindir:=$build/bin}"

if [ "${#cases[@]}" -eq 0 ]; then
	for f in "$here"/cases/*.sh; do
		f=${f##*/}
		cases+=("${f%.sh}")
	done
fi

if [ "$preload" = 1 ]; then
	if [ ! -f "$lib" ]; then
		printf 'note: %s does not exist: every case will fail\n' "$lib"
	elif command -v nm >/dev/null 2>&1 &&
	    ! nm -D --defined-only "$lib" 2>/dev/null | grep -qw sof_register; then
		printf 'note: %s does not export sof_register (a stub?)\n' "$lib"
	fi
else
	printf 'note: --no-preload: the cases run without the library\n'
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sf-e2e-run.XXXXXX") || exit 2
trap 'rm -rf -- "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

passed=0
failed=0
skipped=0
for cname in "${cases[@]}"; do
	file=$here/cases/$cname.sh
	logf=$work/$cname.log
	reason=$work/$cname.reason
	: >"$reason"
	if [ ! -f "$file" ]; then
		printf 'FAIL %s: no such case (%s)\n' "$cname" "$file"
		failed=$((failed + 1))
		continue
	fi
	start=$(date +%s.%N)
	(
		export E2E_CASE=$cname E2E_SRC=$here E2E_BUILD=$build \
		    E2E_LIB=$lib E2E_MODDIR=$moddir E2E_TESTMODS=$testmods \
		    E2E_BINDIR=$bindir E2E_SBINDIR=$sbindir E2E_PRELOAD=$preload \
		    E2E_REASON=$reason E2E_KEEP=$keep
		unset LD_PRELOAD SOCKFILTER_CONF SOCKFILTER_DEBUG \
		    SOCKFILTER_TRACE SOCKFILTER_SOCKET SOCKFILTER_ATTACH
		# shellcheck source=lib.sh
		. "$here/lib.sh"
		NEEDS=()
		# shellcheck disable=SC1090
		. "$file"
		e2e_setup
		need "${NEEDS[@]}"
		run_case
	) >"$logf" 2>&1 </dev/null
	rc=$?
	secs=$(awk -v a="$start" -v b="$(date +%s.%N)" \
	    'BEGIN { printf "%.1f", b - a }')
	why=$(head -n 1 "$reason")
	case $rc in
	0)
		printf 'PASS %s (%ss)\n' "$cname" "$secs"
		passed=$((passed + 1))
		;;
	77)
		printf 'SKIP %s: %s\n' "$cname" "${why:-skipped}"
		skipped=$((skipped + 1))
		;;
	*)
		printf 'FAIL %s: %s (%ss)\n' "$cname" \
		    "${why:-exit status $rc}" "$secs"
		sed 's/^/    /' "$logf"
		failed=$((failed + 1))
		;;
	esac
done

printf '%d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
if [ "$failed" -gt 0 ]; then
	exit 1
fi
if [ "$passed" -eq 0 ] && [ "$skipped" -gt 0 ]; then
	exit 77
fi
exit 0
