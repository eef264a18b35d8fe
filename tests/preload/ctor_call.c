/*
 * ctor_call.c: sockets used from another library's constructor, before
 * the preload initialised, then used again from main().
 */
#include "sftest.h"
#include "ctorsock.h"

static int
echo(int x, int y, const char *msg)
{
	char buf[32];
	size_t len = strlen(msg);

	return send(x, msg, len, 0) == (ssize_t)len &&
	       sft_read_full(y, buf, len) == len && memcmp(buf, msg, len) == 0;
}

int
main(int argc, char **argv)
{
	const struct ctorsock_step *st;
	int i, n, cli, srv;

	sft_init(argc, argv);
	n = ctorsock_steps(&st);
	sft_check(n == 4, "constructor ran every step", "%d steps", n);
	for (i = 0; i < n; i++)
		sft_check(st[i].ok, st[i].name, "%s", SFT_ERR(st[i].err));

	/* The constructor's connection, now that every library is set up. */
	ctorsock_conn(&cli, &srv);
	sft_check(cli >= 0 && srv >= 0 && echo(cli, srv, "main-ping") &&
	              echo(srv, cli, "main-pong"),
	    "constructor's tcp connection works from main", "failed");
	int d = dup(cli);

	sft_check(d >= 0 && echo(d, srv, "dup") && close(cli) == 0 &&
	              echo(srv, d, "after-close"),
	    "dup and close of the constructor's socket", "failed");
	close(d);
	char c;

	sft_check(sft_wait_readable(srv, 5000) && read(srv, &c, 1) == 0,
	    "last close of the constructor's socket: peer sees EOF", "no EOF");
	close(srv);

	/* And fresh sockets after all that. */
	int a, b;

	sft_tcp_pair(AF_INET, &a, &b);
	sft_check(echo(a, b, "fresh") && echo(b, a, "ok"),
	    "new tcp connection from main", "failed");
	close(a);
	close(b);
	return sft_done();
}
