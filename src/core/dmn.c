/*
 * dmn.c: the library's side of soconfigd (the files and layouts are
 * described in dmn.h).
 *
 *   region    this process's counters and per-socket view: a sealed memfd
 *             mapped at one address for the life of the process (a forked
 *             child gets a fresh copy at the same address, so every
 *             st_filter pointer stays valid); anonymous memory when memfd
 *             is not available (then the daemon cannot see it)
 *   S.cfg     the daemon's published configuration, mapped read-only;
 *             mappings are never unmapped (a reader may hold the pointer)
 *   S.reg     where registrations and filter records are sent, from a
 *             socket opened and closed on the spot with the real libc
 *             calls: the library keeps no socket of its own that a
 *             program could close or renumber behind its back
 *
 * Cost per socket creation (dmn_tick): with a daemon and nothing new, two
 * loads and compares; without a daemon, a vDSO clock read, and once every
 * DMN_RETRY_SECS an open() of S.cfg.  Nothing here blocks or fails the
 * program: every failure is logged once at most and ignored.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "dmn.h"
#include "libc.h"
#include "log.h"

/* The region. */
static struct dmn_proc *dmn_proc;
static struct dmn_proc dmn_fallback; /* when even mmap fails */
static int dmn_memfd = -1;
static dev_t dmn_memdev;
static ino_t dmn_memino;
static pthread_once_t dmn_proc_once = PTHREAD_ONCE_INIT;

/* The daemon. */
static bool dmn_enabled;
static bool dmn_secure;
static char dmn_regpath[sizeof(((struct sockaddr_un *)0)->sun_path)];
static char dmn_cfgpath[PATH_MAX];
static char *dmn_attach; /* SOCKFILTER_ATTACH */
static _Atomic(struct dmn_cfg *) dmn_cfgmap;
static dev_t dmn_cfgdev;
static ino_t dmn_cfgino;
static _Atomic uint64_t dmn_seen; /* dc_seq of the loaded text */
static _Atomic long long dmn_due; /* next slow check (coarse s) */
static uint64_t dmn_reg_epoch;    /* epoch we last registered with */
static pthread_mutex_t dmn_lock = PTHREAD_MUTEX_INITIALIZER;

/* The per-socket view: slot keys (the struct sock), linear probing. */
static pthread_mutex_t dmn_sock_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t dmn_keys[DMN_MAXSOCK];

static bool dmn_log_memfd, dmn_log_cfg, dmn_log_lost;

static long long
dmn_now(void)
{
	struct timespec ts;

	/* COARSE is served by the vDSO: no system call. */
	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return 0;
	return (long long)ts.tv_sec;
}

/* ---------------------------------------------------------------------
 * The region.
 * ------------------------------------------------------------------- */

/* A new sealed memfd of the region's size, or -1. */
static int
dmn_memfd_new(void)
{
	int fd =
	    memfd_create("sockfilter-stats", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -1;
	/* Sealed so that the daemon can map it without fearing SIGBUS. */
	if (ftruncate(fd, sizeof(struct dmn_proc)) != 0 ||
	    LIBC(fcntl)(fd, F_ADD_SEALS,
	        F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
		LIBC(close)(fd);
		return -1;
	}
	return fd;
}

static void
dmn_memfd_note(int fd)
{
	struct stat st;

	dmn_memfd = fd;
	if (fstat(fd, &st) == 0) {
		dmn_memdev = st.st_dev;
		dmn_memino = st.st_ino;
	}
}

static void
dmn_region_head(struct dmn_proc *dp)
{
	dp->dp_magic = DMN_PROC_MAGIC;
	dp->dp_layout = DMN_LAYOUT;
	dp->dp_size = sizeof(*dp);
	dp->dp_pid = (int32_t)getpid();
	snprintf(dp->dp_prog, sizeof(dp->dp_prog), "%s",
	    program_invocation_short_name != NULL
	        ? program_invocation_short_name
	        : "?");
}

/* A forked child's copy: the instances (nactive, ndeferred, the sockets)
 * are the child's too, the totals so far are the parent's. */
static void
dmn_region_child(struct dmn_proc *dp)
{
	uint32_t i, n = atomic_load(&dp->dp_nfilt);

	dp->dp_pid = (int32_t)getpid();
	atomic_store(&dp->dp_ack, 0);
	atomic_store(&dp->dp_sock_overflow, 0);
	atomic_store(&dp->dp_global.sg_defer_closed, 0);
	atomic_store(&dp->dp_global.sg_defer_close_backlog, 0);
	atomic_store(&dp->dp_global.sg_defer_close_failed, 0);
	for (i = 0; i < n && i < DMN_MAXFILT; i++) {
		struct st_filter *sf = &dp->dp_filters[i];

		atomic_store(&sf->sf_tot_active_attach, 0);
		atomic_store(&sf->sf_tot_passive_attach, 0);
		atomic_store(&sf->sf_attach_failures, 0);
		atomic_store(&sf->sf_bytes_in, 0);
		atomic_store(&sf->sf_bytes_out, 0);
		atomic_store(&sf->sf_denied, 0);
	}
}

static void
dmn_atfork_child(void)
{
	const size_t size = sizeof(struct dmn_proc);
	void *tmp;
	int fd;

	pthread_mutex_init(&dmn_lock, NULL);
	pthread_mutex_init(&dmn_sock_lock, NULL);
	dmn_reg_epoch = 0;
	if (dmn_proc == NULL)
		return;
	if (dmn_memfd < 0) {
		/* Private memory: fork already made it the child's own. */
		dmn_region_child(dmn_proc);
		return;
	}
	/* The mapping is shared with the parent: give the child a memfd of
	 * its own at the same address (one thread here: nothing is lost). */
	LIBC(close)(dmn_memfd);
	dmn_memfd = -1;
	if ((fd = dmn_memfd_new()) >= 0) {
		tmp =
		    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (tmp != MAP_FAILED) {
			memcpy(tmp, dmn_proc, size);
			dmn_region_child(tmp);
			if (mmap(dmn_proc, size, PROT_READ | PROT_WRITE,
			        MAP_SHARED | MAP_FIXED, fd, 0) != MAP_FAILED) {
				munmap(tmp, size);
				dmn_memfd_note(fd);
				return;
			}
			munmap(tmp, size);
		}
		LIBC(close)(fd);
	}
	tmp = mmap(NULL, size, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (tmp == MAP_FAILED)
		return; /* counts stay shared with the parent */
	memcpy(tmp, dmn_proc, size);
	if (mmap(dmn_proc, size, PROT_READ | PROT_WRITE,
	        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
		memcpy(dmn_proc, tmp, size);
		dmn_region_child(dmn_proc);
	}
	munmap(tmp, size);
}

static void
dmn_region_once(void)
{
	const size_t size = sizeof(struct dmn_proc);
	struct dmn_proc *dp = MAP_FAILED;
	int fd = dmn_memfd_new();

	if (fd >= 0) {
		dp =
		    mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (dp == MAP_FAILED)
			LIBC(close)(fd);
		else
			dmn_memfd_note(fd);
	}
	if (dp == MAP_FAILED) {
		sf_log_once(&dmn_log_memfd, SF_LOG_DEBUG,
		    "no memfd for the counters (%s): soconfigd will not see "
		    "this process",
		    strerror(errno));
		dp = mmap(NULL, size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (dp == MAP_FAILED)
		dp = &dmn_fallback;
	dmn_region_head(dp);
	dmn_proc = dp;
	pthread_atfork(NULL, NULL, dmn_atfork_child);
}

struct dmn_proc *
dmn_region(void)
{
	pthread_once(&dmn_proc_once, dmn_region_once);
	return dmn_proc;
}

/* ---------------------------------------------------------------------
 * Talking to the daemon: one datagram to S.reg.
 * ------------------------------------------------------------------- */

/* dmn_send(buf, len, fd): 0 or an errno; fd >= 0 goes along (SCM_RIGHTS). */
static int
dmn_send(const void *buf, size_t len, int fd)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {(void *)buf, len};
	struct msghdr msg = {.msg_name = &sun,
	    .msg_namelen = sizeof(sun),
	    .msg_iov = &iov,
	    .msg_iovlen = 1};
	int s, error = 0, saved = errno;

	memcpy(sun.sun_path, dmn_regpath, sizeof(sun.sun_path));
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&cm, 0, sizeof(cm));
		msg.msg_control = cm.buf;
		msg.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	/* The real calls: this socket must never meet a filter. */
	s = LIBC(socket)(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0) {
		error = errno;
	} else {
		if (LIBC(sendmsg)(s, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			error = errno;
		LIBC(close)(s);
	}
	errno = saved;
	return error;
}

/* Hand our region to the daemon of dc (under dmn_lock). */
static void
dmn_register(struct dmn_cfg *dc)
{
	static const char hello[] = "{\"hello\":1}";
	struct stat st;
	int error;

	dmn_reg_epoch = atomic_load(&dc->dc_epoch);
	if (dmn_memfd < 0)
		return;
	/* The program may have closed our descriptor behind our back (and
	 * the number be reused): only a descriptor of our own memfd, which
	 * the mapping keeps alive, goes out. */
	if (fstat(dmn_memfd, &st) != 0 || st.st_dev != dmn_memdev ||
	    st.st_ino != dmn_memino) {
		sf_log_once(&dmn_log_lost, SF_LOG_WARN,
		    "the program closed the library's counter descriptor: "
		    "soconfigd will not see this process");
		dmn_memfd = -1;
		return;
	}
	error = dmn_send(hello, sizeof(hello) - 1, dmn_memfd);
	sf_log(SF_LOG_DEBUG, "registration with soconfigd (epoch %llu): %s",
	    (unsigned long long)dmn_reg_epoch,
	    error == 0 ? "sent" : strerror(error));
}

/* ---------------------------------------------------------------------
 * The published configuration.
 * ------------------------------------------------------------------- */

/* Map S.cfg if it is there and sound (under dmn_lock).  A replaced file
 * (another inode) is mapped anew; the old mapping stays. */
static void
dmn_cfg_open(void)
{
	struct dmn_cfg *dc;
	struct stat st;
	int fd;

	fd = open(dmn_cfgpath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < DMN_CFG_SIZE ||
	    (atomic_load(&dmn_cfgmap) != NULL && st.st_dev == dmn_cfgdev &&
	        st.st_ino == dmn_cfgino) ||
	    (dmn_secure && (st.st_uid != 0 || (st.st_mode & 022) != 0))) {
		LIBC(close)(fd);
		return;
	}
	dc = mmap(NULL, DMN_CFG_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	LIBC(close)(fd);
	if (dc == MAP_FAILED)
		return;
	if (dc->dc_magic != DMN_CFG_MAGIC || dc->dc_layout != DMN_LAYOUT) {
		sf_log_once(&dmn_log_cfg, SF_LOG_WARN,
		    "%s is not a configuration published by this version of "
		    "soconfigd: ignored",
		    dmn_cfgpath);
		munmap(dc, DMN_CFG_SIZE);
		return;
	}
	dmn_cfgdev = st.st_dev;
	dmn_cfgino = st.st_ino;
	atomic_store(&dmn_seen, 0);
	atomic_store_explicit(&dmn_cfgmap, dc, memory_order_release);
}

static bool
dmn_running(struct dmn_cfg *dc)
{
	return dc != NULL && atomic_load_explicit(&dc->dc_state,
	                         memory_order_relaxed) == DMN_ST_RUNNING;
}

/* The text of dc as a snapshot, or NULL (being rewritten: later). */
static struct cfg_snap *
dmn_cfg_read(struct dmn_cfg *dc, uint64_t *seqp)
{
	struct cfg_snap *cs = NULL;
	char err[512], *text;
	uint64_t s1, s2;
	uint32_t len;

	s1 = atomic_load_explicit(&dc->dc_seq, memory_order_acquire);
	if (s1 & 1)
		return NULL;
	len = dc->dc_len;
	if (len == 0 || len >= DMN_CFG_TEXTMAX)
		return NULL;
	if ((text = malloc((size_t)len + 1)) == NULL)
		return NULL;
	memcpy(text, dmn_cfg_text(dc), len);
	text[len] = '\0';
	DMN_FENCE(memory_order_acquire);
	s2 = atomic_load_explicit(&dc->dc_seq, memory_order_relaxed);
	if (s1 != s2) {
		free(text);
		return NULL;
	}
	*seqp = s1;
	if (cfg_load_string(text, "soconfigd", &cs, err, sizeof(err)) != 0) {
		sf_log(SF_LOG_ERR, "configuration from soconfigd: %s", err);
		cs = NULL;
	} else {
		sf_log(SF_LOG_DEBUG,
		    "configuration version %llu from soconfigd: %d filters",
		    (unsigned long long)dc->dc_version, cs->cs_nfilters);
		cs->cs_generation = dc->dc_version;
	}
	free(text);
	return cs;
}

void
dmn_attach_env(struct cfg_snap *cs)
{
	const char *p, *q;

	if (cs == NULL || dmn_attach == NULL)
		return;
	for (p = dmn_attach; *p != '\0'; p = *q ? q + 1 : q) {
		char name[FILNAME_MAX];
		size_t n;
		int i;

		q = strchr(p, ',');
		if (q == NULL)
			q = p + strlen(p);
		n = (size_t)(q - p);
		if (n == 0 || n >= sizeof(name))
			continue;
		memcpy(name, p, n);
		name[n] = '\0';
		for (i = 0; i < cs->cs_nfilters; i++)
			if (strcmp(cs->cs_filters[i].cf_name, name) == 0)
				break;
		if (i == cs->cs_nfilters) {
			sf_log(SF_LOG_WARN,
			    "SOCKFILTER_ATTACH: no filter '%s' is configured",
			    name);
			continue;
		}
		if (!cs->cs_filters[i].cf_auto)
			sf_log(SF_LOG_DEBUG,
			    "SOCKFILTER_ATTACH: filter %s attaches "
			    "automatically",
			    name);
		cs->cs_filters[i].cf_auto = true;
	}
}

void
dmn_init(const char *sockpath, bool secure, const char *attach)
{
	dmn_secure = secure;
	if (attach != NULL && *attach != '\0')
		dmn_attach = strdup(attach);
	if (sockpath == NULL || *sockpath == '\0')
		sockpath = DMN_DEFAULT_SOCKET;
	if (strcmp(sockpath, DMN_SOCKET_NONE) == 0)
		return;
	if (strlen(sockpath) + sizeof(DMN_SUFFIX_REG) > sizeof(dmn_regpath)) {
		sf_log(SF_LOG_WARN,
		    "daemon socket path %s is too long: no daemon", sockpath);
		return;
	}
	snprintf(dmn_regpath, sizeof(dmn_regpath), "%s%s", sockpath,
	    DMN_SUFFIX_REG);
	snprintf(dmn_cfgpath, sizeof(dmn_cfgpath), "%s%s", sockpath,
	    DMN_SUFFIX_CFG);
	dmn_enabled = true;
}

struct cfg_snap *
dmn_config_initial(void)
{
	struct cfg_snap *cs = NULL;
	struct dmn_cfg *dc;
	uint64_t seq;

	if (!dmn_enabled)
		return NULL;
	(void)dmn_region();
	pthread_mutex_lock(&dmn_lock);
	dmn_cfg_open();
	dc = atomic_load(&dmn_cfgmap);
	if (dmn_running(dc) && (cs = dmn_cfg_read(dc, &seq)) != NULL) {
		atomic_store(&dmn_seen, seq);
		dmn_register(dc);
	}
	atomic_store(&dmn_due, dmn_now() + DMN_RETRY_SECS);
	pthread_mutex_unlock(&dmn_lock);
	if (cs != NULL)
		dmn_attach_env(cs);
	else
		sf_log(SF_LOG_DEBUG, "no soconfigd at %s", dmn_cfgpath);
	return cs;
}

static void
dmn_tick_slow(void)
{
	struct cfg_snap *cs = NULL;
	struct dmn_cfg *dc;
	long long now = dmn_now();
	uint64_t seq, epoch;
	bool due;

	/* Never wait: another thread is already at it. */
	if (pthread_mutex_trylock(&dmn_lock) != 0)
		return;
	due = now >= atomic_load(&dmn_due);
	if (due)
		atomic_store(&dmn_due, now + DMN_RETRY_SECS);
	dc = atomic_load(&dmn_cfgmap);
	/* No daemon, a stopped one, or one that does not answer: look for
	 * a new S.cfg (a daemon started with the file removed). */
	if (due && (!dmn_running(dc) || atomic_load(&dmn_region()->dp_ack) !=
	                                    atomic_load(&dc->dc_epoch))) {
		dmn_cfg_open();
		dc = atomic_load(&dmn_cfgmap);
	}
	if (dmn_running(dc)) {
		if (atomic_load(&dc->dc_seq) != atomic_load(&dmn_seen) &&
		    (cs = dmn_cfg_read(dc, &seq)) != NULL)
			atomic_store(&dmn_seen, seq);
		epoch = atomic_load(&dc->dc_epoch);
		if (atomic_load(&dmn_region()->dp_ack) != epoch &&
		    (epoch != dmn_reg_epoch || due))
			dmn_register(dc);
	}
	pthread_mutex_unlock(&dmn_lock);
	if (cs != NULL) {
		dmn_attach_env(cs);
		sf_config_set(cs);
	}
}

void
dmn_tick(void)
{
	struct dmn_cfg *dc;

	if (!dmn_enabled)
		return;
	dc = atomic_load_explicit(&dmn_cfgmap, memory_order_acquire);
	if (dmn_running(dc) &&
	    atomic_load_explicit(&dc->dc_seq, memory_order_relaxed) ==
	        atomic_load_explicit(&dmn_seen, memory_order_relaxed)) {
		/* The configuration we have: all is well if registered. */
		if (atomic_load_explicit(&dmn_region()->dp_ack,
		        memory_order_relaxed) ==
		    atomic_load_explicit(&dc->dc_epoch, memory_order_relaxed))
			return;
		if (atomic_load_explicit(&dc->dc_epoch, memory_order_relaxed) ==
		        dmn_reg_epoch &&
		    dmn_now() < atomic_load(&dmn_due))
			return;
	} else if (!dmn_running(dc) && dmn_now() < atomic_load(&dmn_due)) {
		return;
	}
	dmn_tick_slow();
}

/* ---------------------------------------------------------------------
 * The per-socket view.
 * ------------------------------------------------------------------- */

static unsigned
dmn_hash(uintptr_t key)
{
	key ^= key >> 17;
	key *= (uintptr_t)0x9e3779b97f4a7c15ull;
	return (unsigned)(key >> 20) & (DMN_MAXSOCK - 1);
}

static void
dmn_sock_write(struct dmn_sock *se, const struct dmn_sock *src)
{
	uint32_t seq = atomic_load_explicit(&se->se_seq, memory_order_relaxed);

	atomic_store_explicit(&se->se_seq, seq + 1, memory_order_relaxed);
	DMN_FENCE(memory_order_release);
	se->se_fd = src->se_fd;
	se->se_family = src->se_family;
	se->se_type = src->se_type;
	se->se_proto = src->se_proto;
	se->se_n = src->se_n;
	memcpy(se->se_idx, src->se_idx, sizeof(se->se_idx));
	memcpy(se->se_flags, src->se_flags, sizeof(se->se_flags));
	atomic_store_explicit(&se->se_seq, seq + 2, memory_order_release);
}

/* Remove slot i, shifting later entries of the same run back so that
 * lookups stop at the first empty slot (no tombstones). */
static void
dmn_sock_remove(struct dmn_proc *dp, unsigned i)
{
	static const struct dmn_sock empty = {.se_fd = -1};
	unsigned j = i, home;

	for (;;) {
		j = (j + 1) & (DMN_MAXSOCK - 1);
		if (dmn_keys[j] == 0)
			break;
		home = dmn_hash(dmn_keys[j]);
		/* Entry j may move to i if its home is not in (i, j]. */
		if ((i <= j) ? (i < home && home <= j)
		             : (i < home || home <= j))
			continue;
		dmn_keys[i] = dmn_keys[j];
		dmn_sock_write(&dp->dp_socks[i], &dp->dp_socks[j]);
		i = j;
	}
	dmn_keys[i] = 0;
	dmn_sock_write(&dp->dp_socks[i], &empty);
}

void
dmn_sock_update(struct sock *so)
{
	struct dmn_proc *dp = dmn_region();
	struct dmn_sock ent = {.se_fd = so->so_fd};
	const struct stk_inst *inst;
	uintptr_t key = (uintptr_t)so;
	unsigned i, n;

	/* A server may only accept from now on: a daemon that came back
	 * must hear from it too (no system call unless it did). */
	dmn_tick();

	ent.se_family = so->so_family;
	ent.se_type = so->so_type;
	ent.se_proto = so->so_proto;
	for (inst = so->so_top; inst != NULL && ent.se_n < DMN_SOCKFIL;
	     inst = inst->si_down) {
		ptrdiff_t idx = inst->si_stats - dp->dp_filters;

		if (!(inst->si_flags & SI_F_ATTACHED))
			continue;
		ent.se_idx[ent.se_n] =
		    (idx >= 0 && idx < DMN_MAXFILT) ? (uint8_t)idx : DMN_NOFILT;
		ent.se_flags[ent.se_n] =
		    (uint8_t)(((inst->si_flags & SI_F_PROG) ? FILF_PROG
		                                            : FILF_AUTO) |
		              ((inst->si_flags & SI_F_BYPASS) ? FILF_BYPASS
		                                              : 0));
		ent.se_n++;
	}
	pthread_mutex_lock(&dmn_sock_lock);
	i = dmn_hash(key);
	for (n = 0; n < DMN_MAXSOCK && dmn_keys[i] != 0 && dmn_keys[i] != key;
	     n++)
		i = (i + 1) & (DMN_MAXSOCK - 1);
	if (ent.se_n == 0) {
		if (n < DMN_MAXSOCK && dmn_keys[i] == key)
			dmn_sock_remove(dp, i);
	} else if (n < DMN_MAXSOCK) {
		dmn_keys[i] = key;
		dmn_sock_write(&dp->dp_socks[i], &ent);
	} else {
		atomic_fetch_add_explicit(&dp->dp_sock_overflow, 1,
		    memory_order_relaxed);
	}
	pthread_mutex_unlock(&dmn_sock_lock);
}

/* ---------------------------------------------------------------------
 * sof_record: a filter's record to the daemon's live stream.
 * ------------------------------------------------------------------- */

#define DMN_RECMAX 16384

int
sof_record(sof_handle_t h, const char *json, size_t len)
{
	struct dmn_cfg *dc = atomic_load(&dmn_cfgmap);
	const char *name = sof_get_name(h);
	char *buf;
	size_t pos = 0, i;
	int error;

	if (json == NULL || len == 0 || len > DMN_RECMAX)
		return EINVAL;
	if (!dmn_enabled || !dmn_running(dc))
		return ENOTCONN;
	if ((buf = malloc(len + 2 * FILNAME_MAX + 64)) == NULL)
		return ENOMEM;
	pos = (size_t)sprintf(buf, "{\"filter\":\"");
	for (i = 0; name != NULL && name[i] != '\0' && i < FILNAME_MAX; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '"' || c == '\\')
			buf[pos++] = '\\';
		buf[pos++] = c < 0x20 ? '?' : (char)c;
	}
	pos += (size_t)sprintf(buf + pos, "\",\"record\":");
	memcpy(buf + pos, json, len);
	pos += len;
	buf[pos++] = '}';
	error = dmn_send(buf, pos, -1);
	free(buf);
	return error;
}
