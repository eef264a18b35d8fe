/*
 * sockrdy.c: a socket's library-side readiness and the threads waiting
 * for it to change.
 *
 * The kernel's poll knows nothing of what the library holds: data in the
 * receive queue, a transmit remainder, flow control.  so_rdy sums that
 * state up in three bits; whoever changes the state calls
 * sock_rdy_update(), which tells the interposer (its epoll registrations
 * follow) and wakes every thread blocked on the socket.  A thread waits
 * with its own eventfd beside the socket in one ppoll, so it wakes for
 * the kernel and for the library alike.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core.h"
#include "libc.h"

void (*sock_rdy_hook)(struct sock *so, unsigned old, unsigned now);

void
sock_rdy_update(struct sock *so, bool force)
{
	struct sock_waiter *w;
	unsigned old, now;
	uint64_t one = 1;

	pthread_mutex_lock(&so->so_lock);
	now = sock_rdy_compute(so);
	old = atomic_exchange(&so->so_rdy, now);
	if (old != now || (force && (now & SO_RDY_IN))) {
		if (sock_rdy_hook != NULL)
			sock_rdy_hook(so, old, now);
		for (w = so->so_waiters; w != NULL; w = w->sw_next)
			(void)LIBC(write)(w->sw_evfd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&so->so_lock);
}

void
sock_wait_add(struct sock *so, struct sock_waiter *w)
{
	pthread_mutex_lock(&so->so_lock);
	w->sw_next = so->so_waiters;
	so->so_waiters = w;
	pthread_mutex_unlock(&so->so_lock);
}

void
sock_wait_del(struct sock *so, struct sock_waiter *w)
{
	struct sock_waiter **pp;

	pthread_mutex_lock(&so->so_lock);
	for (pp = &so->so_waiters; *pp != NULL; pp = &(*pp)->sw_next)
		if (*pp == w) {
			*pp = w->sw_next;
			break;
		}
	pthread_mutex_unlock(&so->so_lock);
}

/* One eventfd per waiting thread, closed when the thread exits. */
static pthread_key_t sock_evfd_key;
static pthread_once_t sock_evfd_once = PTHREAD_ONCE_INIT;
static __thread int sock_evfd = -1;
static __thread pid_t sock_evfd_pid;

static void
sock_evfd_dtor(void *p)
{
	(void)p;
	if (sock_evfd >= 0)
		(void)LIBC(close)(sock_evfd);
	sock_evfd = -1;
}

static void
sock_evfd_init(void)
{
	(void)pthread_key_create(&sock_evfd_key, sock_evfd_dtor);
}

int
sock_thread_evfd(void)
{
	pid_t pid = getpid();

	/* A forked child shares the parent's eventfd: make its own. */
	if (sock_evfd >= 0 && sock_evfd_pid == pid)
		return sock_evfd;
	pthread_once(&sock_evfd_once, sock_evfd_init);
	if (sock_evfd >= 0)
		(void)LIBC(close)(sock_evfd);
	sock_evfd = sock_fd_high(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
	sock_evfd_pid = pid;
	if (sock_evfd >= 0)
		(void)pthread_setspecific(sock_evfd_key, (void *)1);
	return sock_evfd;
}

int
sock_fd_high(int fd)
{
	static int high;
	struct rlimit rl;
	int nfd;

	if (fd < 0)
		return fd;
	if (high == 0) {
		rl.rlim_cur = 1024;
		(void)getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur > 1u << 20)
			rl.rlim_cur = 1u << 20;
		high = rl.rlim_cur > 1024 ? (int)rl.rlim_cur - 512
		                          : (int)rl.rlim_cur * 3 / 4;
	}
	if (fd >= high || (nfd = LIBC(fcntl)(fd, F_DUPFD_CLOEXEC, high)) < 0)
		return fd;
	(void)LIBC(close)(fd);
	return nfd;
}

void
sock_thread_evfd_drain(int fd)
{
	uint64_t v;

	(void)LIBC(read)(fd, &v, sizeof(v));
}
