/*
 * accf_parse.c: the accept filters' decisions (see accf_parse.h).  No
 * sof_* call here: the unit tests and the fuzzers link this file alone.
 */
#include <string.h>

#include "sockfilter.h"
#include "accf_parse.h"

static const char *const ap_reason_names[ACCF_R_COUNT] = {
    [ACCF_R_NONE] = "none",
    [ACCF_R_COMPLETE] = "complete",
    [ACCF_R_OTHER] = "other",
    [ACCF_R_LIMIT] = "limit",
    [ACCF_R_EOF] = "eof",
    [ACCF_R_TIMEOUT] = "timeout",
    [ACCF_R_NOMEM] = "nomem",
};

const char *
accf_reason_name(enum accf_reason r)
{
	if ((unsigned)r >= ACCF_R_COUNT)
		return "?";
	return ap_reason_names[r];
}

/* ---------------------------------------------------------------------
 * accf_data
 * ------------------------------------------------------------------- */

void
accf_data_init(struct accf_data *st)
{
	st->ad_reason = ACCF_R_NONE;
}

enum accf_verdict
accf_data_feed(struct accf_data *st, const uint8_t *buf, size_t len)
{
	(void)buf;
	if (st->ad_reason == ACCF_R_NONE && len > 0)
		st->ad_reason = ACCF_R_COMPLETE;
	return st->ad_reason != ACCF_R_NONE ? ACCF_READY : ACCF_NEED_MORE;
}

/* ---------------------------------------------------------------------
 * accf_http
 *
 * Request line (with the version check):
 *   START  -G/H->  METHOD ("GET " / "HEAD ")  ->  SP1 (spaces)  ->  URI
 *   ->  SP2 (spaces)  ->  VER ("HTTP/1." then '0' or '1')  ->  HDR
 * Header:  HDR  -\n->  LF  -\n->  done
 *                      LF  -\r->  LFCR  -\n->  done
 * so "\n\n", "\r\n\r\n" and "\n\r\n" end the header wherever they fall,
 * whatever came before or after them.  Tabs are not spaces (FreeBSD).
 * ------------------------------------------------------------------- */

enum {
	AH_S_START,
	AH_S_METHOD,
	AH_S_SP1,
	AH_S_URI,
	AH_S_SP2,
	AH_S_VER,
	AH_S_HDR,
	AH_S_LF,
	AH_S_LFCR,
	AH_S_DONE
};

static const char ah_get[] = "GET ";
static const char ah_head[] = "HEAD ";
static const char ah_ver[] = "HTTP/1.";

void
accf_http_init(struct accf_http *st, uint32_t limit, bool version)
{
	memset(st, 0, sizeof(*st));
	if (limit == 0)
		limit = ACCF_HTTP_LIMIT_DEF;
	if (limit > ACCF_HTTP_LIMIT_MAX)
		limit = ACCF_HTTP_LIMIT_MAX;
	st->ah_limit = limit;
	st->ah_version = version;
	st->ah_state = AH_S_START;
	st->ah_reason = ACCF_R_NONE;
}

/* One byte: AH_S_DONE once decided (ah_reason set). */
static void
ah_step(struct accf_http *st, uint8_t c)
{
	const char *lit;

	switch (st->ah_state) {
	case AH_S_START:
		if (c != 'G' && c != 'H') {
			st->ah_reason = ACCF_R_OTHER;
			st->ah_state = AH_S_DONE;
			return;
		}
		st->ah_method_head = c == 'H';
		st->ah_idx = 1;
		st->ah_state = AH_S_METHOD;
		return;
	case AH_S_METHOD:
		lit = st->ah_method_head ? ah_head : ah_get;
		if (c != (uint8_t)lit[st->ah_idx]) {
			st->ah_reason = ACCF_R_OTHER;
			st->ah_state = AH_S_DONE;
			return;
		}
		if (lit[++st->ah_idx] == '\0')
			st->ah_state = st->ah_version ? AH_S_SP1 : AH_S_HDR;
		return;
	case AH_S_SP1:
	case AH_S_URI:
	case AH_S_SP2:
		if (c == '\r' || c == '\n') {
			/* The line ended before a version: HTTP/0.9. */
			st->ah_reason = ACCF_R_OTHER;
			st->ah_state = AH_S_DONE;
		} else if (c == ' ') {
			if (st->ah_state == AH_S_URI)
				st->ah_state = AH_S_SP2;
		} else if (st->ah_state == AH_S_SP1) {
			st->ah_state = AH_S_URI;
		} else if (st->ah_state == AH_S_SP2) {
			st->ah_state = AH_S_VER;
			st->ah_idx = 0;
			ah_step(st, c);
		}
		return;
	case AH_S_VER:
		if (st->ah_idx < sizeof(ah_ver) - 1) {
			if (c == (uint8_t)ah_ver[st->ah_idx]) {
				st->ah_idx++;
				return;
			}
		} else if (c == '0' || c == '1') {
			st->ah_state = AH_S_HDR;
			return;
		}
		st->ah_reason = ACCF_R_OTHER; /* not HTTP/1.0 or 1.1 */
		st->ah_state = AH_S_DONE;
		return;
	case AH_S_HDR:
		if (c == '\n')
			st->ah_state = AH_S_LF;
		return;
	case AH_S_LF:
	case AH_S_LFCR:
		if (c == '\n') {
			st->ah_reason = ACCF_R_COMPLETE;
			st->ah_state = AH_S_DONE;
		} else if (c == '\r' && st->ah_state == AH_S_LF) {
			st->ah_state = AH_S_LFCR;
		} else {
			st->ah_state = AH_S_HDR;
		}
		return;
	default:
		return;
	}
}

enum accf_verdict
accf_http_feed(struct accf_http *st, const uint8_t *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len && st->ah_state != AH_S_DONE; i++) {
		ah_step(st, buf[i]);
		if (st->ah_state != AH_S_DONE &&
		    ++st->ah_count >= st->ah_limit) {
			/* FreeBSD hands over when the buffer is full. */
			st->ah_reason = ACCF_R_LIMIT;
			st->ah_state = AH_S_DONE;
		}
	}
	return st->ah_state == AH_S_DONE ? ACCF_READY : ACCF_NEED_MORE;
}

/* ---------------------------------------------------------------------
 * accf_dns
 * ------------------------------------------------------------------- */

void
accf_dns_init(struct accf_dns *st)
{
	memset(st, 0, sizeof(*st));
	st->dn_reason = ACCF_R_NONE;
}

enum accf_verdict
accf_dns_feed(struct accf_dns *st, const uint8_t *buf, size_t len)
{
	size_t n;

	while (len > 0 && st->dn_reason == ACCF_R_NONE) {
		if (st->dn_have < 2) {
			st->dn_len = (uint16_t)(st->dn_len << 8 | *buf);
			buf++;
			len--;
			if (++st->dn_have == 2) {
				st->dn_left = st->dn_len;
				if (st->dn_left == 0)
					st->dn_reason = ACCF_R_COMPLETE;
			}
			continue;
		}
		n = len < st->dn_left ? len : st->dn_left;
		st->dn_left -= (uint32_t)n;
		len -= n;
		buf += n;
		if (st->dn_left == 0)
			st->dn_reason = ACCF_R_COMPLETE;
	}
	return st->dn_reason != ACCF_R_NONE ? ACCF_READY : ACCF_NEED_MORE;
}

/* ---------------------------------------------------------------------
 * accf_tls
 * ------------------------------------------------------------------- */

void
accf_tls_init(struct accf_tls *st)
{
	memset(st, 0, sizeof(*st));
	st->tl_reason = ACCF_R_NONE;
}

enum accf_verdict
accf_tls_feed(struct accf_tls *st, const uint8_t *buf, size_t len)
{
	size_t n;

	while (len > 0 && st->tl_reason == ACCF_R_NONE) {
		if (st->tl_have < ACCF_TLS_HDR) {
			uint8_t c = *buf++;

			len--;
			st->tl_hdr[st->tl_have++] = c;
			/* Decide as early as a byte allows: a plain-text
			 * client should not wait for five bytes. */
			if ((st->tl_have == 1 && c != 0x16) ||
			    (st->tl_have == 2 && c != 3)) {
				st->tl_reason = ACCF_R_OTHER;
			} else if (st->tl_have == ACCF_TLS_HDR) {
				st->tl_left = (uint32_t)st->tl_hdr[3] << 8 |
				              st->tl_hdr[4];
				if (st->tl_left > ACCF_TLS_MAXREC)
					st->tl_reason = ACCF_R_OTHER;
				else if (st->tl_left == 0)
					st->tl_reason = ACCF_R_COMPLETE;
			}
			continue;
		}
		n = len < st->tl_left ? len : st->tl_left;
		st->tl_left -= (uint32_t)n;
		len -= n;
		buf += n;
		if (st->tl_left == 0)
			st->tl_reason = ACCF_R_COMPLETE;
	}
	return st->tl_reason != ACCF_R_NONE ? ACCF_READY : ACCF_NEED_MORE;
}

/* ---------------------------------------------------------------------
 * Any parser.
 * ------------------------------------------------------------------- */

void
accf_conf_default(struct accf_conf *ac)
{
	ac->ac_timeout_ms = 0;
	ac->ac_maxhdr = ACCF_HTTP_LIMIT_DEF;
	ac->ac_version = true;
}

void
accf_parser_init(struct accf_parser *p, enum accf_kind kind,
    const struct accf_conf *ac)
{
	memset(p, 0, sizeof(*p));
	p->ap_kind = kind;
	switch (kind) {
	case ACCF_K_HTTP:
		accf_http_init(&p->ap_http, ac != NULL ? ac->ac_maxhdr : 0,
		    ac != NULL ? ac->ac_version : true);
		break;
	case ACCF_K_DNS:
		accf_dns_init(&p->ap_dns);
		break;
	case ACCF_K_TLS:
		accf_tls_init(&p->ap_tls);
		break;
	case ACCF_K_DATA:
	default:
		p->ap_kind = ACCF_K_DATA;
		accf_data_init(&p->ap_data);
		break;
	}
}

enum accf_verdict
accf_parser_feed(struct accf_parser *p, const uint8_t *buf, size_t len)
{
	switch (p->ap_kind) {
	case ACCF_K_HTTP:
		return accf_http_feed(&p->ap_http, buf, len);
	case ACCF_K_DNS:
		return accf_dns_feed(&p->ap_dns, buf, len);
	case ACCF_K_TLS:
		return accf_tls_feed(&p->ap_tls, buf, len);
	case ACCF_K_DATA:
	default:
		return accf_data_feed(&p->ap_data, buf, len);
	}
}

enum accf_reason
accf_parser_reason(const struct accf_parser *p)
{
	switch (p->ap_kind) {
	case ACCF_K_HTTP:
		return p->ap_http.ah_reason;
	case ACCF_K_DNS:
		return p->ap_dns.dn_reason;
	case ACCF_K_TLS:
		return p->ap_tls.tl_reason;
	case ACCF_K_DATA:
	default:
		return p->ap_data.ad_reason;
	}
}

enum accf_verdict
accf_parser_feed_chain(struct accf_parser *p, const struct msgb *mp)
{
	enum accf_verdict v =
	    accf_parser_reason(p) != ACCF_R_NONE ? ACCF_READY : ACCF_NEED_MORE;

	/* Every block: illumos's httpfilt looked at the first one only. */
	for (; mp != NULL && v == ACCF_NEED_MORE; mp = mp->b_cont)
		if (mp->b_wptr > mp->b_rptr)
			v = accf_parser_feed(p, mp->b_rptr, MBLKL(mp));
	return v;
}

/* ---------------------------------------------------------------------
 * Parameters.
 * ------------------------------------------------------------------- */

#define AP_DAY_MS 86400000u

static const char *
ap_skip_space(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

int
accf_parse_duration(const char *s, uint32_t *msp)
{
	uint64_t whole = 0, frac = 0, fscale = 1, unit = 1000, ms;
	bool digits = false;

	if (s == NULL)
		return -1;
	s = ap_skip_space(s);
	for (; *s >= '0' && *s <= '9'; s++) {
		whole = whole * 10 + (uint64_t)(*s - '0');
		digits = true;
		if (whole > AP_DAY_MS)
			return -1;
	}
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++) {
			/* Six decimals are below a millisecond in any unit. */
			if (fscale < 1000000) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				fscale *= 10;
			}
			digits = true;
		}
	}
	if (!digits)
		return -1;
	if (strncmp(s, "ms", 2) == 0) {
		unit = 1;
		s += 2;
	} else if (*s == 's') {
		s++;
	} else if (*s == 'm') {
		unit = 60000;
		s++;
	}
	if (*ap_skip_space(s) != '\0')
		return -1;
	ms = whole * unit + frac * unit / fscale;
	if (ms > AP_DAY_MS)
		return -1;
	*msp = (uint32_t)ms;
	return 0;
}

int
accf_parse_size(const char *s, uint32_t *np)
{
	uint64_t n = 0;
	bool digits = false;

	if (s == NULL)
		return -1;
	s = ap_skip_space(s);
	for (; *s >= '0' && *s <= '9'; s++) {
		n = n * 10 + (uint64_t)(*s - '0');
		digits = true;
		if (n > ACCF_HTTP_LIMIT_MAX)
			return -1;
	}
	if (!digits)
		return -1;
	if (*s == 'k' || *s == 'K') {
		n *= 1024;
		s++;
	}
	if (*ap_skip_space(s) != '\0' || n == 0 || n > ACCF_HTTP_LIMIT_MAX)
		return -1;
	*np = (uint32_t)n;
	return 0;
}

int
accf_parse_bool(const char *s, bool *bp)
{
	static const char *const yes[] = {"true", "1", "yes", "on"};
	static const char *const no[] = {"false", "0", "no", "off"};
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*bp = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*bp = false;
			return 0;
		}
	}
	return -1;
}

int
accf_conf_set(struct accf_conf *ac, const char *key, const char *val)
{
	if (key == NULL || val == NULL)
		return -1;
	if (strcmp(key, "timeout") == 0)
		return accf_parse_duration(val, &ac->ac_timeout_ms);
	if (strcmp(key, "maxhdr") == 0)
		return accf_parse_size(val, &ac->ac_maxhdr);
	if (strcmp(key, "parsehttpversion") == 0)
		return accf_parse_bool(val, &ac->ac_version);
	return -1;
}

int
accf_conf_parse_arg(struct accf_conf *ac, const char *arg)
{
	char tok[64], *eq;
	size_t n;
	int bad = 0;

	if (arg == NULL)
		return 0;
	while (*arg != '\0') {
		n = strcspn(arg, ", ;\t");
		if (n == 0) {
			arg++;
			continue;
		}
		if (n >= sizeof(tok)) {
			bad++;
			arg += n;
			continue;
		}
		memcpy(tok, arg, n);
		tok[n] = '\0';
		arg += n;
		if ((eq = strchr(tok, '=')) != NULL) {
			*eq = '\0';
			if (accf_conf_set(ac, tok, eq + 1) != 0)
				bad++;
		} else if (accf_parse_duration(tok, &ac->ac_timeout_ms) != 0) {
			bad++;
		}
	}
	return bad;
}
