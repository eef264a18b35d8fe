/*
 * wrap_io.c: every send and receive path.  Filtered sockets go through
 * sock_sendmsg()/sock_recvmsg() (src/core/sock.c); the rest straight to
 * libc after one table lookup.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "interpose.h"

#define SFI_CHUNK 65536 /* sendfile/splice emulation buffer */

/* glibc's fortified entry points (-D_FORTIFY_SOURCE=2) have no header. */
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *from, socklen_t *fromlen);
ssize_t __read_chk(int fd, void *buf, size_t len, size_t buflen);

/* Receive into one buffer through the filters (reference kept). */
static inline ssize_t
sfi_recvbuf(struct sock *so, int fd, void *buf, size_t len, int flags,
    struct sockaddr *from, socklen_t *fromlen)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m;
	ssize_t r;

	if (from == NULL || fromlen == NULL)
		return sock_recv(so, fd, buf, len, flags); /* no msghdr */
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_name = from;
	m.msg_namelen = *fromlen;
	r = sock_recvmsg(so, fd, &m, flags);
	if (r >= 0)
		*fromlen = m.msg_namelen;
	return r;
}

/* The same, dropping the caller's reference. */
static ssize_t
sfi_recv(struct sock *so, int fd, void *buf, size_t len, int flags,
    struct sockaddr *from, socklen_t *fromlen)
{
	ssize_t r = sfi_recvbuf(so, fd, buf, len, flags, from, fromlen);

	sock_rele(so);
	return r;
}

/* Send one buffer through the filters (reference kept). */
static inline ssize_t
sfi_sendbuf(struct sock *so, int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	struct iovec iov = {.iov_base = (void *)(uintptr_t)buf, .iov_len = len};
	struct msghdr m;
	ssize_t r;

	if (to == NULL)
		return sock_send(so, fd, buf, len, flags); /* no msghdr */
	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_name = (void *)(uintptr_t)to;
	m.msg_namelen = tolen;
	r = sock_sendmsg(so, fd, &m, flags);
	return r;
}

static ssize_t
sfi_send(struct sock *so, int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	ssize_t r = sfi_sendbuf(so, fd, buf, len, flags, to, tolen);

	sock_rele(so);
	return r;
}

static __attribute__((noinline)) ssize_t
sfi_recv_slow(int fd, void *buf, size_t len, int flags, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(recv)(fd, buf, len, flags);
	r = sfi_recv(so, fd, buf, len, flags, NULL, NULL);
	SFI_RET(r);
}

SF_EXPORT ssize_t
recv(int fd, void *buf, size_t len, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(recv)(fd, buf, len, flags);
	return sfi_recv_slow(fd, buf, len, flags, e);
}

static __attribute__((noinline)) ssize_t
sfi_recv_chk_slow(int fd, void *buf, size_t len, size_t buflen, int flags,
    uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(__recv_chk)(fd, buf, len, buflen, flags);
	if (len > buflen)
		abort(); /* what glibc's fortify check does */
	r = sfi_recv(so, fd, buf, len, flags, NULL, NULL);
	SFI_RET(r);
}

SF_EXPORT ssize_t
__recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(__recv_chk)(fd, buf, len, buflen, flags);
	return sfi_recv_chk_slow(fd, buf, len, buflen, flags, e);
}

static __attribute__((noinline)) ssize_t
sfi_recvfrom_slow(int fd, void *buf, size_t len, int flags,
    struct sockaddr *from, socklen_t *fromlen, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(recvfrom)(fd, buf, len, flags, from, fromlen);
	r = sfi_recv(so, fd, buf, len, flags, from, fromlen);
	SFI_RET(r);
}

SF_EXPORT ssize_t
recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *from,
    socklen_t *fromlen)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(recvfrom)(fd, buf, len, flags, from, fromlen);
	return sfi_recvfrom_slow(fd, buf, len, flags, from, fromlen, e);
}

static __attribute__((noinline)) ssize_t
sfi_recvfrom_chk_slow(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *from, socklen_t *fromlen, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(
		    __recvfrom_chk)(fd, buf, len, buflen, flags, from, fromlen);
	if (len > buflen)
		abort();
	r = sfi_recv(so, fd, buf, len, flags, from, fromlen);
	SFI_RET(r);
}

SF_EXPORT ssize_t
__recvfrom_chk(int fd, void *buf, size_t len, size_t buflen, int flags,
    struct sockaddr *from, socklen_t *fromlen)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(
		    __recvfrom_chk)(fd, buf, len, buflen, flags, from, fromlen);
	return sfi_recvfrom_chk_slow(fd, buf, len, buflen, flags, from, fromlen,
	    e);
}

static __attribute__((noinline)) ssize_t
sfi_read_slow(int fd, void *buf, size_t len, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(read)(fd, buf, len);
	r = sfi_recv(so, fd, buf, len, 0, NULL, NULL);
	SFI_RET(r);
}

SF_EXPORT ssize_t
read(int fd, void *buf, size_t len)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(read)(fd, buf, len);
	return sfi_read_slow(fd, buf, len, e);
}

static __attribute__((noinline)) ssize_t
sfi_read_chk_slow(int fd, void *buf, size_t len, size_t buflen, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(__read_chk)(fd, buf, len, buflen);
	if (len > buflen)
		abort();
	r = sfi_recv(so, fd, buf, len, 0, NULL, NULL);
	SFI_RET(r);
}

SF_EXPORT ssize_t
__read_chk(int fd, void *buf, size_t len, size_t buflen)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(__read_chk)(fd, buf, len, buflen);
	return sfi_read_chk_slow(fd, buf, len, buflen, e);
}

static __attribute__((noinline)) ssize_t
sfi_readv_slow(int fd, const struct iovec *iov, int cnt, uintptr_t e)
{
	struct sock *so;
	struct msghdr m;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(readv)(fd, iov, cnt);
	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = cnt < 0 ? 0 : (size_t)cnt;
	r = cnt < 0 ? -EINVAL : sock_recvmsg(so, fd, &m, 0);
	sock_rele(so);
	SFI_RET(r);
}

SF_EXPORT ssize_t
readv(int fd, const struct iovec *iov, int cnt)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(readv)(fd, iov, cnt);
	return sfi_readv_slow(fd, iov, cnt, e);
}

static __attribute__((noinline)) ssize_t
sfi_recvmsg_slow(int fd, struct msghdr *msg, int flags, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL) {
		r = LIBC(recvmsg)(fd, msg, flags);
		if (r >= 0 && msg->msg_controllen > 0)
			fdt_scan_rights(msg);
		return r;
	}
	r = sock_recvmsg(so, fd, msg, flags);
	sock_rele(so);
	if (r >= 0 && msg->msg_controllen > 0)
		fdt_scan_rights(msg);
	SFI_RET(r);
}

SF_EXPORT ssize_t
recvmsg(int fd, struct msghdr *msg, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(recvmsg)(fd, msg, flags);
	return sfi_recvmsg_slow(fd, msg, flags, e);
}

static __attribute__((noinline)) int
sfi_recvmmsg_slow(int fd, struct mmsghdr *vec, unsigned int n, int flags,
    struct timespec *timeout, uintptr_t e)
{
	struct sock *so;
	unsigned int i;
	ssize_t r = 0;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(recvmmsg)(fd, vec, n, flags, timeout);
	/* After the first message, take only what is there already. */
	for (i = 0; i < n; i++) {
		int f = flags & ~MSG_WAITFORONE;

		if (i > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		r = sock_recvmsg(so, fd, &vec[i].msg_hdr, f);
		if (r < 0)
			break;
		vec[i].msg_len = (unsigned int)r;
	}
	sock_rele(so);
	if (i > 0)
		return (int)i;
	SFI_RET(r);
}

SF_EXPORT int
recvmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags,
    struct timespec *timeout)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(recvmmsg)(fd, vec, n, flags, timeout);
	return sfi_recvmmsg_slow(fd, vec, n, flags, timeout, e);
}

static __attribute__((noinline)) ssize_t
sfi_send_slow(int fd, const void *buf, size_t len, int flags, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(send)(fd, buf, len, flags);
	r = sfi_send(so, fd, buf, len, flags, NULL, 0);
	SFI_RET(r);
}

SF_EXPORT ssize_t
send(int fd, const void *buf, size_t len, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(send)(fd, buf, len, flags);
	return sfi_send_slow(fd, buf, len, flags, e);
}

static __attribute__((noinline)) ssize_t
sfi_sendto_slow(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(sendto)(fd, buf, len, flags, to, tolen);
	r = sfi_send(so, fd, buf, len, flags, to, tolen);
	SFI_RET(r);
}

SF_EXPORT ssize_t
sendto(int fd, const void *buf, size_t len, int flags,
    const struct sockaddr *to, socklen_t tolen)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(sendto)(fd, buf, len, flags, to, tolen);
	return sfi_sendto_slow(fd, buf, len, flags, to, tolen, e);
}

static __attribute__((noinline)) ssize_t
sfi_write_slow(int fd, const void *buf, size_t len, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(write)(fd, buf, len);
	r = sfi_send(so, fd, buf, len, 0, NULL, 0);
	SFI_RET(r);
}

SF_EXPORT ssize_t
write(int fd, const void *buf, size_t len)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(write)(fd, buf, len);
	return sfi_write_slow(fd, buf, len, e);
}

static __attribute__((noinline)) ssize_t
sfi_writev_slow(int fd, const struct iovec *iov, int cnt, uintptr_t e)
{
	struct sock *so;
	struct msghdr m;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(writev)(fd, iov, cnt);
	memset(&m, 0, sizeof(m));
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = cnt < 0 ? 0 : (size_t)cnt;
	r = cnt < 0 ? -EINVAL : sock_sendmsg(so, fd, &m, 0);
	sock_rele(so);
	SFI_RET(r);
}

SF_EXPORT ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(writev)(fd, iov, cnt);
	return sfi_writev_slow(fd, iov, cnt, e);
}

static __attribute__((noinline)) ssize_t
sfi_sendmsg_slow(int fd, const struct msghdr *msg, int flags, uintptr_t e)
{
	struct sock *so;
	ssize_t r;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(sendmsg)(fd, msg, flags);
	r = sock_sendmsg(so, fd, msg, flags);
	sock_rele(so);
	SFI_RET(r);
}

SF_EXPORT ssize_t
sendmsg(int fd, const struct msghdr *msg, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(sendmsg)(fd, msg, flags);
	return sfi_sendmsg_slow(fd, msg, flags, e);
}

static __attribute__((noinline)) int
sfi_sendmmsg_slow(int fd, struct mmsghdr *vec, unsigned int n, int flags,
    uintptr_t e)
{
	struct sock *so;
	unsigned int i;
	ssize_t r = 0;

	if ((so = fdt_hold(fd, e)) == NULL)
		return LIBC(sendmmsg)(fd, vec, n, flags);
	for (i = 0; i < n; i++) {
		r = sock_sendmsg(so, fd, &vec[i].msg_hdr, flags);
		if (r < 0)
			break;
		vec[i].msg_len = (unsigned int)r;
	}
	sock_rele(so);
	if (i > 0)
		return (int)i;
	SFI_RET(r);
}

SF_EXPORT int
sendmmsg(int fd, struct mmsghdr *vec, unsigned int n, int flags)
{
	uintptr_t e = fdt_peek(fd);

	if (SF_LIKELY(fdt_fast(e)))
		return LIBC(sendmmsg)(fd, vec, n, flags);
	return sfi_sendmmsg_slow(fd, vec, n, flags, e);
}

/* Send all of buf through the filters, waiting for room if needed: the
 * bytes were already taken from a pipe or file and must not be lost. */
static ssize_t
sfi_send_all(struct sock *so, int fd, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = sfi_sendbuf(so, fd, buf + done, len - done,
		    MSG_NOSIGNAL, NULL, 0);

		if (r == -EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};

			(void)LIBC(poll)(&p, 1, 1000);
			continue;
		}
		if (r < 0)
			return done > 0 ? (ssize_t)done : r;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* sendfile to a filtered socket: the bytes must pass data_out, so they are
 * read and sent through the filters instead of spliced in the kernel. */
static ssize_t
sfi_sendfile(int out, int in, off_t *off, size_t count, bool is64)
{
	uintptr_t e = fdt_peek(out);
	char *buf;
	struct sock *so;
	ssize_t n, r;

	so = SF_LIKELY(fdt_fast(e)) ? NULL : fdt_hold(out, e);
	if (so != NULL && !(atomic_load(&so->so_ops) & SO_OP_DATA_OUT) &&
	    SO_LOAD(so->so_tx_rem) == NULL) {
		sock_rele(so);
		so = NULL;
	}
	if (so == NULL)
		return is64 ? LIBC(sendfile64)(out, in, off, count)
		            : LIBC(sendfile)(out, in, off, count);
	if (count > SFI_CHUNK)
		count = SFI_CHUNK;
	if ((buf = malloc(count > 0 ? count : 1)) == NULL) {
		sock_rele(so);
		errno = ENOMEM;
		return -1;
	}
	n = off != NULL ? pread(in, buf, count, *off)
	                : LIBC(read)(in, buf, count);
	if (n <= 0) {
		int saved = errno;

		free(buf);
		sock_rele(so);
		errno = saved;
		return n;
	}
	r = sfi_send_all(so, out, buf, (size_t)n);
	sock_rele(so);
	free(buf);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	if (off != NULL)
		*off += r;
	else if (r < n)
		(void)lseek(in, r - n, SEEK_CUR);
	return r;
}

SF_EXPORT ssize_t
sendfile(int out, int in, off_t *off, size_t count)
{
	return sfi_sendfile(out, in, off, count, false);
}

SF_EXPORT ssize_t
sendfile64(int out, int in, off_t *off, size_t count)
{
	return sfi_sendfile(out, in, off, count, true);
}

SF_EXPORT ssize_t
splice(int in, loff_t *inoff, int out, loff_t *outoff, size_t len,
    unsigned int flags)
{
	uintptr_t ein = fdt_peek(in), eout = fdt_peek(out);
	struct sock *sin = NULL, *sout = NULL;
	char *buf;
	ssize_t n, r;

	if (SF_LIKELY(fdt_fast(ein) && fdt_fast(eout)))
		return LIBC(splice)(in, inoff, out, outoff, len, flags);
	if (!fdt_fast(ein))
		sin = fdt_hold(in, ein);
	if (!fdt_fast(eout))
		sout = fdt_hold(out, eout);
	if (sin == NULL && sout == NULL)
		return LIBC(splice)(in, inoff, out, outoff, len, flags);
	if (len > SFI_CHUNK)
		len = SFI_CHUNK;
	if ((buf = malloc(len > 0 ? len : 1)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (sin != NULL) {
		n = sfi_recvbuf(sin, in, buf, len,
		    (flags & SPLICE_F_NONBLOCK) ? MSG_DONTWAIT : 0, NULL, NULL);
	} else {
		n = inoff != NULL ? pread(in, buf, len, *inoff)
		                  : LIBC(read)(in, buf, len);
		if (n < 0)
			n = -errno;
		else if (inoff != NULL)
			*inoff += n;
	}
	if (n <= 0) {
		r = n;
	} else if (sout != NULL) {
		r = sfi_send_all(sout, out, buf, (size_t)n);
	} else {
		r = outoff != NULL ? pwrite(out, buf, (size_t)n, *outoff)
		                   : LIBC(write)(out, buf, (size_t)n);
		if (r < 0)
			r = -errno;
		else if (outoff != NULL)
			*outoff += r;
	}
	free(buf);
out:
	if (sin != NULL)
		sock_rele(sin);
	if (sout != NULL)
		sock_rele(sout);
	SFI_RET(r);
}
