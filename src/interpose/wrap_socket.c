/*
 * wrap_socket.c: creation, control operations, close and dup.
 *
 * Shape of every wrapper: look the descriptor up; unfiltered goes straight
 * to libc; filtered runs the stack (stack.c) and then, unless a filter
 * decided, the real call.
 */
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "interpose.h"

SF_EXPORT int
socket(int domain, int type, int protocol)
{
	int fd = LIBC(socket)(domain, type, protocol), error;

	if (fd < 0)
		return fd;
	if ((error = fdt_new_socket(fd, domain, type, protocol)) != 0) {
		LIBC(close)(fd);
		errno = error;
		return -1;
	}
	return fd;
}

SF_EXPORT int
socketpair(int domain, int type, int protocol, int sv[2])
{
	int r = LIBC(socketpair)(domain, type, protocol, sv), error;

	if (r < 0)
		return r;
	if ((error = fdt_new_socket(sv[0], domain, type, protocol)) != 0 ||
	    (error = fdt_new_socket(sv[1], domain, type, protocol)) != 0) {
		fdt_close(sv[0]);
		fdt_close(sv[1]);
		LIBC(close)(sv[0]);
		LIBC(close)(sv[1]);
		errno = error;
		return -1;
	}
	return r;
}

/* Run a control walk with a private copy of the address (filters may
 * rewrite it).  Returns -1 to go on to the kernel, else the result. */
#define SFI_CONTROL_ADDR(stkfn, realfn, fd, addr, len)                         \
	do {                                                                   \
		uintptr_t e = fdt_peek(fd);                                    \
		struct sockaddr_storage ss;                                    \
		struct sock *so;                                               \
		socklen_t l = (len);                                           \
		int r;                                                         \
		if (SF_LIKELY(fdt_fast(e)) ||                                  \
		    (so = fdt_hold((fd), e)) == NULL)                          \
			return LIBC(realfn)((fd), (addr), (len));              \
		sock_op_issued(so);                                            \
		if ((addr) == NULL || l > sizeof(ss)) {                        \
			sock_rele(so);                                         \
			return LIBC(realfn)((fd), (addr), (len));              \
		}                                                              \
		memcpy(&ss, (addr), l);                                        \
		r = stkfn(so, (struct sockaddr *)&ss, &l);                     \
		if (r == -1)                                                   \
			r = LIBC(realfn)((fd), (struct sockaddr *)&ss, l);     \
		else if (r > 0) {                                              \
			errno = r;                                             \
			r = -1;                                                \
		}                                                              \
		SFI_AFTER_##realfn;                                            \
		sf_trace(#realfn " fd=%d = %d", (fd), r);                      \
		sock_rele(so);                                                 \
		return r;                                                      \
	} while (0)

#define SFI_AFTER_bind (void)0
/* Tell the filters how connect ended (when it ended now). */
#define SFI_AFTER_connect                                                      \
	do {                                                                   \
		int saved = errno;                                             \
		if (r == 0) {                                                  \
			atomic_fetch_or(&so->so_flags, SO_F_CONNECTED);        \
			stk_notify(so, SOF_EV_CONNECTED, 0);                   \
		} else if (saved == EINPROGRESS) {                             \
			atomic_fetch_or(&so->so_flags, SO_F_CONNECTING);       \
		} else if (saved != EINTR && saved != EALREADY &&              \
		           saved != EISCONN) {                                 \
			stk_notify(so, SOF_EV_CONNECTFAILED,                   \
			    (uintptr_t)saved);                                 \
		}                                                              \
		errno = saved;                                                 \
	} while (0)

SF_EXPORT int
bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	SFI_CONTROL_ADDR(stk_bind, bind, fd, addr, len);
}

SF_EXPORT int
connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	SFI_CONTROL_ADDR(stk_connect, connect, fd, addr, len);
}

SF_EXPORT int
listen(int fd, int backlog)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int r;

	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(listen)(fd, backlog);
	sock_op_issued(so);
	r = stk_listen(so, &backlog);
	if (r == -1)
		r = LIBC(listen)(fd, backlog);
	else if (r > 0) {
		errno = r;
		r = -1;
	}
	if (r == 0) {
		atomic_fetch_or(&so->so_flags, SO_F_LISTENING);
		so->so_backlog = backlog <= 0          ? 1
		                 : backlog > SOMAXCONN ? SOMAXCONN
		                                       : backlog;
		/* An accept filter: connections wait in the library. */
		if (stk_defers(so))
			(void)aq_enable(so, fd);
	}
	sf_trace("listen fd=%d backlog=%d = %d", fd, backlog, r);
	sock_rele(so);
	return r;
}

/* accept on a listener whose connections the library takes (accq.c). */
static int
sfi_accept_queued(struct sock *lso, int lfd, struct sockaddr *addr,
    socklen_t *len, int flags)
{
	bool nb = (atomic_load(&lso->so_flags) & SO_F_NONBLOCK) != 0;
	struct sock *so;
	int fd;

	fd = aq_accept(lso, lfd, flags, nb, &so);
	sock_rele(lso);
	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	if (addr != NULL && len != NULL && LIBC(getpeername)(fd, addr, len) < 0)
		*len = 0;
	sf_trace("accept fd=%d = %d (queued, %s)", lfd, fd,
	    so != NULL ? "filtered" : "unfiltered");
	fdt_set(fd, so != NULL ? (uintptr_t)so : FDT_PLAIN);
	return fd;
}

/* accept and accept4: the kernel's, then the new socket's filters. */
static int
sfi_accept(int lfd, struct sockaddr *addr, socklen_t *len, int flags, bool four)
{
	uintptr_t le = fdt_peek(lfd);
	struct sock *lso, *so = NULL;
	int fd, error;

	if (fdt_fast(le) || (lso = fdt_hold(lfd, le)) == NULL) {
		fd = four ? LIBC(accept4)(lfd, addr, len, flags)
		          : LIBC(accept)(lfd, addr, len);
		if (fd >= 0)
			fdt_set(fd, le == FDT_PLAIN || fdt_is_sock(le)
			                ? FDT_PLAIN
			                : FDT_UNKNOWN);
		return fd;
	}
	sock_op_issued(lso);
	if (lso->so_aq != NULL)
		return sfi_accept_queued(lso, lfd, addr, len, flags);
	fd = four ? LIBC(accept4)(lfd, addr, len, flags)
	          : LIBC(accept)(lfd, addr, len);
	if (fd < 0) {
		sock_rele(lso);
		return fd;
	}
	error = sock_accepted(lso, fd, &so);
	if (error == EINPROGRESS)
		return sfi_accept_queued(lso, lfd, addr, len, flags);
	sock_rele(lso);
	if (error != 0) {
		fdt_set(fd, FDT_UNKNOWN);
		LIBC(close)(fd);
		errno = error;
		return -1;
	}
	if (so != NULL && (flags & SOCK_NONBLOCK))
		atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
	sf_trace("accept fd=%d = %d (%s)", lfd, fd,
	    so != NULL ? "filtered" : "unfiltered");
	fdt_set(fd, so != NULL ? (uintptr_t)so : FDT_PLAIN);
	return fd;
}

SF_EXPORT int
accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfi_accept(fd, addr, len, 0, false);
}

SF_EXPORT int
accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return sfi_accept(fd, addr, len, flags, true);
}

SF_EXPORT int
shutdown(int fd, int how)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int r, saved;

	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(shutdown)(fd, how);
	sock_op_issued(so);
	if (how != SHUT_RD)
		sock_stage_flush(so); /* a handler's sends come first */
	r = stk_shutdown(so, &how);
	if (r == -1) {
		/* Transformed bytes still held go out before the FIN. */
		if (how != SHUT_RD) {
			int tries;

			for (tries = 0;
			     SO_LOAD(so->so_tx_rem) != NULL && tries < 50;
			     tries++) {
				struct pollfd p = {.fd = fd, .events = POLLOUT};

				if (sock_flush(so, fd) != EAGAIN)
					break;
				(void)LIBC(poll)(&p, 1, 200);
			}
		}
		r = LIBC(shutdown)(fd, how);
	} else if (r > 0) {
		errno = r;
		r = -1;
	}
	saved = errno;
	if (r == 0) {
		if (how == SHUT_WR || how == SHUT_RDWR) {
			atomic_fetch_or(&so->so_flags, SO_F_WRSHUT);
			stk_notify(so, SOF_EV_CANTSENDMORE, 0);
		}
		if (how == SHUT_RD || how == SHUT_RDWR) {
			atomic_fetch_or(&so->so_flags, SO_F_RDSHUT);
			stk_notify(so, SOF_EV_CANTRECVMORE, 0);
		}
	}
	sf_trace("shutdown fd=%d how=%d = %d", fd, how, r);
	sock_rele(so);
	errno = saved;
	return r;
}

/* getsockname and getpeername: the same walk on either side's address. */
static int
sfi_name(int fd, struct sockaddr *addr, socklen_t *len, bool peer)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int r;

	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return peer ? LIBC(getpeername)(fd, addr, len)
		            : LIBC(getsockname)(fd, addr, len);
	sock_op_issued(so);
	r = -1;
	if (addr != NULL && len != NULL)
		r = peer ? stk_getpeername(so, addr, len)
		         : stk_getsockname(so, addr, len);
	if (r == -1)
		r = peer ? LIBC(getpeername)(fd, addr, len)
		         : LIBC(getsockname)(fd, addr, len);
	else if (r > 0) {
		errno = r;
		r = -1;
	}
	sock_rele(so);
	return r;
}

SF_EXPORT int
getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfi_name(fd, addr, len, false);
}

SF_EXPORT int
getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	return sfi_name(fd, addr, len, true);
}

SF_EXPORT int
close(int fd)
{
	if (fdt_peek(fd) != FDT_UNKNOWN)
		fdt_close(fd);
	return LIBC(close)(fd);
}

SF_EXPORT int
close_range(unsigned int lo, unsigned int hi, int flags)
{
	if (!(flags & CLOSE_RANGE_CLOEXEC) && lo <= hi)
		fdt_close_range(lo, hi);
	return LIBC(close_range)(lo, hi, flags);
}

SF_EXPORT void
closefrom(int lo)
{
	if (lo >= 0)
		fdt_close_range((unsigned)lo, ~0U);
	LIBC(closefrom)(lo);
}

SF_EXPORT int
dup(int fd)
{
	int nfd = LIBC(dup)(fd);

	if (nfd >= 0)
		fdt_dup(fd, nfd);
	return nfd;
}

/* dup2/dup3 close newfd first: its last close flushes while it is open. */
static int
sfi_dup2(int oldfd, int newfd, int flags, bool three)
{
	int r;

	if (oldfd == newfd || LIBC(fcntl)(oldfd, F_GETFD) < 0)
		return three ? LIBC(dup3)(oldfd, newfd, flags)
		             : LIBC(dup2)(oldfd, newfd);
	if (fdt_peek(newfd) != FDT_UNKNOWN)
		fdt_close(newfd);
	r = three ? LIBC(dup3)(oldfd, newfd, flags) : LIBC(dup2)(oldfd, newfd);
	if (r >= 0)
		fdt_dup(oldfd, r);
	return r;
}

SF_EXPORT int
dup2(int oldfd, int newfd)
{
	return sfi_dup2(oldfd, newfd, 0, false);
}

SF_EXPORT int
dup3(int oldfd, int newfd, int flags)
{
	return sfi_dup2(oldfd, newfd, flags, true);
}
