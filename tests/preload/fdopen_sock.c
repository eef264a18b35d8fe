/*
 * fdopen_sock.c: stdio on a connected socket.  glibc's stdio reads,
 * writes and closes with internal calls no preload sees, so fclose()
 * leaves a stale entry in a preload's descriptor table; the next objects
 * that get the number (a socket of another kind, a pipe, an accepted
 * socket) must not inherit anything from it.
 */
#include "sftest.h"

#include <fcntl.h>

static int
roundtrip(int x, int y, const char *msg)
{
	char buf[64];
	size_t len = strlen(msg);

	if (write(x, msg, len) != (ssize_t)len)
		return 0;
	return sft_read_full(y, buf, len) == len && memcmp(buf, msg, len) == 0;
}

static int
is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

int
main(int argc, char **argv)
{
	int lfd, a, b, n;
	char line[64];

	sft_init(argc, argv);
	lfd = sft_listener(AF_INET);
	sft_tcp_pair_on(lfd, AF_INET, &a, &b);
	int num = a;
	FILE *f = fdopen(a, "r+");

	if (f == NULL)
		SFT_DIE("fdopen");
	n = fprintf(f, "hello %d\n", 42);
	int fl = fflush(f);
	char got[16];
	size_t g = sft_read_full(b, got, 9);

	sft_check(n == 9 && fl == 0 && g == 9 &&
	              memcmp(got, "hello 42\n", 9) == 0,
	    "fprintf/fflush reach the peer", "fprintf %d fflush %d got %zu", n,
	    fl, g);
	sft_write_full(b, "reply line\nsecond\n", 18);
	char *s1 = fgets(line, sizeof(line), f);
	int ok1 = s1 != NULL && strcmp(line, "reply line\n") == 0;
	char *s2 = fgets(line, sizeof(line), f);
	int ok2 = s2 != NULL && strcmp(line, "second\n") == 0;

	sft_check(ok1 && ok2, "fgets reads the peer's lines", "fgets failed");
	int fc = fclose(f);

	sft_check(fc == 0 && is_closed(num) && sft_wait_readable(b, 5000) &&
	              read(b, line, 1) == 0,
	    "fclose closes the socket, peer sees EOF", "fclose %d", fc);
	close(b);

	/* The number comes back as a datagram socket, ... */
	int u = sft_bound(AF_INET, SOCK_DGRAM);
	int ok = u == num && sft_connect_to(u, u) == 0;

	ok = ok && send(u, "dgram", 5, 0) == 5 &&
	     recv(u, line, sft_n(sizeof(line)), 0) == 5 &&
	     memcmp(line, "dgram", 5) == 0;
	sft_check(ok, "number reused by a UDP socket that works", "udp %s",
	    u == num ? "failed" : "got another number");
	close(u);

	/* ... as a pipe, ... */
	int p[2];

	ok = pipe(p) == 0 && p[0] == num && roundtrip(p[1], p[0], "piped");
	sft_check(ok, "number reused by a pipe that works", "pipe failed");
	close(p[0]);
	close(p[1]);

	/* ... as a TCP client, and as an accepted socket. */
	int c = sft_socket(AF_INET, SOCK_STREAM);

	ok = c == num && sft_connect_to(c, lfd) == 0;
	int s = accept(lfd, NULL, NULL);

	ok = ok && s >= 0 && roundtrip(c, s, "client") &&
	     roundtrip(s, c, "server");
	sft_check(ok, "number reused by a TCP client that works", "failed");
	close(c);
	close(s);

	c = socket(AF_INET6, SOCK_STREAM, 0); /* takes the number first */
	int l6 = sft_listener(AF_INET6);
	int c6 = sft_socket(AF_INET6, SOCK_STREAM);

	close(c);
	ok = sft_connect_to(c6, l6) == 0;
	s = accept(l6, NULL, NULL);
	ok = ok && s == num && roundtrip(c6, s, "accepted") &&
	     roundtrip(s, c6, "back");
	sft_check(ok, "number reused by an accepted socket that works",
	    "failed");
	close(s);
	close(c6);
	close(l6);
	close(lfd);
	return sft_done();
}
