/*
 * wrap_opt.c: socket options (SOL_FILTER included), ioctl and fcntl.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "interpose.h"

#define SFI_OPTMAX 256 /* option values filters may rewrite in place */

/* SOL_FILTER: attach, detach, list.  Sockets the configuration offers no
 * programmatic filter to have no object: nothing can attach to them. */
static int
sfi_solfilter_set(int fd, int name, const void *val, socklen_t len)
{
	char fname[FILNAME_MAX];
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int error;

	if (name != FIL_ATTACH && name != FIL_DETACH)
		return EINVAL;
	if (val == NULL || len == 0)
		return EINVAL;
	memset(fname, 0, sizeof(fname));
	memcpy(fname, val, len < FILNAME_MAX - 1 ? len : FILNAME_MAX - 1);
	if ((so = fdt_hold(fd, e)) == NULL) {
		int type;
		socklen_t tl = sizeof(type);

		/* Not a socket, or one no programmatic filter is for. */
		if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0)
			return errno;
		return ENXIO;
	}
	error = name == FIL_ATTACH ? stk_fil_attach(so, fname)
	                           : stk_fil_detach(so, fname);
	sock_rele(so);
	return error;
}

/* SO_ACCEPTFILTER, FreeBSD's rules: only on a listening socket, the
 * whole structure, ENOENT for an unknown filter, EINVAL when one is set
 * already; NULL removes it and releases the connections it held. */
static int
sfi_af_set(int fd, const void *val, socklen_t len)
{
	struct accept_filter_arg afa;
	int on = 0, error, dom, type, proto;
	socklen_t ol = sizeof(on);
	struct cfg_snap *cs;
	struct sock *so;

	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) < 0)
		return errno;
	so = fdt_hold(fd, fdt_peek(fd));
	if (val == NULL) {
		error = so != NULL ? stk_af_clear(so) : 0;
		if (so != NULL)
			sock_rele(so);
		return error;
	}
	if (!on || len < sizeof(afa)) {
		if (so != NULL)
			sock_rele(so);
		return EINVAL;
	}
	memcpy(&afa, val, sizeof(afa));
	if (so == NULL) {
		/* A listener nothing was attached to: give it an object. */
		ol = sizeof(int);
		if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &dom, &ol) <
		        0 ||
		    LIBC(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &ol) < 0 ||
		    LIBC(getsockopt)(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &ol) <
		        0)
			return errno;
		cs = sfi_config();
		error = sock_create_empty(fd, dom, type, proto, cs, &so);
		if (cs != NULL)
			cfg_rele(cs);
		if (error != 0)
			return error;
		atomic_fetch_and(&so->so_flags, ~(unsigned)SO_F_FILOP_OK);
		atomic_fetch_or(&so->so_flags, SO_F_LISTENING);
		if (LIBC(fcntl)(fd, F_GETFL) & O_NONBLOCK)
			atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
		sock_hold(so);
		fdt_set(fd, (uintptr_t)so);
	}
	if ((error = stk_af_set(so, &afa)) == 0)
		error = aq_enable(so, fd);
	sock_rele(so);
	return error;
}

static int
sfi_af_get(int fd, void *val, socklen_t *len)
{
	struct accept_filter_arg afa;
	int on = 0, error;
	socklen_t ol = sizeof(on);
	struct sock *so;

	if (LIBC(getsockopt)(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol) < 0)
		return errno;
	if (val == NULL || len == NULL ||
	    (so = fdt_hold(fd, fdt_peek(fd))) == NULL)
		return EINVAL;
	error = stk_af_get(so, &afa);
	sock_rele(so);
	if (error != 0)
		return error;
	if (*len > sizeof(afa))
		*len = sizeof(afa);
	memcpy(val, &afa, *len);
	return 0;
}

SF_EXPORT int
setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	uintptr_t e = fdt_peek(fd);
	unsigned char buf[SFI_OPTMAX];
	struct sock *so;
	int r;

	if (level == SOL_FILTER ||
	    (level == SOL_SOCKET && name == SO_ACCEPTFILTER)) {
		r = level == SOL_FILTER ? sfi_solfilter_set(fd, name, val, len)
		                        : sfi_af_set(fd, val, len);
		if (r != 0) {
			errno = r;
			return -1;
		}
		return 0;
	}
	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(setsockopt)(fd, level, name, val, len);
	sock_op_issued(so);
	if (val == NULL || len > sizeof(buf)) {
		r = LIBC(setsockopt)(fd, level, name, val, len);
	} else {
		memcpy(buf, val, len);
		r = stk_setsockopt(so, level, name, buf, &len);
		if (r == -1)
			r = LIBC(setsockopt)(fd, level, name, buf, len);
		else if (r > 0) {
			errno = r;
			r = -1;
		}
	}
	sock_rele(so);
	return r;
}

SF_EXPORT int
getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	int r, saved;

	if (level == SOL_SOCKET && name == SO_ACCEPTFILTER) {
		int error = sfi_af_get(fd, val, len);

		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (level == SOL_FILTER) {
		int error = EINVAL;

		if (name == FIL_LIST && val != NULL && len != NULL) {
			so = fdt_hold(fd, e);
			if (so != NULL) {
				error = stk_fil_list(so, val, len);
				sock_rele(so);
			} else if (*len < sizeof(struct fil_info)) {
				error = EINVAL;
			} else {
				int type;
				socklen_t tl = sizeof(type);

				error = LIBC(getsockopt)(fd, SOL_SOCKET,
				            SO_TYPE, &type, &tl) < 0
				            ? errno
				            : 0;
				if (error == 0)
					*len = 0; /* a socket with no filter */
			}
		}
		if (error != 0) {
			errno = error;
			return -1;
		}
		return 0;
	}
	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(getsockopt)(fd, level, name, val, len);
	sock_op_issued(so);
	r = (val != NULL && len != NULL)
	        ? stk_getsockopt(so, level, name, val, len)
	        : -1;
	if (r == -1)
		r = LIBC(getsockopt)(fd, level, name, val, len);
	else if (r > 0) {
		errno = r;
		r = -1;
	}
	saved = errno;
	/* A nonblocking connect's outcome is learnt here (or by poll/epoll):
	 * tell the filters once, and hand over an error we read for them. */
	if (r == 0 && level == SOL_SOCKET && name == SO_ERROR && val != NULL &&
	    len != NULL && *len >= sizeof(int)) {
		int err;

		memcpy(&err, val, sizeof(err));
		if (err != 0)
			sock_conn_done(so, err);
		else
			sock_conn_settle(so, fd, -1);
		memcpy(&err, val, sizeof(err));
		if (err == 0 && so->so_conn_err != 0) {
			memcpy(val, &so->so_conn_err, sizeof(int));
			so->so_conn_err = 0;
		}
	}
	sock_rele(so);
	errno = saved;
	return r;
}

SF_EXPORT int
ioctl(int fd, unsigned long req, ...)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;
	va_list ap;
	void *arg;
	int32_t rv = 0;
	int r;

	/* The argument is a pointer or an int: fetch a pointer-sized word. */
	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (SF_LIKELY(fdt_fast(e)) || (so = fdt_hold(fd, e)) == NULL)
		return LIBC(ioctl)(fd, req, arg);
	sock_op_issued(so);
	r = stk_ioctl(so, (int)req, (intptr_t)arg, &rv);
	if (r == 0) {
		r = rv;
	} else if (r > 0) {
		errno = r;
		r = -1;
	} else {
		r = LIBC(ioctl)(fd, req, arg);
		if (r == 0 && req == FIONBIO && arg != NULL) {
			if (*(int *)arg)
				atomic_fetch_or(&so->so_flags, SO_F_NONBLOCK);
			else
				atomic_fetch_and(&so->so_flags,
				    ~(unsigned)SO_F_NONBLOCK);
		}
		/* Bytes the library holds are readable too. */
		if (r == 0 && req == FIONREAD && arg != NULL)
			*(int *)arg += (int)sock_rq_bytes(so);
	}
	sock_rele(so);
	return r;
}

/* fcntl and fcntl64 share this; dup commands go through the fd table. */
static int
sfi_fcntl(int fd, int cmd, void *arg, bool is64)
{
	int r = is64 ? LIBC(fcntl64)(fd, cmd, arg) : LIBC(fcntl)(fd, cmd, arg);
	uintptr_t e;

	if (r < 0)
		return r;
	switch (cmd) {
	case F_DUPFD:
	case F_DUPFD_CLOEXEC:
		fdt_dup(fd, r);
		break;
	case F_SETFL:
		e = fdt_peek(fd);
		if (fdt_is_sock(e)) {
			struct sock *so = fdt_hold(fd, e);

			if (so != NULL) {
				if ((intptr_t)arg & O_NONBLOCK)
					atomic_fetch_or(&so->so_flags,
					    SO_F_NONBLOCK);
				else
					atomic_fetch_and(&so->so_flags,
					    ~(unsigned)SO_F_NONBLOCK);
				sock_rele(so);
			}
		}
		break;
	default:
		break;
	}
	return r;
}

SF_EXPORT int
fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return sfi_fcntl(fd, cmd, arg, false);
}

SF_EXPORT int
fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return sfi_fcntl(fd, cmd, arg, true);
}
