/*
 * io_basic.c: blocking TCP data paths over loopback, IPv4 and IPv6.
 * Every send-side call is paired with a receive-side call of another
 * family of entry points so each wrapper is exercised in both directions.
 */
#include "sftest.h"

#include <sys/uio.h>

#define BIG (1024 * 1024)

static char tname[128];

static const char *
tn(int family, const char *what)
{
	snprintf(tname, sizeof(tname), "%s %s",
	    family == AF_INET6 ? "v6" : "v4", what);
	return tname;
}

static void
test_send_recv(int family, int a, int b)
{
	char buf[64];
	ssize_t n;

	n = send(a, "hello", 5, 0);
	sft_wait_readable(b, 5000);
	ssize_t m = recv(b, buf, sft_n(sizeof(buf)), 0);
	sft_check(n == 5 && m == 5 && memcmp(buf, "hello", 5) == 0,
	    tn(family, "send/recv"), "send %zd recv %zd", n, m);
}

static void
test_read_write(int family, int a, int b)
{
	char buf[64];
	ssize_t n, m;

	n = write(b, "world!", 6);
	sft_wait_readable(a, 5000);
	m = read(a, buf, sft_n(sizeof(buf)));
	sft_check(n == 6 && m == 6 && memcmp(buf, "world!", 6) == 0,
	    tn(family, "write/read"), "write %zd read %zd", n, m);
}

static void
test_readv_writev(int family, int a, int b)
{
	char p1[] = "ab", p2[] = "cde", p3[] = "fghi";
	struct iovec out[3] = {{p1, 2}, {p2, 3}, {p3, 4}};
	char r1[4], r2[8];
	struct iovec in[2] = {{r1, sizeof(r1)}, {r2, sizeof(r2)}};
	ssize_t n, m;

	n = writev(a, out, 3);
	sft_wait_readable(b, 5000);
	m = readv(b, in, 2);
	sft_check(n == 9 && m == 9 && memcmp(r1, "abcd", 4) == 0 &&
	              memcmp(r2, "efghi", 5) == 0,
	    tn(family, "writev/readv"), "writev %zd readv %zd", n, m);
}

static void
test_sendto_recvfrom(int family, int a, int b)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char buf[64];
	ssize_t n, m;

	n = sendto(b, "dgramish", 8, 0, NULL, 0);
	sft_wait_readable(a, 5000);
	m = recvfrom(a, buf, sft_n(sizeof(buf)), 0, (struct sockaddr *)&ss,
	    &len);
	/* Linux leaves the address empty on a connected TCP socket. */
	sft_check(n == 8 && m == 8 && memcmp(buf, "dgramish", 8) == 0 &&
	              len == 0,
	    tn(family, "sendto/recvfrom"), "sendto %zd recvfrom %zd len %u", n,
	    m, (unsigned)len);
}

static void
test_sendmsg_recvmsg(int family, int a, int b)
{
	char p1[] = "head-", p2[] = "tail";
	struct iovec out[2] = {{p1, 5}, {p2, 4}};
	struct msghdr mo = {.msg_iov = out, .msg_iovlen = 2};
	char r1[3], r2[3], r3[16];
	struct iovec in[3] = {{r1, 3}, {r2, 3}, {r3, sizeof(r3)}};
	struct sockaddr_storage ss;
	struct msghdr mi = {.msg_name = &ss,
	    .msg_namelen = sizeof(ss),
	    .msg_iov = in,
	    .msg_iovlen = 3};
	ssize_t n, m;

	n = sendmsg(a, &mo, 0);
	sft_wait_readable(b, 5000);
	mi.msg_flags = -1; /* recvmsg must overwrite it */
	m = recvmsg(b, &mi, 0);
	/* As for recvfrom: no address on a connected TCP socket. */
	sft_check(n == 9 && m == 9 && memcmp(r1, "hea", 3) == 0 &&
	              memcmp(r2, "d-t", 3) == 0 && memcmp(r3, "ail", 3) == 0 &&
	              mi.msg_flags == 0 && mi.msg_namelen == 0,
	    tn(family, "sendmsg/recvmsg"),
	    "sendmsg %zd recvmsg %zd flags %#x namelen %u", n, m, mi.msg_flags,
	    (unsigned)mi.msg_namelen);
}

/* 100 bytes read 30 at a time: the remainder stays queued in order. */
static void
test_partial(int family, int a, int b)
{
	char data[100], buf[30], got[100];
	ssize_t r[4] = {0};
	size_t off = 0;
	int i;

	for (i = 0; i < 100; i++)
		data[i] = (char)('A' + i % 26);
	sft_write_full(a, data, sizeof(data));
	sft_wait_readable(b, 5000);
	for (i = 0; i < 4; i++) {
		r[i] = read(b, buf, sft_n(sizeof(buf)));
		if (r[i] > 0 && off + (size_t)r[i] <= sizeof(got)) {
			memcpy(got + off, buf, (size_t)r[i]);
			off += (size_t)r[i];
		}
	}
	sft_check(r[0] == 30 && r[1] == 30 && r[2] == 30 && r[3] == 10 &&
	              memcmp(got, data, 100) == 0,
	    tn(family, "partial reads 30/30/30/10"), "%zd/%zd/%zd/%zd", r[0],
	    r[1], r[2], r[3]);
}

/* Data sent before shutdown(SHUT_WR) arrives before the EOF; the other
 * direction keeps working. */
static void
test_shutdown_eof(int family, int a, int b)
{
	char buf[16];
	size_t got;
	ssize_t eof1, eof2, m;

	send(a, "last", 4, 0);
	int sh = shutdown(a, SHUT_WR);
	got = sft_read_full(b, buf, 4);
	eof1 = recv(b, buf, sft_n(sizeof(buf)), 0);
	eof2 = read(b, buf, sft_n(sizeof(buf)));
	sft_check(sh == 0 && got == 4 && memcmp(buf, "last", 4) == 0 &&
	              eof1 == 0 && eof2 == 0,
	    tn(family, "data then EOF after SHUT_WR"),
	    "shutdown %d got %zu eof %zd %zd", sh, got, eof1, eof2);

	send(b, "reply", 5, 0);
	sft_wait_readable(a, 5000);
	m = recv(a, buf, sft_n(sizeof(buf)), 0);
	sft_check(m == 5 && memcmp(buf, "reply", 5) == 0,
	    tn(family, "half-closed socket still receives"), "recv %zd", m);
}

static unsigned char
pat(size_t i)
{
	return (unsigned char)(i * 7 + (i >> 9));
}

static unsigned int
fnv(unsigned int h, const unsigned char *p, size_t n)
{
	while (n-- > 0)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* Send BIG pattern bytes through a mix of calls and chunk sizes. */
static int
send_big(int fd)
{
	static unsigned char chunk[65536];
	size_t off = 0, step = 1;
	int k = 0;

	while (off < BIG) {
		size_t n = step < BIG - off ? step : BIG - off;
		size_t i;
		ssize_t w;

		for (i = 0; i < n; i++)
			chunk[i] = pat(off + i);
		if (k % 3 == 0) {
			w = send(fd, chunk, n, 0);
		} else if (k % 3 == 1) {
			w = write(fd, chunk, n);
		} else {
			struct iovec iov[2] = {{chunk, n / 2},
			    {chunk + n / 2, n - n / 2}};
			w = writev(fd, iov, 2);
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
		k++;
		step = step * 3 % 65521 + 1; /* 1..65521, varied */
	}
	return 0;
}

/* Receive to EOF; the byte count and checksum. */
static size_t
recv_big(int fd, unsigned int *sum)
{
	unsigned char buf[40000];
	size_t total = 0, want = 1;

	*sum = 2166136261u;
	for (;;) {
		ssize_t r = want % 2 ? recv(fd, buf, sft_n(want), 0)
		                     : read(fd, buf, sft_n(want));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		*sum = fnv(*sum, buf, (size_t)r);
		total += (size_t)r;
		want = want * 5 % sizeof(buf) + 1;
	}
	return total;
}

static unsigned int
expected_sum(void)
{
	unsigned int h = 2166136261u;
	size_t i;

	for (i = 0; i < BIG; i++) {
		unsigned char c = pat(i);

		h = fnv(h, &c, 1);
	}
	return h;
}

/* 1 MiB each way between this process and a forked child. */
static void
test_big(int family)
{
	int lfd = sft_listener(family);
	unsigned int want = expected_sum(), sum;
	size_t got;
	pid_t pid = sft_fork();

	if (pid == 0) {
		int fd = sft_socket(family, SOCK_STREAM);
		int ok;

		ok = sft_connect_to(fd, lfd) == 0 && send_big(fd) == 0 &&
		     shutdown(fd, SHUT_WR) == 0;
		got = recv_big(fd, &sum);
		ok = ok && got == BIG && sum == want;
		close(fd);
		_exit(ok ? 0 : 1);
	}
	int fd = accept(lfd, NULL, NULL);

	close(lfd);
	got = recv_big(fd, &sum);
	sft_check(got == BIG && sum == want, tn(family, "1MiB child to parent"),
	    "got %zu bytes, checksum %s", got, sum == want ? "ok" : "bad");
	int sent = send_big(fd);

	shutdown(fd, SHUT_WR);
	sft_check(sent == 0 && sft_wait_child(pid),
	    tn(family, "1MiB parent to child"), "send %d, child failed", sent);
	close(fd);
}

int
main(int argc, char **argv)
{
	static const int fams[] = {AF_INET, AF_INET6};
	int i, a, b;

	sft_init(argc, argv);
	for (i = 0; i < 2; i++) {
		sft_tcp_pair(fams[i], &a, &b);
		test_send_recv(fams[i], a, b);
		test_read_write(fams[i], a, b);
		test_readv_writev(fams[i], a, b);
		test_sendto_recvfrom(fams[i], a, b);
		test_sendmsg_recvmsg(fams[i], a, b);
		test_partial(fams[i], a, b);
		test_shutdown_eof(fams[i], a, b);
		close(a);
		close(b);
		test_big(fams[i]);
	}
	return sft_done();
}
