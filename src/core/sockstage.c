/*
 * sockstage.c: sends from signal handlers.
 *
 * send() is async-signal-safe, so a program may call it from a signal
 * handler.  The filtered path is not: it allocates and takes the socket's
 * locks, and the handler may have interrupted this very thread inside
 * the library holding both.  A send that finds its thread already inside
 * the library (sock_depth > 0) therefore only copies the bytes into the
 * socket's stage, a ring mapped with mmap (async-signal-safe) and guarded
 * by a flag that is tried, never waited for, and returns.  The staged
 * bytes go through the filters, in order, after whatever the interrupted
 * call was doing: when that call leaves the library, at the next call of
 * any thread, or on the service thread.
 */
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mman.h>

#include "core.h"
#include "libc.h"
#include "log.h"

#define STAGE_SIZE (256 * 1024)

struct sock_stage {
	atomic_flag sg_busy;
	size_t sg_head, sg_tail; /* free-running byte counts */
	unsigned char sg_buf[STAGE_SIZE];
};

__thread int sock_depth __attribute__((tls_model("initial-exec")));
atomic_int sock_staged; /* some socket has staged bytes */

ssize_t
sock_stage_put(struct sock *so, const struct msghdr *msg)
{
	struct sock_stage *sg = atomic_load(&so->so_stage), *none = NULL;
	size_t i, n = 0, room;

	if (!(atomic_load(&so->so_flags) & SO_F_STREAM))
		return -EAGAIN; /* boundaries would be lost: not staged */
	if (sg == NULL) {
		sg = mmap(NULL, sizeof(*sg), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (sg == MAP_FAILED)
			return -ENOBUFS;
		if (!atomic_compare_exchange_strong(&so->so_stage, &none, sg)) {
			(void)munmap(sg, sizeof(*sg));
			sg = none;
		}
	}
	if (atomic_flag_test_and_set(&sg->sg_busy))
		return -EAGAIN;
	room = STAGE_SIZE - (sg->sg_tail - sg->sg_head);
	for (i = 0; i < (size_t)msg->msg_iovlen && room > 0; i++) {
		const unsigned char *p = msg->msg_iov[i].iov_base;
		size_t len = msg->msg_iov[i].iov_len;

		if (len > room)
			len = room;
		while (len > 0) {
			size_t off = sg->sg_tail % STAGE_SIZE;
			size_t k =
			    STAGE_SIZE - off < len ? STAGE_SIZE - off : len;

			memcpy(sg->sg_buf + off, p, k);
			sg->sg_tail += k;
			p += k;
			len -= k;
			n += k;
			room -= k;
		}
	}
	atomic_flag_clear(&sg->sg_busy);
	if (n == 0)
		return -EAGAIN;
	atomic_store(&sock_staged, 1);
	svc_kick();
	return (ssize_t)n;
}

/* Send so's staged bytes through its filters (normal context). */
void
sock_stage_flush(struct sock *so)
{
	struct sock_stage *sg = atomic_load(&so->so_stage);
	unsigned char *copy;
	struct msghdr m;
	struct iovec iov;
	size_t n, off, k;

	if (sg == NULL || sg->sg_head == sg->sg_tail || SO_LOAD(so->so_fd) < 0)
		return;
	while (atomic_flag_test_and_set(&sg->sg_busy))
		; /* held only by a copy, never across a wait */
	n = sg->sg_tail - sg->sg_head;
	if ((copy = malloc(n)) != NULL) {
		for (off = 0; off < n; off += k) {
			size_t at = (sg->sg_head + off) % STAGE_SIZE;

			k = STAGE_SIZE - at < n - off ? STAGE_SIZE - at
			                              : n - off;
			memcpy(copy + off, sg->sg_buf + at, k);
		}
		sg->sg_head += n;
	}
	atomic_flag_clear(&sg->sg_busy);
	if (copy == NULL)
		return;
	memset(&m, 0, sizeof(m));
	for (off = 0; off < n;) {
		ssize_t r;

		iov.iov_base = copy + off;
		iov.iov_len = n - off;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		r = sock_sendmsg(so, SO_LOAD(so->so_fd), &m, MSG_NOSIGNAL);
		if (r > 0) {
			off += (size_t)r;
		} else if (r != -EAGAIN && r != -EINTR) {
			sf_log(SF_LOG_WARN,
			    "fd %d: %zu bytes a signal handler sent are lost: "
			    "%s",
			    SO_LOAD(so->so_fd), n - off, strerror((int)-r));
			break;
		} else {
			(void)sock_wait(so, SO_LOAD(so->so_fd), POLLOUT, 100);
		}
	}
	free(copy);
}

void
sock_stage_drain(void)
{
	if (sock_depth > 0 || !atomic_exchange(&sock_staged, 0))
		return;
	sock_foreach(sock_stage_flush);
}

void
sock_stage_free(struct sock *so)
{
	struct sock_stage *sg = atomic_exchange(&so->so_stage, NULL);

	if (sg != NULL)
		(void)munmap(sg, sizeof(*sg));
}
