/*
 * accf_dns: FreeBSD's dnsready accept filter.  A new connection is held
 * until one whole length-prefixed DNS query has arrived, or the peer
 * closed (which FreeBSD forgets).  Rules in accf_parse.h, the sof_* side
 * in accf_glue.c.  Parameters: timeout, arg (see README).
 */
#include "accf_glue.h"

struct accf_desc accf_dns_desc = {
    .ad_name = "accf_dns",
    .ad_kind = ACCF_K_DNS,
};

static sof_rval_t
accf_dns_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	return accf_glue_attach_passive(&accf_dns_desc, h, ph, cookiep);
}

static const sof_ops_t accf_dns_ops = {
    .sofop_attach_active = accf_glue_attach_active,
    .sofop_attach_passive = accf_dns_attach_passive_cb,
    .sofop_detach = accf_glue_detach,
    .sofop_data_in = accf_glue_data_in,
    .sofop_connect = accf_glue_connect,
    .sofop_notify = accf_glue_notify,
};

__attribute__((constructor)) static void
accf_dns_ctor(void)
{
	accf_glue_register(&accf_dns_desc, &accf_dns_ops);
}

__attribute__((destructor)) static void
accf_dns_dtor(void)
{
	(void)sof_unregister(accf_dns_desc.ad_name);
}
