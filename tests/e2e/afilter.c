/*
 * afilter.c: SO_ACCEPTFILTER used as FreeBSD code uses it, on Linux
 * under the preload.  Prints PASS/FAIL lines; exit status 0 when all
 * passed.  Usage: afilter (loopback, a free port chosen by the kernel).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockfilter.h" /* SO_ACCEPTFILTER, struct accept_filter_arg */

static int failures;

static void
check(int ok, const char *what, int err)
{
	printf("%s %s", ok ? "PASS" : "FAIL", what);
	if (!ok)
		printf(" (errno %s)", strerror(err));
	printf("\n");
	fflush(stdout);
	failures += !ok;
}

static int
setaf(int fd, const char *name, const char *arg, socklen_t len)
{
	struct accept_filter_arg afa;

	memset(&afa, 0, sizeof(afa));
	snprintf(afa.af_name, sizeof(afa.af_name), "%s", name);
	if (arg != NULL)
		snprintf(afa.af_arg, sizeof(afa.af_arg), "%s", arg);
	return setsockopt(fd, SOL_SOCKET, SO_ACCEPTFILTER, &afa, len);
}

static int
client(const struct sockaddr_in *sin, const char *data)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 ||
	    connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0)
		return -1;
	if (data != NULL && write(fd, data, strlen(data)) < 0)
		return -1;
	return fd;
}

static int
readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

int
main(void)
{
	static const char req1[] = "GET /a HTTP/1.1\r\nHost: x\r\n";
	static const char req2[] = "\r\n";
	struct accept_filter_arg got;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char buf[256];
	int l, c1, c2, a, r, e;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		return 2;
	r = setaf(l, "httpready", NULL, sizeof(struct accept_filter_arg));
	check(r < 0 && errno == EINVAL, "EINVAL before listen", errno);
	if (listen(l, 16) < 0)
		return 2;
	r = setaf(l, "nosuchfilter", NULL, sizeof(struct accept_filter_arg));
	check(r < 0 && errno == ENOENT, "ENOENT for an unknown filter", errno);
	r = setaf(l, "httpready", NULL, 16);
	check(r < 0 && errno == EINVAL, "EINVAL without the whole structure",
	    errno);
	len = sizeof(got);
	r = getsockopt(l, SOL_SOCKET, SO_ACCEPTFILTER, &got, &len);
	check(r < 0 && errno == EINVAL, "getsockopt: EINVAL while none is set",
	    errno);
	r = setaf(l, "httpready", "timeout=60s",
	    sizeof(struct accept_filter_arg));
	check(r == 0, "httpready attached after listen", errno);
	r = setaf(l, "dataready", NULL, sizeof(struct accept_filter_arg));
	check(r < 0 && errno == EINVAL, "EINVAL when one is set already",
	    errno);
	len = sizeof(got);
	r = getsockopt(l, SOL_SOCKET, SO_ACCEPTFILTER, &got, &len);
	check(r == 0 && strcmp(got.af_name, "httpready") == 0 &&
	          strcmp(got.af_arg, "timeout=60s") == 0,
	    "getsockopt returns the name and argument", errno);

	/* Half a header: held.  The rest: accepted, data intact. */
	c1 = client(&sin, req1);
	check(!readable(l, 300), "half a request: the listener stays quiet", 0);
	fcntl(l, F_SETFL, O_NONBLOCK);
	a = accept(l, NULL, NULL);
	e = errno;
	check(a < 0 && e == EAGAIN, "half a request: accept says EAGAIN", e);
	(void)write(c1, req2, strlen(req2));
	check(readable(l, 5000), "whole header: the listener is readable", 0);
	a = accept(l, NULL, NULL);
	e = errno;
	check(a >= 0, "whole header: accepted", e);
	r = a >= 0 ? (int)read(a, buf, sizeof(buf)) : -1;
	check(r == (int)(strlen(req1) + strlen(req2)) &&
	          memcmp(buf, req1, strlen(req1)) == 0,
	    "the request arrives intact", errno);
	close(a);

	/* An idle connection is held until the filter is removed. */
	c2 = client(&sin, NULL);
	check(!readable(l, 300), "idle connection: held", 0);
	r = setsockopt(l, SOL_SOCKET, SO_ACCEPTFILTER, NULL, 0);
	check(r == 0, "NULL removes the filter", errno);
	check(readable(l, 5000), "removal releases the held connection", 0);
	a = accept(l, NULL, NULL);
	check(a >= 0, "the released connection is accepted", errno);
	len = sizeof(got);
	r = getsockopt(l, SOL_SOCKET, SO_ACCEPTFILTER, &got, &len);
	check(r < 0 && errno == EINVAL, "getsockopt: EINVAL after removal",
	    errno);
	close(a);
	close(c1);
	close(c2);
	close(l);
	printf("%s %d failure(s)\n", failures ? "FAILED" : "OK", failures);
	return failures ? 1 : 0;
}
