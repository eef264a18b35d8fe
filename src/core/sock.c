/*
 * sock.c: the socket object and the filtered data path.
 *
 * A struct sock is shared by every descriptor of one socket.  Its memory
 * is never returned to malloc: objects are recycled through a pool, so a
 * thread that loaded a stale pointer from the fd table can still safely
 * try to take a reference (sock_tryhold) and then re-check the table.
 *
 * References: so_refs counts one for all descriptors together plus one per
 * caller inside an operation.  The last descriptor's close sends
 * SOF_EV_CLOSING and flushes while the descriptor is still open; the last
 * reference detaches the filters, so no callback can run after detach.
 *
 * Receive: on a stream whose queue is empty (the usual case) the kernel
 * writes straight into the caller's buffer, which is lent to data_in and
 * data_in_proc (mb_borrow); if they hand it back untouched the call is
 * done without a copy (sock_fill_inplace).  Otherwise, and for datagrams
 * and MSG_PEEK, the kernel is read into fresh blocks, data_in runs
 * bottom-up, the result is queued (so_rq_*); data_in_proc runs once per
 * message when it reaches the head of the queue, then bytes are copied
 * out.  EOF and errors are reported only once the queue is empty.
 *
 * Send: the caller's buffers are lent to the filters without a copy
 * (mb_borrow), data_out runs top-down and the result goes to the kernel in
 * one gather write.  Transformed bytes the kernel did not take are kept in
 * so_tx_rem and flushed before anything else is sent.
 */
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h"
#include "libc.h"
#include "log.h"

#define SOCK_RDMIN    1024         /* smallest kernel read on a stream */
#define SOCK_RDMAX    65536        /* largest kernel read on a stream */
#define SOCK_DGMAX    65536        /* buffer for one datagram */
#define SOCK_RQ_HIWAT (256 * 1024) /* inject_in reports flow control */
#define SOCK_IOVMAX   64           /* iovecs lent without a copy */

static pthread_mutex_t sock_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock *sock_all;  /* every object ever made */
static struct sock *sock_free; /* recycled ones, linked by so_rq_head */

void (*sock_close_hook)(struct sock *so);
void (*sock_bypass_hook)(struct sock *so);

static pthread_mutex_t sock_cfg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfg_snap *sock_cfg;

struct cfg_snap *
sf_config_get(void)
{
	struct cfg_snap *cs;

	pthread_mutex_lock(&sock_cfg_lock);
	if (sock_cfg == NULL)
		sock_cfg = cfg_empty();
	cs = sock_cfg;
	if (cs != NULL)
		cfg_hold(cs);
	pthread_mutex_unlock(&sock_cfg_lock);
	return cs;
}

void
sf_config_set(struct cfg_snap *cs)
{
	struct cfg_snap *old;

	pthread_mutex_lock(&sock_cfg_lock);
	old = sock_cfg;
	sock_cfg = cs;
	pthread_mutex_unlock(&sock_cfg_lock);
	if (old != NULL)
		cfg_rele(old);
}

/*
 * so_rxlock/so_txlock: a futex lock ("Futexes Are Tricky", mutex 2) with
 * an owner and a depth for recursion.  A thread is known by the address
 * of its sock_self.  The owner is set only by the holder after taking the
 * lock and cleared before releasing it, so reading one's own identity
 * there means holding the lock.
 */
static __thread char sock_self __attribute__((tls_model("initial-exec")));

_Static_assert(sizeof(atomic_uint) == sizeof(int), "futex word");

static void
sock_xlock_init(struct sock_xlock *xl)
{
	atomic_store(&xl->xl_state, 0);
	atomic_store(&xl->xl_owner, NULL);
	xl->xl_depth = 0;
}

/* The futex calls go to the real syscall(): the library's is interposed. */

static void
sock_xlock_wait(struct sock_xlock *xl, unsigned c)
{
	/* State 2 tells the holder that someone sleeps. */
	if (c != 2)
		c = atomic_exchange_explicit(&xl->xl_state, 2,
		    memory_order_acquire);
	while (c != 0) {
		(void)LIBC(syscall)(SYS_futex, &xl->xl_state,
		    FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = atomic_exchange_explicit(&xl->xl_state, 2,
		    memory_order_acquire);
	}
}

static inline bool
sock_xlock_try(struct sock_xlock *xl, bool wait)
{
	const void *self = &sock_self;
	unsigned c = 0;

	if (atomic_load_explicit(&xl->xl_owner, memory_order_relaxed) == self) {
		xl->xl_depth++;
		return true;
	}
	if (!atomic_compare_exchange_strong_explicit(&xl->xl_state, &c, 1,
	        memory_order_acquire, memory_order_relaxed)) {
		if (!wait)
			return false;
		sock_xlock_wait(xl, c);
	}
	atomic_store_explicit(&xl->xl_owner, self, memory_order_relaxed);
	xl->xl_depth = 1;
	return true;
}

static inline void
sock_xlock(struct sock_xlock *xl)
{
	(void)sock_xlock_try(xl, true);
}

static inline void
sock_xunlock(struct sock_xlock *xl)
{
	/* depth 0: re-initialised by a fork() made while it was held. */
	if (xl->xl_depth == 0 || --xl->xl_depth > 0)
		return;
	atomic_store_explicit(&xl->xl_owner, NULL, memory_order_relaxed);
	if (atomic_exchange_explicit(&xl->xl_state, 0, memory_order_release) ==
	    2)
		(void)LIBC(syscall)(SYS_futex, &xl->xl_state,
		    FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void
sock_locks_init(struct sock *so)
{
	pthread_mutexattr_t ma;

	/* Recursive: a filter may inject or set flow control from inside a
	 * callback the library runs with one of these held. */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&so->so_lock, &ma);
	pthread_mutexattr_destroy(&ma);
	sock_xlock_init(&so->so_rxlock);
	sock_xlock_init(&so->so_txlock);
	sock_xlock_init(&so->so_inlock);
}

static struct sock *
sock_alloc(void)
{
	struct sock *so;

	pthread_mutex_lock(&sock_pool_lock);
	so = sock_free;
	if (so != NULL)
		sock_free = (struct sock *)(void *)SO_LOAD(so->so_rq_head);
	pthread_mutex_unlock(&sock_pool_lock);
	if (so == NULL) {
		if ((so = calloc(1, sizeof(*so))) == NULL)
			return NULL;
		sock_locks_init(so);
		pthread_mutex_lock(&sock_pool_lock);
		so->so_pool_next = sock_all;
		sock_all = so;
		pthread_mutex_unlock(&sock_pool_lock);
	}
	SO_STORE(so->so_rq_head, NULL);
	so->so_rq_tail = NULL;
	so->so_rq_bytes = 0;
	SO_STORE(so->so_rx_error, 0);
	SO_STORE(so->so_tx_rem, NULL);
	so->so_top = so->so_bottom = NULL;
	so->so_ninst = 0;
	so->so_cfg = NULL;
	so->so_maxblk = -1;
	so->so_wroff = so->so_tail = 0;
	atomic_store(&so->so_rdy, 0);
	so->so_rdy_regs = NULL;
	so->so_waiters = NULL;
	so->so_watch = NULL;
	so->so_conn_err = 0;
	atomic_store(&so->so_stage, NULL);
	so->so_backlog = 0;
	so->so_aq = NULL;
	so->so_aq_ready = 0;
	so->so_aq_lso = NULL;
	so->so_aq_conn = NULL;
	so->so_af = NULL;
	so->so_af_name[0] = '\0';
	atomic_store(&so->so_flags, 0);
	atomic_store(&so->so_nactive, 0);
	atomic_store(&so->so_ops, 0);
	atomic_store(&so->so_nfds, 1);
	/* Published last: sock_tryhold() on a recycled object sees 0 first. */
	atomic_store(&so->so_refs, 1);
	return so;
}

/* A receive queue entry (from the per-thread cache: one per read). */
static struct sock_rmsg *
sock_rmsg_new(void)
{
	struct sock_rmsg *rm = tc_alloc(TC_RMSG, sizeof(*rm));

	if (rm == NULL)
		return NULL;
	/* rm_addr is read only up to rm_alen: not cleared. */
	rm->rm_next = NULL;
	rm->rm_mp = NULL;
	rm->rm_len = 0;
	rm->rm_processed = false;
	rm->rm_alen = 0;
	rm->rm_flags = 0;
	return rm;
}

static void
sock_rmsg_free(struct sock *so, struct sock_rmsg *rm)
{
	if (rm != &so->so_rq_spare)
		tc_free(TC_RMSG, rm, sizeof(*rm));
}

static void
sock_rq_free(struct sock *so)
{
	struct sock_rmsg *rm, *next;

	for (rm = SO_ACQ(so->so_rq_head); rm != NULL; rm = next) {
		next = __atomic_load_n(&rm->rm_next, __ATOMIC_ACQUIRE);
		freemsg(rm->rm_mp);
		sock_rmsg_free(so, rm);
	}
	SO_STORE(so->so_rq_head, NULL);
	so->so_rq_tail = NULL;
	so->so_rq_bytes = 0;
}

/* The last reference: detach every filter and recycle the object. */
void
sock_destroy(struct sock *so)
{
	stk_detach_all(so);
	sock_rq_free(so);
	freemsg(SO_LOAD(so->so_tx_rem));
	SO_STORE(so->so_tx_rem, NULL);
	sock_stage_free(so);
	if (so->so_cfg != NULL)
		cfg_rele(so->so_cfg);
	so->so_cfg = NULL;
	pthread_mutex_lock(&sock_pool_lock);
	SO_STORE(so->so_rq_head, (struct sock_rmsg *)(void *)sock_free);
	sock_free = so;
	pthread_mutex_unlock(&sock_pool_lock);
}

void
sock_hold(struct sock *so)
{
	atomic_fetch_add(&so->so_refs, 1);
}

void
sock_fd_add(struct sock *so)
{
	atomic_fetch_add(&so->so_nfds, 1);
}

void
sock_atfork_child(void)
{
	struct sock *so;

	/* Another thread may have held a lock at fork: start afresh. */
	pthread_mutex_init(&sock_pool_lock, NULL);
	pthread_mutex_init(&sock_cfg_lock, NULL);
	for (so = sock_all; so != NULL; so = so->so_pool_next)
		sock_locks_init(so);
}

static void
sock_init_common(struct sock *so, int fd, int family, int type, int proto,
    struct cfg_snap *cs)
{
	so->so_fd = fd;
	so->so_family = family;
	so->so_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	so->so_proto = proto;
	so->so_cfg = cs;
	cfg_hold(cs);
	if (so->so_type == SOCK_STREAM)
		atomic_fetch_or(&so->so_flags, SO_F_STREAM);
	if (type & SOCK_NONBLOCK)
		atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
}

int
sock_create(int fd, int family, int type, int proto, struct cfg_snap *cs,
    struct sock **sop)
{
	const struct cfg_filter *order[CFG_MAXFILTERS];
	struct sock *so;
	bool prog;
	int error;

	*sop = NULL;
	if (cs == NULL || cs->cs_nfilters == 0)
		return 0;
	prog = cfg_has_prog(cs, family, type, proto);
	if (!prog &&
	    cfg_auto_order(cs, family, type, proto, order, CFG_MAXFILTERS) == 0)
		return 0;
	if ((so = sock_alloc()) == NULL)
		return 0; /* cannot filter: the socket works unfiltered */
	sock_init_common(so, fd, family, type, proto, cs);
	if (prog)
		atomic_fetch_or(&so->so_flags, SO_F_FILOP_OK);
	if ((error = stk_attach_auto(so)) != 0) {
		sock_rele(so);
		return error;
	}
	if (so->so_ninst == 0 && !prog) {
		sock_rele(so);
		return 0;
	}
	*sop = so;
	return 0;
}

/* A call's own loans (send: the caller's data, receive: the caller's
 * buffer), to tell whether the filters changed them. */
struct sock_lent {
	mblk_t *sl_mp;
	unsigned char *sl_r, *sl_w;
	dblk_t *sl_db;
};

/* Did the filters pass the lent blocks through untouched (the same
 * blocks, on the same loans, with the same windows)? */
static inline bool
sock_untouched(const mblk_t *mp, const struct sock_lent *lent, int nlent)
{
	int i;

	if (nlent == 1) /* one buffer: the usual case */
		return mp == lent->sl_mp && mp->b_cont == NULL &&
		       mp->b_datap == lent->sl_db && mp->b_rptr == lent->sl_r &&
		       mp->b_wptr == lent->sl_w;
	for (i = 0; i < nlent; i++, mp = mp->b_cont)
		if (mp != lent[i].sl_mp || mp->b_datap != lent[i].sl_db ||
		    mp->b_rptr != lent[i].sl_r || mp->b_wptr != lent[i].sl_w)
			return false;
	return nlent > 0 && mp == NULL;
}

/* The lent blocks came back untouched (a chain of exactly them): end
 * their loans.  Also for loans no filter saw. */
static void
sock_lent_return(mblk_t *mp)
{
	while (mp != NULL) {
		mblk_t *next = mp->b_cont;

		mp->b_cont = NULL;
		(void)mb_unborrow_lent(mp);
		mp = next;
	}
}

/* Read what the kernel has into the receive queue (rxlock held).
 * Returns bytes read from the kernel, 0 at EOF, or -errno. */
/* Queue rm at the tail (so_lock taken here); returns the bytes queued
 * now.  The release store publishes rm whole to a receiver walking the
 * queue without the lock. */
static size_t
sock_rq_append(struct sock *so, struct sock_rmsg *rm)
{
	size_t bytes;

	pthread_mutex_lock(&so->so_lock);
	if (so->so_rq_tail != NULL)
		__atomic_store_n(&so->so_rq_tail->rm_next, rm,
		    __ATOMIC_RELEASE);
	else
		SO_STORE(so->so_rq_head, rm);
	so->so_rq_tail = rm;
	bytes = so->so_rq_bytes += rm->rm_len;
	pthread_mutex_unlock(&so->so_lock);
	return bytes;
}

/* A receive failed: a connection-level error (reset, timeout) is told to
 * the filters once, as SOF_EV_DISCONNECTED with the errno. */
static void
sock_lost(struct sock *so, int err)
{
	if (err == EAGAIN || err == EINTR || err == ENOMEM || err == EFAULT ||
	    err == EINVAL || err == EBADF || err == ENOTCONN)
		return;
	if (!(atomic_fetch_or(&so->so_flags, SO_F_LOST) & SO_F_LOST))
		stk_notify(so, SOF_EV_DISCONNECTED, (uintptr_t)err);
}

static ssize_t
sock_fill(struct sock *so, int fd, struct msghdr *umsg, size_t hint, int kflags)
{
	bool stream = (atomic_load(&so->so_flags) & SO_F_STREAM) != 0;
	size_t size = stream ? hint : SOCK_DGMAX;
	struct sock_rmsg *rm;
	struct msghdr kmsg;
	struct iovec iov;
	mblk_t *mp;
	ssize_t n;

	if (size < SOCK_RDMIN)
		size = SOCK_RDMIN;
	if (size > SOCK_RDMAX)
		size = SOCK_RDMAX;
	if ((mp = allocb(size, BPRI_MED)) == NULL ||
	    (rm = sock_rmsg_new()) == NULL) {
		freemsg(mp);
		return -ENOMEM;
	}
	memset(&kmsg, 0, sizeof(kmsg));
	iov.iov_base = mp->b_wptr;
	iov.iov_len = size;
	kmsg.msg_iov = &iov;
	kmsg.msg_iovlen = 1;
	if (!stream) {
		kmsg.msg_name = &rm->rm_addr;
		kmsg.msg_namelen = sizeof(rm->rm_addr);
	}
	if (umsg != NULL && umsg->msg_control != NULL) {
		kmsg.msg_control = umsg->msg_control;
		kmsg.msg_controllen = umsg->msg_controllen;
	}
	n = LIBC(recvmsg)(fd, &kmsg, kflags);
	if (n < 0) {
		n = -errno;
		freemsg(mp);
		sock_rmsg_free(so, rm);
		sock_lost(so, (int)-n);
		return n;
	}
	if (umsg != NULL && umsg->msg_control != NULL) {
		umsg->msg_controllen = kmsg.msg_controllen;
		umsg->msg_flags |= kmsg.msg_flags & MSG_CTRUNC;
	}
	if (n == 0 && stream) {
		freemsg(mp);
		sock_rmsg_free(so, rm);
		if (!(atomic_fetch_or(&so->so_flags, SO_F_EOF) & SO_F_EOF))
			stk_notify(so, SOF_EV_CANTRECVMORE, 0);
		return 0;
	}
	mp->b_wptr += n;
	if (!stream && (size_t)n < size / 8) {
		/* Do not keep 64 KiB per small datagram in the queue (copyb
		 * would keep the block's size: copy the bytes only). */
		mblk_t *small = allocb((size_t)n, BPRI_MED);

		if (small != NULL) {
			memcpy(small->b_wptr, mp->b_rptr, (size_t)n);
			small->b_wptr += n;
			freeb(mp);
			mp = small;
		}
	}
	rm->rm_alen = kmsg.msg_namelen;
	rm->rm_flags = kmsg.msg_flags & MSG_TRUNC;
	/* data_in and the queueing of what it returns are one step against
	 * timers and injections in (sock_inlock()). */
	sock_inlock(so);
	if (n > 0)
		mp = stk_data_in(so, so->so_bottom, mp,
		    kmsg.msg_flags & MSG_OOB);
	if (mp == NULL && (stream || n > 0)) {
		sock_inunlock(so);
		sock_rmsg_free(so, rm); /* consumed by a filter */
		return n == 0 ? 1 : n;
	}
	rm->rm_mp = mp;
	rm->rm_len = mp != NULL ? msgdsize(mp) : 0;
	(void)sock_rq_append(so, rm);
	sock_inunlock(so);
	return n == 0 ? 1 : n; /* an empty datagram is still a message */
}

/* Copy n bytes of chain mp (from offset off) into msg's iovecs at byte
 * position pos. */
static void
sock_iov_put(struct msghdr *msg, size_t pos, const mblk_t *mp, size_t off,
    size_t n)
{
	size_t i;

	for (i = 0; i < (size_t)msg->msg_iovlen && n > 0; i++) {
		struct iovec *v = &msg->msg_iov[i];
		size_t c;

		if (pos >= v->iov_len) {
			pos -= v->iov_len;
			continue;
		}
		c = v->iov_len - pos;
		if (c > n)
			c = n;
		mb_copyout(mp, off, (char *)v->iov_base + pos, c);
		off += c;
		n -= c;
		pos = 0;
	}
}

/*
 * Read a stream straight into the caller's buffer buf (len bytes, within
 * one iovec of msg, which is NULL for recv(); rxlock held, receive queue
 * empty, no MSG_PEEK).  The filters get the bytes on loan, data_in then
 * data_in_proc at once since they reach the caller in this call; when
 * they hand the loan back untouched the bytes are already in place.
 * Otherwise the loan ends (a block a filter kept moves to the heap) and
 * what the filters returned is copied over the raw bytes; what does not
 * fit is queued in so_rq_spare.  *placed is the bytes now at buf; raw
 * bytes past them are cleared, so that what a filter held back or
 * dropped does not stay readable there.  Returns bytes read from the
 * kernel, 0 at EOF, or -errno.
 */
static inline __attribute__((always_inline)) ssize_t
sock_fill_inplace(struct sock *so, int fd, struct msghdr *msg,
    unsigned char *buf, size_t len, int kflags, size_t *placed)
{
	mblk_t *lent = NULL, *mp;
	struct sock_rmsg *rm;
	struct msghdr kmsg;
	struct iovec iov;
	dblk_t *db = NULL;
	size_t size;
	ssize_t n;
	bool locked;

	/* The loan before the read: bytes taken from the kernel must not be
	 * lost to ENOMEM.  A NULL buffer is not lent: the kernel fails the
	 * read (EFAULT, or EAGAIN) as it would without us. */
	if ((atomic_load(&so->so_ops) & SO_OP_DATA_IN) && buf != NULL &&
	    (lent = mb_borrow(buf, len)) == NULL)
		return -ENOMEM;
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&kmsg, 0, sizeof(kmsg));
	kmsg.msg_iov = &iov;
	kmsg.msg_iovlen = 1;
	if (msg != NULL && msg->msg_control != NULL) {
		kmsg.msg_control = msg->msg_control;
		kmsg.msg_controllen = msg->msg_controllen;
	}
	n = LIBC(recvmsg)(fd, &kmsg, kflags);
	if (n < 0) {
		n = -errno;
		(void)mb_unborrow(lent);
		sock_lost(so, (int)-n);
		return n;
	}
	if (msg != NULL && msg->msg_control != NULL) {
		msg->msg_controllen = kmsg.msg_controllen;
		msg->msg_flags |= kmsg.msg_flags & MSG_CTRUNC;
	}
	if (n == 0 || lent == NULL) {
		(void)mb_unborrow(lent);
		if (n == 0 &&
		    !(atomic_fetch_or(&so->so_flags, SO_F_EOF) & SO_F_EOF))
			stk_notify(so, SOF_EV_CANTRECVMORE, 0);
		*placed = (size_t)n;
		return n;
	}
	/* Lend only what arrived. */
	db = lent->b_datap;
	lent->b_wptr = db->db_lim = buf + n;

	/* Serialized with timers and injections only where filters have
	 * any (SO_F_ASYNC): the usual read takes no lock. */
	locked = (atomic_load_explicit(&so->so_flags, memory_order_relaxed) &
	             SO_F_ASYNC) != 0;
	if (locked)
		sock_inlock(so);
	mp = stk_data_in_now(so, lent, kmsg.msg_flags & MSG_OOB, &size);
	if (__builtin_expect(SO_LOAD(so->so_rq_head) != NULL, 0)) {
		/* A timer or another thread queued data since we looked:
		 * these bytes are younger, they go behind it. */
		(void)mb_unborrow_db(db);
		if (mp != NULL && (rm = sock_rmsg_new()) != NULL) {
			rm->rm_mp = mp;
			rm->rm_len = mb_dsize(mp);
			rm->rm_processed = true;
			(void)sock_rq_append(so, rm);
		} else {
			freemsg(mp);
		}
		memset(buf, 0, (size_t)n);
		if (locked)
			sock_inunlock(so);
		*placed = 0;
		return n;
	}
	if (mp == lent && mp->b_cont == NULL && mp->b_datap == db &&
	    mp->b_rptr == buf && mp->b_wptr == buf + n) {
		(void)mb_unborrow_lent(mp); /* the usual case: done */
		if (locked)
			sock_inunlock(so);
		*placed = (size_t)n;
		return n;
	}
	/* Changed or kept: the copy below overwrites the caller's buffer,
	 * so blocks still on it move to the heap first. */
	(void)mb_unborrow_db(db);
	size = mp != NULL ? mb_dsize(mp) : 0;
	*placed = size < len ? size : len;
	(void)mb_copyout(mp, 0, buf, *placed);
	if ((size_t)n > *placed) /* raw bytes a filter held back or dropped */
		memset(buf + *placed, 0, (size_t)n - *placed);
	if (size == *placed) {
		freemsg(mp);
		if (locked)
			sock_inunlock(so);
		return n;
	}
	/* The filters made more than fits.  The queue was empty, so the
	 * spare entry is free; at the head, before anything injected
	 * meanwhile, which is younger. */
	rm = &so->so_rq_spare;
	rm->rm_mp = mb_advance(mp, *placed);
	rm->rm_len = size - *placed;
	rm->rm_processed = true;
	rm->rm_alen = 0;
	rm->rm_flags = 0;
	pthread_mutex_lock(&so->so_lock);
	rm->rm_next = SO_LOAD(so->so_rq_head);
	SO_STORE(so->so_rq_head, rm);
	if (so->so_rq_tail == NULL)
		so->so_rq_tail = rm;
	so->so_rq_bytes += rm->rm_len;
	pthread_mutex_unlock(&so->so_lock);
	if (locked)
		sock_inunlock(so);
	return n;
}

/* Does every byte of msg's iovecs from pos to want lie in one iovec (the
 * in-place read needs one region)?  *bufp: where byte pos is. */
static inline bool
sock_iov_region(const struct msghdr *msg, size_t pos, size_t want,
    unsigned char **bufp)
{
	size_t i;

	for (i = 0; i < (size_t)msg->msg_iovlen; i++) {
		const struct iovec *v = &msg->msg_iov[i];

		if (pos < v->iov_len) {
			*bufp = (unsigned char *)v->iov_base + pos;
			return v->iov_len >= want;
		}
		pos -= v->iov_len;
		want -= v->iov_len;
	}
	return false;
}

static void
sock_rq_unlink_head(struct sock *so)
{
	struct sock_rmsg *rm = SO_ACQ(so->so_rq_head);

	SO_STORE(so->so_rq_head,
	    __atomic_load_n(&rm->rm_next, __ATOMIC_ACQUIRE));
	if (SO_LOAD(so->so_rq_head) == NULL)
		so->so_rq_tail = NULL;
	freemsg(rm->rm_mp);
	sock_rmsg_free(so, rm);
}

/* data_in_proc on a message that is about to be copied out. */
static void
sock_rq_process(struct sock *so, struct sock_rmsg *rm)
{
	size_t before = rm->rm_len, after = before;

	if (rm->rm_processed)
		return;
	rm->rm_processed = true;
	if (rm->rm_mp != NULL && (atomic_load(&so->so_ops) & SO_OP_DATA_IN))
		rm->rm_mp = stk_data_in_proc(so, rm->rm_mp, &after);
	else
		after = before;
	pthread_mutex_lock(&so->so_lock);
	rm->rm_len = rm->rm_mp != NULL ? msgdsize(rm->rm_mp) : 0;
	so->so_rq_bytes = so->so_rq_bytes - before + rm->rm_len;
	pthread_mutex_unlock(&so->so_lock);
}

/*
 * Copy queued data to msg (rxlock held).  Streams: as many bytes as fit,
 * across messages.  Datagrams: one message.  Returns bytes copied; *got
 * tells whether a datagram was taken.
 */
static size_t
sock_rq_copyout(struct sock *so, struct msghdr *msg, size_t pos, size_t want,
    int flags, bool *got, size_t *dglen)
{
	bool stream = (atomic_load(&so->so_flags) & SO_F_STREAM) != 0;
	bool peek = (flags & MSG_PEEK) != 0;
	struct sock_rmsg *rm, *next;
	size_t done = 0;

	*got = false;
	for (rm = SO_ACQ(so->so_rq_head); rm != NULL; rm = next) {
		size_t n;

		sock_rq_process(so, rm);
		next = __atomic_load_n(&rm->rm_next, __ATOMIC_ACQUIRE);
		if (stream && rm->rm_len == 0) {
			if (rm == SO_LOAD(so->so_rq_head)) {
				pthread_mutex_lock(&so->so_lock);
				sock_rq_unlink_head(so);
				pthread_mutex_unlock(&so->so_lock);
			}
			continue;
		}
		n = rm->rm_len < want - done ? rm->rm_len : want - done;
		sock_iov_put(msg, pos + done, rm->rm_mp, 0, n);
		done += n;
		if (!stream) {
			*got = true;
			*dglen = rm->rm_len;
			if (rm->rm_len > n)
				msg->msg_flags |= MSG_TRUNC;
			if (msg->msg_name != NULL) {
				socklen_t l = rm->rm_alen < msg->msg_namelen
				                  ? rm->rm_alen
				                  : msg->msg_namelen;

				memcpy(msg->msg_name, &rm->rm_addr, l);
				msg->msg_namelen = rm->rm_alen;
			}
			if (!peek) {
				pthread_mutex_lock(&so->so_lock);
				so->so_rq_bytes -= rm->rm_len;
				sock_rq_unlink_head(so);
				pthread_mutex_unlock(&so->so_lock);
			}
			return done;
		}
		if (!peek) {
			pthread_mutex_lock(&so->so_lock);
			rm->rm_mp = mb_advance(rm->rm_mp, n);
			rm->rm_len -= n;
			so->so_rq_bytes -= n;
			if (rm->rm_len == 0)
				sock_rq_unlink_head(so);
			pthread_mutex_unlock(&so->so_lock);
		}
		if (done == want)
			break;
	}
	return done;
}

static size_t
sock_iov_total(const struct msghdr *msg)
{
	size_t i, total = 0;

	for (i = 0; i < (size_t)msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	return total;
}

static ssize_t
sock_recv_impl(struct sock *so, int fd, struct msghdr *msg, int flags)
{
	unsigned sf = atomic_load(&so->so_flags);
	bool stream = (sf & SO_F_STREAM) != 0;
	bool waitall =
	    stream && (flags & (MSG_WAITALL | MSG_PEEK)) == MSG_WAITALL;
	size_t want =
	    msg->msg_iovlen == 1 ? msg->msg_iov->iov_len : sock_iov_total(msg);
	size_t done = 0, dglen = 0;
	int kflags = flags & (MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	unsigned char *buf;
	ssize_t ret = 0;
	int timeo = -2; /* SO_RCVTIMEO, read when first needed */
	bool got;

	sock_op_issued(so);
	if (SO_LOAD(so->so_tx_rem) != NULL)
		(void)sock_flush(so, fd);
	msg->msg_flags = 0;
	if (stream && msg->msg_name != NULL)
		msg->msg_namelen = 0; /* as the kernel does on a stream */
	sock_xlock(&so->so_rxlock);
	for (;;) {
		ssize_t n;

		got = false;
		if (SO_LOAD(so->so_rq_head) != NULL)
			done += sock_rq_copyout(so, msg, done, want - done,
			    flags, &got, &dglen);
		if (got) {
			ret = (flags & MSG_TRUNC) ? (ssize_t)dglen
			                          : (ssize_t)done;
			break;
		}
		if (stream && (done == want || (done > 0 && !waitall))) {
			ret = (ssize_t)done;
			break;
		}
		if (SO_LOAD(so->so_rq_head) == NULL &&
		    (atomic_load(&so->so_flags) & SO_F_EOF)) {
			ret = (ssize_t)done;
			break;
		}
		if (SO_LOAD(so->so_rx_error) != 0) {
			ret = done > 0 ? (ssize_t)done
			               : -SO_LOAD(so->so_rx_error);
			if (done == 0)
				SO_STORE(so->so_rx_error, 0);
			break;
		}
		if ((atomic_load(&so->so_flags) & SO_F_RCVFC) &&
		    ((sf & SO_F_NONBLOCK) | (flags & MSG_DONTWAIT)) != 0) {
			/* A filter holds the receive side: leave the data in
			 * the kernel so TCP's window pushes back. */
			ret = done > 0 ? (ssize_t)done : -EAGAIN;
			break;
		}
		if (!((sf & SO_F_NONBLOCK) || (flags & MSG_DONTWAIT)) &&
		    (atomic_load(&so->so_flags) & SO_F_ASYNC)) {
			/* What this read waits for may come from the library
			 * (an injection, flow control lifting), not only the
			 * kernel: wait for both, then read without blocking. */
			int werr;

			if (timeo == -2)
				timeo = sock_timeo_ms(fd, SO_RCVTIMEO);
			werr = sock_wait(so, fd, POLLIN, timeo);
			if (werr != 0) {
				ret = done > 0 ? (ssize_t)done : -werr;
				break;
			}
			if (SO_LOAD(so->so_rq_head) != NULL ||
			    SO_LOAD(so->so_rx_error) != 0 ||
			    (atomic_load(&so->so_flags) & SO_F_RCVFC))
				continue;
			n = sock_fill(so, fd, msg, want - done,
			    kflags | MSG_DONTWAIT);
			if (n == -EAGAIN)
				continue;
		} else if (stream && !(flags & MSG_PEEK) &&
		           SO_LOAD(so->so_rq_head) == NULL &&
		           sock_iov_region(msg, done, want, &buf)) {
			size_t placed = 0;

			n = sock_fill_inplace(so, fd, msg, buf, want - done,
			    kflags, &placed);
			done += placed;
			if (n > 0 && placed > 0 && (done == want || !waitall)) {
				ret = (ssize_t)done; /* the usual way out */
				break;
			}
		} else {
			n = sock_fill(so, fd, msg, want - done, kflags);
		}
		if (n < 0) {
			if (done > 0) {
				if (n != -EAGAIN && n != -EINTR)
					SO_STORE(so->so_rx_error, (int)-n);
				ret = (ssize_t)done;
			} else {
				ret = n;
			}
			break;
		}
	}
	sock_xunlock(&so->so_rxlock);
	if (ret > 0)
		stk_count_in(so, (size_t)ret);
	/* An injector told of flow control waits for this event. */
	if ((atomic_load(&so->so_flags) & SO_F_INJ_INFC) &&
	    sock_rq_bytes(so) < SOCK_RQ_HIWAT &&
	    (atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_INJ_INFC) &
	        SO_F_INJ_INFC))
		stk_notify(so, SOF_EV_INJECT_DATA_IN_OK, 0);
	sf_trace("recv fd=%d len=%zu flags=%#x = %zd", fd, want, flags, ret);
	return ret;
}

/* Socket state that sends recv() through the general loop: not a
 * stream, FIL_ATTACH still open (the first operation closes it), or
 * something to report or lift first. */
#define SOCK_RECV_SLOW                                                         \
	(SO_F_FILOP_OK | SO_F_EOF | SO_F_RCVFC | SO_F_INJ_INFC | SO_F_ASYNC)

static ssize_t
sock_recv_impl1(struct sock *so, int fd, void *buf, size_t len, int flags)
{
	unsigned sf = atomic_load_explicit(&so->so_flags, memory_order_relaxed);
	struct iovec iov;
	struct msghdr m;
	size_t placed;
	ssize_t n;

	/* The usual receive without a msghdr and the loop's bookkeeping:
	 * an in-place read (see sock_fill_inplace), or the loop when
	 * anything is queued or pending. */
	if ((sf & (SO_F_STREAM | SOCK_RECV_SLOW)) == SO_F_STREAM &&
	    !(flags & ~MSG_DONTWAIT) && len > 0 &&
	    SO_LOAD(so->so_tx_rem) == NULL) {
		sock_xlock(&so->so_rxlock);
		while (
		    SO_LOAD(so->so_rq_head) == NULL &&
		    SO_LOAD(so->so_rx_error) == 0 &&
		    !(atomic_load(&so->so_flags) & (SO_F_EOF | SO_F_RCVFC))) {
			n = sock_fill_inplace(so, fd, NULL, buf, len, flags,
			    &placed);
			if (n > 0 && placed == 0)
				continue; /* all consumed by a filter */
			if (n == 0 && SO_LOAD(so->so_rq_head) != NULL)
				break; /* injected before the EOF: the loop */
			sock_xunlock(&so->so_rxlock);
			if (n > 0) {
				n = (ssize_t)placed;
				stk_count_in(so, placed);
			}
			sf_trace("recv fd=%d len=%zu flags=%#x = %zd", fd, len,
			    flags, n);
			return n;
		}
		sock_xunlock(&so->so_rxlock);
	}
	iov.iov_base = buf;
	iov.iov_len = len;
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	return sock_recv_impl(so, fd, &m, flags);
}

bool
sock_rq_pending(struct sock *so)
{
	bool r;

	pthread_mutex_lock(&so->so_lock);
	r = SO_LOAD(so->so_rq_head) != NULL || SO_LOAD(so->so_rx_error) != 0;
	pthread_mutex_unlock(&so->so_lock);
	return r;
}

size_t
sock_rq_bytes(struct sock *so)
{
	size_t n;

	pthread_mutex_lock(&so->so_lock);
	n = so->so_rq_bytes;
	pthread_mutex_unlock(&so->so_lock);
	return n;
}

/* Write the remainder (txlock held).  0, or an errno (EAGAIN when the
 * kernel is full on a nonblocking attempt). */
static int
sock_flush_locked(struct sock *so, int fd, int kflags)
{
	struct iovec iov[SOCK_IOVMAX];
	struct msghdr m;

	while (SO_LOAD(so->so_tx_rem) != NULL) {
		int cnt = mb_to_iov(SO_LOAD(so->so_tx_rem), iov, SOCK_IOVMAX);
		ssize_t n;

		if (cnt < 0) {
			if (!pullupmsg(SO_LOAD(so->so_tx_rem), -1))
				return ENOMEM;
			continue;
		}
		if (cnt == 0) {
			freemsg(SO_LOAD(so->so_tx_rem));
			SO_STORE(so->so_tx_rem, NULL);
			break;
		}
		memset(&m, 0, sizeof(m));
		m.msg_iov = iov;
		m.msg_iovlen = (size_t)cnt;
		n = LIBC(sendmsg)(fd, &m, kflags);
		if (n < 0) {
			if (errno == EINTR && !(kflags & MSG_DONTWAIT))
				continue;
			return errno;
		}
		SO_STORE(so->so_tx_rem,
		    mb_advance(SO_LOAD(so->so_tx_rem), (size_t)n));
	}
	if (atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_INJ_OUTFC) &
	    SO_F_INJ_OUTFC)
		stk_notify(so, SOF_EV_INJECT_DATA_OUT_OK, 0);
	sock_rdy_check(so);
	return 0;
}

/*
 * Bytes the library writes on its own (an injection, a remainder flushed
 * later) complete an earlier write of the program: on a TCP socket with
 * Nagle's algorithm on, a small one would wait for the peer's delayed
 * ACK (some 40 ms), a delay the program's single write never had.
 * Turning TCP_NODELAY on pushes it out; it is turned off again at once.
 */
void
sock_push(struct sock *so, int fd)
{
	int on = 0, one = 1;
	socklen_t len = sizeof(on);

	if (so->so_type != SOCK_STREAM ||
	    (so->so_family != AF_INET && so->so_family != AF_INET6) ||
	    LIBC(getsockopt)(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) < 0 || on)
		return;
	(void)LIBC(setsockopt)(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)LIBC(setsockopt)(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

int
sock_flush(struct sock *so, int fd)
{
	int error;

	if (!sock_xlock_try(&so->so_txlock, false))
		return EAGAIN; /* a sender is at it */
	error = sock_flush_locked(so, fd, MSG_DONTWAIT | MSG_NOSIGNAL);
	sock_xunlock(&so->so_txlock);
	return error;
}

/* Copy bytes [off, off + n) of msg's iovecs to dst. */
static void
sock_iov_gather(const struct msghdr *msg, size_t off, unsigned char *dst,
    size_t n)
{
	size_t i;

	for (i = 0; i < (size_t)msg->msg_iovlen && n > 0; i++) {
		const struct iovec *v = &msg->msg_iov[i];
		size_t c;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		c = v->iov_len - off;
		if (c > n)
			c = n;
		memcpy(dst, (const char *)v->iov_base + off, c);
		dst += c;
		n -= c;
		off = 0;
	}
}

/* Build the chain for msg: lent blocks, or copies in blocks shaped by the
 * filters' block properties (head room for a header, largest block). */
static mblk_t *
sock_build_chain(struct sock *so, const struct msghdr *msg, size_t total,
    struct sock_lent *lent, int *nlent)
{
	mblk_t *head = NULL, *tail = NULL, *mp;
	size_t i;

	*nlent = 0;
	if (so->so_wroff == 0 && so->so_tail == 0 && so->so_maxblk < 0 &&
	    msg->msg_iovlen <= SOCK_IOVMAX) {
		for (i = 0; i < (size_t)msg->msg_iovlen; i++) {
			const struct iovec *v = &msg->msg_iov[i];

			if (v->iov_len == 0 && total > 0)
				continue;
			if ((mp = mb_borrow(v->iov_base, v->iov_len)) == NULL)
				goto fail;
			lent[*nlent].sl_mp = mp;
			lent[*nlent].sl_r = mp->b_rptr;
			lent[*nlent].sl_w = mp->b_wptr;
			lent[*nlent].sl_db = mp->b_datap;
			(*nlent)++;
			if (head == NULL)
				head = mp;
			else
				tail->b_cont = mp;
			tail = mp;
			if (total == 0)
				break;
		}
		if (head == NULL && (head = allocb(0, BPRI_MED)) == NULL)
			goto fail;
		return head;
	} else {
		size_t blk = so->so_maxblk > 0 ? (size_t)so->so_maxblk : total;
		size_t off = 0;

		if (blk == 0)
			blk = 1;
		do {
			size_t n = total - off < blk ? total - off : blk;

			if ((mp = mb_alloc_prop(n, so->so_wroff,
			         so->so_tail)) == NULL)
				goto fail;
			sock_iov_gather(msg, off, mp->b_wptr, n);
			mp->b_wptr += n;
			if (head == NULL)
				head = mp;
			else
				tail->b_cont = mp;
			tail = mp;
			off += n;
		} while (off < total);
		return head;
	}
fail:
	freemsg(head);
	for (i = 0; i < (size_t)*nlent; i++)
		(void)mb_unborrow_db(lent[i].sl_db);
	*nlent = 0;
	return NULL;
}

/*
 * Send what data_out made of a send of total bytes when it is not the
 * caller's data untouched (txlock held): mp (NULL: rval says why) goes
 * out in one gather write; on a stream what the kernel does not take is
 * kept in so_tx_rem, since the filters saw it.  Returns the call's result.
 */
static ssize_t
sock_send_filtered(struct sock *so, int fd, mblk_t *mp,
    const struct nmsghdr *nmsg, sof_rval_t rval, size_t total, int flags)
{
	bool stream = (atomic_load(&so->so_flags) & SO_F_STREAM) != 0;
	struct iovec iov[SOCK_IOVMAX];
	struct msghdr kmsg;
	size_t outlen;
	ssize_t ret, n;
	int cnt;

	if (mp == NULL)
		return rval == SOF_RVAL_RETURN     ? (ssize_t)total
		       : rval == SOF_RVAL_CONTINUE ? -EINVAL
		                                   : -(ssize_t)rval;
	while ((cnt = mb_to_iov(mp, iov, SOCK_IOVMAX)) < 0)
		if (!pullupmsg(mp, -1)) {
			freemsg(mp);
			return -ENOMEM;
		}
	memset(&kmsg, 0, sizeof(kmsg));
	kmsg.msg_name = nmsg->msg_name;
	kmsg.msg_namelen = nmsg->msg_namelen;
	kmsg.msg_control = nmsg->msg_control;
	kmsg.msg_controllen = nmsg->msg_controllen;
	kmsg.msg_iov = iov;
	kmsg.msg_iovlen = (size_t)cnt;
	outlen = msgdsize(mp);
	n = LIBC(sendmsg)(fd, &kmsg, flags);
	if (n < 0) {
		ret = -errno;
		if (stream && (ret == -EAGAIN || ret == -EINTR)) {
			SO_STORE(so->so_tx_rem,
			    mp); /* filters saw it: it must go out */
			ret = (ssize_t)total;
		} else {
			freemsg(mp);
		}
	} else {
		if (stream && (size_t)n < outlen)
			SO_STORE(so->so_tx_rem, mb_advance(mp, (size_t)n));
		else
			freemsg(mp);
		ret = (ssize_t)total;
	}
	return ret;
}

static ssize_t
sock_send_impl(struct sock *so, int fd, const struct msghdr *msg, int flags)
{
	unsigned sf = atomic_load(&so->so_flags);
	bool nb = (sf & SO_F_NONBLOCK) || (flags & MSG_DONTWAIT);
	struct sock_lent lent[SOCK_IOVMAX];
	struct sockaddr_storage name;
	struct nmsghdr nmsg;
	struct msghdr kmsg;
	sof_rval_t rval;
	size_t total;
	mblk_t *mp;
	ssize_t ret, n;
	int nlent = 0, i, error;

	sock_op_issued(so);
	if (!(atomic_load(&so->so_ops) & SO_OP_DATA_OUT) &&
	    SO_LOAD(so->so_tx_rem) == NULL) {
		n = LIBC(sendmsg)(fd, msg, flags);
		return n < 0 ? -errno : n;
	}
	if ((sf & SO_F_SNDFC) && nb)
		return -EAGAIN;
	if (sf & SO_F_SNDFC) {
		/* Blocking: wait until every filter lifted it. */
		int timeo = sock_timeo_ms(fd, SO_SNDTIMEO), werr;

		while (atomic_load(&so->so_flags) & SO_F_SNDFC)
			if ((werr = sock_wait(so, fd, 0, timeo)) != 0)
				return -werr;
	}
	sock_xlock(&so->so_txlock);
	if (SO_LOAD(so->so_tx_rem) != NULL &&
	    (error = sock_flush_locked(so, fd,
	         (flags & MSG_NOSIGNAL) | (nb ? MSG_DONTWAIT : 0))) != 0) {
		sock_xunlock(&so->so_txlock);
		return -error;
	}
	if (!(atomic_load(&so->so_ops) & SO_OP_DATA_OUT)) {
		sock_xunlock(&so->so_txlock);
		n = LIBC(sendmsg)(fd, msg, flags);
		return n < 0 ? -errno : n;
	}
	if (msg->msg_iovlen == 1 && so->so_wroff == 0 && so->so_tail == 0 &&
	    so->so_maxblk < 0) {
		/* The usual send: one buffer, lent whole. */
		total = msg->msg_iov->iov_len;
		mp = mb_borrow(msg->msg_iov->iov_base, total);
		if (mp != NULL) {
			lent[0].sl_mp = mp;
			lent[0].sl_r = mp->b_rptr;
			lent[0].sl_w = mp->b_wptr;
			lent[0].sl_db = mp->b_datap;
			nlent = 1;
		}
	} else {
		total = sock_iov_total(msg);
		mp = sock_build_chain(so, msg, total, lent, &nlent);
	}
	if (mp == NULL) {
		sock_xunlock(&so->so_txlock);
		return -ENOMEM;
	}
	memset(&nmsg, 0, sizeof(nmsg));
	if (msg->msg_name != NULL && msg->msg_namelen > 0 &&
	    msg->msg_namelen <= sizeof(name)) {
		memcpy(&name, msg->msg_name, msg->msg_namelen);
		nmsg.msg_name = &name;
		nmsg.msg_namelen = msg->msg_namelen;
	}
	nmsg.msg_control = msg->msg_control;
	nmsg.msg_controllen = (socklen_t)msg->msg_controllen;
	nmsg.msg_flags = flags;

	mp = stk_data_out(so, so->so_top, mp, &nmsg, &rval);
	if (mp != NULL && sock_untouched(mp, lent, nlent)) {
		/* Nothing transformed: the caller's iovecs are the same
		 * bytes, and the kernel's answer is the answer. */
		memset(&kmsg, 0, sizeof(kmsg));
		kmsg.msg_name = nmsg.msg_name;
		kmsg.msg_namelen = nmsg.msg_namelen;
		kmsg.msg_control = nmsg.msg_control;
		kmsg.msg_controllen = nmsg.msg_controllen;
		kmsg.msg_iov = msg->msg_iov;
		kmsg.msg_iovlen = msg->msg_iovlen;
		n = LIBC(sendmsg)(fd, &kmsg, flags);
		ret = n < 0 ? -errno : n;
		sock_lent_return(mp);
		nlent = 0; /* loans ended */
	} else {
		ret = sock_send_filtered(so, fd, mp, &nmsg, rval, total, flags);
	}
	/* Blocks a filter (or the remainder) kept get their own copy here. */
	for (i = 0; i < nlent; i++)
		(void)mb_unborrow_db(lent[i].sl_db);
	sock_xunlock(&so->so_txlock);
	sf_trace("send fd=%d len=%zu flags=%#x = %zd%s", fd, total, flags, ret,
	    SO_LOAD(so->so_tx_rem) != NULL ? " (remainder held)" : "");
	return ret;
}

/* Socket state that sends send() the general way: FIL_ATTACH still open
 * (the first operation closes it) or send flow control; block properties
 * that need copies are checked apart. */
#define SOCK_SEND_SLOW (SO_F_FILOP_OK | SO_F_SNDFC)

static ssize_t
sock_send_impl1(struct sock *so, int fd, const void *buf, size_t len, int flags)
{
	unsigned sf = atomic_load_explicit(&so->so_flags, memory_order_relaxed);
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct nmsghdr nmsg;
	struct msghdr m;
	sof_rval_t rval;
	mblk_t *lent, *mp;
	dblk_t *db;
	ssize_t n;

	/* The usual send without a msghdr: the buffer lent whole. */
	if (!(sf & SOCK_SEND_SLOW) && SO_LOAD(so->so_tx_rem) == NULL &&
	    (atomic_load(&so->so_ops) & SO_OP_DATA_OUT) && so->so_wroff == 0 &&
	    so->so_tail == 0 && so->so_maxblk < 0) {
		sock_xlock(&so->so_txlock);
		if (SO_LOAD(so->so_tx_rem) != NULL ||
		    (lent = mb_borrow(buf, len)) == NULL)
			goto general;
		db = lent->b_datap;
		memset(&nmsg, 0, sizeof(nmsg));
		nmsg.msg_flags = flags;
		mp = stk_data_out(so, so->so_top, lent, &nmsg, &rval);
		if (mp == lent && mp->b_cont == NULL && mp->b_datap == db &&
		    mp->b_rptr == (const unsigned char *)buf &&
		    mp->b_wptr == (const unsigned char *)buf + len) {
			/* Untouched: the kernel's answer is the answer. */
			if (nmsg.msg_name == NULL && nmsg.msg_control == NULL) {
				n = LIBC(send)(fd, buf, len, flags);
			} else {
				memset(&m, 0, sizeof(m));
				m.msg_name = nmsg.msg_name;
				m.msg_namelen = nmsg.msg_namelen;
				m.msg_control = nmsg.msg_control;
				m.msg_controllen = nmsg.msg_controllen;
				m.msg_iov = &iov;
				m.msg_iovlen = 1;
				n = LIBC(sendmsg)(fd, &m, flags);
			}
			n = n < 0 ? -errno : n;
			(void)mb_unborrow_lent(mp);
		} else {
			n = sock_send_filtered(so, fd, mp, &nmsg, rval, len,
			    flags);
			(void)mb_unborrow_db(db);
		}
		sock_xunlock(&so->so_txlock);
		sf_trace("send fd=%d len=%zu flags=%#x = %zd%s", fd, len, flags,
		    n,
		    SO_LOAD(so->so_tx_rem) != NULL ? " (remainder held)" : "");
		return n;
	general:
		sock_xunlock(&so->so_txlock);
	}
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	return sock_send_impl(so, fd, &m, flags);
}

/*
 * The entry points count the thread's depth in the library: a signal
 * handler that interrupted it must not allocate or lock (sockstage.c).
 * After the call: readiness follows the state (a few loads when nothing
 * changed), and a remainder left behind is the service thread's to flush
 * when the kernel has room, POLLOUT masked meanwhile.
 */
static inline void
sock_after_send(struct sock *so, int fd)
{
	if (SO_LOAD(so->so_tx_rem) != NULL) {
		sock_rdy_check(so);
		svc_watch_out(so, fd);
	}
	if (atomic_load_explicit(&sock_staged, memory_order_relaxed))
		sock_stage_drain();
}

static inline void
sock_after_recv(struct sock *so)
{
	/* A receive changes only what is queued: the IN bit (a pending
	 * error also shows in the kernel's own POLLERR).  Staged sends are
	 * left to the next send, poll or the service thread. */
	unsigned in = SO_LOAD(so->so_rq_head) != NULL ? SO_RDY_IN : 0;

	if (__builtin_expect(in != (atomic_load_explicit(&so->so_rdy,
	                                memory_order_relaxed) &
	                               SO_RDY_IN),
	        0))
		sock_rdy_check(so);
}

ssize_t
sock_sendmsg(struct sock *so, int fd, const struct msghdr *msg, int flags)
{
	ssize_t r;

	if (sock_depth > 0)
		return sock_stage_put(so, msg);
	sock_depth++;
	r = sock_send_impl(so, fd, msg, flags);
	sock_depth--;
	sock_after_send(so, fd);
	return r;
}

ssize_t
sock_send(struct sock *so, int fd, const void *buf, size_t len, int flags)
{
	ssize_t r;

	if (sock_depth > 0) {
		struct iovec iov = {.iov_base = (void *)(uintptr_t)buf,
		    .iov_len = len};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

		return sock_stage_put(so, &m);
	}
	sock_depth++;
	r = sock_send_impl1(so, fd, buf, len, flags);
	sock_depth--;
	sock_after_send(so, fd);
	return r;
}

ssize_t
sock_recvmsg(struct sock *so, int fd, struct msghdr *msg, int flags)
{
	ssize_t r;

	if (sock_depth > 0)
		return -EAGAIN; /* from a signal handler inside the library */
	sock_depth++;
	r = sock_recv_impl(so, fd, msg, flags);
	sock_depth--;
	sock_after_recv(so);
	return r;
}

ssize_t
sock_recv(struct sock *so, int fd, void *buf, size_t len, int flags)
{
	ssize_t r;

	if (sock_depth > 0)
		return -EAGAIN;
	sock_depth++;
	r = sock_recv_impl1(so, fd, buf, len, flags);
	sock_depth--;
	sock_after_recv(so);
	return r;
}

void
sock_inlock(struct sock *so)
{
	sock_xlock(&so->so_inlock);
}

void
sock_inunlock(struct sock *so)
{
	sock_xunlock(&so->so_inlock);
}

void
sock_foreach(void (*fn)(struct sock *so))
{
	struct sock *so;

	pthread_mutex_lock(&sock_pool_lock);
	for (so = sock_all; so != NULL; so = so->so_pool_next) {
		if (!sock_tryhold(so))
			continue;
		pthread_mutex_unlock(&sock_pool_lock);
		fn(so);
		sock_rele(so);
		pthread_mutex_lock(&sock_pool_lock);
	}
	pthread_mutex_unlock(&sock_pool_lock);
}

int
sock_inject_out(struct sock *so, struct stk_inst *inst, mblk_t *mp,
    struct nmsghdr *msg, boolean_t *flowctrl)
{
	int fd = SO_LOAD(so->so_fd); /* the last close may change it */
	struct nmsghdr nmsg;
	sof_rval_t rval;
	int error = 0;

	if (atomic_load(&so->so_refs) == 0 || fd < 0) {
		freemsg(mp);
		return EPIPE;
	}
	atomic_fetch_or(&so->so_flags, SO_F_ASYNC);
	memset(&nmsg, 0, sizeof(nmsg));
	if (msg == NULL)
		msg = &nmsg;
	sock_xlock(&so->so_txlock);
	mp = stk_data_out(so, inst->si_down, mp, msg, &rval);
	if (mp == NULL) {
		sock_xunlock(&so->so_txlock);
		return rval > 0 ? (int)rval : 0;
	}
	if (!(atomic_load(&so->so_flags) & SO_F_STREAM)) {
		struct iovec iov[SOCK_IOVMAX];
		struct msghdr k;
		int cnt;

		memset(&k, 0, sizeof(k));
		while ((cnt = mb_to_iov(mp, iov, SOCK_IOVMAX)) < 0)
			if (!pullupmsg(mp, -1))
				break;
		k.msg_iov = iov;
		k.msg_iovlen = cnt > 0 ? (size_t)cnt : 0;
		k.msg_name = msg->msg_name;
		k.msg_namelen = msg->msg_namelen;
		if (LIBC(sendmsg)(fd, &k, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			error = errno;
		freemsg(mp);
	} else {
		if (SO_LOAD(so->so_tx_rem) == NULL)
			SO_STORE(so->so_tx_rem, mp);
		else
			linkb(SO_LOAD(so->so_tx_rem), mp);
		error = sock_flush_locked(so, fd, MSG_DONTWAIT | MSG_NOSIGNAL);
		sock_push(so, fd);
		if (error == EAGAIN) {
			error = 0;
			if (flowctrl != NULL)
				*flowctrl = B_TRUE;
			atomic_fetch_or(&so->so_flags, SO_F_INJ_OUTFC);
		}
	}
	sock_xunlock(&so->so_txlock);
	if (SO_LOAD(so->so_tx_rem) != NULL) {
		sock_rdy_check(so);
		svc_watch_out(so, fd);
	}
	return error;
}

int
sock_inject_in(struct sock *so, struct stk_inst *inst, mblk_t *mp,
    boolean_t *flowctrl)
{
	struct sock_rmsg *rm;

	atomic_fetch_or(&so->so_flags, SO_F_ASYNC);
	sock_inlock(so); /* see sock_fill() */
	mp = stk_data_in(so, inst->si_up, mp, 0);
	if (mp == NULL) {
		sock_inunlock(so);
		return 0;
	}
	if ((rm = sock_rmsg_new()) == NULL) {
		sock_inunlock(so);
		freemsg(mp);
		return ENOMEM;
	}
	rm->rm_mp = mp;
	rm->rm_len = msgdsize(mp);
	if (sock_rq_append(so, rm) >= SOCK_RQ_HIWAT) {
		if (flowctrl != NULL)
			*flowctrl = B_TRUE;
		atomic_fetch_or(&so->so_flags, SO_F_INJ_INFC);
	}
	sock_inunlock(so);
	sock_rdy_update(so, true); /* new data: wake readers, even edge ones */
	return 0;
}

void
sock_fd_close(struct sock *so, int fd)
{
	int tries;

	if (atomic_fetch_sub(&so->so_nfds, 1) != 1)
		return;
	if (so->so_aq != NULL)
		aq_destroy(so); /* a listener: its queued connections go */
	/* Last descriptor, still open: filters may flush in CLOSING.  A
	 * descriptor lost behind our back (fd < 0) can no longer be written. */
	SO_STORE(so->so_fd, fd);
	if (fd >= 0)
		sock_stage_flush(so);
	atomic_fetch_or(&so->so_flags, SO_F_CLOSING);
	stk_notify(so, SOF_EV_CLOSING, fd >= 0 ? B_TRUE : B_FALSE);
	svc_unwatch(so); /* its dup would keep the connection open */
	if (sock_close_hook != NULL)
		sock_close_hook(so);
	sock_xlock(&so->so_txlock);
	if (fd < 0)
		tries = 50;
	else
		tries = 0;
	for (; SO_LOAD(so->so_tx_rem) != NULL && tries < 50; tries++) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int error =
		    sock_flush_locked(so, fd, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (error != 0 && error != EAGAIN)
			break;
		if (SO_LOAD(so->so_tx_rem) != NULL)
			(void)LIBC(poll)(&pfd, 1, 200);
	}
	if (SO_LOAD(so->so_tx_rem) != NULL)
		sf_log(SF_LOG_WARN,
		    "fd %d closed with %zu filtered bytes the peer did not "
		    "take",
		    fd, msgdsize(SO_LOAD(so->so_tx_rem)));
	sock_xunlock(&so->so_txlock);
	SO_STORE(so->so_fd, -1);
	sock_rele(so);
}

int
sock_accept_new(struct sock *lso, int fd, struct sock **sop, bool *deferred)
{
	struct sockaddr_storage la, fa;
	socklen_t lalen = sizeof(la), falen = sizeof(fa);
	struct sock *so;
	int error;

	*sop = NULL;
	*deferred = false;
	if (atomic_load(&lso->so_nactive) == 0)
		return 0;
	if ((so = sock_alloc()) == NULL)
		return 0;
	sock_init_common(so, fd, lso->so_family, lso->so_type, lso->so_proto,
	    lso->so_cfg);
	memset(&la, 0, sizeof(la));
	memset(&fa, 0, sizeof(fa));
	(void)LIBC(getsockname)(fd, (struct sockaddr *)&la, &lalen);
	(void)LIBC(getpeername)(fd, (struct sockaddr *)&fa, &falen);
	error = stk_inherit(lso, so, (struct sockaddr *)&la, lalen,
	    (struct sockaddr *)&fa, falen, deferred);
	if (error != 0) {
		sock_rele(so);
		return error;
	}
	if (so->so_ninst == 0) {
		sock_rele(so);
		return 0;
	}
	*sop = so;
	return 0;
}

int
sock_create_empty(int fd, int family, int type, int proto, struct cfg_snap *cs,
    struct sock **sop)
{
	struct sock *so;

	if ((so = sock_alloc()) == NULL)
		return ENOMEM;
	sock_init_common(so, fd, family, type, proto, cs);
	*sop = so;
	return 0;
}

ssize_t
sock_pull(struct sock *so, int fd)
{
	ssize_t n;

	sock_xlock(&so->so_rxlock);
	n = sock_fill(so, fd, NULL, SOCK_RDMAX, MSG_DONTWAIT);
	sock_xunlock(&so->so_rxlock);
	sock_rdy_check(so);
	return n;
}

int
sock_accepted(struct sock *lso, int fd, struct sock **sop)
{
	struct sock *so;
	bool deferred;
	int error;

	*sop = NULL;
	if ((error = sock_accept_new(lso, fd, &so, &deferred)) != 0)
		return error;
	if (deferred) {
		/* The first connection a filter defers on this listener:
		 * from now on the library takes its connections.  This one
		 * waits in the queue; accept() takes from the queue. */
		aq_park(lso, fd, so);
		return EINPROGRESS;
	}
	*sop = so;
	return 0;
}
