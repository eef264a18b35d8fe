# shellcheck shell=bash
# sol_filter: filopt (tests/e2e/filopt.c) under the preload, with datafilt
# automatic and xorfilt programmatic on TCP, and "ghost" programmatic with
# a module that does not exist: FIL_LIST, FIL_ATTACH and FIL_DETACH and
# their errnos (EEXIST, ENXIO, EINVAL after bind, EINVAL for a short
# FIL_LIST buffer), as filopt's PASS/FAIL lines report.

# shellcheck disable=SC2034 # read by run.sh
NEEDS=()

run_case()
{
	local conf="$E2E_TMP/sockfilter.conf" out rc npass

	need_file "$E2E_BINDIR/filopt"
	preloaded || skip "SOL_FILTER needs the preload (--no-preload)"
	cat >"$conf" <<CONF
module_path = [ "$E2E_MODDIR" ];
filters = (
  {
    name      = "datafilt";
    module    = "datafilt";
    attach    = "auto";
    sockets   = [ "inet:stream:tcp" ];
  },
  {
    name      = "xorfilt";
    module    = "xorfilt";
    attach    = "prog";
    sockets   = [ "inet:stream:tcp" ];
    params    = { key = 90; };
  },
  {
    name      = "ghost";
    module    = "sf_e2e_no_such_module";
    attach    = "prog";
    sockets   = [ "inet:stream:tcp" ];
  }
);
CONF

	set_preload "$conf"
	run_client filopt "${PRELOAD_ENV[@]}" "$E2E_BINDIR/filopt"
	rc=$?
	out="$E2E_TMP/filopt.out"
	cat "$out"
	grep -q '^FAIL' "$out" &&
	    fail "$(grep -c '^FAIL' "$out") SOL_FILTER checks failed, first: $(grep -m 1 '^FAIL' "$out")"
	expect_ok filopt "$rc"
	npass=$(grep -c '^PASS' "$out")
	[ "$npass" = 19 ] || fail "filopt printed $npass PASS lines, expected 19"
}
