/*
 * wrap_misc.c: syscall() for the socket numbers, and stdio on sockets.
 */
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "interpose.h"

/*
 * syscall(): the socket and descriptor numbers go to our wrappers (which
 * return -1/errno just as syscall() does); every other number passes
 * through untouched.  Six argument words are always fetched, as the
 * kernel ABI has them.
 */
SF_EXPORT long
syscall(long nr, ...)
{
	long a[6];
	va_list ap;
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
#define P(i) ((void *)a[i])
#define I(i) ((int)a[i])
#define Z(i) ((size_t)a[i])
	switch (nr) {
	case SYS_socket:
		return socket(I(0), I(1), I(2));
	case SYS_socketpair:
		return socketpair(I(0), I(1), I(2), P(3));
	case SYS_bind:
		return bind(I(0), P(1), (socklen_t)a[2]);
	case SYS_listen:
		return listen(I(0), I(1));
	case SYS_connect:
		return connect(I(0), P(1), (socklen_t)a[2]);
	case SYS_accept:
		return accept(I(0), P(1), P(2));
	case SYS_accept4:
		return accept4(I(0), P(1), P(2), I(3));
	case SYS_sendto:
		return sendto(I(0), P(1), Z(2), I(3), P(4), (socklen_t)a[5]);
	case SYS_recvfrom:
		return recvfrom(I(0), P(1), Z(2), I(3), P(4), P(5));
	case SYS_sendmsg:
		return sendmsg(I(0), P(1), I(2));
	case SYS_recvmsg:
		return recvmsg(I(0), P(1), I(2));
	case SYS_sendmmsg:
		return sendmmsg(I(0), P(1), (unsigned)a[2], I(3));
	case SYS_recvmmsg:
		return recvmmsg(I(0), P(1), (unsigned)a[2], I(3), P(4));
	case SYS_shutdown:
		return shutdown(I(0), I(1));
	case SYS_getsockname:
		return getsockname(I(0), P(1), P(2));
	case SYS_getpeername:
		return getpeername(I(0), P(1), P(2));
	case SYS_setsockopt:
		return setsockopt(I(0), I(1), I(2), P(3), (socklen_t)a[4]);
	case SYS_getsockopt:
		return getsockopt(I(0), I(1), I(2), P(3), P(4));
	case SYS_read:
		return read(I(0), P(1), Z(2));
	case SYS_write:
		return write(I(0), P(1), Z(2));
	case SYS_readv:
		return readv(I(0), P(1), I(2));
	case SYS_writev:
		return writev(I(0), P(1), I(2));
	case SYS_close:
		return close(I(0));
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], I(2));
	case SYS_dup:
		return dup(I(0));
	case SYS_dup2:
		return dup2(I(0), I(1));
	case SYS_dup3:
		return dup3(I(0), I(1), I(2));
	default:
		return LIBC(syscall)(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	}
#undef P
#undef I
#undef Z
}

/*
 * glibc's stdio reads and writes a descriptor with internal calls we never
 * see, so a FILE on a filtered socket would bypass the filters.  Rather
 * than let data pass unfiltered in silence, the filters are bypassed for
 * the socket with one warning that names them.
 */
SF_EXPORT FILE *
fdopen(int fd, const char *mode)
{
	uintptr_t e = fdt_peek(fd);
	struct sock *so;

	if (!fdt_fast(e) && (so = fdt_hold(fd, e)) != NULL) {
		if (atomic_load(&so->so_nactive) > 0) {
			struct stk_inst *inst;
			char names[256] = "";
			size_t off = 0;

			(void)sock_flush(so, fd);
			for (inst = so->so_top; inst != NULL;
			     inst = inst->si_down) {
				if (inst->si_flags & SI_F_BYPASS)
					continue;
				off += (size_t)snprintf(names + off,
				    off < sizeof(names) ? sizeof(names) - off
				                        : 0,
				    "%s%s", off ? ", " : "",
				    sof_get_name((sof_handle_t)inst));
				if (off >= sizeof(names))
					off = sizeof(names) - 1;
				sof_bypass((sof_handle_t)inst);
			}
			sf_log(SF_LOG_WARN,
			    "fdopen() on socket fd %d: stdio bypasses the "
			    "library, so its filters are now bypassed "
			    "(%s)%s",
			    fd, names,
			    sock_rq_bytes(so) > 0
			        ? "; data already received by the filters is "
			          "still returned by read()/recv()"
			        : "");
		}
		sock_rele(so);
	}
	return LIBC(fdopen)(fd, mode);
}

/* fclose closes the descriptor with an internal call: forget it first. */
SF_EXPORT int
fclose(FILE *f)
{
	int fd = f != NULL ? fileno(f) : -1;

	if (fd >= 0 && fdt_peek(fd) != FDT_UNKNOWN)
		fdt_close(fd);
	return LIBC(fclose)(f);
}
