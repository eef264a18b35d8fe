/*
 * mtecho: a threaded echo server and client for the threaded_echo case.
 *
 *   mtecho server PORT THREADS CONNS
 *	THREADS threads block in accept() on one listening socket (a
 *	pre-threaded server); each serves its connections one request at a
 *	time and checks every request's checksum.  Exits after CONNS
 *	connections and prints "server: ..." counts; status 1 on a bad
 *	checksum or an I/O error.
 *   mtecho client PORT THREADS CONNS MSGS SEED
 *	THREADS threads each open CONNS connections, one after the other,
 *	and exchange MSGS requests of 1 B to 48 KiB on each (sometimes two
 *	in flight), checking every echo.  Half the connections end with
 *	shutdown(SHUT_WR) and wait for the server's EOF, the others just
 *	close.  Prints "client: ..." counts; status 1 on any mismatch.
 *
 * A request is a header (length and FNV-1a checksum, network order) and
 * the bytes; the answer is the header the server computed and the same
 * bytes.  Counts are fixed by the arguments, so the output is the same
 * with and without the preload.  SO_RCVTIMEO/SO_SNDTIMEO are hang guards.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAXMSG    (48 * 1024)
#define TIMEOUT_S 20

static int lfd, port, nthreads, nconns, nmsgs;
static unsigned seed0;
static atomic_int served, accepted, requests, bad, ioerr, eof_seen;
static atomic_long bytes;

static uint32_t
fnv(const unsigned char *p, size_t len)
{
	uint32_t h = 2166136261u;

	while (len-- > 0) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

static uint32_t
xs(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void
guard(int fd)
{
	struct timeval tv = {TIMEOUT_S, 0};
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Read exactly len bytes: 1, 0 at EOF before any byte, -1 on error. */
static int
readn(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = recv(fd, (char *)buf + done, len - done, 0);

		if (n == 0 && done == 0)
			return 0;
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)n;
	}
	return 1;
}

static int
writen(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done,
		    MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Server: header and bytes back in one writev (a gather on the path). */
static void
serve(int fd, unsigned char *buf)
{
	uint32_t hdr[2];

	for (;;) {
		struct iovec iov[2];
		uint32_t len, sum;
		ssize_t n;
		size_t want;
		int r = readn(fd, hdr, sizeof(hdr));

		if (r == 0) {
			atomic_fetch_add(&eof_seen, 1);
			return;
		}
		len = ntohl(hdr[0]);
		if (r < 0 || len > MAXMSG || readn(fd, buf, len) != 1) {
			atomic_fetch_add(&ioerr, 1);
			return;
		}
		sum = fnv(buf, len);
		if (sum != ntohl(hdr[1]))
			atomic_fetch_add(&bad, 1);
		atomic_fetch_add(&requests, 1);
		hdr[1] = htonl(sum);
		iov[0].iov_base = hdr;
		iov[0].iov_len = sizeof(hdr);
		iov[1].iov_base = buf;
		iov[1].iov_len = len;
		want = sizeof(hdr) + len;
		n = writev(fd, iov, 2);
		/* A short writev: the rest with send. */
		if (n < 0 ||
		    ((size_t)n < want && ((size_t)n < sizeof(hdr) ||
		                             writen(fd, buf + (n - sizeof(hdr)),
		                                 want - (size_t)n) != 0))) {
			atomic_fetch_add(&ioerr, 1);
			return;
		}
	}
}

static void *
server_thread(void *arg)
{
	unsigned char *buf = malloc(MAXMSG);

	(void)arg;
	if (buf == NULL)
		return NULL;
	while (atomic_fetch_add(&accepted, 1) < nconns) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			atomic_fetch_add(&ioerr, 1);
			continue;
		}
		guard(fd);
		serve(fd, buf);
		close(fd);
		atomic_fetch_add(&served, 1);
	}
	free(buf);
	return NULL;
}

static int
do_server(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	int one = 1, i;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (t == NULL || lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 128) < 0) {
		perror("mtecho server: listen");
		return 1;
	}
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, server_thread, NULL) != 0) {
			perror("pthread_create");
			return 1;
		}
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	close(lfd);
	free(t);
	printf("server: %d connections, %d requests, %d bad checksums, "
	       "%d I/O errors, %d clean EOFs\n",
	    atomic_load(&served), atomic_load(&requests), atomic_load(&bad),
	    atomic_load(&ioerr), atomic_load(&eof_seen));
	return atomic_load(&bad) || atomic_load(&ioerr) ||
	       atomic_load(&served) != nconns;
}

struct req {
	uint32_t len, sum;
	unsigned char *data;
};

static void
make_req(struct req *r, uint32_t *s)
{
	uint32_t i, x = xs(s);

	/* Mostly small, some large: sizes that cross block boundaries. */
	r->len = x % 4 == 0 ? 1 + xs(s) % MAXMSG : 1 + xs(s) % 512;
	for (i = 0; i < r->len; i++)
		r->data[i] = (unsigned char)xs(s);
	r->sum = fnv(r->data, r->len);
}

static int
send_req(int fd, const struct req *r)
{
	uint32_t hdr[2] = {htonl(r->len), htonl(r->sum)};

	return writen(fd, hdr, sizeof(hdr)) || writen(fd, r->data, r->len);
}

/* 0 when the echo of r came back intact. */
static int
check_reply(int fd, const struct req *r, unsigned char *buf)
{
	uint32_t hdr[2];

	if (readn(fd, hdr, sizeof(hdr)) != 1 || ntohl(hdr[0]) != r->len ||
	    ntohl(hdr[1]) != r->sum || readn(fd, buf, r->len) != 1 ||
	    memcmp(buf, r->data, r->len) != 0)
		return -1;
	return 0;
}

static void *
client_thread(void *arg)
{
	int id = (int)(intptr_t)arg, c, m;
	uint32_t s = seed0 * 2654435761u + (uint32_t)id * 40503u + 1;
	unsigned char *d0 = malloc(MAXMSG), *d1 = malloc(MAXMSG),
	              *buf = malloc(MAXMSG);
	struct sockaddr_in sin = {.sin_family = AF_INET};

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	if (d0 == NULL || d1 == NULL || buf == NULL) {
		atomic_fetch_add(&ioerr, 1);
		goto out;
	}
	for (c = 0; c < nconns; c++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0 ||
		    connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
			atomic_fetch_add(&ioerr, 1);
			if (fd >= 0)
				close(fd);
			continue;
		}
		guard(fd);
		for (m = 0; m < nmsgs; m++) {
			struct req a = {.data = d0}, b = {.data = d1};
			int two = m + 1 < nmsgs && xs(&s) % 3 == 0;

			make_req(&a, &s);
			if (two)
				make_req(&b, &s);
			if (send_req(fd, &a) || (two && send_req(fd, &b))) {
				atomic_fetch_add(&ioerr, 1);
				break;
			}
			if (check_reply(fd, &a, buf) ||
			    (two && check_reply(fd, &b, buf)))
				atomic_fetch_add(&bad, 1);
			atomic_fetch_add(&requests, 1 + two);
			atomic_fetch_add(&bytes,
			    (long)(a.len + (two ? b.len : 0)));
			m += two;
		}
		if (c % 2 == 0) {
			char x;

			shutdown(fd, SHUT_WR);
			if (recv(fd, &x, 1, 0) == 0)
				atomic_fetch_add(&eof_seen, 1);
			else
				atomic_fetch_add(&bad, 1);
		}
		close(fd);
		atomic_fetch_add(&served, 1);
	}
out:
	free(d0);
	free(d1);
	free(buf);
	return NULL;
}

static int
do_client(void)
{
	pthread_t *t = calloc((size_t)nthreads, sizeof(*t));
	int i;

	if (t == NULL)
		return 1;
	/* One socket before the threads, as most programs have: under
	 * ThreadSanitizer a dlopen (the library loading its filter module
	 * on a first socket) racing pthread_create can deadlock inside the
	 * sanitizer's runtime, which is not what this test is about. */
	close(socket(AF_INET, SOCK_STREAM, 0));
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&t[i], NULL, client_thread,
		        (void *)(intptr_t)i) != 0) {
			perror("pthread_create");
			return 1;
		}
	for (i = 0; i < nthreads; i++)
		pthread_join(t[i], NULL);
	free(t);
	printf("client: %d connections, %d requests, %ld bytes, "
	       "%d mismatches, %d I/O errors, %d EOFs after SHUT_WR\n",
	    atomic_load(&served), atomic_load(&requests), atomic_load(&bytes),
	    atomic_load(&bad), atomic_load(&ioerr), atomic_load(&eof_seen));
	return atomic_load(&bad) || atomic_load(&ioerr) ||
	       atomic_load(&served) != nthreads * nconns;
}

int
main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "server") == 0) {
		port = atoi(argv[2]);
		nthreads = atoi(argv[3]);
		nconns = atoi(argv[4]);
		return do_server();
	}
	if (argc == 7 && strcmp(argv[1], "client") == 0) {
		port = atoi(argv[2]);
		nthreads = atoi(argv[3]);
		nconns = atoi(argv[4]);
		nmsgs = atoi(argv[5]);
		seed0 = (unsigned)strtoul(argv[6], NULL, 0);
		return do_client();
	}
	fprintf(stderr, "usage: mtecho server PORT THREADS CONNS\n"
	                "       mtecho client PORT THREADS CONNS MSGS SEED\n");
	return 2;
}
