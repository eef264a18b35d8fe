/*
 * filopt: the SOL_FILTER socket options of an unmodified program, run
 * under libsockfilter.so by the sol_filter case.  The configuration must
 * have, for inet:stream:tcp, "datafilt" automatic, "xorfilt" programmatic,
 * and "ghost" programmatic with a module that does not exist.  One
 * PASS/FAIL line per check; the status is 1 if any check failed.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockfilter.h"

#define FO_MAX 8

static int fo_failures;

static void
fo_check(int ok, const char *what, const char *detail)
{
	if (ok || detail == NULL)
		printf("%s: %s\n", ok ? "PASS" : "FAIL", what);
	else
		printf("FAIL: %s (%s)\n", what, detail);
	if (!ok)
		fo_failures++;
}

static const char *
fo_errname(int e)
{
	const char *name;

	if (e == 0)
		return "success";
	name = strerrorname_np(e);
	return name != NULL ? name : "unknown errno";
}

/* setsockopt(SOL_FILTER, opt, name): 0 or the errno. */
static int
fo_setopt(int fd, int opt, const char *name)
{
	if (setsockopt(fd, SOL_FILTER, opt, name,
	        (socklen_t)strlen(name) + 1) == 0)
		return 0;
	return errno;
}

/* Expect setsockopt(SOL_FILTER, opt, name) to end with want (0 or errno). */
static void
fo_expect(int fd, int opt, const char *name, int want, const char *what)
{
	char detail[96];
	int got = fo_setopt(fd, opt, name);

	snprintf(detail, sizeof(detail), "got %s, want %s", fo_errname(got),
	    fo_errname(want));
	fo_check(got == want, what, detail);
}

/* FIL_LIST into fi; the number of entries, or -1 (reported) on error. */
static int
fo_list(int fd, struct fil_info *fi, const char *what)
{
	socklen_t len = FO_MAX * sizeof(*fi);
	char detail[96];

	memset(fi, 0, FO_MAX * sizeof(*fi));
	if (getsockopt(fd, SOL_FILTER, FIL_LIST, fi, &len) != 0) {
		snprintf(detail, sizeof(detail), "getsockopt: %s",
		    fo_errname(errno));
		fo_check(0, what, detail);
		return -1;
	}
	if (len % sizeof(*fi) != 0) {
		snprintf(detail, sizeof(detail),
		    "optlen %u is not a multiple of %zu", (unsigned)len,
		    sizeof(*fi));
		fo_check(0, what, detail);
		return -1;
	}
	return (int)(len / sizeof(*fi));
}

/*
 * Expect FIL_LIST to be exactly spec, top first: space-separated
 * "name:pos:flags" entries, flags being the FILF_* bits set, as the
 * letters P (FILF_PROG), A (FILF_AUTO) and B (FILF_BYPASS).
 */
static void
fo_expect_list(int fd, const char *spec, const char *what)
{
	struct fil_info fi[FO_MAX];
	char got[FO_MAX * 64], detail[2 * sizeof(got)];
	size_t off = 0;
	int n, i;

	n = fo_list(fd, fi, what);
	if (n < 0)
		return;
	got[0] = '\0';
	for (i = 0; i < n && off < sizeof(got); i++) {
		fi[i].fi_name[FILNAME_MAX - 1] = '\0';
		off += (size_t)snprintf(got + off, sizeof(got) - off,
		    "%s%s:%d:%s%s%s", i ? " " : "", fi[i].fi_name, fi[i].fi_pos,
		    fi[i].fi_flags & FILF_PROG ? "P" : "",
		    fi[i].fi_flags & FILF_AUTO ? "A" : "",
		    fi[i].fi_flags & FILF_BYPASS ? "B" : "");
	}
	snprintf(detail, sizeof(detail), "got [%s], want [%s]", got, spec);
	fo_check(strcmp(got, spec) == 0, what, detail);
}

static int
fo_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0) {
		perror("filopt: socket");
		fo_failures++;
	}
	return fd;
}

static int
fo_bind(int fd)
{
	struct sockaddr_in sin;
	char detail[96];
	int error = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		error = errno;
	snprintf(detail, sizeof(detail), "%s", fo_errname(error));
	fo_check(error == 0, "bind 127.0.0.1:0", detail);
	return error;
}

int
main(void)
{
	struct fil_info fi[FO_MAX];
	socklen_t len;
	char detail[96];
	int fd, fd2, error;

	setvbuf(stdout, NULL, _IOLBF, 0);

	/* A fresh TCP socket has the automatic filter only. */
	if ((fd = fo_socket()) < 0)
		return 1;
	fo_expect_list(fd, "datafilt:0:A", "FIL_LIST of a new TCP socket");

	/* Programmatic attach goes on top. */
	fo_expect(fd, FIL_ATTACH, "xorfilt", 0, "FIL_ATTACH xorfilt");
	fo_expect_list(fd, "xorfilt:1:P datafilt:0:A",
	    "FIL_LIST after FIL_ATTACH");
	fo_expect(fd, FIL_ATTACH, "xorfilt", EEXIST,
	    "FIL_ATTACH xorfilt again -> EEXIST");
	fo_expect(fd, FIL_ATTACH, "sf_e2e_unknown", ENXIO,
	    "FIL_ATTACH of an unknown filter -> ENXIO");
	fo_expect(fd, FIL_ATTACH, "ghost", ENXIO,
	    "FIL_ATTACH of a filter whose module is missing -> ENXIO");
	fo_expect(fd, FIL_DETACH, "ghost", ENXIO,
	    "FIL_DETACH of a configured, unattached filter -> ENXIO");
	fo_expect(fd, FIL_DETACH, "sf_e2e_unknown", ENXIO,
	    "FIL_DETACH of an unknown filter -> ENXIO");
	fo_expect_list(fd, "xorfilt:1:P datafilt:0:A",
	    "FIL_LIST after the failed attaches and detaches");

	/* Detach, then attach again. */
	fo_expect(fd, FIL_DETACH, "xorfilt", 0, "FIL_DETACH xorfilt");
	fo_expect_list(fd, "datafilt:0:A", "FIL_LIST after FIL_DETACH");
	fo_expect(fd, FIL_ATTACH, "xorfilt", 0,
	    "FIL_ATTACH xorfilt after FIL_DETACH");

	/* After another operation the stack is fixed. */
	fo_bind(fd);
	fo_expect(fd, FIL_DETACH, "xorfilt", EINVAL,
	    "FIL_DETACH after bind -> EINVAL");
	fo_expect_list(fd, "xorfilt:1:P datafilt:0:A", "FIL_LIST after bind");
	if ((fd2 = fo_socket()) >= 0) {
		fo_bind(fd2);
		fo_expect(fd2, FIL_ATTACH, "xorfilt", EINVAL,
		    "FIL_ATTACH after bind -> EINVAL");
		fo_expect_list(fd2, "datafilt:0:A",
		    "FIL_LIST after a refused FIL_ATTACH");
		close(fd2);
	}

	/* A buffer smaller than one entry. */
	len = sizeof(struct fil_info) - 1;
	error = getsockopt(fd, SOL_FILTER, FIL_LIST, fi, &len) == 0 ? 0 : errno;
	snprintf(detail, sizeof(detail), "got %s, want EINVAL",
	    fo_errname(error));
	fo_check(error == EINVAL,
	    "FIL_LIST into less than one struct fil_info -> EINVAL", detail);

	close(fd);
	printf("%d failures\n", fo_failures);
	return fo_failures ? 1 : 0;
}
