/*
 * fuzz_proto.c: libFuzzer harness for soconfigd's request parser and the
 * configuration editor behind {"cmd":"set"} / {"cmd":"unset"}.
 *
 * The first byte chooses: even, the rest is a request line (parsed, and a
 * valid set/unset is applied to a fixed configuration whose result must
 * parse); odd, the rest is a configuration file that the editor adds a
 * filter to and removes one from (whatever the input, no crash, and an
 * edit of a file that parsed must parse).
 *
 *   build: scripts/test.sh --only fuzz (build-fuzz/, clang -fsanitize=fuzzer)
 *   long run: build-fuzz/tests/fuzz/fuzz_proto -max_total_time=3600 \
 *                 -jobs=2 /tmp/corpus tests/fuzz/corpus/proto
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fz_conf[] =
    "# comment\n"
    "filters = (\n"
    "  { name = \"a\"; attach = \"auto\"; sockets = [ \"2:1:6\" ]; },\n"
    "  { name = \"b\"; attach = \"prog\"; sockets = [ \"2:1:6\" ]; }\n"
    ");\n";

static void
fz_check(const char *text)
{
	struct cfg_snap *cs = NULL;
	char err[256];

	if (cfg_load_string(text, NULL, &cs, err, sizeof(err)) != 0)
		abort(); /* an edit of a good file must stay good */
	cfg_rele(cs);
}

static void
fz_request(const char *line, size_t len)
{
	struct proto_req req;
	char err[256], *out = NULL;

	if (proto_parse(line, len, &req, err, sizeof(err)) != 0)
		return;
	if (req.pr_cmd == PROTO_SET &&
	    ce_add(fz_conf, &req.pr_filter, &out, err, sizeof(err)) == 0)
		fz_check(out);
	else if (req.pr_cmd == PROTO_UNSET &&
	         ce_remove(fz_conf, req.pr_name, &out, err, sizeof(err)) == 0)
		fz_check(out);
	free(out);
}

static void
fz_file(const char *text)
{
	static const struct ce_filter f = {.cf_name = "z",
	    .cf_module = "z",
	    .cf_auto = true,
	    .cf_ntuples = 1,
	    .cf_tuples = {"2:1:6"}};
	struct cfg_snap *cs = NULL;
	char err[256], *out = NULL;
	bool good = cfg_load_string(text, NULL, &cs, err, sizeof(err)) == 0;
	int i;

	if (ce_add(text, &f, &out, err, sizeof(err)) == 0 && good &&
	    cfg_find(cs, "z") == NULL && cs->cs_nfilters < CFG_MAXFILTERS &&
	    strstr(text, "@include") == NULL)
		fz_check(out);
	free(out);
	out = NULL;
	if (good && cs->cs_nfilters > 0 && strstr(text, "@include") == NULL) {
		i = cs->cs_nfilters - 1;
		if (ce_remove(text, cs->cs_filters[i].cf_name, &out, err,
		        sizeof(err)) == 0)
			fz_check(out);
		free(out);
	} else {
		(void)ce_remove(text, "a", &out, err, sizeof(err));
		free(out);
	}
	if (cs != NULL)
		cfg_rele(cs);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text;

	if (size == 0 || size > PROTO_MAXREQ)
		return 0;
	if ((data[0] & 1) == 0) {
		fz_request((const char *)data + 1, size - 1);
		return 0;
	}
	if ((text = malloc(size)) == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	fz_file(text);
	free(text);
	return 0;
}
