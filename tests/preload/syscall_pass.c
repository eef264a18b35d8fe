/*
 * syscall_pass.c: syscall() must pass through what a preload does not
 * know (torsocks denied unknown numbers and broke programs) and keep
 * working on sockets for the numbers it may route.
 */
#include "sftest.h"

#include <fcntl.h>
#include <sys/syscall.h>

static int
is_closed(int fd)
{
	return fcntl(fd, F_GETFD) == -1 && errno == EBADF;
}

int
main(int argc, char **argv)
{
	char buf[16];
	long r;
	int e;

	sft_init(argc, argv);
	sft_check(syscall(SYS_getpid) == (long)getpid(),
	    "syscall(SYS_getpid) equals getpid()", "differs");
	errno = 0;
	r = syscall(100000, 1, 2, 3);
	e = errno;
	sft_check(r == -1 && e == ENOSYS, "unknown syscall number: ENOSYS",
	    "%ld %s", r, SFT_ERR(e));

	/* A socket created and closed by raw system calls... */
	int lfd = sft_listener(AF_INET);
	int fd = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);

	sft_check(fd >= 0, "syscall(SYS_socket)", "%s", SFT_ERR(errno));
	if (fd < 0)
		return sft_done();
	int num = fd;

	sft_maybe_xor(fd);
	int ok = sft_connect_to(fd, lfd) == 0;
	int s = accept(lfd, NULL, NULL);

	ok = ok && s >= 0 && send(fd, "raw", 3, 0) == 3 &&
	     sft_read_full(s, buf, 3) == 3 && memcmp(buf, "raw", 3) == 0 &&
	     send(s, "ack", 3, 0) == 3 && sft_read_full(fd, buf, 3) == 3 &&
	     memcmp(buf, "ack", 3) == 0;
	sft_check(ok, "libc I/O on a syscall-made socket", "%s",
	    SFT_ERR(errno));

	/* Raw and libc calls mixed on the two ends: with a transforming
	 * filter both must go through it or the bytes differ. */
	ok = syscall(SYS_sendto, s, "sys", 3, 0, NULL, 0) == 3 &&
	     sft_wait_readable(fd, 5000) &&
	     recv(fd, buf, sft_n(sizeof(buf)), 0) == 3 &&
	     memcmp(buf, "sys", 3) == 0;
	sft_check(ok, "syscall(SYS_sendto) to libc recv", "%s", SFT_ERR(errno));
	ok = send(s, "lib", 3, 0) == 3 && sft_wait_readable(fd, 5000) &&
	     syscall(SYS_recvfrom, fd, buf, sizeof(buf), 0, NULL, NULL) == 3 &&
	     memcmp(buf, "lib", 3) == 0;
	sft_check(ok, "libc send to syscall(SYS_recvfrom)", "%s",
	    SFT_ERR(errno));
	r = syscall(SYS_close, fd);
	sft_check(r == 0 && is_closed(fd) && sft_wait_readable(s, 5000) &&
	              read(s, buf, sft_n(sizeof(buf))) == 0,
	    "syscall(SYS_close): closed, peer sees EOF", "%ld %s", r,
	    SFT_ERR(errno));
	close(s);

	/* ... then the number reused by an ordinary socket. */
	int c = sft_socket(AF_INET, SOCK_STREAM);

	ok = c == num && sft_connect_to(c, lfd) == 0;
	s = accept(lfd, NULL, NULL);
	ok = ok && s >= 0 && send(c, "again", 5, 0) == 5 &&
	     sft_read_full(s, buf, 5) == 5 && memcmp(buf, "again", 5) == 0 &&
	     send(s, "back", 4, 0) == 4 && sft_read_full(c, buf, 4) == 4 &&
	     memcmp(buf, "back", 4) == 0;
	sft_check(ok, "number reused by socket() after SYS_close", "failed");

	/* Variadic promotion: a 3-argument fcntl through syscall(). */
	r = syscall(SYS_fcntl, c, F_SETFL, O_NONBLOCK);
	int fl = fcntl(c, F_GETFL);

	sft_check(r == 0 && (fl & O_NONBLOCK) &&
	              recv(c, buf, sft_n(sizeof(buf)), 0) == -1 &&
	              errno == EAGAIN,
	    "syscall(SYS_fcntl, F_SETFL, O_NONBLOCK) takes effect", "%ld %#x",
	    r, fl);
	close(s);
	close(c);
	close(lfd);
	return sft_done();
}
