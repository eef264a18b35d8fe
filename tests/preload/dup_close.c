/*
 * dup_close.c: descriptors that share one socket (dup, dup2, dup3,
 * F_DUPFD, F_DUPFD_CLOEXEC), closing some of them, closing ranges
 * (close_range, closefrom: glibc's closefrom does not go through
 * close_range), and reuse of the freed numbers by new sockets of another
 * type.  The connection lives until its last descriptor closes.
 */
#include "sftest.h"

#include <fcntl.h>
#include <linux/close_range.h>

static int lfd; /* one listener below every number the tests close */

/* Send msg through fd and read it at peer. */
static int
flows(int fd, int peer, const char *msg)
{
	char buf[64];
	size_t len = strlen(msg);

	if (send(fd, msg, len, 0) != (ssize_t)len)
		return 0;
	return sft_read_full(peer, buf, len) == len &&
	       memcmp(buf, msg, len) == 0;
}

static int
is_ebadf(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

static int
cloexec(int fd)
{
	int f = fcntl(fd, F_GETFD);

	return f >= 0 && (f & FD_CLOEXEC);
}

/* Peer end open with no data: not readable (no EOF yet). */
static int
quiet(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 50) == 0;
}

static int
eof(int fd)
{
	char c;

	return sft_wait_readable(fd, 5000) && read(fd, &c, 1) == 0;
}

static void
test_dups(void)
{
	int a, b, c, e;

	sft_tcp_pair_on(lfd, AF_INET, &a, &b);
	int d = dup(a);

	sft_check(d >= 0 && flows(d, b, "via-dup") && flows(b, a, "to-orig") &&
	              flows(b, d, "to-dup") && flows(a, b, "via-orig"),
	    "dup: written through one, read through the other", "dup %s",
	    d < 0 ? SFT_ERR(errno) : "ok");

	close(a);
	sft_check(is_ebadf(a) && flows(d, b, "still") && flows(b, d, "alive") &&
	              quiet(b),
	    "close one dup, the other still works, peer sees no EOF",
	    "after close");

	/* dup2 over an open socket closes that socket first (its peer sees
	 * EOF) and makes the number an alias of ours. */
	sft_tcp_pair_on(lfd, AF_INET, &c, &e);
	int r = dup2(d, c);

	sft_check(r == c && eof(e) && flows(c, b, "over") &&
	              flows(b, c, "back"),
	    "dup2 over an open socket", "dup2 %s",
	    r < 0 ? SFT_ERR(errno) : "ok");
	close(e);

	int d3 = dup3(c, 201, O_CLOEXEC);
	int bad = dup3(c, c, 0);
	int bad_errno = errno;

	sft_check(d3 == 201 && cloexec(d3) && !cloexec(c) &&
	              flows(d3, b, "dup3") && bad == -1 && bad_errno == EINVAL,
	    "dup3 O_CLOEXEC; dup3 onto itself EINVAL", "dup3 %d %s", d3,
	    SFT_ERR(bad_errno));

	int f1 = fcntl(c, F_DUPFD_CLOEXEC, 210), f2 = fcntl(c, F_DUPFD, 220);

	sft_check(f1 >= 210 && cloexec(f1) && f2 >= 220 && !cloexec(f2) &&
	              flows(f1, b, "cloexec") && flows(b, f2, "dupfd"),
	    "fcntl F_DUPFD_CLOEXEC and F_DUPFD", "%s", SFT_ERR(errno));

	/* Five numbers share the connection; only the last close ends it. */
	close(d);
	close(c);
	close(d3);
	close(f1);
	sft_check(quiet(b) && flows(f2, b, "last"),
	    "connection alive while one descriptor remains", "peer saw EOF");
	close(f2);
	sft_check(eof(b), "last close: peer sees EOF", "no EOF");
	close(b);
}

/* A closed descriptor: every call fails with EBADF. */
static void
test_ebadf(void)
{
	int a, b;
	char buf[8];

	sft_tcp_pair_on(lfd, AF_INET, &a, &b);
	close(a);
	int ok = send(a, "x", 1, 0) == -1 && errno == EBADF;

	ok = ok && recv(a, buf, sft_n(sizeof(buf)), 0) == -1 && errno == EBADF;
	ok = ok && read(a, buf, sft_n(sizeof(buf))) == -1 && errno == EBADF;
	ok = ok && write(a, "x", 1) == -1 && errno == EBADF;
	ok = ok && shutdown(a, SHUT_RDWR) == -1 && errno == EBADF;
	ok = ok && fcntl(a, F_GETFL) == -1 && errno == EBADF;
	ok = ok && close(a) == -1 && errno == EBADF;
	sft_check(ok, "closed descriptor: EBADF everywhere", "%s",
	    SFT_ERR(errno));
	close(b);
}

/* Three clients and a UDP socket in consecutive numbers [lo, lo + 3]; the
 * accepted ends come after them.  Returns lo. */
static int
make_block(int *peers)
{
	int c1 = sft_socket(AF_INET, SOCK_STREAM);
	int c2 = sft_socket(AF_INET, SOCK_STREAM);
	int u = sft_bound(AF_INET, SOCK_DGRAM);
	int c3 = sft_socket(AF_INET, SOCK_STREAM);
	int cs[3] = {c1, c2, c3}, i;

	if (c2 != c1 + 1 || u != c1 + 2 || c3 != c1 + 3)
		SFT_DIE("consecutive descriptors");
	for (i = 0; i < 3; i++) {
		if (sft_connect_to(cs[i], lfd) != 0)
			SFT_DIE("connect");
		peers[i] = accept(lfd, NULL, NULL);
	}
	return c1;
}

/* New sockets take the freed numbers, types swapped (stream where a
 * datagram socket was and back), and work. */
static int
reuse_block(int lo)
{
	int u = sft_bound(AF_INET, SOCK_DGRAM);
	int c1 = sft_socket(AF_INET, SOCK_STREAM);
	int c2 = sft_socket(AF_INET, SOCK_STREAM);
	int c3 = sft_socket(AF_INET, SOCK_STREAM);
	int cs[3] = {c1, c2, c3}, i, ok;

	ok = u == lo && c1 == lo + 1 && c2 == lo + 2 && c3 == lo + 3;
	for (i = 0; i < 3; i++) {
		int p;

		ok = ok && sft_connect_to(cs[i], lfd) == 0;
		p = accept(lfd, NULL, NULL);
		ok = ok && p >= 0 && flows(cs[i], p, "reused") &&
		     flows(p, cs[i], "reply");
		close(p);
		close(cs[i]);
	}
	ok = ok && sft_connect_to(u, u) == 0 && send(u, "self", 4, 0) == 4;
	char buf[8];

	ok = ok && recv(u, buf, sft_n(sizeof(buf)), 0) == 4 &&
	     memcmp(buf, "self", 4) == 0;
	close(u);
	return ok;
}

static void
test_close_range(void)
{
	int peers[3], i, ok = 1;
	int lo = make_block(peers);

	int r = close_range((unsigned)lo, (unsigned)lo + 3, 0);

	for (i = 0; i < 4; i++)
		ok = ok && is_ebadf(lo + i);
	for (i = 0; i < 3; i++)
		ok = ok && eof(peers[i]);
	sft_check(r == 0 && ok, "close_range closes sockets, peers see EOF",
	    "close_range %d", r);
	sft_check(reuse_block(lo), "close_range: new sockets reuse the numbers",
	    "reuse failed");
	for (i = 0; i < 3; i++)
		close(peers[i]);

	/* CLOSE_RANGE_CLOEXEC only marks: the socket keeps working. */
	int a, b;

	sft_tcp_pair_on(lfd, AF_INET, &a, &b);
	r = close_range((unsigned)a, (unsigned)a, CLOSE_RANGE_CLOEXEC);
	sft_check(r == 0 && cloexec(a) && flows(a, b, "marked"),
	    "close_range CLOSE_RANGE_CLOEXEC keeps the socket", "%d %s", r,
	    SFT_ERR(errno));
	close(a);
	close(b);
}

static void
test_closefrom(void)
{
	int peers[3], i, ok = 1;
	int lo = make_block(peers);

	/* Everything from lo up goes, accepted ends included. */
	closefrom(lo);
	for (i = 0; i < 4; i++)
		ok = ok && is_ebadf(lo + i);
	for (i = 0; i < 3; i++)
		ok = ok && is_ebadf(peers[i]);
	sft_check(ok, "closefrom closes every socket from lo", "still open");
	sft_check(reuse_block(lo), "closefrom: new sockets reuse the numbers",
	    "reuse failed");
}

int
main(int argc, char **argv)
{
	sft_init(argc, argv);
	lfd = sft_listener(AF_INET);
	test_dups();
	test_ebadf();
	test_close_range();
	test_closefrom();
	close(lfd);
	return sft_done();
}
