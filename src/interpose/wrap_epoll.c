/*
 * wrap_epoll.c: the epoll family sees what the library holds.
 *
 * A filtered socket is registered in the program's epoll set as the
 * program asked, with the program's own epoll_data, so the kernel keeps
 * doing the work and nesting (an epoll set in another, or in poll) keeps
 * working.  Two things are added, only to sets that hold a filtered
 * socket:
 *   - an eventfd in the set's interest list, readable exactly while some
 *     registration of the set has library events pending (data in a
 *     receive queue the kernel no longer has); epoll_wait turns it into
 *     the registrations' own events;
 *   - kernel readiness masked with EPOLL_CTL_MOD while the library holds
 *     it back (receive flow control: no EPOLLIN; a transmit remainder or
 *     send flow control: no EPOLLOUT), restored when that ends.
 * Sets without a filtered socket, and unfiltered descriptors, pass
 * straight to the kernel.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>

#include "interpose.h"

#define EP_NHASH 256
#define EP_MAXFD 4 /* descriptors of one set we remember (dup'ed epfds) */

struct ep_set;

/* One filtered socket in one epoll set. */
struct ep_reg {
	struct ep_set *er_set;
	struct sock *er_so; /* reference held */
	int er_fd;
	uint32_t er_events; /* what the program asked, flags included */
	epoll_data_t er_data;
	uint32_t er_kev;         /* what the kernel registration has now */
	bool er_pending;         /* library events to report */
	bool er_disarmed;        /* EPOLLONESHOT fired */
	struct ep_reg *er_snext; /* on the socket's list (so_lock) */
	struct ep_reg *er_enext; /* on the set's list (es_lock) */
	struct ep_reg *er_hnext; /* in the set's hash by epoll_data */
};

struct ep_set {
	pthread_mutex_t es_lock;
	int es_refs;          /* descriptors of the set (es_lock) */
	int es_fds[EP_MAXFD]; /* some of them, for EPOLL_CTL_MOD */
	int es_evfd;          /* in the kernel set; data es_tag */
	uint64_t es_tag;
	bool es_evset; /* es_evfd is readable */
	int es_npending;
	struct ep_reg *es_regs;
	struct ep_reg *es_hash[EP_NHASH];
	struct ep_set *es_all; /* every set, for the fork handler */
};

static _Atomic(struct ep_set *) *ep_tab; /* by epfd, FDT_SIZE slots */
static pthread_mutex_t ep_tab_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep_set *ep_all; /* under ep_tab_lock */

static struct ep_set *
ep_get(int epfd)
{
	if (ep_tab == NULL || (unsigned)epfd >= FDT_SIZE)
		return NULL;
	return atomic_load(&ep_tab[epfd]);
}

static bool
ep_tab_init(void)
{
	void *p;

	pthread_mutex_lock(&ep_tab_lock);
	if (ep_tab == NULL) {
		/* Untouched pages cost nothing. */
		p = mmap(NULL, FDT_SIZE * sizeof(*ep_tab),
		    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED)
			ep_tab = p;
	}
	pthread_mutex_unlock(&ep_tab_lock);
	return ep_tab != NULL;
}

static unsigned
ep_hash(uint64_t v)
{
	return (unsigned)((v * 0x9e3779b97f4a7c15ULL) >> 56) % EP_NHASH;
}

static int
ep_fd(struct ep_set *es)
{
	int i;

	for (i = 0; i < EP_MAXFD; i++)
		if (es->es_fds[i] >= 0)
			return es->es_fds[i];
	return -1;
}

/* The events the kernel registration should have now. */
static uint32_t
ep_kev(const struct ep_reg *er, unsigned rdy)
{
	uint32_t ev = er->er_events;

	if (er->er_disarmed)
		return ev & (EPOLLET | EPOLLONESHOT);
	if (rdy & SO_RDY_MASKIN)
		ev &= ~(uint32_t)(EPOLLIN | EPOLLRDNORM);
	if (rdy & SO_RDY_MASKOUT)
		ev &= ~(uint32_t)(EPOLLOUT | EPOLLWRNORM);
	return ev & ~(uint32_t)EPOLLEXCLUSIVE;
}

/* Library events of a registration, as the program asked for them. */
static uint32_t
ep_libev(const struct ep_reg *er, unsigned rdy)
{
	if (er->er_disarmed || !(rdy & SO_RDY_IN))
		return 0;
	return er->er_events & (EPOLLIN | EPOLLRDNORM);
}

/* es_lock held. */
static void
ep_signal(struct ep_set *es)
{
	uint64_t one = 1;

	if (!es->es_evset) {
		(void)LIBC(write)(es->es_evfd, &one, sizeof(one));
		es->es_evset = true;
	}
}

static void
ep_set_pending(struct ep_reg *er, bool on)
{
	struct ep_set *es = er->er_set;

	if (er->er_pending == on)
		return;
	er->er_pending = on;
	es->es_npending += on ? 1 : -1;
	if (on)
		ep_signal(es);
}

static void
ep_kmod(struct ep_reg *er, unsigned rdy)
{
	uint32_t kev = ep_kev(er, rdy);
	struct epoll_event ev;

	if (kev == er->er_kev)
		return;
	ev.events = kev;
	ev.data = er->er_data;
	if (LIBC(epoll_ctl)(ep_fd(er->er_set), EPOLL_CTL_MOD, er->er_fd, &ev) ==
	    0)
		er->er_kev = kev;
}

/* sock_rdy_hook: the socket's library state changed (so_lock held). */
static void
ep_rdy_hook(struct sock *so, unsigned old, unsigned now)
{
	struct ep_reg *er;

	for (er = so->so_rdy_regs; er != NULL; er = er->er_snext) {
		pthread_mutex_lock(&er->er_set->es_lock);
		ep_kmod(er, now);
		/* New data is a new edge for EPOLLET, a level otherwise. */
		if ((now & SO_RDY_IN) && ep_libev(er, now) != 0 &&
		    (!(old & SO_RDY_IN) || (er->er_events & EPOLLET) ||
		        !er->er_pending))
			ep_set_pending(er, true);
		pthread_mutex_unlock(&er->er_set->es_lock);
	}
}

/* Unlink er from its set (es_lock held); the caller frees it. */
static void
ep_unlink_set(struct ep_reg *er)
{
	struct ep_set *es = er->er_set;
	struct ep_reg **pp;

	ep_set_pending(er, false);
	for (pp = &es->es_regs; *pp != NULL; pp = &(*pp)->er_enext)
		if (*pp == er) {
			*pp = er->er_enext;
			break;
		}
	for (pp = &es->es_hash[ep_hash(er->er_data.u64)]; *pp != NULL;
	     pp = &(*pp)->er_hnext)
		if (*pp == er) {
			*pp = er->er_hnext;
			break;
		}
}

/* Unlink er from its socket (so_lock held). */
static void
ep_unlink_sock(struct ep_reg *er)
{
	struct ep_reg **pp;

	for (pp = (struct ep_reg **)&er->er_so->so_rdy_regs; *pp != NULL;
	     pp = &(*pp)->er_snext)
		if (*pp == er) {
			*pp = er->er_snext;
			break;
		}
}

/* sock_close_hook: the kernel drops the socket's registrations with the
 * file; so do we. */
static void
ep_close_hook(struct sock *so)
{
	struct ep_reg *er;

	pthread_mutex_lock(&so->so_lock);
	while ((er = so->so_rdy_regs) != NULL) {
		so->so_rdy_regs = er->er_snext;
		pthread_mutex_lock(&er->er_set->es_lock);
		ep_unlink_set(er);
		pthread_mutex_unlock(&er->er_set->es_lock);
		sock_rele(so);
		free(er);
	}
	pthread_mutex_unlock(&so->so_lock);
}

static struct ep_set *
ep_set_create(int epfd)
{
	struct epoll_event ev = {.events = EPOLLIN};
	struct ep_set *es, *old = NULL;
	int i;

	if (!ep_tab_init() || (es = calloc(1, sizeof(*es))) == NULL)
		return NULL;
	pthread_mutex_init(&es->es_lock, NULL);
	es->es_refs = 1;
	es->es_fds[0] = epfd;
	for (i = 1; i < EP_MAXFD; i++)
		es->es_fds[i] = -1;
	es->es_tag = (uint64_t)(uintptr_t)es ^ 0x5f5f736f6666696cULL;
	ev.data.u64 = es->es_tag;
	if ((es->es_evfd =
	            sock_fd_high(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))) < 0 ||
	    LIBC(epoll_ctl)(epfd, EPOLL_CTL_ADD, es->es_evfd, &ev) < 0) {
		if (es->es_evfd >= 0)
			(void)LIBC(close)(es->es_evfd);
		free(es);
		return NULL;
	}
	if (!atomic_compare_exchange_strong(&ep_tab[epfd], &old, es)) {
		/* Another thread made it first. */
		(void)LIBC(epoll_ctl)(epfd, EPOLL_CTL_DEL, es->es_evfd, NULL);
		(void)LIBC(close)(es->es_evfd);
		free(es);
		return old;
	}
	pthread_mutex_lock(&ep_tab_lock);
	es->es_all = ep_all;
	ep_all = es;
	pthread_mutex_unlock(&ep_tab_lock);
	fdt_set(epfd, FDT_EPOLL);
	return es;
}

static struct ep_reg *
ep_find(struct ep_set *es, struct sock *so, int fd)
{
	struct ep_reg *er;

	for (er = es->es_regs; er != NULL; er = er->er_enext)
		if (er->er_so == so && er->er_fd == fd)
			return er;
	return NULL;
}

static void
ep_hash_add(struct ep_set *es, struct ep_reg *er)
{
	unsigned h = ep_hash(er->er_data.u64);

	er->er_hnext = es->es_hash[h];
	es->es_hash[h] = er;
}

static int
ep_ctl_sock(int epfd, int op, int fd, struct epoll_event *ev, struct sock *so)
{
	struct ep_set *es = ep_get(epfd);
	struct epoll_event kev;
	struct ep_reg *er;
	unsigned rdy;
	int r = 0;

	if (es == NULL && op == EPOLL_CTL_ADD &&
	    (es = ep_set_create(epfd)) == NULL)
		return LIBC(epoll_ctl)(epfd, op, fd, ev); /* plain, at worst */
	if (es == NULL)
		return LIBC(epoll_ctl)(epfd, op, fd, ev);
	/* Lock order: socket, then set (as in the readiness hook). */
	pthread_mutex_lock(&so->so_lock);
	pthread_mutex_lock(&es->es_lock);
	rdy = atomic_load(&so->so_rdy);
	er = ep_find(es, so, fd);
	switch (op) {
	case EPOLL_CTL_ADD:
		if (er != NULL) {
			errno = EEXIST;
			r = -1;
			break;
		}
		if ((er = calloc(1, sizeof(*er))) == NULL) {
			errno = ENOMEM;
			r = -1;
			break;
		}
		er->er_set = es;
		er->er_so = so;
		er->er_fd = fd;
		er->er_events = ev->events;
		er->er_data = ev->data;
		er->er_kev = ep_kev(er, rdy);
		kev.events = er->er_kev | (ev->events & EPOLLEXCLUSIVE);
		kev.data = ev->data;
		if ((r = LIBC(epoll_ctl)(epfd, op, fd, &kev)) < 0) {
			free(er);
			break;
		}
		sock_hold(so);
		er->er_snext = so->so_rdy_regs;
		so->so_rdy_regs = er;
		er->er_enext = es->es_regs;
		es->es_regs = er;
		ep_hash_add(es, er);
		if (ep_libev(er, rdy) != 0)
			ep_set_pending(er, true);
		break;
	case EPOLL_CTL_MOD:
		if (er == NULL) {
			r = LIBC(epoll_ctl)(epfd, op, fd, ev);
			break;
		}
		kev.events =
		    ep_kev(&(struct ep_reg){.er_events = ev->events}, rdy);
		kev.data = ev->data;
		if ((r = LIBC(epoll_ctl)(epfd, op, fd, &kev)) < 0)
			break;
		ep_unlink_set(er); /* re-hash under the new data */
		er->er_events = ev->events;
		er->er_data = ev->data;
		er->er_disarmed = false;
		er->er_kev = kev.events;
		er->er_enext = es->es_regs;
		es->es_regs = er;
		ep_hash_add(es, er);
		if (ep_libev(er, rdy) != 0)
			ep_set_pending(er, true);
		break;
	case EPOLL_CTL_DEL:
		r = LIBC(epoll_ctl)(epfd, op, fd, ev);
		if (er != NULL) {
			ep_unlink_set(er);
			ep_unlink_sock(er);
			sock_rele(so);
			free(er);
		}
		break;
	default:
		r = LIBC(epoll_ctl)(epfd, op, fd, ev);
	}
	pthread_mutex_unlock(&es->es_lock);
	pthread_mutex_unlock(&so->so_lock);
	return r;
}

SF_EXPORT int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int r;

	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(epoll_ctl)(epfd, op, fd, ev);
	if (op != EPOLL_CTL_DEL && ev == NULL) {
		sock_rele(so);
		errno = EFAULT;
		return -1;
	}
	if (so->so_aq != NULL && op != EPOLL_CTL_DEL)
		aq_attend(so, fd); /* this process waits on the listener */
	sock_depth++;
	r = ep_ctl_sock(epfd, op, fd, ev, so);
	sock_depth--;
	sock_rele(so);
	return r;
}

/* Turn the set's eventfd into the pending registrations' events, merged
 * with what the kernel reported; returns the new count. */
static int
ep_translate(struct ep_set *es, struct epoll_event *evs, int n, int max)
{
	struct ep_reg *er;
	int i, j, out;
	bool lib = false;

	/* Drop our eventfd's entry; note the kernel's reports of oneshot
	 * registrations (the kernel has disarmed them). */
	pthread_mutex_lock(&es->es_lock);
	for (i = 0, out = 0; i < n; i++) {
		if (evs[i].data.u64 == es->es_tag) {
			lib = true;
			continue;
		}
		for (er = es->es_hash[ep_hash(evs[i].data.u64)]; er != NULL;
		     er = er->er_hnext) {
			if (er->er_data.u64 != evs[i].data.u64)
				continue;
			if (er->er_events & EPOLLONESHOT) {
				er->er_disarmed = true;
				er->er_kev = ep_kev(er, 0);
				ep_set_pending(er, false);
			}
			if (atomic_load_explicit(&er->er_so->so_flags,
			        memory_order_relaxed) &
			    SO_F_CONNECTING)
				sock_conn_settle(er->er_so, er->er_fd,
				    (int)evs[i].events);
		}
		evs[out++] = evs[i];
	}
	if (lib || es->es_npending > 0) {
		for (er = es->es_regs; er != NULL; er = er->er_enext) {
			unsigned rdy;
			uint32_t lev;

			if (!er->er_pending)
				continue;
			rdy = atomic_load(&er->er_so->so_rdy);
			if ((lev = ep_libev(er, rdy)) == 0) {
				ep_set_pending(er, false);
				continue;
			}
			for (j = 0; j < out; j++)
				if (evs[j].data.u64 == er->er_data.u64)
					break;
			if (j == out) {
				if (out == max)
					continue; /* next call */
				evs[out].events = 0;
				evs[out].data = er->er_data;
				out++;
			}
			evs[j].events |= lev;
			if (er->er_events & EPOLLONESHOT) {
				er->er_disarmed = true;
				ep_kmod(er, rdy);
			}
			if ((er->er_events & (EPOLLET | EPOLLONESHOT)) ||
			    er->er_disarmed)
				ep_set_pending(er, false);
		}
		if (es->es_npending == 0 && es->es_evset) {
			uint64_t v;

			(void)LIBC(read)(es->es_evfd, &v, sizeof(v));
			es->es_evset = false;
		}
	}
	pthread_mutex_unlock(&es->es_lock);
	return out;
}

static int64_t
ep_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The common epoll_wait: the kernel's wait, then translation; a wake-up
 * that leaves nothing for the program waits again for the time left. */
static int
ep_wait(int epfd, struct epoll_event *evs, int max, int timeout,
    const struct timespec *tmo, const sigset_t *ss, int kind)
{
	struct ep_set *es = ep_get(epfd);
	int64_t deadline = 0;
	int n;

	if (tmo != NULL)
		timeout = (int)(tmo->tv_sec * 1000 +
		                (tmo->tv_nsec + 999999) / 1000000);
	if (es == NULL || max <= 0) {
		switch (kind) {
		case 0:
			return LIBC(epoll_wait)(epfd, evs, max, timeout);
		case 1:
			return LIBC(epoll_pwait)(epfd, evs, max, timeout, ss);
		default:
			return LIBC(epoll_pwait2)(epfd, evs, max, tmo, ss);
		}
	}
	if (timeout > 0)
		deadline = ep_now_ms() + timeout;
	for (;;) {
		n = kind == 0 ? LIBC(epoll_wait)(epfd, evs, max, timeout)
		              : LIBC(epoll_pwait)(epfd, evs, max, timeout, ss);
		if (n <= 0)
			return n;
		sock_depth++;
		n = ep_translate(es, evs, n, max);
		sock_depth--;
		if (atomic_load_explicit(&sock_staged, memory_order_relaxed))
			sock_stage_drain();
		if (n > 0 || timeout == 0)
			return n;
		if (timeout > 0) {
			int64_t left = deadline - ep_now_ms();

			if (left <= 0)
				return 0;
			timeout = (int)left;
		}
	}
}

SF_EXPORT int
epoll_wait(int epfd, struct epoll_event *evs, int max, int timeout)
{
	return ep_wait(epfd, evs, max, timeout, NULL, NULL, 0);
}

SF_EXPORT int
epoll_pwait(int epfd, struct epoll_event *evs, int max, int timeout,
    const sigset_t *ss)
{
	return ep_wait(epfd, evs, max, timeout, NULL, ss, 1);
}

SF_EXPORT int
epoll_pwait2(int epfd, struct epoll_event *evs, int max,
    const struct timespec *tmo, const sigset_t *ss)
{
	return ep_wait(epfd, evs, max, tmo == NULL ? -1 : 0, tmo, ss, 2);
}

/* epoll_create/epoll_create1 pass through: a set gets its state only
 * when a filtered socket joins it.  They are wrapped so that a number
 * reused for a new set is never mistaken for an old one. */
static int
ep_created(int fd)
{
	if (fd >= 0 && fdt_peek(fd) != FDT_NOTSOCK)
		fdt_set(fd, FDT_NOTSOCK);
	return fd;
}

SF_EXPORT int
epoll_create(int size)
{
	return ep_created(LIBC(epoll_create)(size));
}

SF_EXPORT int
epoll_create1(int flags)
{
	return ep_created(LIBC(epoll_create1)(flags));
}

/* fdtable: a descriptor of a set is gone (close, or reused behind our
 * back); the last one frees the set's state. */
void
ep_forget(int epfd)
{
	struct ep_set *es;
	struct ep_reg *regs, *er;
	int i;

	if (ep_tab == NULL || (unsigned)epfd >= FDT_SIZE ||
	    (es = atomic_exchange(&ep_tab[epfd], NULL)) == NULL)
		return;
	pthread_mutex_lock(&es->es_lock);
	for (i = 0; i < EP_MAXFD; i++)
		if (es->es_fds[i] == epfd)
			es->es_fds[i] = -1;
	if (--es->es_refs > 0) {
		pthread_mutex_unlock(&es->es_lock);
		return;
	}
	regs = es->es_regs;
	es->es_regs = NULL;
	pthread_mutex_unlock(&es->es_lock);
	while ((er = regs) != NULL) {
		struct sock *so = er->er_so;

		regs = er->er_enext;
		pthread_mutex_lock(&so->so_lock);
		ep_unlink_sock(er);
		pthread_mutex_unlock(&so->so_lock);
		sock_rele(so);
		free(er);
	}
	(void)LIBC(close)(es->es_evfd);
	pthread_mutex_lock(&ep_tab_lock);
	{
		struct ep_set **pp;

		for (pp = &ep_all; *pp != NULL; pp = &(*pp)->es_all)
			if (*pp == es) {
				*pp = es->es_all;
				break;
			}
	}
	pthread_mutex_unlock(&ep_tab_lock);
	pthread_mutex_destroy(&es->es_lock);
	free(es);
}

/* fdtable: newfd is a duplicate of the set's epfd. */
void
ep_dup(int epfd, int newfd)
{
	struct ep_set *es = ep_get(epfd);
	int i;

	if (es == NULL || (unsigned)newfd >= FDT_SIZE)
		return;
	ep_forget(newfd); /* a stale set under that number */
	pthread_mutex_lock(&es->es_lock);
	es->es_refs++;
	for (i = 0; i < EP_MAXFD; i++)
		if (es->es_fds[i] < 0) {
			es->es_fds[i] = newfd;
			break;
		}
	pthread_mutex_unlock(&es->es_lock);
	atomic_store(&ep_tab[newfd], es);
}

/* A fork while another thread held a set's lock: the child's copy is
 * consistent at every unlock, it only needs usable locks. */
static void
ep_atfork_child(void)
{
	struct ep_set *es;

	pthread_mutex_init(&ep_tab_lock, NULL);
	for (es = ep_all; es != NULL; es = es->es_all)
		pthread_mutex_init(&es->es_lock, NULL);
}

__attribute__((constructor)) static void
ep_init(void)
{
	pthread_atfork(NULL, NULL, ep_atfork_child);
	sock_rdy_hook = ep_rdy_hook;
	sock_close_hook = ep_close_hook;
}
