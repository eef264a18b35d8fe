/*
 * accf_http: FreeBSD's httpready accept filter.  A GET or HEAD request is
 * held until its whole header has arrived; anything else (POST, TLS,
 * HTTP/2, HTTP/0.9, garbage) is handed over at once, and so is a header
 * larger than maxhdr or a peer that closed.  Rules in accf_parse.h, the
 * sof_* side in accf_glue.c.  Parameters: timeout, maxhdr,
 * parsehttpversion, arg (see README).
 */
#include "accf_glue.h"

struct accf_desc accf_http_desc = {
    .ad_name = "accf_http",
    .ad_kind = ACCF_K_HTTP,
};

static sof_rval_t
accf_http_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	return accf_glue_attach_passive(&accf_http_desc, h, ph, cookiep);
}

static const sof_ops_t accf_http_ops = {
    .sofop_attach_active = accf_glue_attach_active,
    .sofop_attach_passive = accf_http_attach_passive_cb,
    .sofop_detach = accf_glue_detach,
    .sofop_data_in = accf_glue_data_in,
    .sofop_connect = accf_glue_connect,
    .sofop_notify = accf_glue_notify,
};

__attribute__((constructor)) static void
accf_http_ctor(void)
{
	accf_glue_register(&accf_http_desc, &accf_http_ops);
}

__attribute__((destructor)) static void
accf_http_dtor(void)
{
	(void)sof_unregister(accf_http_desc.ad_name);
}
