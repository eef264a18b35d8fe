/*
 * signal_send.c: a signal handler that sends on a filtered socket while
 * the interrupted code is itself sending or receiving on sockets, many
 * times over.  Nothing may deadlock, every byte must arrive, and a
 * blocking recv interrupted by a handler without SA_RESTART fails with
 * EINTR as it does without the preload.
 */
#include "sftest.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/time.h>

#define CHUNK  4096
#define ROUNDS 3000

static int sig_fd = -1;
/* Atomics: the handler runs on whichever thread the signal hits. */
static atomic_int sig_sent, sig_failed;

static void
on_alarm(int sig)
{
	int saved = errno;

	(void)sig;
	if (send(sig_fd, "s", 1, MSG_DONTWAIT) == 1)
		atomic_fetch_add(&sig_sent, 1);
	else if (errno != EAGAIN)
		atomic_fetch_add(&sig_failed, 1);
	errno = saved;
}

/* Drains a socket, counting bytes, until EOF. */
static void *
drain(void *arg)
{
	int fd = *(int *)arg;
	char buf[65536];
	long total = 0;
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) != 0)
		if (n > 0)
			total += n;
		else if (errno != EINTR)
			break;
	return (void *)total;
}

static void
on_usr1(int sig)
{
	(void)sig;
}

int
main(int argc, char **argv)
{
	struct sigaction sa;
	struct itimerval it = {{0, 500}, {0, 500}};
	int c1, s1, c2, s2, i;
	pthread_t t1, t2;
	void *r1, *r2;
	long sent = 0;
	char buf[CHUNK];

	sft_init(argc, argv);
	memset(buf, 'd', sizeof(buf));
	sft_tcp_pair(AF_INET, &c1, &s1);
	sft_tcp_pair(AF_INET, &c2, &s2);
	sig_fd = c2;
	if (pthread_create(&t1, NULL, drain, &s1) != 0 ||
	    pthread_create(&t2, NULL, drain, &s2) != 0)
		SFT_DIE("pthread_create");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0 ||
	    setitimer(ITIMER_REAL, &it, NULL) < 0)
		SFT_DIE("timer");
	/* The main thread sends on both sockets; the handler on one. */
	for (i = 0; i < ROUNDS; i++) {
		int fd = (i & 1) ? c1 : c2;

		sft_write_full(fd, buf, sizeof(buf));
		sent += sizeof(buf);
	}
	memset(&it, 0, sizeof(it));
	setitimer(ITIMER_REAL, &it, NULL);
	shutdown(c1, SHUT_WR);
	shutdown(c2, SHUT_WR);
	pthread_join(t1, &r1);
	pthread_join(t2, &r2);
	sft_check((long)r1 + (long)r2 == sent + atomic_load(&sig_sent) &&
	              atomic_load(&sig_failed) == 0,
	    "every byte arrives while a handler sends",
	    "received %ld, sent %ld + %ld by the handler (%d failed)",
	    (long)r1 + (long)r2, sent, (long)atomic_load(&sig_sent),
	    atomic_load(&sig_failed));

	/* EINTR: a handler without SA_RESTART interrupts a blocking recv. */
	sa.sa_handler = on_usr1;
	sa.sa_flags = 0;
	sigaction(SIGUSR1, &sa, NULL);
	{
		struct itimerval one = {{0, 0}, {0, 100000}};
		ssize_t n;

		sa.sa_handler = on_usr1;
		sigaction(SIGALRM, &sa, NULL);
		setitimer(ITIMER_REAL, &one, NULL);
		n = recv(c1, buf, sizeof(buf), 0);
		sft_check(n < 0 && errno == EINTR,
		    "a blocking recv is interrupted with EINTR", "recv %zd %s",
		    n, SFT_ERR(errno));
	}
	close(c1);
	close(s1);
	close(c2);
	close(s2);
	return sft_done();
}
