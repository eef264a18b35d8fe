/*
 * fork_lock.c: process changes while the library is busy.
 *   - fork() from one thread while another sends on a filtered socket
 *     (holding its send lock) and a signal handler in the child sends on
 *     a filtered socket: the child neither deadlocks nor fails.
 *   - a vfork() child closes and duplicates filtered descriptors before
 *     _exit, as process launchers do before exec: the parent's sockets
 *     keep working.
 * Both runs (with and without the preload) must print the same.
 */
#include "sftest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

static int busy_fd;
static atomic_int stop;
static int sig_fd;

static void *
sender(void *arg)
{
	static char buf[4096];

	(void)arg;
	while (!atomic_load(&stop))
		if (send(busy_fd, buf, sizeof(buf), MSG_DONTWAIT) < 0 &&
		    errno != EAGAIN)
			break;
	return NULL;
}

static void *
drainer(void *arg)
{
	char buf[65536];
	int fd = *(int *)arg;

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static void
on_alarm(int sig)
{
	(void)sig;
	(void)send(sig_fd, "h", 1, MSG_DONTWAIT);
}

static void
fork_while_busy(void)
{
	int c1, s1, c2, s2, i, ok = 1;
	pthread_t ts, td;

	sft_tcp_pair(AF_INET, &c1, &s1);
	sft_tcp_pair(AF_INET, &c2, &s2);
	busy_fd = c1;
	sig_fd = c2;
	if (pthread_create(&ts, NULL, sender, NULL) != 0 ||
	    pthread_create(&td, NULL, drainer, &s1) != 0)
		SFT_DIE("pthread_create");
	for (i = 0; i < 20; i++) {
		pid_t pid = sft_fork();

		if (pid == 0) {
			char b[8];

			signal(SIGALRM, on_alarm);
			raise(SIGALRM);
			/* The socket the parent's thread was sending on. */
			if (send(c1, "x", 1, MSG_DONTWAIT) < 0 &&
			    errno != EAGAIN)
				_exit(1);
			if (send(c2, "child", 5, 0) != 5)
				_exit(2);
			(void)b;
			_exit(0);
		}
		ok &= sft_wait_child(pid);
	}
	atomic_store(&stop, 1);
	pthread_join(ts, NULL);
	shutdown(c1, SHUT_WR);
	pthread_join(td, NULL);
	sft_check(ok,
	    "children forked while a thread sends neither hang nor fail",
	    "a child failed");
	{
		/* 20 children: "h" (the handler) and "child" each. */
		char buf[256];
		size_t want = 20 * 6, got = sft_read_full(s2, buf, want);

		sft_check(got == want, "every child's bytes arrive",
		    "%zu of %zu", got, want);
	}
	close(c1);
	close(s1);
	close(c2);
	close(s2);
}

static void
vfork_closes(void)
{
	int c, s, ok;
	char buf[16];
	pid_t pid;

	sft_tcp_pair(AF_INET, &c, &s);
	pid = vfork();
	if (pid < 0)
		SFT_DIE("vfork");
	if (pid == 0) {
		/* What a launcher does before exec: its copies only. */
		dup2(c, 60);
		close(c);
		close(s);
		close(60);
		_exit(0);
	}
	ok = sft_wait_child(pid);
	ok = ok && send(c, "after", 5, 0) == 5 &&
	     sft_read_full(s, buf, 5) == 5 && memcmp(buf, "after", 5) == 0;
	sft_check(ok, "a vfork child's closes leave the parent's sockets alone",
	    "the parent's socket broke");
	close(c);
	close(s);
}

int
main(int argc, char **argv)
{
	sft_init(argc, argv);
	fork_while_busy();
	vfork_closes();
	return sft_done();
}
