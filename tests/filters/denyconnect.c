/*
 * denyconnect: a test-only filter whose connect callback refuses every
 * connection with EACCES, so that connect() fails before the kernel sees
 * it (the deny_connect end-to-end case).  Attaches to every socket it is
 * configured for; every other callback is left NULL (pass through).
 */

#include "sockfilter.h"

static sof_rval_t
deny_attach_active(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	*cookiep = NULL;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
deny_attach_passive(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	/* Accepted sockets are already connected: nothing to deny. */
	return SOF_RVAL_DETACH;
}

static void
deny_detach(sof_handle_t h, void *cookie, cred_t *cr)
{
}

static sof_rval_t
deny_connect(sof_handle_t h, void *cookie, struct sockaddr *addr,
    socklen_t *addrlen, cred_t *cr)
{
	return SOF_RVAL_EACCES;
}

static const sof_ops_t deny_ops = {
    .sofop_attach_active = deny_attach_active,
    .sofop_attach_passive = deny_attach_passive,
    .sofop_detach = deny_detach,
    .sofop_connect = deny_connect,
};

__attribute__((constructor)) static void
deny_init(void)
{
	(void)sof_register(SOF_VERSION, "denyconnect", &deny_ops, 0);
}
