/*
 * test_stack.c: the filter stack (stack.c) and the filtered data path
 * (sock.c), driven in-process on real sockets.  This binary is never
 * preloaded: sockets come from the real libc, stacks from sock_create(),
 * data moves through sock_sendmsg()/sock_recvmsg() and the one-buffer
 * entries sock_send()/sock_recv().
 *
 * Filters: one callback table, the "journal", registered under several
 * names (f1..f4 automatic, p1..p3 programmatic in the configurations
 * below).  Every callback appends (instance name, callback, argument) to
 * a global journal, then does what the behaviour of its name (struct jb)
 * says: return a verdict, drop, transform or keep data, inject, bypass.
 * Criterion runs each test in its own process, so globals start fresh.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

/* ---------------------------------------------------------------------
 * The journal.
 * ------------------------------------------------------------------- */

#define JR_MAX 1024
#define JR_ANY ((uintptr_t)-1)

struct jr_ent {
	char je_name[FILNAME_MAX];
	const char *je_op; /* callback name, a string literal */
	uintptr_t je_arg;  /* event, length, option name ... */
	void *je_cookie;   /* the cookie the callback received */
};

static struct jr_ent jr_log[JR_MAX];
static int jr_n;
static char jr_buf[8][2048];
static unsigned jr_bufi;

static void
jr_add(sof_handle_t h, const char *op, uintptr_t arg, void *cookie)
{
	struct jr_ent *e;

	if (jr_n >= JR_MAX)
		return;
	e = &jr_log[jr_n++];
	snprintf(e->je_name, sizeof(e->je_name), "%s", sof_get_name(h));
	e->je_op = op;
	e->je_arg = arg;
	e->je_cookie = cookie;
}

static void
jr_reset(void)
{
	jr_n = 0;
}

static char *
jr_next_buf(void)
{
	char *b = jr_buf[jr_bufi++ % 8];

	b[0] = '\0';
	return b;
}

static void
jr_append(char *b, const char *s)
{
	size_t len = strlen(b);

	snprintf(b + len, sizeof(jr_buf[0]) - len, "%s%s", len > 0 ? "," : "",
	    s);
}

/* Names of the instances that logged op (with argument arg unless
 * JR_ANY), in journal order, as "a,b,c". */
static const char *
jr_seq_arg(const char *op, uintptr_t arg)
{
	char *b = jr_next_buf();
	int i;

	for (i = 0; i < jr_n; i++)
		if (strcmp(jr_log[i].je_op, op) == 0 &&
		    (arg == JR_ANY || jr_log[i].je_arg == arg))
			jr_append(b, jr_log[i].je_name);
	return b;
}

static const char *
jr_seq(const char *op)
{
	return jr_seq_arg(op, JR_ANY);
}

/* Callbacks of the instance(s) called name, in order, as "op,op". */
static const char *
jr_ops(const char *name)
{
	char *b = jr_next_buf();
	int i;

	for (i = 0; i < jr_n; i++)
		if (strcmp(jr_log[i].je_name, name) == 0)
			jr_append(b, jr_log[i].je_op);
	return b;
}

/* The cookie the last op callback of name received. */
static void *
jr_cookie(const char *name, const char *op)
{
	int i;

	for (i = jr_n - 1; i >= 0; i--)
		if (strcmp(jr_log[i].je_name, name) == 0 &&
		    strcmp(jr_log[i].je_op, op) == 0)
			return jr_log[i].je_cookie;
	cr_assert_fail("no %s callback of %s", op, name);
	return NULL;
}

/* ---------------------------------------------------------------------
 * Per-name behaviour.
 * ------------------------------------------------------------------- */

enum jb_out {
	JO_PASS,  /* return the chain untouched */
	JO_DROP,  /* free it, return NULL with out_rval */
	JO_XOR,   /* XOR every byte with JB_KEY (copying a shared block) */
	JO_KEEP,  /* keep a dupb() of the first block in jb_kept */
	JO_HDR,   /* prepend "HDR:" in the head room, without allocating */
	JO_BYPASS /* sof_bypass() itself, then pass */
};

enum jb_in {
	JI_PASS,
	JI_CONSUME, /* free it, return NULL */
	JI_INJECT,  /* sof_inject_data_out("PONG"), then pass */
	JI_KEEP,    /* keep a dupb() of the first block in jb_kept */
	JI_XOR,     /* XOR every byte with JB_KEY (copying a shared block) */
	JI_GROW,    /* append "++++" in a block of its own */
	JI_TRIM     /* drop the first byte (moves the window only) */
};

#define JB_KEY 0x5a

struct jb {
	char name[FILNAME_MAX];
	sof_handle_t h;    /* the instance attached last (NULL at detach) */
	sof_rval_t attach; /* attach_active verdict */
	void *cookie;      /* cookie attach_active stores */
	sof_rval_t ctl;    /* verdict of every control operation */
	enum jb_out out;
	sof_rval_t out_rval; /* with JO_DROP */
	enum jb_in in;
	int wroff;      /* >= 0: mblk_prop asks for this head room */
	int inject_err; /* result of the JI_INJECT injection */
	bool fc_attach; /* attach_active asserts receive flow control */
	bool fc_detach; /* detach clears it */
	bool bye;       /* inject "BYE" out on SOF_EV_CLOSING */
	int bye_err;
	bool hdr_failed; /* JO_HDR found no head room or a shared block */
	/* What the last data_out call saw in its first block. */
	unsigned char *seen_rptr;
	dblk_t *seen_db;
	size_t seen_head;
	uint32_t seen_ref;
	size_t seen_len;
	/* What the last data_in call saw in its first block. */
	unsigned char *in_rptr;
	uint32_t in_ref;
};

#define JB_MAX 16
static struct jb jbs[JB_MAX];
static int njbs;
static mblk_t *jb_kept; /* JO_KEEP's block */

/* The behaviour of filter name (created with "continue everywhere"). */
static struct jb *
jb(const char *name)
{
	struct jb *b;
	int i;

	for (i = 0; i < njbs; i++)
		if (strcmp(jbs[i].name, name) == 0)
			return &jbs[i];
	cr_assert_lt(njbs, JB_MAX);
	b = &jbs[njbs++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	b->attach = SOF_RVAL_CONTINUE;
	b->ctl = SOF_RVAL_CONTINUE;
	b->out_rval = SOF_RVAL_CONTINUE;
	b->wroff = -1;
	return b;
}

static struct jb *
jbh(sof_handle_t h)
{
	return jb(sof_get_name(h));
}

/* A fresh block holding len bytes of data. */
static mblk_t *
j_mblk(const void *data, size_t len)
{
	mblk_t *mp = allocb(len, BPRI_MED);

	cr_assert_not_null(mp);
	memcpy(mp->b_wptr, data, len);
	mp->b_wptr += len;
	return mp;
}

/* ---------------------------------------------------------------------
 * The journal filter's callbacks.
 * ------------------------------------------------------------------- */

static sof_rval_t
j_attach_active(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	struct jb *b = jbh(h);

	jr_add(h, "attach_active", (uintptr_t)family, NULL);
	if (b->attach == SOF_RVAL_CONTINUE) {
		b->h = h;
		*cookiep = b->cookie;
		if (b->fc_attach)
			sof_rcv_flowctrl(h, B_TRUE);
	}
	return b->attach;
}

static sof_rval_t
j_attach_passive(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	struct jb *b = jbh(h);

	jr_add(h, "attach_passive", 0, parg);
	if (b->attach == SOF_RVAL_CONTINUE) {
		b->h = h;
		*cookiep = parg;
	}
	return b->attach;
}

static void
j_detach(sof_handle_t h, void *cookie, cred_t *cr)
{
	struct jb *b = jbh(h);

	jr_add(h, "detach", 0, cookie);
	if (b->fc_detach)
		sof_rcv_flowctrl(h, B_FALSE);
	if (b->h == h)
		b->h = NULL;
}

/* A private copy of a chain any of whose blocks is shared. */
static mblk_t *
j_writable(mblk_t *mp)
{
	const mblk_t *b;
	mblk_t *cp;

	for (b = mp; b != NULL; b = b->b_cont)
		if (DB_REF(b) > 1)
			break;
	if (b == NULL)
		return mp;
	cp = copymsg(mp);
	freemsg(mp);
	return cp;
}

static void
j_xor(mblk_t *mp)
{
	unsigned char *p;

	for (; mp != NULL; mp = mp->b_cont)
		for (p = mp->b_rptr; p < mp->b_wptr; p++)
			*p ^= JB_KEY;
}

static mblk_t *
j_data_out(sof_handle_t h, void *cookie, mblk_t *mp, struct nmsghdr *msg,
    cred_t *cr, sof_rval_t *rvalp)
{
	struct jb *b = jbh(h);

	jr_add(h, "data_out", msgdsize(mp), cookie);
	b->seen_rptr = mp->b_rptr;
	b->seen_db = mp->b_datap;
	b->seen_head = MBLKHEAD(mp);
	b->seen_ref = DB_REF(mp);
	b->seen_len = MBLKL(mp);
	switch (b->out) {
	case JO_PASS:
		break;
	case JO_DROP:
		freemsg(mp);
		*rvalp = b->out_rval;
		return NULL;
	case JO_XOR:
		if ((mp = j_writable(mp)) == NULL) {
			*rvalp = SOF_RVAL_ENOMEM;
			return NULL;
		}
		j_xor(mp);
		break;
	case JO_KEEP:
		if (jb_kept == NULL)
			jb_kept = dupb(mp);
		break;
	case JO_HDR:
		if (MBLKHEAD(mp) < 4 || DB_REF(mp) != 1) {
			b->hdr_failed = true;
			break;
		}
		mp->b_rptr -= 4;
		memcpy(mp->b_rptr, "HDR:", 4);
		break;
	case JO_BYPASS:
		sof_bypass(h);
		break;
	}
	return mp;
}

static mblk_t *
j_data_in(sof_handle_t h, void *cookie, mblk_t *mp, int flags, size_t *sizep)
{
	struct jb *b = jbh(h);
	boolean_t fc = B_TRUE;

	jr_add(h, "data_in", *sizep, cookie);
	b->in_rptr = mp->b_rptr;
	b->in_ref = DB_REF(mp);
	switch (b->in) {
	case JI_PASS:
		break;
	case JI_CONSUME:
		freemsg(mp);
		*sizep = 0;
		return NULL;
	case JI_INJECT:
		b->inject_err =
		    sof_inject_data_out(h, j_mblk("PONG", 4), NULL, &fc);
		break;
	case JI_KEEP:
		if (jb_kept == NULL)
			jb_kept = dupb(mp);
		break;
	case JI_XOR:
		if ((mp = j_writable(mp)) == NULL)
			return NULL;
		j_xor(mp);
		break;
	case JI_GROW:
		linkb(mp, j_mblk("++++", 4));
		*sizep += 4;
		break;
	case JI_TRIM:
		cr_assert_eq(adjmsg(mp, 1), 1);
		*sizep -= 1;
		break;
	}
	return mp;
}

static mblk_t *
j_data_in_proc(sof_handle_t h, void *cookie, mblk_t *mp, cred_t *cr,
    size_t *sizep)
{
	jr_add(h, "data_in_proc", *sizep, cookie);
	return mp;
}

static sof_rval_t
j_bind(sof_handle_t h, void *cookie, struct sockaddr *addr, socklen_t *addrlen,
    cred_t *cr)
{
	jr_add(h, "bind", 0, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_listen(sof_handle_t h, void *cookie, int *backlog, cred_t *cr)
{
	jr_add(h, "listen", (uintptr_t)*backlog, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_connect(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *addrlen, cred_t *cr)
{
	jr_add(h, "connect", 0, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_accept(sof_handle_t h, void *cookie, cred_t *cr)
{
	jr_add(h, "accept", 0, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_shutdown(sof_handle_t h, void *cookie, int *how, cred_t *cr)
{
	jr_add(h, "shutdown", (uintptr_t)*how, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_getsockname(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *addrlen, cred_t *cr)
{
	jr_add(h, "getsockname", 0, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_getpeername(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *addrlen, cred_t *cr)
{
	jr_add(h, "getpeername", 0, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_setsockopt(sof_handle_t h, void *cookie, int level, int name, void *val,
    socklen_t *vallen, cred_t *cr)
{
	jr_add(h, "setsockopt", (uintptr_t)name, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_getsockopt(sof_handle_t h, void *cookie, int level, int name, void *val,
    socklen_t *vallen, cred_t *cr)
{
	jr_add(h, "getsockopt", (uintptr_t)name, cookie);
	return jbh(h)->ctl;
}

static sof_rval_t
j_ioctl(sof_handle_t h, void *cookie, int cmd, intptr_t arg, int mode,
    int32_t *rvalp, cred_t *cr)
{
	jr_add(h, "ioctl", (uintptr_t)cmd, cookie);
	return jbh(h)->ctl;
}

static void
j_mblk_prop(sof_handle_t h, void *cookie, ssize_t *maxblk, ushort_t *wroff,
    ushort_t *tail)
{
	struct jb *b = jbh(h);

	jr_add(h, "mblk_prop", 0, cookie);
	if (b->wroff >= 0)
		*wroff = (ushort_t)b->wroff;
}

static void
j_notify(sof_handle_t h, void *cookie, sof_event_t event, uintptr_t arg)
{
	struct jb *b = jbh(h);

	jr_add(h, "notify", (uintptr_t)event, cookie);
	if (event == SOF_EV_CLOSING && b->bye)
		b->bye_err =
		    sof_inject_data_out(h, j_mblk("BYE", 3), NULL, NULL);
}

static const sof_ops_t j_ops = {
    .sofop_attach_active = j_attach_active,
    .sofop_attach_passive = j_attach_passive,
    .sofop_detach = j_detach,
    .sofop_data_in = j_data_in,
    .sofop_data_in_proc = j_data_in_proc,
    .sofop_data_out = j_data_out,
    .sofop_bind = j_bind,
    .sofop_listen = j_listen,
    .sofop_connect = j_connect,
    .sofop_accept = j_accept,
    .sofop_shutdown = j_shutdown,
    .sofop_getsockname = j_getsockname,
    .sofop_getpeername = j_getpeername,
    .sofop_setsockopt = j_setsockopt,
    .sofop_getsockopt = j_getsockopt,
    .sofop_ioctl = j_ioctl,
    .sofop_mblk_prop = j_mblk_prop,
    .sofop_notify = j_notify,
};

static void
st_init(void)
{
	static const char *const names[] = {"f1", "f2", "f3", "f4", "p1", "p2",
	    "p3"};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int error = sof_register(SOF_VERSION, names[i], &j_ops, 0);

		cr_assert(error == 0 || error == EEXIST, "register %s: %d",
		    names[i], error);
	}
	signal(SIGPIPE, SIG_IGN);
	/* Hang guard: SIGALRM kills the test's process and Criterion reports
	 * a crash.  (Criterion's own .timeout leaks memory in its runner,
	 * which fails the run when LeakSanitizer is on.) */
	alarm(60);
}

TestSuite(stack, .init = st_init);

/* ---------------------------------------------------------------------
 * Configurations and sockets.
 * ------------------------------------------------------------------- */

#define ST_TUPLES "sockets = [ \"unix:stream:0\", \"inet:stream:tcp\" ]; "

/* Three automatic filters, bottom up f1, f2, f3 by placement (not by
 * file order); f4 automatic on UDP only; p1 and p3 programmatic on both
 * tuples, p2 programmatic on TCP only. */
static const char st_conf3[] =
    "filters = (\n"
    "  { name = \"f1\"; module = \"f1\"; attach = \"auto\"; "
    "placement = \"bottom\"; " ST_TUPLES
    "params = { key = \"abc\"; n = 42; on = true; }; },\n"
    "  { name = \"f3\"; module = \"f3\"; attach = \"auto\"; "
    "placement = \"top\"; " ST_TUPLES "},\n"
    "  { name = \"f2\"; module = \"f2\"; attach = \"auto\"; "
    "placement = \"after:f1\"; " ST_TUPLES "},\n"
    "  { name = \"f4\"; module = \"f4\"; attach = \"auto\"; "
    "sockets = [ \"inet:dgram:udp\" ]; },\n"
    "  { name = \"p1\"; module = \"p1\"; attach = \"prog\"; " ST_TUPLES "},\n"
    "  { name = \"p3\"; module = \"p3\"; attach = \"prog\"; " ST_TUPLES "},\n"
    "  { name = \"p2\"; module = \"p2\"; attach = \"prog\"; "
    "sockets = [ \"inet:stream:tcp\" ]; }\n"
    ");\n";

/* One automatic filter on TCP. */
static const char st_conf1[] =
    "filters = ( { name = \"f1\"; module = \"f1\"; attach = \"auto\"; "
    "sockets = [ \"inet:stream:tcp\" ]; } );\n";

struct st {
	struct cfg_snap *cs;
	struct sock *so;
	int fd;   /* the filtered end */
	int peer; /* the plain end */
};

static struct cfg_snap *
st_load(const char *text)
{
	struct cfg_snap *cs = NULL;
	char err[512];
	int error = cfg_load_string(text, "stack.conf", &cs, err, sizeof(err));

	cr_assert_eq(error, 0, "config: %s", err);
	cr_assert_not_null(cs);
	return cs;
}

/* A Unix stream pair; fd gets the stack of conf. */
static void
st_unix(struct st *t, const char *conf)
{
	int sv[2];

	memset(t, 0, sizeof(*t));
	t->cs = st_load(conf);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	t->fd = sv[0];
	t->peer = sv[1];
	cr_assert_eq(sock_create(t->fd, AF_UNIX, SOCK_STREAM, 0, t->cs, &t->so),
	    0);
	cr_assert_not_null(t->so);
}

/* A listening TCP socket on 127.0.0.1 (its receive buffer set first). */
static int
st_listener(int rcvbuf, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert_geq(fd, 0);
	if (rcvbuf > 0)
		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		                 sizeof(rcvbuf)),
		    0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	cr_assert_eq(listen(fd, 8), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

/* connect() that also completes a nonblocking connect. */
static void
st_connect(int fd, const struct sockaddr_in *addr)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));

	if (r != 0) {
		cr_assert_eq(errno, EINPROGRESS, "connect: %s",
		    strerror(errno));
		cr_assert_eq(poll(&p, 1, 5000), 1);
	}
}

/* A TCP connection over loopback; fd (created with type, a SOCK_STREAM
 * maybe with SOCK_NONBLOCK) gets the stack of conf. */
static void
st_tcp(struct st *t, const char *conf, int type, int sndbuf, int rcvbuf)
{
	struct sockaddr_in addr;
	int lfd = st_listener(rcvbuf, &addr);

	memset(t, 0, sizeof(*t));
	t->cs = st_load(conf);
	t->fd = socket(AF_INET, type, 0);
	cr_assert_geq(t->fd, 0);
	cr_assert_eq(sock_create(t->fd, AF_INET, type, IPPROTO_TCP, t->cs,
	                 &t->so),
	    0);
	cr_assert_not_null(t->so);
	if (sndbuf > 0)
		cr_assert_eq(setsockopt(t->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
		                 sizeof(sndbuf)),
		    0);
	st_connect(t->fd, &addr);
	t->peer = accept(lfd, NULL, NULL);
	cr_assert_geq(t->peer, 0);
	close(lfd);
}

/* The descriptor's last close (CLOSING, flush, detach), then the rest. */
static void
st_close(struct st *t)
{
	if (t->so != NULL)
		sock_fd_close(t->so, t->fd);
	t->so = NULL;
	close(t->fd);
	close(t->peer);
	cfg_rele(t->cs);
}

static ssize_t
st_sendv(struct st *t, struct iovec *iov, int cnt, int flags)
{
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = (size_t)cnt;
	return sock_sendmsg(t->so, t->fd, &m, flags);
}

static ssize_t
st_send(struct st *t, const void *buf, size_t len, int flags)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};

	return st_sendv(t, &iov, 1, flags);
}

static ssize_t
st_recv(struct st *t, void *buf, size_t len, int flags)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	return sock_recvmsg(t->so, t->fd, &m, flags);
}

/* recv() of one buffer: sock_recv, the buffer entry without a msghdr. */
static ssize_t
st_recvb(struct st *t, void *buf, size_t len, int flags)
{
	return sock_recv(t->so, t->fd, buf, len, flags);
}

/* Wait until the filtered end is readable (hang guard 2 s). */
static void
st_wait_in(struct st *t)
{
	struct pollfd p = {.fd = t->fd, .events = POLLIN};

	(void)poll(&p, 1, 2000);
}

/* What the plain end can read within ms (0 if nothing came). */
static size_t
st_peer_read(struct st *t, void *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = t->peer, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return 0;
	n = recv(t->peer, buf, len, MSG_DONTWAIT);
	return n > 0 ? (size_t)n : 0;
}

/* Assert that the plain end gets exactly the string s. */
static void
st_peer_expect(struct st *t, const char *s)
{
	char buf[256];
	size_t want = strlen(s), got = 0;
	int tries;

	for (tries = 0; got < want && tries < 50; tries++)
		got += st_peer_read(t, buf + got, sizeof(buf) - 1 - got, 100);
	got += st_peer_read(t, buf + got, sizeof(buf) - 1 - got, 20);
	buf[got] = '\0';
	cr_assert_str_eq(buf, s);
}

static void
st_peer_write(struct st *t, const char *s)
{
	cr_assert_eq(send(t->peer, s, strlen(s), 0), (ssize_t)strlen(s));
}

/* Receive through the stack (nonblocking) and assert the bytes are s. */
static void
st_expect(struct st *t, const char *s)
{
	struct pollfd p = {.fd = t->fd, .events = POLLIN};
	char buf[256];
	ssize_t n;

	(void)poll(&p, 1, 2000);
	n = st_recv(t, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	cr_assert_geq(n, 0, "recv: %s", strerror((int)-n));
	buf[n] = '\0';
	cr_assert_str_eq(buf, s);
}

/* FIL_LIST as "name/pos/flags,..." top first; flags A, P, B. */
static const char *
st_list(struct sock *so)
{
	struct fil_info fi[SOCK_MAXSTACK];
	socklen_t len = sizeof(fi);
	char *b = jr_next_buf();
	size_t i;

	cr_assert_eq(stk_fil_list(so, fi, &len), 0);
	cr_assert_eq(len % sizeof(fi[0]), 0);
	for (i = 0; i < len / sizeof(fi[0]); i++) {
		char one[64];

		snprintf(one, sizeof(one), "%s/%d/%s%s%s", fi[i].fi_name,
		    fi[i].fi_pos, (fi[i].fi_flags & FILF_AUTO) ? "A" : "",
		    (fi[i].fi_flags & FILF_PROG) ? "P" : "",
		    (fi[i].fi_flags & FILF_BYPASS) ? "B" : "");
		jr_append(b, one);
	}
	return b;
}

/* ---------------------------------------------------------------------
 * Order.
 * ------------------------------------------------------------------- */

Test(stack, auto_attach_bottom_up_in_placement_order)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3");
	cr_assert_eq(t.so->so_ninst, 3);
	cr_assert_str_eq(t.so->so_bottom->si_reg->rf_name, "f1");
	cr_assert_str_eq(t.so->so_top->si_reg->rf_name, "f3");
	st_close(&t);
}

Test(stack, fil_list_top_first_with_positions_and_flags)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/A,f1/0/A");
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_str_eq(st_list(t.so), "p1/3/P,f3/2/A,f2/1/A,f1/0/A");
	st_close(&t);
}

Test(stack, control_ops_top_down_and_continue_is_minus_one)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int backlog = 5, how = SHUT_WR, val = 1;
	int32_t rv = 0;
	struct st t;

	st_unix(&t, st_conf3);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	len = sizeof(sa_family_t);
	cr_assert_eq(stk_bind(t.so, (struct sockaddr *)&ss, &len), -1);
	cr_assert_eq(stk_listen(t.so, &backlog), -1);
	cr_assert_eq(stk_connect(t.so, (struct sockaddr *)&ss, &len), -1);
	cr_assert_eq(stk_shutdown(t.so, &how), -1);
	len = sizeof(ss);
	cr_assert_eq(stk_getsockname(t.so, (struct sockaddr *)&ss, &len), -1);
	cr_assert_eq(stk_getpeername(t.so, (struct sockaddr *)&ss, &len), -1);
	len = sizeof(val);
	cr_assert_eq(stk_setsockopt(t.so, SOL_SOCKET, SO_KEEPALIVE, &val, &len),
	    -1);
	cr_assert_eq(stk_getsockopt(t.so, SOL_SOCKET, SO_TYPE, &val, &len), -1);
	cr_assert_eq(stk_ioctl(t.so, FIONREAD, 0, &rv), -1);
	cr_assert_str_eq(jr_seq("bind"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq("listen"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq("connect"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq("shutdown"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq("getsockname"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq("getpeername"), "f3,f2,f1");
	cr_assert_str_eq(jr_seq_arg("setsockopt", SO_KEEPALIVE), "f3,f2,f1");
	cr_assert_str_eq(jr_seq_arg("getsockopt", SO_TYPE), "f3,f2,f1");
	cr_assert_str_eq(jr_seq_arg("ioctl", FIONREAD), "f3,f2,f1");
	st_close(&t);
}

Test(stack, data_out_top_down)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "hello", 5, 0), 5);
	cr_assert_str_eq(jr_seq_arg("data_out", 5), "f3,f2,f1");
	st_peer_expect(&t, "hello");
	st_close(&t);
}

Test(stack, data_in_and_data_in_proc_bottom_up)
{
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "hello");
	st_expect(&t, "hello");
	cr_assert_str_eq(jr_seq_arg("data_in", 5), "f1,f2,f3");
	cr_assert_str_eq(jr_seq("data_in_proc"), "f1,f2,f3");
	st_close(&t);
}

/* data_in_proc is told the size of the message it gets (*sizep). */
Test(stack, data_in_proc_gets_the_message_size)
{
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "hello");
	st_expect(&t, "hello");
	cr_assert_str_eq(jr_seq_arg("data_in_proc", 5), "f1,f2,f3",
	    "data_in_proc *sizep was %lu",
	    jr_n > 0 ? (unsigned long)jr_log[jr_n - 1].je_arg : 0UL);
	st_close(&t);
}

Test(stack, notify_bottom_up)
{
	struct st t;

	st_unix(&t, st_conf3);
	stk_notify(t.so, SOF_EV_CONNECTED, 0);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_CONNECTED), "f1,f2,f3");
	st_close(&t);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_CLOSING), "f1,f2,f3");
}

Test(stack, prog_filters_go_above_automatic_ones)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_eq(stk_fil_attach(t.so, "p3"), 0);
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3,p1,p3");
	cr_assert_str_eq(st_list(t.so), "p3/4/P,p1/3/P,f3/2/A,f2/1/A,f1/0/A");
	cr_assert_eq(st_send(&t, "x", 1, 0), 1);
	cr_assert_str_eq(jr_seq("data_out"), "p3,p1,f3,f2,f1");
	st_peer_expect(&t, "x");
	st_close(&t);
}

Test(stack, attach_first_and_detach_last)
{
	static const char *const names[] = {"f1", "f2", "f3", "p1"};
	struct st t;
	size_t i;
	int how = SHUT_RD;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_eq(st_send(&t, "out", 3, 0), 3);
	st_peer_write(&t, "in");
	st_expect(&t, "in");
	cr_assert_eq(stk_shutdown(t.so, &how), -1);
	stk_notify(t.so, SOF_EV_CANTRECVMORE, 0);

	/* The last descriptor goes: CLOSING, but a caller still holds it. */
	sock_hold(t.so);
	sock_fd_close(t.so, t.fd);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_CLOSING), "f1,f2,f3,p1");
	cr_assert_str_eq(jr_seq("detach"), "");
	/* The last reference: detach, top first (Table 2). */
	sock_rele(t.so);
	t.so = NULL;
	cr_assert_str_eq(jr_seq("detach"), "p1,f3,f2,f1");
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *ops = jr_ops(names[i]);
		size_t n = strlen(ops);

		cr_assert(strncmp(ops, "attach_active,", 14) == 0, "%s: %s",
		    names[i], ops);
		cr_assert(n > 7 && strcmp(ops + n - 7, ",detach") == 0,
		    "%s: %s", names[i], ops);
		cr_assert_null(strstr(ops + 14, "attach_active"), "%s: %s",
		    names[i], ops);
		cr_assert_eq(strstr(ops, "detach"), ops + n - 6, "%s: %s",
		    names[i], ops);
	}
	st_close(&t);
}

Test(stack, accepted_socket_inherits_bottom_up_then_accept_top_down)
{
	struct sockaddr_in addr;
	struct sock *lso = NULL, *so = NULL;
	struct cfg_snap *cs = st_load(st_conf3);
	int lfd = st_listener(0, &addr), cfd, afd;

	cr_assert_eq(sock_create(lfd, AF_INET, SOCK_STREAM, IPPROTO_TCP, cs,
	                 &lso),
	    0);
	cr_assert_not_null(lso);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	st_connect(cfd, &addr);
	afd = accept(lfd, NULL, NULL);
	cr_assert_geq(afd, 0);
	jr_reset();
	cr_assert_eq(sock_accepted(lso, afd, &so), 0);
	cr_assert_not_null(so);
	cr_assert_str_eq(jr_seq("attach_passive"), "f1,f2,f3");
	cr_assert_str_eq(jr_seq("accept"), "f3,f2,f1");
	cr_assert_str_eq(st_list(so), "f3/2/A,f2/1/A,f1/0/A");
	sock_fd_close(so, afd);
	sock_fd_close(lso, lfd);
	close(afd);
	close(cfd);
	close(lfd);
	cfg_rele(cs);
}

/* ---------------------------------------------------------------------
 * Verdicts (the design's Table 6).
 * ------------------------------------------------------------------- */

Test(stack, control_return_succeeds_and_stops_the_walk)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(sa_family_t);
	struct st t;

	jb("f2")->ctl = SOF_RVAL_RETURN;
	st_unix(&t, st_conf3);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	cr_assert_eq(stk_bind(t.so, (struct sockaddr *)&ss, &len), 0);
	cr_assert_str_eq(jr_seq("bind"), "f3,f2");
	st_close(&t);
}

Test(stack, control_errno_fails_and_stops_the_walk)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(sa_family_t);
	struct st_filter *sf = st_filter_get("f2");
	unsigned long denied = atomic_load(&sf->sf_denied);
	struct st t;

	jb("f2")->ctl = SOF_RVAL_EACCES;
	st_unix(&t, st_conf3);
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	cr_assert_eq(stk_connect(t.so, (struct sockaddr *)&ss, &len), EACCES);
	cr_assert_str_eq(jr_seq("connect"), "f3,f2");
	cr_assert_eq(atomic_load(&sf->sf_denied), denied + 1);
	st_close(&t);
}

Test(stack, control_detach_verdict_is_einval)
{
	int backlog = 1;
	struct st t;

	jb("f2")->ctl = SOF_RVAL_DETACH;
	st_unix(&t, st_conf3);
	cr_assert_eq(stk_listen(t.so, &backlog), EINVAL);
	cr_assert_str_eq(jr_seq("listen"), "f3,f2");
	st_close(&t);
}

Test(stack, attach_detach_verdict_leaves_filter_off)
{
	struct st t;

	jb("f2")->attach = SOF_RVAL_DETACH;
	st_unix(&t, st_conf3);
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3");
	cr_assert_str_eq(st_list(t.so), "f3/1/A,f1/0/A");
	cr_assert_eq(st_send(&t, "ok", 2, 0), 2);
	st_peer_expect(&t, "ok");
	cr_assert_str_eq(jr_seq("data_out"), "f3,f1");
	st_close(&t);
	cr_assert_str_eq(jr_seq("detach"), "f3,f1");
	cr_assert_str_eq(jr_ops("f2"), "attach_active");
}

Test(stack, attach_error_fails_socket_and_undoes_the_stack)
{
	struct cfg_snap *cs = st_load(st_conf3);
	struct sock *so = (struct sock *)&so;
	int sv[2];

	jb("f3")->attach = SOF_RVAL_EACCES;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cr_assert_eq(sock_create(sv[0], AF_UNIX, SOCK_STREAM, 0, cs, &so),
	    EACCES);
	cr_assert_null(so);
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3");
	cr_assert_str_eq(jr_seq("detach"), "f2,f1");
	cr_assert_str_eq(jr_ops("f3"), "attach_active");
	close(sv[0]);
	close(sv[1]);
	cfg_rele(cs);
}

Test(stack, data_out_null_with_return_swallows)
{
	char buf[8];
	struct st t;

	jb("f2")->out = JO_DROP;
	jb("f2")->out_rval = SOF_RVAL_RETURN;
	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "secret", 6, 0), 6);
	cr_assert_str_eq(jr_seq("data_out"), "f3,f2");
	cr_assert_eq(st_peer_read(&t, buf, sizeof(buf), 100), 0);
	st_close(&t);
}

Test(stack, data_out_null_with_errno_fails)
{
	char buf[8];
	struct st t;

	jb("f2")->out = JO_DROP;
	jb("f2")->out_rval = SOF_RVAL_EACCES;
	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "secret", 6, 0), -EACCES);
	cr_assert_str_eq(jr_seq("data_out"), "f3,f2");
	cr_assert_eq(st_peer_read(&t, buf, sizeof(buf), 100), 0);
	st_close(&t);
}

Test(stack, data_out_null_with_continue_is_einval)
{
	struct st t;

	jb("f3")->out = JO_DROP;
	jb("f3")->out_rval = SOF_RVAL_CONTINUE;
	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "x", 1, 0), -EINVAL);
	cr_assert_str_eq(jr_seq("data_out"), "f3");
	st_close(&t);
}

Test(stack, data_in_consumed_never_reaches_the_reader)
{
	char buf[16];
	struct st t;

	jb("f1")->in = JI_CONSUME;
	st_unix(&t, st_conf3);
	st_peer_write(&t, "secret");
	usleep(20000);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	cr_assert_eq(memchr(buf, 's', sizeof(buf)), NULL,
	    "consumed bytes left in the caller's buffer");
	cr_assert_str_eq(jr_seq("data_in"), "f1");
	cr_assert_str_eq(jr_seq("data_in_proc"), "");
	cr_assert_eq(sock_rq_bytes(t.so), 0);
	jb("f1")->in = JI_PASS;
	st_peer_write(&t, "ok");
	st_expect(&t, "ok");
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * SOL_FILTER.
 * ------------------------------------------------------------------- */

Test(stack, fil_attach_twice_is_eexist)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), EEXIST);
	cr_assert_eq(stk_fil_attach(t.so, "f2"), EEXIST);
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3,p1");
	st_close(&t);
}

Test(stack, fil_attach_unknown_or_unconfigured_is_enxio)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "nosuch"), ENXIO);
	cr_assert_eq(stk_fil_attach(t.so, "p2"), ENXIO); /* TCP only */
	cr_assert_eq(stk_fil_attach(t.so, "f4"), ENXIO); /* automatic */
	cr_assert_str_eq(jr_seq("attach_active"), "f1,f2,f3");
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/A,f1/0/A");
	st_close(&t);
}

Test(stack, fil_attach_declined_is_einval)
{
	struct st t;

	jb("p1")->attach = SOF_RVAL_DETACH;
	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), EINVAL);
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/A,f1/0/A");
	st_close(&t);
	cr_assert_str_eq(jr_ops("p1"), "attach_active");
}

Test(stack, fil_attach_error_is_that_errno)
{
	struct st t;

	jb("p1")->attach = SOF_RVAL_EACCES;
	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), EACCES);
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/A,f1/0/A");
	st_close(&t);
	cr_assert_str_eq(jr_ops("p1"), "attach_active");
}

Test(stack, fil_ops_are_einval_after_another_operation)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	sock_op_issued(t.so);
	cr_assert_eq(stk_fil_attach(t.so, "p3"), EINVAL);
	cr_assert_eq(stk_fil_detach(t.so, "p1"), EINVAL);
	cr_assert_str_eq(st_list(t.so), "p1/3/P,f3/2/A,f2/1/A,f1/0/A");
	st_close(&t);
}

Test(stack, fil_window_closed_by_the_first_send)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "x", 1, 0), 1);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), EINVAL);
	st_close(&t);
}

Test(stack, fil_detach_of_automatic_filter_is_einval)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_detach(t.so, "f2"), EINVAL);
	cr_assert_eq(stk_fil_detach(t.so, "p1"), ENXIO); /* not attached */
	cr_assert_eq(stk_fil_detach(t.so, "nosuch"), ENXIO);
	cr_assert_str_eq(jr_seq("detach"), "");
	st_close(&t);
}

Test(stack, fil_detach_of_prog_filter_calls_detach)
{
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_eq(stk_fil_detach(t.so, "p1"), 0);
	/* Attaching (re)computes the block properties: mblk_prop comes. */
	cr_assert_str_eq(jr_ops("p1"), "attach_active,mblk_prop,detach");
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/A,f1/0/A");
	cr_assert_eq(st_send(&t, "x", 1, 0), 1);
	cr_assert_str_eq(jr_seq("data_out"), "f3,f2,f1");
	st_close(&t);
}

Test(stack, fil_list_buffer_too_small)
{
	struct fil_info fi[2];
	socklen_t len;
	struct st t;

	st_unix(&t, st_conf3);
	len = 0;
	cr_assert_eq(stk_fil_list(t.so, fi, &len), EINVAL);
	len = sizeof(fi[0]) - 1;
	cr_assert_eq(stk_fil_list(t.so, fi, &len), EINVAL);
	/* Room for one of three: the top one, silently truncated. */
	len = sizeof(fi[0]);
	cr_assert_eq(stk_fil_list(t.so, fi, &len), 0);
	cr_assert_eq(len, sizeof(fi[0]));
	cr_assert_str_eq(fi[0].fi_name, "f3");
	cr_assert_eq(fi[0].fi_pos, 2);
	cr_assert_eq(fi[0].fi_flags, FILF_AUTO);
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * Bypass.
 * ------------------------------------------------------------------- */

Test(stack, bypassed_filter_gets_only_detach)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(sa_family_t);
	struct st t;

	st_unix(&t, st_conf3);
	jr_reset();
	sof_bypass(jb("f2")->h);
	cr_assert_str_eq(st_list(t.so), "f3/2/A,f2/1/AB,f1/0/A");
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	cr_assert_eq(stk_bind(t.so, (struct sockaddr *)&ss, &len), -1);
	cr_assert_eq(st_send(&t, "out", 3, 0), 3);
	st_peer_expect(&t, "out");
	st_peer_write(&t, "in");
	st_expect(&t, "in");
	stk_notify(t.so, SOF_EV_CONNECTED, 0);
	cr_assert_str_eq(jr_seq("bind"), "f3,f1");
	cr_assert_str_eq(jr_seq("data_out"), "f3,f1");
	cr_assert_str_eq(jr_seq("data_in"), "f1,f3");
	cr_assert_str_eq(jr_seq("data_in_proc"), "f1,f3");
	cr_assert_str_eq(jr_seq("notify"), "f1,f3");
	cr_assert_str_eq(jr_ops("f2"), "");
	st_close(&t);
	cr_assert_str_eq(jr_ops("f2"), "detach");
}

Test(stack, bypass_from_a_callback_takes_effect_next_call)
{
	struct st t;

	jb("f2")->out = JO_BYPASS;
	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, "a", 1, 0), 1);
	cr_assert_eq(st_send(&t, "b", 1, 0), 1);
	st_peer_expect(&t, "ab");
	cr_assert_str_eq(jr_seq("data_out"), "f3,f2,f1,f3,f1");
	cr_assert_eq(atomic_load(&t.so->so_nactive), 2);
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * Injection and flow control.
 * ------------------------------------------------------------------- */

Test(stack, inject_out_from_data_in_seen_only_below)
{
	struct st t;

	jb("f2")->in = JI_INJECT;
	st_unix(&t, st_conf3);
	st_peer_write(&t, "ping");
	st_expect(&t, "ping");
	cr_assert_eq(jb("f2")->inject_err, 0);
	cr_assert_str_eq(jr_seq("data_out"), "f1");
	st_peer_expect(&t, "PONG");
	st_close(&t);
}

Test(stack, inject_out_with_a_handle_seen_only_below)
{
	boolean_t fc = B_TRUE;
	struct st t;

	st_unix(&t, st_conf3);
	jr_reset();
	cr_assert_eq(sof_inject_data_out(jb("f2")->h, j_mblk("inj", 3), NULL,
	                 &fc),
	    0);
	cr_assert_eq(fc, B_FALSE);
	cr_assert_str_eq(jr_seq("data_out"), "f1");
	st_peer_expect(&t, "inj");
	st_close(&t);
}

Test(stack, inject_in_seen_only_above)
{
	boolean_t fc = B_TRUE;
	struct st t;

	st_unix(&t, st_conf3);
	jr_reset();
	cr_assert_eq(sof_inject_data_in(jb("f2")->h, j_mblk("inj", 3), 3, 0,
	                 &fc),
	    0);
	cr_assert_eq(fc, B_FALSE);
	cr_assert_str_eq(jr_seq("data_in"), "f3");
	cr_assert_eq(sock_rq_bytes(t.so), 3);
	cr_assert(sock_rq_pending(t.so));
	st_expect(&t, "inj");
	/* Injected at the top: no filter sees it in data_in. */
	jr_reset();
	cr_assert_eq(sof_inject_data_in(jb("f3")->h, j_mblk("top", 3), 3, 0,
	                 NULL),
	    0);
	cr_assert_str_eq(jr_seq("data_in"), "");
	st_expect(&t, "top");
	/* flags must be 0. */
	cr_assert_eq(sof_inject_data_in(jb("f3")->h, j_mblk("x", 1), 1, MSG_OOB,
	                 NULL),
	    EINVAL);
	st_close(&t);
}

Test(stack, inject_in_reports_flow_control_when_queue_is_full)
{
	static unsigned char big[64 * 1024];
	boolean_t fc = B_FALSE;
	int i;
	struct st t;

	st_unix(&t, st_conf3);
	for (i = 0; i < 16 && !fc; i++)
		cr_assert_eq(sof_inject_data_in(jb("f3")->h,
		                 j_mblk(big, sizeof(big)), sizeof(big), 0, &fc),
		    0);
	cr_assert_eq(fc, B_TRUE);
	cr_assert_gt(i, 1);
	st_close(&t);
}

Test(stack, snd_flowctrl_lifts_only_when_every_filter_cleared)
{
	struct st t;

	st_unix(&t, st_conf3);
	sof_snd_flowctrl(jb("f1")->h, B_TRUE);
	sof_snd_flowctrl(jb("f3")->h, B_TRUE);
	cr_assert(atomic_load(&t.so->so_flags) & SO_F_SNDFC);
	cr_assert_eq(st_send(&t, "x", 1, MSG_DONTWAIT), -EAGAIN);
	sof_snd_flowctrl(jb("f1")->h, B_FALSE);
	cr_assert(atomic_load(&t.so->so_flags) & SO_F_SNDFC);
	cr_assert_eq(st_send(&t, "x", 1, MSG_DONTWAIT), -EAGAIN);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_OUT_OK), "");
	sof_snd_flowctrl(jb("f3")->h, B_FALSE);
	cr_assert_not(atomic_load(&t.so->so_flags) & SO_F_SNDFC);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_OUT_OK),
	    "f1,f2,f3");
	/* Clearing again lifts nothing: no second event. */
	sof_snd_flowctrl(jb("f3")->h, B_FALSE);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_OUT_OK),
	    "f1,f2,f3");
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_IN_OK), "");
	cr_assert_eq(st_send(&t, "y", 1, MSG_DONTWAIT), 1);
	st_peer_expect(&t, "y");
	st_close(&t);
}

Test(stack, rcv_flowctrl_lifts_only_when_every_filter_cleared)
{
	char buf[8];
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "data");
	sof_rcv_flowctrl(jb("f2")->h, B_TRUE);
	sof_rcv_flowctrl(jb("f3")->h, B_TRUE);
	cr_assert(atomic_load(&t.so->so_flags) & SO_F_RCVFC);
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	cr_assert_str_eq(jr_seq("data_in"), ""); /* left in the kernel */
	sof_rcv_flowctrl(jb("f3")->h, B_FALSE);
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_IN_OK), "");
	sof_rcv_flowctrl(jb("f2")->h, B_FALSE);
	cr_assert_not(atomic_load(&t.so->so_flags) & SO_F_RCVFC);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_IN_OK),
	    "f1,f2,f3");
	sof_rcv_flowctrl(jb("f2")->h, B_FALSE);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_IN_OK),
	    "f1,f2,f3");
	st_expect(&t, "data");
	st_close(&t);
}

/* A filter may assert flow control from attach_active and clear it in
 * detach, whether it was attached automatically or with FIL_ATTACH. */
Test(stack, prog_attach_may_assert_flow_control)
{
	struct st t;

	alarm(10); /* a deadlock here ends as a crash, not a hang */
	jb("p1")->fc_attach = true;
	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert(atomic_load(&t.so->so_flags) & SO_F_RCVFC);
	st_close(&t);
}

Test(stack, prog_detach_may_clear_flow_control)
{
	struct st t;

	alarm(10); /* a deadlock here ends as a crash, not a hang */
	jb("p1")->fc_detach = true;
	st_unix(&t, st_conf3);
	cr_assert_eq(stk_fil_attach(t.so, "p1"), 0);
	cr_assert_eq(stk_fil_detach(t.so, "p1"), 0);
	cr_assert_str_eq(jr_ops("p1"), "attach_active,mblk_prop,detach");
	st_close(&t);
}

Test(stack, closing_notify_may_inject_out)
{
	struct st t;

	jb("f2")->bye = true;
	st_unix(&t, st_conf3);
	sock_fd_close(t.so, t.fd);
	t.so = NULL;
	cr_assert_eq(jb("f2")->bye_err, 0);
	cr_assert_str_eq(jr_seq("data_out"), "f1");
	st_peer_expect(&t, "BYE");
	st_close(&t);
}

/* sof_inject_data_in said "flow controlled": once the application read
 * the queue, SOF_EV_INJECT_DATA_IN_OK tells the filter to resume. */
Test(stack, inject_in_flow_control_ends_with_in_ok)
{
	static unsigned char big[64 * 1024], buf[64 * 1024];
	boolean_t fc = B_FALSE;
	int i;
	struct st t;

	st_unix(&t, st_conf3);
	for (i = 0; i < 16 && !fc; i++)
		cr_assert_eq(sof_inject_data_in(jb("f3")->h,
		                 j_mblk(big, sizeof(big)), sizeof(big), 0, &fc),
		    0);
	cr_assert_eq(fc, B_TRUE);
	while (sock_rq_bytes(t.so) > 0)
		cr_assert_gt(st_recv(&t, buf, sizeof(buf), MSG_DONTWAIT), 0);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_IN_OK),
	    "f1,f2,f3");
	st_close(&t);
}

/* sof_inject_data_out said "flow controlled" (the kernel was full): once
 * the held bytes went out, SOF_EV_INJECT_DATA_OUT_OK tells it to resume. */
Test(stack, inject_out_flow_control_ends_with_out_ok)
{
	static unsigned char fill[16384], inj[8192];
	boolean_t fc = B_FALSE;
	size_t got = 0, total = 0;
	int rounds;
	struct st t;

	st_tcp(&t, st_conf1, SOCK_STREAM | SOCK_NONBLOCK, 4096, 4096);
	for (rounds = 0; rounds < 10000; rounds++) {
		ssize_t n = send(t.fd, fill, sizeof(fill), MSG_DONTWAIT);

		if (n < 0)
			break;
		total += (size_t)n;
	}
	cr_assert_eq(errno, EAGAIN);
	cr_assert_eq(sof_inject_data_out(jb("f1")->h, j_mblk(inj, sizeof(inj)),
	                 NULL, &fc),
	    0);
	cr_assert_eq(fc, B_TRUE);
	cr_assert_not_null(t.so->so_tx_rem);
	total += sizeof(inj);
	for (rounds = 0; got < total && rounds < 2000; rounds++) {
		unsigned char buf[65536];

		(void)sock_flush(t.so, t.fd);
		got += st_peer_read(&t, buf, sizeof(buf), 10);
	}
	cr_assert_eq(got, total);
	/* The service thread may be the one that flushed the last bytes:
	 * let it finish (bounded) before looking at the state. */
	for (rounds = 0;
	     rounds < 2000 &&
	     (SO_LOAD(t.so->so_tx_rem) != NULL ||
	         *jr_seq_arg("notify", SOF_EV_INJECT_DATA_OUT_OK) == '\0');
	     rounds++)
		usleep(1000);
	cr_assert_null(t.so->so_tx_rem);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_INJECT_DATA_OUT_OK), "f1");
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * Parameters, cookies, names.
 * ------------------------------------------------------------------- */

Test(stack, get_param_reads_the_params_group)
{
	struct st t;
	sof_handle_t h;

	st_unix(&t, st_conf3);
	h = jb("f1")->h;
	cr_assert_str_eq(sof_get_param(h, "key"), "abc");
	cr_assert_str_eq(sof_get_param(h, "n"), "42");
	cr_assert_str_eq(sof_get_param(h, "on"), "true");
	cr_assert_null(sof_get_param(h, "missing"));
	cr_assert_null(sof_get_param(h, NULL));
	cr_assert_null(sof_get_param(jb("f2")->h, "key"));
	cr_assert_null(sof_get_param(NULL, "key"));
	cr_assert_str_eq(sof_get_name(h), "f1");
	cr_assert_eq(sof_get_fd(h), t.fd);
	st_close(&t);
}

Test(stack, cas_cookie_replaces_only_the_expected_value)
{
	static int a, b, c;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(sa_family_t);
	sof_handle_t h;
	struct st t;

	jb("f2")->cookie = &a;
	st_unix(&t, st_conf3);
	h = jb("f2")->h;
	cr_assert_eq(sof_get_cookie(h), &a);
	/* Wrong expectation: nothing changes, the current value comes back. */
	cr_assert_eq(sof_cas_cookie(h, &b, &c), &a);
	cr_assert_eq(sof_get_cookie(h), &a);
	/* Right one: replaced, the old value comes back. */
	cr_assert_eq(sof_cas_cookie(h, &a, &c), &a);
	cr_assert_eq(sof_get_cookie(h), &c);
	cr_assert_null(sof_cas_cookie(NULL, &c, &a));
	cr_assert_null(sof_get_cookie(NULL));
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	cr_assert_eq(stk_bind(t.so, (struct sockaddr *)&ss, &len), -1);
	cr_assert_eq(jr_cookie("f2", "bind"), &c);
	st_close(&t);
	cr_assert_eq(jr_cookie("f2", "detach"), &c);
}

/* ---------------------------------------------------------------------
 * Block properties and zero copy.
 * ------------------------------------------------------------------- */

Test(stack, mblk_prop_head_room_lets_a_filter_prepend_in_place)
{
	struct jb *f1, *f2;
	struct st t;

	jb("f2")->wroff = 16;
	jb("f2")->out = JO_HDR;
	st_unix(&t, st_conf3);
	cr_assert_str_eq(jr_seq("mblk_prop"), "f1,f2,f3");
	cr_assert_eq(t.so->so_wroff, 16);
	cr_assert_eq(st_send(&t, "payload", 7, 0), 7);
	f1 = jb("f1");
	f2 = jb("f2");
	cr_assert_not(f2->hdr_failed);
	cr_assert_geq(jb("f3")->seen_head, 16);
	cr_assert_geq(f2->seen_head, 16);
	cr_assert_eq(f2->seen_ref, 1);
	/* The block below is the same data block, 4 bytes earlier. */
	cr_assert_eq(f1->seen_db, f2->seen_db);
	cr_assert_eq(f1->seen_rptr, f2->seen_rptr - 4);
	cr_assert_eq(f1->seen_len, 11);
	st_peer_expect(&t, "HDR:payload");
	st_close(&t);
}

Test(stack, zero_copy_blocks_point_into_the_callers_buffer)
{
	char b0[] = "zero copy ", b1[] = "payload";
	struct iovec iov[2] = {{b0, 10}, {b1, 7}};
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(st_sendv(&t, iov, 1, 0), 10);
	cr_assert_eq(jb("f3")->seen_rptr, (unsigned char *)b0);
	cr_assert_eq(jb("f1")->seen_rptr, (unsigned char *)b0);
	cr_assert_gt(jb("f3")->seen_ref, 1); /* shared: copy before writing */
	cr_assert_eq(jb("f3")->seen_len, 10);
	cr_assert_eq(st_sendv(&t, iov, 2, 0), 17);
	cr_assert_eq(jb("f1")->seen_rptr, (unsigned char *)b0);
	st_peer_expect(&t, "zero copy zero copy payload");
	st_close(&t);
}

Test(stack, zero_copy_kept_block_survives_buffer_reuse)
{
	char buf[] = "original bytes";
	struct st t;

	jb("f2")->out = JO_KEEP;
	st_unix(&t, st_conf3);
	cr_assert_eq(st_send(&t, buf, 14, 0), 14);
	cr_assert_eq(jb("f2")->seen_rptr, (unsigned char *)buf);
	memset(buf, 'X', 14);
	cr_assert_not_null(jb_kept);
	cr_assert_eq(MBLKL(jb_kept), 14);
	cr_assert_neq(jb_kept->b_rptr, (unsigned char *)buf);
	cr_assert_eq(memcmp(jb_kept->b_rptr, "original bytes", 14), 0);
	freeb(jb_kept);
	jb_kept = NULL;
	st_peer_expect(&t, "original bytes");
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * Receiving in place: the kernel writes the caller's buffer, which the
 * filters get on loan.
 * ------------------------------------------------------------------- */

Test(stack, receive_lends_the_callers_buffer)
{
	char buf[32];
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "in place");
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 8);
	cr_assert_eq(memcmp(buf, "in place", 8), 0);
	cr_assert_eq(jb("f1")->in_rptr, (unsigned char *)buf);
	cr_assert_eq(jb("f3")->in_rptr, (unsigned char *)buf);
	cr_assert_gt(jb("f1")->in_ref, 1); /* shared: copy before writing */
	cr_assert_str_eq(jr_seq_arg("data_in", 8), "f1,f2,f3");
	cr_assert_str_eq(jr_seq_arg("data_in_proc", 8), "f1,f2,f3");
	/* The same through a msghdr. */
	jr_reset();
	st_peer_write(&t, "again");
	st_wait_in(&t);
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "again", 5), 0);
	cr_assert_eq(jb("f2")->in_rptr, (unsigned char *)buf);
	cr_assert_str_eq(jr_seq_arg("data_in_proc", 5), "f1,f2,f3");
	cr_assert_eq(sock_rq_bytes(t.so), 0);
	st_close(&t);
}

Test(stack, receive_kept_block_survives_buffer_reuse)
{
	char buf[32];
	struct st t;

	jb("f2")->in = JI_KEEP;
	st_unix(&t, st_conf3);
	st_peer_write(&t, "kept bytes");
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 10);
	cr_assert_eq(memcmp(buf, "kept bytes", 10), 0);
	memset(buf, 'X', sizeof(buf));
	cr_assert_not_null(jb_kept);
	cr_assert_eq(MBLKL(jb_kept), 10);
	cr_assert(jb_kept->b_rptr < (unsigned char *)buf ||
	              jb_kept->b_rptr >= (unsigned char *)buf + sizeof(buf),
	    "the kept block moved off the caller's buffer");
	cr_assert_eq(memcmp(jb_kept->b_rptr, "kept bytes", 10), 0);
	freeb(jb_kept);
	jb_kept = NULL;
	st_close(&t);
}

Test(stack, receive_transformed_lands_in_the_callers_buffer)
{
	char wire[8], buf[32];
	size_t i;
	struct st t;

	jb("f1")->in = JI_XOR;
	st_unix(&t, st_conf3);
	for (i = 0; i < 6; i++)
		wire[i] = (char)("secret"[i] ^ JB_KEY);
	cr_assert_eq(send(t.peer, wire, 6, 0), 6);
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 6);
	cr_assert_eq(memcmp(buf, "secret", 6), 0);
	/* f2 above got the transformed copy, not the caller's buffer. */
	cr_assert_neq(jb("f2")->in_rptr, (unsigned char *)buf);
	cr_assert_str_eq(jr_seq_arg("data_in_proc", 6), "f1,f2,f3");
	cr_assert_eq(sock_rq_bytes(t.so), 0);
	st_close(&t);
}

Test(stack, receive_trimmed_window_is_copied_back)
{
	char buf[32];
	struct st t;

	jb("f2")->in = JI_TRIM;
	st_unix(&t, st_conf3);
	st_peer_write(&t, "xhello");
	st_wait_in(&t);
	memset(buf, 'Z', sizeof(buf));
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	/* The raw byte left over is not left behind; the rest untouched. */
	cr_assert_eq(buf[5], '\0');
	cr_assert_eq(buf[6], 'Z');
	cr_assert_str_eq(jr_seq_arg("data_in_proc", 5), "f1,f2,f3");
	st_close(&t);
}

/* A filter that makes more than the buffer holds: the rest is queued
 * ahead of anything that arrives later, and data_in_proc ran once. */
Test(stack, receive_growth_beyond_the_buffer_is_kept_for_the_next_call)
{
	char buf[32];
	struct st t;

	jb("f3")->in = JI_GROW;
	st_unix(&t, st_conf3);
	st_peer_write(&t, "abcd");
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, 4, 0), 4);
	cr_assert_eq(memcmp(buf, "abcd", 4), 0);
	cr_assert_eq(sock_rq_bytes(t.so), 4);
	cr_assert(sock_rq_pending(t.so));
	st_peer_write(&t, "xy");
	usleep(20000);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 4);
	cr_assert_eq(memcmp(buf, "++++", 4), 0);
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), 0), 6);
	cr_assert_eq(memcmp(buf, "xy++++", 6), 0);
	cr_assert_str_eq(jr_seq("data_in_proc"), "f1,f2,f3,f1,f2,f3");
	cr_assert_eq(sock_rq_bytes(t.so), 0);
	st_close(&t);
}

/* MSG_PEEK reads into the queue; data_in runs once for peek and read. */
Test(stack, peek_then_read_runs_data_in_once)
{
	char buf[32];
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "peeked");
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), MSG_PEEK), 6);
	cr_assert_eq(memcmp(buf, "peeked", 6), 0);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(st_recvb(&t, buf, 3, 0), 3);
	cr_assert_eq(memcmp(buf, "pee", 3), 0);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 3);
	cr_assert_eq(memcmp(buf, "ked", 3), 0);
	cr_assert_str_eq(jr_seq("data_in"), "f1,f2,f3");
	cr_assert_str_eq(jr_seq("data_in_proc"), "f1,f2,f3");
	st_close(&t);
}

static void *
st_late_writer(void *arg)
{
	struct st *t = arg;

	usleep(50000);
	st_peer_write(t, "def");
	return NULL;
}

/* MSG_WAITALL: in-place reads one after the other into the same buffer. */
Test(stack, waitall_reads_in_place_until_full)
{
	char buf[8];
	pthread_t th;
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "abc");
	cr_assert_eq(pthread_create(&th, NULL, st_late_writer, &t), 0);
	cr_assert_eq(st_recv(&t, buf, 6, MSG_WAITALL), 6);
	pthread_join(th, NULL);
	cr_assert_eq(memcmp(buf, "abcdef", 6), 0);
	cr_assert_str_eq(jr_seq("data_in"), "f1,f2,f3,f1,f2,f3");
	st_close(&t);
}

/* Several iovecs: the copy path, one message across them. */
Test(stack, readv_across_iovecs)
{
	char a[5], b[16];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct msghdr m;
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "hello world");
	st_wait_in(&t);
	memset(&m, 0, sizeof(m));
	m.msg_iov = iov;
	m.msg_iovlen = 2;
	cr_assert_eq(sock_recvmsg(t.so, t.fd, &m, 0), 11);
	cr_assert_eq(memcmp(a, "hello", 5), 0);
	cr_assert_eq(memcmp(b, " world", 6), 0);
	cr_assert_str_eq(jr_seq("data_in_proc"), "f1,f2,f3");
	st_close(&t);
}

Test(stack, eof_after_data_then_again_eof)
{
	char buf[16];
	struct st t;

	st_unix(&t, st_conf3);
	st_peer_write(&t, "last");
	cr_assert_eq(shutdown(t.peer, SHUT_WR), 0);
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 4);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), 0), 0);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), MSG_DONTWAIT), 0);
	cr_assert_eq(st_recv(&t, buf, sizeof(buf), 0), 0);
	cr_assert_str_eq(jr_seq_arg("notify", SOF_EV_CANTRECVMORE), "f1,f2,f3");
	st_close(&t);
}

Test(stack, recv_errors_come_back_as_errno)
{
	char buf[16];
	struct st t;

	st_unix(&t, st_conf3);
	cr_assert_eq(st_recvb(&t, buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	cr_assert_eq(st_recvb(&t, NULL, 16, MSG_DONTWAIT), -EAGAIN);
	st_peer_write(&t, "z");
	st_wait_in(&t);
	cr_assert_eq(st_recvb(&t, NULL, 16, 0), -EFAULT);
	st_close(&t);
}

Test(stack, send_buffer_entry_lends_and_keeps)
{
	char buf[] = "buffer bytes";
	struct st t;

	jb("f2")->out = JO_KEEP;
	st_unix(&t, st_conf3);
	cr_assert_eq(sock_send(t.so, t.fd, buf, 12, 0), 12);
	cr_assert_eq(jb("f3")->seen_rptr, (unsigned char *)buf);
	cr_assert_gt(jb("f3")->seen_ref, 1);
	memset(buf, 'X', 12);
	cr_assert_not_null(jb_kept);
	cr_assert_eq(memcmp(jb_kept->b_rptr, "buffer bytes", 12), 0);
	freeb(jb_kept);
	jb_kept = NULL;
	st_peer_expect(&t, "buffer bytes");
	jb("f1")->out = JO_XOR;
	cr_assert_eq(sock_send(t.so, t.fd, "\x3b\x38", 2, 0), 2);
	st_peer_expect(&t, "ab");
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * Threads on one socket: the receive and send locks.
 * ------------------------------------------------------------------- */

#define ST_NTHREADS 4
#define ST_NMSG     2000

struct st_worker {
	struct st *t;
	size_t bytes;
	unsigned long sum;
};

static void *
st_sender(void *arg)
{
	struct st_worker *w = arg;
	unsigned char msg[16];
	int i;

	for (i = 0; i < ST_NMSG; i++) {
		ssize_t n;

		memset(msg, i & 0xff, sizeof(msg));
		n = sock_send(w->t->so, w->t->fd, msg, sizeof(msg), 0);
		if (n != (ssize_t)sizeof(msg))
			break;
		w->bytes += (size_t)n;
	}
	return NULL;
}

static void *
st_receiver(void *arg)
{
	struct st_worker *w = arg;
	unsigned char buf[64];

	for (;;) {
		ssize_t n = sock_recv(w->t->so, w->t->fd, buf, sizeof(buf), 0);
		ssize_t i;

		if (n <= 0)
			break;
		for (i = 0; i < n; i++)
			w->sum += buf[i];
		w->bytes += (size_t)n;
	}
	return NULL;
}

Test(stack, threads_share_the_send_and_receive_locks)
{
	struct st_worker w[ST_NTHREADS];
	pthread_t th[ST_NTHREADS];
	unsigned char buf[4096];
	unsigned long sum = 0, want = 0;
	size_t got = 0, total = 0;
	int i;
	struct st t;

	st_unix(&t, st_conf3);
	memset(w, 0, sizeof(w));
	for (i = 0; i < ST_NTHREADS; i++) {
		w[i].t = &t;
		cr_assert_eq(pthread_create(&th[i], NULL, st_sender, &w[i]), 0);
	}
	while (got < (size_t)ST_NTHREADS * ST_NMSG * 16) {
		ssize_t n = recv(t.peer, buf, sizeof(buf), 0);

		cr_assert_gt(n, 0);
		got += (size_t)n;
	}
	for (i = 0; i < ST_NTHREADS; i++) {
		pthread_join(th[i], NULL);
		cr_assert_eq(w[i].bytes, (size_t)ST_NMSG * 16);
	}
	/* Now several receivers on the filtered end. */
	memset(w, 0, sizeof(w));
	for (i = 0; i < ST_NTHREADS; i++) {
		w[i].t = &t;
		cr_assert_eq(pthread_create(&th[i], NULL, st_receiver, &w[i]),
		    0);
	}
	for (i = 0; i < ST_NMSG; i++) {
		memset(buf, i & 0xff, 37);
		cr_assert_eq(send(t.peer, buf, 37, 0), 37);
		want += 37UL * (unsigned long)(i & 0xff);
	}
	cr_assert_eq(shutdown(t.peer, SHUT_WR), 0);
	for (i = 0; i < ST_NTHREADS; i++) {
		pthread_join(th[i], NULL);
		total += w[i].bytes;
		sum += w[i].sum;
	}
	cr_assert_eq(total, (size_t)ST_NMSG * 37);
	cr_assert_eq(sum, want);
	st_close(&t);
}

/* ---------------------------------------------------------------------
 * A transforming filter on a full nonblocking socket.
 * ------------------------------------------------------------------- */

static unsigned char
st_pat(size_t pos)
{
	return (unsigned char)(pos * 7 + (pos >> 9));
}

/* Read what the peer has, checking the (un-XORed) pattern. */
static size_t
st_drain(struct st *t, size_t *got, int ms)
{
	unsigned char buf[65536];
	size_t n = st_peer_read(t, buf, sizeof(buf), ms), i;

	for (i = 0; i < n; i++) {
		unsigned char want = st_pat(*got + i);

		if ((unsigned char)(buf[i] ^ JB_KEY) != want)
			cr_assert_fail("byte %zu: %#x, expected %#x", *got + i,
			    buf[i] ^ JB_KEY, want);
	}
	*got += n;
	return n;
}

Test(stack, transform_on_full_nonblocking_socket_loses_nothing)
{
	unsigned char chunk[3000];
	size_t sent = 0, got = 0, target = 512 * 1024, i;
	bool held = false;
	int rounds, eagain = 0;
	struct st t;

	jb("f1")->out = JO_XOR;
	st_tcp(&t, st_conf1, SOCK_STREAM | SOCK_NONBLOCK, 4096, 4096);
	for (rounds = 0; sent < target && rounds < 20000; rounds++) {
		ssize_t n;

		for (i = 0; i < sizeof(chunk); i++)
			chunk[i] = st_pat(sent + i);
		n = st_send(&t, chunk, sizeof(chunk), 0);
		if (n == -EAGAIN) {
			/* Refused whole: the remainder is ahead of it. */
			eagain++;
			if (t.so->so_tx_rem != NULL)
				held = true;
			st_drain(&t, &got, 10);
			continue;
		}
		cr_assert_eq(n, (ssize_t)sizeof(chunk), "send: %zd", n);
		sent += (size_t)n;
		/* Let the peer lag behind: read only now and then. */
		if (rounds % 8 == 7)
			st_drain(&t, &got, 0);
	}
	cr_assert_geq(sent, target);
	cr_assert_gt(eagain, 0, "the kernel buffer never filled");
	cr_assert(held, "no remainder was ever held");
	for (rounds = 0; got < sent && rounds < 2000; rounds++) {
		int error = sock_flush(t.so, t.fd);

		cr_assert(error == 0 || error == EAGAIN, "flush: %d", error);
		st_drain(&t, &got, 10);
	}
	/* The service thread may be finishing the last flush (bounded). */
	for (rounds = 0; rounds < 2000 && SO_LOAD(t.so->so_tx_rem) != NULL;
	     rounds++)
		usleep(1000);
	cr_assert_null(t.so->so_tx_rem);
	st_drain(&t, &got, 100);
	cr_assert_eq(got, sent);
	st_close(&t);
}
