/*
 * mblk.c: STREAMS message blocks (illumos semantics) over refcounted
 * buffers, and the zero-copy loan of an application's send buffer.
 *
 * Map:
 *   mblk_t          malloc'd alone: a window [b_rptr, b_wptr) into a dblk
 *   dblk_t          allocb: one malloc, the dblk then its data (MB_DHDR on)
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
 * has a mutex (ml_lock) guarding db_borrowers, db_base/db_lim and the
 * b_rptr/b_wptr of its borrowers while they are moved; every call that
 * adds, drops or copies a block of that dblk takes it, for the dblk's
 * whole life (db_flags never changes, so the choice of path never races).
 * Rule for filters: until the send call returns, a block on a loaned
 * buffer belongs to the sending thread; another thread may only free it
 * (freeb/freemsg), dupb it or copy it (copyb/copymsg), since mb_unborrow
 * may move b_rptr/b_wptr under it.  A fork() while another thread holds
 * ml_lock leaves that one loan unusable in the child; loans last one send
 * call, so that is accepted rather than adding atfork handlers.
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* allocb's data follows its dblk, aligned for any type. */
#define MB_ALIGN _Alignof(max_align_t)
#define MB_DHDR  ((sizeof(dblk_t) + MB_ALIGN - 1) & ~(MB_ALIGN - 1))

/* The dblk of mb_borrow(), with what only loans need. */
struct mb_loan {
	dblk_t ml_db;            /* first: b_datap points here */
	pthread_mutex_t ml_lock; /* borrowers and their pointers */
	unsigned char *ml_copy;  /* heap copy once the loan ended, or NULL */
	bool ml_lent;            /* phantom reference still held */
};

/* A valid address for empty windows: loans of nothing, and kept blocks
 * that lost their data because the copy failed (ENOMEM). */
static unsigned char mb_nodata[1];
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

static mblk_t *
mb_new(dblk_t *db)
{
	mblk_t *mp = calloc(1, sizeof(*mp));

	if (mp == NULL)
		return NULL;
	mp->b_datap = db;
	mp->b_rptr = mp->b_wptr = db->db_base;
	return mp;
}

/* A dblk with size bytes of data in the same allocation, one reference. */
static dblk_t *
mb_dblk_alloc(size_t size)
{
	dblk_t *db;

	if (size > SIZE_MAX - MB_DHDR)
		return NULL;
	db = malloc(MB_DHDR + size);
	if (db == NULL)
		return NULL;
	memset(db, 0, sizeof(*db));
	db->db_base = (unsigned char *)db + MB_DHDR;
	db->db_lim = db->db_base + size;
	db->db_ref = 1;
	db->db_type = M_DATA;
	return db;
}

/* Last reference gone. */
static void
mb_dblk_free(dblk_t *db)
{
	frtn_t *frtnp;

	if (mb_is_loan(db)) {
		struct mb_loan *ml = mb_loan_of(db);

		pthread_mutex_destroy(&ml->ml_lock);
		free(ml->ml_copy);
		free(ml);
		return;
	}
	frtnp = db->db_frtnp;
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

		pthread_mutex_lock(&ml->ml_lock);
		for (pp = &db->db_borrowers; *pp != NULL;
		     pp = &(*pp)->b_dbnext) {
			if (*pp == mp) {
				*pp = mp->b_dbnext;
				break;
			}
		}
		pthread_mutex_unlock(&ml->ml_lock);
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
		free(db);
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
	db = calloc(1, sizeof(*db));
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
	free(mp);
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
	nb = calloc(1, sizeof(*nb));
	if (nb == NULL)
		return NULL;
	nb->b_datap = db;
	nb->b_band = mp->b_band;
	nb->b_tag = mp->b_tag;
	nb->b_flag = mp->b_flag;
	if (mb_is_loan(db)) {
		struct mb_loan *ml = mb_loan_of(db);

		/* Under the lock: mb_unborrow may be moving mp right now. */
		pthread_mutex_lock(&ml->ml_lock);
		nb->b_rptr = mp->b_rptr;
		nb->b_wptr = mp->b_wptr;
		nb->b_dbnext = db->db_borrowers;
		db->db_borrowers = nb;
		__atomic_add_fetch(&db->db_ref, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&ml->ml_lock);
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
		pthread_mutex_lock(&ml->ml_lock);
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
		pthread_mutex_unlock(&ml->ml_lock);
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

mblk_t *
mb_borrow(const void *buf, size_t len)
{
	/* Never written through: filters copy when DB_REF() > 1. */
	unsigned char *p = (unsigned char *)(uintptr_t)buf;
	struct mb_loan *ml;
	mblk_t *mp;

	if (p == NULL) {
		if (len > 0)
			return NULL;
		p = mb_nodata;
	}
	ml = calloc(1, sizeof(*ml));
	if (ml == NULL)
		return NULL;
	mp = calloc(1, sizeof(*mp));
	if (mp == NULL) {
		free(ml);
		return NULL;
	}
	pthread_mutex_init(&ml->ml_lock, NULL);
	ml->ml_db.db_base = p;
	ml->ml_db.db_lim = p + len;
	ml->ml_db.db_ref = 2; /* mp + the lender's phantom reference */
	ml->ml_db.db_type = M_DATA;
	ml->ml_db.db_flags = DBLK_F_BORROWED;
	ml->ml_db.db_borrowers = mp;
	ml->ml_lent = true;
	mp->b_datap = &ml->ml_db;
	mp->b_rptr = p;
	mp->b_wptr = p + len;
	return mp;
}

/* End one loan: move the kept blocks to a heap copy, drop the phantom. */
static int
mb_loan_end(struct mb_loan *ml)
{
	dblk_t *db = &ml->ml_db;
	unsigned char *lo, *hi, *copy = NULL;
	size_t span = 0;
	mblk_t *bp;
	int error = 0;

	pthread_mutex_lock(&ml->ml_lock);
	if (!ml->ml_lent) {
		/* Ended already (a second call while a keeper still holds
		 * the dblk): the phantom reference is gone, drop nothing. */
		pthread_mutex_unlock(&ml->ml_lock);
		return 0;
	}
	ml->ml_lent = false;
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
	pthread_mutex_unlock(&ml->ml_lock);
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
	/* The phantom reference keeps db valid once mp is freed. */
	db = mp->b_datap;
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
