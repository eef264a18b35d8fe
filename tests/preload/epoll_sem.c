/*
 * epoll_sem.c: the epoll contract on filtered sockets.  MSG_PEEK makes
 * the library take the kernel's data into its own queue, so every check
 * below runs with data the kernel no longer has: level-triggered,
 * edge-triggered and one-shot registrations, epoll_data coming back
 * untouched, a socket in two sets, a set inside another set and inside
 * poll, a duplicated set, a socket closed while registered, and a set
 * shared with a forked child.  Without the preload the kernel has the
 * data; both runs must print the same.
 */
#include "sftest.h"

#include <sys/epoll.h>
#include <sys/wait.h>

#define DATA 0x5eed0000cafe0001ULL

static int
ep_add(int ep, int fd, uint32_t ev, uint64_t data)
{
	struct epoll_event e = {.events = ev, .data.u64 = data};

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
}

/* One wait: the number of events, the first one's events and data. */
static int
ep_one(int ep, int ms, uint32_t *ev, uint64_t *data)
{
	struct epoll_event e[4];
	int n = epoll_wait(ep, e, 4, ms);

	if (n > 0) {
		*ev = e[0].events;
		*data = e[0].data.u64;
	}
	return n;
}

/* Peek at what arrived, so that the library (if any) holds it. */
static void
peek_all(int fd, size_t len)
{
	char buf[256];

	if (!sft_wait_readable(fd, 5000) ||
	    recv(fd, buf, len, MSG_PEEK) != (ssize_t)len)
		SFT_DIE("peek");
}

static void
level_and_edge(void)
{
	int c, s, lt, et, one;
	uint32_t ev = 0;
	uint64_t data = 0;
	char buf[64];

	sft_tcp_pair(AF_INET, &c, &s);
	lt = epoll_create1(EPOLL_CLOEXEC);
	et = epoll_create1(EPOLL_CLOEXEC);
	one = epoll_create1(EPOLL_CLOEXEC);
	if (lt < 0 || et < 0 || one < 0 || ep_add(lt, s, EPOLLIN, DATA) < 0 ||
	    ep_add(et, s, EPOLLIN | EPOLLET, DATA + 1) < 0 ||
	    ep_add(one, s, EPOLLIN | EPOLLONESHOT, DATA + 2) < 0)
		SFT_DIE("epoll setup");
	sft_check(ep_one(lt, 0, &ev, &data) == 0, "nothing before data",
	    "an event");
	sft_write_full(c, "0123456789abcdef", 16);
	peek_all(s, 16);
	sft_check(ep_one(lt, 1000, &ev, &data) == 1 && (ev & EPOLLIN) &&
	              data == DATA,
	    "level: peeked data reported with its epoll_data",
	    "ev %#x data %#llx", ev, (unsigned long long)data);
	sft_check(ep_one(lt, 0, &ev, &data) == 1,
	    "level: reported again while unread", "not again");
	sft_check(ep_one(et, 1000, &ev, &data) == 1 && data == DATA + 1,
	    "edge: reported once", "not reported");
	sft_check(ep_one(et, 0, &ev, &data) == 0, "edge: not twice",
	    "reported twice");
	sft_check(ep_one(one, 1000, &ev, &data) == 1 && data == DATA + 2,
	    "oneshot: reported", "not reported");
	sft_check(ep_one(one, 0, &ev, &data) == 0, "oneshot: then disarmed",
	    "reported again");
	sft_check(recv(s, buf, 10, 0) == 10, "partial read", "short");
	sft_check(ep_one(lt, 0, &ev, &data) == 1,
	    "level: the rest still reported", "not reported");
	sft_check(recv(s, buf, sizeof(buf), MSG_DONTWAIT) == 6, "read the rest",
	    "wrong count");
	sft_check(ep_one(lt, 0, &ev, &data) == 0, "level: quiet once drained",
	    "still reported");
	/* New data: a new edge; the one-shot stays quiet until re-armed. */
	sft_write_full(c, "xyz", 3);
	peek_all(s, 3);
	sft_check(ep_one(et, 1000, &ev, &data) == 1, "edge: new data, new edge",
	    "no edge");
	sft_check(ep_one(one, 0, &ev, &data) == 0,
	    "oneshot: quiet until re-armed", "fired while disarmed");
	{
		struct epoll_event e = {.events = EPOLLIN | EPOLLONESHOT,
		    .data.u64 = DATA + 3};

		sft_check(epoll_ctl(one, EPOLL_CTL_MOD, s, &e) == 0 &&
		              ep_one(one, 1000, &ev, &data) == 1 &&
		              data == DATA + 3,
		    "oneshot: re-armed by MOD with new data", "data %#llx",
		    (unsigned long long)data);
	}
	sft_check(recv(s, buf, sizeof(buf), 0) == 3, "read", "wrong count");
	close(lt);
	close(et);
	close(one);
	close(c);
	close(s);
}

static void
nesting(void)
{
	int c, s, a, b, a2;
	uint32_t ev = 0;
	uint64_t data = 0;
	struct pollfd p;
	char buf[64];

	sft_tcp_pair(AF_INET, &c, &s);
	a = epoll_create1(0);
	b = epoll_create1(0);
	if (a < 0 || b < 0 || ep_add(a, s, EPOLLIN, DATA) < 0 ||
	    ep_add(b, a, EPOLLIN, DATA + 7) < 0)
		SFT_DIE("nested setup");
	sft_write_full(c, "nest", 4);
	peek_all(s, 4);
	sft_check(ep_one(b, 1000, &ev, &data) == 1 && data == DATA + 7,
	    "a set in a set reports the inner set", "data %#llx",
	    (unsigned long long)data);
	p.fd = a;
	p.events = POLLIN;
	sft_check(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN),
	    "a set in poll reports readable", "revents %#x", p.revents);
	sft_check(ep_one(a, 0, &ev, &data) == 1 && data == DATA,
	    "the inner set reports the socket", "data %#llx",
	    (unsigned long long)data);
	a2 = dup(a);
	sft_check(a2 >= 0 && ep_one(a2, 0, &ev, &data) == 1 && data == DATA,
	    "a duplicated set reports too", "not reported");
	close(a);
	sft_check(ep_one(a2, 0, &ev, &data) == 1 && data == DATA,
	    "the duplicate works after the original closed", "not reported");
	sft_check(recv(s, buf, sizeof(buf), 0) == 4 &&
	              ep_one(a2, 0, &ev, &data) == 0 &&
	              ep_one(b, 0, &ev, &data) == 0,
	    "drained: every set quiet", "still reported");
	/* Closed while registered: the kernel forgets it, so do we. */
	sft_write_full(c, "gone", 4);
	peek_all(s, 4);
	close(s);
	sft_check(ep_one(a2, 100, &ev, &data) == 0,
	    "a closed socket reports nothing", "reported %#x", ev);
	close(a2);
	close(b);
	close(c);
}

static void
forked(void)
{
	int c, s, ep, status;
	uint32_t ev = 0;
	uint64_t data = 0;
	pid_t pid;

	sft_tcp_pair(AF_INET, &c, &s);
	if ((ep = epoll_create1(0)) < 0 || ep_add(ep, s, EPOLLIN, DATA) < 0)
		SFT_DIE("fork setup");
	sft_write_full(c, "fork", 4);
	peek_all(s, 4);
	pid = sft_fork();
	if (pid == 0) {
		char buf[8];
		int ok = ep_one(ep, 1000, &ev, &data) == 1 && data == DATA &&
		         recv(s, buf, sizeof(buf), 0) == 4 &&
		         memcmp(buf, "fork", 4) == 0;

		_exit(ok ? 0 : 1);
	}
	status = sft_wait_child(pid);
	sft_check(status == 1, "a set shared with a forked child works there",
	    "child status %d", status);
	close(ep);
	close(c);
	close(s);
}

int
main(int argc, char **argv)
{
	sft_init(argc, argv);
	level_and_edge();
	nesting();
	forked();
	return sft_done();
}
