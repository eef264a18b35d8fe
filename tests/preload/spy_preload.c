/*
 * spy_preload.c: a minimal second LD_PRELOAD library, stacked with
 * libsockfilter in both orders.  It counts send/recv/write/read calls,
 * (and sendmsg/recvmsg, the calls libsockfilter itself makes to the
 * kernel, so that the spy sees traffic in either order), passes each to
 * the next definition (dlsym(RTLD_NEXT), so whichever
 * library comes after it in the search order), and prints the counts to
 * stderr at exit to prove it was in the chain.
 */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

static atomic_ulong n_send, n_recv, n_write, n_read, n_sendmsg, n_recvmsg;

/* Bound on first use: a constructor of another library may call us
 * before ours ran.  Two threads binding at once store the same value. */
#define SPY_NEXT(fp, name)                                                     \
	do {                                                                   \
		if ((fp) == NULL)                                              \
			*(void **)&(fp) = dlsym(RTLD_NEXT, name);              \
	} while (0)

ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*next)(int, const void *, size_t, int);

	SPY_NEXT(next, "send");
	atomic_fetch_add(&n_send, 1);
	return next(fd, buf, len, flags);
}

ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*next)(int, void *, size_t, int);

	SPY_NEXT(next, "recv");
	atomic_fetch_add(&n_recv, 1);
	return next(fd, buf, len, flags);
}

ssize_t
write(int fd, const void *buf, size_t len)
{
	static ssize_t (*next)(int, const void *, size_t);

	SPY_NEXT(next, "write");
	atomic_fetch_add(&n_write, 1);
	return next(fd, buf, len);
}

ssize_t
read(int fd, void *buf, size_t len)
{
	static ssize_t (*next)(int, void *, size_t);

	SPY_NEXT(next, "read");
	atomic_fetch_add(&n_read, 1);
	return next(fd, buf, len);
}

ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	static ssize_t (*next)(int, const struct msghdr *, int);

	SPY_NEXT(next, "sendmsg");
	atomic_fetch_add(&n_sendmsg, 1);
	return next(fd, msg, flags);
}

ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*next)(int, struct msghdr *, int);

	SPY_NEXT(next, "recvmsg");
	atomic_fetch_add(&n_recvmsg, 1);
	return next(fd, msg, flags);
}

__attribute__((destructor)) static void
spy_report(void)
{
	unsigned long total = atomic_load(&n_send) + atomic_load(&n_recv) +
	                      atomic_load(&n_write) + atomic_load(&n_read) +
	                      atomic_load(&n_sendmsg) + atomic_load(&n_recvmsg);

	fprintf(stderr,
	    "spy: send %lu recv %lu write %lu read %lu sendmsg %lu "
	    "recvmsg %lu\n",
	    atomic_load(&n_send), atomic_load(&n_recv), atomic_load(&n_write),
	    atomic_load(&n_read), atomic_load(&n_sendmsg),
	    atomic_load(&n_recvmsg));
	fprintf(stderr, "spy: %s\n", total > 0 ? "saw calls" : "saw nothing");
}
