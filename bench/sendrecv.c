/*
 * sendrecv: the cost of send() and recv() on a TCP loopback connection,
 * for comparing a program with and without the sockfilter preload.
 *
 *   sendrecv [-m pair|pingpong|bulk] [-s SIZE] [-n COUNT] [-t TOTAL] [-q]
 *
 * pair      one thread: send SIZE bytes on the client socket, recv them on
 *           the accepted socket, COUNT times (default 64 bytes, 200000).
 *           Exactly one send() and one recv() per iteration in the normal
 *           case; the calls actually made are counted and printed.
 * pingpong  the main thread sends SIZE bytes and waits for them to come
 *           back from an echo thread, COUNT round trips (default 50000).
 * bulk      the main thread sends TOTAL bytes (default 256M) in SIZE
 *           chunks (default 16K) while a reader thread receives them.
 *
 * SIZE and TOTAL take a K, M or G suffix (powers of 1024).  The program
 * prints one line of key=value results on standard output and, on
 * standard error, whether the sockfilter library is loaded and which
 * filters sit on both ends of the connection (getsockopt FIL_LIST), so
 * that a benchmark script can check it measures what it thinks it does.
 * Nothing here is timed against a limit: it reports, it does not judge.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sockfilter.h"

enum mode { MODE_PAIR, MODE_PINGPONG, MODE_BULK };

struct opts {
	enum mode mode;
	size_t size;
	unsigned long count;
	unsigned long long total;
	int quiet;
};

/* Calls made on the data path, counted to expose short transfers. */
struct calls {
	unsigned long sends;
	unsigned long recvs;
};

static void
die(const char *what)
{
	fprintf(stderr, "sendrecv: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sendrecv [-m pair|pingpong|bulk] [-s SIZE] [-n COUNT] "
	    "[-t TOTAL] [-q]\n");
	exit(2);
}

/* A byte count with an optional K/M/G suffix; 0 on error. */
static unsigned long long
parse_size(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s)
		return 0;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	default:
		break;
	}
	return *end == '\0' ? v : 0;
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Send all n bytes; returns 0, or -1 with errno. */
static int
send_all(int fd, const char *buf, size_t n, unsigned long *calls)
{
	while (n > 0) {
		ssize_t r = send(fd, buf, n, 0);

		(*calls)++;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* Receive exactly n bytes; returns 0, or -1 with errno (EPIPE on EOF). */
static int
recv_all(int fd, char *buf, size_t n, unsigned long *calls)
{
	while (n > 0) {
		ssize_t r = recv(fd, buf, n, 0);

		(*calls)++;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {
			errno = EPIPE;
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A connected loopback TCP pair: *cli from connect(), *srv from accept(). */
static void
make_pair(int *cli, int *srv)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int lfd, one = 1;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	lfd = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (lfd < 0)
		die("socket");
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("bind");
	if (listen(lfd, 1) < 0)
		die("listen");
	if (getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("getsockname");
	*cli = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (*cli < 0)
		die("socket");
	if (connect(*cli, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		die("connect");
	*srv = accept(lfd, NULL, NULL);
	if (*srv < 0)
		die("accept");
	close(lfd);
	/* Small messages must not wait for Nagle or delayed ACKs. */
	if (setsockopt(*cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(*srv, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt TCP_NODELAY");
}

/* The filter stack of fd as "a,b" (top first), "-" if empty, "n/a" if
 * the SOL_FILTER options are not there (no preload). */
static void
filter_list(int fd, char *out, size_t outlen)
{
	struct fil_info fi[16];
	socklen_t len = sizeof(fi);
	size_t i, n, used = 0;

	if (getsockopt(fd, SOL_FILTER, FIL_LIST, fi, &len) < 0) {
		snprintf(out, outlen, "n/a");
		return;
	}
	n = len / sizeof(fi[0]);
	if (n > sizeof(fi) / sizeof(fi[0]))
		n = sizeof(fi) / sizeof(fi[0]);
	if (n == 0) {
		snprintf(out, outlen, "-");
		return;
	}
	out[0] = '\0';
	for (i = 0; i < n && used < outlen; i++) {
		int w = snprintf(out + used, outlen - used, "%s%.*s",
		    i > 0 ? "," : "", FILNAME_MAX, fi[i].fi_name);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

/* On standard error: is the library loaded, and what is on the sockets. */
static void
report_setup(int cli, int srv)
{
	char a[256], b[256];

	filter_list(cli, a, sizeof(a));
	filter_list(srv, b, sizeof(b));
	fprintf(stderr, "sendrecv: preload=%s client=%s server=%s\n",
	    dlsym(RTLD_DEFAULT, "sof_register") != NULL ? "yes" : "no", a, b);
}

static void
run_pair(const struct opts *o, int cli, int srv, struct calls *c)
{
	char *sbuf = calloc(1, o->size), *rbuf = malloc(o->size);
	unsigned long i;

	if (sbuf == NULL || rbuf == NULL)
		die("malloc");
	for (i = 0; i < o->count; i++) {
		if (send_all(cli, sbuf, o->size, &c->sends) < 0)
			die("send");
		if (recv_all(srv, rbuf, o->size, &c->recvs) < 0)
			die("recv");
	}
	free(sbuf);
	free(rbuf);
}

struct peer {
	const struct opts *o;
	int fd;
	struct calls c;
	int err; /* errno of a failure, 0 if none */
};

/* Echo count messages of size bytes back to the sender. */
static void *
echo_main(void *arg)
{
	struct peer *p = arg;
	char *buf = malloc(p->o->size);
	unsigned long i;

	if (buf == NULL) {
		p->err = ENOMEM;
		return NULL;
	}
	for (i = 0; i < p->o->count; i++) {
		if (recv_all(p->fd, buf, p->o->size, &p->c.recvs) < 0 ||
		    send_all(p->fd, buf, p->o->size, &p->c.sends) < 0) {
			p->err = errno;
			break;
		}
	}
	free(buf);
	return NULL;
}

static void
run_pingpong(const struct opts *o, int cli, int srv, struct calls *c)
{
	struct peer p = {.o = o, .fd = srv};
	char *sbuf = calloc(1, o->size), *rbuf = malloc(o->size);
	pthread_t t;
	unsigned long i;
	int e;

	if (sbuf == NULL || rbuf == NULL)
		die("malloc");
	e = pthread_create(&t, NULL, echo_main, &p);
	if (e != 0) {
		errno = e;
		die("pthread_create");
	}
	for (i = 0; i < o->count; i++) {
		if (send_all(cli, sbuf, o->size, &c->sends) < 0)
			die("send");
		if (recv_all(cli, rbuf, o->size, &c->recvs) < 0)
			die("recv");
	}
	pthread_join(t, NULL);
	if (p.err != 0) {
		errno = p.err;
		die("echo thread");
	}
	c->sends += p.c.sends;
	c->recvs += p.c.recvs;
	free(sbuf);
	free(rbuf);
}

struct reader {
	int fd;
	size_t size;
	unsigned long long total;
	unsigned long recvs;
	int err;
};

/* Receive until total bytes came (or EOF/error). */
static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	char *buf = malloc(r->size);
	unsigned long long got = 0;

	if (buf == NULL) {
		r->err = ENOMEM;
		return NULL;
	}
	while (got < r->total) {
		ssize_t n = recv(r->fd, buf, r->size, 0);

		r->recvs++;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r->err = n < 0 ? errno : EPIPE;
			break;
		}
		got += (unsigned long long)n;
	}
	free(buf);
	return NULL;
}

static void
run_bulk(const struct opts *o, int cli, int srv, struct calls *c)
{
	struct reader r = {.fd = srv, .size = o->size, .total = o->total};
	char *buf = calloc(1, o->size);
	unsigned long long left = o->total;
	pthread_t t;
	int e;

	if (buf == NULL)
		die("malloc");
	e = pthread_create(&t, NULL, reader_main, &r);
	if (e != 0) {
		errno = e;
		die("pthread_create");
	}
	while (left > 0) {
		size_t n = left < o->size ? (size_t)left : o->size;

		if (send_all(cli, buf, n, &c->sends) < 0)
			die("send");
		left -= n;
	}
	pthread_join(t, NULL);
	if (r.err != 0) {
		errno = r.err;
		die("reader thread");
	}
	c->recvs = r.recvs;
	free(buf);
}

int
main(int argc, char **argv)
{
	struct opts o = {.mode = MODE_PAIR};
	struct calls c = {0, 0};
	unsigned long long v, bytes, ops;
	const char *mname;
	double t0, secs;
	int ch, cli, srv;

	while ((ch = getopt(argc, argv, "m:s:n:t:q")) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "pair") == 0)
				o.mode = MODE_PAIR;
			else if (strcmp(optarg, "pingpong") == 0)
				o.mode = MODE_PINGPONG;
			else if (strcmp(optarg, "bulk") == 0)
				o.mode = MODE_BULK;
			else
				usage();
			break;
		case 's':
			v = parse_size(optarg);
			if (v == 0 || v > (1ULL << 30))
				usage();
			o.size = (size_t)v;
			break;
		case 'n':
			v = parse_size(optarg);
			if (v == 0 || v > ULONG_MAX)
				usage();
			o.count = (unsigned long)v;
			break;
		case 't':
			o.total = parse_size(optarg);
			if (o.total == 0)
				usage();
			break;
		case 'q':
			o.quiet = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (o.size == 0)
		o.size = o.mode == MODE_BULK ? 16384 : 64;
	if (o.count == 0)
		o.count = o.mode == MODE_PINGPONG ? 50000 : 200000;
	if (o.total == 0)
		o.total = 256ULL << 20;

	signal(SIGPIPE, SIG_IGN);
	make_pair(&cli, &srv);
	if (!o.quiet)
		report_setup(cli, srv);

	t0 = now();
	switch (o.mode) {
	case MODE_PAIR:
		run_pair(&o, cli, srv, &c);
		mname = "pair";
		ops = o.count;
		bytes = (unsigned long long)o.count * o.size;
		break;
	case MODE_PINGPONG:
		run_pingpong(&o, cli, srv, &c);
		mname = "pingpong";
		ops = o.count;
		bytes = (unsigned long long)o.count * o.size;
		break;
	case MODE_BULK:
	default:
		run_bulk(&o, cli, srv, &c);
		mname = "bulk";
		ops = c.sends;
		bytes = o.total;
		break;
	}
	secs = now() - t0;
	if (secs <= 0)
		secs = 1e-9;
	close(cli);
	close(srv);

	/* ops: send+recv pairs (pair), round trips (pingpong), sends (bulk);
	 * MB/s counts the bytes carried one way, in 10^6 bytes. */
	printf("mode=%s size=%zu count=%lu bytes=%llu sends=%lu recvs=%lu "
	       "seconds=%.6f ops_per_s=%.0f MB_per_s=%.2f ns_per_op=%.1f\n",
	    mname, o.size, o.mode == MODE_BULK ? c.sends : o.count, bytes,
	    c.sends, c.recvs, secs, (double)ops / secs,
	    (double)bytes / secs / 1e6, secs * 1e9 / (double)ops);
	return 0;
}
