/*
 * sockfilter: run a program under libsockfilter.so, as torsocks or
 * trickle do.
 *
 *   sockfilter [-c CONF] [-a FILTER[,FILTER]...] [--] PROGRAM [ARGS]
 *
 * The library is the one of this installation: P/bin/sockfilter uses
 * P/LIBDIR/libsockfilter.so (P/lib/libsockfilter.so as a fallback), put in
 * front of any LD_PRELOAD already set.
 *   -c CONF   use this configuration file, apart from any daemon
 *             (SOCKFILTER_CONF=CONF, SOCKFILTER_SOCKET=none)
 *   -a LIST   these configured filters attach automatically to every
 *             socket they match in this program, even those configured
 *             "prog" (SOCKFILTER_ATTACH=LIST, read by the library)
 * Exit status: the program's, or 125 (sockfilter's own error), 126 (not
 * executable), 127 (not found), as env(1) does.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdutil.h"

static void
sf_usage(void)
{
	fprintf(stderr, "usage: sockfilter [-c CONF] [-a FILTER[,FILTER]...] "
	                "[--] PROGRAM [ARGS]\n");
	exit(125);
}

int
main(int argc, char **argv)
{
	char dir[PATH_MAX], lib[PATH_MAX + 64], conf[PATH_MAX], *pre;
	const char *attach = NULL, *cf = NULL, *old;
	int c;

	/* "+": stop at the program's name, its options are its own. */
	while ((c = getopt(argc, argv, "+c:a:h")) != -1) {
		switch (c) {
		case 'c':
			cf = optarg;
			break;
		case 'a':
			attach = optarg;
			break;
		default:
			sf_usage();
		}
	}
	if (optind >= argc)
		sf_usage();
	sdu_exe_dir(dir, sizeof(dir));
	snprintf(lib, sizeof(lib), "%s/../%s/libsockfilter.so", dir,
	    SDU_LIBDIR);
	if (access(lib, R_OK) != 0)
		snprintf(lib, sizeof(lib), "%s/../lib/libsockfilter.so", dir);
	if (dir[0] == '\0' || realpath(lib, conf) == NULL) {
		fprintf(stderr,
		    "sockfilter: cannot find libsockfilter.so beside %s/ "
		    "(expected %s)\n",
		    dir, lib);
		return 125;
	}
	snprintf(lib, sizeof(lib), "%s", conf);
	old = getenv("LD_PRELOAD");
	if (old != NULL && *old != '\0') {
		if (asprintf(&pre, "%s:%s", lib, old) < 0)
			return 125;
	} else if ((pre = strdup(lib)) == NULL) {
		return 125;
	}
	if (cf != NULL) {
		if (realpath(cf, conf) == NULL) {
			fprintf(stderr, "sockfilter: %s: %s\n", cf,
			    strerror(errno));
			return 125;
		}
		setenv("SOCKFILTER_CONF", conf, 1);
		setenv("SOCKFILTER_SOCKET", "none", 1);
	}
	if (attach != NULL)
		setenv("SOCKFILTER_ATTACH", attach, 1);
	setenv("LD_PRELOAD", pre, 1);
	free(pre);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "sockfilter: %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
