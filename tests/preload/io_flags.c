/*
 * io_flags.c: receive flags and datagram semantics: MSG_PEEK, MSG_WAITALL,
 * FIONREAD, truncation (MSG_TRUNC), UDP source addresses over IPv4 and
 * IPv6, zero-length datagrams.  A preload that queues data must report
 * and hand out exactly what the kernel would.
 */
#include "sftest.h"

#include <sys/ioctl.h>

static char tname[128];

static const char *
tn(int family, const char *what)
{
	snprintf(tname, sizeof(tname), "%s %s",
	    family == AF_INET6 ? "v6" : "v4", what);
	return tname;
}

static int
fionread(int fd)
{
	int n = -1;

	if (ioctl(fd, FIONREAD, &n) != 0)
		return -1;
	return n;
}

static void
test_peek(int a, int b)
{
	char p[16], r[16];
	ssize_t n1, n2, n3;

	send(a, "peekaboo", 8, 0);
	sft_wait_readable(b, 5000);
	n1 = recv(b, p, sft_n(4), MSG_PEEK);
	n2 = recv(b, p + 4, sft_n(sizeof(p) - 4), MSG_PEEK);
	n3 = recv(b, r, sft_n(sizeof(r)), 0);
	sft_check(n1 == 4 && n2 == 8 && n3 == 8 && memcmp(p, "peek", 4) == 0 &&
	              memcmp(p + 4, "peekaboo", 8) == 0 &&
	              memcmp(r, "peekaboo", 8) == 0,
	    "MSG_PEEK then read returns the same bytes", "%zd %zd %zd", n1, n2,
	    n3);
	n1 = recv(b, r, sft_n(sizeof(r)), MSG_PEEK | MSG_DONTWAIT);
	sft_check(n1 == -1 && errno == EAGAIN, "nothing left after the read",
	    "%zd %s", n1, SFT_ERR(errno));
}

/* The peer sends in four pieces with pauses; one MSG_WAITALL recv gets
 * them all. */
static void
test_waitall(int a, int b)
{
	static char big[4000], got[4000];
	ssize_t n;
	int i;

	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = (char)(i * 13);
	pid_t pid = sft_fork();

	if (pid == 0) {
		for (i = 0; i < 4; i++) {
			if (send(a, big + i * 1000, 1000, 0) != 1000)
				_exit(1);
			sft_msleep(30);
		}
		_exit(0);
	}
	n = recv(b, got, sft_n(sizeof(got)), MSG_WAITALL);
	sft_check(n == 4000 && memcmp(got, big, 4000) == 0 &&
	              sft_wait_child(pid),
	    "MSG_WAITALL collects four pieces", "recv %zd", n);
}

static void
test_fionread_stream(int a, int b)
{
	char buf[123];
	int n0, n1, n2, n3;

	n0 = fionread(b);
	memset(buf, 'f', sizeof(buf));
	send(a, buf, sizeof(buf), 0);
	sft_wait_readable(b, 5000);
	n1 = fionread(b);
	recv(b, buf, sft_n(23), 0);
	n2 = fionread(b);
	recv(b, buf, sft_n(sizeof(buf)), 0);
	n3 = fionread(b);
	sft_check(n0 == 0 && n1 == 123 && n2 == 100 && n3 == 0,
	    "FIONREAD on TCP: 0, 123, 100 after reading 23, 0",
	    "%d, %d, %d, %d", n0, n1, n2, n3);
}

static int
same_addr(const struct sockaddr_storage *x, socklen_t xl,
    const struct sockaddr_storage *y, socklen_t yl)
{
	return xl == yl && memcmp(x, y, xl) == 0;
}

static void
test_udp(int family)
{
	int s = sft_bound(family, SOCK_DGRAM),
	    r = sft_bound(family, SOCK_DGRAM);
	struct sockaddr_storage to, me, from;
	socklen_t tolen = sizeof(to), melen = sizeof(me), fromlen;
	char buf[64], small[8];
	ssize_t n;

	getsockname(r, (struct sockaddr *)&to, &tolen);
	getsockname(s, (struct sockaddr *)&me, &melen);

	/* Source address of each datagram is the sender's own name. */
	sendto(s, "udp-one", 7, 0, (struct sockaddr *)&to, tolen);
	sft_wait_readable(r, 5000);
	fromlen = sizeof(from);
	n = recvfrom(r, buf, sft_n(sizeof(buf)), 0, (struct sockaddr *)&from,
	    &fromlen);
	sft_check(n == 7 && memcmp(buf, "udp-one", 7) == 0 &&
	              same_addr(&from, fromlen, &me, melen),
	    tn(family, "udp recvfrom source address match"), "recvfrom %zd %s",
	    n, same_addr(&from, fromlen, &me, melen) ? "match" : "mismatch");

	/* FIONREAD on a datagram socket: the size of the next datagram. */
	sendto(s, "0123456789", 10, 0, (struct sockaddr *)&to, tolen);
	sendto(s, "abcdefghijklmnopqrst", 20, 0, (struct sockaddr *)&to, tolen);
	sft_wait_readable(r, 5000);
	int q = fionread(r);

	sft_check(q == 10, tn(family, "udp FIONREAD is the next datagram"),
	    "%d", q);

	/* recv with a small buffer truncates and drops the rest. */
	n = recv(r, small, sft_n(4), 0);
	sft_check(n == 4 && memcmp(small, "0123", 4) == 0,
	    tn(family, "udp recv small buffer truncates"), "recv %zd", n);

	/* recvmsg reports the truncation and, with MSG_PEEK, keeps it. */
	struct iovec iov = {small, sizeof(small)};
	struct msghdr mh = {.msg_name = &from,
	    .msg_namelen = sizeof(from),
	    .msg_iov = &iov,
	    .msg_iovlen = 1};
	n = recvmsg(r, &mh, MSG_PEEK);
	int f1 = mh.msg_flags;

	sft_check(n == 8 && (f1 & MSG_TRUNC) &&
	              memcmp(small, "abcdefgh", 8) == 0 &&
	              same_addr(&from, mh.msg_namelen, &me, melen),
	    tn(family, "udp recvmsg MSG_PEEK sets MSG_TRUNC, source match"),
	    "recvmsg %zd flags %#x", n, f1);
	/* MSG_TRUNC as an input flag returns the real datagram length. */
	n = recv(r, small, sft_n(sizeof(small)), MSG_TRUNC);
	sft_check(n == 20,
	    tn(family, "udp recv(MSG_TRUNC) returns full length"), "recv %zd",
	    n);

	/* A zero-length datagram is a datagram: recv returns 0, not EOF. */
	sendto(s, "", 0, 0, (struct sockaddr *)&to, tolen);
	sendto(s, "after", 5, 0, (struct sockaddr *)&to, tolen);
	sft_wait_readable(r, 5000);
	mh.msg_namelen = sizeof(from);
	mh.msg_flags = -1;
	n = recvmsg(r, &mh, 0);
	sft_check(n == 0 && mh.msg_flags == 0 &&
	              same_addr(&from, mh.msg_namelen, &me, melen),
	    tn(family, "udp zero-length datagram"), "recvmsg %zd flags %#x", n,
	    mh.msg_flags);
	n = recv(r, buf, sft_n(sizeof(buf)), 0);
	sft_check(n == 5 && memcmp(buf, "after", 5) == 0,
	    tn(family, "udp datagram after the empty one"), "recv %zd", n);

	/* Connected UDP: send/recv and read/write. */
	int c1 = sft_connect_to(s, r), c2 = sft_connect_to(r, s);

	n = send(s, "conn", 4, 0);
	sft_wait_readable(r, 5000);
	ssize_t m = read(r, buf, sft_n(sizeof(buf)));
	ssize_t w = write(r, "back", 4);

	sft_wait_readable(s, 5000);
	fromlen = sizeof(from);
	ssize_t k = recvfrom(s, buf + 8, sft_n(8), 0, (struct sockaddr *)&from,
	    &fromlen);
	sft_check(c1 == 0 && c2 == 0 && n == 4 && m == 4 && w == 4 && k == 4 &&
	              memcmp(buf, "conn", 4) == 0 &&
	              memcmp(buf + 8, "back", 4) == 0 &&
	              same_addr(&from, fromlen, &to, tolen),
	    tn(family, "connected udp both ways, source match"),
	    "%d %d %zd %zd %zd %zd", c1, c2, n, m, w, k);
	close(s);
	close(r);
}

int
main(int argc, char **argv)
{
	int a, b;

	sft_init(argc, argv);
	sft_tcp_pair(AF_INET, &a, &b);
	test_peek(a, b);
	test_waitall(a, b);
	test_fionread_stream(a, b);
	close(a);
	close(b);
	test_udp(AF_INET);
	test_udp(AF_INET6);
	return sft_done();
}
