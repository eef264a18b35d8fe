/*
 * sockfilter.h: the socket filter API (Solaris sof_* names) for Linux
 * user space, served by the LD_PRELOAD library libsockfilter.so.
 *
 * Filter authors: build a shared object that includes this header, fill a
 * sof_ops_t with designated initializers and call sof_register() from a
 * constructor.  Applications: the SOL_FILTER socket options at the end
 * attach and list filters on one socket.
 *
 * The sof_* part is source compatible with illumos's sys/sockfilter.h.
 */
#ifndef SOCKFILTER_H
#define SOCKFILTER_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Everything declared here is exported by libsockfilter.so, which is
 * built with hidden visibility by default. */
#pragma GCC visibility push(default)

/* Library version, apart from the API version SOF_VERSION. */
#define SOF_LIB_VERSION_MAJOR 0
#define SOF_LIB_VERSION_MINOR 1
#define SOF_LIB_VERSION_PATCH 0

/* Version of the sof_ops_t contract; sof_register() requires an exact match. */
#define SOF_VERSION 1

/* ---------------------------------------------------------------------
 * Solaris base types that Linux lacks.
 * ------------------------------------------------------------------- */

#ifndef SOF_HAVE_BOOLEAN_T
#define SOF_HAVE_BOOLEAN_T 1
/* Solaris boolean: B_FALSE is 0, B_TRUE is 1. */
typedef enum { B_FALSE = 0, B_TRUE = 1 } boolean_t;
#endif
/* Solaris short names used by callback signatures. */
typedef unsigned short ushort_t;
typedef unsigned char uchar_t;

/* Credentials of the calling process (user space: no privilege sets). */
typedef struct cred {
	uid_t cr_uid; /* effective user id */
	gid_t cr_gid; /* effective group id */
	pid_t cr_pid; /* process id */
} cred_t;

/* ---------------------------------------------------------------------
 * Message blocks (STREAMS mblk_t/dblk_t).  Data lives in a refcounted
 * data block; several message blocks may point into one data block.
 * b_cont chains the blocks of one message, b_next/b_prev link messages.
 * A data block whose DB_REF() is above 1 is shared: copy before writing.
 * ------------------------------------------------------------------- */

/* Free routine of an externally supplied buffer (esballoc). */
typedef struct free_rtn {
	void (*free_func)(void *); /* called when the last reference goes */
	void *free_arg;            /* its argument */
} frtn_t;

/* Data block: the buffer and its reference count. */
typedef struct datab {
	frtn_t *db_frtnp;       /* external free routine, or NULL */
	unsigned char *db_base; /* first byte of the buffer */
	unsigned char *db_lim;  /* one past the last byte */
	uint32_t db_ref;        /* message blocks pointing here */
	unsigned char db_type;  /* M_DATA and friends */
	unsigned char db_flags; /* internal (DBLK_F_*) */
	unsigned short db_pad;
	struct msgb *db_borrowers; /* internal: blocks on a borrowed buffer */
} dblk_t;

/* Message block: a window [b_rptr, b_wptr) into a data block. */
typedef struct msgb {
	struct msgb *b_next;   /* next message on a queue */
	struct msgb *b_prev;   /* previous message on a queue */
	struct msgb *b_cont;   /* next block of this message */
	unsigned char *b_rptr; /* first unread byte */
	unsigned char *b_wptr; /* first unwritten byte */
	struct datab *b_datap; /* the data block */
	unsigned char b_band;  /* message priority band */
	unsigned char b_tag;   /* filter-private tag */
	unsigned short b_flag; /* message flags */
	struct msgb *b_dbnext; /* internal: next borrower of b_datap */
} mblk_t;

/* Message types (db_type); sockfilter passes only M_DATA. */
#define M_DATA  0x00
#define M_PROTO 0x01

/* Allocation priority argument of allocb(); accepted and ignored. */
#define BPRI_LO  1
#define BPRI_MED 2
#define BPRI_HI  3

/* Bytes in one block, data block size, head room and tail room. */
#define MBLKL(mp)    ((size_t)((mp)->b_wptr - (mp)->b_rptr))
#define MBLKSIZE(mp) ((size_t)((mp)->b_datap->db_lim - (mp)->b_datap->db_base))
#define MBLKHEAD(mp) ((size_t)((mp)->b_rptr - (mp)->b_datap->db_base))
#define MBLKTAIL(mp) ((size_t)((mp)->b_datap->db_lim - (mp)->b_wptr))
#define DB_BASE(mp)  ((mp)->b_datap->db_base)
#define DB_LIM(mp)   ((mp)->b_datap->db_lim)
#define DB_REF(mp)   ((mp)->b_datap->db_ref)
#define DB_TYPE(mp)  ((mp)->b_datap->db_type)

/* A block with at least size bytes of fresh space; NULL if out of memory. */
mblk_t *allocb(size_t size, unsigned int pri);
/* A block over the caller's buffer; frtnp->free_func runs when the last
 * reference goes.  The block starts empty (b_wptr == b_rptr == base). */
mblk_t *esballoc(unsigned char *base, size_t size, unsigned int pri,
    frtn_t *frtnp);
/* Free one block (the data block when its last reference goes). */
void freeb(mblk_t *mp);
/* Free every block of a b_cont chain. */
void freemsg(mblk_t *mp);
/* A new block sharing mp's data (reference count raised). */
mblk_t *dupb(mblk_t *mp);
/* dupb() of every block of a chain; NULL and nothing kept on failure. */
mblk_t *dupmsg(mblk_t *mp);
/* A private copy of one block's data, head room kept. */
mblk_t *copyb(mblk_t *mp);
/* copyb() of every block of a chain. */
mblk_t *copymsg(mblk_t *mp);
/* Bytes of M_DATA in a chain. */
size_t msgdsize(const mblk_t *mp);
/* Append bp at the end of mp's b_cont chain. */
void linkb(mblk_t *mp, mblk_t *bp);
/* Unlink and return mp's second block (mp->b_cont). */
mblk_t *unlinkb(mblk_t *mp);
/* Make the first len bytes (all if len is -1) contiguous in mp;
 * 1 on success, 0 on failure (mp unchanged). */
int pullupmsg(mblk_t *mp, ssize_t len);
/* Trim len bytes from the head (len > 0) or tail (len < 0);
 * 1 on success, 0 if the message holds fewer bytes (unchanged). */
int adjmsg(mblk_t *mp, ssize_t len);

/* ---------------------------------------------------------------------
 * Handles, return values and events.
 * ------------------------------------------------------------------- */

/* One filter instance on one socket. */
typedef struct __sof_handle *sof_handle_t;

/* Message header for data_out and inject_data_out (Solaris nmsghdr). */
struct nmsghdr {
	void *msg_name;           /* destination address or NULL */
	socklen_t msg_namelen;    /* its length */
	struct iovec *msg_iov;    /* unused by sockfilter (data is in mblks) */
	int msg_iovlen;           /* unused by sockfilter */
	void *msg_control;        /* ancillary data (cmsg), may be NULL */
	socklen_t msg_controllen; /* its length */
	int msg_flags;            /* MSG_* flags of the send call */
};
/* The design document's name for the same structure. */
#define nmsg_hdr nmsghdr

/* Callback verdicts.  A positive value is an errno returned to the caller. */
typedef enum {
	SOF_RVAL_DEFER = -3,  /* defer the new connection (attach_passive) */
	SOF_RVAL_DETACH = -2, /* do not attach, socket goes on (attach_*) */
	SOF_RVAL_CONTINUE =
	    -1,              /* go on with the next filter, then the kernel */
	SOF_RVAL_RETURN = 0, /* stop: the call succeeds without the kernel */
	SOF_RVAL_EINVAL = EINVAL,            /* stop: fail with EINVAL */
	SOF_RVAL_EACCES = EACCES,            /* stop: fail with EACCES */
	SOF_RVAL_ENOMEM = ENOMEM,            /* stop: fail with ENOMEM */
	SOF_RVAL_ECONNABORTED = ECONNABORTED /* stop: fail with ECONNABORTED */
} sof_rval_t;

/* Socket events delivered to sofop_notify, bottom-up. */
typedef enum {
	SOF_EV_CLOSING,           /* last close; arg: B_TRUE, may inject */
	SOF_EV_CONNECTED,         /* connect completed; arg 0 */
	SOF_EV_CONNECTFAILED,     /* connect failed; arg: errno */
	SOF_EV_DISCONNECTED,      /* connection lost; arg: errno */
	SOF_EV_CANTRECVMORE,      /* peer's EOF seen (or SHUT_RD) */
	SOF_EV_CANTSENDMORE,      /* SHUT_WR done */
	SOF_EV_INJECT_DATA_IN_OK, /* receive flow control cleared */
	SOF_EV_INJECT_DATA_OUT_OK /* send flow control cleared */
} sof_event_t;

/* ---------------------------------------------------------------------
 * Callbacks.  h is this filter's instance on the socket, cookie the value
 * the attach callback stored.  Control operations run top to bottom and
 * may rewrite their in/out arguments; data_in, data_in_proc, notify and
 * mblk_prop run bottom-up; data_out top to bottom.
 * ------------------------------------------------------------------- */

/* socket() matched an automatic filter, or FIL_ATTACH: CONTINUE attaches,
 * DETACH declines, an errno fails socket()/setsockopt with it. */
typedef sof_rval_t (*sof_attach_active_fn_t)(sof_handle_t h, int family,
    int type, int proto, cred_t *cr, void **cookiep);
/* accept() created a socket under a listener that has this filter:
 * CONTINUE attaches, DETACH declines, DEFER holds the connection until
 * sof_newconn_ready(), an errno (ECONNABORTED) drops the connection. */
typedef sof_rval_t (*sof_attach_passive_fn_t)(sof_handle_t h, sof_handle_t ph,
    void *parg, struct sockaddr *laddr, socklen_t laddrlen,
    struct sockaddr *faddr, socklen_t faddrlen, void **cookiep);
/* Last callback of an instance: free everything tied to the socket. */
typedef void (*sof_detach_fn_t)(sof_handle_t h, void *cookie, cred_t *cr);
/* Data from the kernel, before it is queued.  Return the (possibly new)
 * chain with *sizep updated, or NULL when consumed (free it yourself). */
typedef mblk_t *(*sof_data_in_fn_t)(sof_handle_t h, void *cookie, mblk_t *mp,
    int flags, size_t *sizep);
/* Queued data, once per message, just before it is copied to the caller. */
typedef mblk_t *(*sof_data_in_proc_fn_t)(sof_handle_t h, void *cookie,
    mblk_t *mp, cred_t *cr, size_t *sizep);
/* Data the application sends.  Return the chain to pass on, or NULL with
 * *rvalp: SOF_RVAL_RETURN swallows it (reported sent), an errno fails. */
typedef mblk_t *(*sof_data_out_fn_t)(sof_handle_t h, void *cookie, mblk_t *mp,
    struct nmsghdr *msg, cred_t *cr, sof_rval_t *rvalp);
/* Control operations: CONTINUE goes on, RETURN succeeds at once, an errno
 * fails the call.  Arguments may be rewritten in place. */
typedef sof_rval_t (*sof_bind_fn_t)(sof_handle_t h, void *cookie,
    struct sockaddr *addr, socklen_t *addrlen, cred_t *cr);
typedef sof_rval_t (
    *sof_listen_fn_t)(sof_handle_t h, void *cookie, int *backlog, cred_t *cr);
typedef sof_rval_t (*sof_accept_fn_t)(sof_handle_t h, void *cookie, cred_t *cr);
typedef sof_rval_t (*sof_connect_fn_t)(sof_handle_t h, void *cookie,
    struct sockaddr *addr, socklen_t *addrlen, cred_t *cr);
typedef sof_rval_t (
    *sof_shutdown_fn_t)(sof_handle_t h, void *cookie, int *how, cred_t *cr);
typedef sof_rval_t (*sof_getsockname_fn_t)(sof_handle_t h, void *cookie,
    struct sockaddr *addr, socklen_t *addrlen, cred_t *cr);
typedef sof_rval_t (*sof_getpeername_fn_t)(sof_handle_t h, void *cookie,
    struct sockaddr *addr, socklen_t *addrlen, cred_t *cr);
typedef sof_rval_t (*sof_setsockopt_fn_t)(sof_handle_t h, void *cookie,
    int level, int name, void *val, socklen_t *vallen, cred_t *cr);
typedef sof_rval_t (*sof_getsockopt_fn_t)(sof_handle_t h, void *cookie,
    int level, int name, void *val, socklen_t *vallen, cred_t *cr);
typedef sof_rval_t (*sof_ioctl_fn_t)(sof_handle_t h, void *cookie, int cmd,
    intptr_t arg, int mode, int32_t *rvalp, cred_t *cr);
/* Block properties of outgoing data: largest block (-1: no limit), head
 * room and tail room reserved in every block the library allocates. */
typedef void (*sof_mblk_prop_fn_t)(sof_handle_t h, void *cookie,
    ssize_t *maxblk, ushort_t *wroff, ushort_t *tail);
/* A socket event (sof_event_t) with its argument. */
typedef void (*sof_notify_fn_t)(sof_handle_t h, void *cookie, sof_event_t event,
    uintptr_t arg);

/*
 * The entry points of a filter.  Every slot may be NULL.  The framework
 * calls sofop_attach_* before, and sofop_detach after, every other entry
 * point of an instance, and never two of attach/detach at once for one
 * socket.  sofop_accept is the illumos name; sofop_accepted (the man
 * page's) names the same slot.  sof_register() copies the table, so the
 * layout is ABI: new slots go in the spare ones at the end.
 */
typedef struct sof_ops {
	sof_attach_active_fn_t sofop_attach_active;
	sof_attach_passive_fn_t sofop_attach_passive;
	sof_detach_fn_t sofop_detach;
	sof_data_in_fn_t sofop_data_in;
	sof_data_in_proc_fn_t sofop_data_in_proc;
	sof_data_out_fn_t sofop_data_out;
	sof_bind_fn_t sofop_bind;
	sof_listen_fn_t sofop_listen;
	sof_connect_fn_t sofop_connect;
	union {
		sof_accept_fn_t sofop_accept;
		sof_accept_fn_t sofop_accepted;
	};
	sof_shutdown_fn_t sofop_shutdown;
	sof_getsockname_fn_t sofop_getsockname;
	sof_getpeername_fn_t sofop_getpeername;
	sof_setsockopt_fn_t sofop_setsockopt;
	sof_getsockopt_fn_t sofop_getsockopt;
	sof_ioctl_fn_t sofop_ioctl;
	sof_mblk_prop_fn_t sofop_mblk_prop;
	sof_notify_fn_t sofop_notify;
	void (*sofop_spare[8])(void); /* reserved, leave NULL */
} sof_ops_t;

/* The man page's type name for the accept slot. */
typedef sof_accept_fn_t sof_accepted_fn_t;

/* Register filter name with its callbacks; 0, or EINVAL (bad version or
 * arguments), EEXIST (name taken), ENOMEM.  flags: 0 or SOF_ATT_SAFE. */
int sof_register(int version, const char *name, const sof_ops_t *ops,
    int flags);
/* Accepted for illumos compatibility: sockfilter lets FIL_ATTACH happen
 * only before the first other operation, whatever this flag says. */
#define SOF_ATT_SAFE 0x1
/* sockfilter extension: the filter defers connections (an accept filter).
 * A listener with it takes its connections into the library from
 * listen() on, so that poll and epoll wake only for released ones. */
#define SOF_DEFERS 0x100
/* Unregister; 0, ENXIO if unknown, EBUSY while attached to a socket. */
int sof_unregister(const char *name);

/* Release a connection this instance deferred; it is accepted once every
 * deferring filter released it. */
void sof_newconn_ready(sof_handle_t h);
/* Move a deferred connection to another listener (illumos private);
 * sockfilter does not support it and returns B_FALSE. */
boolean_t sof_newconn_move(sof_handle_t h, sof_handle_t newparent);
/* Stop calling this instance (detach still comes); cannot be undone. */
void sof_bypass(sof_handle_t h);
/* The instance's cookie. */
void *sof_get_cookie(sof_handle_t h);
/* Atomically replace the cookie if it equals old; returns the previous. */
void *sof_cas_cookie(sof_handle_t h, void *old, void *new_cookie);
/* Send mp to the peer through the filters below h; 0 or an errno (mp is
 * freed either way); *flowctrl set when the socket is flow controlled. */
int sof_inject_data_out(sof_handle_t h, mblk_t *mp, struct nmsghdr *msg,
    boolean_t *flowctrl);
/* Queue mp for the application through the filters above h; 0 or an
 * errno (mp freed either way); *flowctrl as above.  flags must be 0. */
int sof_inject_data_in(sof_handle_t h, mblk_t *mp, size_t len, int flags,
    boolean_t *flowctrl);
/* Assert (B_TRUE) or clear this instance's receive flow control. */
void sof_rcv_flowctrl(sof_handle_t h, boolean_t enable);
/* Assert (B_TRUE) or clear this instance's send flow control. */
void sof_snd_flowctrl(sof_handle_t h, boolean_t enable);

/* ---------------------------------------------------------------------
 * sockfilter extensions (not in illumos).  Test SOF_HAVE_* to use them.
 * ------------------------------------------------------------------- */

/* sof_get_param() exists. */
#define SOF_HAVE_PARAMS 1
/* The string value of key in the params group of this instance's filter
 * in the configuration (numbers and booleans as text); NULL if absent.
 * The string stays valid until the instance detaches. */
const char *sof_get_param(sof_handle_t h, const char *key);
/* The filter name an instance belongs to. */
const char *sof_get_name(sof_handle_t h);
/* The descriptor the application used for the socket, or -1. */
int sof_get_fd(sof_handle_t h);
/* Runtime library version as MAJOR*10000 + MINOR*100 + PATCH. */
int sof_lib_version(void);

/* sof_timer_arm() and sof_timer_cancel() exist. */
#define SOF_HAVE_TIMERS 1
/* A timer callback: runs on the library's service thread, never at the
 * same time as the socket's data_in callbacks (so what data_in let
 * through is queued before anything the timer injects in); it may
 * inject, flow-control, release or close a deferred connection. */
typedef void (*sof_timer_fn_t)(sof_handle_t h, void *cookie, void *arg);
/* Call fn(h, cookie, arg) once, msec milliseconds from now.  Returns a
 * timer id (never 0), or 0 with errno set (ENOMEM, EINVAL).  Every
 * timer of an instance is cancelled before its detach callback. */
unsigned long sof_timer_arm(sof_handle_t h, unsigned int msec,
    sof_timer_fn_t fn, void *arg);
/* Cancel timer id of this instance; B_TRUE if it had not fired.  Called
 * from a callback of the instance, fn is known not to be running. */
boolean_t sof_timer_cancel(sof_handle_t h, unsigned long id);

/* sof_newconn_close() exists. */
#define SOF_HAVE_NEWCONN_CLOSE 1
/* Close a connection this instance deferred, before the application
 * ever sees it (later Solaris); counted in defer_closed.  Ignored on a
 * connection that is not deferred. */
void sof_newconn_close(sof_handle_t h);

/* sof_record() exists. */
#define SOF_HAVE_RECORD 1
/* Send one record of this instance's filter, a JSON object of len bytes
 * (at most 16 KiB), to soconfigd's live stream ({"cmd":"follow"},
 * `soconfig log -f`), as {"filter":NAME,"record":JSON}.  Never blocks;
 * the library's own socket, which no filter sees.  0, ENOTCONN (no
 * daemon), EINVAL, or the errno of the send (EAGAIN: the daemon is
 * behind); a record that matters must also be kept elsewhere. */
int sof_record(sof_handle_t h, const char *json, size_t len);

/* ---------------------------------------------------------------------
 * For applications: FreeBSD accept filters (SOL_SOCKET, after listen).
 * ------------------------------------------------------------------- */

/* FreeBSD's option number; unused by Linux's SOL_SOCKET options. */
#define SO_ACCEPTFILTER 0x1000

/* setsockopt(fd, SOL_SOCKET, SO_ACCEPTFILTER, &afa, sizeof afa) with
 * af_name "dataready", "httpready", "dnsready" or "tlsready" (or a
 * configured filter name); NULL removes it.  af_arg reaches the filter
 * as its parameter "arg". */
struct accept_filter_arg {
	char af_name[16];
	char af_arg[256 - 16];
};

/* ---------------------------------------------------------------------
 * For applications: SOL_FILTER socket options (illumos numbers).
 * ------------------------------------------------------------------- */

#define SOL_FILTER 0xfffc /* setsockopt/getsockopt level */
#define FIL_ATTACH 0x1    /* setsockopt: attach a programmatic filter by name */
#define FIL_DETACH 0x2    /* setsockopt: detach a programmatic filter by name */
#define FIL_LIST   0x3    /* getsockopt: array of struct fil_info, top first */

#define FILNAME_MAX 32 /* filter names are at most FILNAME_MAX-1 bytes */

/* One filter of a socket's stack, as returned by FIL_LIST. */
struct fil_info {
	int fi_flags;              /* FILF_* */
	int fi_pos;                /* position, 0 is the bottom */
	char fi_name[FILNAME_MAX]; /* filter name */
};

#define FILF_PROG   0x1 /* programmatic attach */
#define FILF_AUTO   0x2 /* automatic attach */
#define FILF_BYPASS 0x4 /* filter is bypassed */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* SOCKFILTER_H */
