/*
 * test_accf_stack.c: the accept filter modules on the real filter stack,
 * driven in-process the way test_stack.c does: a listener gets the
 * automatic filter from sock_create(), sock_accepted() runs
 * attach_passive (DEFER) and queues the connection, the service thread
 * feeds data_in until the filter releases it, aq_accept() hands it over,
 * and the bytes the filter saw reach the reader intact.  The
 * modules' sources are linked in, so their constructors register them.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "accf_glue.h"

static void
ts_init(void)
{
	signal(SIGPIPE, SIG_IGN);
	alarm(60); /* hang guard, as in test_stack.c */
}

TestSuite(accf_stack, .init = ts_init);

static struct cfg_snap *
ts_conf(const char *filter, const char *params)
{
	char text[512];
	struct cfg_snap *cs = NULL;
	char err[512];

	snprintf(text, sizeof(text),
	    "filters = ( { name = \"%s\"; module = \"%s\"; attach = \"auto\"; "
	    "sockets = [ \"inet:stream:tcp\" ]; params = { %s }; } );\n",
	    filter, filter, params != NULL ? params : "");
	cr_assert_eq(cfg_load_string(text, "accf.conf", &cs, err, sizeof(err)),
	    0, "config: %s", err);
	return cs;
}

static int
ts_listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

/* The client's second write, from another thread after a delay. */
struct ts_late {
	int fd;
	const void *data;
	size_t len;
	bool shut; /* then shutdown(SHUT_WR) */
};

static void *
ts_late_main(void *arg)
{
	struct ts_late *l = arg;

	usleep(250 * 1000);
	if (l->len > 0 && send(l->fd, l->data, l->len, 0) != (ssize_t)l->len)
		return (void *)1;
	if (l->shut)
		(void)shutdown(l->fd, SHUT_WR);
	return NULL;
}

static double
ts_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FIL_LIST of so as "name/pos/flags" (A auto, B bypassed), top first. */
static void
ts_list(struct sock *so, char *buf, size_t len)
{
	struct fil_info fi[SOCK_MAXSTACK];
	socklen_t flen = sizeof(fi);
	size_t i, off = 0;

	buf[0] = '\0';
	cr_assert_eq(stk_fil_list(so, fi, &flen), 0);
	for (i = 0; i < flen / sizeof(fi[0]) && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s/%d/%s%s",
		    i > 0 ? "," : "", fi[i].fi_name, fi[i].fi_pos,
		    (fi[i].fi_flags & FILF_AUTO) ? "A" : "",
		    (fi[i].fi_flags & FILF_BYPASS) ? "B" : "");
}

/* What the accept of one connection looked like. */
struct ts_run {
	double secs; /* sock_accepted() took */
	char got[256];
	size_t ngot;
	char list[128];
};

/*
 * One connection to a listener with filter (params): the client sends
 * first (first_len bytes) before accept, then late (late_len bytes,
 * maybe a shutdown) 250 ms later; the server side accepts through the
 * stack and reads everything that arrives.
 */
static void
ts_connection(const char *filter, const char *params, const void *first,
    size_t first_len, const void *late, size_t late_len, bool shut,
    struct ts_run *run)
{
	struct cfg_snap *cs = ts_conf(filter, params);
	struct sockaddr_in addr;
	struct sock *lso = NULL, *so = NULL;
	struct ts_late l;
	pthread_t tid;
	void *tret;
	double t0;
	int lfd = ts_listener(&addr), cfd, afd;

	memset(run, 0, sizeof(*run));
	cr_assert_eq(sock_create(lfd, AF_INET, SOCK_STREAM, IPPROTO_TCP, cs,
	                 &lso),
	    0);
	cr_assert_not_null(lso, "the listener has the filter");
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	if (first_len > 0)
		cr_assert_eq(send(cfd, first, first_len, 0),
		    (ssize_t)first_len);
	l.fd = cfd;
	l.data = late;
	l.len = late_len;
	l.shut = shut;
	cr_assert_eq(pthread_create(&tid, NULL, ts_late_main, &l), 0);
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0);
	t0 = ts_now();
	{
		int r = sock_accepted(lso, afd, &so);

		/* Deferred: queued on the listener; accept takes it from the
		 * queue once released, under a new descriptor. */
		if (r == EINPROGRESS) {
			afd = aq_accept(lso, lfd, 0, false, &so);
			cr_assert_geq(afd, 0, "aq_accept: %d", afd);
		} else {
			cr_assert_eq(r, 0);
		}
	}
	run->secs = ts_now() - t0;
	cr_assert_eq(pthread_join(tid, &tret), 0);
	cr_assert_null(tret);
	cr_assert_not_null(so, "the accepted socket keeps its stack");
	ts_list(so, run->list, sizeof(run->list));
	/* Everything the client sent, through the library's queue. */
	while (run->ngot < first_len + late_len) {
		struct pollfd p = {.fd = afd, .events = POLLIN};
		struct iovec iov = {.iov_base = run->got + run->ngot,
		    .iov_len = sizeof(run->got) - 1 - run->ngot};
		struct msghdr m;
		ssize_t n;

		memset(&m, 0, sizeof(m));
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		if (!sock_rq_pending(so))
			(void)poll(&p, 1, 2000);
		n = sock_recvmsg(so, afd, &m, MSG_DONTWAIT);
		cr_assert_gt(n, 0, "recv: %zd after %zu bytes", n, run->ngot);
		run->ngot += (size_t)n;
	}
	sock_fd_close(so, afd);
	sock_fd_close(lso, lfd);
	close(afd);
	close(cfd);
	close(lfd);
	cfg_rele(cs);
}

static unsigned long
ts_count(struct accf_desc *d, enum accf_reason r)
{
	return atomic_load(&d->ad_count[r]);
}

Test(accf_stack, http_get_is_held_until_the_header_is_whole)
{
	static const char a[] = "GET / HTTP/1.1\r\nHost: x\r\n";
	static const char b[] = "Accept: */*\r\n\r\n";
	struct ts_run run;

	ts_connection("accf_http", NULL, a, strlen(a), b, strlen(b), false,
	    &run);
	cr_assert_geq(run.secs, 0.2, "deferred until the second write (%.3f)",
	    run.secs);
	cr_assert_eq(run.ngot, strlen(a) + strlen(b));
	cr_assert_eq(memcmp(run.got,
	                 "GET / HTTP/1.1\r\nHost: x\r\nAccept: "
	                 "*/*\r\n\r\n",
	                 run.ngot),
	    0);
	cr_assert_str_eq(run.list, "accf_http/0/AB");
	cr_assert_eq(ts_count(&accf_http_desc, ACCF_R_COMPLETE), 1);
}

Test(accf_stack, http_post_is_released_at_once)
{
	static const char a[] = "POST /x HTTP/1.1\r\nContent-Length: 2\r\n\r\n";
	struct ts_run run;

	ts_connection("accf_http", NULL, a, strlen(a), "hi", 2, false, &run);
	cr_assert_lt(run.secs, 0.2, "not held (%.3f)", run.secs);
	cr_assert_eq(run.ngot, strlen(a) + 2);
	cr_assert_eq(memcmp(run.got + strlen(a), "hi", 2), 0);
	cr_assert_eq(ts_count(&accf_http_desc, ACCF_R_OTHER), 1);
}

Test(accf_stack, http_half_header_then_eof_is_handed_over)
{
	static const char a[] = "GET / HTTP/1.1\r\nHost: x";
	struct ts_run run;

	ts_connection("accf_http", NULL, a, strlen(a), NULL, 0, true, &run);
	cr_assert_geq(run.secs, 0.2);
	cr_assert_eq(run.ngot, strlen(a));
	cr_assert_eq(ts_count(&accf_http_desc, ACCF_R_EOF), 1);
}

Test(accf_stack, dns_query_in_two_pieces)
{
	static const char q[] = "\0\x0cquery-bytes!";
	struct ts_run run;

	ts_connection("accf_dns", NULL, q, 5, q + 5, 9, false, &run);
	cr_assert_geq(run.secs, 0.2);
	cr_assert_eq(run.ngot, 14);
	cr_assert_eq(memcmp(run.got, q, 14), 0);
	cr_assert_eq(ts_count(&accf_dns_desc, ACCF_R_COMPLETE), 1);
}

Test(accf_stack, tls_record_in_two_pieces)
{
	static const char rec[] = "\x16\x03\x01\x00\x04"
	                          "\x01\x00\x00\x00";
	struct ts_run run;

	ts_connection("accf_tls", NULL, rec, 3, rec + 3, 6, false, &run);
	cr_assert_geq(run.secs, 0.2);
	cr_assert_eq(run.ngot, 9);
	cr_assert_eq(memcmp(run.got, rec, 9), 0);
	cr_assert_eq(ts_count(&accf_tls_desc, ACCF_R_COMPLETE), 1);
}

Test(accf_stack, data_waits_for_the_first_byte)
{
	struct ts_run run;

	ts_connection("accf_data", "timeout = 5;", NULL, 0, "x", 1, false,
	    &run);
	cr_assert_geq(run.secs, 0.2);
	cr_assert_eq(run.ngot, 1);
	cr_assert_eq(run.got[0], 'x');
	cr_assert_str_eq(run.list, "accf_data/0/AB");
	cr_assert_eq(ts_count(&accf_data_desc, ACCF_R_COMPLETE), 1);
}

Test(accf_stack, client_socket_bypasses_at_connect)
{
	struct cfg_snap *cs = ts_conf("accf_http", NULL);
	struct sockaddr_in addr;
	socklen_t alen = sizeof(addr);
	struct sock *so = NULL;
	char list[128];
	int lfd = ts_listener(&addr), cfd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_eq(sock_create(cfd, AF_INET, SOCK_STREAM, IPPROTO_TCP, cs,
	                 &so),
	    0);
	cr_assert_not_null(so);
	ts_list(so, list, sizeof(list));
	cr_assert_str_eq(list, "accf_http/0/A");
	cr_assert_eq(stk_connect(so, (struct sockaddr *)&addr, &alen), -1);
	ts_list(so, list, sizeof(list));
	cr_assert_str_eq(list, "accf_http/0/AB");
	cr_assert_eq(atomic_load(&so->so_nactive), 0);
	sock_fd_close(so, cfd);
	close(cfd);
	close(lfd);
	cfg_rele(cs);
}
