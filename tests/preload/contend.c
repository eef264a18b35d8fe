/*
 * contend.c: several threads on one socket in the same direction, the
 * case where they wait for each other inside the library (the send and
 * receive locks of a filtered socket).
 *   - NTHREADS threads send NREC records each on one socket at the same
 *     time, through send, write, writev and sendmsg; the peer counts;
 *   - NTHREADS threads read one socket at the same time, through recv,
 *     read, readv and recvmsg (one with MSG_WAITALL), while the peer
 *     writes NREC records and then closes its side.
 * The kernel may interleave the threads' bytes anywhere, so only totals
 * are checked: the byte count and the sum of the bytes.  Labelled
 * "threaded" so that the ThreadSanitizer pass runs it.
 */
#include "sftest.h"

#include <pthread.h>
#include <sys/uio.h>

#define NTHREADS 4
#define NREC     3000
#define RECLEN   48

struct worker {
	int fd;
	int way; /* which call family */
	unsigned long long bytes, sum;
	int err;
};

/* Record i of thread t: bytes that depend on both. */
static void
record(unsigned char *buf, int t, int i)
{
	int k;

	for (k = 0; k < RECLEN; k++)
		buf[k] = (unsigned char)(t * 31 + i * 7 + k);
}

static unsigned long long
record_sum(int t, int i)
{
	unsigned char buf[RECLEN];
	unsigned long long s = 0;
	int k;

	record(buf, t, i);
	for (k = 0; k < RECLEN; k++)
		s += buf[k];
	return s;
}

static void *
sender(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[RECLEN];
	int i, t = w->way;

	for (i = 0; i < NREC; i++) {
		struct iovec iov[2] = {{buf, RECLEN / 2},
		    {buf + RECLEN / 2, RECLEN - RECLEN / 2}};
		struct msghdr m;
		ssize_t n;

		record(buf, t, i);
		switch (t % 4) {
		case 0:
			n = send(w->fd, buf, RECLEN, MSG_NOSIGNAL);
			break;
		case 1:
			n = write(w->fd, buf, RECLEN);
			break;
		case 2:
			n = writev(w->fd, iov, 2);
			break;
		default:
			memset(&m, 0, sizeof(m));
			m.msg_iov = iov;
			m.msg_iovlen = 2;
			n = sendmsg(w->fd, &m, MSG_NOSIGNAL);
			break;
		}
		if (n != RECLEN) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		w->bytes += RECLEN;
	}
	return NULL;
}

static void *
receiver(void *arg)
{
	struct worker *w = arg;
	unsigned char buf[100];

	for (;;) {
		struct iovec iov[2] = {{buf, 10}, {buf + 10, sizeof(buf) - 10}};
		struct msghdr m;
		ssize_t n, k;

		switch (w->way % 4) {
		case 0:
			n = recv(w->fd, buf, sizeof(buf), 0);
			break;
		case 1:
			n = read(w->fd, buf, sft_n(sizeof(buf)));
			break;
		case 2:
			n = readv(w->fd, iov, 2);
			break;
		default:
			memset(&m, 0, sizeof(m));
			m.msg_iov = iov;
			m.msg_iovlen = 2;
			n = recvmsg(w->fd, &m, MSG_WAITALL);
			break;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			w->err = errno;
		if (n <= 0)
			break;
		for (k = 0; k < n; k++)
			w->sum += buf[k];
		w->bytes += (unsigned long long)n;
	}
	return NULL;
}

static void
senders(int cli, int srv)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	unsigned long long got = 0, sum = 0, want = 0;
	unsigned char buf[4096];
	int t, i, err = 0;

	memset(w, 0, sizeof(w));
	for (t = 0; t < NTHREADS; t++) {
		w[t].fd = cli;
		w[t].way = t;
		if (pthread_create(&th[t], NULL, sender, &w[t]) != 0)
			SFT_DIE("pthread_create");
		for (i = 0; i < NREC; i++)
			want += record_sum(t, i);
	}
	while (got < (unsigned long long)NTHREADS * NREC * RECLEN) {
		ssize_t n = recv(srv, buf, sizeof(buf), 0);

		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			sum += buf[i];
		got += (unsigned long long)n;
	}
	for (t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		if (w[t].err != 0)
			err = w[t].err;
	}
	sft_check(err == 0, "concurrent senders: every send whole", "%s",
	    SFT_ERR(err));
	sft_check(got == (unsigned long long)NTHREADS * NREC * RECLEN,
	    "concurrent senders: byte count", "%llu", got);
	sft_check(sum == want, "concurrent senders: byte sum", "%llu, not %llu",
	    sum, want);
}

static void
receivers(int cli, int srv)
{
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	unsigned long long got = 0, sum = 0, want = 0;
	unsigned char buf[RECLEN];
	int t, i, err = 0;

	memset(w, 0, sizeof(w));
	for (t = 0; t < NTHREADS; t++) {
		w[t].fd = srv;
		w[t].way = t;
		if (pthread_create(&th[t], NULL, receiver, &w[t]) != 0)
			SFT_DIE("pthread_create");
	}
	for (i = 0; i < NREC; i++) {
		record(buf, 5, i);
		if (sft_write_full(cli, buf, RECLEN) != 0)
			SFT_DIE("write");
		want += record_sum(5, i);
	}
	if (shutdown(cli, SHUT_WR) != 0)
		SFT_DIE("shutdown");
	for (t = 0; t < NTHREADS; t++) {
		pthread_join(th[t], NULL);
		got += w[t].bytes;
		sum += w[t].sum;
		if (w[t].err != 0)
			err = w[t].err;
	}
	sft_check(err == 0, "concurrent receivers: no error", "%s",
	    SFT_ERR(err));
	sft_check(got == (unsigned long long)NREC * RECLEN,
	    "concurrent receivers: byte count", "%llu", got);
	sft_check(sum == want, "concurrent receivers: byte sum",
	    "%llu, not %llu", sum, want);
}

int
main(int argc, char **argv)
{
	int cli, srv;

	sft_init(argc, argv);
	sft_tcp_pair(AF_INET, &cli, &srv);
	senders(cli, srv);
	receivers(cli, srv);
	close(cli);
	close(srv);
	return sft_done();
}
