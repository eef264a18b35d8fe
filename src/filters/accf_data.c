/*
 * accf_data: FreeBSD's dataready accept filter.  A new connection stays
 * invisible to the server until its first byte arrives (or the peer
 * closes).  Rules in accf_parse.h, the sof_* side in accf_glue.c.
 * Parameters: timeout, arg (see README).
 */
#include "accf_glue.h"

struct accf_desc accf_data_desc = {
    .ad_name = "accf_data",
    .ad_kind = ACCF_K_DATA,
};

static sof_rval_t
accf_data_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	return accf_glue_attach_passive(&accf_data_desc, h, ph, cookiep);
}

static const sof_ops_t accf_data_ops = {
    .sofop_attach_active = accf_glue_attach_active,
    .sofop_attach_passive = accf_data_attach_passive_cb,
    .sofop_detach = accf_glue_detach,
    .sofop_data_in = accf_glue_data_in,
    .sofop_connect = accf_glue_connect,
    .sofop_notify = accf_glue_notify,
};

__attribute__((constructor)) static void
accf_data_ctor(void)
{
	accf_glue_register(&accf_data_desc, &accf_data_ops);
}

__attribute__((destructor)) static void
accf_data_dtor(void)
{
	(void)sof_unregister(accf_data_desc.ad_name);
}
