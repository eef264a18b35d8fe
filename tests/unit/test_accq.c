/*
 * test_accq.c: the deferred-connection queue (src/core/accq.c) with real
 * loopback connections, in-process as test_accf_stack.c does: a listener
 * gets an accept filter from sock_create(), "listens" the way the
 * interposer's listen() does (stk_listen, the kernel's listen, the
 * backlog, aq_enable), then waited on as accept/poll/epoll do
 * (aq_attend), and the service thread takes its connections.
 * The clients are plain sockets of the test.
 *
 * What is checked: the backlog rule (a new connection on a queue full of
 * deferred ones closes the oldest deferred; one full of released ones
 * stops the library taking connections), every global counter
 * (defer_closed, defer_close_backlog, defer_close_failed) and the
 * per-filter ndeferred gauge against what the test did, the peer leaving
 * while deferred, sof_newconn_close() through the accept filters'
 * timeout, and the listener's close.
 *
 * No assertion on time: every wait polls for a state with a bound far
 * above what it needs (TA_WAIT), and alarm() is the hang guard.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "accf_glue.h"

#define TA_BACKLOG 4

/* Poll for cond every 5 ms, at most 20 s (a bound, not a measure). */
#define TA_WAIT(cond, ...)                                                     \
	do {                                                                   \
		int ta_i_;                                                     \
		for (ta_i_ = 0; !(cond) && ta_i_ < 4000; ta_i_++)              \
			usleep(5000);                                          \
		cr_assert(cond, __VA_ARGS__);                                  \
	} while (0)

static void
ta_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(60); /* hang guard */
}

TestSuite(accq, .init = ta_init);

/* A filter that defers every connection and never releases one: the
 * core's rules without an accept filter's own (EOF release). */
static sof_rval_t
ta_hold_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	*cookiep = NULL;
	return SOF_RVAL_DEFER;
}

static void
ta_hold_detach_cb(sof_handle_t h, void *cookie, cred_t *cr)
{
}

static const sof_ops_t ta_hold_ops = {
    .sofop_attach_passive = ta_hold_attach_passive_cb,
    .sofop_detach = ta_hold_detach_cb,
};

static struct cfg_snap *
ta_conf(const char *filter, const char *params)
{
	char text[512];
	struct cfg_snap *cs = NULL;
	char err[512];

	snprintf(text, sizeof(text),
	    "filters = ( { name = \"%s\"; module = \"%s\"; attach = \"auto\"; "
	    "sockets = [ \"inet:stream:tcp\" ]; params = { %s }; } );\n",
	    filter, filter, params != NULL ? params : "");
	cr_assert_eq(cfg_load_string(text, "accq.conf", &cs, err, sizeof(err)),
	    0, "config: %s", err);
	return cs;
}

/* A listener of the test, set up as the interposer's listen() does. */
struct ta_lsn {
	struct cfg_snap *tl_cs;
	struct sock *tl_so;
	int tl_fd;
	struct sockaddr_in tl_addr;
	struct st_filter *tl_stats; /* the filter's counters */
};

static void
ta_listen(struct ta_lsn *tl, const char *filter, const char *params,
    int backlog)
{
	socklen_t len = sizeof(tl->tl_addr);
	int bl = backlog;

	memset(tl, 0, sizeof(*tl));
	tl->tl_cs = ta_conf(filter, params);
	tl->tl_fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(tl->tl_fd, 0);
	tl->tl_addr.sin_family = AF_INET;
	tl->tl_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(tl->tl_fd, (struct sockaddr *)&tl->tl_addr,
	                 sizeof(tl->tl_addr)),
	    0);
	cr_assert_eq(getsockname(tl->tl_fd, (struct sockaddr *)&tl->tl_addr,
	                 &len),
	    0);
	cr_assert_eq(sock_create(tl->tl_fd, AF_INET, SOCK_STREAM, IPPROTO_TCP,
	                 tl->tl_cs, &tl->tl_so),
	    0);
	cr_assert_not_null(tl->tl_so, "the listener has %s", filter);
	cr_assert_eq(stk_listen(tl->tl_so, &bl), -1);
	cr_assert_eq(listen(tl->tl_fd, bl), 0);
	atomic_fetch_or(&tl->tl_so->so_flags, SO_F_LISTENING);
	tl->tl_so->so_backlog = bl;
	cr_assert(stk_defers(tl->tl_so), "%s declares SOF_DEFERS", filter);
	cr_assert_eq(aq_enable(tl->tl_so, tl->tl_fd), 0);
	/* The process that waits on the listener takes its connections. */
	aq_attend(tl->tl_so, tl->tl_fd);
	tl->tl_stats = st_filter_get(filter);
	cr_assert_not_null(tl->tl_stats);
}

/* The listener's last close, as close() does it. */
static void
ta_close_listener(struct ta_lsn *tl)
{
	sock_fd_close(tl->tl_so, tl->tl_fd);
	close(tl->tl_fd);
	cfg_rele(tl->tl_cs);
	tl->tl_fd = -1;
}

static int
ta_connect(struct ta_lsn *tl)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&tl->tl_addr,
	                 sizeof(tl->tl_addr)),
	    0, "connect: %s", strerror(errno));
	return fd;
}

static int
ta_ndef(struct ta_lsn *tl)
{
	int ndef;

	(void)aq_count(tl->tl_so, &ndef);
	return ndef;
}

static int
ta_nready(struct ta_lsn *tl)
{
	return aq_count(tl->tl_so, NULL);
}

static unsigned long
ta_closed(void)
{
	return atomic_load(&st_global.sg_defer_closed);
}

static unsigned long
ta_backlog(void)
{
	return atomic_load(&st_global.sg_defer_close_backlog);
}

static unsigned long
ta_failed(void)
{
	return atomic_load(&st_global.sg_defer_close_failed);
}

static long
ta_gauge(struct ta_lsn *tl)
{
	return atomic_load(&tl->tl_stats->sf_ndeferred);
}

/* Has the server side of client fd gone (EOF or reset)?  Waits at most
 * 20 s for it; false if the connection is still open. */
static bool
ta_gone(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	ssize_t n;

	if (poll(&p, 1, 20000) <= 0)
		return false;
	n = recv(fd, &c, 1, MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* Is the connection still open and quiet (nothing from the server)? */
static bool
ta_open(int fd)
{
	char c;

	return recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* Accept one released connection and read want (its first bytes). */
static void
ta_accept_read(struct ta_lsn *tl, const char *want)
{
	size_t len = strlen(want), got = 0;
	char buf[64];
	struct sock *so = NULL;
	int fd;

	fd = aq_accept(tl->tl_so, tl->tl_fd, 0, true, &so);
	cr_assert_geq(fd, 0, "aq_accept: %s", strerror(-fd));
	while (got < len) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;

		if (so != NULL) {
			struct iovec iov = {buf + got, sizeof(buf) - got};
			struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

			if (!sock_rq_pending(so))
				(void)poll(&p, 1, 20000);
			n = sock_recvmsg(so, fd, &m, MSG_DONTWAIT);
		} else {
			(void)poll(&p, 1, 20000);
			n = recv(fd, buf + got, sizeof(buf) - got,
			    MSG_DONTWAIT);
		}
		cr_assert_gt(n, 0, "recv after %zu bytes: %zd", got, n);
		got += (size_t)n;
	}
	cr_assert_eq(got, len);
	cr_assert_eq(memcmp(buf, want, len), 0, "got \"%.*s\", want \"%s\"",
	    (int)got, buf, want);
	if (so != NULL)
		sock_fd_close(so, fd);
	close(fd);
}

Test(accq, backlog_full_of_deferred_closes_the_oldest)
{
	unsigned long closed0 = ta_closed(), backlog0 = ta_backlog();
	unsigned long failed0 = ta_failed();
	struct ta_lsn tl;
	int c[TA_BACKLOG + 3], i;

	ta_listen(&tl, "accf_data", NULL, TA_BACKLOG);
	/* One at a time, so the queue's order is the clients' order. */
	for (i = 0; i < TA_BACKLOG; i++) {
		c[i] = ta_connect(&tl);
		TA_WAIT(ta_ndef(&tl) == i + 1, "client %d deferred (%d)", i,
		    ta_ndef(&tl));
	}
	cr_assert_eq(ta_gauge(&tl), TA_BACKLOG);
	cr_assert_eq(ta_closed(), closed0, "nothing closed yet");
	/* Three more: each closes the oldest deferred one. */
	for (i = TA_BACKLOG; i < TA_BACKLOG + 3; i++) {
		int victim = i - TA_BACKLOG;

		c[i] = ta_connect(&tl);
		TA_WAIT(ta_closed() == closed0 + (unsigned long)victim + 1,
		    "connection %d: defer_closed %lu", i,
		    ta_closed() - closed0);
		cr_assert(ta_gone(c[victim]), "the oldest (client %d) closed",
		    victim);
		TA_WAIT(ta_ndef(&tl) == TA_BACKLOG, "client %d deferred", i);
	}
	for (i = 3; i < TA_BACKLOG + 3; i++)
		cr_assert(ta_open(c[i]), "client %d still held", i);
	cr_assert_eq(ta_closed() - closed0, 3);
	cr_assert_eq(ta_backlog() - backlog0, 3);
	cr_assert_eq(ta_failed(), failed0);
	TA_WAIT(ta_gauge(&tl) == TA_BACKLOG, "ndeferred %ld", ta_gauge(&tl));
	cr_assert_eq(ta_nready(&tl), 0);

	/* A survivor sends: released, accepted with its bytes. */
	cr_assert_eq(send(c[4], "late", 4, 0), 4);
	TA_WAIT(ta_nready(&tl) == 1, "client 4 released");
	cr_assert_eq(ta_ndef(&tl), TA_BACKLOG - 1);
	TA_WAIT(ta_gauge(&tl) == TA_BACKLOG - 1, "ndeferred %ld",
	    ta_gauge(&tl));
	ta_accept_read(&tl, "late");
	cr_assert_eq(ta_closed() - closed0, 3, "a release is not a close");

	ta_close_listener(&tl);
	for (i = 0; i < TA_BACKLOG + 3; i++)
		close(c[i]);
}

Test(accq, backlog_full_of_released_stops_taking)
{
	unsigned long closed0 = ta_closed(), failed0 = ta_failed();
	static const char *const msg[] = {"m0", "m1", "m2", "m3", "m4"};
	struct ta_lsn tl;
	int c[TA_BACKLOG + 1], i;

	ta_listen(&tl, "accf_data", NULL, TA_BACKLOG);
	for (i = 0; i < TA_BACKLOG; i++) {
		c[i] = ta_connect(&tl);
		cr_assert_eq(send(c[i], msg[i], 2, 0), 2);
		TA_WAIT(ta_nready(&tl) == i + 1, "client %d released", i);
	}
	cr_assert_eq(ta_ndef(&tl), 0);
	TA_WAIT(ta_gauge(&tl) == 0, "ndeferred %ld", ta_gauge(&tl));
	/* Nothing deferred to close: the library leaves the next one to the
	 * kernel's backlog and counts the failure. */
	c[TA_BACKLOG] = ta_connect(&tl);
	cr_assert_eq(send(c[TA_BACKLOG], msg[TA_BACKLOG], 2, 0), 2);
	TA_WAIT(ta_failed() == failed0 + 1, "defer_close_failed %lu",
	    ta_failed() - failed0);
	cr_assert_eq(ta_nready(&tl), TA_BACKLOG, "no more taken");
	cr_assert_eq(ta_ndef(&tl), 0);
	cr_assert_eq(ta_closed(), closed0, "no ready connection is closed");
	for (i = 0; i <= TA_BACKLOG; i++)
		cr_assert(ta_open(c[i]), "client %d open", i);

	/* accept() makes room: the kernel's connection comes in, in order. */
	ta_accept_read(&tl, msg[0]);
	TA_WAIT(ta_nready(&tl) == TA_BACKLOG, "the waiting one taken (%d)",
	    ta_nready(&tl));
	for (i = 1; i <= TA_BACKLOG; i++)
		ta_accept_read(&tl, msg[i]);
	cr_assert_eq(ta_nready(&tl), 0);
	cr_assert_eq(ta_failed(), failed0 + 1, "counted once per pause");
	cr_assert_eq(ta_closed(), closed0);

	ta_close_listener(&tl);
	for (i = 0; i <= TA_BACKLOG; i++)
		close(c[i]);
}

Test(accq, peer_reset_while_deferred_is_dropped)
{
	unsigned long closed0 = ta_closed(), backlog0 = ta_backlog();
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	struct ta_lsn tl;
	int a, b;

	ta_listen(&tl, "accf_data", NULL, TA_BACKLOG);
	a = ta_connect(&tl);
	TA_WAIT(ta_ndef(&tl) == 1, "a deferred");
	b = ta_connect(&tl);
	TA_WAIT(ta_ndef(&tl) == 2, "b deferred");
	/* An abortive close: the kernel reports ECONNRESET, not EOF. */
	cr_assert_eq(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(a);
	TA_WAIT(ta_closed() == closed0 + 1, "the reset one dropped (%lu)",
	    ta_closed() - closed0);
	cr_assert_eq(ta_ndef(&tl), 1);
	cr_assert_eq(ta_nready(&tl), 0, "not handed to accept()");
	cr_assert_eq(ta_backlog(), backlog0, "not a backlog eviction");
	TA_WAIT(ta_gauge(&tl) == 1, "ndeferred %ld", ta_gauge(&tl));
	cr_assert(ta_open(b), "the other one still held");

	ta_close_listener(&tl);
	close(b);
}

Test(accq, peer_eof_releases_with_an_accept_filter)
{
	unsigned long closed0 = ta_closed();
	struct ta_lsn tl;
	struct sock *so = NULL;
	char buf[8];
	int a, fd;
	ssize_t n;

	/* accf_data's EOF rule: the server gets the connection and its
	 * EOF (README "Accept filters"), nothing is counted as closed. */
	ta_listen(&tl, "accf_data", NULL, TA_BACKLOG);
	a = ta_connect(&tl);
	TA_WAIT(ta_ndef(&tl) == 1, "deferred");
	cr_assert_eq(shutdown(a, SHUT_WR), 0);
	TA_WAIT(ta_nready(&tl) == 1, "released at EOF");
	cr_assert_eq(ta_closed(), closed0);
	fd = aq_accept(tl.tl_so, tl.tl_fd, 0, true, &so);
	cr_assert_geq(fd, 0);
	if (so != NULL) {
		struct iovec iov = {buf, sizeof(buf)};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

		n = sock_recvmsg(so, fd, &m, 0);
		sock_fd_close(so, fd);
	} else {
		n = recv(fd, buf, sizeof(buf), 0);
	}
	cr_assert_eq(n, 0, "the server reads EOF (%zd)", n);
	cr_assert_eq(atomic_load(&accf_data_desc.ad_count[ACCF_R_EOF]), 1);
	close(fd);
	ta_close_listener(&tl);
	close(a);
}

Test(accq, peer_eof_while_deferred_is_dropped)
{
	unsigned long closed0 = ta_closed(), backlog0 = ta_backlog();
	struct ta_lsn tl;
	int a, b;

	/* A filter that keeps deferring at EOF: the core drops it (illumos
	 * and FreeBSD would keep it until evicted). */
	cr_assert_eq(sof_register(SOF_VERSION, "ta_hold", &ta_hold_ops,
	                 SOF_DEFERS),
	    0);
	ta_listen(&tl, "ta_hold", NULL, TA_BACKLOG);
	a = ta_connect(&tl);
	TA_WAIT(ta_ndef(&tl) == 1, "a deferred");
	b = ta_connect(&tl);
	TA_WAIT(ta_ndef(&tl) == 2, "b deferred");
	cr_assert_eq(send(a, "bye", 3, 0), 3);
	cr_assert_eq(shutdown(a, SHUT_WR), 0);
	TA_WAIT(ta_closed() == closed0 + 1, "dropped (%lu)",
	    ta_closed() - closed0);
	cr_assert(ta_gone(a), "a closed");
	cr_assert_eq(ta_ndef(&tl), 1);
	cr_assert_eq(ta_nready(&tl), 0);
	cr_assert_eq(ta_backlog(), backlog0);
	TA_WAIT(ta_gauge(&tl) == 1, "ndeferred %ld", ta_gauge(&tl));
	cr_assert(ta_open(b));

	ta_close_listener(&tl);
	cr_assert(ta_gone(b), "b closed with the listener");
	close(a);
	close(b);
}

Test(accq, timeout_closes_with_sof_newconn_close)
{
	unsigned long closed0 = ta_closed(), backlog0 = ta_backlog();
	struct ta_lsn tl;
	int a;

	ta_listen(&tl, "accf_data", "timeout = \"200ms\";", TA_BACKLOG);
	a = ta_connect(&tl);
	/* No check that it is deferred first: the timer may win a race
	 * with this thread on a loaded machine.  The outcome is fixed. */
	TA_WAIT(ta_closed() == closed0 + 1, "closed by the timeout (%lu)",
	    ta_closed() - closed0);
	cr_assert(ta_gone(a), "the client sees the close");
	cr_assert_eq(ta_ndef(&tl), 0);
	cr_assert_eq(ta_nready(&tl), 0, "never handed to accept()");
	cr_assert_eq(ta_backlog(), backlog0, "not a backlog eviction");
	cr_assert_eq(atomic_load(&accf_data_desc.ad_count[ACCF_R_TIMEOUT]), 1);
	TA_WAIT(ta_gauge(&tl) == 0, "ndeferred %ld", ta_gauge(&tl));

	ta_close_listener(&tl);
	close(a);
}

Test(accq, listener_close_closes_every_held_connection)
{
	unsigned long closed0 = ta_closed(), backlog0 = ta_backlog();
	unsigned long failed0 = ta_failed();
	struct ta_lsn tl;
	int c[4], i;

	ta_listen(&tl, "accf_data", NULL, TA_BACKLOG);
	/* Two deferred (idle), two released but not accepted. */
	for (i = 0; i < 4; i++) {
		c[i] = ta_connect(&tl);
		if (i >= 2)
			cr_assert_eq(send(c[i], "x", 1, 0), 1);
		TA_WAIT(ta_ndef(&tl) + ta_nready(&tl) == i + 1,
		    "client %d queued", i);
	}
	TA_WAIT(ta_nready(&tl) == 2, "two released");
	cr_assert_eq(ta_ndef(&tl), 2);
	TA_WAIT(ta_gauge(&tl) == 2, "ndeferred %ld", ta_gauge(&tl));

	ta_close_listener(&tl);
	for (i = 0; i < 4; i++)
		cr_assert(ta_gone(c[i]), "client %d closed", i);
	/* Only the deferred ones count as defer_closed. */
	cr_assert_eq(ta_closed() - closed0, 2);
	cr_assert_eq(ta_backlog(), backlog0);
	cr_assert_eq(ta_failed(), failed0);
	TA_WAIT(atomic_load(&st_filter_get("accf_data")->sf_ndeferred) == 0,
	    "ndeferred back to 0");
	for (i = 0; i < 4; i++)
		close(c[i]);
}
