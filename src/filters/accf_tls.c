/*
 * accf_tls: FreeBSD's tlsready accept filter.  A new connection is held
 * until its first TLS record (the ClientHello) has arrived whole; a peer
 * that does not start with a TLS handshake record is handed over at once.
 * Rules in accf_parse.h, the sof_* side in accf_glue.c.  Parameters:
 * timeout, arg (see README).
 */
#include "accf_glue.h"

struct accf_desc accf_tls_desc = {
    .ad_name = "accf_tls",
    .ad_kind = ACCF_K_TLS,
};

static sof_rval_t
accf_tls_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	return accf_glue_attach_passive(&accf_tls_desc, h, ph, cookiep);
}

static const sof_ops_t accf_tls_ops = {
    .sofop_attach_active = accf_glue_attach_active,
    .sofop_attach_passive = accf_tls_attach_passive_cb,
    .sofop_detach = accf_glue_detach,
    .sofop_data_in = accf_glue_data_in,
    .sofop_connect = accf_glue_connect,
    .sofop_notify = accf_glue_notify,
};

__attribute__((constructor)) static void
accf_tls_ctor(void)
{
	accf_glue_register(&accf_tls_desc, &accf_tls_ops);
}

__attribute__((destructor)) static void
accf_tls_dtor(void)
{
	(void)sof_unregister(accf_tls_desc.ad_name);
}
