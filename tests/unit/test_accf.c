/*
 * test_accf.c: the accept filters' decisions (src/filters/accf_parse.c):
 * every rule of accf_data, accf_http, accf_dns and accf_tls, the same
 * verdict whatever the input's split (two and three pieces at every
 * position, mblk chains with empty blocks), and the parameter parsers.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "accf_parse.h"

/* The outcome of feeding some input. */
struct ta_res {
	enum accf_verdict v;
	enum accf_reason r;
	long at; /* index of the byte that decided, -1 if none */
};

static struct accf_conf ta_conf;

static void
ta_setup(void)
{
	accf_conf_default(&ta_conf);
}

TestSuite(accf, .init = ta_setup);

/* Byte by byte: where the parser decides. */
static struct ta_res
ta_bytewise(enum accf_kind kind, const void *data, size_t len)
{
	const uint8_t *b = data;
	struct accf_parser p;
	struct ta_res res = {ACCF_NEED_MORE, ACCF_R_NONE, -1};
	size_t i;

	accf_parser_init(&p, kind, &ta_conf);
	for (i = 0; i < len; i++) {
		if (accf_parser_feed(&p, b + i, 1) == ACCF_READY) {
			res.v = ACCF_READY;
			res.at = (long)i;
			break;
		}
	}
	res.r = accf_parser_reason(&p);
	/* Sticky: more input changes nothing. */
	if (res.v == ACCF_READY) {
		cr_assert_eq(accf_parser_feed(&p, b, len), ACCF_READY);
		cr_assert_eq(accf_parser_reason(&p), res.r);
	}
	return res;
}

/* Feed in pieces cut at cuts[0..n) (ascending). */
static struct ta_res
ta_pieces(enum accf_kind kind, const void *data, size_t len, const size_t *cuts,
    int n)
{
	const uint8_t *b = data;
	struct accf_parser p;
	struct ta_res res = {ACCF_NEED_MORE, ACCF_R_NONE, -1};
	size_t from = 0;
	int i;

	accf_parser_init(&p, kind, &ta_conf);
	for (i = 0; i <= n; i++) {
		size_t to = i < n ? cuts[i] : len;

		res.v = accf_parser_feed(&p, b + from, to - from);
		from = to;
	}
	res.r = accf_parser_reason(&p);
	return res;
}

/*
 * The decision of the whole input, checked to be the same for every split
 * in two (and in three when short), and for every prefix: a prefix that
 * ends before the deciding byte needs more, one that holds it is ready.
 */
static struct ta_res
ta_decide(enum accf_kind kind, const void *data, size_t len)
{
	struct ta_res flat = ta_bytewise(kind, data, len), r;
	size_t cuts[2], i, j;

	for (i = 0; i <= len; i++) {
		cuts[0] = i;
		r = ta_pieces(kind, data, len, cuts, 1);
		cr_assert_eq(r.v, flat.v, "split at %zu: verdict %d != %d", i,
		    r.v, flat.v);
		cr_assert_eq(r.r, flat.r, "split at %zu: reason %s != %s", i,
		    accf_reason_name(r.r), accf_reason_name(flat.r));
		r = ta_pieces(kind, data, i, NULL, 0);
		cr_assert_eq(r.v,
		    flat.at >= 0 && (long)i > flat.at ? ACCF_READY
		                                      : ACCF_NEED_MORE,
		    "prefix of %zu bytes (decided at %ld)", i, flat.at);
	}
	if (len <= 80) {
		for (i = 0; i <= len; i++)
			for (j = i; j <= len; j++) {
				cuts[0] = i;
				cuts[1] = j;
				r = ta_pieces(kind, data, len, cuts, 2);
				cr_assert_eq(r.v, flat.v, "split %zu/%zu", i,
				    j);
				cr_assert_eq(r.r, flat.r, "split %zu/%zu", i,
				    j);
			}
	}
	return flat;
}

static struct ta_res
ta_str(enum accf_kind kind, const char *s)
{
	return ta_decide(kind, s, strlen(s));
}

#define TA_EXPECT(res, verdict, reason, byte)                                  \
	do {                                                                   \
		struct ta_res _r = (res);                                      \
		cr_assert_eq(_r.v, (verdict));                                 \
		cr_assert_eq(_r.r, (reason), "reason %s, expected %s",         \
		    accf_reason_name(_r.r), accf_reason_name(reason));         \
		cr_assert_eq(_r.at, (long)(byte), "decided at %ld", _r.at);    \
	} while (0)

#define TA_WAIT(res) TA_EXPECT(res, ACCF_NEED_MORE, ACCF_R_NONE, -1)

/* ---------------------------------------------------------------------
 * accf_data
 * ------------------------------------------------------------------- */

Test(accf, data_ready_at_first_byte)
{
	TA_WAIT(ta_str(ACCF_K_DATA, ""));
	TA_EXPECT(ta_str(ACCF_K_DATA, "x"), ACCF_READY, ACCF_R_COMPLETE, 0);
	TA_EXPECT(ta_decide(ACCF_K_DATA, "\0\0", 2), ACCF_READY,
	    ACCF_R_COMPLETE, 0);
}

/* ---------------------------------------------------------------------
 * accf_http
 * ------------------------------------------------------------------- */

Test(accf, http_get_waits_for_crlf_blank_line)
{
	static const char req[] = "GET /index.html HTTP/1.1\r\n"
	                          "Host: example\r\nAccept: */*\r\n\r\n";

	TA_EXPECT(ta_str(ACCF_K_HTTP, req), ACCF_READY, ACCF_R_COMPLETE,
	    strlen(req) - 1);
}

Test(accf, http_lf_only_and_mixed_endings)
{
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.0\n\n"), ACCF_READY,
	    ACCF_R_COMPLETE, 15);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.0\nA: b\n\r\n"), ACCF_READY,
	    ACCF_R_COMPLETE, 21);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.1\r\nA: b\r\n\n"),
	    ACCF_READY, ACCF_R_COMPLETE, 22);
	/* "\r\r" is no blank line. */
	TA_WAIT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.1\r\r\r\r"));
	TA_WAIT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.1\r\nA: b\r\n\r\r\n"
	                            "B: c\r\n"));
}

Test(accf, http_head_waits_too)
{
	TA_EXPECT(ta_str(ACCF_K_HTTP, "HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n"),
	    ACCF_READY, ACCF_R_COMPLETE, 28);
	TA_WAIT(ta_str(ACCF_K_HTTP, "HEAD /x HTTP/1.1\r\nHost: h\r\n"));
}

Test(accf, http_blank_line_in_the_middle_of_a_block)
{
	/* A pipelined request after the blank line: FreeBSD's tail check
	 * would keep waiting, this parser does not. */
	static const char req[] = "GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n";

	TA_EXPECT(ta_str(ACCF_K_HTTP, req), ACCF_READY, ACCF_R_COMPLETE, 18);
}

Test(accf, http_partial_prefixes_wait)
{
	static const char *const waits[] = {"G", "GE", "GET", "GET ", "H", "HE",
	    "HEA", "HEAD", "HEAD ", "GET /", "GET / ", "GET / H",
	    "GET / HTTP/1.", "GET / HTTP/1.1", "GET / HTTP/1.1\r\n",
	    "GET   /   HTTP/1.1\r\nX: y"};
	size_t i;

	for (i = 0; i < sizeof(waits) / sizeof(waits[0]); i++)
		TA_WAIT(ta_str(ACCF_K_HTTP, waits[i]));
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET   /   HTTP/1.1\r\n\r\n"), ACCF_READY,
	    ACCF_R_COMPLETE, 21);
}

Test(accf, http_other_methods_and_protocols_go_at_once)
{
	static const uint8_t tls[] = {0x16, 0x03, 0x01, 0x00, 0x05};

	TA_EXPECT(ta_str(ACCF_K_HTTP, "POST / HTTP/1.1\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "PUT /"), ACCF_READY, ACCF_R_OTHER, 0);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "OPTIONS * HTTP/1.1\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
	    ACCF_READY, ACCF_R_OTHER, 0);
	TA_EXPECT(ta_decide(ACCF_K_HTTP, tls, sizeof(tls)), ACCF_READY,
	    ACCF_R_OTHER, 0);
	/* Lower case, a near miss, a tab instead of the space. */
	TA_EXPECT(ta_str(ACCF_K_HTTP, "get / HTTP/1.1"), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GEX /"), ACCF_READY, ACCF_R_OTHER, 2);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET\t/"), ACCF_READY, ACCF_R_OTHER, 3);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "HEAT /"), ACCF_READY, ACCF_R_OTHER, 3);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GETS"), ACCF_READY, ACCF_R_OTHER, 3);
}

Test(accf, http_09_request_line_goes_at_its_end)
{
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET /\r\n"), ACCF_READY, ACCF_R_OTHER,
	    5);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET /\n"), ACCF_READY, ACCF_R_OTHER, 5);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / \r\n"), ACCF_READY, ACCF_R_OTHER,
	    6);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET \r\n"), ACCF_READY, ACCF_R_OTHER, 4);
}

Test(accf, http_other_versions_go_at_once)
{
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / HTTP/2.0\r\n\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 11);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / HTTP/1.2\r\n\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 13);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / FOO/1.1\r\n\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 6);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET / http/1.1\r\n\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 6);
}

Test(accf, http_without_version_check_waits_for_the_blank_line)
{
	ta_conf.ac_version = false;
	TA_WAIT(ta_str(ACCF_K_HTTP, "GET /\r\n"));
	TA_EXPECT(ta_str(ACCF_K_HTTP, "GET /\r\n\r\n"), ACCF_READY,
	    ACCF_R_COMPLETE, 8);
	TA_EXPECT(ta_str(ACCF_K_HTTP, "POST /\r\n\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 0);
}

Test(accf, http_oversized_header_goes_at_the_limit)
{
	size_t len = 20000, i;
	char *buf = malloc(len);
	struct ta_res r;

	cr_assert_not_null(buf);
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	for (i = 19; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	r = ta_bytewise(ACCF_K_HTTP, buf, len);
	TA_EXPECT(r, ACCF_READY, ACCF_R_LIMIT, ACCF_HTTP_LIMIT_DEF - 1);
	/* A smaller limit, checked at every split. */
	ta_conf.ac_maxhdr = 64;
	TA_EXPECT(ta_decide(ACCF_K_HTTP, buf, 100), ACCF_READY, ACCF_R_LIMIT,
	    63);
	free(buf);
}

Test(accf, http_header_of_exactly_the_limit_completes)
{
	static const char req[] = "GET / HTTP/1.1\r\n\r\n"; /* 18 bytes */

	ta_conf.ac_maxhdr = 18;
	TA_EXPECT(ta_str(ACCF_K_HTTP, req), ACCF_READY, ACCF_R_COMPLETE, 17);
	ta_conf.ac_maxhdr = 17;
	TA_EXPECT(ta_str(ACCF_K_HTTP, req), ACCF_READY, ACCF_R_LIMIT, 16);
}

Test(accf, http_binary_garbage_is_decided_the_same_at_every_split)
{
	uint8_t buf[4096];
	unsigned seed = 12345;
	int round;
	size_t i;

	for (round = 0; round < 40; round++) {
		for (i = 0; i < sizeof(buf); i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		/* Half of the rounds look like a GET, to go deeper. */
		if (round % 2 == 0)
			memcpy(buf, "GET / HTTP/1.1\r\n", 16);
		ta_conf.ac_maxhdr = 512 + 89 * (unsigned)round;
		(void)ta_decide(ACCF_K_HTTP, buf, sizeof(buf));
		cr_assert_eq(ta_bytewise(ACCF_K_HTTP, buf, sizeof(buf)).v,
		    ACCF_READY, "4 KiB of input always decide (limit %u)",
		    ta_conf.ac_maxhdr);
	}
}

/* ---------------------------------------------------------------------
 * accf_dns
 * ------------------------------------------------------------------- */

Test(accf, dns_length_zero_is_ready_after_the_prefix)
{
	TA_EXPECT(ta_decide(ACCF_K_DNS, "\0\0", 2), ACCF_READY, ACCF_R_COMPLETE,
	    1);
	TA_EXPECT(ta_decide(ACCF_K_DNS, "\0\0xyz", 5), ACCF_READY,
	    ACCF_R_COMPLETE, 1);
}

Test(accf, dns_length_one)
{
	TA_WAIT(ta_decide(ACCF_K_DNS, "\0\1", 2));
	TA_EXPECT(ta_decide(ACCF_K_DNS, "\0\1q", 3), ACCF_READY,
	    ACCF_R_COMPLETE, 2);
}

Test(accf, dns_partial_length_waits)
{
	TA_WAIT(ta_decide(ACCF_K_DNS, "", 0));
	TA_WAIT(ta_decide(ACCF_K_DNS, "\0", 1));
	TA_WAIT(ta_decide(ACCF_K_DNS, "\1", 1));
}

Test(accf, dns_big_endian_length)
{
	uint8_t buf[2 + 300 + 4];

	memset(buf, 'q', sizeof(buf));
	buf[0] = 0x01; /* 0x012c = 300 */
	buf[1] = 0x2c;
	TA_WAIT(ta_decide(ACCF_K_DNS, buf, 301));
	TA_EXPECT(ta_decide(ACCF_K_DNS, buf, sizeof(buf)), ACCF_READY,
	    ACCF_R_COMPLETE, 301);
}

Test(accf, dns_length_65535)
{
	size_t len = 2 + 65535;
	uint8_t *buf = calloc(1, len + 10);
	struct ta_res r;
	size_t cuts[1];

	cr_assert_not_null(buf);
	buf[0] = 0xff;
	buf[1] = 0xff;
	TA_WAIT(ta_bytewise(ACCF_K_DNS, buf, len - 1));
	TA_EXPECT(ta_bytewise(ACCF_K_DNS, buf, len + 10), ACCF_READY,
	    ACCF_R_COMPLETE, len - 1);
	/* A few splits (every one would be slow here). */
	for (cuts[0] = 0; cuts[0] <= len; cuts[0] += 4099) {
		r = ta_pieces(ACCF_K_DNS, buf, len, cuts, 1);
		cr_assert_eq(r.v, ACCF_READY);
		r = ta_pieces(ACCF_K_DNS, buf, len - 1, cuts, 1);
		cr_assert_eq(r.v, ACCF_NEED_MORE);
	}
	free(buf);
}

/* ---------------------------------------------------------------------
 * accf_tls
 * ------------------------------------------------------------------- */

Test(accf, tls_waits_for_the_whole_first_record)
{
	static const uint8_t rec[] = {0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0x00,
	    0x00, 0x02, 0x03, 0x03, 0x17 /* next record */};

	TA_WAIT(ta_decide(ACCF_K_TLS, rec, 4));
	TA_WAIT(ta_decide(ACCF_K_TLS, rec, 10));
	TA_EXPECT(ta_decide(ACCF_K_TLS, rec, 11), ACCF_READY, ACCF_R_COMPLETE,
	    10);
	TA_EXPECT(ta_decide(ACCF_K_TLS, rec, sizeof(rec)), ACCF_READY,
	    ACCF_R_COMPLETE, 10);
}

Test(accf, tls_empty_record_is_ready_after_the_header)
{
	static const uint8_t rec[] = {0x16, 0x03, 0x03, 0x00, 0x00};

	TA_EXPECT(ta_decide(ACCF_K_TLS, rec, sizeof(rec)), ACCF_READY,
	    ACCF_R_COMPLETE, 4);
}

Test(accf, tls_non_tls_first_bytes_go_at_once)
{
	static const uint8_t v2[] = {0x80, 0x2e, 0x01};
	static const uint8_t alert[] = {0x15, 0x03, 0x01, 0x00, 0x02};
	static const uint8_t major2[] = {0x16, 0x02, 0x00, 0x00, 0x01, 0x00};

	TA_EXPECT(ta_str(ACCF_K_TLS, "GET / HTTP/1.1\r\n"), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_decide(ACCF_K_TLS, v2, sizeof(v2)), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_decide(ACCF_K_TLS, alert, sizeof(alert)), ACCF_READY,
	    ACCF_R_OTHER, 0);
	TA_EXPECT(ta_decide(ACCF_K_TLS, major2, sizeof(major2)), ACCF_READY,
	    ACCF_R_OTHER, 1);
}

Test(accf, tls_oversized_record_goes_at_once)
{
	static const uint8_t big[] = {0x16, 0x03, 0x01, 0x40, 0x01, 0x00};
	uint8_t *max = calloc(1, 5 + ACCF_TLS_MAXREC);

	TA_EXPECT(ta_decide(ACCF_K_TLS, big, sizeof(big)), ACCF_READY,
	    ACCF_R_OTHER, 4);
	/* 16384 exactly is a valid record: held until whole. */
	cr_assert_not_null(max);
	memcpy(max, "\x16\x03\x01\x40\x00", 5);
	TA_WAIT(ta_bytewise(ACCF_K_TLS, max, 4 + ACCF_TLS_MAXREC));
	TA_EXPECT(ta_bytewise(ACCF_K_TLS, max, 5 + ACCF_TLS_MAXREC), ACCF_READY,
	    ACCF_R_COMPLETE, 4 + ACCF_TLS_MAXREC);
	free(max);
}

/* ---------------------------------------------------------------------
 * mblk chains.
 * ------------------------------------------------------------------- */

/* A chain holding s cut at every `step` bytes, with an empty block
 * between every two. */
static mblk_t *
ta_chain(const char *s, size_t step)
{
	size_t len = strlen(s), off, n;
	mblk_t *head = NULL, *mp;

	for (off = 0; off < len || head == NULL; off += n) {
		n = len - off < step ? len - off : step;
		mp = allocb(n + 1, BPRI_MED);
		cr_assert_not_null(mp);
		memcpy(mp->b_wptr, s + off, n);
		mp->b_wptr += n;
		if (head == NULL)
			head = mp;
		else
			linkb(head, mp);
		if ((mp = allocb(1, BPRI_MED)) != NULL)
			linkb(head, mp);
		if (n == 0)
			break;
	}
	return head;
}

Test(accf, chain_is_parsed_past_the_first_block)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct accf_parser p;
	size_t step;

	for (step = 1; step <= sizeof(req); step++) {
		mblk_t *mp = ta_chain(req, step);

		accf_parser_init(&p, ACCF_K_HTTP, &ta_conf);
		cr_assert_eq(accf_parser_feed_chain(&p, mp), ACCF_READY,
		    "blocks of %zu", step);
		cr_assert_eq(accf_parser_reason(&p), ACCF_R_COMPLETE);
		freemsg(mp);
	}
}

Test(accf, chain_fed_in_calls_matches_flat)
{
	static const char req[] = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
	size_t i, len = strlen(req);

	/* The blank line split across two data_in calls at every point. */
	for (i = 0; i <= len; i++) {
		char a[64], b[64];
		struct accf_parser p;
		mblk_t *m1, *m2;

		memcpy(a, req, i);
		a[i] = '\0';
		strcpy(b, req + i);
		m1 = ta_chain(a, 3);
		m2 = ta_chain(b, 5);
		accf_parser_init(&p, ACCF_K_HTTP, &ta_conf);
		cr_assert_eq(accf_parser_feed_chain(&p, m1),
		    i == len ? ACCF_READY : ACCF_NEED_MORE);
		cr_assert_eq(accf_parser_feed_chain(&p, m2), ACCF_READY);
		cr_assert_eq(accf_parser_reason(&p), ACCF_R_COMPLETE);
		freemsg(m1);
		freemsg(m2);
	}
}

/* ---------------------------------------------------------------------
 * Parameters.
 * ------------------------------------------------------------------- */

static uint32_t
ta_ms(const char *s)
{
	uint32_t ms = 0xdeadbeef;

	cr_assert_eq(accf_parse_duration(s, &ms), 0, "\"%s\"", s);
	return ms;
}

Test(accf, durations)
{
	cr_assert_eq(ta_ms("30"), 30000);
	cr_assert_eq(ta_ms("30s"), 30000);
	cr_assert_eq(ta_ms(" 500ms "), 500);
	cr_assert_eq(ta_ms("2m"), 120000);
	cr_assert_eq(ta_ms("1.5"), 1500);
	cr_assert_eq(ta_ms("1.5m"), 90000);
	cr_assert_eq(ta_ms("0.0005"), 0);
	cr_assert_eq(ta_ms("0"), 0);
	cr_assert_eq(ta_ms("86400"), 86400000);
}

Test(accf, bad_durations_are_refused)
{
	static const char *const bad[] = {"", " ", "abc", "-1", "1h", "1 s x",
	    "86401", "99999999999999999999", ".", "1e3"};
	uint32_t ms = 7;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(accf_parse_duration(bad[i], &ms), -1, "\"%s\"",
		    bad[i]);
		cr_assert_eq(ms, 7);
	}
	cr_assert_eq(accf_parse_duration(NULL, &ms), -1);
}

Test(accf, sizes_and_booleans)
{
	uint32_t n = 0;
	bool b = false;

	cr_assert_eq(accf_parse_size("8k", &n), 0);
	cr_assert_eq(n, 8192);
	cr_assert_eq(accf_parse_size("100", &n), 0);
	cr_assert_eq(n, 100);
	cr_assert_eq(accf_parse_size("0", &n), -1);
	cr_assert_eq(accf_parse_size("2000000", &n), -1);
	cr_assert_eq(accf_parse_size("1025k", &n), -1);
	cr_assert_eq(accf_parse_size("12x", &n), -1);
	cr_assert_eq(accf_parse_bool("true", &b), 0);
	cr_assert(b);
	cr_assert_eq(accf_parse_bool("off", &b), 0);
	cr_assert(!b);
	cr_assert_eq(accf_parse_bool("maybe", &b), -1);
}

Test(accf, conf_keys_and_af_arg)
{
	struct accf_conf ac;

	accf_conf_default(&ac);
	cr_assert_eq(ac.ac_timeout_ms, 0);
	cr_assert_eq(ac.ac_maxhdr, ACCF_HTTP_LIMIT_DEF);
	cr_assert(ac.ac_version);
	cr_assert_eq(accf_conf_set(&ac, "timeout", "10"), 0);
	cr_assert_eq(ac.ac_timeout_ms, 10000);
	cr_assert_eq(accf_conf_set(&ac, "nosuchkey", "1"), -1);
	cr_assert_eq(accf_conf_set(&ac, "timeout", "soon"), -1);
	cr_assert_eq(ac.ac_timeout_ms, 10000);

	cr_assert_eq(accf_conf_parse_arg(&ac, "45"), 0);
	cr_assert_eq(ac.ac_timeout_ms, 45000);
	cr_assert_eq(accf_conf_parse_arg(&ac,
	                 "timeout=250ms, maxhdr=16k;parsehttpversion=0"),
	    0);
	cr_assert_eq(ac.ac_timeout_ms, 250);
	cr_assert_eq(ac.ac_maxhdr, 16384);
	cr_assert(!ac.ac_version);
	cr_assert_eq(accf_conf_parse_arg(&ac, "bogus=1,timeout=2,what"), 2);
	cr_assert_eq(ac.ac_timeout_ms, 2000);
	cr_assert_eq(accf_conf_parse_arg(&ac, NULL), 0);
	cr_assert_eq(accf_conf_parse_arg(&ac, ""), 0);
}

Test(accf, reason_names)
{
	cr_assert_str_eq(accf_reason_name(ACCF_R_COMPLETE), "complete");
	cr_assert_str_eq(accf_reason_name(ACCF_R_TIMEOUT), "timeout");
	cr_assert_str_eq(accf_reason_name(ACCF_R_COUNT), "?");
}
