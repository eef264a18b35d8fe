/*
 * soconfig: configure socket filters live and read soconfigd's counters,
 * as Solaris's soconfig(8) does, through the daemon's JSON protocol.
 *
 *   soconfig -F name module {auto [top|bottom|before:F|after:F] | prog}
 *            family:type:protocol[,...] [-o key=value]...
 *   soconfig -F name                 unconfigure
 *   soconfig -l [--json]             list the configured filters
 *   soconfig -s [--json]             counters
 *   soconfig -p PID [--json]         the filters of every socket of PID
 *   soconfig -P [--json]             interposed processes
 *   soconfig -r                      reload the file (as SIGHUP)
 *   soconfig -V                      the daemon's version, pid, epoch
 *   soconfig log -f                  follow filter records (tcplog)
 *
 * Exit status: 0 done; 1 the daemon refused or failed; 2 bad syntax;
 * 3 no daemon; 4 permission denied; 5 unknown filter, module or process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "proto.h"
#include "sdutil.h"

#define SC_OK      0
#define SC_FAIL    1
#define SC_USAGE   2
#define SC_NODMN   3
#define SC_PERM    4
#define SC_UNKNOWN 5

static char sc_sock[108];

static void
sc_usage(void)
{
	fprintf(stderr,
	    "usage: soconfig -F name module {auto [top | bottom | "
	    "before:filter "
	    "|\n"
	    "                  after:filter] | prog} family:type:protocol,... "
	    "[-o key=value]...\n"
	    "       soconfig -F name\n"
	    "       soconfig -l [--json]\n"
	    "       soconfig -s [--json]\n"
	    "       soconfig -p PID [--json]\n"
	    "       soconfig -P [--json]\n"
	    "       soconfig -r\n"
	    "       soconfig -V\n"
	    "       soconfig log -f\n"
	    "The daemon's socket: $SOCKFILTER_SOCKET, else %s.\n",
	    sc_sock);
	exit(SC_USAGE);
}

static FILE *
sc_connect(void)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	FILE *fp;
	int s;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sc_sock);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr,
		    "soconfig: no daemon: cannot connect to %s: %s\n"
		    "soconfig: is soconfigd running (SOCKFILTER_SOCKET)?\n",
		    sc_sock, strerror(errno));
		exit(SC_NODMN);
	}
	if ((fp = fdopen(s, "r+")) == NULL) {
		perror("soconfig: fdopen");
		exit(SC_FAIL);
	}
	return fp;
}

/* One request, one response line. */
static json_t *
sc_call(FILE *fp, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT), *line = NULL;
	size_t cap = 0;
	json_t *resp;

	json_decref(req);
	if (s == NULL || fprintf(fp, "%s\n", s) < 0 || fflush(fp) != 0) {
		fprintf(stderr, "soconfig: cannot send the request: %s\n",
		    strerror(errno));
		exit(SC_NODMN);
	}
	free(s);
	if (getline(&line, &cap, fp) < 0) {
		fprintf(stderr, "soconfig: the daemon closed the connection\n");
		exit(SC_NODMN);
	}
	resp = json_loads(line, 0, NULL);
	free(line);
	if (!json_is_object(resp)) {
		fprintf(stderr, "soconfig: bad response from the daemon\n");
		exit(SC_FAIL);
	}
	return resp;
}

/* Exit with a message unless resp is ok. */
static void
sc_check(json_t *resp)
{
	const char *code, *msg;

	if (json_is_true(json_object_get(resp, "ok")))
		return;
	code = json_string_value(json_object_get(resp, "code"));
	msg = json_string_value(json_object_get(resp, "error"));
	fprintf(stderr, "soconfig: %s\n", msg != NULL ? msg : "failed");
	if (code != NULL && strcmp(code, "EPERM") == 0)
		exit(SC_PERM);
	if (code != NULL && strcmp(code, "ENOENT") == 0)
		exit(SC_UNKNOWN);
	if (code != NULL && strcmp(code, "EINVAL") == 0)
		exit(SC_USAGE);
	exit(SC_FAIL);
}

static json_t *
sc_simple(const char *cmd)
{
	FILE *fp = sc_connect();
	json_t *resp = sc_call(fp, json_pack("{s:s}", "cmd", cmd));

	fclose(fp);
	sc_check(resp);
	return resp;
}

static void
sc_print_json(json_t *resp)
{
	json_object_del(resp, "ok");
	json_dumpf(resp, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
	putchar('\n');
}

static unsigned long long
sc_num(json_t *o, const char *key)
{
	json_int_t v = json_integer_value(json_object_get(o, key));

	return v < 0 ? 0 : (unsigned long long)v;
}

static int
sc_stats(bool json)
{
	json_t *resp = sc_simple("stats"), *f, *g, *v;
	const char *name;

	if (json) {
		sc_print_json(resp);
		json_decref(resp);
		return SC_OK;
	}
	f = json_object_get(resp, "filters");
	printf("%-20s %8s %9s %13s %14s %12s %12s %8s\n", "FILTER", "NACTIVE",
	    "NDEFERRED", "ACTIVE_ATTACH", "PASSIVE_ATTACH", "BYTES_IN",
	    "BYTES_OUT", "DENIED");
	json_object_foreach(f, name, v)
	{
		printf("%-20s %8lld %9lld %13llu %14llu %12llu %12llu %8llu\n",
		    name,
		    (long long)json_integer_value(
		        json_object_get(v, "nactive")),
		    (long long)json_integer_value(
		        json_object_get(v, "ndeferred")),
		    sc_num(v, "tot_active_attach"),
		    sc_num(v, "tot_passive_attach"), sc_num(v, "bytes_in"),
		    sc_num(v, "bytes_out"), sc_num(v, "denied"));
	}
	g = json_object_get(resp, "global");
	printf("\ndefer_closed %llu  defer_close_backlog %llu  "
	       "defer_close_failed %llu\n"
	       "processes %lld live, %lld exited\n",
	    sc_num(g, "defer_closed"), sc_num(g, "defer_close_backlog"),
	    sc_num(g, "defer_close_failed"),
	    (long long)json_integer_value(json_object_get(resp, "processes")),
	    (long long)json_integer_value(json_object_get(resp, "exited")));
	json_decref(resp);
	return SC_OK;
}

static int
sc_list(bool json)
{
	json_t *resp = sc_simple("config"), *f, *t, *v;
	size_t i, j;

	if (json) {
		sc_print_json(resp);
		json_decref(resp);
		return SC_OK;
	}
	printf("%-20s %-16s %-6s %-20s %s\n", "FILTER", "MODULE", "ATTACH",
	    "PLACEMENT", "SOCKETS");
	json_array_foreach(json_object_get(resp, "filters"), i, f)
	{
		const char *pl =
		    json_string_value(json_object_get(f, "placement"));

		printf("%-20s %-16s %-6s %-20s ",
		    json_string_value(json_object_get(f, "name")),
		    json_string_value(json_object_get(f, "module")),
		    json_string_value(json_object_get(f, "attach")),
		    pl != NULL ? pl : "-");
		t = json_object_get(f, "sockets");
		json_array_foreach(t, j, v)
		    printf("%s%s", j > 0 ? "," : "", json_string_value(v));
		putchar('\n');
	}
	printf("(configuration %s, version %lld)\n",
	    json_string_value(json_object_get(resp, "path")),
	    (long long)json_integer_value(json_object_get(resp, "version")));
	json_decref(resp);
	return SC_OK;
}

static int
sc_procs(bool json)
{
	json_t *resp = sc_simple("procs"), *p;
	size_t i;

	if (json) {
		sc_print_json(resp);
		json_decref(resp);
		return SC_OK;
	}
	printf("%8s %6s %8s  %s\n", "PID", "UID", "SOCKETS", "PROGRAM");
	json_array_foreach(json_object_get(resp, "processes"), i, p)
	    printf("%8lld %6lld %8lld  %s\n",
	        (long long)json_integer_value(json_object_get(p, "pid")),
	        (long long)json_integer_value(json_object_get(p, "uid")),
	        (long long)json_integer_value(json_object_get(p, "sockets")),
	        json_string_value(json_object_get(p, "prog")));
	json_decref(resp);
	return SC_OK;
}

static int
sc_pfiles(const char *arg, bool json)
{
	char *end;
	long pid = strtol(arg, &end, 10);
	json_t *resp, *s, *f;
	FILE *fp;
	size_t i, j;

	if (*arg == '\0' || *end != '\0' || pid <= 0) {
		fprintf(stderr, "soconfig: bad process id '%s'\n", arg);
		return SC_USAGE;
	}
	fp = sc_connect();
	resp = sc_call(fp,
	    json_pack("{s:s,s:i}", "cmd", "pfiles", "pid", (int)pid));
	fclose(fp);
	sc_check(resp);
	if (json) {
		sc_print_json(resp);
		json_decref(resp);
		return SC_OK;
	}
	/* pfiles(1)'s shape: the process, then each descriptor. */
	printf("%ld:\t%s\n", pid,
	    json_string_value(json_object_get(resp, "prog")));
	json_array_foreach(json_object_get(resp, "sockets"), i, s)
	{
		printf("%4lld: S_IFSOCK %s:%s:%s\n",
		    (long long)json_integer_value(json_object_get(s, "fd")),
		    json_string_value(json_object_get(s, "family")),
		    json_string_value(json_object_get(s, "type")),
		    json_string_value(json_object_get(s, "protocol")));
		printf("      filters: ");
		json_array_foreach(json_object_get(s, "filters"), j, f)
		    printf("%s%s(%s%s)", j > 0 ? ", " : "",
		        json_string_value(json_object_get(f, "name")),
		        json_string_value(json_object_get(f, "attach")),
		        json_is_true(json_object_get(f, "bypass")) ? ",bypass"
		                                                   : "");
		putchar('\n');
	}
	if (sc_num(resp, "overflow") > 0)
		printf("(%llu sockets not shown: the view is full)\n",
		    sc_num(resp, "overflow"));
	json_decref(resp);
	return SC_OK;
}

static int
sc_follow(void)
{
	FILE *fp = sc_connect();
	json_t *resp = sc_call(fp, json_pack("{s:s}", "cmd", "follow")), *o;
	char *line = NULL, *s;
	size_t cap = 0;

	sc_check(resp);
	json_decref(resp);
	/* The records as the filter wrote them, one JSON object a line. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (getline(&line, &cap, fp) > 0) {
		o = json_loads(line, 0, NULL);
		if (json_object_get(o, "record") != NULL &&
		    (s = json_dumps(json_object_get(o, "record"),
		         JSON_COMPACT | JSON_REAL_PRECISION(9))) != NULL) {
			if (printf("%s\n", s) < 0)
				break;
			free(s);
		} else if (json_object_get(o, "dropped") != NULL) {
			fprintf(stderr,
			    "soconfig: %lld records dropped (too slow)\n",
			    (long long)json_integer_value(
			        json_object_get(o, "dropped")));
		}
		json_decref(o);
	}
	free(line);
	fclose(fp);
	return SC_OK;
}

/* soconfig -F name module {auto [placement] | prog} tuples [-o k=v]... */
static int
sc_set(int argc, char **argv)
{
	struct ce_filter f;
	json_t *o, *tuples, *params, *resp;
	char err[256], *list, *tok, *save = NULL;
	int i = 0;
	FILE *fp;

	memset(&f, 0, sizeof(f));
	if (argc < 4)
		sc_usage();
	snprintf(f.cf_name, sizeof(f.cf_name), "%s", argv[i++]);
	snprintf(f.cf_module, sizeof(f.cf_module), "%s", argv[i++]);
	if (strcmp(argv[i], "auto") == 0) {
		f.cf_auto = true;
		i++;
		if (i < argc && strchr(argv[i], ':') != NULL &&
		    (strncmp(argv[i], "before:", 7) == 0 ||
		        strncmp(argv[i], "after:", 6) == 0))
			snprintf(f.cf_placement, sizeof(f.cf_placement), "%s",
			    argv[i++]);
		else if (i < argc && (strcmp(argv[i], "top") == 0 ||
		                         strcmp(argv[i], "bottom") == 0))
			snprintf(f.cf_placement, sizeof(f.cf_placement), "%s",
			    argv[i++]);
	} else if (strcmp(argv[i], "prog") == 0) {
		i++;
	} else {
		fprintf(stderr, "soconfig: expected auto or prog, not '%s'\n",
		    argv[i]);
		return SC_USAGE;
	}
	if (i >= argc) {
		fprintf(stderr, "soconfig: no socket tuples given\n");
		return SC_USAGE;
	}
	if ((list = strdup(argv[i++])) == NULL)
		return SC_FAIL;
	for (tok = strtok_r(list, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (f.cf_ntuples == CFG_MAXTUPLES ||
		    strlen(tok) >= sizeof(f.cf_tuples[0])) {
			fprintf(stderr,
			    "soconfig: too many or too long tuples\n");
			return SC_USAGE;
		}
		snprintf(f.cf_tuples[f.cf_ntuples++], sizeof(f.cf_tuples[0]),
		    "%s", tok);
	}
	free(list);
	for (; i < argc; i++) {
		char *eq;

		if (strcmp(argv[i], "-o") != 0 || i + 1 >= argc ||
		    (eq = strchr(argv[i + 1], '=')) == NULL ||
		    f.cf_nparams == PROTO_MAXPARAMS) {
			fprintf(stderr,
			    "soconfig: unexpected '%s' (parameters "
			    "are -o key=value)\n",
			    argv[i]);
			return SC_USAGE;
		}
		i++;
		*eq = '\0';
		snprintf(f.cf_keys[f.cf_nparams], sizeof(f.cf_keys[0]), "%s",
		    argv[i]);
		snprintf(f.cf_vals[f.cf_nparams], sizeof(f.cf_vals[0]), "%s",
		    eq + 1);
		f.cf_nparams++;
	}
	/* Bad syntax is caught here, before bothering the daemon. */
	if (proto_check_filter(&f, err, sizeof(err)) != 0) {
		fprintf(stderr, "soconfig: %s\n", err);
		return SC_USAGE;
	}
	tuples = json_array();
	for (i = 0; i < f.cf_ntuples; i++)
		json_array_append_new(tuples, json_string(f.cf_tuples[i]));
	params = json_object();
	for (i = 0; i < f.cf_nparams; i++)
		json_object_set_new(params, f.cf_keys[i],
		    json_string(f.cf_vals[i]));
	o = json_pack("{s:s,s:s,s:s,s:o,s:o}", "name", f.cf_name, "module",
	    f.cf_module, "attach", f.cf_auto ? "auto" : "prog", "sockets",
	    tuples, "params", params);
	if (f.cf_placement[0] != '\0')
		json_object_set_new(o, "placement",
		    json_string(f.cf_placement));
	fp = sc_connect();
	resp = sc_call(fp, json_pack("{s:s,s:o}", "cmd", "set", "filter", o));
	fclose(fp);
	sc_check(resp);
	json_decref(resp);
	return SC_OK;
}

static int
sc_unset(const char *name)
{
	FILE *fp = sc_connect();
	json_t *resp =
	    sc_call(fp, json_pack("{s:s,s:s}", "cmd", "unset", "name", name));

	fclose(fp);
	sc_check(resp);
	json_decref(resp);
	return SC_OK;
}

int
main(int argc, char **argv)
{
	bool json = false;
	int i, n = 0;
	char **args;

	if (sdu_socket_path(NULL, sc_sock, sizeof(sc_sock)) != 0) {
		fprintf(stderr, "soconfig: SOCKFILTER_SOCKET is too long\n");
		return SC_USAGE;
	}
	signal(SIGPIPE, SIG_IGN);
	/* --json may come anywhere. */
	if ((args = calloc((size_t)argc + 1, sizeof(*args))) == NULL)
		return SC_FAIL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			args[n++] = argv[i];
	}
	if (n == 0)
		sc_usage();
	if (strcmp(args[0], "-F") == 0) {
		if (n == 2)
			return sc_unset(args[1]);
		if (n < 5)
			sc_usage();
		return sc_set(n - 1, args + 1);
	}
	if (n == 1 && strcmp(args[0], "-l") == 0)
		return sc_list(json);
	if (n == 1 && strcmp(args[0], "-s") == 0)
		return sc_stats(json);
	if (n == 1 && strcmp(args[0], "-P") == 0)
		return sc_procs(json);
	if (n == 2 && strcmp(args[0], "-p") == 0)
		return sc_pfiles(args[1], json);
	if (n == 1 && strcmp(args[0], "-V") == 0) {
		json_t *resp = sc_simple("ping");

		printf("soconfigd %s pid %lld epoch %lld configuration %lld\n",
		    json_string_value(json_object_get(resp, "version")),
		    (long long)json_integer_value(json_object_get(resp, "pid")),
		    (long long)json_integer_value(
		        json_object_get(resp, "epoch")),
		    (long long)json_integer_value(
		        json_object_get(resp, "config_version")));
		json_decref(resp);
		return SC_OK;
	}
	if (n == 1 && strcmp(args[0], "-r") == 0) {
		json_decref(sc_simple("reload"));
		return SC_OK;
	}
	if (n == 2 && strcmp(args[0], "log") == 0 && strcmp(args[1], "-f") == 0)
		return sc_follow();
	sc_usage();
	return SC_USAGE;
}
