/*
 * interpose.h: shared by the wrappers of src/interpose.
 *
 * The fd table maps a descriptor to what the library knows of it, in one
 * atomic word: FDT_UNKNOWN (never seen: probed on first use), FDT_NOTSOCK,
 * FDT_PLAIN (a socket with nothing to filter), FDT_EPOLL (an epoll set
 * the library keeps state for), or a struct sock pointer (bit 0 set when
 * all its filters are bypassed).
 * Every wrapper starts with fdt_peek() and goes straight to libc when the
 * slot says NOTSOCK or PLAIN: one load and one compare.
 */
#ifndef SF_INTERPOSE_H
#define SF_INTERPOSE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core.h"
#include "libc.h"
#include "log.h"

#define SF_EXPORT    __attribute__((visibility("default")))
#define SF_LIKELY(x) __builtin_expect(!!(x), 1)

#define FDT_SIZE    (1u << 20)
#define FDT_UNKNOWN ((uintptr_t)0)
#define FDT_NOTSOCK ((uintptr_t)1)
#define FDT_EPOLL   ((uintptr_t)2) /* an epoll set holding a filtered socket */
#define FDT_PLAIN   ((uintptr_t)3)
/* Bit 0 set: nothing to do but call libc.  NOTSOCK and PLAIN have it; a
 * socket object gets it when every filter of it is bypassed (and the
 * library holds nothing for it): back on the unfiltered fast path, the
 * object kept for the detach at close. */
#define FDT_FAST_BIT ((uintptr_t)1)

extern _Atomic uintptr_t fdt_slots[FDT_SIZE] SF_HIDDEN;

static inline uintptr_t
fdt_peek(int fd)
{
	if ((unsigned)fd >= FDT_SIZE)
		return FDT_NOTSOCK; /* beyond the table: never filtered */
	return atomic_load_explicit(&fdt_slots[fd], memory_order_acquire);
}

/* NOTSOCK, PLAIN or a bypassed socket: nothing to do but call libc. */
static inline int
fdt_fast(uintptr_t e)
{
	return (int)(e & FDT_FAST_BIT);
}

/* A socket object (bypassed or not). */
static inline int
fdt_is_sock(uintptr_t e)
{
	return e > FDT_PLAIN;
}

static inline struct sock *
fdt_sock(uintptr_t e)
{
	return (struct sock *)(e & ~FDT_FAST_BIT);
}

/* init.c */
/* Nonzero while the library works on its own behalf in this thread:
 * wrappers then go straight to libc. */
extern __thread int sfi_busy SF_HIDDEN
    __attribute__((tls_model("initial-exec")));

/* fdt_hold(fd, e): the socket object of fd with a caller reference, or
 * NULL (not filtered, not a socket, or inside the library).  Probes an
 * unknown descriptor.  Preserves errno.  Every filtered call takes one:
 * the usual case is inline (nothing there touches errno), the rest in
 * fdt_hold_slow(). */
struct sock *fdt_hold_slow(int fd, uintptr_t e) SF_HIDDEN;
static inline struct sock *
fdt_hold(int fd, uintptr_t e)
{
	if (fdt_is_sock(e) && !sfi_busy) {
		struct sock *so = fdt_sock(e);

		if (sock_tryhold(so)) {
			if (fdt_peek(fd) == e)
				return so;
			sock_rele(so);
		}
	}
	return fdt_hold_slow(fd, e);
}
/* Store v for fd.  If the slot held a socket object, the kernel reused the
 * number behind our back: that descriptor of the old socket is gone. */
void fdt_set(int fd, uintptr_t v) SF_HIDDEN;
/* Forget fd before the kernel closes it (last close flushes and detaches). */
void fdt_close(int fd) SF_HIDDEN;
/* The same for every descriptor in [lo, hi]. */
void fdt_close_range(unsigned lo, unsigned hi) SF_HIDDEN;
/* Record newfd as a duplicate of oldfd (after the kernel made it). */
void fdt_dup(int oldfd, int newfd) SF_HIDDEN;
/* A fresh socket: attach automatic filters.  0, or the errno socket()
 * must fail with (the descriptor is then closed). */
int fdt_new_socket(int fd, int family, int type, int proto) SF_HIDDEN;
/* Process exit: every socket's last close as the kernel will do it, so
 * filters see CLOSING and detach (descriptors stay open). */
void fdt_close_all(void) SF_HIDDEN;
/* Descriptors received with SCM_RIGHTS are new to us. */
void fdt_scan_rights(const struct msghdr *msg) SF_HIDDEN;

/* wrap_epoll.c: a descriptor of an epoll set closed or duplicated. */
void ep_forget(int epfd) SF_HIDDEN;
void ep_dup(int epfd, int newfd) SF_HIDDEN;

/* init.c */
/* The process id as of the last fork handler. */
extern pid_t sfi_pid SF_HIDDEN;
/* True in a vfork()/CLONE_VM child, which shares our memory: it must not
 * change the table (a system call: used only on close and dup paths). */
bool sfi_foreign(void) SF_HIDDEN;
/* The configuration for new sockets (loaded on first need). */
struct cfg_snap *sfi_config(void) SF_HIDDEN;

/* Return from a wrapper that got r = count or -errno. */
#define SFI_RET(r)                                                             \
	do {                                                                   \
		if ((r) < 0) {                                                 \
			errno = (int)-(r);                                     \
			return -1;                                             \
		}                                                              \
		return (r);                                                    \
	} while (0)

#endif /* SF_INTERPOSE_H */
