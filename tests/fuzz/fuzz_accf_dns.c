/*
 * fuzz_accf_dns.c: libFuzzer harness for the accf_dns and accf_tls
 * decisions (src/filters/accf_parse.c).  The first input byte picks the
 * parser and a split point; the rest is what the peer sends.  Checked:
 * the same verdict whole, byte by byte and split; and the exact byte the
 * rules decide at (DNS: after 2 + length bytes; TLS: at the first byte
 * that is not 0x16, the major version if not 3, the header's end if the
 * length is too large, else after 5 + length bytes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "accf_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                            \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

/* Where the rules say the parser decides, SIZE_MAX if it needs more. */
static size_t
fz_expect(enum accf_kind kind, const uint8_t *d, size_t n, enum accf_reason *r)
{
	size_t len;

	*r = ACCF_R_COMPLETE;
	if (kind == ACCF_K_DNS) {
		if (n < 2)
			return SIZE_MAX;
		len = (size_t)d[0] << 8 | d[1];
		return n >= 2 + len ? 1 + len : SIZE_MAX;
	}
	*r = ACCF_R_OTHER;
	if (n >= 1 && d[0] != 0x16)
		return 0;
	if (n >= 2 && d[1] != 3)
		return 1;
	if (n < 5)
		return SIZE_MAX;
	len = (size_t)d[3] << 8 | d[4];
	if (len > ACCF_TLS_MAXREC)
		return 4;
	*r = ACCF_R_COMPLETE;
	return n >= 5 + len ? 4 + len : SIZE_MAX;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct accf_parser whole, bytes, cut;
	enum accf_kind kind;
	enum accf_reason want_r;
	size_t i, at = SIZE_MAX, want, split;
	enum accf_verdict v;

	if (size < 1)
		return 0;
	kind = (data[0] & 1) ? ACCF_K_TLS : ACCF_K_DNS;
	split = data[0] >> 1;
	data++;
	size--;
	if (split > size)
		split = size;
	/* Two length bytes far from each other for TLS records too. */
	accf_parser_init(&whole, kind, NULL);
	accf_parser_init(&bytes, kind, NULL);
	accf_parser_init(&cut, kind, NULL);

	v = accf_parser_feed(&whole, data, size);
	for (i = 0; i < size; i++)
		if (accf_parser_feed(&bytes, data + i, 1) == ACCF_READY) {
			at = i;
			break;
		}
	(void)accf_parser_feed(&cut, data, split);
	FZ_CHECK(accf_parser_feed(&cut, data + split, size - split) == v);
	FZ_CHECK(accf_parser_reason(&cut) == accf_parser_reason(&whole));
	FZ_CHECK(accf_parser_reason(&bytes) == accf_parser_reason(&whole));

	want = fz_expect(kind, data, size, &want_r);
	FZ_CHECK(at == want);
	if (want == SIZE_MAX) {
		FZ_CHECK(v == ACCF_NEED_MORE);
		FZ_CHECK(accf_parser_reason(&whole) == ACCF_R_NONE);
	} else {
		FZ_CHECK(v == ACCF_READY);
		FZ_CHECK(accf_parser_reason(&whole) == want_r);
	}
	return 0;
}
