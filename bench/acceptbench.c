/*
 * acceptbench: connections accepted per second and request latency of a
 * small accept-and-respond server, for comparing accept filters (none,
 * Linux TCP_DEFER_ACCEPT, sockfilter's accf_data and accf_http under the
 * preload) and the effect of a flood of idle connections.
 *
 *   acceptbench server [-m epoll|iter] [-D] [-b BACKLOG]
 *   acceptbench client -p PORT [-c CONC] [-d SECS] [-t MS]
 *   acceptbench flood -p PORT -n N [-d SECS]
 *
 * server  listens on 127.0.0.1 (a free port, printed as "port N" on
 *         standard output), answers each connection's request (when its
 *         header ends, "\r\n\r\n") with a short HTTP response and closes
 *         it.  epoll: one thread, nonblocking, every connection in one
 *         epoll set (nginx's shape).  iter: one thread, blocking accept,
 *         one connection at a time, a 200 ms receive timeout (an
 *         iterative daemon's shape).  -D sets TCP_DEFER_ACCEPT (5 s).
 *         On standard error: whether the sockfilter library is loaded
 *         and the listener's filters (getsockopt FIL_LIST), so a script
 *         can check what it measures.  Runs until killed.
 * client  CONC threads (default 4), each connecting, sending one GET
 *         request, reading the answer to EOF and closing, for SECS
 *         seconds (default 3); -t is each connection's receive timeout
 *         (default 2000 ms).  Prints one key=value line: conns,
 *         conns_per_s, p50_us, p99_us (connect to EOF) and errors.
 * flood   opens N idle connections (nothing sent) and holds them SECS
 *         seconds (default 60) or until killed; prints "flood N".
 *
 * A report, not a judgement: nothing here compares with a limit.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sockfilter.h"

static const char ab_request[] = "GET / HTTP/1.1\r\nHost: bench\r\n"
                                 "User-Agent: acceptbench\r\n\r\n";
static const char ab_response[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                  "Connection: close\r\n\r\nok\n";

static void
ab_die(const char *what)
{
	fprintf(stderr, "acceptbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static double
ab_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
ab_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct sockaddr_in
ab_addr(int port)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	return sin;
}

/* What runs: the library or not, the listener's filters. */
static void
ab_report_setup(int fd)
{
	struct fil_info fi[8];
	socklen_t len = sizeof(fi);
	char names[256] = "";
	size_t off = 0, i;
	int preload = dlsym(RTLD_DEFAULT, "sof_register") != NULL;

	if (!preload)
		snprintf(names, sizeof(names), "n/a");
	else if (getsockopt(fd, SOL_FILTER, FIL_LIST, fi, &len) != 0 ||
	         len == 0)
		snprintf(names, sizeof(names), "-");
	else
		for (i = 0; i < len / sizeof(fi[0]) && off < sizeof(names); i++)
			off += (size_t)snprintf(names + off,
			    sizeof(names) - off, "%s%.*s", i > 0 ? "," : "",
			    FILNAME_MAX, fi[i].fi_name);
	fprintf(stderr, "acceptbench: preload=%s listener=%s\n",
	    preload ? "yes" : "no", names);
}

/* Has buf (len bytes, after the carried tail) completed a header? */
static int
ab_header_done(unsigned *state, const char *buf, size_t len)
{
	static const char end[] = "\r\n\r\n";
	size_t i;

	for (i = 0; i < len; i++) {
		if (buf[i] == end[*state])
			(*state)++;
		else
			*state = buf[i] == '\r' ? 1 : 0;
		if (*state == 4)
			return 1;
	}
	return 0;
}

static void
ab_serve_epoll(int lfd)
{
	struct epoll_event ev, evs[256];
	unsigned *state;
	int ep, n, i, maxfd = 65536;

	if ((state = calloc((size_t)maxfd, sizeof(*state))) == NULL)
		ab_die("calloc");
	if (fcntl(lfd, F_SETFL, fcntl(lfd, F_GETFL) | O_NONBLOCK) < 0)
		ab_die("fcntl");
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		ab_die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		ab_die("epoll_ctl");
	for (;;) {
		n = epoll_wait(ep, evs, 256, -1);
		for (i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			char buf[4096];
			ssize_t r;

			if (fd == lfd) {
				int c;

				while (
				    (c = accept4(lfd, NULL, NULL,
				         SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (c >= maxfd) {
						close(c);
						continue;
					}
					state[c] = 0;
					ev.events = EPOLLIN;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c,
					        &ev) < 0)
						close(c);
				}
				continue;
			}
			r = recv(fd, buf, sizeof(buf), 0);
			if (r < 0 && errno == EAGAIN)
				continue;
			if (r > 0 &&
			    !ab_header_done(&state[fd], buf, (size_t)r))
				continue;
			if (r > 0)
				(void)send(fd, ab_response,
				    sizeof(ab_response) - 1, MSG_NOSIGNAL);
			close(fd); /* also leaves the epoll set */
		}
	}
}

static void
ab_serve_iter(int lfd)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};

	for (;;) {
		unsigned state = 0;
		char buf[4096];
		ssize_t r;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			ab_die("accept");
		}
		(void)setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while ((r = recv(c, buf, sizeof(buf), 0)) > 0)
			if (ab_header_done(&state, buf, (size_t)r)) {
				(void)send(c, ab_response,
				    sizeof(ab_response) - 1, MSG_NOSIGNAL);
				break;
			}
		close(c);
	}
}

static int
ab_server(int argc, char **argv)
{
	struct sockaddr_in sin = ab_addr(0);
	socklen_t len = sizeof(sin);
	int opt, lfd, one = 1, backlog = 1024, defer = 0, iter = 0;

	while ((opt = getopt(argc, argv, "m:Db:")) != -1)
		switch (opt) {
		case 'm':
			iter = strcmp(optarg, "iter") == 0;
			break;
		case 'D':
			defer = 1;
			break;
		case 'b':
			backlog = atoi(optarg);
			break;
		default:
			return 2;
		}
	ab_nofile();
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		ab_die("socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		ab_die("bind");
	if (listen(lfd, backlog) < 0)
		ab_die("listen");
	if (defer) {
		int secs = 5;

		if (setsockopt(lfd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs,
		        sizeof(secs)) < 0)
			ab_die("TCP_DEFER_ACCEPT");
	}
	if (getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		ab_die("getsockname");
	ab_report_setup(lfd);
	printf("port %d\n", ntohs(sin.sin_port));
	fflush(stdout);
	if (iter)
		ab_serve_iter(lfd);
	else
		ab_serve_epoll(lfd);
	return 0;
}

struct ab_worker {
	pthread_t aw_tid;
	int aw_port;
	int aw_timeout_ms;
	double aw_end;
	unsigned long aw_conns, aw_errors;
	uint32_t *aw_lat; /* microseconds */
	size_t aw_nlat, aw_maxlat;
};

static int
ab_one(struct ab_worker *w, double *secs)
{
	struct sockaddr_in sin = ab_addr(w->aw_port);
	struct timeval tv = {.tv_sec = w->aw_timeout_ms / 1000,
	    .tv_usec = (w->aw_timeout_ms % 1000) * 1000};
	double t0 = ab_now();
	char buf[512];
	size_t got = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    send(fd, ab_request, sizeof(ab_request) - 1, MSG_NOSIGNAL) !=
	        (ssize_t)(sizeof(ab_request) - 1)) {
		close(fd);
		return -1;
	}
	while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
		got += (size_t)r;
	close(fd);
	if (r < 0 || got != sizeof(ab_response) - 1)
		return -1;
	*secs = ab_now() - t0;
	return 0;
}

static void *
ab_worker_main(void *arg)
{
	struct ab_worker *w = arg;
	double secs;

	while (ab_now() < w->aw_end) {
		if (ab_one(w, &secs) != 0) {
			w->aw_errors++;
			continue;
		}
		w->aw_conns++;
		if (w->aw_nlat < w->aw_maxlat)
			w->aw_lat[w->aw_nlat++] = (uint32_t)(secs * 1e6);
	}
	return NULL;
}

static int
ab_cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
ab_client(int argc, char **argv)
{
	struct ab_worker *w;
	uint32_t *all;
	unsigned long conns = 0, errors = 0;
	size_t nall = 0, j;
	double secs = 3, t0;
	int opt, conc = 4, port = 0, timeout_ms = 2000, i;

	while ((opt = getopt(argc, argv, "p:c:d:t:")) != -1)
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'c':
			conc = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		case 't':
			timeout_ms = atoi(optarg);
			break;
		default:
			return 2;
		}
	if (port <= 0 || conc <= 0 || conc > 256 || secs <= 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if ((w = calloc((size_t)conc, sizeof(*w))) == NULL)
		ab_die("calloc");
	t0 = ab_now();
	for (i = 0; i < conc; i++) {
		w[i].aw_port = port;
		w[i].aw_timeout_ms = timeout_ms;
		w[i].aw_end = t0 + secs;
		w[i].aw_maxlat = 1 << 20;
		if ((w[i].aw_lat = malloc(w[i].aw_maxlat * sizeof(uint32_t))) ==
		    NULL)
			ab_die("malloc");
		if ((errno = pthread_create(&w[i].aw_tid, NULL, ab_worker_main,
		         &w[i])) != 0)
			ab_die("pthread_create");
	}
	for (i = 0; i < conc; i++) {
		pthread_join(w[i].aw_tid, NULL);
		conns += w[i].aw_conns;
		errors += w[i].aw_errors;
		nall += w[i].aw_nlat;
	}
	secs = ab_now() - t0;
	if ((all = malloc((nall + 1) * sizeof(*all))) == NULL)
		ab_die("malloc");
	for (i = 0, j = 0; i < conc; i++) {
		memcpy(all + j, w[i].aw_lat, w[i].aw_nlat * sizeof(*all));
		j += w[i].aw_nlat;
		free(w[i].aw_lat);
	}
	qsort(all, nall, sizeof(*all), ab_cmp_u32);
	printf("conns=%lu secs=%.3f conns_per_s=%.1f p50_us=%u p99_us=%u "
	       "errors=%lu\n",
	    conns, secs, (double)conns / secs, nall > 0 ? all[nall / 2] : 0,
	    nall > 0 ? all[nall * 99 / 100] : 0, errors);
	free(all);
	free(w);
	return 0;
}

static int
ab_flood(int argc, char **argv)
{
	struct sockaddr_in sin;
	double secs = 60, end;
	int opt, port = 0, n = 0, i, *fds;

	while ((opt = getopt(argc, argv, "p:n:d:")) != -1)
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			n = atoi(optarg);
			break;
		case 'd':
			secs = atof(optarg);
			break;
		default:
			return 2;
		}
	if (port <= 0 || n <= 0)
		return 2;
	ab_nofile();
	sin = ab_addr(port);
	if ((fds = calloc((size_t)n, sizeof(*fds))) == NULL)
		ab_die("calloc");
	for (i = 0; i < n; i++) {
		if ((fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) <
		    0)
			ab_die("socket");
		if (connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)) < 0)
			ab_die("connect");
	}
	printf("flood %d\n", n);
	fflush(stdout);
	end = ab_now() + secs;
	while (ab_now() < end)
		usleep(100000);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return ab_server(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "client") == 0)
		return ab_client(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "flood") == 0)
		return ab_flood(argc - 1, argv + 1);
	fprintf(stderr, "usage: acceptbench server|client|flood [options]\n");
	return 2;
}
