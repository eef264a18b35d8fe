/*
 * fdtable.c: descriptor -> socket object.
 *
 * The table heals itself: descriptors created where we could not see them
 * (inherited across exec, passed with SCM_RIGHTS, stdin) are probed on
 * first use; a slot still holding a socket when its number is handed out
 * again belonged to a descriptor closed behind our back, and is purged.
 */
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "interpose.h"

_Atomic uintptr_t fdt_slots[FDT_SIZE];
/* Highest descriptor that ever held a socket object (bounds scans). */
static atomic_int fdt_hiwat;

static void
fdt_note(int fd)
{
	int h = atomic_load_explicit(&fdt_hiwat, memory_order_relaxed);

	while (fd > h && !atomic_compare_exchange_weak(&fdt_hiwat, &h, fd))
		;
}

/* Find another descriptor of so, for injections after a dup was closed. */
static void
fdt_refresh_fd(struct sock *so, int closed)
{
	int fd, hi = atomic_load(&fdt_hiwat);

	if (so->so_fd != closed)
		return;
	for (fd = 0; fd <= hi; fd++)
		if (fdt_peek(fd) == (uintptr_t)so) {
			so->so_fd = fd;
			return;
		}
}

void
fdt_set(int fd, uintptr_t v)
{
	uintptr_t old;

	if ((unsigned)fd >= FDT_SIZE)
		return;
	if (fdt_is_sock(v))
		fdt_note(fd);
	old = atomic_exchange(&fdt_slots[fd], v);
	if (old == FDT_EPOLL && v != FDT_EPOLL)
		ep_forget(fd);
	if (fdt_is_sock(old) && old != v) {
		struct sock *so = fdt_sock(old);

		sf_log(SF_LOG_DEBUG,
		    "fd %d was closed behind the library's "
		    "back; forgetting its filters",
		    fd);
		sock_fd_close(so, -1);
	}
}

void
fdt_close(int fd)
{
	uintptr_t old;

	if ((unsigned)fd >= FDT_SIZE)
		return;
	old = atomic_load(&fdt_slots[fd]);
	if ((old == FDT_EPOLL || fdt_is_sock(old)) && sfi_foreign())
		return; /* a vfork child closing its copy before exec */
	old = atomic_exchange(&fdt_slots[fd], FDT_UNKNOWN);
	if (old == FDT_EPOLL)
		ep_forget(fd);
	if (fdt_is_sock(old)) {
		struct sock *so = fdt_sock(old);

		sf_trace("close fd=%d", fd);
		/* Hold it: the close may drop what kept it alive. */
		sock_hold(so);
		sock_fd_close(so, fd);
		if (atomic_load(&so->so_nfds) > 0)
			fdt_refresh_fd(so, fd);
		sock_rele(so);
	}
}

void
fdt_close_range(unsigned lo, unsigned hi)
{
	unsigned fd, top = FDT_SIZE - 1;

	if (hi < top)
		top = hi;
	for (fd = lo; fd <= top; fd++)
		if (atomic_load_explicit(&fdt_slots[fd],
		        memory_order_relaxed) != FDT_UNKNOWN)
			fdt_close((int)fd);
}

void
fdt_dup(int oldfd, int newfd)
{
	uintptr_t e = fdt_peek(oldfd);

	if ((e == FDT_EPOLL || fdt_is_sock(e) ||
	        fdt_is_sock(fdt_peek(newfd))) &&
	    sfi_foreign())
		return; /* a vfork child: dup2 before exec */
	if (e == FDT_EPOLL) {
		ep_dup(oldfd, newfd);
		fdt_set(newfd, FDT_EPOLL);
		return;
	}
	if (fdt_is_sock(e)) {
		struct sock *so = fdt_sock(e);

		if (sock_tryhold(so)) {
			sock_fd_add(so);
			fdt_set(newfd, e);
			sock_rele(so);
			return;
		}
		e = FDT_UNKNOWN;
	}
	fdt_set(newfd, e);
}

int
fdt_new_socket(int fd, int family, int type, int proto)
{
	struct cfg_snap *cs;
	struct sock *so;
	int error;

	if (sfi_busy) {
		fdt_set(fd, FDT_PLAIN); /* the library's own sockets */
		return 0;
	}
	cs = sfi_config();
	error = sock_create(fd, family, type, proto, cs, &so);
	if (cs != NULL)
		cfg_rele(cs);
	if (error != 0)
		return error;
	fdt_set(fd, so != NULL ? (uintptr_t)so : FDT_PLAIN);
	return 0;
}

/* First use of a descriptor we never saw created. */
static void
fdt_probe(int fd)
{
	int type, domain, proto;
	socklen_t len = sizeof(int);
	uintptr_t expect = FDT_UNKNOWN;
	struct cfg_snap *cs;
	struct sock *so = NULL;

	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0) {
		if (errno == ENOTSOCK)
			atomic_compare_exchange_strong(&fdt_slots[fd], &expect,
			    FDT_NOTSOCK);
		return; /* EBADF: stays unknown */
	}
	len = sizeof(int);
	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		domain = AF_UNSPEC;
	len = sizeof(int);
	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		proto = 0;
	cs = sfi_config();
	/* Filters cannot fail an inherited socket: an error leaves it plain. */
	if (sock_create(fd, domain, type, proto, cs, &so) != 0)
		so = NULL;
	if (cs != NULL)
		cfg_rele(cs);
	if (so != NULL) {
		int fl = LIBC(fcntl)(fd, F_GETFL);

		atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_FILOP_OK);
		atomic_fetch_or(&so->so_flags, SO_F_ADOPTED);
		if (fl >= 0 && (fl & O_NONBLOCK))
			atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
		sf_log(SF_LOG_DEBUG, "fd %d: inherited socket adopted", fd);
		fdt_note(fd);
	}
	if (!atomic_compare_exchange_strong(&fdt_slots[fd], &expect,
	        so != NULL ? (uintptr_t)so : FDT_PLAIN) &&
	    so != NULL)
		sock_fd_close(so, -1); /* another thread won */
}

static atomic_bool fdt_exiting;

void
fdt_close_all(void)
{
	int fd, hi = atomic_load(&fdt_hiwat);

	atomic_store(&fdt_exiting, true);
	for (fd = 0; fd <= hi; fd++)
		if (fdt_is_sock(fdt_peek(fd)))
			fdt_close(fd);
}

struct sock *
fdt_hold_slow(int fd, uintptr_t e)
{
	int saved = errno, tries;
	struct sock *so = NULL;

	if (sfi_busy || (unsigned)fd >= FDT_SIZE ||
	    (e == FDT_UNKNOWN && atomic_load(&fdt_exiting)))
		return NULL;
	for (tries = 0; tries < 3; tries++) {
		if (e == FDT_UNKNOWN) {
			sfi_busy++;
			fdt_probe(fd);
			sfi_busy--;
			e = fdt_peek(fd);
		}
		if (!fdt_is_sock(e))
			break;
		so = fdt_sock(e);
		if (sock_tryhold(so)) {
			if (fdt_peek(fd) == e)
				break;
			sock_rele(so);
		}
		so = NULL;
		e = fdt_peek(fd);
	}
	errno = saved;
	return so;
}

void
fdt_scan_rights(const struct msghdr *msg)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR((struct msghdr *)msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		size_t i, n;
		int fd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			fdt_set(fd, FDT_UNKNOWN);
		}
	}
}

/*
 * sock_bypass_hook: every filter of so is bypassed.  When the library
 * holds nothing for the socket (no queued data, no remainder, no queued
 * connections, no epoll registration), its descriptor goes back on the
 * fast path; the object stays in the slot for the detach at close.
 */
static void
fdt_bypassed(struct sock *so)
{
	uintptr_t e = (uintptr_t)so;
	int fd = so->so_fd;

	if (fd < 0 || (unsigned)fd >= FDT_SIZE ||
	    SO_LOAD(so->so_rq_head) != NULL || SO_LOAD(so->so_tx_rem) != NULL ||
	    so->so_aq != NULL || so->so_rdy_regs != NULL ||
	    atomic_load(&so->so_stage) != NULL)
		return;
	if (atomic_compare_exchange_strong(&fdt_slots[fd], &e,
	        e | FDT_FAST_BIT))
		sf_log(SF_LOG_DEBUG, "fd %d: every filter bypassed: fast path",
		    fd);
}

__attribute__((constructor)) static void
fdt_hooks(void)
{
	sock_bypass_hook = fdt_bypassed;
}
