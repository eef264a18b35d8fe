#!/usr/bin/env bash
#
# test.sh: everything CI checks, in one command (.ci/run execs it).
#
#   deps    scripts/deps.sh: install what is missing (quiet when nothing is)
#   gcc     build/        gcc, RelWithDebInfo: the whole ctest suite
#   clang   build-clang/  clang with -Werror (warning-free), unit tests
#   fuzz    build-clang/  each libFuzzer harness of tests/fuzz (the accept
#                         filters' parsers, mblk chains, soconfigd's
#                         request parser and configuration editor) for a
#                         short bounded run from its seed corpus (skipped
#                         when clang has no libFuzzer or build-clang/ is
#                         not configured)
#   asan    build-asan/   -DSANITIZE=address,undefined: unit tests with leak
#                         detection, then every other test
#   tsan    build-tsan/   -DSANITIZE=thread: the tests labelled "threaded"
#                         (skipped when there are none)
#   static  src/core includes no interpose header; sofop_* is called only
#           in src/core/stack.c; the exported symbols of libsockfilter.so
#           match scripts/exported-symbols.txt; bash -n on the scripts;
#           clang-format --dry-run (a warning, never a failure)
#
# Every step runs even when an earlier one failed; a per-step summary
# closes the output, and the status is 1 if any step failed.
#
# usage: scripts/test.sh [--only STEP[,STEP...]] [--skip STEP[,STEP...]]
#                        [--update-symbols] [--help]
#   --only/--skip     run only / leave out these steps (names above)
#   --update-symbols  rewrite scripts/exported-symbols.txt from
#                     build/lib/libsockfilter.so (after building it), exit
#
# Environment:
#   SF_JOBS           parallel build and test jobs (default 2, the machine)
#   SF_TEST_BUDGET    seconds for the whole run (default 1140: CI's 20
#                     minutes less a margin); a step that would start
#                     later is reported as out of time, and a running
#                     command is stopped when the budget is spent
#   SF_CTEST_TIMEOUT  per-test hang guard for tests that set no TIMEOUT
#                     (default 300)
#   SF_FUZZ_RUNS, SF_FUZZ_SECS   the fuzz step's bound per harness: runs
#                     (default 200000) and seconds (default 20), whichever
#                     comes first
#
# Sanitizer passes: before running ctest of build-asan/ or build-tsan/ this
# script sources <build>/sanitizer.env (written by cmake/Sanitizers.cmake),
# so every test and every program it starts inherits
#   SF_SANITIZE         "address,undefined", "thread", or "" (plain build)
#   SF_PRELOAD_PREFIX   the sanitizer runtime that must come before
#                       libsockfilter.so in LD_PRELOAD ("" when none):
#                       LD_PRELOAD="${SF_PRELOAD_PREFIX:+$SF_PRELOAD_PREFIX:}$lib"
#   ASAN_OPTIONS        detect_leaks=0:verify_asan_link_order=0:... (foreign
#                       programs such as python3 would report their own
#                       leaks); the unit tests run with detect_leaks=1
#   UBSAN_OPTIONS, TSAN_OPTIONS   halt on the first report
# Runners that rebuild the environment must keep these.  One exception to
# the prefix: curl (any program that loads libp11-kit) hangs in glibc's
# setlocale lock when the ASan runtime is preloaded first, whatever else
# is preloaded (p11-kit's constructor runs newlocale before ASan has
# initialised; ASan's lazy init calls dlerror -> gettext, which releases
# the lock newlocale holds).  Run curl without the prefix: it works, with
# ASan's heap checks off in that process.

# Steps are called as "step_$name", and on_signal from a trap.
# shellcheck disable=SC2317

set -u
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || exit 2
cd "$ROOT" || exit 2

JOBS=${SF_JOBS:-2}
BUDGET=${SF_TEST_BUDGET:-1140}
CTEST_TIMEOUT=${SF_CTEST_TIMEOUT:-300}
ALL_STEPS=(deps gcc clang fuzz asan tsan static)
SYMS_FILE=scripts/exported-symbols.txt

usage()
{
	sed -n '/^# usage:/,/^#   --update-symbols/{s/^# \{0,1\}//;p}' "$0" >&2
	printf '                    (and build it first)\n' >&2
	exit 2
}

only=""
skip=""
update_symbols=0
while [ $# -gt 0 ]; do
	case $1 in
	--only) [ $# -ge 2 ] || usage; only=",$2,"; shift 2 ;;
	--skip) [ $# -ge 2 ] || usage; skip=",$2,"; shift 2 ;;
	--update-symbols) update_symbols=1; shift ;;
	-h | --help) usage ;;
	*) printf 'test.sh: unknown argument %s\n' "$1" >&2; usage ;;
	esac
done
for s in ${only//,/ } ${skip//,/ }; do
	case " ${ALL_STEPS[*]} " in
	*" $s "*) ;;
	*) printf 'test.sh: unknown step %s (steps: %s)\n' "$s" "${ALL_STEPS[*]}" >&2
	   exit 2 ;;
	esac
done

# Nothing from the caller's environment may change what the passes run.
unset SF_SANITIZE SF_PRELOAD_PREFIX ASAN_OPTIONS UBSAN_OPTIONS TSAN_OPTIONS \
    LSAN_OPTIONS LD_PRELOAD SOCKFILTER_CONF SOCKFILTER_DEBUG SOCKFILTER_TRACE \
    SOCKFILTER_LOG SOCKFILTER_SOCKET
export CTEST_PARALLEL_LEVEL=$JOBS CMAKE_BUILD_PARALLEL_LEVEL=$JOBS

START=$SECONDS
LOGDIR=$ROOT/build/test-logs
mkdir -p "$LOGDIR" || exit 2

# ---------------------------------------------------------------------
# Running commands: each in its own process group under a time limit, with
# its output streamed and kept in a log.  Whatever it leaves running in its
# group is reported and killed, so nothing outlives the script.
# ---------------------------------------------------------------------

CHILD=""
TAIL=""

on_signal()
{
	if [ -n "$CHILD" ]; then
		kill -TERM -- "-$CHILD" 2>/dev/null
		sleep 1
		kill -KILL -- "-$CHILD" 2>/dev/null
	fi
	[ -n "$TAIL" ] && kill "$TAIL" 2>/dev/null
	printf '\ntest.sh: interrupted\n'
	exit 130
}
trap on_signal INT TERM HUP

# remaining: seconds left of the budget.
remaining()
{
	echo $((BUDGET - (SECONDS - START)))
}

# guarded LOG CMD...: run CMD with standard input from /dev/null, output
# shown and copied to LOG, for at most the remaining budget; CMD's status
# (124 when the budget ran out).
guarded()
{
	local log=$1 limit rc left
	shift
	limit=$(remaining)
	if [ "$limit" -lt 5 ]; then
		printf 'test.sh: out of time, not running: %s\n' "$*" | tee "$log"
		return 124
	fi
	: >"$log"
	# timeout makes itself a process group leader (pgid = its pid) and
	# signals the whole group when the limit is reached.
	timeout -k 15 "$limit" "$@" </dev/null >"$log" 2>&1 &
	CHILD=$!
	# In the background so that a signal to this script is handled at
	# once (bash runs traps only between commands, but interrupts wait).
	tail -n +1 -f --pid="$CHILD" "$log" &
	TAIL=$!
	wait "$TAIL"
	wait "$CHILD"
	rc=$?
	TAIL=""
	left=$(pgrep -g "$CHILD" -a 2>/dev/null)
	if [ -n "$left" ]; then
		printf 'test.sh: killing processes left behind by %s:\n%s\n' \
		    "$1" "$left" | tee -a "$log"
		kill -KILL -- "-$CHILD" 2>/dev/null
	fi
	CHILD=""
	if [ "$rc" = 124 ] && [ "$(remaining)" -lt 5 ]; then
		printf 'test.sh: the time budget (%s s) ran out\n' "$BUDGET" |
		    tee -a "$log"
	fi
	return "$rc"
}

# ---------------------------------------------------------------------
# Results.
# ---------------------------------------------------------------------

R_NAME=()
R_STATUS=()
R_SECS=()
R_NOTE=()
T_PASSED=0
T_FAILED=0
T_SKIPPED=0

# result NAME STATUS SECONDS NOTE
result()
{
	R_NAME+=("$1")
	R_STATUS+=("$2")
	R_SECS+=("$3")
	R_NOTE+=("$4")
}

banner()
{
	printf '\n==== %s ' "$*"
	printf '%*s\n' $((60 - ${#1})) '' | tr ' ' '='
}

selected()
{
	local s=$1
	if [ -n "$only" ] && [[ $only != *",$s,"* ]]; then
		return 1
	fi
	[[ $skip != *",$s,"* ]]
}

# san_env DIR: the sanitizer environment of build DIR (see the header).
san_env()
{
	unset SF_SANITIZE SF_PRELOAD_PREFIX ASAN_OPTIONS UBSAN_OPTIONS \
	    TSAN_OPTIONS
	if [ -f "$1/sanitizer.env" ]; then
		# shellcheck disable=SC1091
		. "$1/sanitizer.env"
	else
		printf 'test.sh: %s/sanitizer.env is missing (cmake/Sanitizers.cmake)\n' "$1"
	fi
}

san_env_clear()
{
	unset SF_SANITIZE SF_PRELOAD_PREFIX ASAN_OPTIONS UBSAN_OPTIONS \
	    TSAN_OPTIONS
}

# compiler_id DIR: the C compiler id CMake found for build DIR, or "".
compiler_id()
{
	local f
	for f in "$1"/CMakeFiles/*/CMakeCCompiler.cmake; do
		[ -f "$f" ] || continue
		sed -n 's/^set(CMAKE_C_COMPILER_ID "\(.*\)")$/\1/p' "$f"
		return
	done
}

# configure TAG DIR CC ID [CMAKE ARGS...]: configure DIR with compiler CC
# (CMake id ID); a cache made with another compiler is started afresh.
configure()
{
	local tag=$1 dir=$2 cc=$3 id=$4 fresh=() have
	shift 4
	have=$(compiler_id "$dir")
	if [ -f "$dir/CMakeCache.txt" ] && [ -n "$have" ] && [ "$have" != "$id" ]; then
		printf 'test.sh: %s was configured with %s, not %s: starting afresh\n' \
		    "$dir" "$have" "$id"
		fresh=(--fresh)
	fi
	CC=$cc guarded "$LOGDIR/$tag-configure.log" \
	    cmake "${fresh[@]}" -S "$ROOT" -B "$dir" -Wno-dev "$@"
}

# build TAG DIR: build everything in DIR.
build()
{
	guarded "$LOGDIR/$1-build.log" cmake --build "$2" --parallel "$JOBS"
}

# ctest_run TAG DIR [CTEST ARGS...]: run ctest in DIR, add its counts to
# the totals and set CT_NOTE ("N tests: ..."); ctest's status.
CT_NOTE=""
ctest_run()
{
	local tag=$1 dir=$2 log rc line total=0 failed=0 skipped=0
	shift 2
	log=$LOGDIR/$tag-ctest.log
	guarded "$log" ctest --test-dir "$dir" --output-on-failure \
	    --test-output-size-failed 200000 -j "$JOBS" \
	    --timeout "$CTEST_TIMEOUT" "$@"
	rc=$?
	line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		failed=$(sed -E 's/^[0-9]+% tests passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
		total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
		skipped=$(grep -cE '^[[:space:]]+[0-9]+ - .* \((Skipped|Disabled)\)$' "$log")
		CT_NOTE="$total tests: $((total - failed - skipped)) passed, $failed failed, $skipped skipped"
	elif grep -q 'No tests were found' "$log"; then
		CT_NOTE="no tests"
	elif [ "$rc" = 124 ]; then
		CT_NOTE="ctest stopped: the time budget ran out"
	else
		CT_NOTE="ctest ended without a summary (status $rc)"
		[ "$rc" = 0 ] && rc=1
	fi
	T_PASSED=$((T_PASSED + total - failed - skipped))
	T_FAILED=$((T_FAILED + failed))
	T_SKIPPED=$((T_SKIPPED + skipped))
	printf 'test.sh: %s: %s\n' "$tag" "$CT_NOTE"
	return "$rc"
}

# ---------------------------------------------------------------------
# Steps.  Each returns 0 (pass), 1 (fail), 2 (skipped) or 3 (warning) and
# leaves a short note in NOTE.
# ---------------------------------------------------------------------

NOTE=""

step_deps()
{
	if ! guarded "$LOGDIR/deps.log" bash scripts/deps.sh; then
		NOTE="scripts/deps.sh failed"
		return 1
	fi
	NOTE="all packages present"
	return 0
}

step_gcc()
{
	configure gcc build gcc GNU -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DSF_TESTS=ON -DSF_E2E=ON || { NOTE="configure failed"; return 1; }
	build gcc build || { NOTE="build failed"; return 1; }
	san_env build
	ctest_run gcc build --no-tests=error
	local rc=$?
	san_env_clear
	NOTE=$CT_NOTE
	[ "$rc" = 0 ] || return 1
}

step_clang()
{
	configure clang build-clang clang Clang -DCMAKE_BUILD_TYPE=Debug \
	    -DCMAKE_C_FLAGS=-Werror -DSF_TESTS=ON -DSF_E2E=ON ||
	    { NOTE="configure failed"; return 1; }
	build clang build-clang ||
	    { NOTE="build failed (warnings are errors)"; return 1; }
	san_env build-clang
	ctest_run clang build-clang -L unit --no-tests=ignore
	local rc=$?
	san_env_clear
	NOTE="warning-free; unit: $CT_NOTE"
	[ "$rc" = 0 ] || return 1
}

step_fuzz()
{
	local dir=build-clang src name bin work corpus runs secs n=0 bad=()
	local targets=()
	runs=${SF_FUZZ_RUNS:-200000}
	secs=${SF_FUZZ_SECS:-20}
	if ! grep -qs '^SF_HAVE_LIBFUZZER:INTERNAL=1$' "$dir/CMakeCache.txt"; then
		NOTE="no libFuzzer harness in $dir (clang with -fsanitize=fuzzer needed)"
		printf 'test.sh: fuzz: %s: skipped\n' "$NOTE"
		return 2
	fi
	for src in tests/fuzz/fuzz_*.c; do
		[ -f "$src" ] || continue
		name=${src##*/}
		targets+=("${name%.c}")
	done
	[ "${#targets[@]}" -gt 0 ] || { NOTE="no harness"; return 2; }
	guarded "$LOGDIR/fuzz-build.log" cmake --build "$dir" --parallel "$JOBS" \
	    --target "${targets[@]}" || { NOTE="build failed"; return 1; }
	san_env_clear
	for name in "${targets[@]}"; do
		bin=$dir/tests/fuzz/$name
		corpus=tests/fuzz/corpus/${name#fuzz_}
		# New inputs go to a scratch directory, never to the seeds.
		work=$LOGDIR/fuzz-corpus-${name#fuzz_}
		rm -rf "$work"
		mkdir -p "$work" "$corpus"
		printf -- '-- %s: %s runs or %s s\n' "$name" "$runs" "$secs"
		# libconfig leaks on an unterminated string (fuzz_proto).
		if LSAN_OPTIONS="suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0" \
		    guarded "$LOGDIR/fuzz-$name.log" "$bin" -runs="$runs" \
		    -max_total_time="$secs" -max_len=4096 -timeout=10 \
		    -print_final_stats=1 -artifact_prefix="$LOGDIR/fuzz-$name-" \
		    "$work" "$corpus"; then
			n=$((n + 1))
		else
			bad+=("$name")
		fi
	done
	if [ "${#bad[@]}" -gt 0 ]; then
		NOTE="failed: ${bad[*]} (inputs in ${LOGDIR#"$ROOT"/}/fuzz-*)"
		return 1
	fi
	NOTE="$n harnesses, up to $runs runs / ${secs}s each, no finding"
}

step_asan()
{
	local rc1 rc2 n1
	configure asan build-asan gcc GNU -DSANITIZE=address,undefined \
	    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	    -DSF_TESTS=ON -DSF_E2E=ON || { NOTE="configure failed"; return 1; }
	build asan build-asan || { NOTE="build failed"; return 1; }
	san_env build-asan
	# The unit tests preload nothing: leak detection on, except for what
	# Criterion's runner itself leaks when a test fails or times out.
	printf 'leak:libcriterion.so\n' >"$LOGDIR/lsan.supp"
	ASAN_OPTIONS=${ASAN_OPTIONS//detect_leaks=0/detect_leaks=1} \
	LSAN_OPTIONS="suppressions=$LOGDIR/lsan.supp:print_suppressions=0" \
	    ctest_run asan-unit build-asan -L unit --no-tests=ignore
	rc1=$?
	n1=$CT_NOTE
	ctest_run asan-other build-asan -LE unit --no-tests=ignore
	rc2=$?
	san_env_clear
	NOTE="unit: $n1; others: $CT_NOTE"
	[ "$rc1" = 0 ] && [ "$rc2" = 0 ] || return 1
}

step_tsan()
{
	local n
	configure tsan build-tsan gcc GNU -DSANITIZE=thread \
	    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-g -O1" \
	    -DSF_TESTS=ON -DSF_E2E=ON || { NOTE="configure failed"; return 1; }
	n=$(ctest --test-dir build-tsan -N -L threaded 2>/dev/null |
	    sed -n 's/^Total Tests: //p')
	if [ "${n:-0}" = 0 ]; then
		NOTE="no test is labelled \"threaded\" yet"
		printf 'test.sh: tsan: %s: skipped\n' "$NOTE"
		return 2
	fi
	build tsan build-tsan || { NOTE="build failed"; return 1; }
	san_env build-tsan
	ctest_run tsan build-tsan -L threaded
	local rc=$?
	san_env_clear
	NOTE=$CT_NOTE
	[ "$rc" = 0 ] || return 1
}

# exported_symbols LIB: the dynamic symbols LIB defines, one per line, as
# nm prints them (name@@VERSION), sorted.
exported_symbols()
{
	nm -D --defined-only "$1" | awk '{ print $NF }' | LC_ALL=C sort -u
}

step_static()
{
	local fail=0 warn=0 notes=() bad h base f lib n c total files=()

	printf -- '-- src/core includes no header of src/interpose\n'
	bad=$(grep -rnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<]([^">]*/)?interpose/' \
	    src/core 2>/dev/null)
	for h in src/interpose/*.h; do
		[ -f "$h" ] || continue
		base=${h##*/}
		# A core header of the same name is the core's own.
		[ -f "src/core/$base" ] && continue
		bad+=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]([^\">]*/)?${base//./\\.}[\">]" \
		    src/core 2>/dev/null)
	done
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad"
		printf 'FAIL: src/core must not include interpose headers (DESIGN.md)\n'
		notes+=("core includes interpose")
		fail=1
	else
		printf 'ok\n'
	fi

	printf -- '-- sofop_* callbacks are called only in src/core/stack.c\n'
	# A call: "sofop_NAME(", "sofop_NAME)(" or a "sofop_ ## x" dispatch
	# macro; designated initializers (".sofop_x = cb") do not match.
	# Comment lines are ignored.
	bad=$(grep -rnE 'sofop_[A-Za-z0-9_]*[[:space:]]*(\)[[:space:]]*)?\(|sofop_[[:space:]]*##' \
	    src --include='*.c' --include='*.h' 2>/dev/null |
	    grep -v '^src/core/stack\.c:' |
	    grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)')
	if [ -n "$bad" ]; then
		printf '%s\n' "$bad"
		printf 'FAIL: filter callbacks must be called from src/core/stack.c only (STYLE.md)\n'
		notes+=("sofop_ called outside stack.c")
		fail=1
	else
		printf 'ok\n'
	fi

	printf -- '-- exported symbols of libsockfilter.so\n'
	lib=build/lib/libsockfilter.so
	if [ ! -f "$lib" ]; then
		printf 'skipped: %s was not built\n' "$lib"
		notes+=("symbols: no library")
		warn=1
	elif [ ! -f "$SYMS_FILE" ]; then
		printf 'skipped: %s does not exist yet; once the exported API is in place,\n' "$SYMS_FILE"
		printf 'create it with: scripts/test.sh --update-symbols\n'
		notes+=("symbols: no expected list yet")
		warn=1
	elif ! bad=$(diff -u --label "$SYMS_FILE (expected)" \
	    --label "$lib (built)" "$SYMS_FILE" <(exported_symbols "$lib")); then
		printf '%s\n' "$bad"
		printf 'FAIL: the exported symbols changed; if that is intended, run\n'
		printf 'scripts/test.sh --update-symbols and commit %s\n' "$SYMS_FILE"
		notes+=("exported symbols differ")
		fail=1
	else
		printf 'ok (%s symbols)\n' "$(wc -l <"$SYMS_FILE")"
	fi

	printf -- '-- bash -n on the shell scripts\n'
	bad=""
	while IFS= read -r f; do
		bash -n "$f" 2>&1 || bad+="$f "
	done < <({ ls scripts/*.sh .ci/run 2>/dev/null
		   find tests bench -name '*.sh' -type f 2>/dev/null; } | sort -u)
	if [ -n "$bad" ]; then
		printf 'FAIL: syntax errors in %s\n' "$bad"
		notes+=("bash -n failed")
		fail=1
	else
		printf 'ok\n'
	fi

	printf -- '-- clang-format --dry-run (a warning only)\n'
	while IFS= read -r f; do
		files+=("$f")
	done < <(find include src tests bench soconfigd \
	    \( -name '*.c' -o -name '*.h' \) -type f 2>/dev/null | LC_ALL=C sort)
	if ! command -v clang-format >/dev/null 2>&1; then
		printf 'skipped: clang-format is not installed\n'
		warn=1
	elif [ "${#files[@]}" -gt 0 ]; then
		n=0
		total=0
		for f in "${files[@]}"; do
			c=$(clang-format --dry-run "$f" 2>&1 |
			    grep -c 'Wclang-format-violations')
			if [ "$c" -gt 0 ]; then
				printf 'warning: %s: %s places differ from .clang-format\n' "$f" "$c"
				n=$((n + 1))
				total=$((total + c))
			fi
		done
		if [ "$n" -gt 0 ]; then
			printf 'warning: %d of %d files are not clang-formatted (%d places);\n' \
			    "$n" "${#files[@]}" "$total"
			printf 'see them with: clang-format --dry-run FILE; fix: clang-format -i FILE\n'
			notes+=("clang-format: $n of ${#files[@]} files differ")
			warn=1
		else
			printf 'ok (%d files)\n' "${#files[@]}"
		fi
	fi

	NOTE=$(IFS=';'; printf '%s' "${notes[*]}")
	NOTE=${NOTE//;/; }
	[ "$fail" = 0 ] || return 1
	[ "$warn" = 0 ] || return 3
	NOTE="all checks passed"
	return 0
}

# ---------------------------------------------------------------------
# --update-symbols
# ---------------------------------------------------------------------

if [ "$update_symbols" = 1 ]; then
	if ! configure gcc build gcc GNU -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    >/dev/null || ! build gcc build >/dev/null; then
		printf 'test.sh: the build failed: see %s\n' "${LOGDIR#"$ROOT"/}"
		exit 1
	fi
	exported_symbols build/lib/libsockfilter.so >"$SYMS_FILE" || exit 1
	printf 'test.sh: wrote %s (%s symbols)\n' "$SYMS_FILE" "$(wc -l <"$SYMS_FILE")"
	exit 0
fi

# ---------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------

printf 'sockfilter test.sh: steps: %s; %s jobs; budget %s s; logs in %s\n' \
    "${ALL_STEPS[*]}" "$JOBS" "$BUDGET" "${LOGDIR#"$ROOT"/}"

for s in "${ALL_STEPS[@]}"; do
	if ! selected "$s"; then
		result "$s" SKIP 0 "not selected"
		continue
	fi
	t0=$SECONDS
	NOTE=""
	# The static checks take seconds and start nothing: they always run.
	if [ "$s" != static ] && [ "$(remaining)" -lt 5 ]; then
		NOTE="out of time (budget $BUDGET s)"
		rc=1
	else
		banner "$s"
		"step_$s"
		rc=$?
	fi
	case $rc in
	0) st=PASS ;;
	2) st=SKIP ;;
	3) st=WARN ;;
	*) st=FAIL ;;
	esac
	result "$s" "$st" $((SECONDS - t0)) "$NOTE"
done

banner summary
failed=()
printf '%-7s %-6s %6s  %s\n' step result time note
for i in "${!R_NAME[@]}"; do
	printf '%-7s %-6s %5ss  %s\n' "${R_NAME[i]}" "${R_STATUS[i]}" \
	    "${R_SECS[i]}" "${R_NOTE[i]}"
	[ "${R_STATUS[i]}" = FAIL ] && failed+=("${R_NAME[i]}")
done
printf 'total time: %ss (budget %ss)\n' $((SECONDS - START)) "$BUDGET"
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'test.sh: FAILED: %s\n' "${failed[*]}"
	status=1
else
	printf 'test.sh: OK\n'
	status=0
fi
# Test runs over every pass (a test run in two builds counts twice).
printf 'tests: %d passed, %d failed, %d skipped\n' "$T_PASSED" "$T_FAILED" \
    "$T_SKIPPED"
exit "$status"
