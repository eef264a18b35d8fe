/*
 * sftest.h: tiny helpers shared by the interposer-semantics programs.
 *
 * Every program prints one "PASS name" or "FAIL name: why" line per check
 * and exits non-zero if any check failed.  The output must be the same
 * with and without the preload, so nothing printed may depend on pids,
 * ports, descriptor numbers, addresses or timings.
 *
 * Programs given the argument "xor" also attach the programmatic filter
 * xorfilt to every inet socket they create (both ends of each connection,
 * listeners included so accepted sockets inherit it).  The wire then
 * carries transformed bytes while the application must still see its own
 * data: a call path that bypasses the filter on either side shows up as
 * corrupted data.  Without the preload the attach fails and is ignored.
 */
#ifndef SFTEST_H
#define SFTEST_H

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* SOL_FILTER/FIL_ATTACH as in include/sockfilter.h; the programs do not
 * include it so that they stay plain socket programs. */
#define SFT_SOL_FILTER 0xfffc
#define SFT_FIL_ATTACH 0x1

static int sft_failures;
static int sft_xor; /* attach xorfilt to every inet socket we create */

/* check(ok, name, fmt, ...): one PASS or FAIL line; returns ok. */
__attribute__((format(printf, 3, 4))) static inline int
sft_check(int ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("PASS %s\n", name);
	} else {
		sft_failures++;
		printf("FAIL %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	/* Flushed at once: a crash or a fork must not lose or repeat lines. */
	fflush(stdout);
	return ok;
}

#define SFT_ERR(e) ((e) == 0 ? "no error" : strerrorname_np(e))

/* A fatal setup failure: the remaining checks would be meaningless. */
#define SFT_DIE(what)                                                          \
	do {                                                                   \
		printf("FAIL setup %s: %s\n", (what), SFT_ERR(errno));         \
		exit(2);                                                       \
	} while (0)

static inline void
sft_init(int argc, char **argv)
{
	sft_xor = argc > 1 && strcmp(argv[1], "xor") == 0;
	/* A write to a peer that closed must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
}

static inline int
sft_done(void)
{
	printf("%s %d failure(s)\n", sft_failures ? "FAILED" : "OK",
	    sft_failures);
	fflush(stdout);
	return sft_failures ? 1 : 0;
}

/* True when libsockfilter is loaded (it exports the sof_* API). */
static inline int
sft_preloaded(void)
{
	return dlsym(RTLD_DEFAULT, "sof_register") != NULL;
}

/* Attach xorfilt when asked.  Only a failure under the real library is
 * reported, once, so that both runs print the same when all is well. */
static inline void
sft_maybe_xor(int fd)
{
	static int reported;

	if (!sft_xor)
		return;
	if (setsockopt(fd, SFT_SOL_FILTER, SFT_FIL_ATTACH, "xorfilt",
	        sizeof("xorfilt")) == 0 ||
	    !sft_preloaded() || reported)
		return;
	reported = 1;
	sft_check(0, "xorfilt attach", "%s", SFT_ERR(errno));
}

/* socket() plus the optional xorfilt attach. */
static inline int
sft_socket(int family, int type)
{
	int fd = socket(family, type, 0);

	if (fd < 0)
		SFT_DIE("socket");
	sft_maybe_xor(fd);
	return fd;
}

/* A loopback address of family with port 0. */
static inline socklen_t
sft_loopback(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*s4);
}

/* A socket of type bound to an ephemeral loopback port. */
static inline int
sft_bound(int family, int type)
{
	struct sockaddr_storage ss;
	socklen_t len = sft_loopback(family, &ss);
	int fd = sft_socket(family, type);

	if (bind(fd, (struct sockaddr *)&ss, len) != 0)
		SFT_DIE("bind");
	return fd;
}

static inline int
sft_listener(int family)
{
	int fd = sft_bound(family, SOCK_STREAM);

	if (listen(fd, 16) != 0)
		SFT_DIE("listen");
	return fd;
}

/* connect(fd) to the address a bound socket has. */
static inline int
sft_connect_to(int fd, int bound)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(bound, (struct sockaddr *)&ss, &len) != 0)
		SFT_DIE("getsockname");
	return connect(fd, (struct sockaddr *)&ss, len);
}

/* A connected TCP pair over loopback through listener lfd. */
static inline void
sft_tcp_pair_on(int lfd, int family, int *cli, int *srv)
{
	*cli = sft_socket(family, SOCK_STREAM);
	if (sft_connect_to(*cli, lfd) != 0)
		SFT_DIE("connect");
	*srv = accept(lfd, NULL, NULL);
	if (*srv < 0)
		SFT_DIE("accept");
}

static inline void
sft_tcp_pair(int family, int *cli, int *srv)
{
	int lfd = sft_listener(family);

	sft_tcp_pair_on(lfd, family, cli, srv);
	close(lfd);
}

/* n, hidden from the optimiser: with -D_FORTIFY_SOURCE=2 a length the
 * compiler cannot prove safe turns read/recv/recvfrom into their _chk
 * variants, entry points the preload must wrap as well. */
static inline size_t
sft_n(size_t n)
{
	volatile size_t v = n;

	return v;
}

/* Write all of buf, looping over short writes. */
static inline int
sft_write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Read exactly len bytes; the byte count read before EOF or an error. */
static inline size_t
sft_read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* Wait until fd is readable (bounded); 1 if it is. */
static inline int
sft_wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

static inline void
sft_msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static inline long
sft_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Wait for a forked child; 1 if it exited with status 0. */
static inline int
sft_wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* fork() with stdout flushed first so that nothing is printed twice. */
static inline pid_t
sft_fork(void)
{
	pid_t pid;

	fflush(stdout);
	pid = fork();
	if (pid < 0)
		SFT_DIE("fork");
	return pid;
}

#endif /* SFTEST_H */
