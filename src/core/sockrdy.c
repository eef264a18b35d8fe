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
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
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

/*
 * Blocking calls.  A socket whose filters work asynchronously (a timer,
 * an injection, flow control: SO_F_ASYNC) cannot block in the kernel
 * alone, since what it waits for may come from the library.  It waits
 * here: the kernel's readiness (masked as the library requires) or a
 * change of the library's state, whichever comes first.
 */
int
sock_wait(struct sock *so, int fd, short events, int timeout_ms)
{
	struct sock_waiter w;
	struct pollfd p[2];
	unsigned rdy;
	short want = events; /* before the kernel's part is masked */
	int r, evfd = sock_thread_evfd();

	if (evfd < 0)
		return 0; /* no eventfd: let the kernel call block */
	w.sw_evfd = evfd;
	sock_wait_add(so, &w);
	rdy = atomic_load(&so->so_rdy);
	if (rdy & SO_RDY_MASKIN)
		events &= ~POLLIN;
	if (rdy & SO_RDY_MASKOUT)
		events &= ~POLLOUT;
	p[0].fd = fd;
	p[0].events = events;
	p[1].fd = evfd;
	p[1].events = POLLIN;
	/* Registered first: a change from now on writes evfd, one before
	 * is in the state (computed afresh: so_rdy may lag).  The library's
	 * data counts also where the kernel's readability is masked (a
	 * queueing listener, flow control). */
	if (want & POLLIN) {
		pthread_mutex_lock(&so->so_lock);
		rdy = sock_rdy_compute(so);
		pthread_mutex_unlock(&so->so_lock);
		if (rdy & SO_RDY_IN) {
			sock_wait_del(so, &w);
			return 0;
		}
	}
	r = LIBC(poll)(p, 2, timeout_ms);
	sock_wait_del(so, &w);
	if (r < 0)
		return errno;
	if (p[1].revents)
		sock_thread_evfd_drain(evfd);
	return r == 0 ? EAGAIN : 0;
}

/* SO_RCVTIMEO/SO_SNDTIMEO in ms, -1 for none. */
int
sock_timeo_ms(int fd, int name)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (LIBC(getsockopt)(fd, SOL_SOCKET, name, &tv, &len) < 0 ||
	    (tv.tv_sec == 0 && tv.tv_usec == 0))
		return -1;
	return (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
}

/*
 * A nonblocking connect's outcome, learnt when poll/epoll report the
 * socket (revents) or when the program asks SO_ERROR (revents -1: look
 * without waiting).  The filters hear CONNECTED or CONNECTFAILED once.
 */
void
sock_conn_settle(struct sock *so, int fd, int revents)
{
	socklen_t len = sizeof(int);
	int err = 0;

	if (!(atomic_load(&so->so_flags) & SO_F_CONNECTING))
		return;
	if (revents < 0) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};

		if (LIBC(poll)(&p, 1, 0) <= 0)
			return;
		revents = p.revents;
	}
	if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
		return;
	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == 0 && (revents & (POLLERR | POLLHUP)) && !(revents & POLLOUT))
		err = ECONNREFUSED;
	/* SO_ERROR is read-and-clear: keep it for the program. */
	so->so_conn_err = err;
	sock_conn_done(so, err);
}

void
sock_conn_done(struct sock *so, int err)
{
	if (!(atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_CONNECTING) &
	        SO_F_CONNECTING))
		return; /* told already */
	if (err == 0) {
		atomic_fetch_or(&so->so_flags, SO_F_CONNECTED);
		stk_notify(so, SOF_EV_CONNECTED, 0);
	} else {
		stk_notify(so, SOF_EV_CONNECTFAILED, (uintptr_t)err);
	}
}
