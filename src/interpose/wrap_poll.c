/*
 * wrap_poll.c: poll, ppoll, select and pselect see what the library holds.
 *
 * For a call that includes a filtered socket the kernel is asked with the
 * socket's events masked as the library requires (no POLLIN under
 * receive flow control, no POLLOUT while a transmit remainder or send
 * flow control holds), the library's own readability (a receive queue
 * the kernel no longer has) is merged in, and the thread's eventfd joins
 * the set, registered on each filtered socket, so that asynchronous work
 * (a timer's injection, flow control lifting) wakes the call.  A wake-up
 * that leaves nothing to report waits again for the time left.  select
 * and pselect go through the same code as a poll.  Calls without a
 * filtered socket cost one table lookup per descriptor.
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "interpose.h"

#define PL_STACK 32 /* descriptors handled without malloc */

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

struct pl_sock {
	nfds_t ps_idx;
	struct sock *ps_so;
	struct sock_waiter ps_w;
};

/* glibc declares poll's array write-only under _FORTIFY_SOURCE; the
 * wrapper reads it, as the kernel does. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
/* A socket the library is not bypassing altogether. */
static inline bool
pl_filtered(uintptr_t e)
{
	return fdt_is_sock(e) && !fdt_fast(e);
}

static bool
pl_any_sock(const struct pollfd *fds, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (pl_filtered(fdt_peek(fds[i].fd)))
			return true;
	return false;
}

static int64_t
pl_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The events to ask the kernel for, and what the library adds. */
static short
pl_masked(short events, unsigned rdy)
{
	if (rdy & SO_RDY_MASKIN)
		events &= ~(POLLIN | POLLRDNORM);
	if (rdy & SO_RDY_MASKOUT)
		events &= ~(POLLOUT | POLLWRNORM);
	return events;
}

static short
pl_lib(short events, unsigned rdy)
{
	return (rdy & SO_RDY_IN) ? events & (POLLIN | POLLRDNORM) : 0;
}

/* The emulated poll.  tmo NULL: wait forever. */
static int
pl_poll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
    const sigset_t *ss)
{
	struct pollfd kst[PL_STACK + 1], *k = kst;
	struct pl_sock sst[PL_STACK], *s = sst;
	struct timespec left, zero = {0, 0};
	int64_t deadline = 0;
	nfds_t i, ns = 0, nk;
	int evfd, r, count, saved;

	sock_depth++; /* allocates and locks: see sockstage.c */
	if (n > PL_STACK) {
		k = malloc((n + 1) * sizeof(*k));
		s = malloc(n * sizeof(*s));
		if (k == NULL || s == NULL) {
			free(k);
			free(s);
			return LIBC(
			    ppoll)(fds, n, tmo, ss); /* unfiltered view */
		}
	}
	for (i = 0; i < n; i++) {
		uintptr_t e = fdt_peek(fds[i].fd);
		struct sock *so;

		if (fdt_is_sock(e) && (so = fdt_hold(fds[i].fd, e)) != NULL) {
			if (so->so_aq != NULL)
				aq_attend(so, fds[i].fd);
			s[ns].ps_idx = i;
			s[ns].ps_so = so;
			ns++;
		}
	}
	/* Waiters first: a change after we read the state still wakes us. */
	evfd = sock_thread_evfd();
	for (i = 0; evfd >= 0 && i < ns; i++) {
		s[i].ps_w.sw_evfd = evfd;
		sock_wait_add(s[i].ps_so, &s[i].ps_w);
	}
	if (tmo != NULL)
		deadline =
		    pl_now_ns() + tmo->tv_sec * 1000000000 + tmo->tv_nsec;
	for (;;) {
		bool lib = false;

		memcpy(k, fds, n * sizeof(*k));
		for (i = 0; i < ns; i++) {
			struct sock *so = s[i].ps_so;
			struct pollfd *p = &k[s[i].ps_idx];
			unsigned rdy;

			if (SO_LOAD(so->so_tx_rem) != NULL)
				(void)sock_flush(so, p->fd);
			rdy = atomic_load(&so->so_rdy);
			p->events = pl_masked(p->events, rdy);
			lib |= pl_lib(fds[s[i].ps_idx].events, rdy) != 0;
		}
		nk = n;
		if (evfd >= 0) {
			k[n].fd = evfd;
			k[n].events = POLLIN;
			nk++;
		}
		if (lib) {
			r = LIBC(ppoll)(k, nk, &zero, ss);
		} else if (tmo == NULL) {
			r = LIBC(ppoll)(k, nk, NULL, ss);
		} else {
			int64_t ns_left = deadline - pl_now_ns();

			if (ns_left < 0)
				ns_left = 0;
			left.tv_sec = ns_left / 1000000000;
			left.tv_nsec = ns_left % 1000000000;
			r = LIBC(ppoll)(k, nk, &left, ss);
		}
		if (r < 0)
			break;
		if (evfd >= 0 && k[n].revents != 0)
			sock_thread_evfd_drain(evfd);
		count = 0;
		for (i = 0; i < n; i++)
			fds[i].revents = k[i].revents;
		for (i = 0; i < ns; i++) {
			struct pollfd *p = &fds[s[i].ps_idx];

			p->revents |=
			    pl_lib(p->events, atomic_load(&s[i].ps_so->so_rdy));
		}
		for (i = 0; i < n; i++)
			if (fds[i].revents != 0)
				count++;
		r = count;
		/* Only our eventfd woke: wait again for the time left. */
		if (count > 0 || lib ||
		    (tmo != NULL && pl_now_ns() >= deadline))
			break;
	}
	saved = errno;
	for (i = 0; i < ns; i++) {
		if (evfd >= 0)
			sock_wait_del(s[i].ps_so, &s[i].ps_w);
		sock_rele(s[i].ps_so);
	}
	if (k != kst) {
		free(k);
		free(s);
	}
	sock_depth--;
	if (atomic_load_explicit(&sock_staged, memory_order_relaxed))
		sock_stage_drain();
	errno = saved;
	return r;
}

static int
pl_ms(int timeout, struct timespec *ts)
{
	if (timeout < 0)
		return 0;
	ts->tv_sec = timeout / 1000;
	ts->tv_nsec = (long)(timeout % 1000) * 1000000;
	return 1;
}

SF_EXPORT int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	struct timespec ts;

	if (!pl_any_sock(fds, n))
		return LIBC(poll)(fds, n, timeout);
	return pl_poll(fds, n, pl_ms(timeout, &ts) ? &ts : NULL, NULL);
}

SF_EXPORT int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	if (fdslen / sizeof(*fds) < n)
		abort(); /* what glibc's fortify check does */
	return poll(fds, n, timeout);
}

SF_EXPORT int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
    const sigset_t *ss)
{
	if (!pl_any_sock(fds, n))
		return LIBC(ppoll)(fds, n, tmo, ss);
	return pl_poll(fds, n, tmo, ss);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

/* select/pselect: the same as a poll of the descriptors in the sets, when
 * one of them is a filtered socket. */
static bool
pl_select_any(int nfds, fd_set *rd, fd_set *wr, fd_set *ex)
{
	int fd;

	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (((rd != NULL && FD_ISSET(fd, rd)) ||
		        (wr != NULL && FD_ISSET(fd, wr)) ||
		        (ex != NULL && FD_ISSET(fd, ex))) &&
		    pl_filtered(fdt_peek(fd)))
			return true;
	return false;
}

static int
pl_select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
    const struct timespec *tmo, const sigset_t *ss)
{
	struct pollfd *p;
	nfds_t n = 0, i;
	int fd, r;

	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	if ((p = calloc((size_t)nfds + 1, sizeof(*p))) == NULL)
		return LIBC(pselect)(nfds, rd, wr, ex, tmo, ss);
	for (fd = 0; fd < nfds; fd++) {
		short ev = 0;

		if (rd != NULL && FD_ISSET(fd, rd))
			ev |= POLLIN;
		if (wr != NULL && FD_ISSET(fd, wr))
			ev |= POLLOUT;
		if (ex != NULL && FD_ISSET(fd, ex))
			ev |= POLLPRI;
		if (ev != 0) {
			p[n].fd = fd;
			p[n].events = ev;
			n++;
		}
	}
	r = pl_poll(p, n, tmo, ss);
	if (r >= 0) {
		for (i = 0; i < n; i++)
			if (p[i].revents & POLLNVAL) {
				free(p);
				errno = EBADF;
				return -1;
			}
		if (rd != NULL)
			FD_ZERO(rd);
		if (wr != NULL)
			FD_ZERO(wr);
		if (ex != NULL)
			FD_ZERO(ex);
		r = 0;
		for (i = 0; i < n; i++) {
			short re = p[i].revents;

			if ((p[i].events & POLLIN) &&
			    (re & (POLLIN | POLLHUP | POLLERR))) {
				FD_SET(p[i].fd, rd);
				r++;
			}
			if ((p[i].events & POLLOUT) &&
			    (re & (POLLOUT | POLLERR))) {
				FD_SET(p[i].fd, wr);
				r++;
			}
			if ((p[i].events & POLLPRI) && (re & POLLPRI)) {
				FD_SET(p[i].fd, ex);
				r++;
			}
		}
	}
	free(p);
	return r;
}

SF_EXPORT int
select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	struct timespec ts;

	if (!pl_select_any(nfds, rd, wr, ex))
		return LIBC(select)(nfds, rd, wr, ex, tv);
	if (tv != NULL) {
		ts.tv_sec = tv->tv_sec;
		ts.tv_nsec = tv->tv_usec * 1000;
	}
	return pl_select(nfds, rd, wr, ex, tv != NULL ? &ts : NULL, NULL);
}

SF_EXPORT int
pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
    const struct timespec *tmo, const sigset_t *ss)
{
	if (!pl_select_any(nfds, rd, wr, ex))
		return LIBC(pselect)(nfds, rd, wr, ex, tmo, ss);
	return pl_select(nfds, rd, wr, ex, tmo, ss);
}
