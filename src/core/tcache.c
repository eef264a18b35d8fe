/*
 * tcache.c: per-thread free lists for the small fixed-size objects the
 * data path allocates on every call (mblk_t, loan records, small dblks,
 * receive queue entries).  malloc/free cost more than the rest of a
 * filtered send+recv together; a free list costs a few instructions.
 *
 * Any thread may free an object another thread allocated: it goes to the
 * freeing thread's list, which takes any object of the right kind (every
 * caller of one kind passes the same size).  Each list holds at most
 * tc_max[kind] objects, the rest go back to free(), so a thread never
 * keeps more than about 50 KiB.  A thread's lists are emptied by a
 * pthread key destructor when it exits; objects freed after that (by
 * later destructors) go straight to free().  A fork()ed child keeps the
 * forking thread's lists; other threads' lists are lost with the threads,
 * as their malloc caches are.
 */
#include <pthread.h>
#include <stdlib.h>

#include "core.h"

__thread struct tc_cache tc_cache __attribute__((tls_model("initial-exec")));

/* Objects kept per thread and kind. */
static const unsigned tc_max[TC_NKINDS] = {
    [TC_MBLK] = 64, /* 64 bytes each */
    [TC_LOAN] = 64, /* a writev lends up to 64 buffers at once */
    [TC_DBLK] = 16, /* about 2 KiB each */
    [TC_RMSG] = 32,
};

static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static pthread_key_t tc_key;
static bool tc_key_ok;

/* Thread exit: give every kept object back to malloc. */
static void
tc_thread_exit(void *arg)
{
	int k;

	(void)arg;
	for (k = 0; k < TC_NKINDS; k++) {
		struct tc_list *tl = &tc_cache.tc_lists[k];
		void *p;

		while ((p = tl->tl_head) != NULL) {
			TC_UNPOISON(p, tl->tl_size);
			tl->tl_head = *(void **)p;
			free(p);
		}
		tl->tl_room = 0;
	}
	tc_cache.tc_state = TC_S_DEAD;
}

static void
tc_key_init(void)
{
	tc_key_ok = pthread_key_create(&tc_key, tc_thread_exit) == 0;
}

void
tc_free_slow(enum tc_kind kind, void *p, size_t size)
{
	int k;

	if (tc_cache.tc_state == TC_S_NEW) {
		/* First free in this thread: arrange for the lists to be
		 * emptied at its exit, or do without them. */
		(void)pthread_once(&tc_once, tc_key_init);
		if (tc_key_ok && pthread_setspecific(tc_key, &tc_cache) == 0) {
			tc_cache.tc_state = TC_S_ACTIVE;
			for (k = 0; k < TC_NKINDS; k++)
				tc_cache.tc_lists[k].tl_room = tc_max[k];
		} else {
			tc_cache.tc_state = TC_S_DEAD;
		}
		if (tc_cache.tc_lists[kind].tl_room > 0) {
			tc_free(kind, p, size);
			return;
		}
	}
	free(p); /* the list is full, or the thread is exiting */
}
