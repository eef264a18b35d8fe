/*
 * test_accf_glue.c: the sof_* side of the accept filters
 * (src/filters/accf_glue.c and the four modules) against stand-ins for
 * the library's calls, so that each decision the glue makes (defer,
 * release, bypass, timer arm/cancel, close on timeout, parameters) is
 * seen exactly.  Linked without sfcore: the sof_* functions below are
 * the only ones.
 */
#include <criterion/criterion.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accf_glue.h"

/* ---------------------------------------------------------------------
 * Stand-ins.
 * ------------------------------------------------------------------- */

#define TG_MAXREG 8

static struct {
	char name[FILNAME_MAX];
	sof_ops_t ops;
} tg_reg[TG_MAXREG];
static int tg_nreg;

/* A fake instance: sof_handle_t points to one. */
struct tg_handle {
	const char *keys[4], *vals[4];
	int nparams;
	bool bypassed, ready, closed;
	int nready;
	unsigned long timer_id; /* id the next arm returns (0: fail) */
	unsigned armed_ms;
	int narmed, ncancelled;
	unsigned long cancelled_id;
	sof_timer_fn_t timer_fn;
	void *timer_arg;
};

#define TG_H(th) ((sof_handle_t)(void *)(th))
#define TG_TH(h) ((struct tg_handle *)(void *)(h))

int
sof_register(int version, const char *name, const sof_ops_t *ops, int flags)
{
	if (version != SOF_VERSION || tg_nreg >= TG_MAXREG)
		return EINVAL;
	snprintf(tg_reg[tg_nreg].name, FILNAME_MAX, "%s", name);
	tg_reg[tg_nreg++].ops = *ops;
	return 0;
}

int
sof_unregister(const char *name)
{
	return 0;
}

void
sof_bypass(sof_handle_t h)
{
	TG_TH(h)->bypassed = true;
}

void
sof_newconn_ready(sof_handle_t h)
{
	TG_TH(h)->ready = true;
	TG_TH(h)->nready++;
}

void
sof_newconn_close(sof_handle_t h)
{
	TG_TH(h)->closed = true;
}

const char *
sof_get_param(sof_handle_t h, const char *key)
{
	struct tg_handle *th = TG_TH(h);
	int i;

	for (i = 0; i < th->nparams; i++)
		if (strcmp(th->keys[i], key) == 0)
			return th->vals[i];
	return NULL;
}

unsigned long
sof_timer_arm(sof_handle_t h, unsigned int msec, sof_timer_fn_t fn, void *arg)
{
	struct tg_handle *th = TG_TH(h);

	th->narmed++;
	th->armed_ms = msec;
	th->timer_fn = fn;
	th->timer_arg = arg;
	if (th->timer_id == 0)
		errno = ENOSYS;
	return th->timer_id;
}

boolean_t
sof_timer_cancel(sof_handle_t h, unsigned long id)
{
	TG_TH(h)->ncancelled++;
	TG_TH(h)->cancelled_id = id;
	return B_TRUE;
}

/* ---------------------------------------------------------------------
 * Helpers.
 * ------------------------------------------------------------------- */

static const sof_ops_t *
tg_ops(const char *name)
{
	int i;

	for (i = 0; i < tg_nreg; i++)
		if (strcmp(tg_reg[i].name, name) == 0)
			return &tg_reg[i].ops;
	cr_assert_fail("%s is not registered", name);
	return NULL;
}

static void
tg_param(struct tg_handle *th, const char *key, const char *val)
{
	cr_assert_lt(th->nparams, 4);
	th->keys[th->nparams] = key;
	th->vals[th->nparams++] = val;
}

/* The listener's and the accepted socket's handles. */
static struct tg_handle tg_lh, tg_ah;

static void
tg_setup(void)
{
	memset(&tg_lh, 0, sizeof(tg_lh));
	memset(&tg_ah, 0, sizeof(tg_ah));
}

TestSuite(accf_glue, .init = tg_setup);

/* attach_passive of filter name on tg_ah under tg_lh; the cookie. */
static void *
tg_accept(const char *name)
{
	void *cookie = NULL;
	struct sockaddr_in sa;

	memset(&sa, 0, sizeof(sa));
	cr_assert_eq(tg_ops(name)->sofop_attach_passive(TG_H(&tg_ah),
	                 TG_H(&tg_lh), NULL, (struct sockaddr *)&sa, sizeof(sa),
	                 (struct sockaddr *)&sa, sizeof(sa), &cookie),
	    SOF_RVAL_DEFER);
	cr_assert_not_null(cookie);
	return cookie;
}

/* data_in of s as one block (or one block per string of a NULL-ended
 * array); the chain must come back unchanged. */
static void
tg_data(const char *name, void *cookie, const char *const *parts)
{
	mblk_t blk[8];
	size_t size = 0;
	int i, n;

	memset(blk, 0, sizeof(blk));
	for (n = 0; parts[n] != NULL; n++) {
		cr_assert_lt(n, 8);
		blk[n].b_rptr = (unsigned char *)(uintptr_t)parts[n];
		blk[n].b_wptr = blk[n].b_rptr + strlen(parts[n]);
		if (n > 0)
			blk[n - 1].b_cont = &blk[n];
		size += strlen(parts[n]);
	}
	cr_assert_eq(tg_ops(name)->sofop_data_in(TG_H(&tg_ah), cookie, blk, 0,
	                 &size),
	    blk);
	for (i = 0; i < n; i++) {
		cr_assert_eq(blk[i].b_rptr, (unsigned char *)parts[i]);
		cr_assert_eq(MBLKL(&blk[i]), strlen(parts[i]));
	}
}

/* data_in of len bytes (may hold NULs) as one block. */
static void
tg_bytes(const char *name, void *cookie, const void *buf, size_t len)
{
	mblk_t blk;
	size_t size = len;

	memset(&blk, 0, sizeof(blk));
	blk.b_rptr = (unsigned char *)(uintptr_t)buf;
	blk.b_wptr = blk.b_rptr + len;
	cr_assert_eq(tg_ops(name)->sofop_data_in(TG_H(&tg_ah), cookie, &blk, 0,
	                 &size),
	    &blk);
}

#define TG_DATA(name, cookie, ...)                                             \
	tg_data(name, cookie, (const char *const[]){__VA_ARGS__, NULL})

static void
tg_detach(const char *name, void *cookie)
{
	tg_ops(name)->sofop_detach(TG_H(&tg_ah), cookie, NULL);
}

static unsigned long
tg_count(struct accf_desc *d, enum accf_reason r)
{
	return atomic_load(&d->ad_count[r]);
}

/* ---------------------------------------------------------------------
 * Tests.
 * ------------------------------------------------------------------- */

Test(accf_glue, four_filters_registered_without_data_out)
{
	static const char *const names[] = {"accf_data", "accf_http",
	    "accf_dns", "accf_tls"};
	size_t i;

	cr_assert_eq(tg_nreg, 4);
	for (i = 0; i < 4; i++) {
		const sof_ops_t *ops = tg_ops(names[i]);

		cr_assert_not_null(ops->sofop_attach_active);
		cr_assert_not_null(ops->sofop_attach_passive);
		cr_assert_not_null(ops->sofop_detach);
		cr_assert_not_null(ops->sofop_data_in);
		cr_assert_not_null(ops->sofop_connect);
		cr_assert_not_null(ops->sofop_notify);
		/* Nothing on the send path: no slow path for the server. */
		cr_assert_null(ops->sofop_data_out);
		cr_assert_null(ops->sofop_data_in_proc);
	}
}

Test(accf_glue, active_attach_stays_and_connect_bypasses)
{
	const sof_ops_t *ops = tg_ops("accf_http");
	void *cookie = (void *)1;
	socklen_t len = 0;

	cr_assert_eq(ops->sofop_attach_active(TG_H(&tg_lh), AF_INET,
	                 SOCK_STREAM, IPPROTO_TCP, NULL, &cookie),
	    SOF_RVAL_CONTINUE);
	cr_assert_null(cookie);
	cr_assert(!tg_lh.bypassed);
	cr_assert_eq(ops->sofop_connect(TG_H(&tg_lh), cookie, NULL, &len, NULL),
	    SOF_RVAL_CONTINUE);
	cr_assert(tg_lh.bypassed);
	ops->sofop_detach(TG_H(&tg_lh), cookie, NULL);
}

Test(accf_glue, data_on_a_socket_that_is_not_deferred_bypasses)
{
	TG_DATA("accf_http", NULL, "GET / HTTP/1.1\r\n");
	cr_assert(tg_ah.bypassed);
	cr_assert(!tg_ah.ready);
}

Test(accf_glue, http_deferred_until_the_blank_line)
{
	unsigned long before = tg_count(&accf_http_desc, ACCF_R_COMPLETE);
	void *c = tg_accept("accf_http");

	TG_DATA("accf_http", c, "GET / HTTP/1.1\r\n", "Host: x\r\n");
	cr_assert(!tg_ah.ready);
	cr_assert(!tg_ah.bypassed);
	TG_DATA("accf_http", c, "Accept: */*\r", "", "\n\r", "\n");
	cr_assert(tg_ah.ready);
	cr_assert(tg_ah.bypassed);
	cr_assert_eq(tg_ah.nready, 1);
	cr_assert_eq(tg_count(&accf_http_desc, ACCF_R_COMPLETE), before + 1);
	cr_assert_eq(tg_ah.narmed, 0, "no timeout unless configured");
	tg_detach("accf_http", c);
}

Test(accf_glue, http_post_goes_at_once)
{
	void *c = tg_accept("accf_http");

	TG_DATA("accf_http", c, "POST /upload HTTP/1.1\r\n");
	cr_assert(tg_ah.ready);
	cr_assert_eq(tg_count(&accf_http_desc, ACCF_R_OTHER), 1);
	tg_detach("accf_http", c);
}

Test(accf_glue, each_filter_rule)
{
	void *c;

	c = tg_accept("accf_data");
	TG_DATA("accf_data", c, "", "x");
	cr_assert(tg_ah.ready);
	tg_detach("accf_data", c);

	tg_setup();
	c = tg_accept("accf_dns");
	tg_bytes("accf_dns", c, "\0", 1);
	tg_bytes("accf_dns", c, "\3ab", 3);
	cr_assert(!tg_ah.ready);
	tg_bytes("accf_dns", c, "c", 1);
	cr_assert(tg_ah.ready);
	tg_detach("accf_dns", c);

	tg_setup();
	c = tg_accept("accf_tls");
	tg_bytes("accf_tls", c, "\x16\x03\x01", 3);
	cr_assert(!tg_ah.ready);
	tg_bytes("accf_tls", c, "\x00\x01", 2);
	cr_assert(!tg_ah.ready);
	tg_bytes("accf_tls", c, "Z", 1);
	cr_assert(tg_ah.ready);
	tg_detach("accf_tls", c);
}

Test(accf_glue, peer_eof_releases_every_filter)
{
	static const char *const names[] = {"accf_data", "accf_http",
	    "accf_dns", "accf_tls"};
	static struct accf_desc *const descs[] = {&accf_data_desc,
	    &accf_http_desc, &accf_dns_desc, &accf_tls_desc};
	size_t i;

	for (i = 0; i < 4; i++) {
		void *c;

		tg_setup();
		c = tg_accept(names[i]);
		/* Other events change nothing. */
		tg_ops(names[i])->sofop_notify(TG_H(&tg_ah), c,
		    SOF_EV_CONNECTED, 0);
		tg_ops(names[i])->sofop_notify(TG_H(&tg_ah), c,
		    SOF_EV_CANTSENDMORE, 0);
		cr_assert(!tg_ah.ready, "%s", names[i]);
		tg_ops(names[i])->sofop_notify(TG_H(&tg_ah), c,
		    SOF_EV_CANTRECVMORE, 0);
		cr_assert(tg_ah.ready, "%s", names[i]);
		cr_assert(tg_ah.bypassed);
		cr_assert_eq(tg_count(descs[i], ACCF_R_EOF), 1);
		/* A second EOF does not release twice. */
		tg_ops(names[i])->sofop_notify(TG_H(&tg_ah), c,
		    SOF_EV_CANTRECVMORE, 0);
		cr_assert_eq(tg_ah.nready, 1);
		tg_detach(names[i], c);
	}
}

Test(accf_glue, timeout_is_armed_and_cancelled_when_ready)
{
	void *c;

	tg_param(&tg_lh, "timeout", "2");
	tg_ah.timer_id = 77;
	c = tg_accept("accf_data");
	cr_assert_eq(tg_ah.narmed, 1);
	cr_assert_eq(tg_ah.armed_ms, 2000);
	TG_DATA("accf_data", c, "x");
	cr_assert(tg_ah.ready);
	cr_assert_eq(tg_ah.ncancelled, 1);
	cr_assert_eq(tg_ah.cancelled_id, 77);
	tg_detach("accf_data", c);
	cr_assert_eq(tg_ah.ncancelled, 1, "not cancelled twice");
}

Test(accf_glue, timeout_closes_and_counts)
{
	unsigned long before = tg_count(&accf_http_desc, ACCF_R_TIMEOUT);
	void *c;

	tg_param(&tg_lh, "timeout", "500ms");
	tg_ah.timer_id = 5;
	c = tg_accept("accf_http");
	TG_DATA("accf_http", c, "GET / HTTP/1.1\r\nHost");
	cr_assert_not_null(tg_ah.timer_fn);
	tg_ah.timer_fn(TG_H(&tg_ah), c, tg_ah.timer_arg);
	cr_assert(tg_ah.closed);
	cr_assert(!tg_ah.ready);
	cr_assert(tg_ah.bypassed);
	cr_assert_eq(tg_count(&accf_http_desc, ACCF_R_TIMEOUT), before + 1);
	/* EOF after the close changes nothing; detach cancels nothing. */
	tg_ops("accf_http")
	    ->sofop_notify(TG_H(&tg_ah), c, SOF_EV_CANTRECVMORE, 0);
	cr_assert(!tg_ah.ready);
	tg_detach("accf_http", c);
	cr_assert_eq(tg_ah.ncancelled, 0);
}

Test(accf_glue, no_timer_service_means_no_timeout)
{
	void *c;

	tg_param(&tg_lh, "timeout", "1");
	tg_ah.timer_id = 0; /* sof_timer_arm fails */
	c = tg_accept("accf_tls");
	cr_assert_eq(tg_ah.narmed, 1);
	TG_DATA("accf_tls", c, "G");
	cr_assert(tg_ah.ready);
	cr_assert_eq(tg_ah.ncancelled, 0);
	tg_detach("accf_tls", c);
}

Test(accf_glue, detach_while_deferred_cancels_the_timer)
{
	void *c;

	tg_param(&tg_ah, "timeout", "3");
	tg_ah.timer_id = 9;
	c = tg_accept("accf_dns");
	tg_detach("accf_dns", c);
	cr_assert_eq(tg_ah.ncancelled, 1);
	cr_assert_eq(tg_ah.cancelled_id, 9);
	tg_detach("accf_dns", NULL);
}

Test(accf_glue, parameters_listener_then_socket_then_arg)
{
	struct accf_conf ac;

	accf_glue_conf(TG_H(&tg_ah), TG_H(&tg_lh), &ac);
	cr_assert_eq(ac.ac_timeout_ms, 0);
	cr_assert_eq(ac.ac_maxhdr, ACCF_HTTP_LIMIT_DEF);

	tg_param(&tg_lh, "timeout", "5");
	tg_param(&tg_lh, "maxhdr", "100");
	accf_glue_conf(TG_H(&tg_ah), TG_H(&tg_lh), &ac);
	cr_assert_eq(ac.ac_timeout_ms, 5000);
	cr_assert_eq(ac.ac_maxhdr, 100);

	tg_param(&tg_ah, "timeout", "7");
	accf_glue_conf(TG_H(&tg_ah), TG_H(&tg_lh), &ac);
	cr_assert_eq(ac.ac_timeout_ms, 7000);

	tg_param(&tg_ah, "arg", "timeout=250ms,parsehttpversion=off");
	accf_glue_conf(TG_H(&tg_ah), TG_H(&tg_lh), &ac);
	cr_assert_eq(ac.ac_timeout_ms, 250);
	cr_assert(!ac.ac_version);

	/* A bad value keeps what was there. */
	tg_setup();
	tg_param(&tg_lh, "timeout", "forever");
	tg_param(&tg_lh, "maxhdr", "-3");
	accf_glue_conf(TG_H(&tg_ah), TG_H(&tg_lh), &ac);
	cr_assert_eq(ac.ac_timeout_ms, 0);
	cr_assert_eq(ac.ac_maxhdr, ACCF_HTTP_LIMIT_DEF);
}

Test(accf_glue, maxhdr_parameter_hands_over_a_long_header)
{
	void *c;

	tg_param(&tg_lh, "maxhdr", "33");
	c = tg_accept("accf_http");
	TG_DATA("accf_http", c, "GET / HTTP/1.1\r\n", "X-Long: abcdefgh");
	cr_assert(!tg_ah.ready);
	TG_DATA("accf_http", c, "i");
	cr_assert(tg_ah.ready);
	cr_assert_eq(tg_count(&accf_http_desc, ACCF_R_LIMIT), 1);
	tg_detach("accf_http", c);
}
