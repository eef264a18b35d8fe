/*
 * confedit.c: edit the text of a configuration file in place, so that
 * soconfig -F keeps everything libconfig would throw away on a rewrite:
 * comments, layout, the order of filters, other tools' settings.
 *
 * A small lexer of libconfig's syntax (strings with escapes, # // and
 * block comments) finds the top-level "filters" list and the span of each
 * group in it, with the value of its "name".  Removing a filter deletes
 * its group (and the comma that separated it, and the lines it leaves
 * empty); adding one appends a group at the end of the list.  The caller
 * validates the result with the real parser before it replaces the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define CE_MAXGROUPS (CFG_MAXFILTERS + 64)

struct ce_group {
	size_t cg_start, cg_end; /* '{' .. one past '}' */
	size_t cg_comma_before;  /* position of a ',' before it, or SIZE_MAX */
	size_t cg_comma_after;   /* position of a ',' after it, or SIZE_MAX */
	char cg_name[FILNAME_MAX];
};

struct ce_scan {
	bool cs_found;              /* a top-level filters = ( ... ) */
	bool cs_include;            /* @include somewhere */
	char cs_open;               /* '(' or '[' */
	size_t cs_lopen, cs_lclose; /* list brackets */
	size_t cs_setting_end;      /* one past the ';' (or the bracket) */
	int cs_ngroups;
	struct ce_group cs_groups[CE_MAXGROUPS];
};

/* Skip blanks and comments from i; returns the next significant index. */
static size_t
ce_skip(const char *t, size_t n, size_t i)
{
	while (i < n) {
		if (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' ||
		    t[i] == '\r' || t[i] == '\f' || t[i] == '\v') {
			i++;
		} else if (t[i] == '#' ||
		           (t[i] == '/' && i + 1 < n && t[i + 1] == '/')) {
			while (i < n && t[i] != '\n')
				i++;
		} else if (t[i] == '/' && i + 1 < n && t[i + 1] == '*') {
			i += 2;
			while (i + 1 < n && !(t[i] == '*' && t[i + 1] == '/'))
				i++;
			i = i + 1 < n ? i + 2 : n;
		} else {
			break;
		}
	}
	return i;
}

/* End of the string token starting at t[i] == '"'. */
static size_t
ce_string_end(const char *t, size_t n, size_t i)
{
	for (i++; i < n && t[i] != '"'; i++)
		if (t[i] == '\\' && i + 1 < n)
			i++;
	return i < n ? i + 1 : n;
}

static bool
ce_isword(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' ||
	       c == '.' || c == '+' || c == '@';
}

/* The value of a simple string token (escapes \" \\ \n \t \xNN). */
static void
ce_unquote(const char *t, size_t start, size_t end, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = start + 1; i + 1 < end && o + 1 < len; i++) {
		char c = t[i];

		if (c == '\\' && i + 2 < end) {
			c = t[++i];
			if (c == 'n')
				c = '\n';
			else if (c == 't')
				c = '\t';
		}
		buf[o++] = c;
	}
	buf[o] = '\0';
}

/* One pass over the whole text. */
static void
ce_scan(const char *t, size_t n, struct ce_scan *sc)
{
	size_t i = 0, tok, last_comma = SIZE_MAX;
	int depth = 0, ldepth = -1, gi = -1;
	/* The last two significant tokens at depth 0, for "filters =". */
	size_t w_start = SIZE_MAX, w_end = 0;
	bool after_eq = false, in_name = false, name_eq = false;

	memset(sc, 0, sizeof(*sc));
	while ((i = ce_skip(t, n, i)) < n) {
		tok = i;
		if (t[i] == '"') {
			i = ce_string_end(t, n, i);
			if (gi >= 0 && depth == ldepth + 2 && name_eq &&
			    sc->cs_groups[gi].cg_name[0] == '\0')
				ce_unquote(t, tok, i, sc->cs_groups[gi].cg_name,
				    sizeof(sc->cs_groups[gi].cg_name));
			name_eq = false;
			in_name = false;
			continue;
		}
		if (ce_isword(t[i])) {
			while (i < n && ce_isword(t[i]))
				i++;
			if (t[tok] == '@')
				sc->cs_include = true;
			if (depth == 0) {
				w_start = tok;
				w_end = i;
				after_eq = false;
			}
			in_name = gi >= 0 && depth == ldepth + 2 &&
			          i - tok == 4 &&
			          memcmp(t + tok, "name", 4) == 0;
			name_eq = false;
			continue;
		}
		i++;
		if (t[tok] != '=' && t[tok] != ':')
			name_eq = false;
		switch (t[tok]) {
		case '=':
		case ':':
			if (depth == 0 && w_start != SIZE_MAX)
				after_eq = true;
			name_eq = in_name;
			in_name = false;
			break;
		case '(':
		case '[':
		case '{':
			if (depth == 0 && after_eq && !sc->cs_found &&
			    w_start != SIZE_MAX && w_end - w_start == 7 &&
			    memcmp(t + w_start, "filters", 7) == 0 &&
			    t[tok] != '{') {
				sc->cs_found = true;
				sc->cs_open = t[tok];
				sc->cs_lopen = tok;
				ldepth = depth;
				last_comma = SIZE_MAX;
			} else if (ldepth >= 0 && depth == ldepth + 1 &&
			           t[tok] == '{' &&
			           sc->cs_ngroups < CE_MAXGROUPS) {
				gi = sc->cs_ngroups++;
				sc->cs_groups[gi].cg_start = tok;
				sc->cs_groups[gi].cg_comma_before = last_comma;
				sc->cs_groups[gi].cg_comma_after = SIZE_MAX;
				last_comma = SIZE_MAX;
			}
			after_eq = false;
			depth++;
			break;
		case ')':
		case ']':
		case '}':
			if (depth > 0)
				depth--;
			if (ldepth >= 0 && depth == ldepth + 1 && gi >= 0 &&
			    t[tok] == '}') {
				sc->cs_groups[gi].cg_end = i;
				gi = -1;
			} else if (ldepth >= 0 && depth == ldepth) {
				sc->cs_lclose = tok;
				sc->cs_setting_end = i;
				i = ce_skip(t, n, i);
				if (i < n && (t[i] == ';' || t[i] == ','))
					sc->cs_setting_end = ++i;
				ldepth = -2; /* done with the list */
			}
			break;
		case ',':
			if (ldepth >= 0 && depth == ldepth + 1) {
				if (sc->cs_ngroups > 0 &&
				    sc->cs_groups[sc->cs_ngroups - 1]
				            .cg_comma_after == SIZE_MAX)
					sc->cs_groups[sc->cs_ngroups - 1]
					    .cg_comma_after = tok;
				last_comma = tok;
			}
			break;
		default:
			break;
		}
		in_name = false;
		if (depth == 0 && (t[tok] == ';' || t[tok] == ',')) {
			w_start = SIZE_MAX;
			after_eq = false;
		}
	}
	if (ldepth >= 0)
		sc->cs_found = false; /* unterminated list */
}

/* Append s[0..len) to the growing output. */
struct ce_out {
	char *co_buf;
	size_t co_len, co_cap;
	bool co_oom;
};

static void
ce_put(struct ce_out *co, const char *s, size_t len)
{
	if (co->co_oom)
		return;
	if (co->co_len + len + 1 > co->co_cap) {
		size_t cap = co->co_cap ? co->co_cap : 1024;
		char *p;

		while (cap < co->co_len + len + 1)
			cap *= 2;
		if ((p = realloc(co->co_buf, cap)) == NULL) {
			co->co_oom = true;
			return;
		}
		co->co_buf = p;
		co->co_cap = cap;
	}
	memcpy(co->co_buf + co->co_len, s, len);
	co->co_len += len;
	co->co_buf[co->co_len] = '\0';
}

static void
ce_puts(struct ce_out *co, const char *s)
{
	ce_put(co, s, strlen(s));
}

/* A libconfig string literal. */
static void
ce_quote(struct ce_out *co, const char *s)
{
	char esc[8];

	ce_puts(co, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			ce_put(co, esc, 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			ce_puts(co, esc);
		} else {
			ce_put(co, (const char *)&c, 1);
		}
	}
	ce_puts(co, "\"");
}

static char *
ce_finish(struct ce_out *co)
{
	if (co->co_oom) {
		free(co->co_buf);
		return NULL;
	}
	if (co->co_buf == NULL)
		return strdup("");
	return co->co_buf;
}

/* The group text of f, indented by two spaces, no trailing newline. */
static void
ce_group(struct ce_out *co, const struct ce_filter *f)
{
	int i;

	ce_puts(co, "  {\n    name      = ");
	ce_quote(co, f->cf_name);
	ce_puts(co, ";\n    module    = ");
	ce_quote(co, f->cf_module);
	ce_puts(co, ";\n    attach    = ");
	ce_quote(co, f->cf_auto ? "auto" : "prog");
	ce_puts(co, ";\n");
	if (f->cf_placement[0] != '\0') {
		ce_puts(co, "    placement = ");
		ce_quote(co, f->cf_placement);
		ce_puts(co, ";\n");
	}
	ce_puts(co, "    sockets   = [ ");
	for (i = 0; i < f->cf_ntuples; i++) {
		if (i > 0)
			ce_puts(co, ", ");
		ce_quote(co, f->cf_tuples[i]);
	}
	ce_puts(co, " ];\n");
	if (f->cf_nparams > 0) {
		ce_puts(co, "    params    = { ");
		for (i = 0; i < f->cf_nparams; i++) {
			ce_puts(co, f->cf_keys[i]);
			ce_puts(co, " = ");
			ce_quote(co, f->cf_vals[i]);
			ce_puts(co, "; ");
		}
		ce_puts(co, "};\n");
	}
	ce_puts(co, "  }");
}

static int
ce_find(const struct ce_scan *sc, const char *name)
{
	int i;

	for (i = 0; i < sc->cs_ngroups; i++)
		if (strcmp(sc->cs_groups[i].cg_name, name) == 0)
			return i;
	return -1;
}

static int
ce_editable(const struct ce_scan *sc, char *err, size_t errlen)
{
	if (!sc->cs_found && sc->cs_include) {
		cfg_seterr(err, errlen,
		    "the filters list is not in this file (@include): edit "
		    "it by hand");
		return EINVAL;
	}
	if (sc->cs_ngroups >= CE_MAXGROUPS) {
		cfg_seterr(err, errlen, "too many filters to edit");
		return EINVAL;
	}
	return 0;
}

int
ce_add(const char *text, const struct ce_filter *f, char **out, char *err,
    size_t errlen)
{
	struct ce_out co = {NULL, 0, 0, false};
	struct ce_scan *sc;
	size_t n = strlen(text), at;
	int error;

	if ((sc = malloc(sizeof(*sc))) == NULL)
		return ENOMEM;
	ce_scan(text, n, sc);
	if ((error = ce_editable(sc, err, errlen)) != 0)
		goto out;
	if (ce_find(sc, f->cf_name) >= 0) {
		cfg_seterr(err, errlen,
		    "filter '%s' is already configured (unconfigure it first: "
		    "soconfig -F %s)",
		    f->cf_name, f->cf_name);
		error = EEXIST;
		goto out;
	}
	if (!sc->cs_found) {
		/* No list yet: one at the end of the file. */
		ce_put(&co, text, n);
		if (n > 0 && text[n - 1] != '\n')
			ce_puts(&co, "\n");
		ce_puts(&co, "\nfilters = (\n");
		ce_group(&co, f);
		ce_puts(&co, "\n);\n");
	} else if (sc->cs_ngroups == 0) {
		/* "( )" or "[ ]": a list with this one group. */
		ce_put(&co, text, sc->cs_lopen);
		ce_puts(&co, "(\n");
		ce_group(&co, f);
		ce_puts(&co, "\n)");
		ce_put(&co, text + sc->cs_lclose + 1, n - sc->cs_lclose - 1);
	} else {
		const struct ce_group *g = &sc->cs_groups[sc->cs_ngroups - 1];

		at = g->cg_end;
		ce_put(&co, text, at);
		ce_puts(&co, ",\n");
		ce_group(&co, f);
		ce_put(&co, text + at, n - at);
	}
	if ((*out = ce_finish(&co)) == NULL)
		error = ENOMEM;
out:
	free(sc);
	return error;
}

int
ce_remove(const char *text, const char *name, char **out, char *err,
    size_t errlen)
{
	struct ce_out co = {NULL, 0, 0, false};
	struct ce_scan *sc;
	const struct ce_group *g;
	size_t n = strlen(text), from, to, ls, le;
	int error, gi;

	if ((sc = malloc(sizeof(*sc))) == NULL)
		return ENOMEM;
	ce_scan(text, n, sc);
	if ((error = ce_editable(sc, err, errlen)) != 0)
		goto out;
	if ((gi = ce_find(sc, name)) < 0 || sc->cs_groups[gi].cg_end == 0) {
		cfg_seterr(err, errlen, "unknown filter '%s': not configured",
		    name);
		error = ENOENT;
		goto out;
	}
	g = &sc->cs_groups[gi];
	/* The group and one separating comma: the one after it, else the
	 * one before it (the last group). */
	from = g->cg_start;
	to = g->cg_end;
	if (g->cg_comma_after != SIZE_MAX)
		to = g->cg_comma_after + 1;
	else if (g->cg_comma_before != SIZE_MAX)
		from = g->cg_comma_before;
	/* Whole lines when the span leaves only blanks on them. */
	for (ls = from;
	     ls > 0 && (text[ls - 1] == ' ' || text[ls - 1] == '\t');)
		ls--;
	for (le = to; le < n && (text[le] == ' ' || text[le] == '\t');)
		le++;
	if ((ls == 0 || text[ls - 1] == '\n') &&
	    (le == n || text[le] == '\n')) {
		from = ls;
		to = le < n ? le + 1 : le;
	}
	ce_put(&co, text, from);
	ce_put(&co, text + to, n - to);
	if ((*out = ce_finish(&co)) == NULL)
		error = ENOMEM;
out:
	free(sc);
	return error;
}

char *
ce_canonical(const struct cfg_snap *cs)
{
	struct ce_out co = {NULL, 0, 0, false};
	char buf[FILNAME_MAX + 16];
	const char *h;
	int i, j;

	ce_puts(&co, "# published by soconfigd\n");
	if (cs->cs_nmodpath > 0) {
		ce_puts(&co, "module_path = [ ");
		for (i = 0; i < cs->cs_nmodpath; i++) {
			if (i > 0)
				ce_puts(&co, ", ");
			ce_quote(&co, cs->cs_modpath[i]);
		}
		ce_puts(&co, " ];\n");
	}
	ce_puts(&co, "filters = (");
	for (i = 0; i < cs->cs_nfilters; i++) {
		const struct cfg_filter *cf = &cs->cs_filters[i];

		ce_puts(&co, i > 0 ? ",\n  { name = " : "\n  { name = ");
		ce_quote(&co, cf->cf_name);
		ce_puts(&co, "; module = ");
		ce_quote(&co, cf->cf_module);
		ce_puts(&co, cf->cf_auto ? "; attach = \"auto\"; "
		                         : "; attach = \"prog\"; ");
		if ((h = cfg_hint_str(cf, buf, sizeof(buf))) != NULL) {
			ce_puts(&co, "placement = ");
			ce_quote(&co, h);
			ce_puts(&co, "; ");
		}
		ce_puts(&co, "sockets = [ ");
		for (j = 0; j < cf->cf_ntuples; j++) {
			snprintf(buf, sizeof(buf), "%s\"%d:%d:%d\"",
			    j > 0 ? ", " : "", cf->cf_tuples[j].ct_family,
			    cf->cf_tuples[j].ct_type,
			    cf->cf_tuples[j].ct_proto);
			ce_puts(&co, buf);
		}
		ce_puts(&co, " ]; ");
		if (cf->cf_nparams > 0) {
			ce_puts(&co, "params = { ");
			for (j = 0; j < cf->cf_nparams; j++) {
				ce_puts(&co, cf->cf_params[j].cp_key);
				ce_puts(&co, " = ");
				ce_quote(&co, cf->cf_params[j].cp_val);
				ce_puts(&co, "; ");
			}
			ce_puts(&co, "}; ");
		}
		ce_puts(&co, "}");
	}
	ce_puts(&co, "\n);\n");
	return ce_finish(&co);
}
