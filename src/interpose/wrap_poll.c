/*
 * wrap_poll.c: poll, ppoll, select and pselect see data the library holds.
 *
 * A filtered socket may have bytes in the library's receive queue that the
 * kernel no longer has (after MSG_PEEK, or when a filter returned more than
 * it was given): it is readable although the kernel says otherwise.  Such
 * sockets are reported readable at once, merged with a non-waiting kernel
 * poll of the whole set.  Calls with no such socket cost one table lookup
 * per descriptor.  (epoll and waking on asynchronous work come with the
 * readiness milestone.)
 */
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>

#include "interpose.h"

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen);

/* Does fd hold data for the application in the library? */
static bool
sfi_held(int fd)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	bool r;

	if (!fdt_is_sock(e) || (so = fdt_hold(fd, e)) == NULL)
		return false;
	if (so->so_tx_rem != NULL)
		(void)sock_flush(so, fd);
	r = sock_rq_pending(so);
	sock_rele(so);
	return r;
}

/* If a descriptor of the set has held data, answer without waiting:
 * true with *result set.  False: the caller does the real, waiting call. */
static bool
sfi_poll_held(struct pollfd *fds, nfds_t n, const sigset_t *ss, int *result)
{
	const short rd = POLLIN | POLLRDNORM;
	struct timespec zero = {0, 0};
	nfds_t i;
	bool held = false;
	int r;

	for (i = 0; i < n && !held; i++)
		held = fds[i].fd >= 0 && (fds[i].events & rd) &&
		       sfi_held(fds[i].fd);
	if (!held)
		return false;
	r = LIBC(ppoll)(fds, n, &zero, ss);
	if (r < 0) {
		*result = r;
		return true;
	}
	r = 0;
	for (i = 0; i < n; i++) {
		if (fds[i].fd >= 0 && (fds[i].events & rd) &&
		    sfi_held(fds[i].fd))
			fds[i].revents |= fds[i].events & rd;
		if (fds[i].revents != 0)
			r++;
	}
	*result = r;
	return true;
}

SF_EXPORT int
poll(struct pollfd *fds, nfds_t n, int timeout)
{
	int r;

	if (sfi_poll_held(fds, n, NULL, &r))
		return r;
	return LIBC(poll)(fds, n, timeout);
}

SF_EXPORT int
__poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen)
{
	int r;

	if (fdslen / sizeof(*fds) < n)
		abort(); /* what glibc's fortify check does */
	if (sfi_poll_held(fds, n, NULL, &r))
		return r;
	return LIBC(poll)(fds, n, timeout);
}

SF_EXPORT int
ppoll(struct pollfd *fds, nfds_t n, const struct timespec *tmo,
    const sigset_t *ss)
{
	int r;

	if (sfi_poll_held(fds, n, ss, &r))
		return r;
	return LIBC(ppoll)(fds, n, tmo, ss);
}

/* select/pselect: the same rule over fd_sets. */
static bool
sfi_select_held(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
    const sigset_t *ss, int *result)
{
	struct timespec zero = {0, 0};
	fd_set held;
	int fd, r, extra = 0;
	bool any = false;

	if (rd == NULL)
		return false;
	FD_ZERO(&held);
	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, rd) && sfi_held(fd)) {
			FD_SET(fd, &held);
			any = true;
		}
	if (!any)
		return false;
	r = LIBC(pselect)(nfds, rd, wr, ex, &zero, ss);
	if (r < 0) {
		*result = r;
		return true;
	}
	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (FD_ISSET(fd, &held) && !FD_ISSET(fd, rd)) {
			FD_SET(fd, rd);
			extra++;
		}
	*result = r + extra;
	return true;
}

SF_EXPORT int
select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	int r;

	if (sfi_select_held(nfds, rd, wr, ex, NULL, &r))
		return r;
	return LIBC(select)(nfds, rd, wr, ex, tv);
}

SF_EXPORT int
pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex,
    const struct timespec *tmo, const sigset_t *ss)
{
	int r;

	if (sfi_select_held(nfds, rd, wr, ex, ss, &r))
		return r;
	return LIBC(pselect)(nfds, rd, wr, ex, tmo, ss);
}
