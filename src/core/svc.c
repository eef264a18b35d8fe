/*
 * svc.c: the per-process service thread.
 *
 * Some work has no application thread to run on: a filter's timer, a
 * transmit remainder the kernel could not take while the program only
 * waits for input.  One thread per process does it, started the first
 * time such work appears (a program whose sockets never need it never
 * gets the thread) and started again, lazily, in a forked child.
 *
 * The thread waits in epoll_wait on its own epoll instance, with a
 * timeout that is the nearest timer, and an eventfd to be woken when the
 * timer list changes.  Every descriptor it uses is its own (the sockets
 * it watches are dup'ed), so a program closing or reusing a number can
 * never make it write to the wrong file.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "libc.h"
#include "log.h"

struct svc_timer {
	unsigned long st_id;
	struct stk_inst *st_inst;
	uint64_t st_when; /* CLOCK_MONOTONIC, ms */
	sof_timer_fn_t st_fn;
	void *st_arg;
	struct svc_timer *st_next; /* sorted by st_when */
};

/* A socket whose remainder waits for the kernel to take it.  The record
 * lives until the thread's next loop (svc_grave), so an event already
 * fetched for it never points at freed memory. */
struct svc_watch {
	struct sock *sw_so; /* reference held */
	int sw_fd;          /* our dup of the socket, closed at the end */
	svc_watch_fn sw_fn; /* called on the thread with the events */
	bool sw_dead;       /* ended: ignore its events (svc_lock) */
	bool sw_busy;       /* the thread is in sw_fn (svc_lock) */
	struct svc_watch *sw_next;
};

static pthread_mutex_t svc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t svc_cv = PTHREAD_COND_INITIALIZER;
static bool svc_started;
static pthread_t svc_tid;
static int svc_epfd = -1, svc_wakefd = -1;
static struct svc_timer *svc_timers;
static unsigned long svc_next_id = 1;
static struct stk_inst *svc_running; /* instance whose timer runs now */
static struct svc_watch *svc_grave;  /* ended watches, freed next loop */

static uint64_t
svc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
svc_self(void)
{
	return svc_started && pthread_equal(pthread_self(), svc_tid);
}

void
svc_kick(void)
{
	uint64_t one = 1;

	/* Async-signal-safe: a plain write to an eventfd. */
	if (svc_started && svc_wakefd >= 0)
		(void)LIBC(write)(svc_wakefd, &one, sizeof(one));
}

static void
svc_wake(void)
{
	uint64_t one = 1;

	if (svc_wakefd >= 0)
		(void)LIBC(write)(svc_wakefd, &one, sizeof(one));
}

/* End a watch once: whoever comes first (the thread when its work is
 * done, or the socket's owner).  Waits for a running sw_fn. */
void
svc_watch_end(struct svc_watch *w)
{
	struct sock *so = w->sw_so;
	int fd = w->sw_fd;

	pthread_mutex_lock(&svc_lock);
	if (w->sw_dead) {
		pthread_mutex_unlock(&svc_lock);
		return;
	}
	w->sw_dead = true;
	while (w->sw_busy && !svc_self())
		pthread_cond_wait(&svc_cv, &svc_lock);
	/* From here the thread may free w at its next loop. */
	w->sw_next = svc_grave;
	svc_grave = w;
	pthread_mutex_unlock(&svc_lock);
	(void)LIBC(epoll_ctl)(svc_epfd, EPOLL_CTL_DEL, fd, NULL);
	(void)LIBC(close)(fd);
	sock_rele(so);
}

int
svc_watch_fd(struct svc_watch *w)
{
	return w->sw_fd;
}

struct sock *
svc_watch_sock(struct svc_watch *w)
{
	return w->sw_so;
}

void
svc_watch_mod(struct svc_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	(void)LIBC(epoll_ctl)(svc_epfd, EPOLL_CTL_MOD, w->sw_fd, &ev);
}

static void
svc_dispatch(struct svc_watch *w, uint32_t events)
{
	pthread_mutex_lock(&svc_lock);
	if (w->sw_dead) {
		pthread_mutex_unlock(&svc_lock);
		return;
	}
	w->sw_busy = true;
	pthread_mutex_unlock(&svc_lock);
	w->sw_fn(w, events);
	pthread_mutex_lock(&svc_lock);
	w->sw_busy = false;
	pthread_cond_broadcast(&svc_cv);
	pthread_mutex_unlock(&svc_lock);
}

/* The remainder watch: flush; re-arm while the kernel is still full. */
static void
svc_flush_fn(struct svc_watch *w, uint32_t events)
{
	struct sock *so = w->sw_so;
	int error = sock_flush(so, w->sw_fd);

	(void)events;
	sock_push(so, w->sw_fd);
	if (error == EAGAIN && SO_LOAD(so->so_tx_rem) != NULL) {
		svc_watch_mod(w, EPOLLOUT | EPOLLONESHOT);
		return;
	}
	pthread_mutex_lock(&so->so_lock);
	if (so->so_watch == w)
		so->so_watch = NULL;
	pthread_mutex_unlock(&so->so_lock);
	svc_watch_end(w);
	sock_rdy_update(so, false);
}

/* Run every timer that is due; returns the ms to the next one, or -1. */
static int
svc_run_timers(void)
{
	struct svc_timer *t;
	uint64_t now;
	int next;

	pthread_mutex_lock(&svc_lock);
	for (;;) {
		now = svc_now();
		t = svc_timers;
		if (t == NULL || t->st_when > now)
			break;
		svc_timers = t->st_next;
		svc_running = t->st_inst;
		pthread_mutex_unlock(&svc_lock);
		/* The instance cannot detach meanwhile: detach cancels its
		 * timers and waits for svc_running to move on. */
		if (!(t->st_inst->si_flags & SI_F_BYPASS)) {
			struct sock *so = t->st_inst->si_sock;

			/* Serialized with data_in and its queueing, so that
			 * a timer's injection keeps the order of the stream
			 * (the socket cannot go: detach waits for us). */
			sock_inlock(so);
			t->st_fn((sof_handle_t)t->st_inst,
			    atomic_load(&t->st_inst->si_cookie), t->st_arg);
			sock_inunlock(so);
		}
		free(t);
		aq_reap(); /* the timer may have closed a connection */
		pthread_mutex_lock(&svc_lock);
		svc_running = NULL;
		pthread_cond_broadcast(&svc_cv);
	}
	/* Read under the lock: a cancel may free t as soon as it is let go. */
	next = t == NULL                  ? -1
	       : t->st_when - now > 60000 ? 60000
	                                  : (int)(t->st_when - now);
	pthread_mutex_unlock(&svc_lock);
	return next;
}

static void *
svc_main(void *arg)
{
	struct epoll_event evs[32];
	int timeout, n, i;

	(void)arg;
	for (;;) {
		struct svc_watch *grave;

		pthread_mutex_lock(&svc_lock);
		grave = svc_grave;
		svc_grave = NULL;
		pthread_mutex_unlock(&svc_lock);
		while (grave != NULL) {
			struct svc_watch *next = grave->sw_next;

			free(grave);
			grave = next;
		}
		sock_stage_drain();
		aq_reap();
		timeout = svc_run_timers();
		n = LIBC(epoll_wait)(svc_epfd, evs, 32, timeout);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				uint64_t v;

				(void)LIBC(read)(svc_wakefd, &v, sizeof(v));
				continue;
			}
			svc_dispatch(evs[i].data.ptr, evs[i].events);
		}
	}
	return NULL;
}

/* Start the thread if it is not running (svc_lock held).  0 or errno. */
static int
svc_start_locked(void)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	sigset_t all, old;
	pthread_attr_t attr;
	int error;

	if (svc_started)
		return 0;
	if (svc_epfd < 0 &&
	    (svc_epfd = sock_fd_high(LIBC(epoll_create1)(EPOLL_CLOEXEC))) < 0)
		return errno;
	if (svc_wakefd < 0) {
		if ((svc_wakefd = sock_fd_high(
		         eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))) < 0)
			return errno;
		if (LIBC(epoll_ctl)(svc_epfd, EPOLL_CTL_ADD, svc_wakefd, &ev) <
		    0)
			return errno;
	}
	/* The program's signals are for the program's threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	reg_serialize_begin();
	error = pthread_create(&svc_tid, &attr, svc_main, NULL);
	reg_serialize_end();
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (error != 0) {
		sf_log(SF_LOG_ERR, "cannot start the service thread: %s",
		    strerror(error));
		return error;
	}
	svc_started = true;
	sf_log(SF_LOG_DEBUG, "service thread started");
	return 0;
}

unsigned long
sof_timer_arm(sof_handle_t h, unsigned int msec, sof_timer_fn_t fn, void *arg)
{
	struct stk_inst *inst = (struct stk_inst *)(void *)h;
	struct svc_timer *t, **pp;
	unsigned long id;
	int error;

	if (inst == NULL || fn == NULL) {
		errno = EINVAL;
		return 0;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		errno = ENOMEM;
		return 0;
	}
	/* Blocking calls on the socket must now also wait for the library. */
	atomic_fetch_or(&inst->si_sock->so_flags, SO_F_ASYNC);
	t->st_inst = inst;
	t->st_when = svc_now() + msec;
	t->st_fn = fn;
	t->st_arg = arg;
	pthread_mutex_lock(&svc_lock);
	if ((error = svc_start_locked()) != 0) {
		pthread_mutex_unlock(&svc_lock);
		free(t);
		errno = error;
		return 0;
	}
	id = t->st_id = svc_next_id++;
	for (pp = &svc_timers; *pp != NULL && (*pp)->st_when <= t->st_when;
	     pp = &(*pp)->st_next)
		;
	t->st_next = *pp;
	*pp = t;
	pthread_mutex_unlock(&svc_lock);
	if (pp == &svc_timers)
		svc_wake(); /* a new nearest timer */
	return id;
}

boolean_t
sof_timer_cancel(sof_handle_t h, unsigned long id)
{
	struct svc_timer *t, **pp;

	pthread_mutex_lock(&svc_lock);
	for (pp = &svc_timers; (t = *pp) != NULL; pp = &t->st_next)
		if (t->st_id == id &&
		    t->st_inst == (struct stk_inst *)(void *)h) {
			*pp = t->st_next;
			break;
		}
	pthread_mutex_unlock(&svc_lock);
	free(t);
	return t != NULL ? B_TRUE : B_FALSE;
}

void
svc_cancel_inst(struct stk_inst *inst)
{
	struct svc_timer *t, **pp;

	pthread_mutex_lock(&svc_lock);
	for (pp = &svc_timers; (t = *pp) != NULL;)
		if (t->st_inst == inst) {
			*pp = t->st_next;
			free(t);
		} else {
			pp = &t->st_next;
		}
	/* Its timer may be running right now: detach must come after. */
	while (svc_running == inst && !svc_self())
		pthread_cond_wait(&svc_cv, &svc_lock);
	pthread_mutex_unlock(&svc_lock);
}

struct svc_watch *
svc_watch_add(struct sock *so, int fd, uint32_t events, svc_watch_fn fn)
{
	struct epoll_event ev = {.events = events};
	struct svc_watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	if ((w->sw_fd = sock_fd_high(LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, 0))) <
	    0) {
		free(w);
		return NULL;
	}
	sock_hold(so);
	w->sw_so = so;
	w->sw_fn = fn;
	ev.data.ptr = w;
	/* Under svc_lock: the thread takes it before it looks at w, which
	 * orders these stores before (the kernel does not, to a checker). */
	pthread_mutex_lock(&svc_lock);
	if (svc_start_locked() != 0 ||
	    LIBC(epoll_ctl)(svc_epfd, EPOLL_CTL_ADD, w->sw_fd, &ev) < 0) {
		pthread_mutex_unlock(&svc_lock);
		(void)LIBC(close)(w->sw_fd);
		sock_rele(so);
		free(w);
		return NULL;
	}
	pthread_mutex_unlock(&svc_lock);
	return w;
}

void
svc_watch_out(struct sock *so, int fd)
{
	pthread_mutex_lock(&so->so_lock);
	if (so->so_watch == NULL &&
	    (so->so_watch = svc_watch_add(so, fd, EPOLLOUT | EPOLLONESHOT,
	         svc_flush_fn)) == NULL)
		/* The application's next send or close still flushes it. */
		sf_log(SF_LOG_WARN,
		    "fd %d: cannot watch the transmit remainder", fd);
	pthread_mutex_unlock(&so->so_lock);
}

void
svc_unwatch(struct sock *so)
{
	struct svc_watch *w;

	pthread_mutex_lock(&so->so_lock);
	w = so->so_watch;
	so->so_watch = NULL;
	pthread_mutex_unlock(&so->so_lock);
	if (w != NULL)
		svc_watch_end(w);
}

void
svc_atfork_prepare(void)
{
	pthread_mutex_lock(&svc_lock);
}

void
svc_atfork_parent(void)
{
	pthread_mutex_unlock(&svc_lock);
}

/* The child has no service thread, and the epoll instance is shared with
 * the parent: drop ours, start afresh if timers are pending. */
void
svc_atfork_child(void)
{
	pthread_mutex_init(&svc_lock, NULL);
	pthread_cond_init(&svc_cv, NULL);
	svc_running = NULL;
	if (svc_started) {
		(void)LIBC(close)(svc_epfd);
		(void)LIBC(close)(svc_wakefd);
		svc_epfd = svc_wakefd = -1;
		svc_started = false;
	}
	if (svc_timers != NULL && svc_start_locked() != 0)
		sf_log(SF_LOG_WARN, "forked child: timers will not run");
}
