/*
 * accf_glue.h: the sof_* side shared by the four accept filter modules.
 * Each module (accf_data.c, accf_http.c, accf_dns.c, accf_tls.c) is one
 * struct accf_desc and a callback table made of these functions; the
 * decisions are in accf_parse.c.  Built into every module with hidden
 * visibility, so two loaded modules never bind to each other's copy.
 *
 * Lifecycle of an instance:
 *   listener or client socket   attach_active: CONTINUE without a cookie
 *                               (socket() cannot tell a future listener
 *                               from a client); connect, or any data on
 *                               such a socket, bypasses the instance, so
 *                               a client socket stops paying for it.
 *   accepted socket             attach_passive: DEFER, timer armed when a
 *                               timeout is set; data_in feeds the parser
 *                               and passes the data on unchanged; the
 *                               rule, peer EOF, or a "hand over" verdict
 *                               -> sof_newconn_ready + sof_bypass; the
 *                               timer -> sof_newconn_close.
 */
#ifndef ACCF_GLUE_H
#define ACCF_GLUE_H

#include <stdatomic.h>

#include "sockfilter.h"
#include "accf_parse.h"

#define ACCF_HIDDEN __attribute__((visibility("hidden")))

/* One accept filter module. */
struct accf_desc {
	const char *ad_name;                 /* registered filter name */
	enum accf_kind ad_kind;              /* which parser */
	atomic_ulong ad_count[ACCF_R_COUNT]; /* connections, by outcome */
};

/* The modules' descriptors (each module defines its own). */
extern struct accf_desc accf_data_desc ACCF_HIDDEN;
extern struct accf_desc accf_http_desc ACCF_HIDDEN;
extern struct accf_desc accf_dns_desc ACCF_HIDDEN;
extern struct accf_desc accf_tls_desc ACCF_HIDDEN;

/* attach_passive of module desc: the connection is deferred (or, without
 * memory for the state, not deferred and the instance declines). */
sof_rval_t accf_glue_attach_passive(struct accf_desc *desc, sof_handle_t h,
    sof_handle_t ph, void **cookiep) ACCF_HIDDEN;

/* The callbacks that need no descriptor (the cookie carries it). */
sof_rval_t accf_glue_attach_active(sof_handle_t h, int family, int type,
    int proto, cred_t *cr, void **cookiep) ACCF_HIDDEN;
void accf_glue_detach(sof_handle_t h, void *cookie, cred_t *cr) ACCF_HIDDEN;
mblk_t *accf_glue_data_in(sof_handle_t h, void *cookie, mblk_t *mp, int flags,
    size_t *sizep) ACCF_HIDDEN;
sof_rval_t accf_glue_connect(sof_handle_t h, void *cookie,
    struct sockaddr *addr, socklen_t *addrlen, cred_t *cr) ACCF_HIDDEN;
void accf_glue_notify(sof_handle_t h, void *cookie, sof_event_t ev,
    uintptr_t arg) ACCF_HIDDEN;

/* The settings an accepted socket uses: defaults, then the parameters
 * timeout/maxhdr/parsehttpversion, then "arg" (SO_ACCEPTFILTER's
 * af_arg), each read from the listener's handle ph and then from h. */
void accf_glue_conf(sof_handle_t h, sof_handle_t ph,
    struct accf_conf *ac) ACCF_HIDDEN;

/* Register desc with the callbacks above (from a module constructor). */
void accf_glue_register(struct accf_desc *desc,
    const sof_ops_t *ops) ACCF_HIDDEN;

#endif /* ACCF_GLUE_H */
