/*
 * accept_defer.c: many clients at once against a listener with an accept
 * filter (SO_ACCEPTFILTER "dataready"), some of them idle for a while:
 * under the preload the library takes the connections on its service
 * thread and hands them to accept() once data arrived; every client's
 * message comes back.  Without the preload (Linux has no accept filters:
 * ENOPROTOOPT) the same program runs without one, so both runs print the
 * same.  Threads: run under ThreadSanitizer too.
 */
#include "sftest.h"

#include <pthread.h>

#include "sockfilter.h"

#define NTHREADS  4
#define PERTHREAD 40

static int lfd;

static void *
client(void *arg)
{
	long id = (long)arg, ok = 0;
	int i;

	for (i = 0; i < PERTHREAD; i++) {
		char msg[32], back[32];
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		size_t n;

		if (fd < 0 || sft_connect_to(fd, lfd) != 0)
			continue;
		if (i % 8 == 0)
			sft_msleep(20); /* idle a while: deferred meanwhile */
		n = (size_t)snprintf(msg, sizeof(msg), "c%ld-%d", id, i);
		sft_write_full(fd, msg, n);
		if (sft_read_full(fd, back, n) == n &&
		    memcmp(msg, back, n) == 0)
			ok++;
		close(fd);
	}
	return (void *)ok;
}

int
main(int argc, char **argv)
{
	struct accept_filter_arg afa;
	pthread_t t[NTHREADS];
	long total = 0;
	int i, r;

	sft_init(argc, argv);
	lfd = sft_bound(AF_INET, SOCK_STREAM);
	if (listen(lfd, 64) != 0)
		SFT_DIE("listen");
	memset(&afa, 0, sizeof(afa));
	strcpy(afa.af_name, "dataready");
	r = setsockopt(lfd, SOL_SOCKET, SO_ACCEPTFILTER, &afa, sizeof(afa));
	sft_check(r == 0 || errno == ENOPROTOOPT,
	    "SO_ACCEPTFILTER (or no accept filters, without the preload)", "%s",
	    SFT_ERR(errno));
	for (i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, client, (void *)(long)i) != 0)
			SFT_DIE("pthread_create");
	for (i = 0; i < NTHREADS * PERTHREAD; i++) {
		char buf[64];
		ssize_t n;
		int a = accept(lfd, NULL, NULL);

		if (a < 0)
			break;
		/* An accept filter hands over only connections with data. */
		n = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0 && sft_preloaded() && r == 0)
			break;
		if (n <= 0)
			n = recv(a, buf, sizeof(buf), 0);
		if (n > 0)
			sft_write_full(a, buf, (size_t)n);
		close(a);
	}
	for (i = 0; i < NTHREADS; i++) {
		void *ok;

		pthread_join(t[i], &ok);
		total += (long)ok;
	}
	sft_check(total == NTHREADS * PERTHREAD,
	    "every client's message comes back", "%ld of %d", total,
	    NTHREADS * PERTHREAD);
	close(lfd);
	return sft_done();
}
