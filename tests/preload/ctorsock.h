/*
 * ctorsock.h: libctorsock.so uses sockets from its constructor, which may
 * run before the preload's own constructor; ctor_call reports what it saw.
 */
#ifndef CTORSOCK_H
#define CTORSOCK_H

struct ctorsock_step {
	const char *name; /* what the constructor did */
	int ok;           /* 1 if it worked */
	int err;          /* errno of the failure, or 0 */
};

/* The constructor's steps, in order; returns their count. */
int ctorsock_steps(const struct ctorsock_step **steps);
/* The TCP connection the constructor left open (-1 if none). */
void ctorsock_conn(int *cli, int *srv);

#endif /* CTORSOCK_H */
