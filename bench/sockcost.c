/*
 * sockcost: what socket creation costs, and a steady connection rate.
 *
 *   sockcost create N        socket(AF_INET, SOCK_STREAM)+close N times;
 *                            prints "ns_per_socket X" (best of 5 rounds)
 *   sockcost rate R SECONDS  one process, a server thread and a client:
 *                            R connections a second for SECONDS, each one
 *                            a connect, 64 bytes each way, close; prints
 *                            "connections N failed F"
 * A plain socket program: it links nothing of sockfilter.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double
sc_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
sc_create(long n)
{
	double best = 1e30;
	int round;
	long i;

	for (round = 0; round < 5; round++) {
		double t0 = sc_now(), dt;

		for (i = 0; i < n; i++) {
			int s = socket(AF_INET, SOCK_STREAM, 0);

			if (s < 0) {
				perror("socket");
				return 1;
			}
			close(s);
		}
		dt = (sc_now() - t0) * 1e9 / (double)n;
		if (dt < best)
			best = dt;
	}
	printf("ns_per_socket %.0f\n", best);
	return 0;
}

static int sc_lfd;

static void *
sc_server(void *arg)
{
	char buf[64];

	for (;;) {
		int c = accept(sc_lfd, NULL, NULL);
		ssize_t n;

		if (c < 0)
			continue;
		if ((n = read(c, buf, sizeof(buf))) > 0)
			(void)!write(c, buf, (size_t)n);
		close(c);
	}
	return NULL;
}

static int
sc_rate(long rate, double secs)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	char buf[64];
	long total = (long)(rate * secs), i, failed = 0;
	double t0;
	pthread_t th;

	memset(buf, 'x', sizeof(buf));
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sc_lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (sc_lfd < 0 || bind(sc_lfd, (struct sockaddr *)&sin, len) != 0 ||
	    listen(sc_lfd, 512) != 0 ||
	    getsockname(sc_lfd, (struct sockaddr *)&sin, &len) != 0) {
		perror("listen");
		return 1;
	}
	pthread_create(&th, NULL, sc_server, NULL);
	t0 = sc_now();
	for (i = 0; i < total; i++) {
		double due = t0 + (double)i / (double)rate, now = sc_now();
		int s;

		if (due > now) {
			struct timespec ts = {(time_t)(due - now),
			    (long)((due - now - (double)(time_t)(due - now)) *
			           1e9)};
			nanosleep(&ts, NULL);
		}
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&sin, len) != 0 ||
		    write(s, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    read(s, buf, sizeof(buf)) <= 0)
			failed++;
		if (s >= 0)
			close(s);
	}
	printf("connections %ld failed %ld seconds %.2f\n", total, failed,
	    sc_now() - t0);
	return failed != 0;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "create") == 0)
		return sc_create(atol(argv[2]));
	if (argc == 4 && strcmp(argv[1], "rate") == 0)
		return sc_rate(atol(argv[2]), atof(argv[3]));
	fprintf(stderr, "usage: sockcost create N | sockcost rate R SECONDS\n");
	return 2;
}
