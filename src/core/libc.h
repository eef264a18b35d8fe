/*
 * libc.h: the real libc entry points, bound lazily with dlsym(RTLD_NEXT)
 * so that another preload after us in LD_PRELOAD still sees our calls.
 * Every byte the library itself moves goes through these, never through
 * its own wrappers.
 */
#ifndef SF_LIBC_H
#define SF_LIBC_H

#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* X(name, return type, parameter list) for every function we reach. */
#define SF_LIBC_FUNCS(X)                                                       \
	X(socket, int, (int, int, int))                                        \
	X(socketpair, int, (int, int, int, int *))                             \
	X(bind, int, (int, const struct sockaddr *, socklen_t))                \
	X(listen, int, (int, int))                                             \
	X(connect, int, (int, const struct sockaddr *, socklen_t))             \
	X(accept, int, (int, struct sockaddr *, socklen_t *))                  \
	X(accept4, int, (int, struct sockaddr *, socklen_t *, int))            \
	X(send, ssize_t, (int, const void *, size_t, int))                     \
	X(sendto, ssize_t,                                                     \
	    (int, const void *, size_t, int, const struct sockaddr *,          \
	        socklen_t))                                                    \
	X(sendmsg, ssize_t, (int, const struct msghdr *, int))                 \
	X(sendmmsg, int, (int, struct mmsghdr *, unsigned int, int))           \
	X(recv, ssize_t, (int, void *, size_t, int))                           \
	X(recvfrom, ssize_t,                                                   \
	    (int, void *, size_t, int, struct sockaddr *, socklen_t *))        \
	X(recvmsg, ssize_t, (int, struct msghdr *, int))                       \
	X(recvmmsg, int,                                                       \
	    (int, struct mmsghdr *, unsigned int, int, struct timespec *))     \
	X(read, ssize_t, (int, void *, size_t))                                \
	X(write, ssize_t, (int, const void *, size_t))                         \
	X(readv, ssize_t, (int, const struct iovec *, int))                    \
	X(writev, ssize_t, (int, const struct iovec *, int))                   \
	X(close, int, (int))                                                   \
	X(close_range, int, (unsigned int, unsigned int, int))                 \
	X(closefrom, void, (int))                                              \
	X(shutdown, int, (int, int))                                           \
	X(getsockopt, int, (int, int, int, void *, socklen_t *))               \
	X(setsockopt, int, (int, int, int, const void *, socklen_t))           \
	X(getsockname, int, (int, struct sockaddr *, socklen_t *))             \
	X(getpeername, int, (int, struct sockaddr *, socklen_t *))             \
	X(ioctl, int, (int, unsigned long, ...))                               \
	X(fcntl, int, (int, int, ...))                                         \
	X(fcntl64, int, (int, int, ...))                                       \
	X(dup, int, (int))                                                     \
	X(dup2, int, (int, int))                                               \
	X(dup3, int, (int, int, int))                                          \
	X(sendfile, ssize_t, (int, int, off_t *, size_t))                      \
	X(sendfile64, ssize_t, (int, int, off_t *, size_t))                    \
	X(splice, ssize_t,                                                     \
	    (int, loff_t *, int, loff_t *, size_t, unsigned int))              \
	X(__recv_chk, ssize_t, (int, void *, size_t, size_t, int))             \
	X(__recvfrom_chk, ssize_t,                                             \
	    (int, void *, size_t, size_t, int, struct sockaddr *,              \
	        socklen_t *))                                                  \
	X(__read_chk, ssize_t, (int, void *, size_t, size_t))                  \
	X(syscall, long, (long, ...))                                          \
	X(fdopen, FILE *, (int, const char *))                                 \
	X(fclose, int, (FILE *))                                               \
	X(poll, int, (struct pollfd *, nfds_t, int))                           \
	X(ppoll, int,                                                          \
	    (struct pollfd *, nfds_t, const struct timespec *,                 \
	        const sigset_t *))                                             \
	X(select, int, (int, fd_set *, fd_set *, fd_set *, struct timeval *))  \
	X(pselect, int,                                                        \
	    (int, fd_set *, fd_set *, fd_set *, const struct timespec *,       \
	        const sigset_t *))                                             \
	X(epoll_create, int, (int))                                            \
	X(epoll_create1, int, (int))                                           \
	X(epoll_ctl, int, (int, int, int, struct epoll_event *))               \
	X(epoll_wait, int, (int, struct epoll_event *, int, int))              \
	X(epoll_pwait, int,                                                    \
	    (int, struct epoll_event *, int, int, const sigset_t *))           \
	X(epoll_pwait2, int,                                                   \
	    (int, struct epoll_event *, int, const struct timespec *,          \
	        const sigset_t *))

#define SF_LIBC_PTR(name, ret, args) ret(*name) args;
struct sf_libc {
	SF_LIBC_FUNCS(SF_LIBC_PTR)
};
#undef SF_LIBC_PTR

/* The bound pointers; a NULL slot means "not bound yet". */
extern struct sf_libc sf_real __attribute__((visibility("hidden")));
/* Bind every slot (idempotent, thread safe, async-signal tolerant: a
 * racing second binder only stores the same values). */
void libc_bind_all(void) __attribute__((visibility("hidden")));

/* LIBC(name): the real function, bound on first use. */
#define LIBC(name)                                                             \
	(__builtin_expect(sf_real.name != NULL, 1)                             \
	        ? sf_real.name                                                 \
	        : (libc_bind_all(), sf_real.name))

#endif /* SF_LIBC_H */
