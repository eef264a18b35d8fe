/*
 * stats.c: per-filter and global counters (the design's kstats).
 *
 * Counters are relaxed atomics bumped on the data path.  They live in the
 * process's region (dmn.c, a memfd the daemon maps), so soconfigd reads
 * them without a message per event.  The per-filter list only grows: an
 * entry is filled, then published by a release store of dp_nfilt and of
 * the list head, so readers (here and in the daemon) walk it without a
 * lock; only creation takes st_lock.  Entries beyond the region's
 * DMN_MAXFILT come from the heap: counted here, invisible to the daemon.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "dmn.h"

static _Atomic(struct st_filter *) st_head;
static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t st_once = PTHREAD_ONCE_INIT;

/* Given out when a new entry cannot be allocated, so that callers never
 * see NULL; it is not on the list, so its counts are simply lost. */
static struct st_filter st_sink = {.sf_name = "(unallocated)"};

/* A fork while another thread created an entry: the list is consistent
 * at every store, so the child only needs a usable lock. */
static void
st_atfork_child(void)
{
	pthread_mutex_init(&st_lock, NULL);
}

static void
st_init_once(void)
{
	pthread_atfork(NULL, NULL, st_atfork_child);
}

struct st_globals *
st_global_ref(void)
{
	return &dmn_region()->dp_global;
}

static struct st_filter *
st_lookup(const char *name)
{
	struct st_filter *sf;

	for (sf = atomic_load_explicit(&st_head, memory_order_acquire);
	     sf != NULL; sf = sf->sf_next)
		if (strncmp(sf->sf_name, name, FILNAME_MAX - 1) == 0)
			return sf;
	return NULL;
}

/* A zeroed entry: the next one of the region, else from the heap. */
static struct st_filter *
st_alloc(const char *name)
{
	struct dmn_proc *dp = dmn_region();
	uint32_t n = atomic_load_explicit(&dp->dp_nfilt, memory_order_relaxed);
	struct st_filter *sf;

	if (n < DMN_MAXFILT) {
		sf = &dp->dp_filters[n];
		snprintf(sf->sf_name, sizeof(sf->sf_name), "%s", name);
		atomic_store_explicit(&dp->dp_nfilt, n + 1,
		    memory_order_release);
		return sf;
	}
	if ((sf = calloc(1, sizeof(*sf))) != NULL)
		snprintf(sf->sf_name, sizeof(sf->sf_name), "%s", name);
	return sf;
}

struct st_filter *
st_filter_get(const char *name)
{
	struct st_filter *sf;

	if (name == NULL)
		return &st_sink;
	if ((sf = st_lookup(name)) != NULL)
		return sf;
	pthread_once(&st_once, st_init_once);
	pthread_mutex_lock(&st_lock);
	/* Another thread may have created it since the lookup. */
	if ((sf = st_lookup(name)) == NULL && (sf = st_alloc(name)) != NULL) {
		sf->sf_next =
		    atomic_load_explicit(&st_head, memory_order_relaxed);
		atomic_store_explicit(&st_head, sf, memory_order_release);
	}
	pthread_mutex_unlock(&st_lock);
	return sf != NULL ? sf : &st_sink;
}

struct st_filter *
st_filter_first(void)
{
	return atomic_load_explicit(&st_head, memory_order_acquire);
}

/* snprintf-style appender: sj_pos counts what is needed even when it no
 * longer fits, the buffer always stays NUL-terminated. */
struct st_json {
	char *sj_buf;
	size_t sj_len;
	size_t sj_pos;
};

static void st_json_printf(struct st_json *sj, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
st_json_printf(struct st_json *sj, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	if (sj->sj_pos < sj->sj_len)
		n = vsnprintf(sj->sj_buf + sj->sj_pos, sj->sj_len - sj->sj_pos,
		    fmt, ap);
	else
		n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n > 0)
		sj->sj_pos += (size_t)n;
}

/* A JSON string: names come from configuration files. */
static void
st_json_string(struct st_json *sj, const char *s)
{
	st_json_printf(sj, "\"");
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			st_json_printf(sj, "\\%c", c);
		else if (c < 0x20)
			st_json_printf(sj, "\\u%04x", c);
		else
			st_json_printf(sj, "%c", c);
	}
	st_json_printf(sj, "\"");
}

size_t
st_format_json(char *buf, size_t len)
{
	struct st_json sj = {buf, buf != NULL ? len : 0, 0};
	struct st_globals *sg = st_global_ref();
	struct st_filter *sf;
	const char *sep = "";

	if (sj.sj_len > 0)
		buf[0] = '\0';
	st_json_printf(&sj,
	    "{\"global\":{\"defer_closed\":%lu,\"defer_close_backlog\":%lu,"
	    "\"defer_close_failed\":%lu},\"filters\":{",
	    atomic_load_explicit(&sg->sg_defer_closed, memory_order_relaxed),
	    atomic_load_explicit(&sg->sg_defer_close_backlog,
	        memory_order_relaxed),
	    atomic_load_explicit(&sg->sg_defer_close_failed,
	        memory_order_relaxed));
	for (sf = st_filter_first(); sf != NULL; sf = sf->sf_next) {
		st_json_printf(&sj, "%s", sep);
		st_json_string(&sj, sf->sf_name);
		st_json_printf(&sj,
		    ":{\"nactive\":%ld,\"ndeferred\":%ld,"
		    "\"tot_active_attach\":%lu,\"tot_passive_attach\":%lu,"
		    "\"attach_failures\":%lu,\"bytes_in\":%lu,"
		    "\"bytes_out\":%lu,\"denied\":%lu}",
		    atomic_load_explicit(&sf->sf_nactive, memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_ndeferred,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_tot_active_attach,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_tot_passive_attach,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_attach_failures,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_bytes_in,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_bytes_out,
		        memory_order_relaxed),
		    atomic_load_explicit(&sf->sf_denied, memory_order_relaxed));
		sep = ",";
	}
	st_json_printf(&sj, "}}");
	return sj.sj_pos;
}
