/*
 * libc.c: binds the real libc functions with dlsym(RTLD_NEXT).
 *
 * Bound lazily, not in a constructor: another library's constructor may
 * call our wrappers before ours ran, and dlsym may allocate.  Binding is a
 * set of plain stores of values that never change, so two threads (or a
 * signal handler) binding at once is harmless.
 */
#include "libc.h"

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

struct sf_libc sf_real;

/* Raw fallbacks for the few functions an old libc may lack, so that a
 * missing symbol never turns into a NULL call. */
static int
raw_close_range(unsigned int lo, unsigned int hi, int flags)
{
	return (int)syscall(SYS_close_range, lo, hi, flags);
}

static void
raw_closefrom(int lo)
{
	(void)syscall(SYS_close_range, (unsigned)lo, ~0U, 0);
}

static int
raw_epoll_pwait2(int epfd, struct epoll_event *ev, int n,
    const struct timespec *tmo, const sigset_t *ss)
{
	return (int)syscall(SYS_epoll_pwait2, epfd, ev, n, tmo, ss, _NSIG / 8);
}

void
libc_bind_all(void)
{
	struct sf_libc t;

	memset(&t, 0, sizeof(t));
#define SF_LIBC_BIND(name, ret, args)                                          \
	*(void **)(&t.name) = dlsym(RTLD_NEXT, #name);
	SF_LIBC_FUNCS(SF_LIBC_BIND)
#undef SF_LIBC_BIND
	if (t.close_range == NULL)
		t.close_range = raw_close_range;
	if (t.closefrom == NULL)
		t.closefrom = raw_closefrom;
	if (t.epoll_pwait2 == NULL)
		t.epoll_pwait2 = raw_epoll_pwait2;
		/* Publish every slot but the one the fast path tests first
		 * last. */
#define SF_LIBC_STORE(name, ret, args)                                         \
	if (t.name != NULL)                                                    \
		__atomic_store_n((void **)(void *)&sf_real.name,               \
		    *(void **)(void *)&t.name, __ATOMIC_RELEASE);
	SF_LIBC_FUNCS(SF_LIBC_STORE)
#undef SF_LIBC_STORE
}
