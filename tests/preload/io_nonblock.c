/*
 * io_nonblock.c: the non-blocking and timeout contract: EAGAIN, readiness
 * from poll/select, non-blocking connect, SO_RCVTIMEO, EINTR, and the
 * O_NONBLOCK flag itself.  Readiness must come and go with the data: a
 * preload that buffers data must neither hide it nor report it twice.
 */
#include "sftest.h"

#include <fcntl.h>
#include <sys/select.h>
#include <sys/time.h>

static int
set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -1;
	return fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static int
poll_in(int fd, int ms)
{
	struct pollfd p[1] = {{.fd = fd, .events = POLLIN}};
	int r = poll(p, (nfds_t)sft_n(1), ms);

	return r == 1 ? (p[0].revents & POLLIN) != 0 : r;
}

static int
select_in(int fd, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	fd_set rs;

	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	return select(fd + 1, &rs, NULL, NULL, &tv) == 1 && FD_ISSET(fd, &rs);
}

static void
test_fcntl_flags(int fd)
{
	int fl0 = fcntl(fd, F_GETFL);
	int s1 = fcntl(fd, F_SETFL, fl0 | O_NONBLOCK);
	int fl1 = fcntl(fd, F_GETFL);
	int s2 = fcntl(fd, F_SETFL, fl1 & ~O_NONBLOCK);
	int fl2 = fcntl(fd, F_GETFL);

	sft_check(fl0 >= 0 && (fl0 & O_ACCMODE) == O_RDWR &&
	              !(fl0 & O_NONBLOCK) && s1 == 0 && (fl1 & O_NONBLOCK) &&
	              s2 == 0 && fl2 == fl0,
	    "fcntl F_GETFL/F_SETFL round trip", "flags %#x -> %#x -> %#x", fl0,
	    fl1, fl2);
}

static void
test_eagain(int a, int b)
{
	char buf[32];
	ssize_t r1, r2, r3;
	int e1, e2, e3;

	/* MSG_DONTWAIT on a blocking socket. */
	r1 = recv(b, buf, sft_n(sizeof(buf)), MSG_DONTWAIT);
	e1 = errno;
	sft_check(r1 == -1 && e1 == EAGAIN,
	    "MSG_DONTWAIT recv on empty: EAGAIN", "%zd %s", r1, SFT_ERR(e1));

	set_nonblock(b, 1);
	r2 = read(b, buf, sft_n(sizeof(buf)));
	e2 = errno;
	r3 = recvfrom(b, buf, sft_n(sizeof(buf)), 0, NULL, NULL);
	e3 = errno;
	sft_check(r2 == -1 && e2 == EAGAIN && r3 == -1 && e3 == EAGAIN,
	    "O_NONBLOCK read/recvfrom on empty: EAGAIN", "%zd %s, %zd %s", r2,
	    SFT_ERR(e2), r3, SFT_ERR(e3));
	sft_check(poll_in(b, 0) == 0 && !select_in(b, 0),
	    "poll/select on empty: not readable", "reported readable");

	send(a, "ping", 4, 0);
	int pr = poll_in(b, 5000);
	ssize_t r = recv(b, buf, sft_n(sizeof(buf)), 0);

	sft_check(pr == 1 && r == 4 && memcmp(buf, "ping", 4) == 0,
	    "data after poll says readable", "poll %d recv %zd", pr, r);
	sft_check(poll_in(b, 0) == 0, "drained socket not readable again",
	    "still readable");

	send(a, "pong", 4, 0);
	int sr = select_in(b, 5000);

	r = read(b, buf, sft_n(sizeof(buf)));
	sft_check(sr && r == 4 && memcmp(buf, "pong", 4) == 0,
	    "data after select says readable", "select %d read %zd", sr, r);
	r = recv(b, buf, sft_n(sizeof(buf)), 0);
	sft_check(r == -1 && errno == EAGAIN, "EAGAIN again after drain",
	    "%zd %s", r, SFT_ERR(errno));

	/* EOF is readable and reads 0, not EAGAIN. */
	shutdown(a, SHUT_WR);
	pr = poll_in(b, 5000);
	r = recv(b, buf, sft_n(sizeof(buf)), 0);
	sft_check(pr == 1 && r == 0, "EOF readable and reads 0",
	    "poll %d recv %zd %s", pr, r, SFT_ERR(errno));
	set_nonblock(b, 0);
}

static void
test_accept_nonblock(void)
{
	int lfd = sft_listener(AF_INET);
	int r, e, c, s;

	set_nonblock(lfd, 1);
	r = accept(lfd, NULL, NULL);
	e = errno;
	sft_check(r == -1 && e == EAGAIN,
	    "non-blocking accept with none: EAGAIN", "%d %s", r, SFT_ERR(e));

	c = sft_socket(AF_INET, SOCK_STREAM);
	sft_connect_to(c, lfd);
	int pr = poll_in(lfd, 5000);

	s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	int fl = s >= 0 ? fcntl(s, F_GETFL) : -1;

	sft_check(pr == 1 && s >= 0 && fl >= 0 && (fl & O_NONBLOCK),
	    "accept4(SOCK_NONBLOCK) after poll", "poll %d accept %s flags %#x",
	    pr, s < 0 ? SFT_ERR(errno) : "ok", fl);
	if (s >= 0)
		close(s);
	close(c);
	close(lfd);
}

static int
so_error(int fd)
{
	int err = -1;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	return err;
}

static void
test_connect_nonblock(void)
{
	int lfd = sft_listener(AF_INET);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int r, e;

	sft_maybe_xor(c);
	r = sft_connect_to(c, lfd);
	e = errno;
	sft_check(r == -1 && e == EINPROGRESS,
	    "non-blocking connect: EINPROGRESS", "%d %s", r, SFT_ERR(e));
	struct pollfd p = {.fd = c, .events = POLLOUT};
	int pr = poll(&p, 1, 5000);

	sft_check(pr == 1 && (p.revents & POLLOUT) && so_error(c) == 0,
	    "POLLOUT then SO_ERROR 0", "poll %d revents %#x so_error %d", pr,
	    p.revents, so_error(c));
	int s = accept(lfd, NULL, NULL);
	char buf[8];

	send(c, "nb", 2, 0);
	sft_wait_readable(s, 5000);
	ssize_t n = recv(s, buf, sft_n(sizeof(buf)), 0);

	sft_check(n == 2 && memcmp(buf, "nb", 2) == 0,
	    "data over non-blocking connected socket", "recv %zd", n);
	close(s);
	close(c);

	/* A port nobody listens on any more: refused, reported via SO_ERROR. */
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	getsockname(lfd, (struct sockaddr *)&ss, &len);
	close(lfd);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	sft_maybe_xor(c);
	r = connect(c, (struct sockaddr *)&ss, len);
	e = errno;
	p.fd = c;
	p.events = POLLOUT;
	pr = poll(&p, 1, 5000);
	int se = so_error(c);

	sft_check(r == -1 && e == EINPROGRESS && pr == 1 && se == ECONNREFUSED,
	    "refused non-blocking connect: SO_ERROR ECONNREFUSED",
	    "connect %d %s poll %d so_error %s", r, SFT_ERR(e), pr,
	    se < 0 ? "getsockopt failed" : SFT_ERR(se));
	close(c);
}

static void
test_rcvtimeo(int b)
{
	struct timeval tv = {0, 150000};
	char buf[8];
	long t0, dt;
	ssize_t r;
	int e;

	setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	t0 = sft_now_ms();
	r = recv(b, buf, sft_n(sizeof(buf)), 0);
	e = errno;
	dt = sft_now_ms() - t0;
	/* Bounds are loose: they only catch "did not wait" and "hung". */
	sft_check(r == -1 && e == EAGAIN && dt >= 100 && dt < 10000,
	    "SO_RCVTIMEO expires with EAGAIN", "%zd %s after %s", r, SFT_ERR(e),
	    dt < 100 ? "too short a wait" : "expected wait");
	tv.tv_usec = 0;
	setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static void
on_alarm(int sig)
{
	(void)sig;
}

static void
arm(int ms, int restart)
{
	struct sigaction sa;
	struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

/* A signal interrupts a blocking recv (EINTR) unless SA_RESTART. */
static void
test_eintr(int a, int b)
{
	char buf[8];
	ssize_t r;
	int e;

	arm(100, 0);
	r = recv(b, buf, sft_n(sizeof(buf)), 0);
	e = errno;
	sft_check(r == -1 && e == EINTR,
	    "signal interrupts blocking recv: EINTR", "%zd %s", r, SFT_ERR(e));

	pid_t pid = sft_fork();

	if (pid == 0) {
		sft_msleep(400);
		_exit(send(a, "late", 4, 0) == 4 ? 0 : 1);
	}
	arm(50, 1);
	r = recv(b, buf, sft_n(sizeof(buf)), 0);
	e = errno;
	sft_check(r == 4 && memcmp(buf, "late", 4) == 0 && sft_wait_child(pid),
	    "SA_RESTART recv survives the signal", "%zd %s", r, SFT_ERR(e));
	signal(SIGALRM, SIG_DFL);
}

int
main(int argc, char **argv)
{
	int a, b;

	sft_init(argc, argv);
	sft_tcp_pair(AF_INET, &a, &b);
	test_fcntl_flags(b);
	test_rcvtimeo(b);
	test_eintr(a, b);
	test_eagain(a, b);
	close(a);
	close(b);
	test_accept_nonblock();
	test_connect_nonblock();
	return sft_done();
}
