/*
 * accq.c: deferred connections (the Solaris design's section 5.2).
 *
 * A listener some filter deferred a connection on takes its connections
 * from the kernel itself, on the service thread, and keeps them in two
 * queues the program cannot see: deferred (oldest first) and ready (in
 * the order their filters released them).  A deferred connection is
 * read by the service thread, so its filters keep seeing data_in, and
 * moves to the ready queue when every deferring filter called
 * sof_newconn_ready().  accept() takes from the ready queue only, and the
 * listener is readable (poll, epoll) exactly while that queue is not
 * empty: the kernel's readability of the listener belongs to us.
 *
 * Bounds: deferred plus ready connections never exceed the listener's
 * backlog.  A new connection on a full queue closes the oldest deferred
 * one (counted); with nothing deferred the library stops taking
 * connections and the kernel's backlog pushes back, as without us.  A
 * connection whose peer leaves while deferred is dropped and counted.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "libc.h"
#include "log.h"

#define AQ_BURST 64 /* connections taken per wake-up */

enum { AQ_DEFERRED, AQ_READY, AQ_GONE };

struct aq_conn {
	struct sock *ac_so;         /* the queue's reference */
	int ac_fd;                  /* the library's descriptor of it */
	int ac_state;               /* AQ_* (listener's so_lock) */
	bool ac_close;              /* sof_newconn_close() asked */
	struct svc_watch *ac_watch; /* reading while deferred */
	struct aq_conn *ac_next;
};

struct sock_aq {
	struct svc_watch *aq_watch; /* the listener, in process aq_pid */
	pid_t aq_pid;
	int aq_backlog;
	bool aq_paused; /* full of ready connections: kernel holds more */
	struct aq_conn *aq_dhead, *aq_dtail;
	struct aq_conn *aq_rhead, *aq_rtail;
	int aq_ndef, aq_nready;
};

static atomic_int aq_reap_pending;
/* Set while the service thread feeds a deferred connection's filters:
 * a release then waits until the filters returned (aq_pull()). */
static __thread struct sock *aq_pulling
    __attribute__((tls_model("initial-exec")));

static ssize_t
aq_pull(struct sock *so, int fd)
{
	ssize_t n;

	aq_pulling = so;
	n = sock_pull(so, fd);
	aq_pulling = NULL;
	return n;
}

static void
aq_push(struct aq_conn **head, struct aq_conn **tail, struct aq_conn *ac)
{
	ac->ac_next = NULL;
	if (*tail != NULL)
		(*tail)->ac_next = ac;
	else
		*head = ac;
	*tail = ac;
}

static void
aq_unlink(struct aq_conn **head, struct aq_conn **tail, struct aq_conn *ac)
{
	struct aq_conn **pp, *prev = NULL;

	for (pp = head; *pp != NULL; prev = *pp, pp = &(*pp)->ac_next)
		if (*pp == ac) {
			*pp = ac->ac_next;
			if (*tail == ac)
				*tail = prev;
			return;
		}
}

/* Close a connection the program never saw (no lock held). */
static void
aq_close_conn(struct aq_conn *ac)
{
	struct sock *so = ac->ac_so;

	if (ac->ac_watch != NULL)
		svc_watch_end(ac->ac_watch);
	ac->ac_watch = NULL;
	if (so != NULL) {
		so->so_aq_lso = NULL;
		so->so_aq_conn = NULL;
		sock_fd_close(so, ac->ac_fd); /* CLOSING, then detaches */
	}
	(void)LIBC(close)(ac->ac_fd);
	free(ac);
}

/* Drop a deferred connection: counted in defer_closed. */
static void
aq_drop(struct sock *lso, struct aq_conn *ac, bool backlog)
{
	struct sock_aq *aq;

	pthread_mutex_lock(&lso->so_lock);
	aq = lso->so_aq;
	if (aq == NULL || ac->ac_state != AQ_DEFERRED) {
		pthread_mutex_unlock(&lso->so_lock);
		return;
	}
	aq_unlink(&aq->aq_dhead, &aq->aq_dtail, ac);
	aq->aq_ndef--;
	ac->ac_state = AQ_GONE;
	pthread_mutex_unlock(&lso->so_lock);
	atomic_fetch_add(&st_global.sg_defer_closed, 1);
	if (backlog)
		atomic_fetch_add(&st_global.sg_defer_close_backlog, 1);
	aq_close_conn(ac);
}

/* Every deferring filter released it: to the ready queue. */
static void
aq_promote(struct sock *so)
{
	struct sock *lso = so->so_aq_lso;
	struct aq_conn *ac = so->so_aq_conn;
	struct sock_aq *aq;

	if (lso == NULL || ac == NULL)
		return;
	pthread_mutex_lock(&lso->so_lock);
	aq = lso->so_aq;
	if (aq == NULL || ac->ac_state != AQ_DEFERRED) {
		pthread_mutex_unlock(&lso->so_lock);
		return;
	}
	/* The program reads the rest itself, from the kernel.  The watch
	 * only stops here, before the connection can be taken: aq_accept()
	 * ends it, waiting for a running aq_conn_fn() that may still look
	 * at ac. */
	if (ac->ac_watch != NULL)
		svc_watch_mod(ac->ac_watch, 0);
	aq_unlink(&aq->aq_dhead, &aq->aq_dtail, ac);
	aq->aq_ndef--;
	aq_push(&aq->aq_rhead, &aq->aq_rtail, ac);
	aq->aq_nready++;
	lso->so_aq_ready = aq->aq_nready;
	ac->ac_state = AQ_READY;
	pthread_mutex_unlock(&lso->so_lock);
	sock_rdy_update(lso, true);
}

/* The service thread: a deferred connection is readable. */
static void
aq_conn_fn(struct svc_watch *w, uint32_t events)
{
	struct sock *so = svc_watch_sock(w);
	struct sock *lso = so->so_aq_lso;
	struct aq_conn *ac = so->so_aq_conn;
	ssize_t n;

	(void)events;
	if (lso == NULL || ac == NULL || ac->ac_state != AQ_DEFERRED)
		return;
	n = aq_pull(so, svc_watch_fd(w));
	if (ac->ac_close) {
		aq_drop(lso, ac, false);
	} else if (!stk_deferred(so)) {
		aq_promote(so);
	} else if (n == 0 || (n < 0 && n != -EAGAIN && n != -EINTR)) {
		/* Illumos and FreeBSD keep it; nobody will ever want it. */
		sf_log(SF_LOG_DEBUG, "deferred connection closed by its peer");
		aq_drop(lso, ac, false);
	}
}

/* Make room for one more (listener's so_lock held).  Returns the oldest
 * deferred connection to close, or NULL; *full when nothing can go. */
static struct aq_conn *
aq_room(struct sock_aq *aq, bool *full)
{
	struct aq_conn *ac = NULL;

	*full = false;
	if (aq->aq_ndef + aq->aq_nready < aq->aq_backlog)
		return NULL;
	if ((ac = aq->aq_dhead) == NULL) {
		*full = true;
		return NULL;
	}
	aq_unlink(&aq->aq_dhead, &aq->aq_dtail, ac);
	aq->aq_ndef--;
	ac->ac_state = AQ_GONE;
	return ac;
}

/* Queue connection fd of so (NULL: unfiltered) on lso. */
static void
aq_queue(struct sock *lso, struct sock *so, int fd, bool deferred)
{
	struct sock_aq *aq;
	struct aq_conn *ac, *victim;
	bool full;

	if ((ac = calloc(1, sizeof(*ac))) == NULL) {
		if (so != NULL)
			sock_fd_close(so, fd);
		(void)LIBC(close)(fd);
		return;
	}
	ac->ac_so = so;
	ac->ac_fd = fd;
	if (so != NULL) {
		so->so_aq_lso = lso;
		so->so_aq_conn = ac;
	}
	if (deferred && (ac->ac_watch = svc_watch_add(so, fd,
	                     EPOLLIN | EPOLLRDHUP, aq_conn_fn)) == NULL)
		sf_log(SF_LOG_WARN, "cannot watch a deferred connection");
	pthread_mutex_lock(&lso->so_lock);
	aq = lso->so_aq;
	victim = aq_room(aq, &full);
	if (deferred) {
		ac->ac_state = AQ_DEFERRED;
		aq_push(&aq->aq_dhead, &aq->aq_dtail, ac);
		aq->aq_ndef++;
	} else {
		ac->ac_state = AQ_READY;
		aq_push(&aq->aq_rhead, &aq->aq_rtail, ac);
		aq->aq_nready++;
		lso->so_aq_ready = aq->aq_nready;
	}
	pthread_mutex_unlock(&lso->so_lock);
	if (victim != NULL) {
		atomic_fetch_add(&st_global.sg_defer_closed, 1);
		atomic_fetch_add(&st_global.sg_defer_close_backlog, 1);
		aq_close_conn(victim);
	}
	if (!deferred)
		sock_rdy_update(lso, true);
	/* Data may have come with the connection; filters may already be
	 * done with it.  Only on the service thread: elsewhere (aq_park, in
	 * the program's accept) the watch does it, since a release here
	 * would wait in svc_watch_end() for the watch's function, which
	 * waits for the so_rxlock sock_pull() holds, and since the service
	 * thread may already have closed and freed ac. */
	if (deferred && svc_self() && so->so_aq_conn == ac &&
	    ac->ac_watch != NULL) {
		(void)aq_pull(so, fd);
		if (!stk_deferred(so))
			aq_promote(so);
	}
}

/* A connection taken from the kernel: its filters decide. */
static void
aq_take(struct sock *lso, int fd)
{
	struct sock *so = NULL;
	bool deferred = false;
	int error;

	fd = sock_fd_high(fd);
	error = sock_accept_new(lso, fd, &so, &deferred);
	if (error != 0) {
		(void)LIBC(close)(fd);
		return;
	}
	aq_queue(lso, so, fd, deferred);
}

/* The service thread: the listener has connections in the kernel. */
static void
aq_listen_fn(struct svc_watch *w, uint32_t events)
{
	struct sock *lso = svc_watch_sock(w);
	int i, fd;

	(void)events;
	for (i = 0; i < AQ_BURST; i++) {
		struct sock_aq *aq;
		struct aq_conn *victim;
		bool full;

		/* The listener itself may be blocking (its file status is
		 * the program's): look before taking.  Look before making
		 * room too: a deferred connection is closed, or the failure
		 * counted, only for a connection that is waiting. */
		if (i > 0) {
			struct pollfd p = {.fd = svc_watch_fd(w),
			    .events = POLLIN};

			if (LIBC(poll)(&p, 1, 0) <= 0)
				return;
		}
		pthread_mutex_lock(&lso->so_lock);
		if ((aq = lso->so_aq) == NULL) {
			pthread_mutex_unlock(&lso->so_lock);
			return;
		}
		victim = aq_room(aq, &full);
		if (full) {
			/* Every slot holds a ready connection: none to
			 * close, the kernel's backlog takes over. */
			aq->aq_paused = true;
			svc_watch_mod(w, 0);
			atomic_fetch_add(&st_global.sg_defer_close_failed, 1);
		}
		pthread_mutex_unlock(&lso->so_lock);
		if (victim != NULL) {
			atomic_fetch_add(&st_global.sg_defer_closed, 1);
			atomic_fetch_add(&st_global.sg_defer_close_backlog, 1);
			aq_close_conn(victim);
		}
		if (full)
			return;
		fd = LIBC(accept4)(svc_watch_fd(w), NULL, NULL,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or an error accept() will report */
		aq_take(lso, fd);
	}
}

int
aq_enable(struct sock *lso, int lfd)
{
	struct sock_aq *aq;

	pthread_mutex_lock(&lso->so_lock);
	if (lso->so_aq != NULL) {
		pthread_mutex_unlock(&lso->so_lock);
		return 0;
	}
	if ((aq = calloc(1, sizeof(*aq))) == NULL) {
		pthread_mutex_unlock(&lso->so_lock);
		return ENOMEM;
	}
	aq->aq_backlog = lso->so_backlog > 0 ? lso->so_backlog : SOMAXCONN;
	lso->so_aq = aq;
	pthread_mutex_unlock(&lso->so_lock);
	sock_rdy_update(lso, false); /* the kernel's readability is ours */
	sf_log(SF_LOG_DEBUG, "fd %d: the library takes the connections", lfd);
	return 0;
}

/*
 * The process that waits on the listener (accept, poll, epoll) takes its
 * connections; the watch starts there, not at listen(): a master that
 * listens and forks workers (nginx) must not take them itself, and a
 * forked child, with no service thread of its own yet, starts its own.
 */
void
aq_attend(struct sock *lso, int lfd)
{
	struct sock_aq *aq = lso->so_aq;
	pid_t pid;

	if (aq == NULL)
		return;
	pid = getpid();
	if (aq->aq_watch != NULL && aq->aq_pid == pid)
		return;
	pthread_mutex_lock(&lso->so_lock);
	if (lso->so_aq == aq && (aq->aq_watch == NULL || aq->aq_pid != pid)) {
		/* A parent's watch is not ours: its thread is not here. */
		aq->aq_pid = pid;
		aq->aq_paused = false;
		if ((aq->aq_watch = svc_watch_add(lso, lfd, EPOLLIN,
		         aq_listen_fn)) == NULL)
			sf_log(SF_LOG_ERR,
			    "fd %d: cannot watch the listener: held "
			    "connections wait",
			    lfd);
	}
	pthread_mutex_unlock(&lso->so_lock);
}

void
aq_park(struct sock *lso, int fd, struct sock *so)
{
	int lfd = lso->so_fd;

	if (lso->so_aq == NULL)
		(void)aq_enable(lso, lfd);
	aq_attend(lso, lfd);
	if (lso->so_aq == NULL) {
		sock_fd_close(so, fd);
		(void)LIBC(close)(fd);
		return;
	}
	(void)LIBC(fcntl)(fd, F_SETFL, LIBC(fcntl)(fd, F_GETFL) | O_NONBLOCK);
	aq_queue(lso, so, sock_fd_high(fd), true);
}

int
aq_accept(struct sock *lso, int lfd, int flags, bool nonblock,
    struct sock **sop)
{
	struct sock_aq *aq;
	struct aq_conn *ac;
	struct sock *so;
	int timeo = -2, fd, error, fl;

	*sop = NULL;
	aq_attend(lso, lfd);
	for (;;) {
		pthread_mutex_lock(&lso->so_lock);
		if ((aq = lso->so_aq) == NULL) {
			pthread_mutex_unlock(&lso->so_lock);
			return -EINVAL;
		}
		if ((ac = aq->aq_rhead) != NULL) {
			aq->aq_rhead = ac->ac_next;
			if (aq->aq_rhead == NULL)
				aq->aq_rtail = NULL;
			aq->aq_nready--;
			lso->so_aq_ready = aq->aq_nready;
			ac->ac_state = AQ_GONE;
			if (aq->aq_paused && aq->aq_watch != NULL) {
				aq->aq_paused = false;
				svc_watch_mod(aq->aq_watch, EPOLLIN);
			}
		}
		pthread_mutex_unlock(&lso->so_lock);
		if (ac != NULL)
			break;
		if (nonblock)
			return -EAGAIN;
		if (timeo == -2)
			timeo = sock_timeo_ms(lfd, SO_RCVTIMEO);
		if ((error = sock_wait(lso, lfd, POLLIN, timeo)) != 0)
			return -error;
	}
	sock_rdy_update(lso, false);
	so = ac->ac_so;
	if (ac->ac_watch != NULL)
		svc_watch_end(ac->ac_watch);
	/* The program's number: the lowest free, as accept gives. */
	fd = LIBC(fcntl)(ac->ac_fd,
	    (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
	if (fd < 0) {
		error = errno;
		ac->ac_state = AQ_GONE;
		aq_close_conn(ac);
		return -error;
	}
	(void)LIBC(close)(ac->ac_fd);
	fl = LIBC(fcntl)(fd, F_GETFL);
	(void)LIBC(fcntl)(fd, F_SETFL,
	    (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
	free(ac);
	if (so != NULL) {
		SO_STORE(so->so_fd, fd);
		so->so_aq_lso = NULL;
		so->so_aq_conn = NULL;
		if (flags & SOCK_NONBLOCK)
			atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
		else
			atomic_fetch_and(&so->so_flags,
			    ~(unsigned)SO_F_NONBLOCK);
		/* The accept callbacks a deferral held back. */
		if ((error = stk_accept_deferred(so)) != 0) {
			sock_fd_close(so, fd);
			(void)LIBC(close)(fd);
			return -error;
		}
	}
	*sop = so;
	return fd;
}

void
aq_release_all(struct sock *lso)
{
	struct aq_conn *ac;

	for (;;) {
		struct stk_inst *inst;
		struct sock *so;

		pthread_mutex_lock(&lso->so_lock);
		ac = lso->so_aq != NULL ? lso->so_aq->aq_dhead : NULL;
		so = ac != NULL ? ac->ac_so : NULL;
		if (so != NULL)
			sock_hold(so);
		pthread_mutex_unlock(&lso->so_lock);
		if (so == NULL)
			return;
		for (inst = so->so_bottom; inst != NULL; inst = inst->si_up)
			if (inst->si_flags & SI_F_DEFER)
				sof_newconn_ready((sof_handle_t)inst);
		aq_promote(so); /* also with no deferring instance left */
		sock_rele(so);
	}
}

void
aq_ready(struct sock *so)
{
	if (so->so_aq_lso != NULL && so != aq_pulling && !stk_deferred(so))
		aq_promote(so);
}

void
aq_newconn_close(struct sock *so)
{
	struct aq_conn *ac = so->so_aq_conn;

	if (ac == NULL || ac->ac_state != AQ_DEFERRED)
		return;
	ac->ac_close = true;
	atomic_store(&aq_reap_pending, 1);
	svc_kick();
}

static void
aq_reap_sock(struct sock *lso)
{
	struct sock_aq *aq;
	struct aq_conn *ac;

	for (;;) {
		pthread_mutex_lock(&lso->so_lock);
		aq = lso->so_aq;
		for (ac = aq != NULL ? aq->aq_dhead : NULL; ac != NULL;
		     ac = ac->ac_next)
			if (ac->ac_close)
				break;
		pthread_mutex_unlock(&lso->so_lock);
		if (ac == NULL)
			return;
		aq_drop(lso, ac, false);
	}
}

void
aq_reap(void)
{
	if (atomic_exchange(&aq_reap_pending, 0))
		sock_foreach(aq_reap_sock);
}

void
aq_destroy(struct sock *lso)
{
	struct sock_aq *aq;
	struct aq_conn *ac, *list[2];
	int i;

	pthread_mutex_lock(&lso->so_lock);
	aq = lso->so_aq;
	lso->so_aq = NULL;
	pthread_mutex_unlock(&lso->so_lock);
	if (aq == NULL)
		return;
	if (aq->aq_watch != NULL && aq->aq_pid == getpid())
		svc_watch_end(aq->aq_watch);
	list[0] = aq->aq_dhead;
	list[1] = aq->aq_rhead;
	for (i = 0; i < 2; i++)
		while ((ac = list[i]) != NULL) {
			list[i] = ac->ac_next;
			if (i == 0)
				atomic_fetch_add(&st_global.sg_defer_closed, 1);
			ac->ac_state = AQ_GONE;
			aq_close_conn(ac);
		}
	free(aq);
}

int
aq_count(struct sock *lso, int *ndeferred)
{
	int n;

	pthread_mutex_lock(&lso->so_lock);
	n = lso->so_aq != NULL ? lso->so_aq->aq_nready : 0;
	if (ndeferred != NULL)
		*ndeferred = lso->so_aq != NULL ? lso->so_aq->aq_ndef : 0;
	pthread_mutex_unlock(&lso->so_lock);
	return n;
}
