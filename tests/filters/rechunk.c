/*
 * rechunk: a test-only filter that must be invisible to the application
 * while it reshapes and delays the byte stream as hard as a real filter
 * might.  On TCP sockets (it declines every other socket):
 *
 *   - data_out and data_in re-chunk every message: each block is split
 *     (dupb windows) into pieces of varying sizes, then small neighbours
 *     are merged again (pullupmsg in the middle of the chain) and some
 *     shared pieces are replaced by private copies (copyb);
 *   - data_out keeps the tail of a message back and returns the rest;
 *     data_in keeps a whole message back now and then (see rc_in_hold for
 *     why never a part).  Held bytes go out from a timer (sof_timer_arm,
 *     hold_ms later) with sof_inject_data_out / sof_inject_data_in, so
 *     only the filters on the far side see them again;
 *   - while bytes are held, later data queues behind them; an injection
 *     that reports flow control stops injection until the matching
 *     SOF_EV_INJECT_DATA_*_OK; held bytes go out at once past hold_cap,
 *     on shutdown(SHUT_WR), at the peer's EOF, on DISCONNECTED and at
 *     CLOSING (received bytes nobody can read any more are dropped then,
 *     and counted).
 *
 * Where sof_timer_arm() fails (a core without the service thread), the
 * filter holds nothing: it re-chunks and passes every message on at once,
 * and counts that ("immediate").  The summary line lets a test tell the
 * two paths apart.
 *
 * Parameters (all optional):
 *   hold_ms      delay before held bytes are injected (default 3)
 *   hold_max     most bytes of a message's tail held back (default 2048)
 *   hold_cap     held bytes past which they go out at once (default 256K)
 *   hold_in      hold the tail of every Nth received message, 0 never
 *                (default 2)
 *   chunk_max    largest piece a block is split into (default 8192)
 *   verbose      true: one summary line per socket at detach, on stderr
 *   summary      a file that summary lines are appended to (implies verbose)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockfilter.h"

#define RC_SMALL 64 /* pieces at most this long are "small" */

/* One direction's held bytes.  rd_lock is a leaf lock: the filter never
 * calls into the library while holding it, so no lock order with the
 * library's socket and timer locks can arise. */
struct rc_dir {
	mblk_t *rd_held, *rd_last; /* held chain and its last block */
	size_t rd_bytes;           /* bytes in rd_held */
	unsigned long rd_timer;    /* armed timer id, 0 if none */
	int rd_busy;     /* a thread is injecting: others queue behind */
	int rd_fc;       /* an injection reported flow control */
	int rd_arming;   /* data_out is between arming and storing */
	int rd_early;    /* the timer fired during rd_arming */
	unsigned rd_seq; /* messages seen (hold_in cadence) */
};

struct rc_state {
	pthread_mutex_t rs_lock;
	struct rc_dir rs_out, rs_in;
	unsigned rs_hold_ms, rs_hold_in;
	size_t rs_hold_max, rs_hold_cap, rs_chunk_max;
	int rs_verbose, rs_passive;
	char *rs_summary;     /* file for summary lines, or NULL */
	atomic_uint rs_rng;   /* per-call generator seeds */
	atomic_int rs_timers; /* 0 untried, 1 armed once, -1 unavailable */
	atomic_ulong rs_out_bytes, rs_out_msgs, rs_in_bytes, rs_in_msgs;
	atomic_ulong rs_blocks, rs_merged, rs_copied;
	atomic_ulong rs_held_out, rs_held_in, rs_fired, rs_immediate;
	atomic_ulong rs_inj_out, rs_inj_in, rs_fc_out, rs_fc_in;
	atomic_ulong rs_fl_eof, rs_fl_close, rs_fl_cap, rs_fl_shut;
	atomic_ulong rs_errors, rs_dropped;
};

/* A core that answered ENOSYS once will answer it again: skip the call. */
static atomic_int rc_no_timers;

#define RC_ADD(st, f, n)                                                       \
	atomic_fetch_add_explicit(&(st)->f, (unsigned long)(n),                \
	    memory_order_relaxed)
#define RC_GET(st, f) atomic_load_explicit(&(st)->f, memory_order_relaxed)

static size_t
rc_param(sof_handle_t h, const char *key, size_t dflt)
{
	const char *v = sof_get_param(h, key);
	char *end;
	unsigned long n;

	if (v == NULL)
		return dflt;
	n = strtoul(v, &end, 0);
	return end != v ? (size_t)n : dflt;
}

static int
rc_bool(const char *v)
{
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
}

static struct rc_state *
rc_new(sof_handle_t h, int passive)
{
	struct rc_state *st = calloc(1, sizeof(*st));
	const char *s;

	if (st == NULL)
		return NULL;
	pthread_mutex_init(&st->rs_lock, NULL);
	st->rs_hold_ms = (unsigned)rc_param(h, "hold_ms", 3);
	st->rs_hold_max = rc_param(h, "hold_max", 2048);
	st->rs_hold_cap = rc_param(h, "hold_cap", 256 * 1024);
	st->rs_hold_in = (unsigned)rc_param(h, "hold_in", 2);
	st->rs_chunk_max = rc_param(h, "chunk_max", 8192);
	if (st->rs_chunk_max < 2)
		st->rs_chunk_max = 2;
	st->rs_verbose = rc_bool(sof_get_param(h, "verbose"));
	if ((s = sof_get_param(h, "summary")) != NULL && *s != '\0') {
		st->rs_summary = strdup(s);
		st->rs_verbose = 1;
	}
	st->rs_passive = passive;
	atomic_init(&st->rs_rng, (unsigned)(uintptr_t)st ^ (unsigned)getpid());
	return st;
}

/* xorshift32 over a local seed: no shared generator state to race on. */
static unsigned
rc_rand(unsigned *s)
{
	unsigned x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static unsigned
rc_seed(struct rc_state *st)
{
	unsigned s = atomic_fetch_add(&st->rs_rng, 0x9e3779b9u);

	return s != 0 ? s : 1;
}

/* The next piece size: half small, half up to chunk_max. */
static size_t
rc_piece(struct rc_state *st, unsigned *seed)
{
	unsigned r = rc_rand(seed);

	if (r & 1)
		return 1 + (r >> 1) % RC_SMALL;
	return 1 + (r >> 1) % st->rs_chunk_max;
}

/*
 * rc_rechunk(st, mp): the same bytes in differently cut blocks.  Every
 * block is split into dupb() windows; then runs of small neighbours are
 * merged with pullupmsg() on the block in the middle of the chain, and
 * every few small shared pieces are traded for a copyb() copy.  Out of
 * memory at any step leaves the chain as it is at that point, which is
 * still the same bytes in order.
 */
static mblk_t *
rc_rechunk(struct rc_state *st, mblk_t *mp)
{
	unsigned seed = rc_seed(st);
	mblk_t *head = NULL, *tail = NULL, *b, *next, *nb;
	unsigned long nblocks = 0, merged = 0, copied = 0;

	if (mp == NULL || msgdsize(mp) == 0)
		return mp;
	for (b = mp; b != NULL; b = next) {
		next = b->b_cont;
		b->b_cont = NULL;
		if (MBLKL(b) == 0) {
			freeb(b);
			continue;
		}
		for (;;) {
			size_t len = MBLKL(b), n = rc_piece(st, &seed);

			if (n >= len || (nb = dupb(b)) == NULL)
				break;
			nb->b_wptr = nb->b_rptr + n;
			b->b_rptr += n;
			if (head == NULL)
				head = nb;
			else
				tail->b_cont = nb;
			tail = nb;
			nblocks++;
		}
		if (head == NULL)
			head = b;
		else
			tail->b_cont = b;
		tail = b;
		nblocks++;
	}
	for (b = head; b != NULL && b->b_cont != NULL; b = b->b_cont) {
		size_t l1 = MBLKL(b), l2 = MBLKL(b->b_cont);

		if (l1 <= RC_SMALL && l2 <= RC_SMALL && (rc_rand(&seed) & 3)) {
			/* b keeps its address, the next block is consumed. */
			if (pullupmsg(b, (ssize_t)(l1 + l2))) {
				merged++;
				nblocks--;
			}
		} else if (l2 <= RC_SMALL && DB_REF(b->b_cont) > 1 &&
		           (rc_rand(&seed) & 1)) {
			mblk_t *old = b->b_cont, *cp = copyb(old);

			if (cp != NULL) {
				cp->b_cont = old->b_cont;
				old->b_cont = NULL;
				freeb(old);
				b->b_cont = cp;
				copied++;
			}
		}
	}
	RC_ADD(st, rs_blocks, nblocks);
	RC_ADD(st, rs_merged, merged);
	RC_ADD(st, rs_copied, copied);
	return head;
}

/* A private copy of a chain, for bytes kept past the call: the blocks of
 * data_out may lend the application's buffer, which the library moves
 * once the send returns. */
static mblk_t *
rc_private(mblk_t *mp)
{
	mblk_t *cp;

	if (mp == NULL)
		return NULL;
	cp = copymsg(mp);
	freemsg(mp);
	return cp;
}

static mblk_t *
rc_lastb(mblk_t *mp)
{
	while (mp != NULL && mp->b_cont != NULL)
		mp = mp->b_cont;
	return mp;
}

/* Queue mp (private) behind what d holds (lock held). */
static void
rc_queue(struct rc_dir *d, mblk_t *mp, size_t len)
{
	if (d->rd_held == NULL)
		d->rd_held = mp;
	else
		linkb(d->rd_last, mp);
	d->rd_last = rc_lastb(mp);
	d->rd_bytes += len;
}

/*
 * rc_drain(h, st, out, force): inject what direction out/in holds, in
 * order, from this thread.  One injector at a time (rd_busy): bytes queued
 * meanwhile are taken by the loop.  Stops at flow control unless force.
 * Returns the number of injections.
 */
static int
rc_drain(sof_handle_t h, struct rc_state *st, int out, int force)
{
	struct rc_dir *d = out ? &st->rs_out : &st->rs_in;
	int count = 0;

	for (;; count++) {
		boolean_t fc = B_FALSE;
		mblk_t *mp;
		size_t len;
		int error;

		pthread_mutex_lock(&st->rs_lock);
		if (d->rd_busy || d->rd_held == NULL || (d->rd_fc && !force)) {
			pthread_mutex_unlock(&st->rs_lock);
			return count;
		}
		mp = d->rd_held;
		len = d->rd_bytes;
		d->rd_held = d->rd_last = NULL;
		d->rd_bytes = 0;
		d->rd_busy = 1;
		pthread_mutex_unlock(&st->rs_lock);

		mp = rc_rechunk(st, mp);
		if (out)
			error = sof_inject_data_out(h, mp, NULL, &fc);
		else
			error = sof_inject_data_in(h, mp, len, 0, &fc);

		pthread_mutex_lock(&st->rs_lock);
		d->rd_busy = 0;
		if (fc)
			d->rd_fc = 1;
		pthread_mutex_unlock(&st->rs_lock);
		if (error != 0)
			RC_ADD(st, rs_errors, 1);
		else if (out)
			RC_ADD(st, rs_inj_out, len);
		else
			RC_ADD(st, rs_inj_in, len);
		if (fc && out)
			RC_ADD(st, rs_fc_out, 1);
		else if (fc)
			RC_ADD(st, rs_fc_in, 1);
	}
}

static void
rc_timer_cb(sof_handle_t h, void *cookie, void *arg)
{
	struct rc_state *st = cookie;
	int out = arg != NULL;
	struct rc_dir *d = out ? &st->rs_out : &st->rs_in;

	pthread_mutex_lock(&st->rs_lock);
	d->rd_timer = 0;
	if (d->rd_arming) {
		/* Fired before the bytes were stored: they go out whole. */
		d->rd_early = 1;
		pthread_mutex_unlock(&st->rs_lock);
		return;
	}
	pthread_mutex_unlock(&st->rs_lock);
	RC_ADD(st, rs_fired, 1);
	(void)rc_drain(h, st, out, 0);
}

/*
 * rc_arm(h, st, d, out): arm d's timer (d->rd_arming set by the caller,
 * lock not held).  1 when the caller may store bytes behind it, 0 when
 * it must pass them on now: no timers here, or the timer already fired.
 */
static int
rc_arm(sof_handle_t h, struct rc_state *st, struct rc_dir *d, int out)
{
	unsigned long id = 0;
	int ok;

	if (!atomic_load_explicit(&rc_no_timers, memory_order_relaxed)) {
		id = sof_timer_arm(h, st->rs_hold_ms, rc_timer_cb,
		    out ? (void *)st : NULL);
		if (id == 0 && errno == ENOSYS)
			atomic_store(&rc_no_timers, 1);
	}
	atomic_store(&st->rs_timers, id != 0 ? 1 : -1);
	pthread_mutex_lock(&st->rs_lock);
	d->rd_arming = 0;
	ok = id != 0 && !d->rd_early;
	if (ok)
		d->rd_timer = id;
	d->rd_early = 0;
	pthread_mutex_unlock(&st->rs_lock);
	if (id == 0)
		RC_ADD(st, rs_immediate, 1);
	return ok;
}

static sof_rval_t
rc_attach_active_cb(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	/* Held tails would split datagrams: streams only. */
	if ((type & 0xf) != SOCK_STREAM || (*cookiep = rc_new(h, 0)) == NULL)
		return SOF_RVAL_DETACH;
	return SOF_RVAL_CONTINUE;
}

static sof_rval_t
rc_attach_passive_cb(sof_handle_t h, sof_handle_t ph, void *parg,
    struct sockaddr *laddr, socklen_t laddrlen, struct sockaddr *faddr,
    socklen_t faddrlen, void **cookiep)
{
	if ((*cookiep = rc_new(h, 1)) == NULL)
		return SOF_RVAL_DETACH;
	return SOF_RVAL_CONTINUE;
}

static void
rc_report(struct rc_state *st)
{
	static const char *const tm[] = {"no", "unused", "yes"};
	char line[512];
	int n, fd;

	n = snprintf(line, sizeof(line),
	    "rechunk: pid %d %s socket: timers=%s out_bytes=%lu out_msgs=%lu "
	    "in_bytes=%lu in_msgs=%lu blocks=%lu merged=%lu copied=%lu "
	    "held_out=%lu held_in=%lu timer=%lu immediate=%lu "
	    "injected_out=%lu injected_in=%lu fc_out=%lu fc_in=%lu "
	    "flush_eof=%lu flush_close=%lu flush_cap=%lu flush_shut=%lu "
	    "errors=%lu dropped=%lu\n",
	    (int)getpid(), st->rs_passive ? "accepted" : "opened",
	    tm[atomic_load(&st->rs_timers) + 1], RC_GET(st, rs_out_bytes),
	    RC_GET(st, rs_out_msgs), RC_GET(st, rs_in_bytes),
	    RC_GET(st, rs_in_msgs), RC_GET(st, rs_blocks),
	    RC_GET(st, rs_merged), RC_GET(st, rs_copied),
	    RC_GET(st, rs_held_out), RC_GET(st, rs_held_in),
	    RC_GET(st, rs_fired), RC_GET(st, rs_immediate),
	    RC_GET(st, rs_inj_out), RC_GET(st, rs_inj_in),
	    RC_GET(st, rs_fc_out), RC_GET(st, rs_fc_in), RC_GET(st, rs_fl_eof),
	    RC_GET(st, rs_fl_close), RC_GET(st, rs_fl_cap),
	    RC_GET(st, rs_fl_shut), RC_GET(st, rs_errors),
	    RC_GET(st, rs_dropped));
	if (n <= 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1;
	fd = 2;
	if (st->rs_summary != NULL &&
	    (fd = open(st->rs_summary,
	         O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644)) < 0)
		fd = 2;
	/* One write per line: O_APPEND keeps lines of many processes whole. */
	(void)!write(fd, line, (size_t)n);
	if (fd != 2)
		(void)close(fd);
}

static void
rc_detach_cb(sof_handle_t h, void *cookie, cred_t *cr)
{
	struct rc_state *st = cookie;

	if (st == NULL)
		return;
	/* Timers are cancelled by now; CLOSING took the rest.  Anything
	 * left (a socket that never saw CLOSING) is counted as dropped. */
	RC_ADD(st, rs_dropped, st->rs_out.rd_bytes + st->rs_in.rd_bytes);
	freemsg(st->rs_out.rd_held);
	freemsg(st->rs_in.rd_held);
	if (st->rs_verbose)
		rc_report(st);
	pthread_mutex_destroy(&st->rs_lock);
	free(st->rs_summary);
	free(st);
}

/* The last keep bytes of mp (len bytes) as one private block; mp loses
 * them.  NULL (mp untouched) without memory. */
static mblk_t *
rc_split_tail(mblk_t *mp, size_t len, size_t keep)
{
	size_t off = len - keep, done = 0;
	const mblk_t *b;
	mblk_t *tail;

	if ((tail = allocb(keep, BPRI_MED)) == NULL)
		return NULL;
	for (b = mp; b != NULL && done < keep; b = b->b_cont) {
		size_t bl = MBLKL(b), st, c;

		if (off >= bl) {
			off -= bl;
			continue;
		}
		st = off;
		c = bl - st < keep - done ? bl - st : keep - done;
		memcpy(tail->b_wptr, b->b_rptr + st, c);
		tail->b_wptr += c;
		done += c;
		off = 0;
	}
	if (!adjmsg(mp, -(ssize_t)keep)) {
		freeb(tail);
		return NULL;
	}
	return tail;
}

/*
 * data_out: re-chunk; if nothing is held, keep the tail (up to hold_max
 * bytes) on a timer and pass the head; if something is held, queue the
 * whole message behind it.  Ordering against the timer's injection is the
 * library's: sends and injections on a socket are serialized.
 */
static mblk_t *
rc_data_out_cb(sof_handle_t h, void *cookie, mblk_t *mp, struct nmsghdr *msg,
    cred_t *cr, sof_rval_t *rvalp)
{
	struct rc_state *st = cookie;
	struct rc_dir *d = &st->rs_out;
	size_t len = msgdsize(mp), keep;
	mblk_t *tail;
	int over, orphan;

	RC_ADD(st, rs_out_bytes, len);
	RC_ADD(st, rs_out_msgs, 1);
	if (len == 0)
		return mp;
	pthread_mutex_lock(&st->rs_lock);
	if (d->rd_held != NULL || d->rd_busy || d->rd_fc) {
		pthread_mutex_unlock(&st->rs_lock);
		if ((mp = rc_private(mp)) == NULL) {
			*rvalp = SOF_RVAL_ENOMEM;
			return NULL;
		}
		pthread_mutex_lock(&st->rs_lock);
		rc_queue(d, mp, len);
		over = d->rd_bytes > st->rs_hold_cap;
		/* The holder may have finished while we copied: then nothing
		 * would send these bytes but us. */
		orphan = !d->rd_busy && !d->rd_fc && d->rd_timer == 0;
		pthread_mutex_unlock(&st->rs_lock);
		RC_ADD(st, rs_held_out, 1);
		if (over || orphan) {
			if (over)
				RC_ADD(st, rs_fl_cap, 1);
			(void)rc_drain(h, st, 1, over);
		}
		*rvalp = SOF_RVAL_RETURN; /* reported sent: it will be */
		return NULL;
	}
	if (st->rs_hold_max == 0 || len < 2 ||
	    atomic_load_explicit(&rc_no_timers, memory_order_relaxed)) {
		pthread_mutex_unlock(&st->rs_lock);
		if (st->rs_hold_max > 0 && len >= 2)
			RC_ADD(st, rs_immediate, 1);
		return rc_rechunk(st, mp);
	}
	d->rd_arming = 1;
	pthread_mutex_unlock(&st->rs_lock);
	if (!rc_arm(h, st, d, 1))
		return rc_rechunk(st, mp);

	keep = 1 + rc_seed(st) % (len - 1);
	if (keep > st->rs_hold_max)
		keep = st->rs_hold_max;
	tail = rc_split_tail(mp, len, keep);
	pthread_mutex_lock(&st->rs_lock);
	if (tail != NULL) {
		rc_queue(d, tail, keep);
		pthread_mutex_unlock(&st->rs_lock);
		RC_ADD(st, rs_held_out, 1);
	} else {
		/* No memory to split: the armed timer finds nothing. */
		pthread_mutex_unlock(&st->rs_lock);
	}
	return rc_rechunk(st, mp);
}

/*
 * data_in: like data_out, keep the tail of every hold_in-th message on a
 * timer and pass the head.  A message arriving while bytes are held takes
 * them along in front of it, so a read never comes back empty because of
 * us.  The library serializes data_in and injections in, so the head
 * returned here is queued before the timer can inject the tail.
 */
static mblk_t *
rc_data_in_cb(sof_handle_t h, void *cookie, mblk_t *mp, int flags,
    size_t *sizep)
{
	struct rc_state *st = cookie;
	struct rc_dir *d = &st->rs_in;
	size_t len = msgdsize(mp), keep;
	mblk_t *tail;
	int over, hold;

	RC_ADD(st, rs_in_bytes, len);
	RC_ADD(st, rs_in_msgs, 1);
	if (len == 0 || flags != 0)
		return mp;
	pthread_mutex_lock(&st->rs_lock);
	if (d->rd_busy || d->rd_fc) {
		/* An injection is on its way: stay behind it. */
		rc_queue(d, mp, len);
		over = d->rd_bytes > st->rs_hold_cap;
		pthread_mutex_unlock(&st->rs_lock);
		RC_ADD(st, rs_held_in, 1);
		if (over) {
			RC_ADD(st, rs_fl_cap, 1);
			(void)rc_drain(h, st, 0, 1);
		}
		*sizep = 0;
		return NULL;
	}
	if (d->rd_held != NULL) {
		mblk_t *held = d->rd_held;

		/* The held bytes go first, with this message; the armed
		 * timer finds nothing. */
		d->rd_held = d->rd_last = NULL;
		d->rd_bytes = 0;
		pthread_mutex_unlock(&st->rs_lock);
		linkb(held, mp);
		*sizep = msgdsize(held);
		return rc_rechunk(st, held);
	}
	hold =
	    st->rs_hold_in > 0 && ++d->rd_seq % st->rs_hold_in == 0 && len >= 2;
	if (!hold ||
	    atomic_load_explicit(&rc_no_timers, memory_order_relaxed)) {
		pthread_mutex_unlock(&st->rs_lock);
		if (hold)
			RC_ADD(st, rs_immediate, 1);
		return rc_rechunk(st, mp);
	}
	keep = 1 + rc_seed(st) % (len - 1);
	if (keep > st->rs_hold_max)
		keep = st->rs_hold_max;
	/* Stored before the timer is armed, so it cannot fire on nothing. */
	if ((tail = rc_split_tail(mp, len, keep)) == NULL) {
		pthread_mutex_unlock(&st->rs_lock);
		return rc_rechunk(st, mp);
	}
	rc_queue(d, tail, keep);
	d->rd_arming = 1;
	pthread_mutex_unlock(&st->rs_lock);
	if (!rc_arm(h, st, d, 0)) {
		/* No timer: the tail goes on with its head after all. */
		pthread_mutex_lock(&st->rs_lock);
		if (d->rd_held == tail) {
			d->rd_held = d->rd_last = NULL;
			d->rd_bytes = 0;
			linkb(mp, tail);
			keep = 0;
		}
		pthread_mutex_unlock(&st->rs_lock);
	}
	if (keep > 0)
		RC_ADD(st, rs_held_in, 1);
	*sizep = len - keep;
	return rc_rechunk(st, mp);
}

/* shutdown(SHUT_WR) sends the FIN next: held bytes must precede it. */
static sof_rval_t
rc_shutdown_cb(sof_handle_t h, void *cookie, int *how, cred_t *cr)
{
	struct rc_state *st = cookie;

	if (*how != SHUT_RD && rc_drain(h, st, 1, 1) > 0)
		RC_ADD(st, rs_fl_shut, 1);
	return SOF_RVAL_CONTINUE;
}

static void
rc_notify_cb(sof_handle_t h, void *cookie, sof_event_t ev, uintptr_t arg)
{
	struct rc_state *st = cookie;
	mblk_t *mp;
	size_t len;

	switch (ev) {
	case SOF_EV_INJECT_DATA_OUT_OK:
	case SOF_EV_INJECT_DATA_IN_OK:
		pthread_mutex_lock(&st->rs_lock);
		if (ev == SOF_EV_INJECT_DATA_OUT_OK)
			st->rs_out.rd_fc = 0;
		else
			st->rs_in.rd_fc = 0;
		pthread_mutex_unlock(&st->rs_lock);
		(void)rc_drain(h, st, ev == SOF_EV_INJECT_DATA_OUT_OK, 0);
		break;
	case SOF_EV_CANTRECVMORE:
	case SOF_EV_DISCONNECTED:
		/* What arrived before the EOF is read before it. */
		if (rc_drain(h, st, 0, 1) > 0)
			RC_ADD(st, rs_fl_eof, 1);
		if (ev == SOF_EV_DISCONNECTED)
			(void)rc_drain(h, st, 1, 1);
		break;
	case SOF_EV_CLOSING:
		if (rc_drain(h, st, 1, 1) > 0)
			RC_ADD(st, rs_fl_close, 1);
		/* Nobody can read these any more. */
		pthread_mutex_lock(&st->rs_lock);
		mp = st->rs_in.rd_held;
		len = st->rs_in.rd_bytes;
		st->rs_in.rd_held = st->rs_in.rd_last = NULL;
		st->rs_in.rd_bytes = 0;
		pthread_mutex_unlock(&st->rs_lock);
		freemsg(mp);
		RC_ADD(st, rs_dropped, len);
		break;
	default:
		break;
	}
}

static const sof_ops_t rc_ops = {
    .sofop_attach_active = rc_attach_active_cb,
    .sofop_attach_passive = rc_attach_passive_cb,
    .sofop_detach = rc_detach_cb,
    .sofop_data_in = rc_data_in_cb,
    .sofop_data_out = rc_data_out_cb,
    .sofop_shutdown = rc_shutdown_cb,
    .sofop_notify = rc_notify_cb,
};

__attribute__((constructor)) static void
rc_init(void)
{
	(void)sof_register(SOF_VERSION, "rechunk", &rc_ops, 0);
}

__attribute__((destructor)) static void
rc_fini(void)
{
	(void)sof_unregister("rechunk");
}
