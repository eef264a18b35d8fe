/*
 * accf_parse.h: the decisions of the accept filters (accf_data, accf_http,
 * accf_dns, accf_tls) as pure functions, apart from the sof_* glue, so
 * that unit tests and fuzzers run them without the library.
 *
 * Each parser is an incremental state machine fed the connection's bytes
 * in order, in pieces of any size: the verdict after N bytes never depends
 * on how they were split (no buffering, no rescans, O(1) per byte).  Once
 * a feed returns ACCF_READY every later feed returns ACCF_READY too and
 * the reason stays the one that first decided.
 */
#ifndef ACCF_PARSE_H
#define ACCF_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a feed decided. */
enum accf_verdict {
	ACCF_NEED_MORE = 0, /* keep the connection deferred */
	ACCF_READY = 1      /* hand the connection to the application */
};

/* Why a connection was released (or closed); counted per filter. */
enum accf_reason {
	ACCF_R_NONE = 0, /* still deferred */
	ACCF_R_COMPLETE, /* the filter's rule was met */
	ACCF_R_OTHER,    /* not what the filter holds for: handed over */
	ACCF_R_LIMIT,    /* size limit reached: handed over */
	ACCF_R_EOF,      /* the peer closed its side: handed over */
	ACCF_R_TIMEOUT,  /* deferred too long: closed */
	ACCF_R_NOMEM,    /* no memory for the state: not deferred */
	ACCF_R_COUNT     /* number of reasons */
};

/* Printable name of a reason ("complete", "other", ...). */
const char *accf_reason_name(enum accf_reason r);

/* ---------------------------------------------------------------------
 * accf_data (FreeBSD dataready): ready at the first byte.
 * ------------------------------------------------------------------- */

struct accf_data {
	enum accf_reason ad_reason;
};

void accf_data_init(struct accf_data *st);
enum accf_verdict accf_data_feed(struct accf_data *st, const uint8_t *buf,
    size_t len);

/* ---------------------------------------------------------------------
 * accf_http (FreeBSD httpready).  "GET " and "HEAD " requests are held
 * until the blank line ending the header ("\r\n\r\n", "\n\n", "\n\r\n");
 * any other first bytes, a request line without "HTTP/1.0" or "HTTP/1.1"
 * (HTTP/0.9), or ah_limit bytes without the blank line release it.
 * ------------------------------------------------------------------- */

#define ACCF_HTTP_LIMIT_DEF 8192u    /* default header limit, bytes */
#define ACCF_HTTP_LIMIT_MAX 1048576u /* largest accepted limit */

struct accf_http {
	uint8_t ah_state;    /* AH_S_* in accf_parse.c */
	uint8_t ah_idx;      /* position inside the literal being matched */
	bool ah_method_head; /* matching "HEAD " (else "GET ") */
	bool ah_version;     /* check the HTTP version (parsehttpversion) */
	uint32_t ah_limit;   /* bytes after which the header is given up */
	uint32_t ah_count;   /* bytes seen so far (saturates at ah_limit) */
	enum accf_reason ah_reason;
};

/* limit: header bytes before giving up (0: the default); version: check
 * the request line's HTTP version as FreeBSD's parsehttpversion=1. */
void accf_http_init(struct accf_http *st, uint32_t limit, bool version);
enum accf_verdict accf_http_feed(struct accf_http *st, const uint8_t *buf,
    size_t len);

/* ---------------------------------------------------------------------
 * accf_dns (FreeBSD dnsready): ready when one whole DNS-over-TCP message
 * (2-byte big-endian length, then that many bytes) has arrived.
 * ------------------------------------------------------------------- */

struct accf_dns {
	uint8_t dn_have;  /* length bytes seen (0..2) */
	uint16_t dn_len;  /* the length, once dn_have == 2 */
	uint32_t dn_left; /* message bytes still missing */
	enum accf_reason dn_reason;
};

void accf_dns_init(struct accf_dns *st);
enum accf_verdict accf_dns_feed(struct accf_dns *st, const uint8_t *buf,
    size_t len);

/* ---------------------------------------------------------------------
 * accf_tls (FreeBSD tlsready): ready when the first TLS record (the
 * ClientHello) has arrived whole: 5-byte header, content type 0x16
 * (handshake), version major 3, then length bytes.  A first byte that is
 * not 0x16, a major version that is not 3 or a length above
 * ACCF_TLS_MAXREC release at once (handed over as not TLS).
 * ------------------------------------------------------------------- */

#define ACCF_TLS_HDR    5
#define ACCF_TLS_MAXREC 16384 /* TLSPlaintext limit, as FreeBSD checks */

struct accf_tls {
	uint8_t tl_have; /* header bytes seen (0..5) */
	uint8_t tl_hdr[ACCF_TLS_HDR];
	uint32_t tl_left; /* record bytes still missing */
	enum accf_reason tl_reason;
};

void accf_tls_init(struct accf_tls *st);
enum accf_verdict accf_tls_feed(struct accf_tls *st, const uint8_t *buf,
    size_t len);

/* ---------------------------------------------------------------------
 * One parser of any kind, for the glue and the chain helper.
 * ------------------------------------------------------------------- */

enum accf_kind { ACCF_K_DATA, ACCF_K_HTTP, ACCF_K_DNS, ACCF_K_TLS };

struct accf_parser {
	enum accf_kind ap_kind;
	union {
		struct accf_data ap_data;
		struct accf_http ap_http;
		struct accf_dns ap_dns;
		struct accf_tls ap_tls;
	};
};

/* Settings a filter reads from its parameters. */
struct accf_conf {
	uint32_t ac_timeout_ms; /* 0: no timeout */
	uint32_t ac_maxhdr;     /* accf_http header limit (0: default) */
	bool ac_version;        /* accf_http: check the HTTP version */
};

/* Defaults: no timeout, 8 KiB header limit, version checked. */
void accf_conf_default(struct accf_conf *ac);

void accf_parser_init(struct accf_parser *p, enum accf_kind kind,
    const struct accf_conf *ac);
enum accf_verdict accf_parser_feed(struct accf_parser *p, const uint8_t *buf,
    size_t len);
/* The reason the parser decided (ACCF_R_NONE while it needs more). */
enum accf_reason accf_parser_reason(const struct accf_parser *p);

struct msgb; /* mblk_t of sockfilter.h */

/* Feed every block of a b_cont chain, in order, stopping once ready. */
enum accf_verdict accf_parser_feed_chain(struct accf_parser *p,
    const struct msgb *mp);

/* ---------------------------------------------------------------------
 * Parameters.
 * ------------------------------------------------------------------- */

/* A duration: a number with an optional unit "ms", "s" (the default) or
 * "m"; "0" is none.  0 and *msp set, or -1 (malformed, too large: more
 * than a day). */
int accf_parse_duration(const char *s, uint32_t *msp);
/* A size in bytes, 1..ACCF_HTTP_LIMIT_MAX, optional suffix "k" (KiB).
 * 0 and *np set, or -1. */
int accf_parse_size(const char *s, uint32_t *np);
/* A boolean "true"/"false"/"1"/"0"/"yes"/"no"/"on"/"off".  0 or -1. */
int accf_parse_bool(const char *s, bool *bp);
/* Apply one key (timeout, maxhdr, parsehttpversion) to ac; 0, or -1 for
 * an unknown key or a bad value (ac unchanged). */
int accf_conf_set(struct accf_conf *ac, const char *key, const char *val);
/* A FreeBSD-style af_arg: either a bare duration (the timeout) or
 * "key=value" pairs separated by commas, spaces or semicolons.  Applies
 * what it can; returns the number of items it rejected. */
int accf_conf_parse_arg(struct accf_conf *ac, const char *arg);

#endif /* ACCF_PARSE_H */
