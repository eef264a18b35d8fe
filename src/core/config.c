/*
 * config.c: libconfig file -> immutable, refcounted snapshot (struct
 * cfg_snap), tuple matching and the placement of automatic filters.
 *
 * The libconfig tree lives only while a file is parsed; the snapshot owns
 * plain copies of everything, so it can be shared by every socket built
 * from it and released without libconfig.  Every error is one line
 * "FILE:LINE: problem" (LINE 0: the file as a whole, e.g. it cannot be
 * read).
 *
 * Placement of automatic filters (cfg_auto_order)
 * -----------------------------------------------
 * The stack of a new socket is computed from the automatic filters whose
 * tuples match it.  They are taken in configuration order and each one is
 * inserted into an ordered list (bottom = closest to the protocol, top =
 * closest to the application); once inserted, a filter never moves, later
 * insertions only go between, above or below it, so a hint met when its
 * filter was inserted stays met:
 *
 *   top        the very top.  The filter "holds the top"; nothing is ever
 *              inserted above it afterwards.
 *   bottom     the very bottom.  The filter "holds the bottom"; nothing is
 *              ever inserted below it afterwards.
 *   before:X   directly below X (closer to the protocol).
 *   after:X    directly above X (closer to the application).
 *   no hint    at the top, but directly below the filter holding the top.
 *
 * If X of before:X/after:X matches the socket but comes later in the
 * file, the filter waits until X is inserted and is then inserted next to
 * it (waiting filters are released in configuration order, and may
 * release others in turn).  Filters that wait on each other in a cycle
 * are placed, earliest in the file first, as if they had no hint.
 *
 * A hint that cannot be met never drops the filter; it goes to the
 * nearest place:
 *   a second top         directly below the filter holding the top;
 *   a second bottom      directly above the filter holding the bottom;
 *   before:X, X bottom   directly above X;
 *   after:X, X top       directly below X;
 *   before:X/after:X where X is not an automatic filter matching this
 *   socket (unknown, programmatic, other tuples), or a cycle: as with no
 *   hint.
 * At load time the algorithm runs for every concrete tuple of the file
 * (a tuple with protocol 0 also for the family's default protocol) and
 * every unmet hint becomes one line of cs_warnings.
 */
#include <errno.h>
#include <limits.h>
#include <locale.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "core.h"

#define CFG_STRNAME "<string>"

/* A growing text buffer for warnings; cb_oom remembers a failed grow. */
struct cfg_buf {
	char *cb_data;
	size_t cb_len, cb_cap;
	bool cb_oom;
};

/* Parse state: where messages go and what is being built. */
struct cfg_ctx {
	const char *cx_name; /* file name for messages */
	const char *cx_dir;  /* its directory (absolute), NULL for strings */
	char *cx_err;
	size_t cx_errlen;
	struct cfg_snap *cx_snap;
	struct cfg_buf cx_warn; /* becomes cs_warnings */
};

static void cfg_buf_printf(struct cfg_buf *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
cfg_buf_printf(struct cfg_buf *cb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (cb->cb_oom)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (cb->cb_len + (size_t)n + 1 > cb->cb_cap) {
		size_t cap = cb->cb_cap ? cb->cb_cap * 2 : 256;
		char *p;

		while (cap < cb->cb_len + (size_t)n + 1)
			cap *= 2;
		if ((p = realloc(cb->cb_data, cap)) == NULL) {
			cb->cb_oom = true;
			return;
		}
		cb->cb_data = p;
		cb->cb_cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(cb->cb_data + cb->cb_len, cb->cb_cap - cb->cb_len, fmt, ap);
	va_end(ap);
	cb->cb_len += (size_t)n;
}

void
cfg_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* cfg_error(cx, s, fmt, ...): "FILE:LINE: " of setting s, then the text.
 * Returns EINVAL so that callers can "return cfg_error(...)". */
static int cfg_error(struct cfg_ctx *cx, const config_setting_t *s,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
cfg_error(struct cfg_ctx *cx, const config_setting_t *s, const char *fmt, ...)
{
	const char *file = NULL;
	unsigned line = 0;
	va_list ap;
	int n;

	if (cx->cx_err == NULL || cx->cx_errlen == 0)
		return EINVAL;
	if (s != NULL) {
		file = config_setting_source_file(s);
		line = config_setting_source_line(s);
	}
	/* Settings of an @include'd file name their own file. */
	n = snprintf(cx->cx_err, cx->cx_errlen,
	    "%s:%u: ", file != NULL ? file : cx->cx_name, line);
	if (n >= 0 && (size_t)n < cx->cx_errlen) {
		va_start(ap, fmt);
		vsnprintf(cx->cx_err + n, cx->cx_errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return EINVAL;
}

/* ---------------------------------------------------------------------
 * Tuples and matching.
 * ------------------------------------------------------------------- */

struct cfg_word {
	const char *cw_name;
	int cw_val;
};

static const struct cfg_word cfg_families[] = {{"inet", AF_INET},
    {"inet6", AF_INET6}, {"unix", AF_UNIX}, {"local", AF_LOCAL}, {NULL, 0}};
static const struct cfg_word cfg_types[] = {{"stream", SOCK_STREAM},
    {"dgram", SOCK_DGRAM}, {"seqpacket", SOCK_SEQPACKET}, {"raw", SOCK_RAW},
    {NULL, 0}};
static const struct cfg_word cfg_protos[] = {{"tcp", IPPROTO_TCP},
    {"udp", IPPROTO_UDP}, {NULL, 0}};

/* cfg_field(s, len, words, lo, hi, &val): a name of words or a decimal
 * number in [lo, hi]; true if the field parses. */
static bool
cfg_field(const char *s, size_t len, const struct cfg_word *words, long lo,
    long hi, int *valp)
{
	long v = 0;
	size_t i;

	if (len == 0)
		return false;
	if (s[0] >= '0' && s[0] <= '9') {
		for (i = 0; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return false;
			v = v * 10 + (s[i] - '0');
			if (v > hi)
				return false;
		}
		if (v < lo)
			return false;
		*valp = (int)v;
		return true;
	}
	for (; words->cw_name != NULL; words++) {
		if (strlen(words->cw_name) == len &&
		    memcmp(words->cw_name, s, len) == 0) {
			*valp = words->cw_val;
			return true;
		}
	}
	return false;
}

int
cfg_parse_tuple(const char *s, struct cfg_tuple *t, char *err, size_t errlen)
{
	const char *c1, *c2;
	struct cfg_tuple nt;

	if (s == NULL || (c1 = strchr(s, ':')) == NULL ||
	    (c2 = strchr(c1 + 1, ':')) == NULL || strchr(c2 + 1, ':') != NULL) {
		cfg_seterr(err, errlen,
		    "bad socket tuple '%s': expected family:type:protocol",
		    s != NULL ? s : "");
		return EINVAL;
	}
	/* Ranges: a family the headers know, the SOCK_TYPE_MASK bits only
	 * (so no SOCK_NONBLOCK/SOCK_CLOEXEC), a 16-bit protocol (AF_PACKET
	 * protocols are ethertypes). */
	if (!cfg_field(s, (size_t)(c1 - s), cfg_families, 1, AF_MAX - 1,
	        &nt.ct_family)) {
		cfg_seterr(err, errlen,
		    "bad socket tuple '%s': bad family '%.*s'", s,
		    (int)(c1 - s), s);
		return EINVAL;
	}
	if (!cfg_field(c1 + 1, (size_t)(c2 - c1 - 1), cfg_types, 1, 15,
	        &nt.ct_type)) {
		cfg_seterr(err, errlen,
		    "bad socket tuple '%s': bad type '%.*s'", s,
		    (int)(c2 - c1 - 1), c1 + 1);
		return EINVAL;
	}
	if (!cfg_field(c2 + 1, strlen(c2 + 1), cfg_protos, 0, 65535,
	        &nt.ct_proto)) {
		cfg_seterr(err, errlen,
		    "bad socket tuple '%s': bad protocol '%s'", s, c2 + 1);
		return EINVAL;
	}
	*t = nt;
	return 0;
}

/* The protocol socket(family, type, 0) gets on Linux, as far as tuples
 * care: TCP and UDP for the inet families, 0 otherwise. */
static int
cfg_default_proto(int family, int type)
{
	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (type == SOCK_STREAM)
		return IPPROTO_TCP;
	if (type == SOCK_DGRAM)
		return IPPROTO_UDP;
	return 0;
}

/* Match with type already masked and proto already concrete (a literal 0
 * here stands for "a protocol no tuple names": only 0 tuples match). */
static bool
cfg_match_norm(const struct cfg_filter *cf, int family, int type, int proto)
{
	int i;

	for (i = 0; i < cf->cf_ntuples; i++) {
		const struct cfg_tuple *t = &cf->cf_tuples[i];

		if (t->ct_family == family && t->ct_type == type &&
		    (t->ct_proto == 0 || t->ct_proto == proto))
			return true;
	}
	return false;
}

bool
cfg_filter_matches(const struct cfg_filter *cf, int family, int type, int proto)
{
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (proto == 0)
		proto = cfg_default_proto(family, type);
	return cfg_match_norm(cf, family, type, proto);
}

static const char *
cfg_word_name(const struct cfg_word *w, int val)
{
	for (; w->cw_name != NULL; w++)
		if (w->cw_val == val)
			return w->cw_name;
	return NULL;
}

/* "inet:stream:tcp" with names where they exist, numbers otherwise. */
static void
cfg_tuple_str(int family, int type, int proto, char *buf, size_t len)
{
	const char *fn = cfg_word_name(cfg_families, family);
	const char *tn = cfg_word_name(cfg_types, type);
	/* tcp/udp mean something only in the inet families. */
	const char *pn = (family == AF_INET || family == AF_INET6)
	                     ? cfg_word_name(cfg_protos, proto)
	                     : NULL;
	char fb[16], tb[16], pb[16];

	snprintf(fb, sizeof(fb), "%d", family);
	snprintf(tb, sizeof(tb), "%d", type);
	snprintf(pb, sizeof(pb), "%d", proto);
	snprintf(buf, len, "%s:%s:%s", fn != NULL ? fn : fb,
	    tn != NULL ? tn : tb, pn != NULL ? pn : pb);
}

/* ---------------------------------------------------------------------
 * Snapshot lookups.
 * ------------------------------------------------------------------- */

const struct cfg_filter *
cfg_find(const struct cfg_snap *cs, const char *name)
{
	int i;

	if (cs == NULL || name == NULL)
		return NULL;
	for (i = 0; i < cs->cs_nfilters; i++)
		if (strcmp(cs->cs_filters[i].cf_name, name) == 0)
			return &cs->cs_filters[i];
	return NULL;
}

static int
cfg_index(const struct cfg_snap *cs, const char *name)
{
	const struct cfg_filter *cf = cfg_find(cs, name);

	return cf != NULL ? (int)(cf - cs->cs_filters) : -1;
}

const struct cfg_filter *
cfg_prog_filter(const struct cfg_snap *cs, const char *name, int family,
    int type, int proto)
{
	const struct cfg_filter *cf = cfg_find(cs, name);

	if (cf == NULL || cf->cf_auto ||
	    !cfg_filter_matches(cf, family, type, proto))
		return NULL;
	return cf;
}

bool
cfg_has_prog(const struct cfg_snap *cs, int family, int type, int proto)
{
	int i;

	if (cs == NULL)
		return false;
	for (i = 0; i < cs->cs_nfilters; i++)
		if (!cs->cs_filters[i].cf_auto &&
		    cfg_filter_matches(&cs->cs_filters[i], family, type, proto))
			return true;
	return false;
}

const char *
cfg_param(const struct cfg_filter *cf, const char *key)
{
	int i;

	if (cf == NULL || key == NULL)
		return NULL;
	for (i = 0; i < cf->cf_nparams; i++)
		if (strcmp(cf->cf_params[i].cp_key, key) == 0)
			return cf->cf_params[i].cp_val;
	return NULL;
}

/* ---------------------------------------------------------------------
 * Placement (the algorithm is described at the top of this file).
 * ------------------------------------------------------------------- */

/* One run of the algorithm for one concrete socket tuple.  Arrays are
 * indexed by filter index in cs_filters, except co_list. */
struct cfg_ord {
	const struct cfg_snap *co_cs;
	int co_family, co_type, co_proto;
	struct cfg_buf *co_warn;     /* NULL: do not explain */
	int co_list[CFG_MAXFILTERS]; /* placed filters, bottom first */
	int co_n;
	int co_top, co_bottom;        /* holder of the hint, or -1 */
	int co_wait[CFG_MAXFILTERS];  /* filter it waits for, or -1 */
	bool co_cand[CFG_MAXFILTERS]; /* automatic and matching */
	bool co_placed[CFG_MAXFILTERS];
};

static int
cfg_ord_pos(const struct cfg_ord *co, int fi)
{
	int i;

	for (i = 0; i < co->co_n; i++)
		if (co->co_list[i] == fi)
			return i;
	return co->co_n; /* not reached: callers ask for placed filters */
}

static void
cfg_ord_insert(struct cfg_ord *co, int fi, int pos)
{
	memmove(&co->co_list[pos + 1], &co->co_list[pos],
	    (size_t)(co->co_n - pos) * sizeof(co->co_list[0]));
	co->co_list[pos] = fi;
	co->co_n++;
	co->co_placed[fi] = true;
}

const char *
cfg_hint_str(const struct cfg_filter *cf, char *buf, size_t len)
{
	switch (cf->cf_hint) {
	case CFG_HINT_TOP:
		return "top";
	case CFG_HINT_BOTTOM:
		return "bottom";
	case CFG_HINT_BEFORE:
		snprintf(buf, len, "before:%s", cf->cf_hint_arg);
		return buf;
	case CFG_HINT_AFTER:
		snprintf(buf, len, "after:%s", cf->cf_hint_arg);
		return buf;
	case CFG_HINT_NONE:
		break;
	}
	return NULL;
}

/* One warning line: why filter fi's hint failed and where it went. */
static void
cfg_ord_warn(struct cfg_ord *co, int fi, const char *why, const char *where,
    const char *who)
{
	const struct cfg_filter *cf = &co->co_cs->cs_filters[fi];
	char hb[FILNAME_MAX + 8], tb[64];
	const char *hint;

	if (co->co_warn == NULL)
		return;
	if ((hint = cfg_hint_str(cf, hb, sizeof(hb))) == NULL)
		hint = "none";
	cfg_tuple_str(co->co_family, co->co_type, co->co_proto, tb, sizeof(tb));
	cfg_buf_printf(co->co_warn,
	    "%s:%d: filter '%s': placement '%s' cannot be met for %s (%s); "
	    "placed %s",
	    co->co_cs->cs_path, cf->cf_line, cf->cf_name, hint, tb, why, where);
	if (who != NULL)
		cfg_buf_printf(co->co_warn, " '%s'", who);
	cfg_buf_printf(co->co_warn, "\n");
}

static void cfg_ord_place(struct cfg_ord *co, int fi, bool cycle);

/* Filters waiting for fi, in configuration order, now that fi is in. */
static void
cfg_ord_release(struct cfg_ord *co, int fi)
{
	int i;

	for (i = 0; i < co->co_cs->cs_nfilters; i++)
		if (co->co_cand[i] && !co->co_placed[i] && co->co_wait[i] == fi)
			cfg_ord_place(co, i, false);
}

/* Place as with no hint; why != NULL explains an unmet hint. */
static void
cfg_ord_place_none(struct cfg_ord *co, int fi, const char *why)
{
	const struct cfg_filter *fs = co->co_cs->cs_filters;

	if (co->co_top >= 0) {
		if (why != NULL)
			cfg_ord_warn(co, fi, why,
			    "as with no hint, directly below",
			    fs[co->co_top].cf_name);
		cfg_ord_insert(co, fi, cfg_ord_pos(co, co->co_top));
	} else {
		if (why != NULL)
			cfg_ord_warn(co, fi, why, "as with no hint, at the top",
			    NULL);
		cfg_ord_insert(co, fi, co->co_n);
	}
}

static void
cfg_ord_place(struct cfg_ord *co, int fi, bool cycle)
{
	const struct cfg_snap *cs = co->co_cs;
	const struct cfg_filter *cf = &cs->cs_filters[fi];
	char why[FILNAME_MAX + 64];
	int x;

	if (cycle) {
		cfg_ord_place_none(co, fi, "placement hints form a cycle");
		goto out;
	}
	switch (cf->cf_hint) {
	case CFG_HINT_TOP:
		if (co->co_top < 0) {
			co->co_top = fi;
			cfg_ord_insert(co, fi, co->co_n);
		} else {
			snprintf(why, sizeof(why),
			    "filter '%s' already holds it",
			    cs->cs_filters[co->co_top].cf_name);
			cfg_ord_warn(co, fi, why, "directly below",
			    cs->cs_filters[co->co_top].cf_name);
			cfg_ord_insert(co, fi, cfg_ord_pos(co, co->co_top));
		}
		break;
	case CFG_HINT_BOTTOM:
		if (co->co_bottom < 0) {
			co->co_bottom = fi;
			cfg_ord_insert(co, fi, 0);
		} else {
			snprintf(why, sizeof(why),
			    "filter '%s' already holds it",
			    cs->cs_filters[co->co_bottom].cf_name);
			cfg_ord_warn(co, fi, why, "directly above",
			    cs->cs_filters[co->co_bottom].cf_name);
			cfg_ord_insert(co, fi,
			    cfg_ord_pos(co, co->co_bottom) + 1);
		}
		break;
	case CFG_HINT_BEFORE:
	case CFG_HINT_AFTER:
		x = cfg_index(cs, cf->cf_hint_arg);
		if (x < 0 || !co->co_cand[x]) {
			if (x < 0)
				snprintf(why, sizeof(why),
				    "there is no filter '%s'", cf->cf_hint_arg);
			else if (!cs->cs_filters[x].cf_auto)
				snprintf(why, sizeof(why),
				    "filter '%s' is programmatic",
				    cf->cf_hint_arg);
			else
				snprintf(why, sizeof(why),
				    "filter '%s' is not configured for it",
				    cf->cf_hint_arg);
			cfg_ord_place_none(co, fi, why);
		} else if (cf->cf_hint == CFG_HINT_BEFORE &&
		           x == co->co_bottom) {
			snprintf(why, sizeof(why),
			    "filter '%s' holds the bottom", cf->cf_hint_arg);
			cfg_ord_warn(co, fi, why, "directly above",
			    cf->cf_hint_arg);
			cfg_ord_insert(co, fi, cfg_ord_pos(co, x) + 1);
		} else if (cf->cf_hint == CFG_HINT_AFTER && x == co->co_top) {
			snprintf(why, sizeof(why), "filter '%s' holds the top",
			    cf->cf_hint_arg);
			cfg_ord_warn(co, fi, why, "directly below",
			    cf->cf_hint_arg);
			cfg_ord_insert(co, fi, cfg_ord_pos(co, x));
		} else {
			cfg_ord_insert(co, fi,
			    cfg_ord_pos(co, x) +
			        (cf->cf_hint == CFG_HINT_AFTER ? 1 : 0));
		}
		break;
	case CFG_HINT_NONE:
		cfg_ord_place_none(co, fi, NULL);
		break;
	}
out:
	cfg_ord_release(co, fi);
}

/* Run the algorithm for a concrete tuple (type masked, proto not 0 unless
 * meant literally); the result is in co->co_list. */
static void
cfg_ord_run(struct cfg_ord *co, const struct cfg_snap *cs, int family, int type,
    int proto, struct cfg_buf *warn)
{
	int n = cs->cs_nfilters, i, x;

	co->co_cs = cs;
	co->co_family = family;
	co->co_type = type;
	co->co_proto = proto;
	co->co_warn = warn;
	co->co_n = 0;
	co->co_top = co->co_bottom = -1;
	for (i = 0; i < n; i++) {
		const struct cfg_filter *cf = &cs->cs_filters[i];

		co->co_cand[i] =
		    cf->cf_auto && cfg_match_norm(cf, family, type, proto);
		co->co_placed[i] = false;
		co->co_wait[i] = -1;
	}
	for (i = 0; i < n; i++) {
		const struct cfg_filter *cf = &cs->cs_filters[i];

		if (!co->co_cand[i] || co->co_placed[i])
			continue;
		if (cf->cf_hint == CFG_HINT_BEFORE ||
		    cf->cf_hint == CFG_HINT_AFTER) {
			x = cfg_index(cs, cf->cf_hint_arg);
			if (x >= 0 && co->co_cand[x] && !co->co_placed[x]) {
				co->co_wait[i] = x; /* X comes later */
				continue;
			}
		}
		cfg_ord_place(co, i, false);
	}
	/* What still waits sits on (or behind) a cycle of waits: break the
	 * cycle at its member earliest in the file. */
	for (i = 0; i < n; i++) {
		bool seen[CFG_MAXFILTERS] = {false};
		int k, m, c;

		if (!co->co_cand[i] || co->co_placed[i])
			continue;
		for (k = i; !seen[k]; k = co->co_wait[k])
			seen[k] = true;
		m = k;
		for (c = co->co_wait[k]; c != k; c = co->co_wait[c])
			if (c < m)
				m = c;
		cfg_ord_place(co, m, true);
		i = -1; /* releases may have placed others: rescan */
	}
}

int
cfg_auto_order(const struct cfg_snap *cs, int family, int type, int proto,
    const struct cfg_filter **out, int max)
{
	struct cfg_ord co;
	int i;

	if (cs == NULL || cs->cs_nfilters == 0 || max <= 0)
		return 0;
	type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (proto == 0)
		proto = cfg_default_proto(family, type);
	cfg_ord_run(&co, cs, family, type, proto, NULL);
	for (i = 0; i < co.co_n && i < max; i++)
		out[i] = &cs->cs_filters[co.co_list[i]];
	return i;
}

/* Every concrete tuple of the file, in order of first mention, each run
 * once to collect the unmet hints. */
static int
cfg_warnings(const struct cfg_snap *cs, struct cfg_buf *cb)
{
	struct cfg_tuple *runs;
	struct cfg_ord co;
	int nruns = 0, i, j, k, r;

	runs = malloc(sizeof(*runs) * 2 * CFG_MAXTUPLES *
	              (size_t)(cs->cs_nfilters > 0 ? cs->cs_nfilters : 1));
	if (runs == NULL)
		return ENOMEM;
	for (i = 0; i < cs->cs_nfilters; i++) {
		const struct cfg_filter *cf = &cs->cs_filters[i];

		for (j = 0; j < cf->cf_ntuples; j++) {
			struct cfg_tuple t[2] = {cf->cf_tuples[j],
			    cf->cf_tuples[j]};
			int nt = 1;

			/* Protocol 0: "any other protocol" and the default
			 * one, which 0 in socket() means. */
			if (t[0].ct_proto == 0) {
				t[1].ct_proto =
				    cfg_default_proto(t[0].ct_family,
				        t[0].ct_type);
				if (t[1].ct_proto != 0)
					nt = 2;
			}
			for (k = 0; k < nt; k++) {
				for (r = 0; r < nruns; r++)
					if (memcmp(&runs[r], &t[k],
					        sizeof(t[k])) == 0)
						break;
				if (r == nruns)
					runs[nruns++] = t[k];
			}
		}
	}
	for (r = 0; r < nruns; r++)
		cfg_ord_run(&co, cs, runs[r].ct_family, runs[r].ct_type,
		    runs[r].ct_proto, cb);
	free(runs);
	return cb->cb_oom ? ENOMEM : 0;
}

/* ---------------------------------------------------------------------
 * Snapshot lifetime.
 * ------------------------------------------------------------------- */

static void
cfg_free(struct cfg_snap *cs)
{
	int i, j;

	if (cs == NULL)
		return;
	for (i = 0; cs->cs_filters != NULL && i < cs->cs_nfilters; i++) {
		struct cfg_filter *cf = &cs->cs_filters[i];

		free(cf->cf_module);
		for (j = 0; j < cf->cf_nparams; j++) {
			free(cf->cf_params[j].cp_key);
			free(cf->cf_params[j].cp_val);
		}
		free(cf->cf_params);
	}
	free(cs->cs_filters);
	for (i = 0; i < cs->cs_nmodpath; i++)
		free(cs->cs_modpath[i]);
	free(cs->cs_modpath);
	free(cs->cs_warnings);
	free(cs->cs_path);
	free(cs);
}

/* Handed out when even an empty snapshot cannot be allocated, so that
 * callers never see NULL; cfg_rele never frees it. */
static char cfg_empty_path[] = "<empty>";
static struct cfg_snap cfg_static_empty = {.cs_refs = INT_MAX / 2,
    .cs_path = cfg_empty_path};

struct cfg_snap *
cfg_empty(void)
{
	struct cfg_snap *cs = calloc(1, sizeof(*cs));

	if (cs == NULL || (cs->cs_path = strdup("<empty>")) == NULL) {
		free(cs);
		return &cfg_static_empty;
	}
	atomic_init(&cs->cs_refs, 1);
	return cs;
}

void
cfg_hold(struct cfg_snap *cs)
{
	if (cs != NULL)
		atomic_fetch_add_explicit(&cs->cs_refs, 1,
		    memory_order_relaxed);
}

void
cfg_rele(struct cfg_snap *cs)
{
	if (cs == NULL || cs == &cfg_static_empty)
		return;
	if (atomic_fetch_sub_explicit(&cs->cs_refs, 1, memory_order_acq_rel) ==
	    1)
		cfg_free(cs);
}

/* ---------------------------------------------------------------------
 * Parsing.
 * ------------------------------------------------------------------- */

static const char *
cfg_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	}
	return "unknown";
}

/* A copy of a scalar as text; NULL if out of memory. */
static char *
cfg_scalar_text(const config_setting_t *s)
{
	char buf[64];

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_STRING:
		return strdup(config_setting_get_string(s));
	case CONFIG_TYPE_INT:
		snprintf(buf, sizeof(buf), "%d", config_setting_get_int(s));
		break;
	case CONFIG_TYPE_INT64:
		snprintf(buf, sizeof(buf), "%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT: {
		double d = config_setting_get_float(s);

		/* Shortest text that reads back as the same double. */
		snprintf(buf, sizeof(buf), "%.15g", d);
		if (strtod(buf, NULL) != d)
			snprintf(buf, sizeof(buf), "%.17g", d);
		break;
	}
	case CONFIG_TYPE_BOOL:
		snprintf(buf, sizeof(buf), "%s",
		    config_setting_get_bool(s) ? "true" : "false");
		break;
	default:
		return NULL;
	}
	return strdup(buf);
}

/* A string setting; false (and an error) for another type. */
static bool
cfg_get_string(struct cfg_ctx *cx, const config_setting_t *s, const char *what,
    const char *label, const char **valp, int *errorp)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		*errorp = cfg_error(cx, s, "%s: '%s' must be a string, not %s",
		    label, what, cfg_type_name(config_setting_type(s)));
		return false;
	}
	*valp = config_setting_get_string(s);
	return true;
}

static int
cfg_parse_placement(struct cfg_ctx *cx, const config_setting_t *s,
    struct cfg_filter *cf, const char *word)
{
	const char *arg = NULL;

	if (strcmp(word, "top") == 0) {
		cf->cf_hint = CFG_HINT_TOP;
		return 0;
	}
	if (strcmp(word, "bottom") == 0) {
		cf->cf_hint = CFG_HINT_BOTTOM;
		return 0;
	}
	if (strncmp(word, "before:", 7) == 0) {
		cf->cf_hint = CFG_HINT_BEFORE;
		arg = word + 7;
	} else if (strncmp(word, "after:", 6) == 0) {
		cf->cf_hint = CFG_HINT_AFTER;
		arg = word + 6;
	} else {
		return cfg_error(cx, s,
		    "filter '%s': bad placement '%s' (expected top, bottom, "
		    "before:NAME or after:NAME)",
		    cf->cf_name, word);
	}
	if (*arg == '\0' || strlen(arg) > FILNAME_MAX - 1)
		return cfg_error(cx, s,
		    "filter '%s': bad placement '%s' (NAME must be 1 to %d "
		    "bytes)",
		    cf->cf_name, word, FILNAME_MAX - 1);
	if (strcmp(arg, cf->cf_name) == 0)
		return cfg_error(cx, s,
		    "filter '%s': placement '%s' names the filter itself",
		    cf->cf_name, word);
	memcpy(cf->cf_hint_arg, arg, strlen(arg) + 1);
	return 0;
}

static int
cfg_parse_sockets(struct cfg_ctx *cx, const config_setting_t *s,
    struct cfg_filter *cf)
{
	char msg[256];
	int n, i;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return cfg_error(cx, s,
		    "filter '%s': 'sockets' must be a list of "
		    "\"family:type:protocol\" strings, not %s",
		    cf->cf_name, cfg_type_name(config_setting_type(s)));
	n = config_setting_length(s);
	if (n == 0)
		return cfg_error(cx, s,
		    "filter '%s': 'sockets' is empty (no socket tuples)",
		    cf->cf_name);
	if (n > CFG_MAXTUPLES)
		return cfg_error(cx, s,
		    "filter '%s': too many socket tuples (%d, at most %d)",
		    cf->cf_name, n, CFG_MAXTUPLES);
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return cfg_error(cx, e,
			    "filter '%s': socket tuple %d must be a string, "
			    "not %s",
			    cf->cf_name, i + 1,
			    cfg_type_name(config_setting_type(e)));
		if (cfg_parse_tuple(config_setting_get_string(e),
		        &cf->cf_tuples[i], msg, sizeof(msg)) != 0)
			return cfg_error(cx, e, "filter '%s': %s", cf->cf_name,
			    msg);
	}
	cf->cf_ntuples = n;
	return 0;
}

static int
cfg_parse_params(struct cfg_ctx *cx, const config_setting_t *s,
    struct cfg_filter *cf)
{
	int n, i;

	if (!config_setting_is_group(s))
		return cfg_error(cx, s,
		    "filter '%s': 'params' must be a group { key = value; ... "
		    "}, not %s",
		    cf->cf_name, cfg_type_name(config_setting_type(s)));
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	if ((cf->cf_params = calloc((size_t)n, sizeof(*cf->cf_params))) == NULL)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned)i);
		struct cfg_param *cp = &cf->cf_params[i];

		if (!config_setting_is_scalar(e))
			return cfg_error(cx, e,
			    "filter '%s': param '%s' must be a string, number "
			    "or boolean, not %s",
			    cf->cf_name, config_setting_name(e),
			    cfg_type_name(config_setting_type(e)));
		if ((cp->cp_key = strdup(config_setting_name(e))) == NULL ||
		    (cp->cp_val = cfg_scalar_text(e)) == NULL) {
			free(cp->cp_key);
			cp->cp_key = NULL;
			return ENOMEM;
		}
		cf->cf_nparams = i + 1;
	}
	return 0;
}

static const char *const cfg_filter_keys[] = {"name", "module", "attach",
    "placement", "sockets", "params", NULL};

static int
cfg_parse_filter(struct cfg_ctx *cx, const config_setting_t *g, int idx,
    struct cfg_filter *cf)
{
	const config_setting_t *s;
	char label[FILNAME_MAX + 16];
	const char *v;
	int error = 0, i, n;

	cf->cf_line = (int)config_setting_source_line(g);
	if (!config_setting_is_group(g))
		return cfg_error(cx, g,
		    "filter %d: must be a group { name = ...; }, not %s",
		    idx + 1, cfg_type_name(config_setting_type(g)));

	if ((s = config_setting_get_member(g, "name")) == NULL)
		return cfg_error(cx, g, "filter %d: missing setting 'name'",
		    idx + 1);
	snprintf(label, sizeof(label), "filter %d", idx + 1);
	if (!cfg_get_string(cx, s, "name", label, &v, &error))
		return error;
	if (*v == '\0')
		return cfg_error(cx, s, "filter %d: name is empty", idx + 1);
	if (strlen(v) > FILNAME_MAX - 1)
		return cfg_error(cx, s,
		    "filter name '%s' is too long (%zu bytes, at most %d)", v,
		    strlen(v), FILNAME_MAX - 1);
	memcpy(cf->cf_name, v, strlen(v) + 1);
	snprintf(label, sizeof(label), "filter '%s'", cf->cf_name);

	/* Typo protection: a misspelt optional setting would otherwise be
	 * silently ignored. */
	n = config_setting_length(g);
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(g, (unsigned)i);
		const char *const *k;

		for (k = cfg_filter_keys; *k != NULL; k++)
			if (strcmp(*k, config_setting_name(e)) == 0)
				break;
		if (*k == NULL)
			return cfg_error(cx, e,
			    "filter '%s': unknown setting '%s' (expected name, "
			    "module, attach, placement, sockets, params)",
			    cf->cf_name, config_setting_name(e));
	}

	if ((s = config_setting_get_member(g, "module")) != NULL) {
		if (!cfg_get_string(cx, s, "module", label, &v, &error))
			return error;
		if (*v == '\0')
			return cfg_error(cx, s, "filter '%s': module is empty",
			    cf->cf_name);
		if (strchr(v, '/') != NULL)
			return cfg_error(cx, s,
			    "filter '%s': module '%s' must be a name, not a "
			    "path (MODULE.so is searched on module_path)",
			    cf->cf_name, v);
	} else {
		v = cf->cf_name;
	}
	if ((cf->cf_module = strdup(v)) == NULL)
		return ENOMEM;

	if ((s = config_setting_get_member(g, "attach")) == NULL)
		return cfg_error(cx, g,
		    "filter '%s': missing setting 'attach' (\"auto\" or "
		    "\"prog\")",
		    cf->cf_name);
	if (!cfg_get_string(cx, s, "attach", label, &v, &error))
		return error;
	if (strcmp(v, "auto") == 0)
		cf->cf_auto = true;
	else if (strcmp(v, "prog") == 0)
		cf->cf_auto = false;
	else
		return cfg_error(cx, s,
		    "filter '%s': attach must be \"auto\" or \"prog\", not "
		    "\"%s\"",
		    cf->cf_name, v);

	if ((s = config_setting_get_member(g, "placement")) != NULL) {
		if (!cfg_get_string(cx, s, "placement", label, &v, &error))
			return error;
		if (!cf->cf_auto)
			return cfg_error(cx, s,
			    "filter '%s': placement '%s' given for a "
			    "programmatic filter (only attach = \"auto\" takes "
			    "one)",
			    cf->cf_name, v);
		if ((error = cfg_parse_placement(cx, s, cf, v)) != 0)
			return error;
	}

	if ((s = config_setting_get_member(g, "sockets")) == NULL)
		return cfg_error(cx, g,
		    "filter '%s': missing setting 'sockets' (socket tuples)",
		    cf->cf_name);
	if ((error = cfg_parse_sockets(cx, s, cf)) != 0)
		return error;

	if ((s = config_setting_get_member(g, "params")) != NULL &&
	    (error = cfg_parse_params(cx, s, cf)) != 0)
		return error;
	return 0;
}

static int
cfg_parse_modpath(struct cfg_ctx *cx, const config_setting_t *s)
{
	struct cfg_snap *cs = cx->cx_snap;
	const char *v;
	int n, i;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return cfg_error(cx, s,
		    "'module_path' must be a list of directory strings, not %s",
		    cfg_type_name(config_setting_type(s)));
	n = config_setting_length(s);
	if (n == 0)
		return 0;
	if ((cs->cs_modpath = calloc((size_t)n, sizeof(char *))) == NULL)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		const config_setting_t *e =
		    config_setting_get_elem(s, (unsigned)i);

		if (config_setting_type(e) != CONFIG_TYPE_STRING)
			return cfg_error(cx, e,
			    "'module_path' entry %d must be a string, not %s",
			    i + 1, cfg_type_name(config_setting_type(e)));
		v = config_setting_get_string(e);
		if (*v == '\0')
			return cfg_error(cx, e,
			    "'module_path' entry %d is empty", i + 1);
		/* Relative directories are relative to the file, as
		 * @include is: never to the host program's cwd. */
		if (*v != '/' && cx->cx_dir != NULL) {
			if (asprintf(&cs->cs_modpath[i], "%s/%s", cx->cx_dir,
			        v) < 0)
				cs->cs_modpath[i] = NULL;
		} else {
			cs->cs_modpath[i] = strdup(v);
		}
		if (cs->cs_modpath[i] == NULL)
			return ENOMEM;
		cs->cs_nmodpath = i + 1;
	}
	return 0;
}

/* The whole tree into cx->cx_snap. */
static int
cfg_parse_root(struct cfg_ctx *cx, const config_t *cfg)
{
	const config_setting_t *root = config_root_setting(cfg);
	const config_setting_t *s;
	struct cfg_snap *cs = cx->cx_snap;
	int error, n, i, j;

	/* Unknown top-level settings are only warned about: other tools may
	 * keep their own settings in the same file. */
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		s = config_setting_get_elem(root, (unsigned)i);
		if (strcmp(config_setting_name(s), "filters") != 0 &&
		    strcmp(config_setting_name(s), "module_path") != 0) {
			const char *f = config_setting_source_file(s);

			cfg_buf_printf(&cx->cx_warn,
			    "%s:%u: unknown setting '%s' ignored (expected "
			    "module_path, filters)\n",
			    f != NULL ? f : cx->cx_name,
			    config_setting_source_line(s),
			    config_setting_name(s));
		}
	}
	if ((s = config_setting_get_member(root, "module_path")) != NULL &&
	    (error = cfg_parse_modpath(cx, s)) != 0)
		return error;

	if ((s = config_setting_get_member(root, "filters")) == NULL)
		return cfg_error(cx, NULL,
		    "missing setting 'filters' (a list of filter groups, "
		    "may be empty)");
	if (!config_setting_is_list(s) &&
	    !(config_setting_is_array(s) && config_setting_length(s) == 0))
		return cfg_error(cx, s,
		    "'filters' must be a list ( { ... }, ... ), not %s",
		    cfg_type_name(config_setting_type(s)));
	n = config_setting_length(s);
	if (n > CFG_MAXFILTERS)
		return cfg_error(cx, config_setting_get_elem(s, CFG_MAXFILTERS),
		    "too many filters (%d, at most %d)", n, CFG_MAXFILTERS);
	if (n > 0 && (cs->cs_filters = calloc((size_t)n,
	                  sizeof(*cs->cs_filters))) == NULL)
		return ENOMEM;
	for (i = 0; i < n; i++) {
		const config_setting_t *g =
		    config_setting_get_elem(s, (unsigned)i);
		struct cfg_filter *cf = &cs->cs_filters[i];

		/* Counted first so that cfg_free() sees partial copies. */
		cs->cs_nfilters = i + 1;
		if ((error = cfg_parse_filter(cx, g, i, cf)) != 0)
			return error;
		for (j = 0; j < i; j++)
			if (strcmp(cs->cs_filters[j].cf_name, cf->cf_name) == 0)
				return cfg_error(cx,
				    config_setting_get_member(g, "name"),
				    "duplicate filter name '%s' (first defined "
				    "at line %d)",
				    cf->cf_name, cs->cs_filters[j].cf_line);
	}
	return 0;
}

/* Common tail of both loaders: cfg holds a parsed tree (or a parse
 * error when ok is false). */
static int
cfg_build(config_t *cfg, bool ok, const char *name, const char *dir,
    struct cfg_snap **snapp, char *err, size_t errlen)
{
	struct cfg_ctx cx = {name, dir, err, errlen, NULL, {NULL, 0, 0, false}};
	struct cfg_snap *cs;
	int error;

	if (!ok) {
		const char *file = config_error_file(cfg);

		cfg_seterr(err, errlen, "%s:%d: %s", file != NULL ? file : name,
		    config_error_line(cfg),
		    config_error_text(cfg) != NULL ? config_error_text(cfg)
		                                   : "parse error");
		return EINVAL;
	}
	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		return ENOMEM;
	atomic_init(&cs->cs_refs, 1);
	cx.cx_snap = cs;
	if ((cs->cs_path = strdup(name)) == NULL)
		error = ENOMEM;
	else if ((error = cfg_parse_root(&cx, cfg)) == 0)
		error = cfg_warnings(cs, &cx.cx_warn);
	if (error == 0 && cx.cx_warn.cb_oom)
		error = ENOMEM;
	if (error == ENOMEM)
		cfg_seterr(err, errlen, "%s:0: out of memory", name);
	if (error != 0) {
		free(cx.cx_warn.cb_data);
		cfg_free(cs);
		return error;
	}
	cs->cs_warnings = cx.cx_warn.cb_data;
	*snapp = cs;
	return 0;
}

/* libconfig reads numbers with the C library: keep a host program's
 * LC_NUMERIC (a decimal comma) from changing what a file means. */
static locale_t
cfg_c_locale(locale_t *oldp)
{
	locale_t c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);

	*oldp = c != (locale_t)0 ? uselocale(c) : (locale_t)0;
	return c;
}

static void
cfg_restore_locale(locale_t c, locale_t old)
{
	if (c != (locale_t)0) {
		uselocale(old);
		freelocale(c);
	}
}

int
cfg_load_string(const char *text, const char *name, struct cfg_snap **snapp,
    char *err, size_t errlen)
{
	config_t cfg;
	locale_t c, old;
	int error;
	bool ok;

	if (name == NULL)
		name = CFG_STRNAME;
	if (text == NULL || snapp == NULL) {
		cfg_seterr(err, errlen, "%s:0: no configuration text", name);
		return EINVAL;
	}
	c = cfg_c_locale(&old);
	config_init(&cfg);
	ok = config_read_string(&cfg, text) == CONFIG_TRUE;
	error = cfg_build(&cfg, ok, name, NULL, snapp, err, errlen);
	config_destroy(&cfg);
	cfg_restore_locale(c, old);
	return error;
}

int
cfg_load_file(const char *path, struct cfg_snap **snapp, char *err,
    size_t errlen)
{
	config_t cfg;
	locale_t c, old;
	FILE *fp;
	char *dir, *slash, *absdir;
	int error;
	bool ok;

	if (path == NULL || snapp == NULL) {
		cfg_seterr(err, errlen, "(null):0: no configuration file");
		return EINVAL;
	}
	/* Open once ourselves: libconfig reports only "file I/O error". */
	if ((fp = fopen(path, "re")) == NULL) {
		error = errno;
		cfg_seterr(err, errlen, "%s:0: cannot open: %s", path,
		    strerror(error));
		return error;
	}
	fclose(fp);
	/* @include "x.conf" is relative to the including file. */
	if ((dir = strdup(path)) == NULL) {
		cfg_seterr(err, errlen, "%s:0: out of memory", path);
		return ENOMEM;
	}
	if ((slash = strrchr(dir, '/')) != NULL)
		slash[slash == dir ? 1 : 0] = '\0';
	else
		strcpy(dir, ".");
	absdir = realpath(dir, NULL);
	c = cfg_c_locale(&old);
	config_init(&cfg);
	config_set_include_dir(&cfg, absdir != NULL ? absdir : dir);
	ok = config_read_file(&cfg, path) == CONFIG_TRUE;
	if (!ok && config_error_type(&cfg) == CONFIG_ERR_FILE_IO) {
		/* Vanished or unreadable between fopen and here. */
		cfg_seterr(err, errlen, "%s:0: cannot read", path);
		error = EIO;
	} else {
		error = cfg_build(&cfg, ok, path, absdir != NULL ? absdir : dir,
		    snapp, err, errlen);
	}
	config_destroy(&cfg);
	cfg_restore_locale(c, old);
	free(absdir);
	free(dir);
	return error;
}
