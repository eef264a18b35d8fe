/*
 * fuzz_accf_http.c: libFuzzer harness for accf_http's decision
 * (src/filters/accf_parse.c).  The first input byte picks the settings
 * (header limit, version check), the rest is what the peer sends.
 * Checked: the verdict and reason do not depend on how the input is split
 * (byte by byte, whole, and three cuts taken from the input), a decision
 * is final, and each reason holds for the byte that decided: "complete"
 * only on a GET/HEAD at the end of a blank line, "limit" only at the
 * limit, "other" never on a byte a valid request line allows there.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accf_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                            \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct accf_http whole, bytes, cut;
	uint32_t limit;
	bool version;
	size_t i, at = SIZE_MAX, c1, c2, c3, from;
	enum accf_verdict v;

	if (size < 1)
		return 0;
	/* Small limits too, so that the limit rule is reached. */
	limit = (uint32_t)(data[0] & 0x7f) * 16 + 1;
	if (data[0] & 0x40)
		limit = 0; /* the default */
	version = (data[0] & 0x80) == 0;
	data++;
	size--;

	accf_http_init(&whole, limit, version);
	accf_http_init(&bytes, limit, version);
	accf_http_init(&cut, limit, version);

	v = accf_http_feed(&whole, data, size);
	for (i = 0; i < size; i++)
		if (accf_http_feed(&bytes, data + i, 1) == ACCF_READY) {
			at = i;
			break;
		}
	FZ_CHECK(v == (at != SIZE_MAX ? ACCF_READY : ACCF_NEED_MORE));
	FZ_CHECK(whole.ah_reason == bytes.ah_reason);

	/* Three cuts from the input's own bytes. */
	c1 = size > 0 ? data[size / 2] % (size + 1) : 0;
	c2 = size > 1 ? (c1 + data[size - 1] * 7u) % (size + 1) : c1;
	c3 = size > 2 ? (c2 + data[1] * 13u) % (size + 1) : c2;
	if (c2 < c1)
		c2 = c1;
	if (c3 < c2)
		c3 = c2;
	(void)accf_http_feed(&cut, data, c1);
	(void)accf_http_feed(&cut, data + c1, c2 - c1);
	(void)accf_http_feed(&cut, data + c2, c3 - c2);
	from = c3;
	FZ_CHECK(accf_http_feed(&cut, data + from, size - from) == v);
	FZ_CHECK(cut.ah_reason == whole.ah_reason);

	/* Final: more input changes nothing. */
	if (v == ACCF_READY) {
		enum accf_reason r = whole.ah_reason;

		FZ_CHECK(accf_http_feed(&whole, data, size) == ACCF_READY);
		FZ_CHECK(whole.ah_reason == r);
	}

	if (at == SIZE_MAX) {
		FZ_CHECK(whole.ah_reason == ACCF_R_NONE);
		/* Waiting: a GET/HEAD prefix, under the limit. */
		FZ_CHECK(size == 0 || data[0] == 'G' || data[0] == 'H');
		FZ_CHECK(size < (limit ? limit : ACCF_HTTP_LIMIT_DEF));
		return 0;
	}
	switch (whole.ah_reason) {
	case ACCF_R_COMPLETE:
		FZ_CHECK(memcmp(data, "GET ", 4) == 0 ||
		         memcmp(data, "HEAD ", 5) == 0);
		FZ_CHECK(at >= 1 && data[at] == '\n');
		FZ_CHECK(
		    data[at - 1] == '\n' ||
		    (at >= 2 && data[at - 1] == '\r' && data[at - 2] == '\n'));
		break;
	case ACCF_R_LIMIT:
		FZ_CHECK(at + 1 == (limit ? limit : ACCF_HTTP_LIMIT_DEF));
		break;
	case ACCF_R_OTHER:
		/* A first byte that could start GET/HEAD is not "other"
		 * by itself. */
		FZ_CHECK(at > 0 || (data[0] != 'G' && data[0] != 'H'));
		break;
	default:
		abort();
	}
	return 0;
}
