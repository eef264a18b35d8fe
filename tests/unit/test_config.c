/*
 * test_config.c: config.c, the libconfig parser, tuple matching and the
 * placement of automatic filters.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define TCONF "t.conf"

static struct cfg_snap *
tc_load_ok(const char *text)
{
	struct cfg_snap *cs = NULL;
	char err[512] = "";
	int error = cfg_load_string(text, TCONF, &cs, err, sizeof(err));

	cr_assert_eq(error, 0, "load failed (%d): %s", error, err);
	cr_assert_not_null(cs);
	return cs;
}

/* The load fails with EINVAL, the message starts with prefix (the exact
 * "FILE:LINE: ") and contains needle. */
static void
tc_load_bad(const char *text, const char *prefix, const char *needle)
{
	struct cfg_snap *cs = NULL;
	char err[512] = "";
	int error = cfg_load_string(text, TCONF, &cs, err, sizeof(err));

	cr_assert_eq(error, EINVAL, "expected EINVAL, got %d (%s)", error, err);
	cr_assert_null(cs);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0,
	    "error '%s' does not start with '%s'", err, prefix);
	cr_assert(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err,
	    needle);
}

/* The automatic stack of a socket, bottom first, as "a,b,c". */
static const char *
tc_order(const struct cfg_snap *cs, int family, int type, int proto)
{
	static char buf[1024];
	const struct cfg_filter *out[CFG_MAXFILTERS];
	int n = cfg_auto_order(cs, family, type, proto, out, CFG_MAXFILTERS);
	size_t off = 0;
	int i;

	buf[0] = '\0';
	for (i = 0; i < n; i++)
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
		    i > 0 ? "," : "", out[i]->cf_name);
	return buf;
}

static const char *
tc_tcp_order(const struct cfg_snap *cs)
{
	return tc_order(cs, AF_INET, SOCK_STREAM, 0);
}

static void
tc_expect_warnings(const struct cfg_snap *cs, const char *expected)
{
	if (expected == NULL) {
		cr_assert_null(cs->cs_warnings, "unexpected warnings: %s",
		    cs->cs_warnings);
		return;
	}
	cr_assert_not_null(cs->cs_warnings, "no warnings, expected: %s",
	    expected);
	cr_assert_str_eq(cs->cs_warnings, expected);
}

/* ---------------------------------------------------------------------
 * Good files.
 * ------------------------------------------------------------------- */

Test(config, good_file_every_field)
{
	struct cfg_snap *cs = tc_load_ok(
	    "module_path = [ \"/opt/a\", \"/opt/b\" ];\n" /* 1 */
	    "filters = (\n"                               /* 2 */
	    "  {\n"                                       /* 3 */
	    "    name      = \"tcplog\";\n"
	    "    module    = \"tcplog_mod\";\n"
	    "    attach    = \"auto\";\n"
	    "    placement = \"top\";\n"
	    "    sockets   = [ \"inet:stream:tcp\", \"inet6:stream:tcp\", "
	    "\"2:1:6\", \"unix:seqpacket:0\", \"local:dgram:0\", "
	    "\"10:2:17\", \"inet:raw:255\" ];\n"
	    "    params    = { path = \"/var/log/x.jsonl\"; n = 3; };\n"
	    "  },\n"
	    "  {\n" /* 11 */
	    "    name   = \"accf\";\n"
	    "    attach = \"prog\";\n"
	    "    sockets = ( \"inet:stream:0\" );\n"
	    "  }\n"
	    ");\n");
	const struct cfg_filter *cf;

	cr_assert_eq(cs->cs_nfilters, 2);
	cr_assert_str_eq(cs->cs_path, TCONF);
	cr_assert_eq(cs->cs_nmodpath, 2);
	cr_assert_str_eq(cs->cs_modpath[0], "/opt/a");
	cr_assert_str_eq(cs->cs_modpath[1], "/opt/b");
	tc_expect_warnings(cs, NULL);

	cf = &cs->cs_filters[0];
	cr_assert_str_eq(cf->cf_name, "tcplog");
	cr_assert_str_eq(cf->cf_module, "tcplog_mod");
	cr_assert(cf->cf_auto);
	cr_assert_eq(cf->cf_hint, CFG_HINT_TOP);
	cr_assert_eq(cf->cf_line, 3);
	cr_assert_eq(cf->cf_ntuples, 7);
	cr_assert_eq(cf->cf_tuples[0].ct_family, AF_INET);
	cr_assert_eq(cf->cf_tuples[0].ct_type, SOCK_STREAM);
	cr_assert_eq(cf->cf_tuples[0].ct_proto, IPPROTO_TCP);
	cr_assert_eq(cf->cf_tuples[1].ct_family, AF_INET6);
	cr_assert_eq(cf->cf_tuples[2].ct_family, 2);
	cr_assert_eq(cf->cf_tuples[2].ct_type, 1);
	cr_assert_eq(cf->cf_tuples[2].ct_proto, 6);
	cr_assert_eq(cf->cf_tuples[3].ct_family, AF_UNIX);
	cr_assert_eq(cf->cf_tuples[3].ct_type, SOCK_SEQPACKET);
	cr_assert_eq(cf->cf_tuples[3].ct_proto, 0);
	cr_assert_eq(cf->cf_tuples[4].ct_family, AF_LOCAL);
	cr_assert_eq(cf->cf_tuples[4].ct_type, SOCK_DGRAM);
	cr_assert_eq(cf->cf_tuples[5].ct_family, AF_INET6);
	cr_assert_eq(cf->cf_tuples[5].ct_type, SOCK_DGRAM);
	cr_assert_eq(cf->cf_tuples[5].ct_proto, IPPROTO_UDP);
	cr_assert_eq(cf->cf_tuples[6].ct_type, SOCK_RAW);
	cr_assert_eq(cf->cf_tuples[6].ct_proto, 255);
	cr_assert_eq(cf->cf_nparams, 2);
	cr_assert_str_eq(cfg_param(cf, "path"), "/var/log/x.jsonl");
	cr_assert_str_eq(cfg_param(cf, "n"), "3");
	cr_assert_null(cfg_param(cf, "nope"));

	cf = &cs->cs_filters[1];
	cr_assert_str_eq(cf->cf_name, "accf");
	cr_assert_str_eq(cf->cf_module, "accf", "module defaults to the name");
	cr_assert_not(cf->cf_auto);
	cr_assert_eq(cf->cf_hint, CFG_HINT_NONE);
	cr_assert_eq(cf->cf_line, 11);
	cr_assert_eq(cf->cf_ntuples, 1);
	cr_assert_eq(cf->cf_nparams, 0);
	cr_assert_null(cf->cf_params);

	cr_assert_eq(cfg_find(cs, "accf"), cf);
	cr_assert_null(cfg_find(cs, "nope"));
	cr_assert_eq(cfg_prog_filter(cs, "accf", AF_INET, SOCK_STREAM, 0), cf);
	cr_assert_null(cfg_prog_filter(cs, "accf", AF_INET6, SOCK_STREAM, 0));
	cr_assert_null(cfg_prog_filter(cs, "tcplog", AF_INET, SOCK_STREAM, 0),
	    "an automatic filter is not a programmatic one");
	cr_assert(cfg_has_prog(cs, AF_INET, SOCK_STREAM, IPPROTO_TCP));
	cr_assert_not(cfg_has_prog(cs, AF_INET, SOCK_DGRAM, 0));
	cfg_rele(cs);
}

Test(config, params_of_every_type)
{
	struct cfg_snap *cs = tc_load_ok(
	    "filters = ( { name = \"p\"; attach = \"prog\"; sockets = "
	    "[\"2:1:6\"];\n"
	    "  params = { s = \"str ing\"; i = 42; n = -7; l = 5000000000L; "
	    "f = 0.5; g = 1e10; t = 0.1; b = true; c = false; h = 0x1F; "
	    "e = \"\"; };\n"
	    "} );\n");
	const struct cfg_filter *cf = &cs->cs_filters[0];

	cr_assert_eq(cf->cf_nparams, 11);
	cr_assert_str_eq(cfg_param(cf, "s"), "str ing");
	cr_assert_str_eq(cfg_param(cf, "i"), "42");
	cr_assert_str_eq(cfg_param(cf, "n"), "-7");
	cr_assert_str_eq(cfg_param(cf, "l"), "5000000000");
	cr_assert_str_eq(cfg_param(cf, "f"), "0.5");
	cr_assert_str_eq(cfg_param(cf, "g"), "10000000000");
	cr_assert_str_eq(cfg_param(cf, "t"), "0.1");
	cr_assert_str_eq(cfg_param(cf, "b"), "true");
	cr_assert_str_eq(cfg_param(cf, "c"), "false");
	cr_assert_str_eq(cfg_param(cf, "h"), "31");
	cr_assert_str_eq(cfg_param(cf, "e"), "");
	cfg_rele(cs);
}

Test(config, empty_filter_list_and_placements_parsed)
{
	struct cfg_snap *cs = tc_load_ok("filters = ();\n");

	cr_assert_eq(cs->cs_nfilters, 0);
	cr_assert_eq(cs->cs_nmodpath, 0);
	cr_assert_eq(tc_tcp_order(cs)[0], '\0');
	cr_assert_not(cfg_has_prog(cs, AF_INET, SOCK_STREAM, 0));
	cfg_rele(cs);

	cs = tc_load_ok("filters = (\n"
	                " { name = \"a\"; attach = \"auto\"; placement = "
	                "\"bottom\"; sockets = [\"2:1:6\"]; },\n"
	                " { name = \"b\"; attach = \"auto\"; placement = "
	                "\"before:a\"; sockets = [\"2:1:6\"]; },\n"
	                " { name = \"c\"; attach = \"auto\"; placement = "
	                "\"after:a\"; sockets = [\"2:1:6\"]; },\n"
	                " { name = \"d\"; attach = \"auto\"; placement = "
	                "\"after:0123456789012345678901234567890\"; "
	                "sockets = [\"2:1:6\"]; }\n"
	                ");\n");
	cr_assert_eq(cs->cs_filters[0].cf_hint, CFG_HINT_BOTTOM);
	cr_assert_eq(cs->cs_filters[1].cf_hint, CFG_HINT_BEFORE);
	cr_assert_str_eq(cs->cs_filters[1].cf_hint_arg, "a");
	cr_assert_eq(cs->cs_filters[2].cf_hint, CFG_HINT_AFTER);
	cr_assert_str_eq(cs->cs_filters[2].cf_hint_arg, "a");
	cr_assert_str_eq(cs->cs_filters[3].cf_hint_arg,
	    "0123456789012345678901234567890");
	cfg_rele(cs);
}

Test(config, name_of_31_bytes_is_accepted)
{
	struct cfg_snap *cs = tc_load_ok(
	    "filters = ( { name = \"0123456789012345678901234567890\"; "
	    "attach = \"prog\"; sockets = [\"2:1:6\"]; } );");

	cr_assert_eq(strlen(cs->cs_filters[0].cf_name), FILNAME_MAX - 1);
	cfg_rele(cs);
}

Test(config, unknown_top_level_setting_is_a_warning)
{
	struct cfg_snap *cs = tc_load_ok("filters = ();\n"
	                                 "colour = \"blue\";\n");

	tc_expect_warnings(cs,
	    "t.conf:2: unknown setting 'colour' ignored (expected "
	    "module_path, filters)\n");
	cfg_rele(cs);
}

Test(config, hold_rele_and_empty)
{
	struct cfg_snap *cs = cfg_empty();

	cr_assert_not_null(cs);
	cr_assert_eq(cs->cs_nfilters, 0);
	cr_assert_eq(atomic_load(&cs->cs_refs), 1);
	cfg_hold(cs);
	cr_assert_eq(atomic_load(&cs->cs_refs), 2);
	cfg_rele(cs);
	cr_assert_eq(atomic_load(&cs->cs_refs), 1);
	cr_assert_eq(cfg_auto_order(cs, AF_INET, SOCK_STREAM, 0, NULL, 0), 0);
	cr_assert_null(cfg_find(cs, "x"));
	cfg_rele(cs);
}

/* ---------------------------------------------------------------------
 * Files on disk.
 * ------------------------------------------------------------------- */

static char tc_dir[PATH_MAX];

static char *
tc_write(const char *name, const char *text)
{
	static char path[PATH_MAX + 64];
	FILE *fp;

	if (tc_dir[0] == '\0') {
		snprintf(tc_dir, sizeof(tc_dir), "/tmp/sfcfgXXXXXX");
		cr_assert_not_null(mkdtemp(tc_dir));
	}
	snprintf(path, sizeof(path), "%s/%s", tc_dir, name);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	return path;
}

static void
tc_rmdir(void)
{
	char cmd[PATH_MAX + 16];

	if (tc_dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tc_dir);
		cr_assert_eq(system(cmd), 0);
		tc_dir[0] = '\0';
	}
}

Test(config, file_errors_name_the_path, .fini = tc_rmdir)
{
	struct cfg_snap *cs = NULL;
	char err[512], expect[PATH_MAX + 128];
	char *path = tc_write("bad.conf", "filters = (\n{ name = ;\n});\n");

	cr_assert_eq(cfg_load_file(path, &cs, err, sizeof(err)), EINVAL);
	cr_assert_null(cs);
	snprintf(expect, sizeof(expect), "%s:2: ", path);
	cr_assert(strncmp(err, expect, strlen(expect)) == 0, "%s", err);
	cr_assert(strstr(err, "syntax error") != NULL, "%s", err);

	path =
	    tc_write("bad2.conf", "filters = (\n"
	                          "  { name = \"x\"; attach = \"auto\";\n"
	                          "    sockets = [ \"inet:stream:tpc\" ]; }\n"
	                          ");\n");
	cr_assert_eq(cfg_load_file(path, &cs, err, sizeof(err)), EINVAL);
	snprintf(expect, sizeof(expect),
	    "%s:3: filter 'x': bad socket tuple 'inet:stream:tpc': bad "
	    "protocol 'tpc'",
	    path);
	cr_assert_str_eq(err, expect);

	snprintf(expect, sizeof(expect), "%s/none.conf", tc_dir);
	cr_assert_eq(cfg_load_file(expect, &cs, err, sizeof(err)), ENOENT);
	cr_assert(strstr(err, ":0: cannot open: No such file or directory") !=
	              NULL,
	    "%s", err);
	cr_assert(strncmp(err, expect, strlen(expect)) == 0, "%s", err);
}

Test(config, file_relative_module_path, .fini = tc_rmdir)
{
	struct cfg_snap *cs = NULL;
	char err[512], expect[PATH_MAX + 64], real[PATH_MAX];
	char *path = tc_write("rel.conf", "module_path = [ \"mods\", \"/abs\" "
	                                  "];\nfilters = ();\n");

	cr_assert_eq(cfg_load_file(path, &cs, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(realpath(tc_dir, real));
	snprintf(expect, sizeof(expect), "%s/mods", real);
	cr_assert_str_eq(cs->cs_modpath[0], expect);
	cr_assert_str_eq(cs->cs_modpath[1], "/abs");
	cr_assert_str_eq(cs->cs_path, path);
	cfg_rele(cs);
}

/* The shipped default configuration, found from this file's location
 * (tests/unit/ -> ../../conf/). */
Test(config, shipped_default_conf_loads)
{
	char src[PATH_MAX], path[PATH_MAX + 64], err[512];
	struct cfg_snap *cs = NULL;
	const struct cfg_filter *cf;
	int error;

	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(path, sizeof(path), "%s/../../conf/sockfilter.conf",
	    dirname(src));
	error = cfg_load_file(path, &cs, err, sizeof(err));
	cr_assert_eq(error, 0, "%s: %s", path, err);
	tc_expect_warnings(cs, NULL);

	cr_assert_not_null(cf = cfg_find(cs, "datafilt"));
	cr_assert(cf->cf_auto);
	cr_assert_str_eq(cf->cf_module, "datafilt");
	cr_assert_str_eq(cfg_param(cf, "verbose"), "false");
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, 0));
	cr_assert(cfg_filter_matches(cf, AF_INET6, SOCK_STREAM, IPPROTO_TCP));
	cr_assert_not(cfg_filter_matches(cf, AF_INET, SOCK_DGRAM, 0));
	cr_assert_str_eq(tc_order(cs, AF_INET6, SOCK_STREAM, 0), "datafilt");

	cr_assert_not_null(cf = cfg_find(cs, "xorfilt"));
	cr_assert_not(cf->cf_auto);
	cr_assert_str_eq(cf->cf_module, "xorfilt");
	cr_assert_str_eq(cfg_param(cf, "key"), "90");
	cr_assert_eq(cfg_prog_filter(cs, "xorfilt", AF_INET, SOCK_STREAM, 0),
	    cf);
	cfg_rele(cs);
}

/* ---------------------------------------------------------------------
 * Bad files: every rule, with the exact FILE:LINE: prefix.
 * ------------------------------------------------------------------- */

#define F_OK_REST "attach = \"auto\"; sockets = [\"2:1:6\"];"

Test(config, bad_syntax)
{
	tc_load_bad("filters = (\n{ name = ;\n}\n);\n",
	    "t.conf:2: ", "syntax error");
	tc_load_bad("filters = (\n{ name = \"a\"; }\n", "t.conf:", "error");
}

Test(config, bad_filters_setting)
{
	tc_load_bad("module_path = [];\n",
	    "t.conf:0: ", "missing setting 'filters'");
	tc_load_bad("\n\nfilters = 5;\n",
	    "t.conf:3: ", "'filters' must be a list");
	tc_load_bad("filters = { name = \"a\"; };\n",
	    "t.conf:1: ", "'filters' must be a list");
	tc_load_bad("filters = (\n \"a\" );\n",
	    "t.conf:2: ", "filter 1: must be a group");
}

Test(config, bad_name)
{
	tc_load_bad("filters = (\n { attach = \"auto\"; }\n);\n",
	    "t.conf:2: ", "filter 1: missing setting 'name'");
	tc_load_bad("filters = (\n { name = 5; }\n);\n",
	    "t.conf:2: ", "filter 1: 'name' must be a string, not an integer");
	tc_load_bad("filters = (\n { name = \"\"; " F_OK_REST " }\n);\n",
	    "t.conf:2: ", "filter 1: name is empty");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST " },\n"
	            " { name =\n \"01234567890123456789012345678901\"; }\n);\n",
	    "t.conf:3: ",
	    "filter name '01234567890123456789012345678901' is too long (32 "
	    "bytes, at most 31)");
}

Test(config, bad_duplicate_name)
{
	tc_load_bad("filters = (\n"
	            " { name = \"a\"; " F_OK_REST " },\n"
	            " { name = \"b\"; " F_OK_REST " },\n"
	            " {\n   name = \"a\"; " F_OK_REST " }\n);\n",
	    "t.conf:5: ",
	    "duplicate filter name 'a' (first defined at line 2)");
}

Test(config, bad_attach)
{
	tc_load_bad("filters = (\n { name = \"a\"; sockets = [\"2:1:6\"]; }\n"
	            ");\n",
	    "t.conf:2: ", "filter 'a': missing setting 'attach'");
	tc_load_bad("filters = (\n { name = \"a\";\n attach = \"always\"; "
	            "sockets = [\"2:1:6\"]; }\n);\n",
	    "t.conf:3: ",
	    "filter 'a': attach must be \"auto\" or \"prog\", not \"always\"");
	tc_load_bad("filters = (\n { name = \"a\"; attach = true; sockets = "
	            "[\"2:1:6\"]; }\n);\n",
	    "t.conf:2: ",
	    "filter 'a': 'attach' must be a string, not a boolean");
}

Test(config, bad_placement)
{
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"prog\";\n"
	            "   placement = \"top\"; sockets = [\"2:1:6\"]; }\n);\n",
	    "t.conf:3: ",
	    "filter 'a': placement 'top' given for a programmatic filter");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = \"middle\"; }\n);\n",
	    "t.conf:3: ", "filter 'a': bad placement 'middle'");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = \"Top\"; }\n);\n",
	    "t.conf:3: ", "bad placement 'Top'");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = \"before\"; }\n);\n",
	    "t.conf:3: ", "bad placement 'before'");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = \"before:\"; }\n);\n",
	    "t.conf:3: ",
	    "bad placement 'before:' (NAME must be 1 to 31 bytes)");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = "
	            "\"after:01234567890123456789012345678901\"; }\n);\n",
	    "t.conf:3: ", "(NAME must be 1 to 31 bytes)");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = \"after:a\"; }\n);\n",
	    "t.conf:3: ",
	    "filter 'a': placement 'after:a' names the filter "
	    "itself");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placement = 1; }\n);\n",
	    "t.conf:3: ", "'placement' must be a string");
}

Test(config, bad_sockets)
{
	char text[4096];
	size_t off;
	int i;

	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\"; }\n);\n",
	    "t.conf:2: ", "filter 'a': missing setting 'sockets'");
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\";\n"
	            "   sockets = []; }\n);\n",
	    "t.conf:3: ", "filter 'a': 'sockets' is empty");
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\";\n"
	            "   sockets = \"2:1:6\"; }\n);\n",
	    "t.conf:3: ", "filter 'a': 'sockets' must be a list");
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\";\n"
	            "   sockets = [ \"2:1:6\",\n \"2:1:x\" ]; }\n);\n",
	    "t.conf:4: ",
	    "filter 'a': bad socket tuple '2:1:x': bad protocol 'x'");
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\";\n"
	            "   sockets = [ 2 ]; }\n);\n",
	    "t.conf:3: ", "filter 'a': socket tuple 1 must be a string");
	tc_load_bad("filters = (\n { name = \"a\"; attach = \"auto\";\n"
	            "   sockets = ( \"2:1:6\", 2 ); }\n);\n",
	    "t.conf:3: ", "filter 'a': socket tuple 2 must be a string");

	off = (size_t)snprintf(text, sizeof(text),
	    "filters = (\n { name = \"a\"; attach = \"auto\";\n"
	    "   sockets = [ ");
	for (i = 0; i < CFG_MAXTUPLES + 1; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%s\"2:1:%d\"", i > 0 ? ", " : "", i);
	snprintf(text + off, sizeof(text) - off, " ]; }\n);\n");
	tc_load_bad(text, "t.conf:3: ",
	    "filter 'a': too many socket tuples (33, at most 32)");
}

Test(config, thirty_two_tuples_are_accepted)
{
	char text[4096];
	struct cfg_snap *cs;
	size_t off;
	int i;

	off = (size_t)snprintf(text, sizeof(text),
	    "filters = ( { name = \"a\"; attach = \"auto\"; sockets = [ ");
	for (i = 0; i < CFG_MAXTUPLES; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%s\"2:1:%d\"", i > 0 ? ", " : "", i + 1);
	snprintf(text + off, sizeof(text) - off, " ]; } );\n");
	cs = tc_load_ok(text);
	cr_assert_eq(cs->cs_filters[0].cf_ntuples, CFG_MAXTUPLES);
	cfg_rele(cs);
}

Test(config, bad_params)
{
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   params = 5; }\n);\n",
	    "t.conf:3: ", "filter 'a': 'params' must be a group");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   params = [ \"x\" ]; }\n);\n",
	    "t.conf:3: ", "'params' must be a group");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   params = { ok = 1;\n  sub = { x = 1; }; }; }\n);\n",
	    "t.conf:4: ",
	    "filter 'a': param 'sub' must be a string, number or boolean, not "
	    "a group");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   params = { l = [ 1, 2 ]; }; }\n);\n",
	    "t.conf:3: ",
	    "param 'l' must be a string, number or boolean, not "
	    "an array");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   params = { l = ( 1 ); }; }\n);\n",
	    "t.conf:3: ", "not a list");
}

Test(config, bad_module_path)
{
	tc_load_bad("module_path = \"/x\";\nfilters = ();\n", "t.conf:1: ",
	    "'module_path' must be a list of directory strings, not a string");
	tc_load_bad("module_path = ( \"/x\",\n 5 );\nfilters = ();\n",
	    "t.conf:2: ", "'module_path' entry 2 must be a string");
	tc_load_bad("module_path = [ \"\" ];\nfilters = ();\n",
	    "t.conf:1: ", "'module_path' entry 1 is empty");
}

Test(config, bad_module)
{
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   module = \"lib/a\"; }\n);\n",
	    "t.conf:3: ",
	    "filter 'a': module 'lib/a' must be a name, not a "
	    "path");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   module = \"\"; }\n);\n",
	    "t.conf:3: ", "filter 'a': module is empty");
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   module = 1.5; }\n);\n",
	    "t.conf:3: ", "filter 'a': 'module' must be a string, not a float");
}

Test(config, bad_unknown_setting_in_filter)
{
	tc_load_bad("filters = (\n { name = \"a\"; " F_OK_REST "\n"
	            "   placment = \"top\"; }\n);\n",
	    "t.conf:3: ", "filter 'a': unknown setting 'placment'");
}

Test(config, bad_too_many_filters)
{
	char *text = malloc(16384);
	size_t off;
	int i;

	off = (size_t)snprintf(text, 16384, "filters = (\n");
	for (i = 0; i < CFG_MAXFILTERS + 1; i++)
		off += (size_t)snprintf(text + off, 16384 - off,
		    "%s{ name = \"f%d\"; " F_OK_REST " }\n", i > 0 ? "," : "",
		    i);
	snprintf(text + off, 16384 - off, ");\n");
	/* Filter 65 is on line 66. */
	tc_load_bad(text, "t.conf:66: ", "too many filters (65, at most 64)");
	free(text);
}

Test(config, error_buffer_is_optional_and_truncated)
{
	struct cfg_snap *cs = NULL;
	char small[8];

	cr_assert_eq(cfg_load_string("filters = 1;", "t.conf", &cs, NULL, 0),
	    EINVAL);
	cr_assert_eq(cfg_load_string("filters = 1;", "t.conf", &cs, small,
	                 sizeof(small)),
	    EINVAL);
	cr_assert_str_eq(small, "t.conf:");
	cr_assert_eq(cfg_load_string("filters = 1;", NULL, &cs, small,
	                 sizeof(small)),
	    EINVAL);
	cr_assert_str_eq(small, "<string");
	cr_assert_null(cs);
}

/* ---------------------------------------------------------------------
 * Tuples and matching.
 * ------------------------------------------------------------------- */

Test(config, parse_tuple_names_and_numbers)
{
	struct cfg_tuple t;
	char err[256];

	cr_assert_eq(cfg_parse_tuple("inet:stream:tcp", &t, err, sizeof(err)),
	    0);
	cr_assert(t.ct_family == AF_INET && t.ct_type == SOCK_STREAM &&
	          t.ct_proto == IPPROTO_TCP);
	cr_assert_eq(cfg_parse_tuple("2:1:6", &t, err, sizeof(err)), 0);
	cr_assert(t.ct_family == 2 && t.ct_type == 1 && t.ct_proto == 6);
	cr_assert_eq(cfg_parse_tuple("inet6:dgram:udp", &t, err, sizeof(err)),
	    0);
	cr_assert(t.ct_family == AF_INET6 && t.ct_type == SOCK_DGRAM &&
	          t.ct_proto == IPPROTO_UDP);
	cr_assert_eq(cfg_parse_tuple("unix:seqpacket:0", &t, err, sizeof(err)),
	    0);
	cr_assert(t.ct_family == AF_UNIX && t.ct_type == SOCK_SEQPACKET &&
	          t.ct_proto == 0);
	cr_assert_eq(cfg_parse_tuple("local:raw:0", &t, err, sizeof(err)), 0);
	cr_assert(t.ct_family == AF_UNIX && t.ct_type == SOCK_RAW);
	cr_assert_eq(cfg_parse_tuple("inet:2:udp", &t, err, sizeof(err)), 0);
	cr_assert(t.ct_type == SOCK_DGRAM && t.ct_proto == IPPROTO_UDP);
	cr_assert_eq(cfg_parse_tuple("17:3:768", &t, err, sizeof(err)), 0);
	cr_assert(t.ct_family == 17 && t.ct_type == 3 && t.ct_proto == 768);
	cr_assert_eq(cfg_parse_tuple("2:1:006", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.ct_proto, 6);
}

Test(config, parse_tuple_is_strict)
{
	static const char *const bad[] = {"", "inet", "inet:stream",
	    "inet:stream:tcp:1", "inet:stream:", ":stream:tcp", "inet::tcp",
	    "foo:stream:tcp", "inet:bar:tcp", "inet:stream:baz", "0x2:1:6",
	    "-1:1:6", "2:1:6 ", " 2:1:6", "2:1:+6", "2 :1:6", "0:1:6", "2:0:6",
	    "2:16:6", "2:2049:6", "2:1:65536", "2:1:99999999999999999999",
	    "INET:stream:tcp", "inet:Stream:tcp", "2.0:1:6", "2:1:6x", NULL};
	struct cfg_tuple t = {7, 7, 7};
	char err[256];
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		err[0] = '\0';
		cr_assert_eq(cfg_parse_tuple(bad[i], &t, err, sizeof(err)),
		    EINVAL, "'%s' parsed", bad[i]);
		cr_assert(strstr(err, "bad socket tuple") != NULL, "%s: %s",
		    bad[i], err);
		cr_assert(t.ct_family == 7 && t.ct_type == 7 && t.ct_proto == 7,
		    "failed parse changed the tuple");
	}
	cr_assert_eq(cfg_parse_tuple(NULL, &t, NULL, 0), EINVAL);
	cfg_parse_tuple("inet:bogus:tcp", &t, err, sizeof(err));
	cr_assert_str_eq(err, "bad socket tuple 'inet:bogus:tcp': bad type "
	                      "'bogus'");
	cfg_parse_tuple("inet:stream", &t, err, sizeof(err));
	cr_assert_str_eq(err, "bad socket tuple 'inet:stream': expected "
	                      "family:type:protocol");
}

static struct cfg_filter *
tc_filter(const char *tuples)
{
	static struct cfg_filter cf;
	char buf[256], err[256], *tok, *save = NULL;

	memset(&cf, 0, sizeof(cf));
	snprintf(buf, sizeof(buf), "%s", tuples);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save))
		cr_assert_eq(cfg_parse_tuple(tok,
		                 &cf.cf_tuples[cf.cf_ntuples++], err,
		                 sizeof(err)),
		    0, "%s", err);
	return &cf;
}

Test(config, match_protocol_zero_on_either_side)
{
	struct cfg_filter *cf = tc_filter("inet:stream:tcp");

	/* socket() proto 0 is the family's default. */
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, 0));
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, IPPROTO_TCP));
	cr_assert_not(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, 132));
	cr_assert_not(cfg_filter_matches(cf, AF_INET6, SOCK_STREAM, 0));
	cr_assert_not(cfg_filter_matches(cf, AF_INET, SOCK_DGRAM, 0));

	/* Tuple proto 0 matches any protocol. */
	cf = tc_filter("inet:stream:0");
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, 0));
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, IPPROTO_TCP));
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_STREAM, 132));

	cf = tc_filter("inet6:dgram:udp");
	cr_assert(cfg_filter_matches(cf, AF_INET6, SOCK_DGRAM, 0));
	cr_assert(cfg_filter_matches(cf, AF_INET6, SOCK_DGRAM, IPPROTO_UDP));
	cr_assert_not(cfg_filter_matches(cf, AF_INET6, SOCK_DGRAM, 136));

	/* Not inet: the default protocol is 0. */
	cf = tc_filter("unix:stream:0");
	cr_assert(cfg_filter_matches(cf, AF_UNIX, SOCK_STREAM, 0));
	cf = tc_filter("unix:stream:6");
	cr_assert_not(cfg_filter_matches(cf, AF_UNIX, SOCK_STREAM, 0));
	cf = tc_filter("inet:raw:1");
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_RAW, 1));
	cr_assert_not(cfg_filter_matches(cf, AF_INET, SOCK_RAW, 0));
}

Test(config, match_masks_nonblock_and_cloexec)
{
	struct cfg_filter *cf = tc_filter("2:2:0,inet:stream:tcp");

	cr_assert(
	    cfg_filter_matches(cf, AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
	cr_assert(cfg_filter_matches(cf, AF_INET,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP));
	cr_assert(cfg_filter_matches(cf, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC,
	    IPPROTO_UDP));
	cr_assert_not(
	    cfg_filter_matches(cf, AF_INET, SOCK_SEQPACKET | SOCK_NONBLOCK, 0));
}

/* ---------------------------------------------------------------------
 * Placement.  Every filter on inet:stream:tcp unless told otherwise;
 * orders are bottom first.
 * ------------------------------------------------------------------- */

/* One filter per line, "name:hint" (hint may be empty). */
static struct cfg_snap *
tc_stack(const char *spec)
{
	char text[8192], buf[1024], *tok, *save = NULL;
	size_t off;

	off = (size_t)snprintf(text, sizeof(text), "filters = (\n");
	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		char *colon = strchr(tok, ':');

		if (colon != NULL)
			*colon = '\0';
		off += (size_t)snprintf(text + off, sizeof(text) - off,
		    "%s{ name = \"%s\"; attach = \"auto\"; sockets = "
		    "[\"inet:stream:tcp\"];%s%s%s }\n",
		    off > 12 ? "," : "", tok,
		    colon != NULL ? " placement = \"" : "",
		    colon != NULL ? colon + 1 : "", colon != NULL ? "\";" : "");
	}
	snprintf(text + off, sizeof(text) - off, ");\n");
	return tc_load_ok(text);
}

Test(config, order_no_hint_stacks_in_file_order)
{
	struct cfg_snap *cs = tc_stack("a b c");

	cr_assert_str_eq(tc_tcp_order(cs), "a,b,c");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
}

Test(config, order_top)
{
	struct cfg_snap *cs = tc_stack("a:top b c");

	cr_assert_str_eq(tc_tcp_order(cs), "b,c,a");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
	cs = tc_stack("b c a:top");
	cr_assert_str_eq(tc_tcp_order(cs), "b,c,a");
	cfg_rele(cs);
}

Test(config, order_bottom)
{
	struct cfg_snap *cs = tc_stack("a b:bottom c");

	cr_assert_str_eq(tc_tcp_order(cs), "b,a,c");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
}

Test(config, order_before_and_after)
{
	struct cfg_snap *cs = tc_stack("a b:before:a c");

	cr_assert_str_eq(tc_tcp_order(cs), "b,a,c");
	cfg_rele(cs);
	cs = tc_stack("a b c:after:a");
	cr_assert_str_eq(tc_tcp_order(cs), "a,c,b");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
	/* Two after:X in file order: the later one goes directly above X,
	 * under the earlier one. */
	cs = tc_stack("x a:after:x b:after:x");
	cr_assert_str_eq(tc_tcp_order(cs), "x,b,a");
	cfg_rele(cs);
}

Test(config, order_every_hint_together)
{
	struct cfg_snap *cs =
	    tc_stack("f1 f2:top f3:bottom f4:before:f1 f5:after:f1 f6");

	cr_assert_str_eq(tc_tcp_order(cs), "f3,f4,f1,f5,f6,f2");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
}

Test(config, order_hint_on_a_later_filter_waits_for_it)
{
	struct cfg_snap *cs = tc_stack("a:after:c b c");

	cr_assert_str_eq(tc_tcp_order(cs), "b,c,a");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
	cs = tc_stack("a:before:c b c");
	cr_assert_str_eq(tc_tcp_order(cs), "b,a,c");
	cfg_rele(cs);
	/* A chain: a waits for b, which waits for c. */
	cs = tc_stack("a:after:b b:after:c c x");
	cr_assert_str_eq(tc_tcp_order(cs), "c,b,a,x");
	tc_expect_warnings(cs, NULL);
	cfg_rele(cs);
}

Test(config, order_conflict_second_top)
{
	struct cfg_snap *cs = tc_stack("a:top b:top c");

	cr_assert_str_eq(tc_tcp_order(cs), "b,c,a");
	tc_expect_warnings(cs,
	    "t.conf:3: filter 'b': placement 'top' cannot be met for "
	    "inet:stream:tcp (filter 'a' already holds it); placed directly "
	    "below 'a'\n");
	cfg_rele(cs);
}

Test(config, order_conflict_second_bottom)
{
	struct cfg_snap *cs = tc_stack("a:bottom b:bottom c");

	cr_assert_str_eq(tc_tcp_order(cs), "a,b,c");
	tc_expect_warnings(cs,
	    "t.conf:3: filter 'b': placement 'bottom' cannot be met for "
	    "inet:stream:tcp (filter 'a' already holds it); placed directly "
	    "above 'a'\n");
	cfg_rele(cs);
}

Test(config, order_conflict_before_bottom)
{
	struct cfg_snap *cs = tc_stack("x a:bottom b:before:a");

	cr_assert_str_eq(tc_tcp_order(cs), "a,b,x");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'before:a' cannot be met for "
	    "inet:stream:tcp (filter 'a' holds the bottom); placed directly "
	    "above 'a'\n");
	cfg_rele(cs);
}

Test(config, order_conflict_after_top)
{
	struct cfg_snap *cs = tc_stack("a:top x b:after:a");

	cr_assert_str_eq(tc_tcp_order(cs), "x,b,a");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'after:a' cannot be met for "
	    "inet:stream:tcp (filter 'a' holds the top); placed directly "
	    "below 'a'\n");
	cfg_rele(cs);
}

Test(config, order_conflict_unknown_target)
{
	struct cfg_snap *cs = tc_stack("a:top x b:before:zz");

	cr_assert_str_eq(tc_tcp_order(cs), "x,b,a");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'before:zz' cannot be met for "
	    "inet:stream:tcp (there is no filter 'zz'); placed as with no "
	    "hint, directly below 'a'\n");
	cfg_rele(cs);
}

Test(config, order_conflict_prog_target)
{
	struct cfg_snap *cs = tc_load_ok(
	    "filters = (\n"
	    "{ name = \"p\"; attach = \"prog\"; sockets = [\"2:1:6\"]; },\n"
	    "{ name = \"x\"; attach = \"auto\"; sockets = [\"2:1:6\"]; },\n"
	    "{ name = \"b\"; attach = \"auto\"; placement = \"after:p\"; "
	    "sockets = [\"2:1:6\"]; },\n"
	    "{ name = \"y\"; attach = \"auto\"; sockets = [\"2:1:6\"]; }\n"
	    ");\n");

	cr_assert_str_eq(tc_tcp_order(cs), "x,b,y");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'after:p' cannot be met for "
	    "inet:stream:tcp (filter 'p' is programmatic); placed as with no "
	    "hint, at the top\n");
	cfg_rele(cs);
}

Test(config, order_conflict_target_not_for_this_tuple)
{
	struct cfg_snap *cs = tc_load_ok(
	    "filters = (\n"
	    "{ name = \"u\"; attach = \"auto\"; sockets = "
	    "[\"inet:dgram:udp\"]; "
	    "},\n"
	    "{ name = \"x\"; attach = \"auto\"; sockets = [\"2:1:6\", "
	    "\"2:2:17\"]; },\n"
	    "{ name = \"b\"; attach = \"auto\"; placement = \"before:u\";\n"
	    "  sockets = [\"inet:stream:tcp\", \"inet:dgram:udp\"]; }\n"
	    ");\n");

	cr_assert_str_eq(tc_tcp_order(cs), "x,b");
	cr_assert_str_eq(tc_order(cs, AF_INET, SOCK_DGRAM, 0), "b,u,x");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'before:u' cannot be met for "
	    "inet:stream:tcp (filter 'u' is not configured for it); placed as "
	    "with no hint, at the top\n");
	cfg_rele(cs);
}

Test(config, order_conflict_cycle)
{
	struct cfg_snap *cs = tc_stack("x a:after:b b:after:a");

	cr_assert_str_eq(tc_tcp_order(cs), "x,a,b");
	tc_expect_warnings(cs,
	    "t.conf:3: filter 'a': placement 'after:b' cannot be met for "
	    "inet:stream:tcp (placement hints form a cycle); placed as with "
	    "no hint, at the top\n");
	cfg_rele(cs);
	/* A filter waiting on a cycle is placed once the cycle breaks. */
	cs = tc_stack("w:before:b a:before:b b:before:a");
	cr_assert_str_eq(tc_tcp_order(cs), "w,b,a");
	cr_assert(strstr(cs->cs_warnings, "filter 'a'") != NULL);
	cr_assert(strstr(cs->cs_warnings, "filter 'w'") == NULL);
	cfg_rele(cs);
}

Test(config, order_warnings_for_every_concrete_tuple)
{
	/* b and a both want the top of inet:stream:tcp; on inet:stream:0
	 * (any other protocol) only b matches, and inet6 has no conflict. */
	struct cfg_snap *cs = tc_load_ok(
	    "filters = (\n"
	    "{ name = \"a\"; attach = \"auto\"; placement = \"top\";\n"
	    "  sockets = [\"inet:stream:tcp\", \"inet6:stream:tcp\"]; },\n"
	    "{ name = \"b\"; attach = \"auto\"; placement = \"top\";\n"
	    "  sockets = [\"inet:stream:0\"]; }\n"
	    ");\n");

	cr_assert_str_eq(tc_tcp_order(cs), "b,a");
	cr_assert_str_eq(tc_order(cs, AF_INET, SOCK_STREAM, 132), "b");
	cr_assert_str_eq(tc_order(cs, AF_INET6, SOCK_STREAM, 0), "a");
	tc_expect_warnings(cs,
	    "t.conf:4: filter 'b': placement 'top' cannot be met for "
	    "inet:stream:tcp (filter 'a' already holds it); placed directly "
	    "below 'a'\n");
	cfg_rele(cs);
}

Test(config, order_masks_type_and_honours_max)
{
	const struct cfg_filter *out[2];
	struct cfg_snap *cs = tc_stack("a b c");

	cr_assert_str_eq(tc_order(cs, AF_INET,
	                     SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                     IPPROTO_TCP),
	    "a,b,c");
	cr_assert_str_eq(tc_order(cs, AF_INET, SOCK_STREAM, 132), "");
	cr_assert_eq(cfg_auto_order(cs, AF_INET, SOCK_STREAM, 0, out, 2), 2);
	cr_assert_str_eq(out[0]->cf_name, "a");
	cr_assert_str_eq(out[1]->cf_name, "b");
	cfg_rele(cs);
}
