/*
 * core.h: the internal interface of src/core.  src/interpose uses only
 * what is declared here (and libc.h, log.h); src/core never includes an
 * interpose header.
 *
 * Error convention: int-returning functions return 0 or a positive errno
 * and leave errno alone; allocators return NULL.
 */
#ifndef SF_CORE_H
#define SF_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "sockfilter.h"

#define SF_HIDDEN __attribute__((visibility("hidden")))

/* ---------------------------------------------------------------------
 * mblk.c internals (the public STREAMS calls are in sockfilter.h).
 * ------------------------------------------------------------------- */

#define DBLK_F_BORROWED 0x1  /* db_base is the application's buffer */
#define DBLK_F_CACHED   0x2  /* allocb's small size: back to tc_free() */
#define MB_SMALL        2048 /* data bytes of a cached allocb block */

/* The dblk of mb_borrow(), with what only loans need (mblk.c). */
struct mb_loan {
	dblk_t ml_db;           /* first: b_datap points here */
	unsigned char *ml_copy; /* heap copy once the loan ended, or NULL */
	unsigned char ml_lock;  /* spin lock: borrowers and their pointers */
	bool ml_lent;           /* phantom reference still held */
};

/* mb_borrow(buf, len) is below, after the tcache it uses. */
/* mb_unborrow(mp): end of the call that lent the buffer.  Drops the
 * caller's reference and frees mp; if any block still points at the
 * buffer (a filter kept it), the data is first copied to the heap and
 * every such block is moved to the copy.  0 or ENOMEM (then the keeping
 * blocks are emptied: b_rptr = b_wptr). */
int mb_unborrow(mblk_t *mp);
/* mb_unborrow_db(db): the same, given the data block of an mb_borrow()
 * block: for when the filters may have freed or replaced that block.
 * The caller's (phantom) reference is dropped; if blocks still point at
 * the buffer they are moved to a heap copy.  0 or ENOMEM. */
int mb_unborrow_db(dblk_t *db);
/* mb_to_iov(mp, iov, max): fill iov with the non-empty blocks of the b_cont
 * chain; returns the count, or -1 if more than max are needed. */
int mb_to_iov(const mblk_t *mp, struct iovec *iov, int max);
/* mb_advance(mp, n): consume n bytes from the head of a chain, freeing
 * blocks that become empty; returns the remaining chain (NULL if none). */
mblk_t *mb_advance(mblk_t *mp, size_t n);
/* mb_copyout(mp, off, dst, len): copy up to len bytes starting at offset
 * off of the chain to dst; returns the bytes copied. */
size_t mb_copyout(const mblk_t *mp, size_t off, void *dst, size_t len);
/* mb_dsize(mp): msgdsize() of a message (mp not NULL) without a call
 * for the usual single block. */
static inline size_t
mb_dsize(const mblk_t *mp)
{
	if (mp->b_cont == NULL && mp->b_datap->db_type == M_DATA &&
	    mp->b_wptr >= mp->b_rptr)
		return (size_t)(mp->b_wptr - mp->b_rptr);
	return msgdsize(mp);
}
/* mb_alloc_prop(len, wroff, tail): a block of len data bytes with wroff
 * bytes of head room and tail bytes of tail room (b_rptr = base + wroff,
 * b_wptr = b_rptr, so the caller fills it). */
mblk_t *mb_alloc_prop(size_t len, size_t wroff, size_t tail);

/* ---------------------------------------------------------------------
 * tcache.c: per-thread free lists for the data path's small objects.
 * ------------------------------------------------------------------- */

enum tc_kind {
	TC_MBLK, /* mblk_t */
	TC_LOAN, /* mblk.c's loan record (the dblk of mb_borrow) */
	TC_DBLK, /* allocb's dblk with MB_SMALL data bytes (mblk.c) */
	TC_RMSG, /* struct sock_rmsg */
	TC_NKINDS
};

struct tc_list {
	void *tl_head;    /* linked through each object's first word */
	unsigned tl_room; /* objects the list may still take */
	size_t tl_size;   /* ASan builds: the kind's size, to unpoison */
};

struct tc_cache {
	struct tc_list tc_lists[TC_NKINDS];
	int tc_state; /* TC_S_* */
};

#define TC_S_NEW    0 /* no free yet in this thread: tl_room is 0 */
#define TC_S_ACTIVE 1 /* exit destructor registered */
#define TC_S_DEAD   2 /* exiting (or no destructor): no caching */

/* Initial-exec: the library is preloaded, and a per-call
 * __tls_get_addr would cost a good part of what the lists save. */
extern __thread struct tc_cache tc_cache
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/* Under ASan a kept object is poisoned, so a use after free still
 * reports; it is unpoisoned whole before it goes back to free(), since
 * the malloc may not be ASan's (the runtime loaded after libc, as when a
 * program that is not instrumented preloads the library alone). */
#if defined(__SANITIZE_ADDRESS__)
#define TC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TC_ASAN 1
#endif
#endif
#ifdef TC_ASAN
#include <sanitizer/asan_interface.h>
#define TC_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define TC_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define TC_POISON(p, n)   ((void)(p), (void)(n))
#define TC_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

void tc_free_slow(enum tc_kind kind, void *p, size_t size);

/* tc_alloc(kind, size): an object this thread kept, else malloc(size).
 * Every caller of one kind passes the same size.  Contents undefined. */
static inline void *
tc_alloc(enum tc_kind kind, size_t size)
{
	struct tc_list *tl = &tc_cache.tc_lists[kind];
	void *p = tl->tl_head;

	if (p == NULL)
		return malloc(size);
	TC_UNPOISON(p, size);
	tl->tl_head = *(void **)p;
	tl->tl_room++;
	return p;
}

/* tc_free(kind, p, size): keep p for this thread's next tc_alloc of that
 * kind, or free() it when the list is full.  p came from tc_alloc() of
 * the same kind, on any thread. */
static inline void
tc_free(enum tc_kind kind, void *p, size_t size)
{
	struct tc_list *tl = &tc_cache.tc_lists[kind];

	if (tl->tl_room == 0) {
		tc_free_slow(kind, p, size);
		return;
	}
	*(void **)p = tl->tl_head;
#ifdef TC_ASAN
	tl->tl_size = size;
#endif
	TC_POISON(p, size);
	tl->tl_head = p;
	tl->tl_room--;
}

/* A valid address for empty windows (mblk.c). */
extern unsigned char mb_nodata[1] SF_HIDDEN;

/* mb_borrow(buf, len): an M_DATA block over the caller's buffer without a
 * copy (b_rptr = buf, b_wptr = buf + len).  The data block holds one extra
 * reference for the caller, so DB_REF() > 1 tells filters to copy before
 * writing.  NULL if out of memory.  Inline: every filtered send and
 * receive lends. */
static inline mblk_t *
mb_borrow(const void *buf, size_t len)
{
	/* Never written through: filters copy when DB_REF() > 1. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	struct mb_loan *ml;
	mblk_t *mp;

	if (p == NULL) {
		if (len > 0)
			return NULL;
		p = mb_nodata;
	}
	if ((ml = tc_alloc(TC_LOAN, sizeof(*ml))) == NULL)
		return NULL;
	if ((mp = tc_alloc(TC_MBLK, sizeof(*mp))) == NULL) {
		tc_free(TC_LOAN, ml, sizeof(*ml));
		return NULL;
	}
	*ml = (struct mb_loan){
	    .ml_db =
	        {
	            .db_base = p,
	            .db_lim = p + len,
	            .db_ref = 2, /* mp + the lender's phantom reference */
	            .db_type = M_DATA,
	            .db_flags = DBLK_F_BORROWED,
	            .db_borrowers = mp,
	        },
	    .ml_lent = true,
	};
	*mp = (mblk_t){.b_rptr = p, .b_wptr = p + len, .b_datap = &ml->ml_db};
	return mp;
}

/* mb_unborrow_lent(mp): mb_unborrow() for the lender that still owns the
 * block mb_borrow() gave it, before it ended the loan.  Inline for the
 * usual case: mp and the phantom are the only references, so nobody else
 * can reach the loan and both go back without a lock. */
static inline int
mb_unborrow_lent(mblk_t *mp)
{
	dblk_t *db = mp->b_datap;

	if (mp->b_cont == NULL &&
	    __atomic_load_n(&db->db_ref, __ATOMIC_ACQUIRE) == 2) {
		tc_free(TC_MBLK, mp, sizeof(*mp));
		tc_free(TC_LOAN, db, sizeof(struct mb_loan));
		return 0;
	}
	return mb_unborrow(mp);
}

/* ---------------------------------------------------------------------
 * config.c: libconfig file -> immutable, refcounted snapshot.
 * ------------------------------------------------------------------- */

#define CFG_MAXTUPLES  32 /* tuples per filter (illumos SOF_MAXSOCKTUPLECNT) */
#define CFG_MAXFILTERS 64 /* filters per configuration */

enum cfg_hint {
	CFG_HINT_NONE = 0,
	CFG_HINT_TOP,
	CFG_HINT_BOTTOM,
	CFG_HINT_BEFORE, /* below cf_hint_arg (closer to the protocol) */
	CFG_HINT_AFTER   /* above cf_hint_arg (closer to the application) */
};

struct cfg_tuple {
	int ct_family; /* AF_* */
	int ct_type;   /* SOCK_* (no SOCK_NONBLOCK/SOCK_CLOEXEC bits) */
	int ct_proto;  /* IPPROTO_*, 0 matches any protocol */
};

struct cfg_param {
	char *cp_key;
	char *cp_val; /* numbers and booleans as text */
};

struct cfg_filter {
	char cf_name[FILNAME_MAX];
	char *cf_module; /* module name (NAME.so on the path) */
	bool cf_auto;    /* automatic, else programmatic */
	enum cfg_hint cf_hint;
	char cf_hint_arg[FILNAME_MAX]; /* filter named by before:/after: */
	int cf_ntuples;
	struct cfg_tuple cf_tuples[CFG_MAXTUPLES];
	int cf_nparams;
	struct cfg_param *cf_params;
	int cf_line; /* line of its group in the file */
};

struct cfg_snap {
	atomic_int cs_refs;
	char *cs_path; /* file it came from ("<string>" for tests) */
	int cs_nfilters;
	struct cfg_filter *cs_filters; /* configuration order */
	int cs_nmodpath;
	char **cs_modpath;      /* module_path entries, may be 0 */
	char *cs_warnings;      /* placement warnings, one per line, or NULL */
	uint64_t cs_generation; /* set by whoever publishes it */
};

/* cfg_load_file(path, &snap, err, errlen): parse and validate.  On error
 * returns EINVAL (or ENOENT, ENOMEM) and writes "FILE:LINE: problem" to err.
 * On success *snap holds one reference; warnings are in cs_warnings. */
int cfg_load_file(const char *path, struct cfg_snap **snapp, char *err,
    size_t errlen);
/* cfg_load_string(text, name, ...): the same from memory (name is used in
 * messages instead of the file name). */
int cfg_load_string(const char *text, const char *name, struct cfg_snap **snapp,
    char *err, size_t errlen);
/* An empty configuration (no filters), one reference. */
struct cfg_snap *cfg_empty(void);
void cfg_hold(struct cfg_snap *cs);
void cfg_rele(struct cfg_snap *cs);
/* Format an error into err (errlen bytes; nothing if err is NULL). */
void cfg_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The placement hint as the configuration writes it ("top",
 * "before:NAME"...) in buf when it needs one; NULL for none. */
const char *cfg_hint_str(const struct cfg_filter *cf, char *buf, size_t len);
/* cfg_parse_tuple("inet:stream:tcp" or "2:1:6", &t, err, errlen): 0 or EINVAL.
 */
int cfg_parse_tuple(const char *s, struct cfg_tuple *t, char *err,
    size_t errlen);
/* Does filter cf match a socket() of family/type/proto (type may carry
 * SOCK_NONBLOCK|SOCK_CLOEXEC; proto 0 = the family's default)? */
bool cfg_filter_matches(const struct cfg_filter *cf, int family, int type,
    int proto);
/* cfg_auto_order(cs, family, type, proto, out, max): the automatic
 * filters matching that socket, BOTTOM FIRST, in placement-hint order
 * (the algorithm is documented in config.c and README).  Returns the
 * count (at most max). */
int cfg_auto_order(const struct cfg_snap *cs, int family, int type, int proto,
    const struct cfg_filter **out, int max);
/* The programmatic filter called name that matches the socket, or NULL. */
const struct cfg_filter *cfg_prog_filter(const struct cfg_snap *cs,
    const char *name, int family, int type, int proto);
/* Does any programmatic filter match the socket? */
bool cfg_has_prog(const struct cfg_snap *cs, int family, int type, int proto);
/* The filter called name, or NULL. */
const struct cfg_filter *cfg_find(const struct cfg_snap *cs, const char *name);
/* Value of params.key of a filter, or NULL. */
const char *cfg_param(const struct cfg_filter *cf, const char *key);

/* ---------------------------------------------------------------------
 * registry.c: sof_register/sof_unregister and module loading.
 * ------------------------------------------------------------------- */

struct reg_filter {
	char rf_name[FILNAME_MAX]; /* registered name */
	sof_ops_t rf_ops;          /* copy of the module's table */
	int rf_flags;
	atomic_int rf_refs; /* live instances (EBUSY on unregister) */
	void *rf_dlhandle;  /* module that registered it, or NULL */
	struct reg_filter *rf_next;
};

/* Module directory used when the configuration names none, and the only
 * one in secure (AT_SECURE) mode.  Set once by the interposer's init. */
void reg_set_default_dir(const char *dir, bool secure);
/* reg_resolve(cs, cf, &rf): the registration serving configured filter cf:
 * one registered under cf->cf_name, else load cf_module from the module
 * path (cs_modpath, then the default dir) and take what it registered
 * (its registration named cf_name, or its only one).  Holds a reference.
 * 0, or ENXIO (missing module, load failure, nothing registered) with one
 * log line naming the module and the reason. */
int reg_resolve(const struct cfg_snap *cs, const struct cfg_filter *cf,
    struct reg_filter **rfp);
void reg_rele(struct reg_filter *rf);
/* Exclude module loading (the service thread's creation). */
void reg_serialize_begin(void);
void reg_serialize_end(void);

/* ---------------------------------------------------------------------
 * stats.c: per-filter and global counters (the design's kstats).
 * ------------------------------------------------------------------- */

struct st_filter {
	char sf_name[FILNAME_MAX];
	atomic_long sf_nactive;
	atomic_long sf_ndeferred;
	atomic_ulong sf_tot_active_attach;
	atomic_ulong sf_tot_passive_attach;
	atomic_ulong sf_attach_failures;
	atomic_ulong sf_bytes_in;  /* bytes delivered to the application */
	atomic_ulong sf_bytes_out; /* bytes the application sent through it */
	atomic_ulong sf_denied;    /* operations it stopped with an errno */
	struct st_filter *sf_next;
};

struct st_globals {
	atomic_ulong sg_defer_closed;
	atomic_ulong sg_defer_close_backlog;
	atomic_ulong sg_defer_close_failed;
};

/* The global counters live in the process's shared region (dmn.c), so
 * st_global is an lvalue behind a pointer: st_global.sg_defer_closed. */
struct st_globals *st_global_ref(void);
#define st_global (*st_global_ref())
/* The counters of filter name (created on first use; never freed; the
 * first DMN_MAXFILT live in the region the daemon reads). */
struct st_filter *st_filter_get(const char *name);
/* Iterate: first, then ->sf_next (list only grows; safe without lock). */
struct st_filter *st_filter_first(void);
/* JSON object of every counter into buf; returns the length it needed. */
size_t st_format_json(char *buf, size_t len);

/* ---------------------------------------------------------------------
 * sock.c / stack.c: the socket object, filter stacks and the data path.
 * ------------------------------------------------------------------- */

#define SOCK_MAXSTACK 16 /* filters on one socket */

/* so_rq_head, so_tx_rem and so_rx_error are written under their locks but
 * read without them (readiness hints; the receiver walking the queue an
 * injector appends to): atomic accesses, plain moves on x86, that a race
 * checker understands.  Stores release and walks acquire (SO_ACQ, and
 * rm_next), so that a queue entry is seen whole. */
#define SO_LOAD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED) /* a hint */
#define SO_ACQ(x)      __atomic_load_n(&(x), __ATOMIC_ACQUIRE) /* to walk */
#define SO_STORE(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

/* One filter instance on a socket: what sof_handle_t points to. */
struct stk_inst {
	struct sock *si_sock;
	struct reg_filter *si_reg;
	const sof_ops_t *si_ops;         /* &si_reg->rf_ops */
	const struct cfg_filter *si_cfg; /* from si_sock->so_cfg */
	struct st_filter *si_stats;
	_Atomic(void *) si_cookie;
	unsigned si_flags;        /* SI_F_* */
	struct stk_inst *si_up;   /* towards the application (NULL at top) */
	struct stk_inst *si_down; /* towards the protocol (NULL at bottom) */
	char *si_arg; /* SO_ACCEPTFILTER's af_arg: parameter "arg" */
};

#define SI_F_AUTO     0x01 /* attached automatically */
#define SI_F_PROG     0x02 /* attached with FIL_ATTACH */
#define SI_F_BYPASS   0x04 /* sof_bypass(): no more callbacks */
#define SI_F_DEFER    0x08 /* holding a new connection */
#define SI_F_RCVFC    0x10 /* asserting receive flow control */
#define SI_F_SNDFC    0x20 /* asserting send flow control */
#define SI_F_ATTACHED 0x40 /* attach callback returned CONTINUE/DEFER */

/* A message in the receive queue. */
struct sock_rmsg {
	struct sock_rmsg *rm_next;
	mblk_t *rm_mp;     /* data, NULL for an empty datagram */
	size_t rm_len;     /* bytes left in rm_mp */
	bool rm_processed; /* data_in_proc already ran */
	socklen_t rm_alen; /* source address (datagrams) */
	struct sockaddr_storage rm_addr;
	int rm_flags; /* MSG_TRUNC, MSG_OOB ... from the kernel */
};

/* so_rxlock/so_txlock (sock.c): recursive (a filter may inject from a
 * data callback) and held across blocking kernel calls, but taken on
 * every filtered send and receive, so uncontended it costs one atomic
 * instruction each way instead of a recursive pthread mutex's ~40. */
struct sock_xlock {
	atomic_uint xl_state; /* futex: 0 free, 1 held, 2 waited for */
	_Atomic(const void *) xl_owner; /* holder's identity, or NULL */
	unsigned xl_depth;              /* holder's recursion depth */
};

struct sock {
	atomic_int so_refs;      /* one for all descriptors + one per caller */
	atomic_int so_nfds;      /* descriptors referring to it */
	pthread_mutex_t so_lock; /* stack, flags, queues (recursive) */
	struct sock_xlock so_rxlock; /* one receiver at a time: keeps order */
	struct sock_xlock so_txlock; /* one sender at a time: keeps order */
	struct sock_xlock so_inlock; /* data_in + queueing vs injection in */
	int so_fd;                   /* a descriptor of it (handles, logs) */
	int so_family, so_type, so_proto;
	atomic_uint so_flags;  /* SO_F_* */
	atomic_int so_nactive; /* instances not bypassed */
	atomic_uint so_ops;    /* SO_OP_*: data callbacks present */
	int so_ninst;
	struct stk_inst *so_top, *so_bottom;
	struct cfg_snap *so_cfg; /* configuration the stack came from */
	/* receive side, under so_lock */
	struct sock_rmsg *so_rq_head, *so_rq_tail;
	size_t so_rq_bytes;
	int so_rx_error; /* error to report after queued data */
	/* Entry for what filters made beyond the caller's buffer in an
	 * in-place read; queued only into an empty queue, so always free. */
	struct sock_rmsg so_rq_spare;
	/* send side, under so_txlock */
	mblk_t *so_tx_rem; /* transformed bytes the kernel has not taken */
	ssize_t so_maxblk;
	ushort_t so_wroff, so_tail;
	struct sock *so_pool_next; /* pool list (memory is never unmapped) */
	/* readiness, for the interposer's poll/epoll (see sock_rdy_update) */
	atomic_uint so_rdy;             /* SO_RDY_* */
	void *so_rdy_regs;              /* interposer: epoll registrations */
	struct sock_waiter *so_waiters; /* threads waiting on it (so_lock) */
	struct svc_watch *so_watch;     /* service thread's watch (svc.c) */
	int so_conn_err; /* connect error we read, owed to SO_ERROR */
	_Atomic(struct sock_stage *) so_stage; /* sends from signal handlers */
	/* deferred connections (accq.c) */
	int so_backlog;             /* listen()'s, for the accept queue */
	struct sock_aq *so_aq;      /* listener: the library accepts */
	int so_aq_ready;            /* listener: ready connections */
	struct sock *so_aq_lso;     /* connection: its listener, while queued */
	struct aq_conn *so_aq_conn; /* connection: its queue entry */
	struct stk_inst *so_af;     /* SO_ACCEPTFILTER's instance */
	char so_af_name[17];        /* ... and the name it was set with */
};

/* Library-side readiness: what the kernel's poll cannot know. */
#define SO_RDY_IN      0x1 /* the library holds something to read */
#define SO_RDY_MASKIN  0x2 /* the kernel's readability is not the app's */
#define SO_RDY_MASKOUT 0x4 /* the kernel's writability is not the app's */

/* A thread blocked (poll, recv, send...) until a socket's state changes. */
struct sock_waiter {
	int sw_evfd; /* the thread's eventfd, written on a change */
	struct sock_waiter *sw_next;
};

#define SO_F_FILOP_OK   0x001 /* FIL_ATTACH/DETACH still allowed */
#define SO_F_LISTENING  0x002
#define SO_F_EOF        0x004 /* kernel said EOF; report after the queue */
#define SO_F_CLOSING    0x008 /* CLOSING sent: no more injection */
#define SO_F_CONNECTING 0x010 /* nonblocking connect in progress */
#define SO_F_CONNECTED  0x020
#define SO_F_WRSHUT     0x040
#define SO_F_RDSHUT     0x080
#define SO_F_STREAM     0x100   /* byte stream (else datagram boundaries) */
#define SO_F_RCVFC      0x200   /* a filter asserts receive flow control */
#define SO_F_SNDFC      0x400   /* a filter asserts send flow control */
#define SO_F_ADOPTED    0x800   /* found on first use, not seen created */
#define SO_F_NONBLOCK   0x1000  /* O_NONBLOCK, as the interposer last saw */
#define SO_F_INJ_INFC   0x2000  /* inject_in reported flow control */
#define SO_F_INJ_OUTFC  0x4000  /* inject_out reported flow control */
#define SO_F_LOST       0x10000 /* DISCONNECTED told (connection error) */
#define SO_F_ASYNC                                                             \
	0x8000 /* filters act asynchronously: blocking                         \
	          calls wait in sock_wait() */

#define SO_OP_DATA_OUT 0x1 /* some active filter has data_out */
#define SO_OP_DATA_IN  0x2 /* some active filter has data_in or data_in_proc */

/* The calling process's credentials for callbacks. */
cred_t *sock_cred(void);

/* sock_create(fd, family, type, proto, cs, &so): a socket object for a
 * new socket: automatic filters of cs attached (attach_active bottom-up),
 * FILOP_OK set if cs has programmatic filters for it.  *so is NULL when
 * nothing needs watching (the socket is unfiltered).  Returns 0 or the
 * errno a filter failed socket() with (nothing left attached). */
int sock_create(int fd, int family, int type, int proto, struct cfg_snap *cs,
    struct sock **sop);
/* sock_accepted(lso, fd, &so): the object of a socket accept() returned
 * from listener lso: inherited filters (attach_passive bottom-up), then
 * sofop_accept top-down.  0 with *so (maybe NULL); EINPROGRESS: a filter
 * deferred it, it is queued on the listener (accq.c) and accept() must
 * take from that queue; another errno: the connection must be closed. */
int sock_accepted(struct sock *lso, int fd, struct sock **sop);
/* Reference counting: sock_hold() for a caller, sock_rele() drops it; the
 * last reference detaches every filter and recycles the object
 * (sock_destroy).  sock_rele is inline: every filtered call drops one. */
void sock_hold(struct sock *so);
void sock_destroy(struct sock *so);
static inline void
sock_rele(struct sock *so)
{
	if (atomic_fetch_sub(&so->so_refs, 1) == 1)
		sock_destroy(so);
}
/* sock_tryhold(so): take a caller reference unless the object is dying.
 * Inline: every filtered call takes one. */
static inline bool
sock_tryhold(struct sock *so)
{
	int r = atomic_load(&so->so_refs);

	while (r > 0)
		if (atomic_compare_exchange_weak(&so->so_refs, &r, r + 1))
			return true;
	return false;
}
/* A descriptor now also refers to so (dup). */
void sock_fd_add(struct sock *so);
/* A descriptor of so was closed.  The last one sends SOF_EV_CLOSING and
 * flushes (fd still open here), then drops the descriptors' reference. */
void sock_fd_close(struct sock *so, int fd);
/* Re-initialise every socket's locks in a forked child. */
void sock_atfork_child(void);

/* Data path.  These return a byte count, or -errno. */
ssize_t sock_recvmsg(struct sock *so, int fd, struct msghdr *msg, int flags);
ssize_t sock_sendmsg(struct sock *so, int fd, const struct msghdr *msg,
    int flags);
/* sock_recvmsg()/sock_sendmsg() of one buffer (recv, read, send, write):
 * the usual case is cheaper than through a msghdr. */
ssize_t sock_recv(struct sock *so, int fd, void *buf, size_t len, int flags);
ssize_t sock_send(struct sock *so, int fd, const void *buf, size_t len,
    int flags);
/* Does the library hold something for the application to read (data, an
 * empty datagram, a pending error)? */
bool sock_rq_pending(struct sock *so);
/* Bytes ready for the application (FIONREAD) from the library's queue. */
size_t sock_rq_bytes(struct sock *so);
/* Push out what the library itself just wrote on a TCP socket with
 * Nagle's algorithm on (injections, late remainder flushes). */
void sock_push(struct sock *so, int fd);
/* Flush the transmit remainder without blocking; 0, EAGAIN or an errno. */
int sock_flush(struct sock *so, int fd);

/* Control operations: run the filters top-down.  Return -1 (SOF_RVAL_
 * CONTINUE: the caller must now do the real call), 0 (a filter returned
 * SOF_RVAL_RETURN: report success) or a positive errno (report failure). */
int stk_bind(struct sock *so, struct sockaddr *addr, socklen_t *len);
int stk_listen(struct sock *so, int *backlog);
int stk_connect(struct sock *so, struct sockaddr *addr, socklen_t *len);
int stk_shutdown(struct sock *so, int *how);
int stk_getsockname(struct sock *so, struct sockaddr *addr, socklen_t *len);
int stk_getpeername(struct sock *so, struct sockaddr *addr, socklen_t *len);
int stk_setsockopt(struct sock *so, int level, int name, void *val,
    socklen_t *len);
int stk_getsockopt(struct sock *so, int level, int name, void *val,
    socklen_t *len);
int stk_ioctl(struct sock *so, int cmd, intptr_t arg, int32_t *rvalp);
/* After a real connect/shutdown/EOF: tell the filters (bottom-up). */
void stk_notify(struct sock *so, sof_event_t ev, uintptr_t arg);
/* Any operation but SOL_FILTER closes the FIL_ATTACH window. */
static inline void
sock_op_issued(struct sock *so)
{
	if (atomic_load_explicit(&so->so_flags, memory_order_relaxed) &
	    SO_F_FILOP_OK)
		atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_FILOP_OK);
}
/* SOL_FILTER.  The socket object may not exist yet for FIL_ATTACH on a
 * socket the configuration did not mark; the caller creates it first. */
int stk_fil_attach(struct sock *so, const char *name);
int stk_fil_detach(struct sock *so, const char *name);
int stk_fil_list(struct sock *so, struct fil_info *fi, socklen_t *len);

/* stack.c internals used by sock.c. */
int stk_attach_auto(struct sock *so);
int stk_inherit(struct sock *lso, struct sock *so, struct sockaddr *laddr,
    socklen_t laddrlen, struct sockaddr *faddr, socklen_t faddrlen,
    bool *deferred);
int stk_accept_deferred(struct sock *so);
bool stk_deferred(struct sock *so);
bool stk_defers(struct sock *so);
/* SO_ACCEPTFILTER set (on a listener), cleared, read: 0 or an errno. */
int stk_af_set(struct sock *so, const struct accept_filter_arg *afa);
int stk_af_clear(struct sock *so);
int stk_af_get(struct sock *so, struct accept_filter_arg *afa);
/* A socket object with no filter, for options that attach later. */
int sock_create_empty(int fd, int family, int type, int proto,
    struct cfg_snap *cs, struct sock **sop);
void stk_detach_all(struct sock *so);
void stk_recompute(struct sock *so);
void stk_mblk_prop(struct sock *so);
mblk_t *stk_data_out(struct sock *so, struct stk_inst *from, mblk_t *mp,
    struct nmsghdr *msg, sof_rval_t *rvalp);
mblk_t *stk_data_in(struct sock *so, struct stk_inst *from, mblk_t *mp,
    int flags);
mblk_t *stk_data_in_proc(struct sock *so, mblk_t *mp, size_t *sizep);
mblk_t *stk_data_in_now(struct sock *so, mblk_t *mp, int flags, size_t *sizep);
/* Count delivered bytes against every active filter (inline: one per
 * receive). */
static inline void
stk_count_in(struct sock *so, size_t n)
{
	struct stk_inst *inst;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up)
		if (!(inst->si_flags & SI_F_BYPASS))
			atomic_fetch_add_explicit(&inst->si_stats->sf_bytes_in,
			    n, memory_order_relaxed);
}
/* sock.c: injection entry points behind sof_inject_data_*. */
int sock_inject_out(struct sock *so, struct stk_inst *inst, mblk_t *mp,
    struct nmsghdr *msg, boolean_t *flowctrl);
int sock_inject_in(struct sock *so, struct stk_inst *inst, mblk_t *mp,
    boolean_t *flowctrl);

/* Readiness.  sock_rdy_update(so) recomputes so_rdy from the state; when
 * it changed, or when force is set (new data behind SO_RDY_IN), it calls
 * sock_rdy_hook (so_lock held) and wakes every waiter. */
void sock_rdy_update(struct sock *so, bool force);
/* The bits so_rdy should hold now (a hint when read without so_lock). */
static inline unsigned
sock_rdy_compute(struct sock *so)
{
	unsigned sf = atomic_load_explicit(&so->so_flags, memory_order_relaxed);
	unsigned r = 0;

	if (SO_LOAD(so->so_rq_head) != NULL || SO_LOAD(so->so_rx_error) != 0 ||
	    so->so_aq_ready > 0)
		r |= SO_RDY_IN;
	if ((sf & SO_F_RCVFC) || so->so_aq != NULL)
		r |= SO_RDY_MASKIN;
	if (SO_LOAD(so->so_tx_rem) != NULL || (sf & SO_F_SNDFC))
		r |= SO_RDY_MASKOUT;
	return r;
}
/* After an operation that may have changed the state: a few loads when
 * nothing changed, which is the rule on the data path. */
static inline void
sock_rdy_check(struct sock *so)
{
	if (sock_rdy_compute(so) !=
	    atomic_load_explicit(&so->so_rdy, memory_order_relaxed))
		sock_rdy_update(so, false);
}
extern void (*sock_rdy_hook)(struct sock *so, unsigned old, unsigned now);
/* Called when the last descriptor of so is closing (epoll registrations
 * of it die with the file). */
extern void (*sock_close_hook)(struct sock *so);
/* Called when the last active filter of so is bypassed: the interposer
 * may put its descriptor back on the unfiltered fast path. */
extern void (*sock_bypass_hook)(struct sock *so);
/* Register/unregister a waiter (the caller's eventfd) on so. */
void sock_wait_add(struct sock *so, struct sock_waiter *w);
void sock_wait_del(struct sock *so, struct sock_waiter *w);
/* This thread's eventfd for waiting (created on first use), or -1. */
int sock_thread_evfd(void);
/* Wait for events on fd or a change of so's library state; 0, EAGAIN
 * (timed out) or EINTR. */
int sock_wait(struct sock *so, int fd, short events, int timeout_ms);
/* SO_RCVTIMEO or SO_SNDTIMEO of fd in ms, -1 when unset. */
int sock_timeo_ms(int fd, int name);
/* Settle a nonblocking connect from poll revents (-1: look now). */
void sock_conn_settle(struct sock *so, int fd, int revents);
/* The connect ended with err (0: connected): tell the filters once. */
void sock_conn_done(struct sock *so, int err);
/* Sends from signal handlers (sockstage.c).  sock_depth counts this
 * thread's nesting in the library's data path. */
extern __thread int sock_depth __attribute__((tls_model("initial-exec")));
extern atomic_int sock_staged;
ssize_t sock_stage_put(struct sock *so, const struct msghdr *msg);
/* Send every staged byte (not inside the library). */
void sock_stage_drain(void);
void sock_stage_free(struct sock *so);
/* Send so's staged bytes now (shutdown, last close). */
void sock_stage_flush(struct sock *so);
/* Deferred connections (accq.c). */
/* The library takes lso's connections from now on (svc thread). */
int aq_enable(struct sock *lso, int lfd);
/* This process waits on the listener (accept/poll/epoll): it takes the
 * connections (its service thread watches the listener). */
void aq_attend(struct sock *lso, int lfd);
/* A connection accept() got that a filter deferred: queue it. */
void aq_park(struct sock *lso, int fd, struct sock *so);
/* accept() on a queueing listener: fd (*sop its object, maybe NULL) or
 * -errno. */
int aq_accept(struct sock *lso, int lfd, int flags, bool nonblock,
    struct sock **sop);
/* sof_newconn_ready / sof_newconn_close on a queued connection. */
void aq_ready(struct sock *so);
void aq_newconn_close(struct sock *so);
/* SO_ACCEPTFILTER removed: release every deferred connection. */
void aq_release_all(struct sock *lso);
/* The service thread: close what sof_newconn_close() marked. */
void aq_reap(void);
/* The listener's last close: every queued connection is closed. */
void aq_destroy(struct sock *lso);
/* Ready connections (and *ndeferred deferred ones) of a listener. */
int aq_count(struct sock *lso, int *ndeferred);
/* sock.c for accq.c: a connection's object from its listener's filters
 * without waiting for a deferral (0 or errno; *sop may be NULL). */
int sock_accept_new(struct sock *lso, int fd, struct sock **sop,
    bool *deferred);
/* Read what the kernel has into the receive queue, without blocking. */
ssize_t sock_pull(struct sock *so, int fd);
/* data_in and its queueing against timers and injections in: held by
 * sock_fill, sock_inject_in and the service thread's timers. */
void sock_inlock(struct sock *so);
void sock_inunlock(struct sock *so);
/* Call fn on every live socket object (a reference held meanwhile). */
void sock_foreach(void (*fn)(struct sock *so));
/* Move a descriptor of the library's own out of the program's way (to a
 * high number, so the program's lowest-free-number reuse is unchanged);
 * returns the descriptor to use. */
int sock_fd_high(int fd);
/* Drain it after a wake-up. */
void sock_thread_evfd_drain(int fd);

/* ---------------------------------------------------------------------
 * svc.c: the per-process service thread (timers, remainder flushing).
 * ------------------------------------------------------------------- */

/* A descriptor the service thread watches for a socket. */
struct svc_watch;
typedef void (*svc_watch_fn)(struct svc_watch *w, uint32_t events);
/* Watch a dup of fd for events (epoll flags); fn runs on the thread.
 * NULL on failure. */
struct svc_watch *svc_watch_add(struct sock *so, int fd, uint32_t events,
    svc_watch_fn fn);
void svc_watch_mod(struct svc_watch *w, uint32_t events);
/* End it (once; waits for a running fn unless called from it). */
void svc_watch_end(struct svc_watch *w);
int svc_watch_fd(struct svc_watch *w);
struct sock *svc_watch_sock(struct svc_watch *w);
/* Flush so's transmit remainder when the kernel can take it (a dup of fd
 * is kept, so a closed or reused number is never written). */
void svc_watch_out(struct sock *so, int fd);
/* The socket's last descriptor is closing: forget its watch. */
void svc_unwatch(struct sock *so);
/* Cancel every timer of inst; waits for one running on another thread. */
void svc_cancel_inst(struct stk_inst *inst);
/* Wake the service thread, if it runs, to drain staged sends. */
void svc_kick(void);
/* Is the calling thread the service thread? */
bool svc_self(void);
void svc_atfork_prepare(void);
void svc_atfork_parent(void);
void svc_atfork_child(void);
/* ---------------------------------------------------------------------
 * dmn.c: the library's side of soconfigd (layout in dmn.h).  Never blocks,
 * never fails the program: every failure is logged once and ignored.
 * ------------------------------------------------------------------- */

struct dmn_proc;

/* dmn_init(sockpath, secure, attach): where the daemon's socket is (NULL:
 * the default; "none": no daemon); in secure mode only a configuration
 * published by root is taken; attach is SOCKFILTER_ATTACH ("a,b": these
 * configured filters become automatic in this process, the launcher's
 * -a) or NULL.  Called once by the interposer's init. */
void dmn_init(const char *sockpath, bool secure, const char *attach);
/* The running daemon's configuration (one reference), or NULL: read the
 * file.  Also registers this process's counters with the daemon. */
struct cfg_snap *dmn_config_initial(void);
/* At every socket creation: installs a newly published configuration
 * (sf_config_set) and registers with a daemon that (re)appeared.  No
 * system call unless something changed, or, while no daemon answers,
 * once every DMN_RETRY_SECS. */
void dmn_tick(void);
#define DMN_RETRY_SECS 2
/* Apply SOCKFILTER_ATTACH to a snapshot before it is installed. */
void dmn_attach_env(struct cfg_snap *cs);
/* The per-socket view: called after every change of so's stack. */
void dmn_sock_update(struct sock *so);
/* The process's region (created on first use), for stats.c. */
struct dmn_proc *dmn_region(void);

/* The configuration in force for new sockets (one reference taken). */
struct cfg_snap *sf_config_get(void);
/* Replace it (takes over the caller's reference). */
void sf_config_set(struct cfg_snap *cs);

#endif /* SF_CORE_H */
