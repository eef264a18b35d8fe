/*
 * proto.c: soconfigd's request parser.
 *
 * The protocol
 * ------------
 * A client connects to the daemon's Unix stream socket (SOCKFILTER_SOCKET,
 * default /run/sockfilter/soconfigd.sock) and writes requests, one JSON
 * object per line (at most PROTO_MAXREQ = 64 KiB with its newline); the
 * daemon answers each with exactly one line holding one JSON object, in
 * order.  Every response has "ok": true, or "ok": false with "error" (a
 * message for people) and "code" (EINVAL, EPERM, ENOENT, EEXIST, ENOSPC,
 * EIO: for programs).
 *
 *   {"cmd":"ping"}                  {"ok":true,"version":"0.1.0","pid":N,
 *                                    "epoch":N,"config_version":N}
 *   {"cmd":"stats"}                 {"ok":true,"processes":N,"exited":N,
 *                                    "global":{"defer_closed":N,...},
 *                                    "filters":{"NAME":{"nactive":N,
 *                                    "ndeferred":N,"tot_active_attach":N,
 *                                    "tot_passive_attach":N,
 *                                    "attach_failures":N,"bytes_in":N,
 *                                    "bytes_out":N,"denied":N},...}}
 *                                   (totals over live and exited processes;
 *                                    nactive/ndeferred over live ones)
 *   {"cmd":"config"}                {"ok":true,"path":FILE,"version":N,
 *                                    "module_path":[...],"filters":[{"name":
 *                                    ..,"module":..,"attach":"auto"|"prog",
 *                                    "placement":..,"sockets":[..],
 *                                    "params":{..}},...]}
 *   {"cmd":"procs"}                 {"ok":true,"processes":[{"pid":N,
 *                                    "prog":S,"uid":N,"sockets":N},...]}
 *   {"cmd":"pfiles","pid":N}        {"ok":true,"pid":N,"prog":S,"sockets":
 *                                    [{"fd":N,"family":..,"type":..,
 *                                    "protocol":..,"filters":[{"name":..,
 *                                    "attach":"auto"|"prog",
 *                                    "bypass":false}]}],"overflow":N}
 *   {"cmd":"follow"}                {"ok":true,"follow":true}, then one line
 *                                    per filter record as it arrives:
 *                                    {"filter":NAME,"pid":N,"record":{..}}
 *                                    (a client that falls 1 MiB behind
 *                                    loses records; "dropped" says how many)
 *   {"cmd":"set","filter":{"name":..,"module":..,"attach":"auto",
 *     "placement":"top","sockets":["inet:stream:tcp"],
 *     "params":{"path":"/x"}}}      configure a filter: {"ok":true,
 *                                    "version":N}
 *   {"cmd":"unset","name":NAME}     unconfigure it
 *   {"cmd":"reload"}                reread the file (as SIGHUP does)
 *
 * set, unset and reload are accepted only from root or the daemon's own
 * user (SO_PEERCRED); everything else is open to every local user.  A
 * request that is not valid JSON, not an object, has unknown members or
 * commands, or is too long gets an error response; an over-long line also
 * closes the connection (the rest of it cannot be trusted to be a request).
 *
 * proto_parse() is a pure function of its input (fuzzed by
 * tests/fuzz/fuzz_proto.c).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "proto.h"

static const struct {
	const char *pc_name;
	enum proto_cmd pc_cmd;
} proto_cmds[] = {{"ping", PROTO_PING}, {"stats", PROTO_STATS},
    {"config", PROTO_CONFIG}, {"procs", PROTO_PROCS}, {"pfiles", PROTO_PFILES},
    {"follow", PROTO_FOLLOW}, {"set", PROTO_SET}, {"unset", PROTO_UNSET},
    {"reload", PROTO_RELOAD}};

bool
proto_is_change(enum proto_cmd cmd)
{
	return cmd == PROTO_SET || cmd == PROTO_UNSET || cmd == PROTO_RELOAD;
}

/* A name as config.c accepts it, printable so that it can be shown. */
static bool
proto_name_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

/* libconfig setting names: [A-Za-z*][-A-Za-z0-9_*]*. */
static bool
proto_key_ok(const char *s)
{
	size_t i;

	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (i = 1; s[i] != '\0'; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') ||
		        (s[i] >= 'a' && s[i] <= 'z') ||
		        (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		        s[i] == '-'))
			return false;
	return i < 64;
}

int
proto_check_filter(const struct ce_filter *f, char *err, size_t errlen)
{
	struct cfg_tuple t;
	char msg[160];
	const char *arg;
	int i;

	if (!proto_name_ok(f->cf_name, FILNAME_MAX - 1)) {
		cfg_seterr(err, errlen,
		    "bad filter name (1 to %d printable bytes, no spaces)",
		    FILNAME_MAX - 1);
		return -1;
	}
	if (!proto_name_ok(f->cf_module, sizeof(f->cf_module) - 1) ||
	    strchr(f->cf_module, '/') != NULL) {
		cfg_seterr(err, errlen,
		    "bad module name (a name, not a path: MODULE.so is "
		    "searched on the module path)");
		return -1;
	}
	if (f->cf_placement[0] != '\0') {
		if (!f->cf_auto) {
			cfg_seterr(err, errlen,
			    "a placement is for automatic filters only");
			return -1;
		}
		arg = NULL;
		if (strncmp(f->cf_placement, "before:", 7) == 0)
			arg = f->cf_placement + 7;
		else if (strncmp(f->cf_placement, "after:", 6) == 0)
			arg = f->cf_placement + 6;
		else if (strcmp(f->cf_placement, "top") != 0 &&
		         strcmp(f->cf_placement, "bottom") != 0) {
			cfg_seterr(err, errlen,
			    "bad placement '%s' (top, bottom, before:NAME or "
			    "after:NAME)",
			    f->cf_placement);
			return -1;
		}
		if (arg != NULL && (!proto_name_ok(arg, FILNAME_MAX - 1) ||
		                       strcmp(arg, f->cf_name) == 0)) {
			cfg_seterr(err, errlen, "bad placement '%s'",
			    f->cf_placement);
			return -1;
		}
	}
	if (f->cf_ntuples < 1 || f->cf_ntuples > CFG_MAXTUPLES) {
		cfg_seterr(err, errlen, "1 to %d socket tuples are needed",
		    CFG_MAXTUPLES);
		return -1;
	}
	for (i = 0; i < f->cf_ntuples; i++)
		if (cfg_parse_tuple(f->cf_tuples[i], &t, msg, sizeof(msg)) !=
		    0) {
			cfg_seterr(err, errlen, "%s", msg);
			return -1;
		}
	for (i = 0; i < f->cf_nparams; i++)
		if (!proto_key_ok(f->cf_keys[i])) {
			cfg_seterr(err, errlen, "bad parameter name '%s'",
			    f->cf_keys[i]);
			return -1;
		}
	return 0;
}

/* Copy a JSON string member into buf; -1 if absent, not a string, too
 * long or holding a NUL. */
static int
proto_str(json_t *o, const char *key, char *buf, size_t len, bool required,
    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	size_t n;

	if (v == NULL) {
		if (!required) {
			buf[0] = '\0';
			return 0;
		}
		cfg_seterr(err, errlen, "missing member '%s'", key);
		return -1;
	}
	if (!json_is_string(v)) {
		cfg_seterr(err, errlen, "'%s' must be a string", key);
		return -1;
	}
	n = json_string_length(v);
	if (n >= len || strlen(json_string_value(v)) != n) {
		cfg_seterr(err, errlen, "'%s' is too long or holds a NUL", key);
		return -1;
	}
	memcpy(buf, json_string_value(v), n + 1);
	return 0;
}

static bool
proto_only(json_t *o, const char *const *keys, char *err, size_t errlen)
{
	const char *k;
	json_t *v;
	int i;

	json_object_foreach(o, k, v)
	{
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(keys[i], k) == 0)
				break;
		if (keys[i] == NULL) {
			cfg_seterr(err, errlen, "unknown member '%.40s'", k);
			return false;
		}
	}
	return true;
}

static int
proto_filter(json_t *o, struct ce_filter *f, char *err, size_t errlen)
{
	static const char *const keys[] = {"name", "module", "attach",
	    "placement", "sockets", "params", NULL};
	char attach[8];
	json_t *a, *v;
	const char *k;
	size_t i;

	if (!json_is_object(o)) {
		cfg_seterr(err, errlen, "'filter' must be an object");
		return -1;
	}
	if (!proto_only(o, keys, err, errlen) ||
	    proto_str(o, "name", f->cf_name, sizeof(f->cf_name), true, err,
	        errlen) != 0 ||
	    proto_str(o, "module", f->cf_module, sizeof(f->cf_module), false,
	        err, errlen) != 0 ||
	    proto_str(o, "attach", attach, sizeof(attach), true, err, errlen) !=
	        0 ||
	    proto_str(o, "placement", f->cf_placement, sizeof(f->cf_placement),
	        false, err, errlen) != 0)
		return -1;
	if (f->cf_module[0] == '\0' &&
	    strlen(f->cf_name) < sizeof(f->cf_module))
		memcpy(f->cf_module, f->cf_name, strlen(f->cf_name) + 1);
	if (strcmp(attach, "auto") == 0) {
		f->cf_auto = true;
	} else if (strcmp(attach, "prog") == 0) {
		f->cf_auto = false;
	} else {
		cfg_seterr(err, errlen,
		    "'attach' must be \"auto\" or \"prog\"");
		return -1;
	}
	a = json_object_get(o, "sockets");
	if (!json_is_array(a) || json_array_size(a) == 0 ||
	    json_array_size(a) > CFG_MAXTUPLES) {
		cfg_seterr(err, errlen,
		    "'sockets' must be an array of 1 to %d tuple strings",
		    CFG_MAXTUPLES);
		return -1;
	}
	json_array_foreach(a, i, v)
	{
		if (!json_is_string(v) ||
		    json_string_length(v) >= sizeof(f->cf_tuples[0])) {
			cfg_seterr(err, errlen,
			    "'sockets' entries must be short strings");
			return -1;
		}
		snprintf(f->cf_tuples[i], sizeof(f->cf_tuples[i]), "%s",
		    json_string_value(v));
		f->cf_ntuples = (int)i + 1;
	}
	a = json_object_get(o, "params");
	if (a != NULL) {
		if (!json_is_object(a) ||
		    json_object_size(a) > PROTO_MAXPARAMS) {
			cfg_seterr(err, errlen,
			    "'params' must be an object of at most %d strings",
			    PROTO_MAXPARAMS);
			return -1;
		}
		json_object_foreach(a, k, v)
		{
			int n = f->cf_nparams;

			if (strlen(k) >= sizeof(f->cf_keys[0])) {
				cfg_seterr(err, errlen,
				    "parameter name too long");
				return -1;
			}
			memcpy(f->cf_keys[n], k, strlen(k) + 1);
			if (json_is_string(v) &&
			    json_string_length(v) < PROTO_MAXVAL &&
			    strlen(json_string_value(v)) ==
			        json_string_length(v)) {
				memcpy(f->cf_vals[n], json_string_value(v),
				    json_string_length(v) + 1);
			} else if (json_is_integer(v)) {
				snprintf(f->cf_vals[n], PROTO_MAXVAL, "%lld",
				    (long long)json_integer_value(v));
			} else if (json_is_boolean(v)) {
				snprintf(f->cf_vals[n], PROTO_MAXVAL, "%s",
				    json_is_true(v) ? "true" : "false");
			} else {
				cfg_seterr(err, errlen,
				    "parameter '%.40s' must be a string, "
				    "integer or boolean",
				    k);
				return -1;
			}
			f->cf_nparams = n + 1;
		}
	}
	return proto_check_filter(f, err, errlen);
}

int
proto_parse(const char *line, size_t len, struct proto_req *req, char *err,
    size_t errlen)
{
	static const char *const keys[] = {"cmd", "pid", "name", "filter",
	    NULL};
	json_error_t jerr;
	json_t *o, *v;
	char cmd[16];
	size_t i;
	int rc = -1;

	memset(req, 0, sizeof(*req));
	if (len >= PROTO_MAXREQ) {
		cfg_seterr(err, errlen, "request too long (at most %d bytes)",
		    PROTO_MAXREQ - 1);
		return -1;
	}
	/* Objects only, no NUL inside strings, no duplicate members. */
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (o == NULL) {
		cfg_seterr(err, errlen, "bad JSON at column %d: %s",
		    jerr.column, jerr.text);
		return -1;
	}
	if (!json_is_object(o)) {
		cfg_seterr(err, errlen, "a request is a JSON object");
		goto out;
	}
	if (!proto_only(o, keys, err, errlen) ||
	    proto_str(o, "cmd", cmd, sizeof(cmd), true, err, errlen) != 0)
		goto out;
	for (i = 0; i < sizeof(proto_cmds) / sizeof(proto_cmds[0]); i++)
		if (strcmp(proto_cmds[i].pc_name, cmd) == 0)
			break;
	if (i == sizeof(proto_cmds) / sizeof(proto_cmds[0])) {
		cfg_seterr(err, errlen, "unknown command '%s'", cmd);
		goto out;
	}
	req->pr_cmd = proto_cmds[i].pc_cmd;
	switch (req->pr_cmd) {
	case PROTO_PFILES:
		v = json_object_get(o, "pid");
		if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
		    json_integer_value(v) > 0x7fffffff) {
			cfg_seterr(err, errlen,
			    "'pid' must be a positive integer");
			goto out;
		}
		req->pr_pid = (long)json_integer_value(v);
		break;
	case PROTO_UNSET:
		if (proto_str(o, "name", req->pr_name, sizeof(req->pr_name),
		        true, err, errlen) != 0)
			goto out;
		if (!proto_name_ok(req->pr_name, FILNAME_MAX - 1)) {
			cfg_seterr(err, errlen, "bad filter name");
			goto out;
		}
		break;
	case PROTO_SET:
		if (proto_filter(json_object_get(o, "filter"), &req->pr_filter,
		        err, errlen) != 0)
			goto out;
		break;
	default:
		break;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}
