/*
 * fuzz_accf_chain.c: libFuzzer harness feeding the accept filters'
 * parsers random mblk chains built with the library's STREAMS calls
 * (allocb, linkb, dupb, unlinkb, copymsg, pullupmsg, freemsg), the way
 * data_in receives them: blocks of any size including empty ones, head
 * room, shared data blocks, several messages in a row.  Checked: after
 * every message the verdict equals a flat byte feed of the same prefix,
 * the final reason equals the flat one, a pulled-up copy decides the
 * same, and nothing leaks (LeakSanitizer).
 *
 * Input: byte 0 picks the parser (and accf_http's limit), byte 1 the
 * number of blocks, then one plan byte per block (length, head room, dup,
 * end of message), then the payload the blocks are filled from.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sockfilter.h"
#include "accf_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                            \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

#define FZ_MAXBLK 32

/* A block holding len bytes of src after head bytes of head room,
 * possibly a dupb() sharing the data (the original freed). */
static mblk_t *
fz_block(const uint8_t *src, size_t len, size_t head, int dup)
{
	mblk_t *mp = allocb(len + head, BPRI_MED), *d;

	if (mp == NULL)
		return NULL;
	mp->b_rptr += head;
	mp->b_wptr = mp->b_rptr;
	if (len > 0)
		memcpy(mp->b_wptr, src, len);
	mp->b_wptr += len;
	if (dup && (d = dupb(mp)) != NULL) {
		freeb(mp);
		mp = d;
	}
	return mp;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct accf_parser chain, flat, pulled;
	struct accf_conf ac;
	enum accf_kind kind;
	const uint8_t *plan, *payload;
	size_t nblk, plen, off = 0, i, fed = 0;
	mblk_t *msg = NULL, *all = NULL, *mp, *cp;
	enum accf_verdict v = ACCF_NEED_MORE, fv;

	if (size < 2)
		return 0;
	kind = (enum accf_kind)(data[0] & 3);
	accf_conf_default(&ac);
	ac.ac_maxhdr = (uint32_t)(data[0] >> 2) * 8 + 1;
	nblk = data[1] % FZ_MAXBLK + 1;
	if (size < 2 + nblk)
		return 0;
	plan = data + 2;
	payload = plan + nblk;
	plen = size - 2 - nblk;

	accf_parser_init(&chain, kind, &ac);
	accf_parser_init(&flat, kind, &ac);
	accf_parser_init(&pulled, kind, &ac);
	for (i = 0; i < nblk; i++) {
		uint8_t p = plan[i];
		size_t len =
		    i + 1 == nblk ? plen - off : (size_t)(p & 0x1f) * 3;

		if (len > plen - off)
			len = plen - off;
		if ((mp = fz_block(payload + off, len, (p >> 5) & 3,
		         p & 0x20)) == NULL)
			break;
		off += len;
		if (msg == NULL)
			msg = mp;
		else
			linkb(msg, mp);
		if ((p & 0x80) == 0 && i + 1 < nblk)
			continue;
		/* End of one data_in call. */
		FZ_CHECK(msgdsize(msg) == off - fed);
		v = accf_parser_feed_chain(&chain, msg);
		fv = accf_parser_feed(&flat, payload + fed, off - fed);
		FZ_CHECK(v == fv);
		FZ_CHECK(
		    accf_parser_reason(&chain) == accf_parser_reason(&flat));
		fed = off;
		if (all == NULL)
			all = msg;
		else
			linkb(all, msg);
		msg = NULL;
	}
	if (msg != NULL) {
		(void)accf_parser_feed_chain(&chain, msg);
		(void)accf_parser_feed(&flat, payload + fed, off - fed);
		if (all == NULL)
			all = msg;
		else
			linkb(all, msg);
	}
	FZ_CHECK(accf_parser_reason(&chain) == accf_parser_reason(&flat));

	/* The whole thing as one contiguous block decides the same. */
	if (all != NULL && (cp = copymsg(all)) != NULL) {
		if (pullupmsg(cp, -1)) {
			FZ_CHECK(
			    cp->b_cont == NULL || msgdsize(cp->b_cont) == 0);
			(void)accf_parser_feed_chain(&pulled, cp);
			FZ_CHECK(accf_parser_reason(&pulled) ==
			         accf_parser_reason(&flat));
		}
		/* Free block by block: unlinkb() returns the rest. */
		while (cp != NULL) {
			mp = unlinkb(cp);
			freeb(cp);
			cp = mp;
		}
	}
	freemsg(all);
	return 0;
}
