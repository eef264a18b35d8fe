/*
 * ctorsock.c: libctorsock.so.  Its constructor runs before those of
 * LD_PRELOAD libraries (ld.so initialises a program's dependencies first
 * and preloaded objects last), so the preload's wrappers are entered
 * before its own initialisation: they must bind libc and set themselves
 * up lazily.  The TCP connection made here stays open for main() to use
 * after the preload initialised (a socket it never saw created).
 */
#include "ctorsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NSTEPS 4

static struct ctorsock_step steps[NSTEPS];
static int nsteps;
static int tcp_cli = -1, tcp_srv = -1;

static void
step(const char *name, int ok)
{
	if (nsteps < NSTEPS)
		steps[nsteps++] =
		    (struct ctorsock_step){name, ok, ok ? 0 : errno};
}

/* Send msg on x and receive it on y. */
static int
echo(int x, int y, const char *msg)
{
	char buf[32];
	size_t len = strlen(msg);

	return send(x, msg, len, 0) == (ssize_t)len &&
	       recv(y, buf, sizeof(buf), 0) == (ssize_t)len &&
	       memcmp(buf, msg, len) == 0;
}

static void
ctor_socketpair(void)
{
	int sv[2];
	int ok = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0;

	ok =
	    ok && echo(sv[0], sv[1], "ctor-ping") && echo(sv[1], sv[0], "pong");
	step("ctor socketpair send/recv", ok);
	if (ok) {
		close(sv[0]);
		close(sv[1]);
	}
}

static void
ctor_udp(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, len) == 0 &&
	         getsockname(fd, (struct sockaddr *)&sin, &len) == 0 &&
	         connect(fd, (struct sockaddr *)&sin, len) == 0 &&
	         echo(fd, fd, "ctor-udp");

	step("ctor udp loopback send/recv", ok);
	if (fd >= 0)
		close(fd);
}

static void
ctor_tcp(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	int ok = lfd >= 0 && bind(lfd, (struct sockaddr *)&sin, len) == 0 &&
	         listen(lfd, 1) == 0 &&
	         getsockname(lfd, (struct sockaddr *)&sin, &len) == 0;

	tcp_cli = ok ? socket(AF_INET, SOCK_STREAM, 0) : -1;
	ok = ok && tcp_cli >= 0 &&
	     connect(tcp_cli, (struct sockaddr *)&sin, len) == 0;
	tcp_srv = ok ? accept(lfd, NULL, NULL) : -1;
	ok = ok && tcp_srv >= 0;
	step("ctor tcp connect/accept", ok);
	step("ctor tcp send/recv both ways",
	    ok && echo(tcp_cli, tcp_srv, "ctor-tcp") &&
	        echo(tcp_srv, tcp_cli, "ctor-back"));
	if (lfd >= 0)
		close(lfd);
}

__attribute__((constructor)) static void
ctorsock_init(void)
{
	int saved = errno;

	ctor_socketpair();
	ctor_udp();
	ctor_tcp();
	errno = saved;
}

int
ctorsock_steps(const struct ctorsock_step **out)
{
	*out = steps;
	return nsteps;
}

void
ctorsock_conn(int *cli, int *srv)
{
	*cli = tcp_cli;
	*srv = tcp_srv;
}
