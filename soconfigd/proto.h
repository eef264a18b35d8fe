/*
 * proto.h: soconfigd's request parser (proto.c) and configuration text
 * editor (confedit.c): pure functions, shared by the daemon, the unit
 * tests and the fuzzer.  The protocol itself is documented at the top of
 * proto.c.
 */
#ifndef SD_PROTO_H
#define SD_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "core.h"

#define PROTO_MAXREQ    65536 /* bytes of one request line, newline included */
#define PROTO_MAXPARAMS 32
#define PROTO_MAXVAL    1024 /* bytes of one parameter value or module name */

/* A filter as soconfig -F (or {"cmd":"set"}) gives it. */
struct ce_filter {
	char cf_name[FILNAME_MAX];
	char cf_module[64];
	bool cf_auto;
	char cf_placement[FILNAME_MAX + 8]; /* "" none, top, before:X ... */
	int cf_ntuples;
	char cf_tuples[CFG_MAXTUPLES][48]; /* as given, already validated */
	int cf_nparams;
	char cf_keys[PROTO_MAXPARAMS][64];
	char cf_vals[PROTO_MAXPARAMS][PROTO_MAXVAL];
};

enum proto_cmd {
	PROTO_PING,
	PROTO_STATS,
	PROTO_CONFIG,
	PROTO_PROCS,
	PROTO_PFILES,
	PROTO_FOLLOW,
	PROTO_SET,    /* changes: root or the daemon's user */
	PROTO_UNSET,  /* changes */
	PROTO_RELOAD, /* changes */
};

struct proto_req {
	enum proto_cmd pr_cmd;
	long pr_pid;                /* pfiles */
	char pr_name[FILNAME_MAX];  /* unset */
	struct ce_filter pr_filter; /* set */
};

/* proto_parse(line, len, &req, err, errlen): one request line (without
 * its newline; need not be NUL-terminated).  0, or -1 with a message in
 * err.  Never reads past len, never allocates beyond jansson's parse. */
int proto_parse(const char *line, size_t len, struct proto_req *req, char *err,
    size_t errlen);
/* Does cmd change anything (and so need privileges)? */
bool proto_is_change(enum proto_cmd cmd);

/* proto_check_filter(f, err, errlen): name, module, placement, tuples
 * and parameters well-formed (the same rules as config.c).  0 or -1. */
int proto_check_filter(const struct ce_filter *f, char *err, size_t errlen);

/* confedit.c.  Text in, malloc'd text out; 0, or an errno with a message:
 * ENOENT (no such filter), EEXIST, EINVAL (the file cannot be edited). */
int ce_add(const char *text, const struct ce_filter *f, char **out, char *err,
    size_t errlen);
int ce_remove(const char *text, const char *name, char **out, char *err,
    size_t errlen);
/* The snapshot as libconfig text that parses back to the same filters
 * (what the daemon publishes).  NULL when out of memory. */
char *ce_canonical(const struct cfg_snap *cs);

#endif /* SD_PROTO_H */
