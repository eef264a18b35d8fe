/*
 * threads.c: many threads on many sockets at once.  A threaded TCP echo
 * server (an accept thread, one thread per connection) serves
 *   - NCLIENTS client threads, each doing NEXCH request/response
 *     exchanges of varying sizes with checksums, every client through
 *     another family of calls (read/write, recv/send, recvmsg/sendmsg,
 *     readv/writev, nonblocking with poll);
 *   - one socket shared by two threads: one only sends, the other only
 *     receives, at the same time;
 *   - a thread that opens NCHURN connections and closes each one itself
 *     (half of them in the middle of a request) while the others work.
 * Registered with the label "threaded" so that the ThreadSanitizer pass
 * runs it (the preload library is then instrumented too).
 *
 * Protocol: a request is an 8-byte header (length, checksum, network
 * order) and length bytes; the server checks the checksum and answers
 * with a header (length, the checksum it computed) and the same bytes.
 * Every count is fixed, so the output is the same with and without the
 * preload.  Threads never print: they count, main reports after joining.
 */
#include "sftest.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/time.h>
#include <sys/uio.h>

#define NCLIENTS  8
#define NEXCH     120 /* exchanges per client */
#define NSHARED   300 /* messages on the shared socket */
#define NCHURN    40  /* connections the churn thread closes */
#define NCONNS    (NCLIENTS + 1 + NCHURN)
#define MAXMSG    (48 * 1024)
#define TIMEOUT_S 20 /* SO_RCVTIMEO/SO_SNDTIMEO: a hang guard only */

static int lfd;
static struct sockaddr_storage laddr;
static socklen_t laddrlen;

/* Server side counters. */
static atomic_int srv_accepted, srv_requests, srv_bad_sum, srv_eof_clean,
    srv_eof_truncated, srv_io_errors;

/* ---------------------------------------------------------------------
 * Helpers.
 * ------------------------------------------------------------------- */

static uint32_t
xs32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* FNV-1a. */
static uint32_t
checksum(const unsigned char *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* A deterministic message: its length and bytes from the generator. */
static size_t
make_msg(uint32_t *seed, unsigned char *buf, size_t max)
{
	uint32_t r = xs32(seed);
	size_t len, i;

	switch (r % 4) {
	case 0:
		len = 1 + r / 4 % 64;
		break;
	case 1:
		len = 1 + r / 4 % 4096;
		break;
	case 2:
		len = 1 + r / 4 % 16384;
		break;
	default:
		len = 1 + r / 4 % MAXMSG;
		break;
	}
	if (len > max)
		len = max;
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(xs32(seed) >> 7);
	return len;
}

static void
put_hdr(unsigned char *h, uint32_t len, uint32_t sum)
{
	uint32_t v[2] = {htonl(len), htonl(sum)};

	memcpy(h, v, 8);
}

static void
get_hdr(const unsigned char *h, uint32_t *len, uint32_t *sum)
{
	uint32_t v[2];

	memcpy(v, h, 8);
	*len = ntohl(v[0]);
	*sum = ntohl(v[1]);
}

/* Timeouts as a hang guard; no Nagle delay between a header and its
 * payload sent with two calls (40 ms per exchange with delayed ACKs). */
static void
set_opts(int fd)
{
	struct timeval tv = {TIMEOUT_S, 0};
	int one = 1;

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
		SFT_DIE("setsockopt");
}

/* The families of calls a client uses. */
enum io_kind {
	IO_READWRITE,
	IO_RECVSEND,
	IO_MSG,
	IO_VEC,
	IO_POLL, /* nonblocking descriptor, waits with poll */
	IO_NKINDS
};

static int
wait_for(int fd, short ev)
{
	struct pollfd p = {.fd = fd, .events = ev};

	return poll(&p, 1, TIMEOUT_S * 1000) == 1;
}

/* Send all of (a, alen) then (b, blen).  0 on success. */
static int
send_all(int fd, enum io_kind k, const void *a, size_t alen, const void *b,
    size_t blen)
{
	struct iovec v[2] = {{(void *)(uintptr_t)a, alen},
	    {(void *)(uintptr_t)b, blen}};
	struct iovec *iov = v;
	int cnt = 2;

	while (cnt > 0) {
		struct msghdr m;
		ssize_t n;

		if (iov[0].iov_len == 0) {
			iov++;
			cnt--;
			continue;
		}
		switch (k) {
		case IO_READWRITE:
			n = write(fd, iov[0].iov_base, iov[0].iov_len);
			break;
		case IO_RECVSEND:
			n = send(fd, iov[0].iov_base, iov[0].iov_len,
			    MSG_NOSIGNAL);
			break;
		case IO_MSG:
			memset(&m, 0, sizeof(m));
			m.msg_iov = iov;
			m.msg_iovlen = (size_t)cnt;
			n = sendmsg(fd, &m, MSG_NOSIGNAL);
			break;
		case IO_VEC:
			n = writev(fd, iov, cnt);
			break;
		default:
			n = send(fd, iov[0].iov_base, iov[0].iov_len,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN) {
				if (!wait_for(fd, POLLOUT))
					return -1;
				continue;
			}
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		while (n > 0 && cnt > 0) {
			size_t c = (size_t)n < iov[0].iov_len ? (size_t)n
			                                      : iov[0].iov_len;

			iov[0].iov_base = (char *)iov[0].iov_base + c;
			iov[0].iov_len -= c;
			n -= (ssize_t)c;
			if (iov[0].iov_len == 0) {
				iov++;
				cnt--;
			}
		}
	}
	return 0;
}

/* Receive exactly len bytes; the count received before EOF or an error. */
static size_t
recv_all(int fd, enum io_kind k, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		struct iovec v[2];
		struct msghdr m;
		size_t left = len - got, half = left / 2;
		ssize_t n;

		switch (k) {
		case IO_READWRITE:
			n = read(fd, (char *)buf + got, left);
			break;
		case IO_RECVSEND:
			n = recv(fd, (char *)buf + got, left, MSG_WAITALL);
			break;
		case IO_MSG:
			v[0].iov_base = (char *)buf + got;
			v[0].iov_len = left;
			memset(&m, 0, sizeof(m));
			m.msg_iov = v;
			m.msg_iovlen = 1;
			n = recvmsg(fd, &m, 0);
			break;
		case IO_VEC:
			/* Two buffers, so that one call spans both. */
			v[0].iov_base = (char *)buf + got;
			v[0].iov_len = half;
			v[1].iov_base = (char *)buf + got + half;
			v[1].iov_len = left - half;
			n = half > 0 ? readv(fd, v, 2) : readv(fd, v + 1, 1);
			break;
		default:
			n = recv(fd, (char *)buf + got, left, MSG_DONTWAIT);
			if (n < 0 && errno == EAGAIN) {
				if (!wait_for(fd, POLLIN))
					return got;
				continue;
			}
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static int
client_socket(void)
{
	int fd = sft_socket(AF_INET, SOCK_STREAM);

	set_opts(fd);
	if (connect(fd, (struct sockaddr *)&laddr, laddrlen) != 0)
		SFT_DIE("connect");
	return fd;
}

/* ---------------------------------------------------------------------
 * The server.
 * ------------------------------------------------------------------- */

static void *
srv_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned char *buf = malloc(MAXMSG), hdr[8];

	if (buf == NULL)
		SFT_DIE("malloc");
	for (;;) {
		uint32_t len, sum, mine;
		size_t n = recv_all(fd, IO_RECVSEND, hdr, sizeof(hdr));

		if (n == 0) {
			atomic_fetch_add(&srv_eof_clean, 1);
			break;
		}
		if (n < sizeof(hdr)) {
			atomic_fetch_add(&srv_eof_truncated, 1);
			break;
		}
		get_hdr(hdr, &len, &sum);
		if (len == 0 || len > MAXMSG) {
			atomic_fetch_add(&srv_io_errors, 1);
			break;
		}
		if (recv_all(fd, IO_READWRITE, buf, len) < len) {
			atomic_fetch_add(&srv_eof_truncated, 1);
			break;
		}
		mine = checksum(buf, len);
		if (mine != sum)
			atomic_fetch_add(&srv_bad_sum, 1);
		atomic_fetch_add(&srv_requests, 1);
		put_hdr(hdr, len, mine);
		if (send_all(fd, IO_VEC, hdr, sizeof(hdr), buf, len) != 0) {
			atomic_fetch_add(&srv_io_errors, 1);
			break;
		}
	}
	free(buf);
	close(fd);
	return NULL;
}

static void *
srv_accept(void *arg)
{
	pthread_t th[NCONNS];
	int i, n = 0;

	(void)arg;
	for (i = 0; i < NCONNS; i++) {
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			atomic_fetch_add(&srv_io_errors, 1);
			break;
		}
		set_opts(fd);
		atomic_fetch_add(&srv_accepted, 1);
		if (pthread_create(&th[n], NULL, srv_conn,
		        (void *)(intptr_t)fd) != 0)
			SFT_DIE("pthread_create");
		n++;
	}
	for (i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Clients.
 * ------------------------------------------------------------------- */

struct client {
	int id;
	int done;     /* exchanges that checked out */
	int failures; /* the first failure's description is kept */
	char why[96];
};

static void
client_fail(struct client *c, const char *why, int i)
{
	if (c->failures++ == 0)
		snprintf(c->why, sizeof(c->why), "%s at exchange %d (%s)", why,
		    i, SFT_ERR(errno));
}

/* One request/response; 0 if it checked out. */
static int
exchange(int fd, enum io_kind k, uint32_t *seed, unsigned char *out,
    unsigned char *in, struct client *c, int i)
{
	unsigned char hdr[8];
	size_t len = make_msg(seed, out, MAXMSG);
	uint32_t sum = checksum(out, len), rlen, rsum;

	put_hdr(hdr, (uint32_t)len, sum);
	if (send_all(fd, k, hdr, sizeof(hdr), out, len) != 0) {
		client_fail(c, "send", i);
		return -1;
	}
	if (recv_all(fd, k, hdr, sizeof(hdr)) < sizeof(hdr)) {
		client_fail(c, "short reply header", i);
		return -1;
	}
	get_hdr(hdr, &rlen, &rsum);
	if (rlen != len || rsum != sum) {
		client_fail(c, "server saw other bytes", i);
		return -1;
	}
	if (recv_all(fd, k, in, len) < len) {
		client_fail(c, "short reply", i);
		return -1;
	}
	if (memcmp(in, out, len) != 0) {
		client_fail(c, "echo differs", i);
		return -1;
	}
	return 0;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	enum io_kind k = (enum io_kind)(c->id % IO_NKINDS);
	unsigned char *out = malloc(MAXMSG), *in = malloc(MAXMSG);
	uint32_t seed = 0x9e3779b9u * (uint32_t)(c->id + 1);
	int fd = client_socket(), i;

	if (out == NULL || in == NULL)
		SFT_DIE("malloc");
	if (k == IO_POLL &&
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		SFT_DIE("fcntl");
	for (i = 0; i < NEXCH; i++) {
		if (exchange(fd, k, &seed, out, in, c, i) != 0)
			break;
		c->done++;
	}
	close(fd);
	free(out);
	free(in);
	return NULL;
}

/* ---------------------------------------------------------------------
 * One socket, two threads: a sender and a receiver.
 * ------------------------------------------------------------------- */

#define SHARED_SEED 0x51f15eedu

static int shared_fd;
static int shared_sent, shared_checked;
static char shared_why[96];

static void *
shared_sender(void *arg)
{
	unsigned char *out = malloc(MAXMSG), hdr[8];
	uint32_t seed = SHARED_SEED;
	int i;

	(void)arg;
	if (out == NULL)
		SFT_DIE("malloc");
	for (i = 0; i < NSHARED; i++) {
		size_t len = make_msg(&seed, out, 8192);

		put_hdr(hdr, (uint32_t)len, checksum(out, len));
		if (send_all(shared_fd, IO_RECVSEND, hdr, sizeof(hdr), out,
		        len) != 0)
			break;
		shared_sent++;
	}
	free(out);
	return NULL;
}

static void *
shared_receiver(void *arg)
{
	unsigned char *want = malloc(MAXMSG), *in = malloc(MAXMSG), hdr[8];
	uint32_t seed = SHARED_SEED, rlen, rsum;
	int i;

	(void)arg;
	if (want == NULL || in == NULL)
		SFT_DIE("malloc");
	for (i = 0; i < NSHARED; i++) {
		size_t len = make_msg(&seed, want, 8192);

		if (recv_all(shared_fd, IO_READWRITE, hdr, sizeof(hdr)) <
		    sizeof(hdr)) {
			snprintf(shared_why, sizeof(shared_why),
			    "short header at %d", i);
			break;
		}
		get_hdr(hdr, &rlen, &rsum);
		if (rlen != len || rsum != checksum(want, len) ||
		    recv_all(shared_fd, IO_READWRITE, in, len) < len ||
		    memcmp(in, want, len) != 0) {
			snprintf(shared_why, sizeof(shared_why),
			    "message %d differs", i);
			break;
		}
		shared_checked++;
	}
	free(want);
	free(in);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Churn: a thread that closes its own connections while others work.
 * ------------------------------------------------------------------- */

static int churn_ok, churn_cut;
static char churn_why[96];

static void *
churn_main(void *arg)
{
	unsigned char *out = malloc(MAXMSG), *in = malloc(MAXMSG), hdr[8];
	struct client c = {.id = -1};
	uint32_t seed = 0xc0ffee;
	int i;

	(void)arg;
	if (out == NULL || in == NULL)
		SFT_DIE("malloc");
	for (i = 0; i < NCHURN; i++) {
		int fd = client_socket();

		if (exchange(fd, IO_RECVSEND, &seed, out, in, &c, i) == 0)
			churn_ok++;
		if (i % 2 == 1) {
			/* Announce 1000 bytes, send 10, close. */
			put_hdr(hdr, 1000, 0);
			if (send_all(fd, IO_RECVSEND, hdr, sizeof(hdr), out,
			        10) == 0)
				churn_cut++;
		}
		close(fd);
	}
	if (c.failures > 0)
		snprintf(churn_why, sizeof(churn_why), "%s", c.why);
	free(out);
	free(in);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Main.
 * ------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	struct client cl[NCLIENTS];
	pthread_t acc, cth[NCLIENTS], snd, rcv, churn;
	int i, done = 0, failed = 0;

	sft_init(argc, argv);
	lfd = sft_listener(AF_INET);
	set_opts(lfd);
	laddrlen = sizeof(laddr);
	if (getsockname(lfd, (struct sockaddr *)&laddr, &laddrlen) != 0)
		SFT_DIE("getsockname");
	if (pthread_create(&acc, NULL, srv_accept, NULL) != 0)
		SFT_DIE("pthread_create");

	shared_fd = client_socket();
	for (i = 0; i < NCLIENTS; i++) {
		cl[i] = (struct client){.id = i};
		if (pthread_create(&cth[i], NULL, client_main, &cl[i]) != 0)
			SFT_DIE("pthread_create");
	}
	if (pthread_create(&rcv, NULL, shared_receiver, NULL) != 0 ||
	    pthread_create(&snd, NULL, shared_sender, NULL) != 0 ||
	    pthread_create(&churn, NULL, churn_main, NULL) != 0)
		SFT_DIE("pthread_create");

	for (i = 0; i < NCLIENTS; i++) {
		pthread_join(cth[i], NULL);
		done += cl[i].done;
		if (cl[i].failures > 0 && failed++ == 0)
			sft_check(0, "clients", "client %d: %s", i, cl[i].why);
	}
	sft_check(done == NCLIENTS * NEXCH,
	    "8 client threads x 120 exchanges, checksums verified",
	    "%d of %d exchanges", done, NCLIENTS * NEXCH);

	pthread_join(snd, NULL);
	pthread_join(rcv, NULL);
	sft_check(shared_sent == NSHARED && shared_checked == NSHARED,
	    "one socket, one thread sending while another receives",
	    "sent %d, checked %d: %s", shared_sent, shared_checked, shared_why);
	close(shared_fd);

	pthread_join(churn, NULL);
	sft_check(churn_ok == NCHURN && churn_cut == NCHURN / 2,
	    "a thread closing its own sockets while others work",
	    "%d exchanges, %d cut: %s", churn_ok, churn_cut, churn_why);

	pthread_join(acc, NULL);
	close(lfd);
	sft_check(atomic_load(&srv_accepted) == NCONNS,
	    "server accepted every connection", "%d of %d",
	    atomic_load(&srv_accepted), NCONNS);
	sft_check(atomic_load(&srv_requests) ==
	                  NCLIENTS * NEXCH + NSHARED + NCHURN &&
	              atomic_load(&srv_bad_sum) == 0,
	    "server received every request intact", "%d requests, %d bad",
	    atomic_load(&srv_requests), atomic_load(&srv_bad_sum));
	sft_check(atomic_load(&srv_eof_clean) == NCONNS - NCHURN / 2 &&
	              atomic_load(&srv_eof_truncated) == NCHURN / 2 &&
	              atomic_load(&srv_io_errors) == 0,
	    "server saw every close (clean and mid-request)",
	    "%d clean, %d truncated, %d errors", atomic_load(&srv_eof_clean),
	    atomic_load(&srv_eof_truncated), atomic_load(&srv_io_errors));
	return sft_done();
}
