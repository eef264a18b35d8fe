/*
 * stack.c: per-socket filter stacks.  Every call through a sof_ops_t slot
 * happens in this file.
 *
 * Map:
 *   struct sock          so_top ... so_bottom: doubly linked stk_inst list
 *     struct stk_inst    one filter on one socket (what sof_handle_t is)
 *       si_reg           the registration (ops, refcount against unload)
 *       si_cfg           the configured filter (params), from so_cfg
 *       si_stats         the filter's counters
 *
 * Direction (design, Table 2): control operations, accept and data_out run
 * top to bottom; data_in, data_in_proc, notify and mblk_prop bottom-up.
 * A control walk skips bypassed instances and empty slots and stops at the
 * first verdict other than SOF_RVAL_CONTINUE; that verdict is the result.
 *
 * Locking: the stack changes only at creation, during the FIL_ATTACH
 * window (before any other operation) and at teardown (no caller left),
 * so walks take no lock.  Data callbacks run under so_rxlock/so_txlock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "libc.h"
#include "log.h"

/* Per thread: callbacks of different threads must not share one. */
static __thread cred_t stk_cred_store
    __attribute__((tls_model("initial-exec")));

cred_t *
sock_cred(void)
{
	/* Refreshed on each call: a setuid program may change ids. */
	stk_cred_store.cr_uid = geteuid();
	stk_cred_store.cr_gid = getegid();
	stk_cred_store.cr_pid = getpid();
	return &stk_cred_store;
}

static inline bool
stk_skip(const struct stk_inst *inst)
{
	return (inst->si_flags & SI_F_BYPASS) != 0;
}

static inline void *
stk_cookie(struct stk_inst *inst)
{
	return atomic_load_explicit(&inst->si_cookie, memory_order_acquire);
}

/* Convert a verdict to what the stk_* control calls return. */
static int
stk_verdict(struct stk_inst *inst, const char *op, sof_rval_t rval)
{
	if (rval == SOF_RVAL_CONTINUE)
		return -1;
	if (rval == SOF_RVAL_RETURN) {
		sf_trace("%s: %s returned", op, inst->si_reg->rf_name);
		return 0;
	}
	if (rval <
	    0) /* DETACH/DEFER are not valid here: illumos maps to EINVAL */
		rval = SOF_RVAL_EINVAL;
	atomic_fetch_add_explicit(&inst->si_stats->sf_denied, 1,
	    memory_order_relaxed);
	sf_log(SF_LOG_DEBUG, "%s denied by filter %s: %s", op,
	    inst->si_reg->rf_name, strerror((int)rval));
	sf_trace("%s: %s denied errno=%d", op, inst->si_reg->rf_name,
	    (int)rval);
	return (int)rval;
}

/* The control walks, one per operation, in illumos's shape. */
#define STK_CONTROL(opname, slot, ...)                                         \
	struct stk_inst *inst;                                                 \
	for (inst = so->so_top; inst != NULL; inst = inst->si_down) {          \
		sof_rval_t rval;                                               \
		if (stk_skip(inst) || inst->si_ops->slot == NULL)              \
			continue;                                              \
		rval = inst->si_ops->slot((sof_handle_t)inst,                  \
		    stk_cookie(inst), __VA_ARGS__);                            \
		if (rval != SOF_RVAL_CONTINUE)                                 \
			return stk_verdict(inst, opname, rval);                \
	}                                                                      \
	return -1

int
stk_bind(struct sock *so, struct sockaddr *addr, socklen_t *len)
{
	STK_CONTROL("bind", sofop_bind, addr, len, sock_cred());
}

int
stk_listen(struct sock *so, int *backlog)
{
	STK_CONTROL("listen", sofop_listen, backlog, sock_cred());
}

int
stk_connect(struct sock *so, struct sockaddr *addr, socklen_t *len)
{
	STK_CONTROL("connect", sofop_connect, addr, len, sock_cred());
}

int
stk_shutdown(struct sock *so, int *how)
{
	STK_CONTROL("shutdown", sofop_shutdown, how, sock_cred());
}

int
stk_getsockname(struct sock *so, struct sockaddr *addr, socklen_t *len)
{
	STK_CONTROL("getsockname", sofop_getsockname, addr, len, sock_cred());
}

int
stk_getpeername(struct sock *so, struct sockaddr *addr, socklen_t *len)
{
	STK_CONTROL("getpeername", sofop_getpeername, addr, len, sock_cred());
}

int
stk_setsockopt(struct sock *so, int level, int name, void *val, socklen_t *len)
{
	STK_CONTROL("setsockopt", sofop_setsockopt, level, name, val, len,
	    sock_cred());
}

int
stk_getsockopt(struct sock *so, int level, int name, void *val, socklen_t *len)
{
	STK_CONTROL("getsockopt", sofop_getsockopt, level, name, val, len,
	    sock_cred());
}

int
stk_ioctl(struct sock *so, int cmd, intptr_t arg, int32_t *rvalp)
{
	STK_CONTROL("ioctl", sofop_ioctl, cmd, arg, 0, rvalp, sock_cred());
}

/* Accepted socket: sofop_accept top-down on the new socket's stack. */
static int
stk_accept(struct sock *so)
{
	STK_CONTROL("accept", sofop_accept, sock_cred());
}

void
stk_notify(struct sock *so, sof_event_t ev, uintptr_t arg)
{
	struct stk_inst *inst;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up) {
		if (stk_skip(inst) || inst->si_ops->sofop_notify == NULL)
			continue;
		inst->si_ops->sofop_notify((sof_handle_t)inst, stk_cookie(inst),
		    ev, arg);
	}
}

/*
 * stk_data_out(so, from, mp, msg, &rval): data_out from instance `from`
 * down to the bottom.  Returns the chain for the kernel, or NULL with
 * *rvalp set (RETURN: swallowed, errno: fail, CONTINUE: EINVAL).
 */
mblk_t *
stk_data_out(struct sock *so, struct stk_inst *from, mblk_t *mp,
    struct nmsghdr *msg, sof_rval_t *rvalp)
{
	struct stk_inst *inst;

	*rvalp = SOF_RVAL_CONTINUE;
	for (inst = from; inst != NULL && mp != NULL; inst = inst->si_down) {
		if (stk_skip(inst) || inst->si_ops->sofop_data_out == NULL)
			continue;
		atomic_fetch_add_explicit(&inst->si_stats->sf_bytes_out,
		    mb_dsize(mp), memory_order_relaxed);
		mp = inst->si_ops->sofop_data_out((sof_handle_t)inst,
		    stk_cookie(inst), mp, msg, sock_cred(), rvalp);
		if (mp == NULL) {
			if (*rvalp > 0)
				atomic_fetch_add_explicit(&inst->si_stats
				                               ->sf_denied,
				    1, memory_order_relaxed);
			sf_trace("data_out: %s consumed, rval=%d",
			    inst->si_reg->rf_name, (int)*rvalp);
			return NULL;
		}
	}
	(void)so;
	return mp;
}

/* The data_in walk (inline in its two callers: one call per receive). */
static inline mblk_t *
stk_data_in_walk(struct sock *so, struct stk_inst *from, mblk_t *mp, int flags)
{
	struct stk_inst *inst;
	size_t size = mp != NULL ? mb_dsize(mp) : 0;

	for (inst = from; inst != NULL && mp != NULL; inst = inst->si_up) {
		if (stk_skip(inst) || inst->si_ops->sofop_data_in == NULL)
			continue;
		mp = inst->si_ops->sofop_data_in((sof_handle_t)inst,
		    stk_cookie(inst), mp, flags, &size);
		if (mp != NULL && size == 0 && msgdsize(mp) == 0 &&
		    (so->so_flags & SO_F_STREAM)) {
			/* An empty result on a stream means "consumed". */
			freemsg(mp);
			mp = NULL;
		}
	}
	return mp;
}

/* The data_in_proc walk (inline as above); size: update *sizep to the
 * result's size (else the caller does it if it needs it). */
static inline mblk_t *
stk_data_in_proc_walk(struct sock *so, mblk_t *mp, size_t *sizep, bool size)
{
	struct stk_inst *inst;

	for (inst = so->so_bottom; inst != NULL && mp != NULL;
	     inst = inst->si_up) {
		if (stk_skip(inst) || inst->si_ops->sofop_data_in_proc == NULL)
			continue;
		mp = inst->si_ops->sofop_data_in_proc((sof_handle_t)inst,
		    stk_cookie(inst), mp, sock_cred(), sizep);
	}
	if (mp == NULL)
		*sizep = 0;
	else if (size)
		*sizep = mb_dsize(mp);
	return mp;
}

/*
 * stk_data_in(so, from, mp, flags): data_in from instance `from` up to the
 * top.  Returns what is left for the receive queue, or NULL if consumed.
 */
mblk_t *
stk_data_in(struct sock *so, struct stk_inst *from, mblk_t *mp, int flags)
{
	return stk_data_in_walk(so, from, mp, flags);
}

/* data_in_proc bottom-up, once per message, before the copy out. */
mblk_t *
stk_data_in_proc(struct sock *so, mblk_t *mp, size_t *sizep)
{
	return stk_data_in_proc_walk(so, mp, sizep, true);
}

/*
 * stk_data_in_now(so, mp, flags, sizep): data_in bottom-up from the
 * bottom, then data_in_proc on what is left: for data that reaches the
 * application in the same call (an in-place read), one walk after the
 * other as if it had passed the queue.  *sizep is scratch for the
 * callbacks (0 when all was consumed); the caller sizes the result.
 */
mblk_t *
stk_data_in_now(struct sock *so, mblk_t *mp, int flags, size_t *sizep)
{
	mp = stk_data_in_walk(so, so->so_bottom, mp, flags);
	if (mp == NULL) {
		*sizep = 0;
		return NULL;
	}
	*sizep = mb_dsize(mp);
	return stk_data_in_proc_walk(so, mp, sizep, false);
}

/* Block properties: defaults, then every filter bottom-up may change them. */
void
stk_mblk_prop(struct sock *so)
{
	struct stk_inst *inst;
	ssize_t maxblk = -1;
	ushort_t wroff = 0, tail = 0;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up) {
		if (stk_skip(inst) || inst->si_ops->sofop_mblk_prop == NULL)
			continue;
		inst->si_ops->sofop_mblk_prop((sof_handle_t)inst,
		    stk_cookie(inst), &maxblk, &wroff, &tail);
	}
	so->so_maxblk = maxblk;
	so->so_wroff = wroff;
	so->so_tail = tail;
}

/* Which data callbacks the active filters have (fast paths skip work). */
void
stk_recompute(struct sock *so)
{
	struct stk_inst *inst;
	unsigned ops = 0;
	int nactive = 0;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up) {
		if (stk_skip(inst))
			continue;
		nactive++;
		if (inst->si_ops->sofop_data_out != NULL)
			ops |= SO_OP_DATA_OUT;
		if (inst->si_ops->sofop_data_in != NULL ||
		    inst->si_ops->sofop_data_in_proc != NULL)
			ops |= SO_OP_DATA_IN;
	}
	atomic_store(&so->so_ops, ops);
	if (atomic_exchange(&so->so_nactive, nactive) > 0 && nactive == 0 &&
	    so->so_ninst > 0 && sock_bypass_hook != NULL)
		sock_bypass_hook(so); /* every filter bypassed: fast path */
	dmn_sock_update(so);          /* daemon: the per-socket view (dmn.c) */
}

/* ---------------------------------------------------------------------
 * Instances: creation, attach, detach.
 * ------------------------------------------------------------------- */

static struct stk_inst *
stk_inst_new(struct sock *so, struct reg_filter *rf,
    const struct cfg_filter *cf, unsigned flags)
{
	struct stk_inst *inst = calloc(1, sizeof(*inst));

	if (inst == NULL)
		return NULL;
	inst->si_sock = so;
	inst->si_reg = rf;
	inst->si_ops = &rf->rf_ops;
	inst->si_cfg = cf;
	inst->si_stats = st_filter_get(cf != NULL ? cf->cf_name : rf->rf_name);
	inst->si_flags = flags;
	return inst;
}

/* Push on top of the stack (the stack is built bottom up). */
static void
stk_push(struct sock *so, struct stk_inst *inst)
{
	inst->si_down = so->so_top;
	inst->si_up = NULL;
	if (so->so_top != NULL)
		so->so_top->si_up = inst;
	else
		so->so_bottom = inst;
	so->so_top = inst;
	so->so_ninst++;
}

static void
stk_unlink(struct sock *so, struct stk_inst *inst)
{
	if (inst->si_up != NULL)
		inst->si_up->si_down = inst->si_down;
	else
		so->so_top = inst->si_down;
	if (inst->si_down != NULL)
		inst->si_down->si_up = inst->si_up;
	else
		so->so_bottom = inst->si_up;
	so->so_ninst--;
}

/* Free an instance that never attached or has been detached. */
static void
stk_inst_free(struct stk_inst *inst)
{
	if (inst->si_flags & SI_F_ATTACHED)
		atomic_fetch_sub(&inst->si_stats->sf_nactive, 1);
	if (inst->si_flags & SI_F_DEFER)
		atomic_fetch_sub(&inst->si_stats->sf_ndeferred, 1);
	reg_rele(inst->si_reg);
	free(inst->si_arg);
	free(inst);
}

/* Detach one instance: its last callback. */
static void
stk_detach_one(struct sock *so, struct stk_inst *inst)
{
	stk_unlink(so, inst);
	svc_cancel_inst(inst);
	if (inst->si_ops->sofop_detach != NULL)
		inst->si_ops->sofop_detach((sof_handle_t)inst, stk_cookie(inst),
		    sock_cred());
	sf_trace("detach: %s fd=%d", inst->si_reg->rf_name, so->so_fd);
	stk_inst_free(inst);
}

/* Detach everything, top first (teardown: nobody else uses the socket). */
void
stk_detach_all(struct sock *so)
{
	while (so->so_top != NULL)
		stk_detach_one(so, so->so_top);
	stk_recompute(so);
}

/*
 * stk_attach_active(so, cf, flags): resolve and attach one filter through
 * sofop_attach_active.  0 (attached or declined), ENXIO (module missing),
 * or the errno the filter failed with.
 */
static int
stk_attach_active(struct sock *so, const struct cfg_filter *cf, unsigned flags,
    bool *attached)
{
	struct reg_filter *rf;
	struct stk_inst *inst;
	sof_rval_t rval = SOF_RVAL_CONTINUE;
	void *cookie = NULL;
	int error;

	*attached = false;
	if ((error = reg_resolve(so->so_cfg, cf, &rf)) != 0)
		return error;
	if ((inst = stk_inst_new(so, rf, cf, flags)) == NULL) {
		reg_rele(rf);
		return ENOMEM;
	}
	atomic_fetch_add(&inst->si_stats->sf_tot_active_attach, 1);
	/* Linked before the callback so that sof_get_fd() & co work in it. */
	stk_push(so, inst);
	if (rf->rf_ops.sofop_attach_active != NULL)
		rval = rf->rf_ops.sofop_attach_active((sof_handle_t)inst,
		    so->so_family, so->so_type, so->so_proto, sock_cred(),
		    &cookie);
	if (rval == SOF_RVAL_CONTINUE) {
		atomic_store(&inst->si_cookie, cookie);
		inst->si_flags |= SI_F_ATTACHED;
		atomic_fetch_add(&inst->si_stats->sf_nactive, 1);
		sf_log(SF_LOG_DEBUG, "fd %d: filter %s attached (%s)",
		    so->so_fd, cf->cf_name,
		    (flags & SI_F_AUTO) ? "auto" : "prog");
		sf_trace("attach_active: %s fd=%d", cf->cf_name, so->so_fd);
		*attached = true;
		return 0;
	}
	if (rval != SOF_RVAL_DETACH)
		atomic_fetch_add(&inst->si_stats->sf_attach_failures, 1);
	stk_unlink(so, inst);
	stk_inst_free(inst);
	if (rval == SOF_RVAL_DETACH) {
		sf_log(SF_LOG_DEBUG, "fd %d: filter %s declined", so->so_fd,
		    cf->cf_name);
		return 0;
	}
	return rval > 0 ? (int)rval : EINVAL;
}

/* Automatic filters at socket(): bottom first, each attach_active called
 * as it is pushed.  An error fails the socket and undoes the stack. */
int
stk_attach_auto(struct sock *so)
{
	const struct cfg_filter *order[CFG_MAXFILTERS];
	int n, i, error;
	bool attached;

	n = cfg_auto_order(so->so_cfg, so->so_family, so->so_type, so->so_proto,
	    order, CFG_MAXFILTERS);
	if (n > SOCK_MAXSTACK)
		n = SOCK_MAXSTACK;
	for (i = 0; i < n; i++) {
		error = stk_attach_active(so, order[i], SI_F_AUTO, &attached);
		if (error == ENXIO)
			continue; /* logged once by the registry; skip it */
		if (error != 0) {
			sf_log(SF_LOG_DEBUG, "socket denied by filter %s: %s",
			    order[i]->cf_name, strerror(error));
			stk_detach_all(so);
			return error;
		}
	}
	stk_recompute(so);
	stk_mblk_prop(so);
	return 0;
}

/*
 * stk_inherit(lso, so, laddr, faddr): passive attach of the listener's
 * filters to an accepted socket, bottom-up.  Bypassed listener filters are
 * skipped (illumos stops at the first one).  Returns 0, or an errno: the
 * connection must be dropped.  *deferred tells whether a filter deferred.
 */
int
stk_inherit(struct sock *lso, struct sock *so, struct sockaddr *laddr,
    socklen_t laddrlen, struct sockaddr *faddr, socklen_t faddrlen,
    bool *deferred)
{
	struct stk_inst *linst, *inst;
	int error = 0;

	*deferred = false;
	for (linst = lso->so_bottom; linst != NULL; linst = linst->si_up) {
		sof_rval_t rval = SOF_RVAL_CONTINUE;
		void *cookie = NULL;

		if (stk_skip(linst))
			continue;
		atomic_fetch_add(&linst->si_reg->rf_refs, 1);
		inst = stk_inst_new(so, linst->si_reg, linst->si_cfg,
		    linst->si_flags & (SI_F_AUTO | SI_F_PROG));
		if (inst == NULL) {
			reg_rele(linst->si_reg);
			error = ENOMEM;
			break;
		}
		atomic_fetch_add(&inst->si_stats->sf_tot_passive_attach, 1);
		if (linst->si_arg != NULL)
			inst->si_arg = strdup(linst->si_arg);
		stk_push(so, inst);
		if (inst->si_ops->sofop_attach_passive != NULL)
			rval = inst->si_ops->sofop_attach_passive((sof_handle_t)
			                                              inst,
			    (sof_handle_t)linst, stk_cookie(linst), laddr,
			    laddrlen, faddr, faddrlen, &cookie);
		if (rval == SOF_RVAL_CONTINUE || rval == SOF_RVAL_DEFER) {
			atomic_store(&inst->si_cookie, cookie);
			inst->si_flags |= SI_F_ATTACHED;
			atomic_fetch_add(&inst->si_stats->sf_nactive, 1);
			if (rval == SOF_RVAL_DEFER) {
				inst->si_flags |= SI_F_DEFER;
				atomic_fetch_add(&inst->si_stats->sf_ndeferred,
				    1);
				*deferred = true;
			}
			continue;
		}
		if (rval != SOF_RVAL_DETACH)
			atomic_fetch_add(&inst->si_stats->sf_attach_failures,
			    1);
		stk_unlink(so, inst);
		stk_inst_free(inst);
		if (rval == SOF_RVAL_DETACH)
			continue;
		error = rval > 0 ? (int)rval : ECONNABORTED;
		break;
	}
	if (error != 0) {
		stk_detach_all(so);
		return error;
	}
	stk_recompute(so);
	stk_mblk_prop(so);
	if (!*deferred)
		error = stk_accept(so);
	return error > 0 ? error : 0;
}

/* After a deferral ended: the accept callbacks that were held back. */
int
stk_accept_deferred(struct sock *so)
{
	int error = stk_accept(so);

	return error > 0 ? error : 0;
}

/* Does an active filter of so declare SOF_DEFERS (accept filters)? */
bool
stk_defers(struct sock *so)
{
	struct stk_inst *inst;
	bool r = false;

	pthread_mutex_lock(&so->so_lock);
	for (inst = so->so_bottom; inst != NULL && !r; inst = inst->si_up)
		r = !stk_skip(inst) && (inst->si_reg->rf_flags & SOF_DEFERS);
	pthread_mutex_unlock(&so->so_lock);
	return r;
}

static struct stk_inst *stk_find(struct sock *so, const char *name);

/*
 * SO_ACCEPTFILTER (FreeBSD).  The FreeBSD names reach the shipped accept
 * filters; any other name must be a filter of the configuration.  A
 * filter the configuration does not list is loaded by module name from
 * the default module directory, with no parameters but af_arg.
 */
static const struct {
	const char *af, *filter;
} stk_af_names[] = {
    {"dataready", "accf_data"},
    {"httpready", "accf_http"},
    {"dnsready", "accf_dns"},
    {"tlsready", "accf_tls"},
};

static struct cfg_filter stk_af_builtin[4];
static pthread_once_t stk_af_once = PTHREAD_ONCE_INIT;

static void
stk_af_init(void)
{
	size_t i;

	for (i = 0; i < 4; i++) {
		snprintf(stk_af_builtin[i].cf_name, FILNAME_MAX, "%s",
		    stk_af_names[i].filter);
		stk_af_builtin[i].cf_module = (char *)stk_af_names[i].filter;
	}
}

int
stk_af_set(struct sock *so, const struct accept_filter_arg *afa)
{
	const struct cfg_filter *cf = NULL;
	char name[sizeof(afa->af_name) + 1], arg[sizeof(afa->af_arg) + 1];
	const char *fname;
	bool attached;
	size_t i;
	int error;

	memcpy(name, afa->af_name, sizeof(afa->af_name));
	name[sizeof(afa->af_name)] = '\0';
	memcpy(arg, afa->af_arg, sizeof(afa->af_arg));
	arg[sizeof(afa->af_arg)] = '\0';
	fname = name;
	pthread_once(&stk_af_once, stk_af_init);
	for (i = 0; i < 4; i++)
		if (strcmp(name, stk_af_names[i].af) == 0) {
			fname = stk_af_names[i].filter;
			cf = &stk_af_builtin[i];
		}
	/* The configuration's own definition wins (its parameters). */
	if (so->so_cfg != NULL && cfg_find(so->so_cfg, fname) != NULL)
		cf = cfg_find(so->so_cfg, fname);
	if (cf == NULL)
		return ENOENT;
	pthread_mutex_lock(&so->so_lock);
	if (so->so_af != NULL || stk_find(so, fname) != NULL) {
		pthread_mutex_unlock(&so->so_lock);
		return EINVAL;
	}
	error = stk_attach_active(so, cf, SI_F_PROG, &attached);
	if (error == 0 && !attached)
		error = EINVAL;
	if (error == 0) {
		so->so_af = stk_find(so, fname);
		/* FreeBSD keeps 15 bytes and a NUL (af_name[15] = 0). */
		snprintf(so->so_af_name, sizeof(so->so_af_name), "%.15s", name);
		if (arg[0] != '\0')
			so->so_af->si_arg = strdup(arg);
		stk_recompute(so);
		stk_mblk_prop(so);
	}
	pthread_mutex_unlock(&so->so_lock);
	return error == ENXIO ? ENOENT : error;
}

int
stk_af_clear(struct sock *so)
{
	struct stk_inst *inst;

	pthread_mutex_lock(&so->so_lock);
	if ((inst = so->so_af) == NULL) {
		pthread_mutex_unlock(&so->so_lock);
		return 0;
	}
	so->so_af = NULL;
	so->so_af_name[0] = '\0';
	stk_detach_one(so, inst);
	stk_recompute(so);
	stk_mblk_prop(so);
	pthread_mutex_unlock(&so->so_lock);
	aq_release_all(so);
	return 0;
}

int
stk_af_get(struct sock *so, struct accept_filter_arg *afa)
{
	int error = 0;

	memset(afa, 0, sizeof(*afa));
	pthread_mutex_lock(&so->so_lock);
	if (so->so_af == NULL) {
		error = EINVAL;
	} else {
		memcpy(afa->af_name, so->so_af_name, sizeof(afa->af_name));
		if (so->so_af->si_arg != NULL)
			snprintf(afa->af_arg, sizeof(afa->af_arg), "%s",
			    so->so_af->si_arg);
	}
	pthread_mutex_unlock(&so->so_lock);
	return error;
}

/* Is any instance still deferring the connection? */
bool
stk_deferred(struct sock *so)
{
	struct stk_inst *inst;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up)
		if (inst->si_flags & SI_F_DEFER)
			return true;
	return false;
}

/* ---------------------------------------------------------------------
 * SOL_FILTER.
 * ------------------------------------------------------------------- */

static struct stk_inst *
stk_find(struct sock *so, const char *name)
{
	struct stk_inst *inst;

	for (inst = so->so_top; inst != NULL; inst = inst->si_down) {
		const char *n = inst->si_cfg != NULL ? inst->si_cfg->cf_name
		                                     : inst->si_reg->rf_name;

		if (strncmp(n, name, FILNAME_MAX) == 0)
			return inst;
	}
	return NULL;
}

int
stk_fil_attach(struct sock *so, const char *name)
{
	const struct cfg_filter *cf;
	bool attached;
	int error;

	pthread_mutex_lock(&so->so_lock);
	if (!(atomic_load(&so->so_flags) & SO_F_FILOP_OK)) {
		error = EINVAL;
	} else if (stk_find(so, name) != NULL) {
		error = EEXIST;
	} else if ((cf = cfg_prog_filter(so->so_cfg, name, so->so_family,
	                so->so_type, so->so_proto)) == NULL) {
		error = ENXIO;
	} else if (so->so_ninst >= SOCK_MAXSTACK) {
		error = ENOSPC;
	} else {
		error = stk_attach_active(so, cf, SI_F_PROG, &attached);
		/* A filter declining a programmatic attach is an error for
		 * the application: it asked for it by name. */
		if (error == 0 && !attached)
			error = EINVAL;
		if (error == 0) {
			stk_recompute(so);
			stk_mblk_prop(so);
		}
	}
	pthread_mutex_unlock(&so->so_lock);
	return error;
}

int
stk_fil_detach(struct sock *so, const char *name)
{
	struct stk_inst *inst;
	int error = 0;

	pthread_mutex_lock(&so->so_lock);
	if (!(atomic_load(&so->so_flags) & SO_F_FILOP_OK))
		error = EINVAL;
	else if ((inst = stk_find(so, name)) == NULL)
		error = ENXIO;
	else if (inst->si_flags & SI_F_AUTO)
		error = EINVAL; /* automatic filters cannot be detached */
	else {
		stk_detach_one(so, inst);
		stk_recompute(so);
		stk_mblk_prop(so);
	}
	pthread_mutex_unlock(&so->so_lock);
	return error;
}

int
stk_fil_list(struct sock *so, struct fil_info *fi, socklen_t *len)
{
	struct stk_inst *inst;
	size_t max = *len / sizeof(struct fil_info), n = 0;
	int pos;

	if (max == 0)
		return EINVAL;
	pthread_mutex_lock(&so->so_lock);
	pos = so->so_ninst - 1;
	for (inst = so->so_top; inst != NULL && n < max;
	     inst = inst->si_down, pos--, n++) {
		const char *name = inst->si_cfg != NULL ? inst->si_cfg->cf_name
		                                        : inst->si_reg->rf_name;

		memset(&fi[n], 0, sizeof(fi[n]));
		fi[n].fi_flags =
		    (inst->si_flags & SI_F_PROG) ? FILF_PROG : FILF_AUTO;
		if (inst->si_flags & SI_F_BYPASS)
			fi[n].fi_flags |= FILF_BYPASS;
		fi[n].fi_pos = pos;
		snprintf(fi[n].fi_name, sizeof(fi[n].fi_name), "%s", name);
	}
	pthread_mutex_unlock(&so->so_lock);
	*len = (socklen_t)(n * sizeof(struct fil_info));
	return 0;
}

/* ---------------------------------------------------------------------
 * The sof_* calls filters make.
 * ------------------------------------------------------------------- */

#define STK_INST(h) ((struct stk_inst *)(void *)(h))

void
sof_bypass(sof_handle_t h)
{
	struct stk_inst *inst = STK_INST(h);

	if (inst == NULL || (inst->si_flags & SI_F_BYPASS))
		return;
	inst->si_flags |= SI_F_BYPASS;
	stk_recompute(inst->si_sock);
}

void *
sof_get_cookie(sof_handle_t h)
{
	return h == NULL ? NULL : stk_cookie(STK_INST(h));
}

void *
sof_cas_cookie(sof_handle_t h, void *old, void *new_cookie)
{
	void *expected = old;

	if (h == NULL)
		return NULL;
	atomic_compare_exchange_strong(&STK_INST(h)->si_cookie, &expected,
	    new_cookie);
	return expected;
}

void
sof_newconn_ready(sof_handle_t h)
{
	struct stk_inst *inst = STK_INST(h);

	if (inst == NULL || !(inst->si_flags & SI_F_DEFER))
		return;
	inst->si_flags &= ~SI_F_DEFER;
	atomic_fetch_sub(&inst->si_stats->sf_ndeferred, 1);
	aq_ready(inst->si_sock); /* the last one moves it to accept() */
}

boolean_t
sof_newconn_move(sof_handle_t h, sof_handle_t newparent)
{
	(void)h;
	(void)newparent;
	return B_FALSE;
}

void
sof_newconn_close(sof_handle_t h)
{
	struct stk_inst *inst = STK_INST(h);

	if (inst != NULL)
		aq_newconn_close(inst->si_sock);
}

/* Flow control is the OR of every instance's assertion. */
static bool
stk_fc_any(struct sock *so, unsigned flag)
{
	struct stk_inst *inst;

	for (inst = so->so_bottom; inst != NULL; inst = inst->si_up)
		if (inst->si_flags & flag)
			return true;
	return false;
}

static void
stk_flowctrl(sof_handle_t h, boolean_t enable, unsigned iflag, unsigned sflag,
    sof_event_t ok)
{
	struct stk_inst *inst = STK_INST(h);
	struct sock *so;
	bool lifted = false;

	if (inst == NULL)
		return;
	so = inst->si_sock;
	pthread_mutex_lock(&so->so_lock);
	if (enable) {
		inst->si_flags |= iflag;
		atomic_fetch_or(&so->so_flags, sflag | SO_F_ASYNC);
	} else {
		inst->si_flags &= ~iflag;
		if ((atomic_load(&so->so_flags) & sflag) &&
		    !stk_fc_any(so, iflag)) {
			atomic_fetch_and(&so->so_flags, ~sflag);
			lifted = true;
		}
	}
	pthread_mutex_unlock(&so->so_lock);
	sock_rdy_update(so, false);
	if (lifted)
		stk_notify(so, ok, 0);
}

void
sof_rcv_flowctrl(sof_handle_t h, boolean_t enable)
{
	stk_flowctrl(h, enable, SI_F_RCVFC, SO_F_RCVFC,
	    SOF_EV_INJECT_DATA_IN_OK);
}

void
sof_snd_flowctrl(sof_handle_t h, boolean_t enable)
{
	stk_flowctrl(h, enable, SI_F_SNDFC, SO_F_SNDFC,
	    SOF_EV_INJECT_DATA_OUT_OK);
}

int
sof_inject_data_out(sof_handle_t h, mblk_t *mp, struct nmsghdr *msg,
    boolean_t *flowctrl)
{
	struct stk_inst *inst = STK_INST(h);

	if (flowctrl != NULL)
		*flowctrl = B_FALSE;
	if (inst == NULL || mp == NULL) {
		freemsg(mp);
		return EINVAL;
	}
	return sock_inject_out(inst->si_sock, inst, mp, msg, flowctrl);
}

int
sof_inject_data_in(sof_handle_t h, mblk_t *mp, size_t len, int flags,
    boolean_t *flowctrl)
{
	struct stk_inst *inst = STK_INST(h);

	(void)len;
	if (flowctrl != NULL)
		*flowctrl = B_FALSE;
	if (inst == NULL || mp == NULL || flags != 0) {
		freemsg(mp);
		return EINVAL;
	}
	return sock_inject_in(inst->si_sock, inst, mp, flowctrl);
}

const char *
sof_get_param(sof_handle_t h, const char *key)
{
	struct stk_inst *inst = STK_INST(h);

	if (inst == NULL || key == NULL)
		return NULL;
	if (inst->si_arg != NULL && strcmp(key, "arg") == 0)
		return inst->si_arg;
	if (inst->si_cfg == NULL)
		return NULL;
	return cfg_param(inst->si_cfg, key);
}

const char *
sof_get_name(sof_handle_t h)
{
	struct stk_inst *inst = STK_INST(h);

	if (inst == NULL)
		return NULL;
	return inst->si_cfg != NULL ? inst->si_cfg->cf_name
	                            : inst->si_reg->rf_name;
}

int
sof_get_fd(sof_handle_t h)
{
	return h == NULL ? -1 : STK_INST(h)->si_sock->so_fd;
}

int
sof_lib_version(void)
{
	return SOF_LIB_VERSION_MAJOR * 10000 + SOF_LIB_VERSION_MINOR * 100 +
	       SOF_LIB_VERSION_PATCH;
}
