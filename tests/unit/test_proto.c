/*
 * test_proto.c: soconfigd's request parser and configuration editor
 * (soconfigd/proto.c, soconfigd/confedit.c).
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static int
parse(const char *s, struct proto_req *req, char *err, size_t len)
{
	return proto_parse(s, strlen(s), req, err, len);
}

Test(proto, commands)
{
	struct proto_req req;
	char err[256];

	cr_assert_eq(parse("{\"cmd\":\"stats\"}", &req, err, sizeof(err)), 0);
	cr_assert_eq(req.pr_cmd, PROTO_STATS);
	cr_assert_eq(parse("{\"cmd\":\"pfiles\",\"pid\":42}", &req, err,
	                 sizeof(err)),
	    0);
	cr_assert_eq(req.pr_pid, 42);
	cr_assert_eq(parse("{\"cmd\":\"unset\",\"name\":\"tcplog\"}", &req, err,
	                 sizeof(err)),
	    0);
	cr_assert_str_eq(req.pr_name, "tcplog");
	cr_assert(proto_is_change(PROTO_UNSET));
	cr_assert_not(proto_is_change(PROTO_STATS));
}

Test(proto, set_filter)
{
	struct proto_req req;
	char err[256];

	cr_assert_eq(parse("{\"cmd\":\"set\",\"filter\":{\"name\":\"t\","
	                   "\"module\":\"tcplog\",\"attach\":\"auto\","
	                   "\"placement\":\"before:x\",\"sockets\":["
	                   "\"inet:stream:tcp\",\"2:1:6\"],\"params\":{"
	                   "\"path\":\"/tmp/a b\",\"n\":3,\"v\":true}}}",
	                 &req, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_str_eq(req.pr_filter.cf_module, "tcplog");
	cr_assert(req.pr_filter.cf_auto);
	cr_assert_eq(req.pr_filter.cf_ntuples, 2);
	cr_assert_eq(req.pr_filter.cf_nparams, 3);
	cr_assert_str_eq(req.pr_filter.cf_vals[1], "3");
	cr_assert_str_eq(req.pr_filter.cf_vals[2], "true");
}

Test(proto, rejects)
{
	static const char *const bad[] = {"", "x", "[]", "{}", "{\"cmd\":1}",
	    "{\"cmd\":\"nope\"}", "{\"cmd\":\"stats\",\"extra\":1}",
	    "{\"cmd\":\"pfiles\"}", "{\"cmd\":\"pfiles\",\"pid\":0}",
	    "{\"cmd\":\"unset\",\"name\":\"a b\"}",
	    "{\"cmd\":\"set\",\"filter\":{\"name\":\"a\",\"attach\":\"auto\","
	    "\"sockets\":[\"inet:stream:sctp\"]}}",
	    "{\"cmd\":\"set\",\"filter\":{\"name\":\"a\",\"attach\":\"prog\","
	    "\"placement\":\"top\",\"sockets\":[\"2:1:6\"]}}",
	    "{\"cmd\":\"set\",\"filter\":{\"name\":\"a\",\"module\":\"../x\","
	    "\"attach\":\"auto\",\"sockets\":[\"2:1:6\"]}}",
	    "{\"cmd\":\"stats\",\"cmd\":\"stats\"}", NULL};
	struct proto_req req;
	char err[256];
	int i;

	for (i = 0; bad[i] != NULL; i++) {
		err[0] = '\0';
		cr_assert_eq(parse(bad[i], &req, err, sizeof(err)), -1, "%s",
		    bad[i]);
		cr_assert_neq(err[0], '\0', "no message for %s", bad[i]);
	}
	/* Not NUL-terminated, and a NUL inside. */
	cr_assert_eq(proto_parse("{\"cmd\":\"stats\"}xyz", 15, &req, err,
	                 sizeof(err)),
	    0);
	cr_assert_eq(proto_parse("{\"cmd\":\"st\0ts\"}", 15, &req, err,
	                 sizeof(err)),
	    -1);
}

static const char conf[] =
    "# head comment\n"
    "module_path = [ \"/m\" ];\n"
    "filters = (\n"
    "  # first\n"
    "  {\n"
    "    name = \"a\"; attach = \"auto\"; sockets = [ \"2:1:6\" ];\n"
    "    params = { s = \"with } and ( inside\"; };\n"
    "  },\n"
    "  /* second */ { name = \"b\"; attach = \"prog\"; sockets = [ "
    "\"2:1:6\" ]; }\n"
    ");\n"
    "other = { filters = 3; }; # tail\n";

static struct cfg_snap *
load(const char *text)
{
	struct cfg_snap *cs = NULL;
	char err[256];

	cr_assert_eq(cfg_load_string(text, NULL, &cs, err, sizeof(err)), 0,
	    "%s\n%s", err, text);
	return cs;
}

Test(confedit, remove_keeps_comments)
{
	struct cfg_snap *cs;
	char *out, err[256];

	cr_assert_eq(ce_remove(conf, "a", &out, err, sizeof(err)), 0, "%s",
	    err);
	cs = load(out);
	cr_assert_eq(cs->cs_nfilters, 1);
	cr_assert_str_eq(cs->cs_filters[0].cf_name, "b");
	cr_assert_not_null(strstr(out, "# head comment"));
	cr_assert_not_null(strstr(out, "/* second */"));
	cr_assert_not_null(strstr(out, "# tail"));
	cfg_rele(cs);
	free(out);
	cr_assert_eq(ce_remove(conf, "b", &out, err, sizeof(err)), 0);
	cs = load(out);
	cr_assert_eq(cs->cs_nfilters, 1);
	cr_assert_str_eq(cs->cs_filters[0].cf_name, "a");
	cfg_rele(cs);
	free(out);
	cr_assert_eq(ce_remove(conf, "zz", &out, err, sizeof(err)), ENOENT);
}

Test(confedit, add)
{
	struct ce_filter f = {.cf_name = "t",
	    .cf_module = "tcplog",
	    .cf_auto = true,
	    .cf_placement = "top",
	    .cf_ntuples = 1,
	    .cf_tuples = {"inet:stream:tcp"},
	    .cf_nparams = 1,
	    .cf_keys = {"path"},
	    .cf_vals = {"/tmp/x \"q\""}};
	struct cfg_snap *cs;
	char *out, *out2, err[256];

	cr_assert_eq(ce_add(conf, &f, &out, err, sizeof(err)), 0, "%s", err);
	cs = load(out);
	cr_assert_eq(cs->cs_nfilters, 3);
	cr_assert_str_eq(cs->cs_filters[2].cf_name, "t");
	cr_assert_eq(cs->cs_filters[2].cf_hint, CFG_HINT_TOP);
	cr_assert_str_eq(cfg_param(&cs->cs_filters[2], "path"), "/tmp/x \"q\"");
	cfg_rele(cs);
	cr_assert_eq(ce_add(out, &f, &out2, err, sizeof(err)), EEXIST);
	free(out);
	/* Empty list, no list at all. */
	cr_assert_eq(ce_add("filters = ();\n", &f, &out, err, sizeof(err)), 0);
	cs = load(out);
	cr_assert_eq(cs->cs_nfilters, 1);
	cfg_rele(cs);
	free(out);
	cr_assert_eq(ce_add("# nothing\n", &f, &out, err, sizeof(err)), 0);
	cs = load(out);
	cr_assert_eq(cs->cs_nfilters, 1);
	cfg_rele(cs);
	/* And back. */
	cr_assert_eq(ce_remove(out, "t", &out2, err, sizeof(err)), 0);
	cs = load(out2);
	cr_assert_eq(cs->cs_nfilters, 0);
	cfg_rele(cs);
	free(out);
	free(out2);
}

Test(confedit, canonical_round_trip)
{
	struct cfg_snap *cs = load(conf), *cs2;
	char *text = ce_canonical(cs);

	cr_assert_not_null(text);
	cs2 = load(text);
	cr_assert_eq(cs2->cs_nfilters, cs->cs_nfilters);
	cr_assert_str_eq(cfg_param(&cs2->cs_filters[0], "s"),
	    "with } and ( inside");
	cr_assert_eq(cs2->cs_filters[1].cf_auto, false);
	cr_assert_str_eq(cs2->cs_modpath[0], "/m");
	cfg_rele(cs);
	cfg_rele(cs2);
	free(text);
}
