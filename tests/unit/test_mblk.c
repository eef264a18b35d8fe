/*
 * test_mblk.c: message blocks (src/core/mblk.c).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* A block holding the bytes of s (without the NUL). */
static mblk_t *
tmb_block(const char *s)
{
	size_t len = strlen(s);
	mblk_t *mp = allocb(len, BPRI_MED);

	cr_assert_not_null(mp);
	memcpy(mp->b_wptr, s, len);
	mp->b_wptr += len;
	return mp;
}

/* A chain of blocks, one per string, NULL-terminated arguments. */
static mblk_t *
tmb_chain(const char *const *parts)
{
	mblk_t *head = NULL;

	for (; *parts != NULL; parts++) {
		if (head == NULL)
			head = tmb_block(*parts);
		else
			linkb(head, tmb_block(*parts));
	}
	return head;
}

/* The chain's bytes as a NUL-terminated string in buf. */
static const char *
tmb_str(const mblk_t *mp, char *buf, size_t size)
{
	size_t n = mb_copyout(mp, 0, buf, size - 1);

	buf[n] = '\0';
	return buf;
}

static int
tmb_nblocks(const mblk_t *mp)
{
	int n = 0;

	for (; mp != NULL; mp = mp->b_cont)
		n++;
	return n;
}

static int tmb_freed;

static void
tmb_free_func(void *arg)
{
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

Test(mblk, alloc_free)
{
	mblk_t *mp = allocb(100, BPRI_MED);

	cr_assert_not_null(mp);
	cr_assert_geq(MBLKSIZE(mp), 100);
	cr_assert_eq(mp->b_rptr, DB_BASE(mp));
	cr_assert_eq(mp->b_wptr, mp->b_rptr);
	cr_assert_eq(DB_REF(mp), 1);
	cr_assert_eq(DB_TYPE(mp), M_DATA);
	cr_assert_null(mp->b_cont);
	memset(mp->b_wptr, 'x', 100);
	mp->b_wptr += 100;
	cr_assert_eq(MBLKL(mp), 100);
	freeb(mp);
}

Test(mblk, alloc_zero)
{
	mblk_t *mp = allocb(0, BPRI_LO);

	cr_assert_not_null(mp);
	cr_assert_eq(MBLKL(mp), 0);
	cr_assert_eq(MBLKTAIL(mp), 0);
	cr_assert_eq(msgdsize(mp), 0);
	freemsg(mp);
}

Test(mblk, dupb_refcount)
{
	mblk_t *mp = tmb_block("hello");
	mblk_t *dp = dupb(mp);
	char buf[16];

	cr_assert_not_null(dp);
	cr_assert_eq(dp->b_datap, mp->b_datap);
	cr_assert_eq(DB_REF(mp), 2);
	cr_assert_eq(dp->b_rptr, mp->b_rptr);
	cr_assert_eq(dp->b_wptr, mp->b_wptr);
	freeb(mp);
	cr_assert_eq(DB_REF(dp), 1);
	cr_assert_str_eq(tmb_str(dp, buf, sizeof(buf)), "hello");
	freeb(dp);
}

Test(mblk, dupmsg_shares_every_block)
{
	const char *parts[] = {"ab", "cd", "ef", NULL};
	mblk_t *mp = tmb_chain(parts);
	mblk_t *dp = dupmsg(mp);
	const mblk_t *a, *b;

	cr_assert_not_null(dp);
	for (a = mp, b = dp; a != NULL; a = a->b_cont, b = b->b_cont) {
		cr_assert_not_null(b);
		cr_assert_eq(a->b_datap, b->b_datap);
		cr_assert_eq(DB_REF(a), 2);
	}
	cr_assert_null(b);
	freemsg(mp);
	freemsg(dp);
}

Test(mblk, esballoc_free_once)
{
	static unsigned char ext[32];
	frtn_t frtn = {tmb_free_func, &tmb_freed};
	mblk_t *mp = esballoc(ext, sizeof(ext), BPRI_MED, &frtn);
	mblk_t *dp;

	cr_assert_not_null(mp);
	cr_assert_eq(mp->b_rptr, ext);
	cr_assert_eq(mp->b_wptr, ext);
	cr_assert_eq(MBLKSIZE(mp), sizeof(ext));
	dp = dupb(mp);
	cr_assert_not_null(dp);
	freeb(mp);
	cr_assert_eq(tmb_freed, 0);
	freeb(dp);
	cr_assert_eq(tmb_freed, 1);
}

Test(mblk, copyb_independent)
{
	mblk_t *mp = tmb_block("hello");
	mblk_t *cp = copyb(mp);
	char buf[16];

	cr_assert_not_null(cp);
	cr_assert_neq(cp->b_datap, mp->b_datap);
	cr_assert_eq(DB_REF(mp), 1);
	cr_assert_eq(DB_REF(cp), 1);
	cp->b_rptr[0] = 'J';
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "hello");
	cr_assert_str_eq(tmb_str(cp, buf, sizeof(buf)), "Jello");
	freeb(mp);
	freeb(cp);
}

Test(mblk, copyb_keeps_head_room)
{
	mblk_t *mp = mb_alloc_prop(4, 12, 8);
	mblk_t *cp;

	cr_assert_not_null(mp);
	memcpy(mp->b_wptr, "data", 4);
	mp->b_wptr += 4;
	cp = copyb(mp);
	cr_assert_not_null(cp);
	cr_assert_eq(MBLKHEAD(cp), 12);
	cr_assert_eq(MBLKL(cp), 4);
	cr_assert_eq(MBLKTAIL(cp), MBLKTAIL(mp));
	cr_assert_eq(memcmp(cp->b_rptr, "data", 4), 0);
	freeb(mp);
	freeb(cp);
}

Test(mblk, copymsg_copies_every_block)
{
	const char *parts[] = {"ab", "cd", NULL};
	mblk_t *mp = tmb_chain(parts);
	mblk_t *cp = copymsg(mp);
	char buf[16];

	cr_assert_not_null(cp);
	cr_assert_eq(tmb_nblocks(cp), 2);
	cr_assert_neq(cp->b_cont->b_datap, mp->b_cont->b_datap);
	cr_assert_str_eq(tmb_str(cp, buf, sizeof(buf)), "abcd");
	freemsg(mp);
	freemsg(cp);
}

Test(mblk, msgdsize_counts_data_blocks_only)
{
	const char *parts[] = {"abc", "", "defgh", NULL};
	mblk_t *mp = tmb_chain(parts);
	mblk_t *proto = tmb_block("proto");

	cr_assert_eq(msgdsize(mp), 8);
	DB_TYPE(proto) = M_PROTO;
	linkb(mp, proto);
	cr_assert_eq(msgdsize(mp), 8);
	freemsg(mp);
}

Test(mblk, linkb_unlinkb)
{
	mblk_t *a = tmb_block("a"), *b = tmb_block("b"), *c = tmb_block("c");
	mblk_t *rest;

	linkb(a, b);
	linkb(a, c);
	cr_assert_eq(a->b_cont, b);
	cr_assert_eq(b->b_cont, c);
	rest = unlinkb(a);
	cr_assert_eq(rest, b);
	cr_assert_null(a->b_cont);
	cr_assert_eq(b->b_cont, c);
	cr_assert_null(unlinkb(a));
	freeb(a);
	freemsg(rest);
}

Test(mblk, pullupmsg_whole)
{
	const char *parts[] = {"abc", "", "defg", "hi", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	cr_assert_eq(pullupmsg(mp, -1), 1);
	cr_assert_null(mp->b_cont);
	cr_assert_eq(MBLKL(mp), 9);
	cr_assert_eq(memcmp(mp->b_rptr, "abcdefghi", 9), 0);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "abcdefghi");
	freemsg(mp);
}

Test(mblk, pullupmsg_partial)
{
	const char *parts[] = {"abc", "defg", "hi", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	cr_assert_eq(pullupmsg(mp, 5), 1);
	cr_assert_eq(MBLKL(mp), 5);
	cr_assert_eq(memcmp(mp->b_rptr, "abcde", 5), 0);
	cr_assert_eq(tmb_nblocks(mp), 3);
	cr_assert_eq(MBLKL(mp->b_cont), 2);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "abcdefghi");
	freemsg(mp);
}

Test(mblk, pullupmsg_too_long_fails_unchanged)
{
	const char *parts[] = {"abc", "de", NULL};
	mblk_t *mp = tmb_chain(parts);
	mblk_t *second = mp->b_cont;
	unsigned char *r = mp->b_rptr;

	cr_assert_eq(pullupmsg(mp, 6), 0);
	cr_assert_eq(mp->b_rptr, r);
	cr_assert_eq(mp->b_cont, second);
	cr_assert_eq(msgdsize(mp), 5);
	cr_assert_eq(pullupmsg(mp, -2), 0);
	freemsg(mp);
}

Test(mblk, adjmsg_head)
{
	const char *parts[] = {"abc", "de", "fgh", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	cr_assert_eq(adjmsg(mp, 5), 1);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "fgh");
	/* The first block stays (the caller holds it); emptied ones go. */
	cr_assert_eq(MBLKL(mp), 0);
	cr_assert_eq(tmb_nblocks(mp), 2);
	freemsg(mp);
}

Test(mblk, adjmsg_tail)
{
	const char *parts[] = {"abc", "de", "fgh", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	cr_assert_eq(adjmsg(mp, -4), 1);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "abcd");
	cr_assert_eq(tmb_nblocks(mp), 2);
	cr_assert_eq(adjmsg(mp, -4), 1);
	cr_assert_eq(msgdsize(mp), 0);
	cr_assert_eq(tmb_nblocks(mp), 1);
	freemsg(mp);
}

Test(mblk, adjmsg_too_long_fails_unchanged)
{
	const char *parts[] = {"abc", "de", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	cr_assert_eq(adjmsg(mp, 6), 0);
	cr_assert_eq(adjmsg(mp, -6), 0);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "abcde");
	freemsg(mp);
}

Test(mblk, borrow_no_keeper_leaves_buffer_alone)
{
	char buf[] = "borrowed bytes";
	char saved[sizeof(buf)];
	mblk_t *mp;

	memcpy(saved, buf, sizeof(buf));
	mp = mb_borrow(buf, sizeof(buf) - 1);
	cr_assert_not_null(mp);
	cr_assert_eq((void *)mp->b_rptr, (void *)buf, "no copy on borrow");
	cr_assert_eq(MBLKL(mp), sizeof(buf) - 1);
	cr_assert_eq(DB_REF(mp), 2, "phantom reference for the lender");
	cr_assert(mp->b_datap->db_flags & DBLK_F_BORROWED);
	cr_assert_eq(mp->b_datap->db_borrowers, mp);
	cr_assert_eq(mb_unborrow(mp), 0);
	cr_assert_eq(memcmp(buf, saved, sizeof(buf)), 0);
}

Test(mblk, borrow_kept_dup_survives_buffer)
{
	size_t len = 64;
	unsigned char *buf = malloc(len);
	mblk_t *mp, *dp;
	size_t i;

	cr_assert_not_null(buf);
	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)i;
	mp = mb_borrow(buf, len);
	cr_assert_not_null(mp);
	dp = dupb(mp);
	cr_assert_not_null(dp);
	cr_assert_eq(DB_REF(mp), 3);
	dp->b_rptr += 10; /* a filter keeps bytes 10..40 */
	dp->b_wptr -= 24;
	cr_assert_eq(mb_unborrow(mp), 0);
	cr_assert(dp->b_rptr < buf || dp->b_rptr >= buf + len,
	    "the kept block moved off the caller's buffer");
	memset(buf, 0xee, len);
	free(buf);
	cr_assert_eq(MBLKL(dp), 30);
	for (i = 0; i < 30; i++)
		cr_assert_eq(dp->b_rptr[i], (unsigned char)(10 + i));
	cr_assert_eq(DB_REF(dp), 1);
	freeb(dp);
}

Test(mblk, borrow_original_freed_by_filter)
{
	char buf[] = "consumed";
	mblk_t *mp = mb_borrow(buf, sizeof(buf));
	dblk_t *db;

	cr_assert_not_null(mp);
	db = mp->b_datap;
	freemsg(mp); /* a filter consumed it: the lender gets NULL back */
	cr_assert_eq(db->db_ref, 1, "only the phantom reference left");
	cr_assert_eq(mb_unborrow_db(db), 0);
}

Test(mblk, borrow_original_kept_by_filter)
{
	char *buf = strdup("kept whole");
	mblk_t *mp = mb_borrow(buf, strlen(buf));
	char out[32];

	cr_assert_not_null(mp);
	/* The filter swallowed mp and keeps it for later. */
	cr_assert_eq(mb_unborrow_db(mp->b_datap), 0);
	memset(buf, 'z', strlen(buf));
	free(buf);
	cr_assert_eq(DB_REF(mp), 1);
	cr_assert_str_eq(tmb_str(mp, out, sizeof(out)), "kept whole");
	freemsg(mp);
}

Test(mblk, borrow_unborrow_twice_is_harmless)
{
	char buf[] = "twice";
	mblk_t *mp = mb_borrow(buf, 5);
	dblk_t *db;

	cr_assert_not_null(mp);
	db = mp->b_datap;
	cr_assert_eq(mb_unborrow_db(db), 0);
	cr_assert_eq(mb_unborrow_db(db), 0, "mp still holds db: no-op");
	cr_assert_eq(DB_REF(mp), 1);
	cr_assert_eq(memcmp(mp->b_rptr, "twice", 5), 0);
	freeb(mp);
}

Test(mblk, borrow_pulled_up_chain)
{
	char a[] = "first ", b[] = "second";
	mblk_t *mp = mb_borrow(a, 6);
	dblk_t *dba, *dbb;
	char out[32];

	cr_assert_not_null(mp);
	linkb(mp, mb_borrow(b, 6));
	cr_assert_not_null(mp->b_cont);
	dba = mp->b_datap;
	dbb = mp->b_cont->b_datap;
	cr_assert_eq(pullupmsg(mp, -1), 1);
	cr_assert_eq(DB_REF(mp), 1, "pulled up into a private block");
	cr_assert_null(mp->b_cont);
	cr_assert_str_eq(tmb_str(mp, out, sizeof(out)), "first second");
	freemsg(mp);
	cr_assert_eq(mb_unborrow_db(dba), 0);
	cr_assert_eq(mb_unborrow_db(dbb), 0);
}

Test(mblk, to_iov_skips_empty)
{
	const char *parts[] = {"ab", "", "cde", "", NULL};
	mblk_t *mp = tmb_chain(parts);
	struct iovec iov[4];

	cr_assert_eq(mb_to_iov(mp, iov, 4), 2);
	cr_assert_eq(iov[0].iov_len, 2);
	cr_assert_eq(memcmp(iov[0].iov_base, "ab", 2), 0);
	cr_assert_eq(iov[1].iov_len, 3);
	cr_assert_eq(memcmp(iov[1].iov_base, "cde", 3), 0);
	cr_assert_eq(mb_to_iov(NULL, iov, 4), 0);
	freemsg(mp);
}

Test(mblk, to_iov_max_too_small)
{
	const char *parts[] = {"a", "b", "c", NULL};
	mblk_t *mp = tmb_chain(parts);
	struct iovec iov[3];

	cr_assert_eq(mb_to_iov(mp, iov, 2), -1);
	cr_assert_eq(mb_to_iov(mp, iov, 3), 3);
	freemsg(mp);
}

Test(mblk, advance_across_blocks)
{
	const char *parts[] = {"abc", "", "de", "fgh", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[16];

	mp = mb_advance(mp, 4);
	cr_assert_not_null(mp);
	cr_assert_eq(tmb_nblocks(mp), 2, "consumed blocks freed");
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "efgh");
	mp = mb_advance(mp, 1);
	cr_assert_eq(tmb_nblocks(mp), 1);
	cr_assert_str_eq(tmb_str(mp, buf, sizeof(buf)), "fgh");
	cr_assert_null(mb_advance(mp, 3));
}

Test(mblk, advance_past_end_frees_all)
{
	const char *parts[] = {"abc", "de", NULL};

	cr_assert_null(mb_advance(tmb_chain(parts), 100));
	cr_assert_null(mb_advance(NULL, 1));
}

Test(mblk, copyout_from_offset)
{
	const char *parts[] = {"abc", "de", "fgh", NULL};
	mblk_t *mp = tmb_chain(parts);
	char buf[8] = {0};

	cr_assert_eq(mb_copyout(mp, 2, buf, 4), 4);
	cr_assert_eq(memcmp(buf, "cdef", 4), 0);
	cr_assert_eq(mb_copyout(mp, 6, buf, 8), 2);
	cr_assert_eq(memcmp(buf, "gh", 2), 0);
	cr_assert_eq(mb_copyout(mp, 9, buf, 8), 0);
	cr_assert_eq(msgdsize(mp), 8, "nothing consumed");
	freemsg(mp);
}

Test(mblk, alloc_prop_room)
{
	mblk_t *mp = mb_alloc_prop(100, 16, 8);

	cr_assert_not_null(mp);
	cr_assert_eq(MBLKHEAD(mp), 16);
	cr_assert_eq(MBLKL(mp), 0);
	cr_assert_geq(MBLKTAIL(mp), 108);
	freeb(mp);
	cr_assert_null(mb_alloc_prop(SIZE_MAX, 1, 0));
}

Test(mblk, null_arguments)
{
	freeb(NULL);
	freemsg(NULL);
	linkb(NULL, NULL);
	cr_assert_null(dupb(NULL));
	cr_assert_null(dupmsg(NULL));
	cr_assert_null(copyb(NULL));
	cr_assert_null(copymsg(NULL));
	cr_assert_null(unlinkb(NULL));
	cr_assert_null(esballoc(NULL, 10, BPRI_MED, NULL));
	cr_assert_null(mb_borrow(NULL, 10));
	cr_assert_eq(mb_unborrow(NULL), 0);
	cr_assert_eq(mb_unborrow_db(NULL), 0);
	cr_assert_eq(mb_copyout(NULL, 0, NULL, 10), 0);
	cr_assert_eq(pullupmsg(NULL, -1), 0);
	cr_assert_eq(adjmsg(NULL, 1), 0);
	cr_assert_eq(msgdsize(NULL), 0);
}

Test(mblk, unborrow_db_rejects_plain_block)
{
	mblk_t *mp = allocb(8, BPRI_MED);

	cr_assert_not_null(mp);
	cr_assert_eq(mb_unborrow_db(mp->b_datap), EINVAL);
	cr_assert_eq(DB_REF(mp), 1);
	freeb(mp);
}

#define TMB_NDUPS 20000

struct tmb_range {
	mblk_t **tr_dups;
	int tr_n;
};

static void *
tmb_free_range(void *arg)
{
	struct tmb_range *tr = arg;
	int i;

	for (i = 0; i < tr->tr_n; i++)
		freeb(tr->tr_dups[i]);
	return NULL;
}

Test(mblk, threaded_dup_free)
{
	static unsigned char ext[16];
	static int freed;
	frtn_t frtn = {tmb_free_func, &freed};
	mblk_t *mp = esballoc(ext, sizeof(ext), BPRI_MED, &frtn);
	mblk_t **dups = calloc(TMB_NDUPS, sizeof(*dups));
	struct tmb_range r1 = {dups, TMB_NDUPS / 2};
	struct tmb_range r2 = {dups + TMB_NDUPS / 2, TMB_NDUPS / 2};
	pthread_t t1, t2;
	int i;

	cr_assert_not_null(mp);
	cr_assert_not_null(dups);
	for (i = 0; i < TMB_NDUPS; i++) {
		dups[i] = dupb(mp);
		cr_assert_not_null(dups[i]);
	}
	cr_assert_eq(DB_REF(mp), TMB_NDUPS + 1);
	cr_assert_eq(pthread_create(&t1, NULL, tmb_free_range, &r1), 0);
	cr_assert_eq(pthread_create(&t2, NULL, tmb_free_range, &r2), 0);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	cr_assert_eq(DB_REF(mp), 1);
	cr_assert_eq(freed, 0);
	freeb(mp);
	cr_assert_eq(freed, 1);
	free(dups);
}

struct tmb_keeper {
	mblk_t *tk_dup;
	const unsigned char *tk_expect;
	size_t tk_len;
	int tk_ok;
};

/* Another thread copies then frees its dup while the lender unborrows. */
static void *
tmb_keeper_thread(void *arg)
{
	struct tmb_keeper *tk = arg;
	mblk_t *cp = copymsg(tk->tk_dup);

	tk->tk_ok = cp != NULL && MBLKL(cp) == tk->tk_len &&
	            memcmp(cp->b_rptr, tk->tk_expect, tk->tk_len) == 0;
	freemsg(cp);
	freemsg(tk->tk_dup);
	return NULL;
}

Test(mblk, threaded_borrow_keeper_free)
{
	unsigned char expect[256];
	int i;

	for (i = 0; i < (int)sizeof(expect); i++)
		expect[i] = (unsigned char)(i * 7);
	for (i = 0; i < 300; i++) {
		unsigned char *buf = malloc(sizeof(expect));
		struct tmb_keeper tk = {NULL, expect, sizeof(expect), 0};
		pthread_t t;
		mblk_t *mp;

		cr_assert_not_null(buf);
		memcpy(buf, expect, sizeof(expect));
		mp = mb_borrow(buf, sizeof(expect));
		cr_assert_not_null(mp);
		tk.tk_dup = dupb(mp);
		cr_assert_not_null(tk.tk_dup);
		cr_assert_eq(pthread_create(&t, NULL, tmb_keeper_thread, &tk),
		    0);
		cr_assert_eq(mb_unborrow(mp), 0);
		pthread_join(t, NULL);
		memset(buf, 0, sizeof(expect));
		free(buf);
		cr_assert(tk.tk_ok, "iteration %d: the keeper saw its data", i);
	}
}

/* ---------------------------------------------------------------------
 * The per-thread free lists behind allocb, dupb and loans (tcache.c).
 * ------------------------------------------------------------------- */

Test(mblk, small_blocks_keep_their_requested_size)
{
	size_t sizes[] = {0, 1, 100, MB_SMALL, MB_SMALL + 1, 70000};
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		mblk_t *mp = allocb(sizes[i], BPRI_MED);

		cr_assert_not_null(mp);
		cr_assert_eq(MBLKSIZE(mp), sizes[i]);
		cr_assert_eq(MBLKTAIL(mp), sizes[i]);
		cr_assert_eq(DB_REF(mp), 1);
		memset(mp->b_wptr, 0xab, sizes[i]);
		freeb(mp);
	}
}

/* Freed blocks come back, from any thread, as good as new. */
Test(mblk, reused_blocks_start_clean)
{
	mblk_t *mp = allocb(64, BPRI_MED), *dp;
	unsigned char buf[8];

	cr_assert_not_null(mp);
	mp->b_band = 3;
	mp->b_tag = 4;
	mp->b_flag = 5;
	mp->b_wptr += 10;
	dp = dupb(mp);
	cr_assert_not_null(dp);
	linkb(mp, tmb_block("x"));
	freemsg(mp);
	freeb(dp);
	mp = mb_borrow(buf, sizeof(buf));
	cr_assert_not_null(mp);
	cr_assert_null(mp->b_cont);
	cr_assert_eq(mp->b_band, 0);
	cr_assert_eq(mp->b_tag, 0);
	cr_assert_eq(mp->b_flag, 0);
	cr_assert_eq(DB_REF(mp), 2);
	cr_assert_eq(mb_unborrow_lent(mp), 0);
	mp = allocb(64, BPRI_MED);
	cr_assert_not_null(mp);
	cr_assert_null(mp->b_cont);
	cr_assert_eq(mp->b_band, 0);
	cr_assert_eq(mp->b_flag, 0);
	cr_assert_eq(MBLKL(mp), 0);
	cr_assert_eq(DB_REF(mp), 1);
	freeb(mp);
}

#define TMB_NXFER 3000

static void *
tmb_free_all(void *arg)
{
	mblk_t **v = arg;
	int i;

	for (i = 0; i < TMB_NXFER; i++)
		freemsg(v[i]);
	/* And some of this thread's own, so its lists hold every kind when
	 * it exits (LeakSanitizer checks that the exit empties them). */
	for (i = 0; i < 200; i++) {
		unsigned char buf[4];
		mblk_t *mp = allocb((size_t)i * 16, BPRI_MED);
		mblk_t *lp = mb_borrow(buf, sizeof(buf));

		cr_assert_not_null(mp);
		cr_assert_not_null(lp);
		freeb(mp);
		cr_assert_eq(mb_unborrow_lent(lp), 0);
	}
	return NULL;
}

Test(mblk, blocks_freed_by_other_threads)
{
	mblk_t **v = calloc(TMB_NXFER, sizeof(*v));
	pthread_t t[2];
	int i, k;

	cr_assert_not_null(v);
	for (k = 0; k < 2; k++) {
		for (i = 0; i < TMB_NXFER; i++) {
			v[i] = allocb((size_t)(i % 3000), BPRI_MED);
			cr_assert_not_null(v[i]);
			linkb(v[i], dupb(v[i]));
		}
		cr_assert_eq(pthread_create(&t[k], NULL, tmb_free_all, v), 0);
		pthread_join(t[k], NULL);
	}
	free(v);
}

/* The lender's own untouched block: both references back at once. */
Test(mblk, unborrow_lent_with_a_keeper_moves_it)
{
	char buf[] = "lent";
	mblk_t *mp = mb_borrow(buf, 4), *dp;

	cr_assert_not_null(mp);
	dp = dupb(mp);
	cr_assert_not_null(dp);
	cr_assert_eq(mb_unborrow_lent(mp), 0); /* not the lock-free case */
	memset(buf, 'X', 4);
	cr_assert_eq(memcmp(dp->b_rptr, "lent", 4), 0);
	cr_assert_eq(DB_REF(dp), 1);
	freeb(dp);
}
