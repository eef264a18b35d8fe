/*
 * datafilt: an identity filter on every data path and control operation
 * that counts what it sees.  The reference filter for tests and
 * benchmarks.  Parameter: verbose = true prints one summary line per
 * socket to standard error when the filter detaches.
 */
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockfilter.h"

#define DF_ADD(c, n) atomic_fetch_add_explicit(&(c), (n), memory_order_relaxed)

/* Callbacks of one socket may run on several threads at once (a
 * listener's getsockname, data in and out): counters are atomics. */
struct df_state {
	atomic_ulong ds_in_calls, ds_in_bytes;
	atomic_ulong ds_out_calls, ds_out_bytes;
	atomic_ulong ds_ctl_calls, ds_events;
	int ds_verbose;
	int ds_passive;
};

static struct df_state *
df_new(sof_handle_t h, int passive)
{
	struct df_state *ds = calloc(1, sizeof(*ds));
	const char *v = sof_get_param(h, "verbose");

	if (ds == NULL)
		return NULL;
	ds->ds_verbose =
	    v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
	ds->ds_passive = passive;
	return ds;
}

static sof_rval_t
df_attach_active_cb(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	/* No private data, no filtering: decline rather than fail socket(). */
	if ((*cookiep = df_new(h, 0)) == NULL)
		return SOF_RVAL_DETACH;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	if ((*cookiep = df_new(h, 1)) == NULL)
		return SOF_RVAL_DETACH;
	return SOF_RVAL_CONTINUE;
}

static void
df_detach_cb(sof_handle_t h, void *cookie, cred_t *cr)
{
	struct df_state *ds = cookie;
	char line[256];
	int n;

	if (ds == NULL)
		return;
	if (ds->ds_verbose) {
		n = snprintf(line, sizeof(line),
		    "datafilt: pid %d %s socket: in %lu bytes/%lu calls, "
		    "out %lu bytes/%lu calls, %lu control ops, %lu events\n",
		    (int)getpid(), ds->ds_passive ? "accepted" : "opened",
		    atomic_load(&ds->ds_in_bytes),
		    atomic_load(&ds->ds_in_calls),
		    atomic_load(&ds->ds_out_bytes),
		    atomic_load(&ds->ds_out_calls),
		    atomic_load(&ds->ds_ctl_calls),
		    atomic_load(&ds->ds_events));
		if (n > 0)
			(void)!write(2, line, (size_t)n);
	}
	free(ds);
}

static mblk_t *
df_data_in_cb(sof_handle_t h, void *cookie, mblk_t *mp, int flags,
    size_t *sizep)
{
	struct df_state *ds = cookie;

	DF_ADD(ds->ds_in_calls, 1);
	DF_ADD(ds->ds_in_bytes, *sizep);
	return mp;
}

static mblk_t *
df_data_in_proc_cb(sof_handle_t h, void *cookie, mblk_t *mp, cred_t *cr,
    size_t *sizep)
{
	return mp;
}

static mblk_t *
df_data_out_cb(sof_handle_t h, void *cookie, mblk_t *mp, struct nmsghdr *msg,
    cred_t *cr, sof_rval_t *rvalp)
{
	struct df_state *ds = cookie;
	const mblk_t *b;
	size_t n = 0;

	DF_ADD(ds->ds_out_calls, 1);
	for (b = mp; b != NULL; b = b->b_cont)
		n += MBLKL(b);
	DF_ADD(ds->ds_out_bytes, n);
	return mp;
}

/* Every control operation: count and continue. */
#define DF_COUNT DF_ADD(((struct df_state *)cookie)->ds_ctl_calls, 1)

static sof_rval_t
df_bind_cb(sof_handle_t h, void *cookie, struct sockaddr *addr, socklen_t *len,
    cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_listen_cb(sof_handle_t h, void *cookie, int *backlog, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_connect_cb(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *len, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_accept_cb(sof_handle_t h, void *cookie, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_shutdown_cb(sof_handle_t h, void *cookie, int *how, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_name_cb(sof_handle_t h, void *cookie, struct sockaddr *addr, socklen_t *len,
    cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_opt_cb(sof_handle_t h, void *cookie, int level, int name, void *val,
    socklen_t *len, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
df_ioctl_cb(sof_handle_t h, void *cookie, int cmd, intptr_t arg, int mode,
    int32_t *rvalp, cred_t *cr)
{
	DF_COUNT;
	return SOF_RVAL_CONTINUE;
}

static void
df_mblk_prop_cb(sof_handle_t h, void *cookie, ssize_t *maxblk, ushort_t *wroff,
    ushort_t *tail)
{
}

static void
df_notify_cb(sof_handle_t h, void *cookie, sof_event_t ev, uintptr_t arg)
{
	DF_ADD(((struct df_state *)cookie)->ds_events, 1);
}

static const sof_ops_t df_ops = {
    .sofop_attach_active = df_attach_active_cb,
    .sofop_attach_passive = df_attach_passive_cb,
    .sofop_detach = df_detach_cb,
    .sofop_data_in = df_data_in_cb,
    .sofop_data_in_proc = df_data_in_proc_cb,
    .sofop_data_out = df_data_out_cb,
    .sofop_bind = df_bind_cb,
    .sofop_listen = df_listen_cb,
    .sofop_connect = df_connect_cb,
    .sofop_accept = df_accept_cb,
    .sofop_shutdown = df_shutdown_cb,
    .sofop_getsockname = df_name_cb,
    .sofop_getpeername = df_name_cb,
    .sofop_setsockopt = df_opt_cb,
    .sofop_getsockopt = df_opt_cb,
    .sofop_ioctl = df_ioctl_cb,
    .sofop_mblk_prop = df_mblk_prop_cb,
    .sofop_notify = df_notify_cb,
};

__attribute__((constructor)) static void
df_init(void)
{
	(void)sof_register(SOF_VERSION, "datafilt", &df_ops, SOF_ATT_SAFE);
}

__attribute__((destructor)) static void
df_fini(void)
{
	(void)sof_unregister("datafilt");
}
