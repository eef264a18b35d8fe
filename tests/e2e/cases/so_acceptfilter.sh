# shellcheck shell=bash
# so_acceptfilter: afilter (tests/e2e/afilter.c) uses SO_ACCEPTFILTER as a
# FreeBSD program would, under the preload with an empty configuration:
# the FreeBSD names reach the shipped accept filters from the module
# directory.  Its checks: FreeBSD's errnos (EINVAL before listen, for a
# short structure and when one is set, ENOENT for an unknown name),
# getsockopt, half an HTTP header held (listener quiet, accept EAGAIN),
# the whole header accepted with the bytes intact, and NULL releasing an
# idle connection the filter held.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=()

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" out rc

	need_file "$E2E_BINDIR/afilter"
	preloaded || skip "SO_ACCEPTFILTER needs the preload (--no-preload)"
	printf 'filters = ( );\n' >"$conf"
	set_preload "$conf"
	run_client afilter "${PRELOAD_ENV[@]}" "$E2E_BINDIR/afilter"
	rc=$?
	out="$E2E_TMP/afilter.out"
	cat "$out"
	grep -q '^FAIL' "$out" &&
	    fail "$(grep -c '^FAIL' "$out") checks failed, first: $(grep -m 1 '^FAIL' "$out")"
	expect_ok afilter "$rc"
	[ "$(grep -c '^PASS' "$out")" -ge 17 ] || fail "afilter ran short"
}
