/*
 * mblk.c: STREAMS message blocks (illumos semantics) over refcounted
 * buffers, and the zero-copy loan of an application's send buffer.
 *
 * Map:
 *   mblk_t          allocated alone (tcache): a window [b_rptr, b_wptr)
 *                   into a dblk
 *   dblk_t          allocb: one allocation, the dblk then its data (MB_DHDR
 *                   on); up to MB_SMALL bytes from the tcache
 *                   (DBLK_F_CACHED), larger ones from malloc
 *                   esballoc: the dblk alone over the caller's buffer
 *                   mb_borrow: the dblk is the head of a struct mb_loan
 *   db_ref          atomic; whoever drops it to 0 frees the dblk (and calls
 *                   the esballoc free routine), from any thread
 *
 * Loans.  mb_borrow() wraps the caller's buffer (DBLK_F_BORROWED) with one
 * reference for the block and a phantom one for the lender, so filters
 * see DB_REF() > 1 and copy before writing.  The phantom reference keeps
 * the dblk alive whatever the filters do with the block (free, keep,
 * replace, pull up), so the dblk is the lender's handle: mb_unborrow_db()
 * ends the loan from it, mb_unborrow() from a block the lender still
 * owns.  Every block on a loaned dblk is on db_borrowers (via b_dbnext),
 * so ending the loan can move the blocks a filter kept to a heap copy
 * before the buffer goes back to the application.
 *
 * Locking.  Plain dblks are lock-free (atomic db_ref only).  A loaned dblk
 * has a spin lock (ml_lock, one byte: nothing to create or destroy per
 * loan) guarding db_borrowers, db_base/db_lim and the b_rptr/b_wptr of its
 * borrowers while they are moved; every call that adds, drops or copies a
 * block of that dblk takes it (db_flags never changes, so the choice of
 * path never races).  Critical sections are a list walk or one copy, and
 * the lock is contended only when a filter handed a block of a loan to
 * another thread.  The lender skips the lock when db_ref shows that no
 * block but its own is left (mb_unborrow, mb_loan_end): nobody else can
 * reach the loan then.  Only the lender touches ml_lent.
 * Rule for filters: until the send call returns, a block on a loaned
 * buffer belongs to the sending thread; another thread may only free it
 * (freeb/freemsg), dupb it or copy it (copyb/copymsg), since mb_unborrow
 * may move b_rptr/b_wptr under it.  A fork() while another thread holds
 * ml_lock leaves that one loan unusable in the child; loans last one call,
 * so that is accepted rather than adding atfork handlers.
 */
#include "core.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* allocb's data follows its dblk, aligned for any type. */
#define MB_ALIGN _Alignof(max_align_t)
#define MB_DHDR  ((sizeof(dblk_t) + MB_ALIGN - 1) & ~(MB_ALIGN - 1))

/* A valid address for empty windows: loans of nothing, and kept blocks
 * that lost their data because the copy failed (ENOMEM). */
unsigned char mb_nodata[1];
static bool mb_nomem_logged;

static struct mb_loan *
mb_loan_of(dblk_t *db)
{
	return (struct mb_loan *)(void *)db;
}

static bool
mb_is_loan(const dblk_t *db)
{
	return (db->db_flags & DBLK_F_BORROWED) != 0;
}

/* Bytes in a block; a corrupt window (b_wptr < b_rptr) counts as empty. */
static size_t
mb_len(const mblk_t *mp)
{
	return mp->b_wptr > mp->b_rptr ? (size_t)(mp->b_wptr - mp->b_rptr) : 0;
}

static unsigned char *
mb_clamp(unsigned char *p, unsigned char *lo, unsigned char *hi)
{
	return p < lo ? lo : p > hi ? hi : p;
}

static void
mb_loan_lock(struct mb_loan *ml)
{
	unsigned spins = 0;

	while (__atomic_exchange_n(&ml->ml_lock, 1, __ATOMIC_ACQUIRE) != 0)
		while (__atomic_load_n(&ml->ml_lock, __ATOMIC_RELAXED) != 0)
			if (++spins % 64 == 0)
				sched_yield(); /* the holder may be preempted */
}

static void
mb_loan_unlock(struct mb_loan *ml)
{
	__atomic_store_n(&ml->ml_lock, 0, __ATOMIC_RELEASE);
}

/* A block on db (NULL: none yet), window empty at db_base. */
static mblk_t *
mb_new(dblk_t *db)
{
	mblk_t *mp = tc_alloc(TC_MBLK, sizeof(*mp));
	unsigned char *base = db != NULL ? db->db_base : NULL;

	if (mp == NULL)
		return NULL;
	*mp = (mblk_t){.b_rptr = base, .b_wptr = base, .b_datap = db};
	return mp;
}

static void
mb_mblk_free(mblk_t *mp)
{
	tc_free(TC_MBLK, mp, sizeof(*mp));
}

/* A dblk with size bytes of data in the same allocation, one reference. */
static dblk_t *
mb_dblk_alloc(size_t size)
{
	unsigned char flags = 0;
	dblk_t *db;

	if (size <= MB_SMALL) {
		/* One size for every small block: any of them can serve. */
		db = tc_alloc(TC_DBLK, MB_DHDR + MB_SMALL);
		flags = DBLK_F_CACHED;
	} else if (size > SIZE_MAX - MB_DHDR) {
		return NULL;
	} else {
		db = malloc(MB_DHDR + size);
	}
	if (db == NULL)
		return NULL;
	memset(db, 0, sizeof(*db));
	db->db_base = (unsigned char *)db + MB_DHDR;
	db->db_lim = db->db_base + size;
	db->db_ref = 1;
	db->db_type = M_DATA;
	db->db_flags = flags;
	return db;
}

static inline void
mb_loan_free(struct mb_loan *ml)
{
	if (ml->ml_copy != NULL)
		free(ml->ml_copy);
	tc_free(TC_LOAN, ml, sizeof(*ml));
}

/* Last reference gone. */
static void
mb_dblk_free(dblk_t *db)
{
	frtn_t *frtnp;

	if (mb_is_loan(db)) {
		mb_loan_free(mb_loan_of(db));
		return;
	}
	frtnp = db->db_frtnp;
	if (db->db_flags & DBLK_F_CACHED)
		tc_free(TC_DBLK, db, MB_DHDR + MB_SMALL);
	else
		free(db);
	if (frtnp != NULL && frtnp->free_func != NULL)
		frtnp->free_func(frtnp->free_arg);
}

static void
mb_dblk_rele(dblk_t *db)
{
	/* acq_rel: the freeing thread must see every other holder's writes. */
	if (__atomic_sub_fetch(&db->db_ref, 1, __ATOMIC_ACQ_REL) == 0)
		mb_dblk_free(db);
}

/* mp stops pointing at its dblk: off the borrower list, reference gone. */
static void
mb_detach(mblk_t *mp)
{
	dblk_t *db = mp->b_datap;

	if (db == NULL)
		return;
	if (mb_is_loan(db)) {
		struct mb_loan *ml = mb_loan_of(db);
		mblk_t **pp;

		mb_loan_lock(ml);
		for (pp = &db->db_borrowers; *pp != NULL;
		     pp = &(*pp)->b_dbnext) {
			if (*pp == mp) {
				*pp = mp->b_dbnext;
				break;
			}
		}
		mb_loan_unlock(ml);
		mp->b_dbnext = NULL;
	}
	mp->b_datap = NULL;
	mb_dblk_rele(db);
}

/* Bytes of the leading blocks of the first block's type (xmsgsize). */
static size_t
mb_xmsgsize(const mblk_t *mp)
{
	unsigned char type = mp->b_datap->db_type;
	size_t n = 0;

	for (; mp != NULL && mp->b_datap->db_type == type; mp = mp->b_cont)
		n += mb_len(mp);
	return n;
}

/* illumos str_aligned(): pullupmsg also realigns, callers cast to structs. */
static bool
mb_aligned(const unsigned char *p)
{
	return ((uintptr_t)p & (sizeof(long) - 1)) == 0;
}

mblk_t *
allocb(size_t size, unsigned int pri)
{
	dblk_t *db = mb_dblk_alloc(size);
	mblk_t *mp;

	(void)pri;
	if (db == NULL)
		return NULL;
	mp = mb_new(db);
	if (mp == NULL)
		mb_dblk_free(db);
	return mp;
}

mblk_t *
esballoc(unsigned char *base, size_t size, unsigned int pri, frtn_t *frtnp)
{
	dblk_t *db;
	mblk_t *mp;

	(void)pri;
	if (base == NULL)
		return NULL;
	db = calloc(1, sizeof(*db)); /* no DBLK_F_CACHED: back to free() */
	if (db == NULL)
		return NULL;
	/* frtnp is kept, not copied (illumos): it must outlive the block. */
	db->db_frtnp = frtnp;
	db->db_base = base;
	db->db_lim = base + size;
	db->db_ref = 1;
	db->db_type = M_DATA;
	mp = mb_new(db);
	if (mp == NULL)
		free(db); /* the caller still owns base: no free routine */
	return mp;
}

void
freeb(mblk_t *mp)
{
	if (mp == NULL)
		return;
	mb_detach(mp);
	mb_mblk_free(mp);
}

void
freemsg(mblk_t *mp)
{
	while (mp != NULL) {
		mblk_t *next = mp->b_cont;

		freeb(mp);
		mp = next;
	}
}

mblk_t *
dupb(mblk_t *mp)
{
	dblk_t *db;
	mblk_t *nb;

	if (mp == NULL || mp->b_datap == NULL)
		return NULL;
	db = mp->b_datap;
	nb = mb_new(NULL);
	if (nb == NULL)
		return NULL;
	nb->b_datap = db;
	nb->b_band = mp->b_band;
	nb->b_tag = mp->b_tag;
	nb->b_flag = mp->b_flag;
	if (mb_is_loan(db)) {
		struct mb_loan *ml = mb_loan_of(db);

		/* Under the lock: mb_unborrow may be moving mp right now. */
		mb_loan_lock(ml);
		nb->b_rptr = mp->b_rptr;
		nb->b_wptr = mp->b_wptr;
		nb->b_dbnext = db->db_borrowers;
		db->db_borrowers = nb;
		__atomic_add_fetch(&db->db_ref, 1, __ATOMIC_RELAXED);
		mb_loan_unlock(ml);
	} else {
		nb->b_rptr = mp->b_rptr;
		nb->b_wptr = mp->b_wptr;
		/* Relaxed: the caller's own reference keeps db alive. */
		__atomic_add_fetch(&db->db_ref, 1, __ATOMIC_RELAXED);
	}
	return nb;
}

mblk_t *
dupmsg(mblk_t *mp)
{
	mblk_t *head = NULL, **tailp = &head;

	for (; mp != NULL; mp = mp->b_cont) {
		*tailp = dupb(mp);
		if (*tailp == NULL) {
			freemsg(head);
			return NULL;
		}
		tailp = &(*tailp)->b_cont;
	}
	return head;
}

mblk_t *
copyb(mblk_t *mp)
{
	struct mb_loan *ml = NULL;
	unsigned char *base, *lim, *r, *w;
	dblk_t *db;
	mblk_t *nb;

	if (mp == NULL || mp->b_datap == NULL)
		return NULL;
	db = mp->b_datap;
	if (mb_is_loan(db)) {
		/* copyb is the documented way to take a loaned block to another
		 * thread: hold the lock so the window cannot move meanwhile. */
		ml = mb_loan_of(db);
		mb_loan_lock(ml);
	}
	base = db->db_base;
	lim = db->db_lim >= base ? db->db_lim : base;
	r = mb_clamp(mp->b_rptr, base, lim);
	w = mb_clamp(mp->b_wptr, r, lim);
	/* Same size and offsets (head and tail room kept), only the window's
	 * bytes copied: the rest is not message data. */
	nb = allocb((size_t)(lim - base), BPRI_MED);
	if (nb != NULL) {
		nb->b_rptr = nb->b_datap->db_base + (r - base);
		nb->b_wptr = nb->b_rptr + (w - r);
		if (w > r)
			memcpy(nb->b_rptr, r, (size_t)(w - r));
		nb->b_datap->db_type = db->db_type;
		nb->b_band = mp->b_band;
		nb->b_tag = mp->b_tag;
		nb->b_flag = mp->b_flag;
	}
	if (ml != NULL)
		mb_loan_unlock(ml);
	return nb;
}

mblk_t *
copymsg(mblk_t *mp)
{
	mblk_t *head = NULL, **tailp = &head;

	for (; mp != NULL; mp = mp->b_cont) {
		*tailp = copyb(mp);
		if (*tailp == NULL) {
			freemsg(head);
			return NULL;
		}
		tailp = &(*tailp)->b_cont;
	}
	return head;
}

size_t
msgdsize(const mblk_t *mp)
{
	size_t n = 0;

	for (; mp != NULL; mp = mp->b_cont) {
		if (mp->b_datap != NULL && mp->b_datap->db_type == M_DATA)
			n += mb_len(mp);
	}
	return n;
}

void
linkb(mblk_t *mp, mblk_t *bp)
{
	if (mp == NULL)
		return;
	while (mp->b_cont != NULL)
		mp = mp->b_cont;
	mp->b_cont = bp;
}

mblk_t *
unlinkb(mblk_t *mp)
{
	mblk_t *bp;

	if (mp == NULL)
		return NULL;
	bp = mp->b_cont;
	mp->b_cont = NULL;
	return bp;
}

int
pullupmsg(mblk_t *mp, ssize_t len)
{
	size_t first, need, n;
	unsigned char *dst;
	dblk_t *ndb;
	mblk_t *bp;

	if (mp == NULL || mp->b_datap == NULL || len < -1)
		return 0;
	first = mb_len(mp);
	if (len == -1) {
		if (mp->b_cont == NULL && mb_aligned(mp->b_rptr))
			return 1;
		need = mb_xmsgsize(mp);
	} else if ((size_t)len <= first) {
		if (mb_aligned(mp->b_rptr))
			return 1;
		need = first;
	} else {
		if (mb_xmsgsize(mp) < (size_t)len)
			return 0;
		need = (size_t)len;
	}
	/* The only allocation: after it nothing can fail, so a failure
	 * leaves mp unchanged as the man page promises. */
	ndb = mb_dblk_alloc(need);
	if (ndb == NULL)
		return 0;
	ndb->db_type = mp->b_datap->db_type;
	dst = ndb->db_base;
	if (first > 0)
		memcpy(dst, mp->b_rptr, first);
	dst += first;
	need -= first;
	/* mp keeps its address (the caller holds it) but moves to ndb. */
	mb_detach(mp);
	mp->b_datap = ndb;
	mp->b_rptr = ndb->db_base;
	bp = mp->b_cont;
	while (need > 0 && bp != NULL) {
		mblk_t *next;

		n = mb_len(bp);
		if (n > need)
			n = need;
		if (n > 0)
			memcpy(dst, bp->b_rptr, n);
		dst += n;
		need -= n;
		bp->b_rptr += n;
		if (mb_len(bp) > 0)
			break;
		next = bp->b_cont;
		freeb(bp);
		bp = next;
	}
	mp->b_wptr = dst;
	mp->b_cont = bp;
	return 1;
}

int
adjmsg(mblk_t *mp, ssize_t len)
{
	size_t want, n;
	mblk_t *bp;

	if (mp == NULL || mp->b_datap == NULL)
		return 0;
	/* Negation in size_t: -SSIZE_MAX-1 must not overflow. */
	want = len < 0 ? (size_t)0 - (size_t)len : (size_t)len;
	if (mb_xmsgsize(mp) < want)
		return 0;
	if (len >= 0) {
		/* From the head; mp itself stays (the caller holds it) even
		 * when emptied, later blocks that empty are freed. */
		mblk_t *prev = NULL;

		bp = mp;
		while (want > 0 && bp != NULL) {
			n = mb_len(bp);
			if (n > want)
				n = want;
			bp->b_rptr += n;
			want -= n;
			if (prev != NULL && mb_len(bp) == 0) {
				prev->b_cont = bp->b_cont;
				freeb(bp);
				bp = prev->b_cont;
			} else {
				prev = bp;
				bp = bp->b_cont;
			}
		}
		return 1;
	}
	/* From the tail of the leading same-type blocks, one block at a
	 * time from the last; emptied blocks other than mp are freed. */
	while (want > 0) {
		unsigned char type = mp->b_datap->db_type;
		mblk_t *last = mp, *prev = NULL;

		for (bp = mp->b_cont;
		     bp != NULL && bp->b_datap->db_type == type;
		     bp = bp->b_cont) {
			prev = last;
			last = bp;
		}
		n = mb_len(last);
		if (n > want)
			n = want;
		last->b_wptr -= n;
		want -= n;
		if (last != mp && mb_len(last) == 0) {
			prev->b_cont = last->b_cont;
			freeb(last);
		} else if (last == mp && want > 0) {
			break; /* cannot happen: xmsgsize counted enough */
		}
	}
	return 1;
}

/* ------------------------------------------------------------------ */

/* End one loan: move the kept blocks to a heap copy, drop the phantom. */
static int
mb_loan_end(struct mb_loan *ml)
{
	dblk_t *db = &ml->ml_db;
	unsigned char *lo, *hi, *copy = NULL;
	size_t span = 0;
	mblk_t *bp;
	int error = 0;

	if (!ml->ml_lent) {
		/* Ended already (a second call while a keeper still holds
		 * the dblk): the phantom reference is gone, drop nothing. */
		return 0;
	}
	ml->ml_lent = false;
	if (__atomic_load_n(&db->db_ref, __ATOMIC_ACQUIRE) == 1) {
		/* Only the phantom is left: no block anywhere to move, and
		 * none can appear (dupb needs a block). */
		mb_loan_free(ml);
		return 0;
	}
	mb_loan_lock(ml);
	if (db->db_borrowers != NULL) {
		/* Copy only the span the keepers still see: a filter that
		 * keeps a few bytes of a large send keeps only those. */
		lo = db->db_lim;
		hi = db->db_base;
		for (bp = db->db_borrowers; bp != NULL; bp = bp->b_dbnext) {
			unsigned char *r =
			    mb_clamp(bp->b_rptr, db->db_base, db->db_lim);
			unsigned char *w = mb_clamp(bp->b_wptr, r, db->db_lim);

			if (w > r && r < lo)
				lo = r;
			if (w > r && w > hi)
				hi = w;
		}
		span = hi > lo ? (size_t)(hi - lo) : 0;
		if (span > 0) {
			copy = malloc(span);
			if (copy == NULL)
				error = ENOMEM;
			else
				memcpy(copy, lo, span);
		}
		for (bp = db->db_borrowers; bp != NULL; bp = bp->b_dbnext) {
			unsigned char *r =
			    mb_clamp(bp->b_rptr, db->db_base, db->db_lim);
			unsigned char *w = mb_clamp(bp->b_wptr, r, db->db_lim);

			if (copy == NULL || w <= r) {
				bp->b_rptr = bp->b_wptr =
				    copy ? copy : mb_nodata;
			} else {
				bp->b_rptr = copy + (r - lo);
				bp->b_wptr = copy + (w - lo);
			}
		}
		ml->ml_copy = copy;
		db->db_base = copy ? copy : mb_nodata;
		db->db_lim = copy ? copy + span : mb_nodata;
	}
	mb_loan_unlock(ml);
	if (error != 0)
		sf_log_once(&mb_nomem_logged, SF_LOG_WARN,
		    "no memory to copy %zu bytes kept from a send: emptied",
		    span);
	mb_dblk_rele(db);
	return error;
}

int
mb_unborrow_db(dblk_t *db)
{
	if (db == NULL)
		return 0;
	if (!mb_is_loan(db))
		return EINVAL;
	return mb_loan_end(mb_loan_of(db));
}

int
mb_unborrow(mblk_t *mp)
{
	dblk_t *db;

	if (mp == NULL)
		return 0;
	db = mp->b_datap;
	if (db != NULL && mb_is_loan(db) && mb_loan_of(db)->ml_lent &&
	    __atomic_load_n(&db->db_ref, __ATOMIC_ACQUIRE) == 2) {
		/* mp and the phantom, both the caller's, are the only
		 * references: no other block, so no other thread, can reach
		 * the loan.  The common case, without the lock. */
		if (mp->b_cont != NULL)
			freemsg(mp->b_cont);
		mb_mblk_free(mp);
		mb_loan_free(mb_loan_of(db));
		return 0;
	}
	/* The phantom reference keeps db valid once mp is freed. */
	freemsg(mp);
	return mb_unborrow_db(db);
}

int
mb_to_iov(const mblk_t *mp, struct iovec *iov, int max)
{
	int n = 0;

	for (; mp != NULL; mp = mp->b_cont) {
		size_t len = mb_len(mp);

		if (len == 0)
			continue;
		if (iov == NULL || n >= max)
			return -1;
		iov[n].iov_base = mp->b_rptr;
		iov[n].iov_len = len;
		n++;
	}
	return n;
}

mblk_t *
mb_advance(mblk_t *mp, size_t n)
{
	while (mp != NULL) {
		size_t len = mb_len(mp);
		mblk_t *next;

		if (len > n) {
			mp->b_rptr += n;
			break;
		}
		n -= len;
		next = mp->b_cont;
		freeb(mp);
		mp = next;
	}
	return mp;
}

size_t
mb_copyout(const mblk_t *mp, size_t off, void *dst, size_t len)
{
	unsigned char *d = dst;
	size_t done = 0;

	if (d == NULL)
		return 0;
	for (; mp != NULL && done < len; mp = mp->b_cont) {
		size_t n = mb_len(mp);

		if (off >= n) {
			off -= n;
			continue;
		}
		n -= off;
		if (n > len - done)
			n = len - done;
		memcpy(d + done, mp->b_rptr + off, n);
		done += n;
		off = 0;
	}
	return done;
}

mblk_t *
mb_alloc_prop(size_t len, size_t wroff, size_t tail)
{
	mblk_t *mp;

	if (len > SIZE_MAX - wroff || len + wroff > SIZE_MAX - tail)
		return NULL;
	mp = allocb(wroff + len + tail, BPRI_MED);
	if (mp == NULL)
		return NULL;
	mp->b_rptr += wroff;
	mp->b_wptr = mp->b_rptr;
	return mp;
}
