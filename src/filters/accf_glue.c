/*
 * accf_glue.c: the sof_* side of the accept filters (see accf_glue.h).
 *
 * Malformed, binary or oversized input is never dropped here: the parser
 * says "hand over" (FreeBSD's rule for anything that is not what the
 * filter holds for) and the application decides.  The only connections
 * an accept filter closes are those left deferred longer than the
 * timeout; the core counts them in defer_closed, the module in
 * ad_count[ACCF_R_TIMEOUT].
 */
#include <stdlib.h>
#include <string.h>

#include "accf_glue.h"

/* The state of one deferred connection. */
struct ag_inst {
	struct accf_desc *ai_desc;
	unsigned long ai_timer; /* armed timeout, 0 if none */
	bool ai_done;           /* released or closed: nothing more to do */
	struct accf_parser ai_parser;
};

static void
ag_count(struct accf_desc *desc, enum accf_reason r)
{
	atomic_fetch_add_explicit(&desc->ad_count[r], 1, memory_order_relaxed);
}

static void
ag_apply(struct accf_conf *ac, sof_handle_t h)
{
	static const char *const keys[] = {"timeout", "maxhdr",
	    "parsehttpversion"};
	const char *v;
	size_t i;

	if (h == NULL)
		return;
	/* A bad value keeps the default: a typo must not stop a server. */
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if ((v = sof_get_param(h, keys[i])) != NULL)
			(void)accf_conf_set(ac, keys[i], v);
	(void)accf_conf_parse_arg(ac, sof_get_param(h, "arg"));
}

void
accf_glue_conf(sof_handle_t h, sof_handle_t ph, struct accf_conf *ac)
{
	accf_conf_default(ac);
	ag_apply(ac, ph);
	if (h != ph)
		ag_apply(ac, h);
}

/* The connection may go to the application: stop the timer, stop being
 * called for it, and release it.  Bypass first: once released, accept()
 * in another thread may already be using the socket's stack. */
static void
ag_release(sof_handle_t h, struct ag_inst *ai, enum accf_reason r)
{
	ai->ai_done = true;
	ag_count(ai->ai_desc, r);
	if (ai->ai_timer != 0) {
		(void)sof_timer_cancel(h, ai->ai_timer);
		ai->ai_timer = 0;
	}
	/* Bypassed first: once released, the connection may be accepted
	 * (and its callbacks run) on another thread at once. */
	sof_bypass(h);
	sof_newconn_ready(h);
}

static void
ag_timeout_cb(sof_handle_t h, void *cookie, void *arg)
{
	struct ag_inst *ai = cookie;

	(void)arg;
	if (ai == NULL)
		return;
	ai->ai_timer = 0;
	if (ai->ai_done)
		return;
	ai->ai_done = true;
	ag_count(ai->ai_desc, ACCF_R_TIMEOUT);
	sof_newconn_close(h);
	sof_bypass(h);
}

sof_rval_t
accf_glue_attach_passive(struct accf_desc *desc, sof_handle_t h,
    sof_handle_t ph, void **cookiep)
{
	struct accf_conf ac;
	struct ag_inst *ai;

	if ((ai = calloc(1, sizeof(*ai))) == NULL) {
		/* Fail open: the server gets the connection undeferred. */
		ag_count(desc, ACCF_R_NOMEM);
		return SOF_RVAL_DETACH;
	}
	ai->ai_desc = desc;
	accf_glue_conf(h, ph, &ac);
	accf_parser_init(&ai->ai_parser, desc->ad_kind, &ac);
	/* 0: no timer service (yet); the connection waits without one. */
	if (ac.ac_timeout_ms > 0)
		ai->ai_timer =
		    sof_timer_arm(h, ac.ac_timeout_ms, ag_timeout_cb, NULL);
	*cookiep = ai;
	return SOF_RVAL_DEFER;
}

sof_rval_t
accf_glue_attach_active(sof_handle_t h, int family, int type, int proto,
    cred_t *cr, void **cookiep)
{
	/* Stay on: this may become a listener, whose accepted sockets
	 * inherit the filter.  A client socket bypasses it at connect. */
	*cookiep = NULL;
	return SOF_RVAL_CONTINUE;
}

void
accf_glue_detach(sof_handle_t h, void *cookie, cred_t *cr)
{
	struct ag_inst *ai = cookie;

	if (ai == NULL)
		return;
	if (ai->ai_timer != 0)
		(void)sof_timer_cancel(h, ai->ai_timer);
	free(ai);
}

mblk_t *
accf_glue_data_in(sof_handle_t h, void *cookie, mblk_t *mp, int flags,
    size_t *sizep)
{
	struct ag_inst *ai = cookie;

	if (ai == NULL || ai->ai_done) {
		/* Data on a socket that is not a deferred connection: a
		 * client, or one adopted already connected. */
		sof_bypass(h);
		return mp;
	}
	if (accf_parser_feed_chain(&ai->ai_parser, mp) == ACCF_READY)
		ag_release(h, ai, accf_parser_reason(&ai->ai_parser));
	/* Unchanged: the core queues it for the application. */
	return mp;
}

sof_rval_t
accf_glue_connect(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *addrlen, cred_t *cr)
{
	sof_bypass(h);
	return SOF_RVAL_CONTINUE;
}

void
accf_glue_notify(sof_handle_t h, void *cookie, sof_event_t ev, uintptr_t arg)
{
	struct ag_inst *ai = cookie;

	/* FreeBSD's accf_dns forgets EOF and holds such a peer forever. */
	if (ai != NULL && !ai->ai_done && ev == SOF_EV_CANTRECVMORE)
		ag_release(h, ai, ACCF_R_EOF);
}

void
accf_glue_register(struct accf_desc *desc, const sof_ops_t *ops)
{
	(void)sof_register(SOF_VERSION, desc->ad_name, ops,
	    SOF_ATT_SAFE | SOF_DEFERS);
}
