/*
 * xorfilt: a reversible transform.  Every byte sent is XORed with the
 * parameter key (0-255, default 90) in data_out, and every byte received
 * in data_in_proc, so two programs under xorfilt talk normally while the
 * bytes on the wire differ.
 */
#include <stdlib.h>

#include "sockfilter.h"

static sof_rval_t
xf_attach_active_cb(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	const char *k = sof_get_param(h, "key");
	long key = k != NULL ? strtol(k, NULL, 0) : 90;

	/* The key travels in the cookie pointer itself: no allocation. */
	*cookiep = (void *)(uintptr_t)(key & 0xff);
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
xf_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	*cookiep = parg;
	return SOF_RVAL_CONTINUE;
}

static void
xf_apply(mblk_t *mp, unsigned char key)
{
	for (; mp != NULL; mp = mp->b_cont) {
		unsigned char *p;

		for (p = mp->b_rptr; p < mp->b_wptr; p++)
			*p ^= key;
	}
}

/* A shared block (the application's own send buffer among them) must not
 * be written: transform a private copy. */
static mblk_t *
xf_writable(mblk_t *mp)
{
	const mblk_t *b;
	mblk_t *cp;

	for (b = mp; b != NULL; b = b->b_cont)
		if (DB_REF(b) > 1)
			break;
	if (b == NULL)
		return mp;
	if ((cp = copymsg(mp)) == NULL)
		return NULL;
	freemsg(mp);
	return cp;
}

static mblk_t *
xf_data_out_cb(sof_handle_t h, void *cookie, mblk_t *mp, struct nmsghdr *msg,
    cred_t *cr, sof_rval_t *rvalp)
{
	mblk_t *w = xf_writable(mp);

	if (w == NULL) {
		freemsg(mp);
		*rvalp = SOF_RVAL_ENOMEM;
		return NULL;
	}
	xf_apply(w, (unsigned char)(uintptr_t)cookie);
	return w;
}

static mblk_t *
xf_data_in_proc_cb(sof_handle_t h, void *cookie, mblk_t *mp, cred_t *cr,
    size_t *sizep)
{
	mblk_t *w = xf_writable(mp);

	if (w == NULL) {
		freemsg(mp);
		*sizep = 0;
		return NULL;
	}
	xf_apply(w, (unsigned char)(uintptr_t)cookie);
	return w;
}

static const sof_ops_t xf_ops = {
    .sofop_attach_active = xf_attach_active_cb,
    .sofop_attach_passive = xf_attach_passive_cb,
    .sofop_data_out = xf_data_out_cb,
    .sofop_data_in_proc = xf_data_in_proc_cb,
};

__attribute__((constructor)) static void
xf_init(void)
{
	(void)sof_register(SOF_VERSION, "xorfilt", &xf_ops, 0);
}

__attribute__((destructor)) static void
xf_fini(void)
{
	(void)sof_unregister("xorfilt");
}
