/*
 * soconfigd: owns the sockfilter configuration, publishes it to every
 * interposed process, gathers their counters and serves JSON (proto.c).
 *
 *   soconfigd [-d] [-t] [-c CONF] [-s SOCKET] [-m MODE]
 *
 * Map of the daemon (one libevent loop, one thread):
 *   sd.dc        S.cfg mapped read-write: the published configuration
 *   sd.snap      the configuration in force (validated with config.c)
 *   sd.procs     registered processes: their region (struct dmn_proc,
 *                mapped from the memfd they sent) and a pidfd that becomes
 *                readable when they exit
 *   sd.tot       counters folded in from exited processes
 *   sd.clients   connections on S: one request line, one response line
 *   S.reg        datagrams from processes: registrations and records
 *   inotify      on the configuration's directory (editors rename files)
 *
 * Logging follows OpenBSD's daemons: sd_warn appends strerror(errno),
 * sd_warnx does not, sd_fatal only before the loop starts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "dmn.h"
#include "proto.h"
#include "sdutil.h"

#define SD_MAXCLIENTS   1024
#define SD_MAXPROCS     8192
#define SD_MAXPERUID    2048
#define SD_OUTMAX       (4 * 1024 * 1024) /* a client not reading */
#define SD_FOLLOWMAX    (1024 * 1024)     /* a follower falling behind */
#define SD_IDLE_SECS    300
#define SD_CONFMAX      (1024 * 1024)
#define SD_RECBUF       65536
#define SD_RELOAD_DELAY 200 /* ms: editors write in several steps */

#define SD_NCTR 6 /* cumulative per-filter counters */
static const char *const sd_ctr_names[SD_NCTR] = {"tot_active_attach",
    "tot_passive_attach", "attach_failures", "bytes_in", "bytes_out", "denied"};

struct sd_ctr {
	char sc_name[FILNAME_MAX];
	long sc_nactive, sc_ndeferred;
	unsigned long sc_v[SD_NCTR];
};

struct sd_proc {
	struct sd_proc *sp_next;
	pid_t sp_pid;
	uid_t sp_uid;
	int sp_pidfd; /* -1: polled with kill(pid, 0) */
	struct event *sp_ev;
	struct dmn_proc *sp_dp;
};

struct sd_client {
	struct sd_client *cl_next, *cl_prev;
	struct bufferevent *cl_bev;
	uid_t cl_uid;
	pid_t cl_pid;
	bool cl_follow;
	bool cl_closing; /* free once the output is written */
	unsigned long cl_dropped;
};

static struct {
	struct event_base *base;
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char reg[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char cfgfile[PATH_MAX];
	char conf[PATH_MAX];
	char confdir[PATH_MAX];
	char confbase[NAME_MAX + 1];
	char moddir[PATH_MAX];
	mode_t mode;
	struct dmn_cfg *dc;
	struct cfg_snap *snap;
	char *pubtext;
	uid_t owner;
	int regfd, inofd;
	struct evconnlistener *lst;
	struct event *regev, *inoev, *reloadev, *sweepev, *sigev[4];
	struct sd_proc *procs;
	int nprocs;
	struct sd_client *clients;
	int nclients;
	struct sd_ctr *tot;
	int ntot, captot;
	unsigned long gtot[3];
	unsigned long nexited;
	unsigned long nrecords, nbadrecords;
	bool use_syslog;
} sd = {.regfd = -1, .inofd = -1, .mode = 0666};

/* ---------------------------------------------------------------------
 * Logging.
 * ------------------------------------------------------------------- */

static void sd_vlog(int pri, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void sd_log(int pri, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sd_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void
sd_vlog(int pri, const char *fmt, va_list ap)
{
	if (sd.use_syslog) {
		vsyslog(pri, fmt, ap);
		return;
	}
	fprintf(stderr, "soconfigd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void
sd_log(int pri, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sd_vlog(pri, fmt, ap);
	va_end(ap);
}

static void
sd_warn(const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sd_log(LOG_WARNING, "%s: %s", buf, strerror(saved));
}

static void
sd_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sd_vlog(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

static void sd_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sd_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------------
 * Counters.
 * ------------------------------------------------------------------- */

static struct sd_ctr *
sd_ctr_get(struct sd_ctr **arr, int *n, int *cap, const char *name)
{
	struct sd_ctr *c;
	int i;

	for (i = 0; i < *n; i++)
		if (strcmp((*arr)[i].sc_name, name) == 0)
			return &(*arr)[i];
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 32;

		if ((c = realloc(*arr, (size_t)ncap * sizeof(*c))) == NULL)
			return NULL;
		*arr = c;
		*cap = ncap;
	}
	c = &(*arr)[(*n)++];
	memset(c, 0, sizeof(*c));
	snprintf(c->sc_name, sizeof(c->sc_name), "%s", name);
	return c;
}

/* Add a region's counters to arr; live: nactive/ndeferred too. */
static void
sd_ctr_add(struct sd_ctr **arr, int *n, int *cap, unsigned long *g,
    const struct dmn_proc *dp, bool live)
{
	uint32_t i, nf = atomic_load(&dp->dp_nfilt);

	if (nf > DMN_MAXFILT)
		nf = DMN_MAXFILT;
	for (i = 0; i < nf; i++) {
		const struct st_filter *sf = &dp->dp_filters[i];
		char name[FILNAME_MAX];
		struct sd_ctr *c;

		/* The process writes its region: trust nothing in it. */
		memcpy(name, sf->sf_name, sizeof(name));
		name[sizeof(name) - 1] = '\0';
		if (name[0] == '\0' ||
		    (c = sd_ctr_get(arr, n, cap, name)) == NULL)
			continue;
		if (live) {
			c->sc_nactive += atomic_load_explicit(&sf->sf_nactive,
			    memory_order_relaxed);
			c->sc_ndeferred +=
			    atomic_load_explicit(&sf->sf_ndeferred,
			        memory_order_relaxed);
		}
		c->sc_v[0] += atomic_load_explicit(&sf->sf_tot_active_attach,
		    memory_order_relaxed);
		c->sc_v[1] += atomic_load_explicit(&sf->sf_tot_passive_attach,
		    memory_order_relaxed);
		c->sc_v[2] += atomic_load_explicit(&sf->sf_attach_failures,
		    memory_order_relaxed);
		c->sc_v[3] += atomic_load_explicit(&sf->sf_bytes_in,
		    memory_order_relaxed);
		c->sc_v[4] += atomic_load_explicit(&sf->sf_bytes_out,
		    memory_order_relaxed);
		c->sc_v[5] +=
		    atomic_load_explicit(&sf->sf_denied, memory_order_relaxed);
	}
	g[0] += atomic_load(&dp->dp_global.sg_defer_closed);
	g[1] += atomic_load(&dp->dp_global.sg_defer_close_backlog);
	g[2] += atomic_load(&dp->dp_global.sg_defer_close_failed);
}

/* ---------------------------------------------------------------------
 * Processes.
 * ------------------------------------------------------------------- */

static void
sd_proc_free(struct sd_proc *sp, bool exited)
{
	struct sd_proc **pp;

	for (pp = &sd.procs; *pp != NULL; pp = &(*pp)->sp_next)
		if (*pp == sp) {
			*pp = sp->sp_next;
			break;
		}
	sd.nprocs--;
	/* The last values of the counters stay in the totals. */
	sd_ctr_add(&sd.tot, &sd.ntot, &sd.captot, sd.gtot, sp->sp_dp, false);
	if (exited)
		sd.nexited++;
	if (sp->sp_ev != NULL)
		event_free(sp->sp_ev);
	if (sp->sp_pidfd >= 0)
		close(sp->sp_pidfd);
	munmap(sp->sp_dp, sizeof(struct dmn_proc));
	free(sp);
}

static struct sd_proc *
sd_proc_find(pid_t pid)
{
	struct sd_proc *sp;

	for (sp = sd.procs; sp != NULL; sp = sp->sp_next)
		if (sp->sp_pid == pid)
			return sp;
	return NULL;
}

static void
sd_proc_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_proc_free(arg, true);
}

/* A region from a registration, checked and mapped, or NULL. */
static struct dmn_proc *
sd_region_map(int fd, pid_t pid)
{
	struct dmn_proc *dp;
	struct stat st;
	int seals;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size != (off_t)sizeof(struct dmn_proc))
		return NULL;
	/* Sealed against shrinking: touching it can never raise SIGBUS.
	 * Only memfds (shmem) carry seals, so no page fault can block. */
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return NULL;
	dp = mmap(NULL, sizeof(*dp), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dp == MAP_FAILED)
		return NULL;
	if (dp->dp_magic != DMN_PROC_MAGIC || dp->dp_layout != DMN_LAYOUT ||
	    dp->dp_size != sizeof(*dp) || dp->dp_pid != pid) {
		munmap(dp, sizeof(*dp));
		return NULL;
	}
	return dp;
}

static void
sd_register(int fd, pid_t pid, uid_t uid)
{
	struct sd_proc *sp, *old;
	struct dmn_proc *dp;
	int n = 0;

	if ((dp = sd_region_map(fd, pid)) == NULL) {
		sd_log(LOG_NOTICE, "pid %d: bad registration ignored",
		    (int)pid);
		return;
	}
	for (sp = sd.procs; sp != NULL; sp = sp->sp_next)
		if (sp->sp_uid == uid)
			n++;
	/* exec: the same pid with a new image and a new region. */
	if ((old = sd_proc_find(pid)) != NULL)
		sd_proc_free(old, false);
	if (sd.nprocs >= SD_MAXPROCS || n >= SD_MAXPERUID ||
	    (sp = calloc(1, sizeof(*sp))) == NULL) {
		sd_log(LOG_WARNING, "pid %d: too many processes, not tracked",
		    (int)pid);
		munmap(dp, sizeof(*dp));
		return;
	}
	sp->sp_pid = pid;
	sp->sp_uid = uid;
	sp->sp_dp = dp;
	sp->sp_next = sd.procs;
	sd.procs = sp;
	sd.nprocs++;
	atomic_store(&dp->dp_ack, atomic_load(&sd.dc->dc_epoch));
	sp->sp_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (sp->sp_pidfd < 0) {
		if (errno == ESRCH) {
			/* Gone already (a short-lived program): its final
			 * counters are in the region. */
			sd_proc_free(sp, true);
			return;
		}
		return; /* no pidfd: the sweep polls it */
	}
	sp->sp_ev =
	    event_new(sd.base, sp->sp_pidfd, EV_READ, sd_proc_exit_cb, sp);
	if (sp->sp_ev == NULL || event_add(sp->sp_ev, NULL) != 0) {
		close(sp->sp_pidfd);
		sp->sp_pidfd = -1;
	}
}

static void
sd_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sd_proc *sp, *next;

	for (sp = sd.procs; sp != NULL; sp = next) {
		next = sp->sp_next;
		if (sp->sp_pidfd < 0 && kill(sp->sp_pid, 0) != 0 &&
		    errno == ESRCH)
			sd_proc_free(sp, true);
	}
}

/* ---------------------------------------------------------------------
 * Clients.
 * ------------------------------------------------------------------- */

static void
sd_client_free(struct sd_client *cl)
{
	if (cl->cl_prev != NULL)
		cl->cl_prev->cl_next = cl->cl_next;
	else
		sd.clients = cl->cl_next;
	if (cl->cl_next != NULL)
		cl->cl_next->cl_prev = cl->cl_prev;
	sd.nclients--;
	bufferevent_free(cl->cl_bev);
	free(cl);
}

static void
sd_send(struct sd_client *cl, json_t *o)
{
	struct evbuffer *out = bufferevent_get_output(cl->cl_bev);
	char *s;

	if (o == NULL)
		return;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		s = strdup("{\"ok\":false,\"code\":\"ENOMEM\",\"error\":\"out "
		           "of memory\"}");
	if (s == NULL)
		return;
	evbuffer_add(out, s, strlen(s));
	evbuffer_add(out, "\n", 1);
	free(s);
}

static json_t *sd_error(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static json_t *
sd_error(int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_pack("{s:b,s:s,s:s}", "ok", 0, "code", sdu_errname(code),
	    "error", msg);
}

/* Close after the pending output (an error response) is written: shut
 * down writing, then discard what the client still sends until its EOF
 * (closing with unread input would reset the connection and lose the
 * response), for at most a few seconds. */
static void
sd_client_close(struct sd_client *cl)
{
	struct timeval tv = {5, 0};

	cl->cl_closing = true;
	bufferevent_set_timeouts(cl->cl_bev, &tv, &tv);
	bufferevent_setwatermark(cl->cl_bev, EV_READ, 0, 0);
	if (evbuffer_get_length(bufferevent_get_output(cl->cl_bev)) == 0)
		shutdown(bufferevent_getfd(cl->cl_bev), SHUT_WR);
}

/* ---------------------------------------------------------------------
 * Configuration.
 * ------------------------------------------------------------------- */

static void
sd_publish(const char *text)
{
	size_t len = strlen(text);
	uint64_t seq;

	if (len >= DMN_CFG_TEXTMAX) {
		sd_log(LOG_ERR,
		    "configuration too large to publish (%zu bytes, at most "
		    "%d)",
		    len, DMN_CFG_TEXTMAX - 1);
		return;
	}
	seq = atomic_load(&sd.dc->dc_seq) | 1; /* odd: being written */
	atomic_store(&sd.dc->dc_seq, seq);
	DMN_FENCE(memory_order_release);
	memcpy(dmn_cfg_text(sd.dc), text, len);
	dmn_cfg_text(sd.dc)[len] = '\0';
	sd.dc->dc_len = (uint32_t)len;
	sd.dc->dc_version++;
	atomic_store_explicit(&sd.dc->dc_seq, seq + 1, memory_order_release);
}

/* Install cs (takes the reference) and publish it if it differs. */
static void
sd_apply(struct cfg_snap *cs)
{
	char *text = ce_canonical(cs);

	if (cs->cs_warnings != NULL)
		sd_log(LOG_WARNING, "%s", cs->cs_warnings);
	if (sd.snap != NULL)
		cfg_rele(sd.snap);
	sd.snap = cs;
	if (text == NULL) {
		sd_log(LOG_ERR, "out of memory: configuration not published");
		return;
	}
	if (sd.pubtext != NULL && strcmp(text, sd.pubtext) == 0) {
		free(text);
		return;
	}
	free(sd.pubtext);
	sd.pubtext = text;
	sd_publish(text);
	sd_log(LOG_INFO, "configuration version %llu published: %d filters",
	    (unsigned long long)sd.dc->dc_version, cs->cs_nfilters);
}

/* Reread the file; on error keep what is in force.  0 or an errno. */
static int
sd_reload(char *err, size_t errlen)
{
	struct cfg_snap *cs;
	int error;

	error = cfg_load_file(sd.conf, &cs, err, errlen);
	if (error != 0) {
		sd_log(LOG_ERR, "%s; keeping configuration version %llu", err,
		    (unsigned long long)sd.dc->dc_version);
		return error;
	}
	sd_apply(cs);
	return 0;
}

static void
sd_reload_cb(evutil_socket_t fd, short what, void *arg)
{
	char err[1024];

	(void)sd_reload(err, sizeof(err));
}

static void
sd_inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	char buf[4096]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	struct timeval tv = {0, SD_RELOAD_DELAY * 1000};
	bool ours = false;
	ssize_t n;
	char *p;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			if (ev->len > 0 && strcmp(ev->name, sd.confbase) == 0)
				ours = true;
		}
	if (ours)
		evtimer_add(sd.reloadev, &tv);
}

/* Read the whole configuration file (missing: empty). */
static char *
sd_read_conf(char *err, size_t errlen)
{
	FILE *fp = fopen(sd.conf, "re");
	char *buf;
	size_t n;

	if (fp == NULL) {
		if (errno == ENOENT)
			return strdup("");
		sd_errf(err, errlen, "%s:0: cannot open: %s", sd.conf,
		    strerror(errno));
		return NULL;
	}
	if ((buf = malloc(SD_CONFMAX + 1)) == NULL) {
		fclose(fp);
		return NULL;
	}
	n = fread(buf, 1, SD_CONFMAX + 1, fp);
	fclose(fp);
	if (n > SD_CONFMAX) {
		sd_errf(err, errlen, "%s:0: larger than %d bytes", sd.conf,
		    SD_CONFMAX);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* Write text as the configuration file, atomically: a temporary file in
 * the same directory, validated by the real parser, renamed over it. */
static int
sd_write_conf(const char *text, struct cfg_snap **csp, char *err, size_t errlen)
{
	char tmp[PATH_MAX + NAME_MAX + 16], *fixed;
	struct stat st;
	size_t len = strlen(text), off = 0;
	int fd, dfd, error;

	snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", sd.confdir, sd.confbase);
	if ((fd = mkstemp(tmp)) < 0) {
		sd_errf(err, errlen, "%s: cannot create a temporary file: %s",
		    sd.confdir, strerror(errno));
		return EIO;
	}
	if (stat(sd.conf, &st) == 0) {
		(void)fchmod(fd, st.st_mode & 07777);
		if (geteuid() == 0)
			(void)!fchown(fd, st.st_uid, st.st_gid);
	} else {
		(void)fchmod(fd, 0644);
	}
	while (off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	if (off < len || fsync(fd) != 0) {
		sd_errf(err, errlen, "%s: cannot write: %s", tmp,
		    strerror(errno));
		close(fd);
		unlink(tmp);
		return EIO;
	}
	close(fd);
	error = cfg_load_file(tmp, csp, err, errlen);
	if ((fixed = sdu_replace(err, tmp, sd.conf)) != NULL) {
		sd_errf(err, errlen, "%s", fixed);
		free(fixed);
	}
	if (error != 0) {
		unlink(tmp);
		return EINVAL;
	}
	free((*csp)->cs_path);
	(*csp)->cs_path = strdup(sd.conf);
	if ((*csp)->cs_warnings != NULL &&
	    (fixed = sdu_replace((*csp)->cs_warnings, tmp, sd.conf)) != NULL) {
		free((*csp)->cs_warnings);
		(*csp)->cs_warnings = fixed;
	}
	if (rename(tmp, sd.conf) != 0) {
		sd_errf(err, errlen, "%s: cannot replace: %s", sd.conf,
		    strerror(errno));
		unlink(tmp);
		cfg_rele(*csp);
		return EIO;
	}
	if ((dfd = open(sd.confdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Is MODULE.so on the module path of the configuration in force? */
static bool
sd_module_exists(const char *module, char *dirs, size_t len)
{
	char path[PATH_MAX + 80];
	int i;

	dirs[0] = '\0';
	for (i = 0; i <= sd.snap->cs_nmodpath; i++) {
		const char *d = i < sd.snap->cs_nmodpath
		                    ? sd.snap->cs_modpath[i]
		                    : sd.moddir;

		snprintf(path, sizeof(path), "%s/%s.so", d, module);
		if (access(path, R_OK) == 0)
			return true;
		if (strlen(dirs) + strlen(d) + 3 < len) {
			if (dirs[0] != '\0')
				strcat(dirs, ", ");
			strcat(dirs, d);
		}
	}
	return false;
}

static json_t *
sd_change(const struct proto_req *req)
{
	struct cfg_snap *cs;
	char err[1024], dirs[1024], *text, *out = NULL;
	int error;

	if ((text = sd_read_conf(err, sizeof(err))) == NULL)
		return sd_error(EIO, "%s", err);
	if (req->pr_cmd == PROTO_SET) {
		const struct ce_filter *f = &req->pr_filter;

		if (!sd_module_exists(f->cf_module, dirs, sizeof(dirs))) {
			free(text);
			return sd_error(ENOENT,
			    "unknown filter module '%s': no %s.so in %s",
			    f->cf_module, f->cf_module, dirs);
		}
		error = ce_add(text, f, &out, err, sizeof(err));
	} else {
		error = ce_remove(text, req->pr_name, &out, err, sizeof(err));
	}
	free(text);
	if (error != 0)
		return sd_error(error, "%s", err);
	error = sd_write_conf(out, &cs, err, sizeof(err));
	free(out);
	if (error != 0)
		return sd_error(error, "%s", err);
	sd_apply(cs);
	sd_log(LOG_NOTICE, "filter %s %s",
	    req->pr_cmd == PROTO_SET ? req->pr_filter.cf_name : req->pr_name,
	    req->pr_cmd == PROTO_SET ? "configured" : "unconfigured");
	return json_pack("{s:b,s:I}", "ok", 1, "version",
	    (json_int_t)sd.dc->dc_version);
}

/* ---------------------------------------------------------------------
 * Requests.
 * ------------------------------------------------------------------- */

static void sd_reg_drain(void);

static json_t *
sd_stats(void)
{
	struct sd_ctr *arr = NULL, *c;
	int n = 0, cap = 0, i, j;
	unsigned long g[3];
	struct sd_proc *sp;
	json_t *filters = json_object(), *o;

	memcpy(g, sd.gtot, sizeof(g));
	/* Configured filters show even before anything used them. */
	for (i = 0; i < sd.snap->cs_nfilters; i++)
		(void)sd_ctr_get(&arr, &n, &cap,
		    sd.snap->cs_filters[i].cf_name);
	for (i = 0; i < sd.ntot; i++) {
		if ((c = sd_ctr_get(&arr, &n, &cap, sd.tot[i].sc_name)) == NULL)
			continue;
		for (j = 0; j < SD_NCTR; j++)
			c->sc_v[j] += sd.tot[i].sc_v[j];
	}
	for (sp = sd.procs; sp != NULL; sp = sp->sp_next)
		sd_ctr_add(&arr, &n, &cap, g, sp->sp_dp, true);
	for (i = 0; i < n; i++) {
		o = json_pack("{s:I,s:I}", "nactive",
		    (json_int_t)arr[i].sc_nactive, "ndeferred",
		    (json_int_t)arr[i].sc_ndeferred);
		for (j = 0; j < SD_NCTR; j++)
			json_object_set_new(o, sd_ctr_names[j],
			    json_integer((json_int_t)arr[i].sc_v[j]));
		json_object_set_new(filters, arr[i].sc_name, o);
	}
	free(arr);
	return json_pack("{s:b,s:i,s:I,s:{s:I,s:I,s:I},s:o}", "ok", 1,
	    "processes", sd.nprocs, "exited", (json_int_t)sd.nexited, "global",
	    "defer_closed", (json_int_t)g[0], "defer_close_backlog",
	    (json_int_t)g[1], "defer_close_failed", (json_int_t)g[2], "filters",
	    filters);
}

static json_t *
sd_config(void)
{
	const struct cfg_snap *cs = sd.snap;
	json_t *filters = json_array(), *mp = json_array();
	char hb[FILNAME_MAX + 16];
	int i, j;

	for (i = 0; i < cs->cs_nmodpath; i++)
		json_array_append_new(mp, json_string(cs->cs_modpath[i]));
	for (i = 0; i < cs->cs_nfilters; i++) {
		const struct cfg_filter *cf = &cs->cs_filters[i];
		json_t *tuples = json_array(), *params = json_object(), *o;
		const char *h = cfg_hint_str(cf, hb, sizeof(hb));

		for (j = 0; j < cf->cf_ntuples; j++) {
			char tb[64];

			sdu_tuple(cf->cf_tuples[j].ct_family,
			    cf->cf_tuples[j].ct_type, cf->cf_tuples[j].ct_proto,
			    tb, sizeof(tb));
			json_array_append_new(tuples, json_string(tb));
		}
		for (j = 0; j < cf->cf_nparams; j++)
			json_object_set_new(params, cf->cf_params[j].cp_key,
			    json_string(cf->cf_params[j].cp_val));
		o = json_pack("{s:s,s:s,s:s,s:o,s:o,s:i}", "name", cf->cf_name,
		    "module", cf->cf_module, "attach",
		    cf->cf_auto ? "auto" : "prog", "sockets", tuples, "params",
		    params, "line", cf->cf_line);
		if (h != NULL)
			json_object_set_new(o, "placement", json_string(h));
		json_array_append_new(filters, o);
	}
	return json_pack("{s:b,s:s,s:I,s:o,s:o}", "ok", 1, "path", sd.conf,
	    "version", (json_int_t)sd.dc->dc_version, "module_path", mp,
	    "filters", filters);
}

static int
sd_nsocks(const struct dmn_proc *dp)
{
	int i, n = 0;

	for (i = 0; i < DMN_MAXSOCK; i++)
		if (dp->dp_socks[i].se_n > 0 && dp->dp_socks[i].se_fd >= 0)
			n++;
	return n;
}

static json_t *
sd_procs(void)
{
	json_t *arr = json_array();
	struct sd_proc *sp;

	for (sp = sd.procs; sp != NULL; sp = sp->sp_next) {
		char prog[sizeof(sp->sp_dp->dp_prog)];

		memcpy(prog, sp->sp_dp->dp_prog, sizeof(prog));
		prog[sizeof(prog) - 1] = '\0';
		json_array_append_new(arr,
		    json_pack("{s:i,s:s?,s:i,s:i}", "pid", (int)sp->sp_pid,
		        "prog", sdu_printable(prog), "uid", (int)sp->sp_uid,
		        "sockets", sd_nsocks(sp->sp_dp)));
	}
	return json_pack("{s:b,s:o}", "ok", 1, "processes", arr);
}

static json_t *
sd_pfiles(long pid)
{
	struct sd_proc *sp = sd_proc_find((pid_t)pid);
	const struct dmn_proc *dp;
	json_t *socks;
	char prog[64];
	int i;

	if (sp == NULL)
		return sd_error(ENOENT,
		    "no interposed process %ld is known to soconfigd", pid);
	dp = sp->sp_dp;
	socks = json_array();
	for (i = 0; i < DMN_MAXSOCK; i++) {
		const struct dmn_sock *se = &dp->dp_socks[i];
		struct dmn_sock copy;
		uint32_t s1, s2;
		int tries, k;
		json_t *fl;
		char fb[16], tb[16], pb[16];

		for (tries = 0; tries < 8; tries++) {
			s1 = atomic_load_explicit(&se->se_seq,
			    memory_order_acquire);
			memcpy(&copy, se, sizeof(copy));
			DMN_FENCE(memory_order_acquire);
			s2 = atomic_load_explicit(&se->se_seq,
			    memory_order_relaxed);
			if (s1 == s2 && !(s1 & 1))
				break;
		}
		if (tries == 8 || copy.se_fd < 0 || copy.se_n == 0)
			continue;
		if (copy.se_n > DMN_SOCKFIL)
			copy.se_n = DMN_SOCKFIL;
		fl = json_array();
		for (k = 0; k < copy.se_n; k++) {
			char name[FILNAME_MAX] = "?";
			unsigned idx = copy.se_idx[k];

			if (idx < DMN_MAXFILT &&
			    idx < atomic_load(&dp->dp_nfilt)) {
				memcpy(name, dp->dp_filters[idx].sf_name,
				    sizeof(name));
				name[sizeof(name) - 1] = '\0';
			}
			json_array_append_new(fl,
			    json_pack("{s:s?,s:s,s:b}", "name",
			        sdu_printable(name), "attach",
			        (copy.se_flags[k] & FILF_PROG) ? "prog"
			                                       : "auto",
			        "bypass",
			        (copy.se_flags[k] & FILF_BYPASS) != 0));
		}
		sdu_tuple_parts(copy.se_family, copy.se_type, copy.se_proto, fb,
		    tb, pb);
		json_array_append_new(socks,
		    json_pack("{s:i,s:s,s:s,s:s,s:o}", "fd", (int)copy.se_fd,
		        "family", fb, "type", tb, "protocol", pb, "filters",
		        fl));
	}
	memcpy(prog, dp->dp_prog, sizeof(prog));
	prog[sizeof(prog) - 1] = '\0';
	return json_pack("{s:b,s:i,s:s?,s:i,s:o,s:I}", "ok", 1, "pid", (int)pid,
	    "prog", sdu_printable(prog), "uid", (int)sp->sp_uid, "sockets",
	    socks, "overflow", (json_int_t)atomic_load(&dp->dp_sock_overflow));
}

static void
sd_request(struct sd_client *cl, const char *line, size_t len)
{
	struct proto_req *req;
	char err[512];

	if ((req = malloc(sizeof(*req))) == NULL) {
		sd_send(cl, sd_error(ENOMEM, "out of memory"));
		return;
	}
	if (proto_parse(line, len, req, err, sizeof(err)) != 0) {
		sd_send(cl, sd_error(EINVAL, "%s", err));
		free(req);
		return;
	}
	if (proto_is_change(req->pr_cmd) && cl->cl_uid != 0 &&
	    cl->cl_uid != sd.owner) {
		sd_send(cl, sd_error(EPERM,
		                "permission denied: changes are accepted from "
		                "root and uid %d only (you are uid %d)",
		                (int)sd.owner, (int)cl->cl_uid));
		free(req);
		return;
	}
	/* Registrations already queued count (a program that just ran). */
	if (req->pr_cmd != PROTO_PING && req->pr_cmd != PROTO_FOLLOW)
		sd_reg_drain();
	switch (req->pr_cmd) {
	case PROTO_PING:
		sd_send(cl,
		    json_pack("{s:b,s:s,s:i,s:I,s:I,s:s}", "ok", 1, "version",
		        SDU_VERSION, "pid", (int)getpid(), "epoch",
		        (json_int_t)atomic_load(&sd.dc->dc_epoch),
		        "config_version", (json_int_t)sd.dc->dc_version,
		        "config", sd.conf));
		break;
	case PROTO_STATS:
		sd_send(cl, sd_stats());
		break;
	case PROTO_CONFIG:
		sd_send(cl, sd_config());
		break;
	case PROTO_PROCS:
		sd_send(cl, sd_procs());
		break;
	case PROTO_PFILES:
		sd_send(cl, sd_pfiles(req->pr_pid));
		break;
	case PROTO_FOLLOW:
		cl->cl_follow = true;
		bufferevent_set_timeouts(cl->cl_bev, NULL, NULL);
		sd_send(cl, json_pack("{s:b,s:b}", "ok", 1, "follow", 1));
		break;
	case PROTO_SET:
	case PROTO_UNSET:
		sd_send(cl, sd_change(req));
		break;
	case PROTO_RELOAD: {
		int error = sd_reload(err, sizeof(err));

		sd_send(cl, error != 0
		                ? sd_error(error, "%s", err)
		                : json_pack("{s:b,s:I}", "ok", 1, "version",
		                      (json_int_t)sd.dc->dc_version));
		break;
	}
	}
	free(req);
}

static void
sd_read_cb(struct bufferevent *bev, void *arg)
{
	struct sd_client *cl = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	char *line;
	size_t len;

	if (cl->cl_closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (!cl->cl_closing) {
		eol = evbuffer_search(in, "\n", 1, NULL);
		if (eol.pos < 0) {
			if (evbuffer_get_length(in) >= PROTO_MAXREQ) {
				sd_send(cl, sd_error(EINVAL,
				                "request too long (at most %d "
				                "bytes): closing",
				                PROTO_MAXREQ - 1));
				sd_client_close(cl);
			}
			return;
		}
		len = (size_t)eol.pos;
		if (len >= PROTO_MAXREQ) {
			sd_send(cl, sd_error(EINVAL,
			                "request too long (at most %d bytes): "
			                "closing",
			                PROTO_MAXREQ - 1));
			sd_client_close(cl);
			return;
		}
		if ((line = malloc(len + 1)) == NULL)
			return;
		evbuffer_remove(in, line, len + 1);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		/* Blank lines are not requests: nothing to answer. */
		if (strspn(line, " \t") < len)
			sd_request(cl, line, len);
		free(line);
		if (evbuffer_get_length(bufferevent_get_output(bev)) >
		    SD_OUTMAX) {
			sd_client_free(cl); /* asks without reading */
			return;
		}
	}
}

static void
sd_write_cb(struct bufferevent *bev, void *arg)
{
	struct sd_client *cl = arg;

	if (cl->cl_closing)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
sd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		sd_client_free(arg);
}

static void
sd_accept_cb(struct evconnlistener *lst, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct timeval idle = {SD_IDLE_SECS, 0};
	struct ucred uc = {0, (uid_t)-1, (gid_t)-1};
	socklen_t len = sizeof(uc);
	struct sd_client *cl;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0 ||
	    (cl = calloc(1, sizeof(*cl))) == NULL) {
		close(fd);
		return;
	}
	cl->cl_bev = bufferevent_socket_new(sd.base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cl->cl_bev == NULL) {
		close(fd);
		free(cl);
		return;
	}
	cl->cl_uid = uc.uid;
	cl->cl_pid = uc.pid;
	cl->cl_next = sd.clients;
	if (sd.clients != NULL)
		sd.clients->cl_prev = cl;
	sd.clients = cl;
	sd.nclients++;
	bufferevent_setcb(cl->cl_bev, sd_read_cb, sd_write_cb, sd_event_cb, cl);
	if (sd.nclients > SD_MAXCLIENTS) {
		sd_send(cl, sd_error(ENOSPC, "too many clients (%d): try later",
		                SD_MAXCLIENTS));
		sd_client_close(cl);
		bufferevent_enable(cl->cl_bev, EV_READ | EV_WRITE);
		return;
	}
	/* Stop reading past one maximal request until it is handled. */
	bufferevent_setwatermark(cl->cl_bev, EV_READ, 0, PROTO_MAXREQ + 1);
	bufferevent_set_timeouts(cl->cl_bev, &idle, NULL);
	bufferevent_enable(cl->cl_bev, EV_READ | EV_WRITE);
}

/* ---------------------------------------------------------------------
 * Datagrams from processes.
 * ------------------------------------------------------------------- */

static void
sd_record(const char *buf, size_t len, pid_t pid)
{
	json_t *o, *f, *r, *out;
	struct sd_client *cl;
	char *s;
	size_t n;

	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
	f = json_object_get(o, "filter");
	r = json_object_get(o, "record");
	if (!json_is_string(f) || !json_is_object(r)) {
		sd.nbadrecords++;
		json_decref(o);
		return;
	}
	sd.nrecords++;
	/* The pid the kernel vouches for, not what the record says. */
	out = json_pack("{s:O,s:i,s:O}", "filter", f, "pid", (int)pid, "record",
	    r);
	json_decref(o);
	s = out != NULL ? json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(9))
	                : NULL;
	json_decref(out);
	if (s == NULL)
		return;
	n = strlen(s);
	for (cl = sd.clients; cl != NULL; cl = cl->cl_next) {
		struct evbuffer *ob;

		if (!cl->cl_follow || cl->cl_closing)
			continue;
		ob = bufferevent_get_output(cl->cl_bev);
		if (evbuffer_get_length(ob) > SD_FOLLOWMAX) {
			cl->cl_dropped++;
			continue;
		}
		if (cl->cl_dropped > 0) {
			char note[64];

			snprintf(note, sizeof(note), "{\"dropped\":%lu}\n",
			    cl->cl_dropped);
			evbuffer_add(ob, note, strlen(note));
			cl->cl_dropped = 0;
		}
		evbuffer_add(ob, s, n);
		evbuffer_add(ob, "\n", 1);
	}
	free(s);
}

/* Read every queued datagram (also called before answering, so that a
 * program that registered and exited before the request is counted). */
static void
sd_reg_drain(void)
{
	static char buf[SD_RECBUF];
	union {
		struct cmsghdr align;
		char b[CMSG_SPACE(sizeof(struct ucred)) +
		       CMSG_SPACE(4 * sizeof(int))];
	} cm;
	int round;

	for (round = 0; round < 4096; round++) {
		struct iovec iov = {buf, sizeof(buf) - 1};
		struct msghdr msg = {.msg_iov = &iov,
		    .msg_iovlen = 1,
		    .msg_control = cm.b,
		    .msg_controllen = sizeof(cm.b)};
		struct ucred uc = {0, (uid_t)-1, (gid_t)-1};
		int fds[4], nfds = 0, i;
		bool creds = false;
		struct cmsghdr *c;
		ssize_t n;

		n = recvmsg(sd.regfd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n < 0)
			return;
		for (c = CMSG_FIRSTHDR(&msg); c != NULL;
		     c = CMSG_NXTHDR(&msg, c)) {
			if (c->cmsg_level != SOL_SOCKET)
				continue;
			if (c->cmsg_type == SCM_CREDENTIALS &&
			    c->cmsg_len >= CMSG_LEN(sizeof(uc))) {
				memcpy(&uc, CMSG_DATA(c), sizeof(uc));
				creds = true;
			} else if (c->cmsg_type == SCM_RIGHTS) {
				size_t k =
				    (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				for (i = 0; i < (int)k; i++) {
					int fd;

					memcpy(&fd,
					    CMSG_DATA(c) +
					        (size_t)i * sizeof(int),
					    sizeof(int));
					if (nfds < 4)
						fds[nfds++] = fd;
					else
						close(fd);
				}
			}
		}
		if (!creds || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			/* Never happens with SO_PASSCRED; cut short: drop. */
		} else if (nfds == 1 && n >= 9 &&
		           memcmp(buf, "{\"hello\":", 9) == 0) {
			sd_register(fds[0], uc.pid, uc.uid);
		} else if (nfds == 0 && n > 0) {
			sd_record(buf, (size_t)n, uc.pid);
		}
		for (i = 0; i < nfds; i++)
			close(fds[i]);
	}
}

static void
sd_reg_cb(evutil_socket_t fd, short what, void *arg)
{
	sd_reg_drain();
}

/* ---------------------------------------------------------------------
 * Start-up and shutdown.
 * ------------------------------------------------------------------- */

static void
sd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[1024];

	if (sig == SIGHUP) {
		sd_log(LOG_INFO, "SIGHUP: reloading %s", sd.conf);
		(void)sd_reload(err, sizeof(err));
		return;
	}
	event_base_loopexit(sd.base, NULL);
}

/* S.cfg: reused when it is there (processes keep their mapping of it
 * across a restart of the daemon), with the next epoch. */
static void
sd_open_cfgfile(void)
{
	struct dmn_cfg *dc;
	struct stat st;
	uint64_t epoch = 1, version = 0;
	int fd;

	fd = open(sd.cfgfile, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		sd_fatal("%s: %s", sd.cfgfile, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid())
		sd_fatal("%s: not a regular file of uid %d", sd.cfgfile,
		    (int)geteuid());
	(void)fchmod(fd, 0644);
	if (st.st_size != DMN_CFG_SIZE && ftruncate(fd, DMN_CFG_SIZE) != 0)
		sd_fatal("%s: %s", sd.cfgfile, strerror(errno));
	dc =
	    mmap(NULL, DMN_CFG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (dc == MAP_FAILED)
		sd_fatal("%s: mmap: %s", sd.cfgfile, strerror(errno));
	if (dc->dc_magic == DMN_CFG_MAGIC && dc->dc_layout == DMN_LAYOUT) {
		epoch = atomic_load(&dc->dc_epoch) + 1;
		version = dc->dc_version;
		/* A daemon killed while writing left dc_seq odd; else the
		 * text is what processes have: not republished if equal. */
		if (atomic_load(&dc->dc_seq) & 1)
			atomic_fetch_add(&dc->dc_seq, 1);
		else if (dc->dc_len > 0 && dc->dc_len < DMN_CFG_TEXTMAX)
			sd.pubtext = strndup(dmn_cfg_text(dc), dc->dc_len);
	} else {
		memset(dc, 0, DMN_CFG_HDRSZ);
		dc->dc_magic = DMN_CFG_MAGIC;
		dc->dc_layout = DMN_LAYOUT;
	}
	atomic_store(&dc->dc_state, DMN_ST_STOPPED);
	atomic_store(&dc->dc_epoch, epoch);
	dc->dc_version = version;
	dc->dc_pid = (int32_t)getpid();
	sd.dc = dc;
}

/* Take path for a socket: refuse when a daemon answers there, remove a
 * stale socket, nothing else. */
static void
sd_claim(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat st;
	int s;

	if (lstat(path, &st) != 0)
		return;
	if (!S_ISSOCK(st.st_mode))
		sd_fatal("%s exists and is not a socket", path);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0 && connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		sd_fatal("another soconfigd answers on %s", path);
	if (s >= 0)
		close(s);
	if (unlink(path) != 0 && errno != ENOENT)
		sd_fatal("cannot remove stale %s: %s", path, strerror(errno));
}

static int
sd_bind(const char *path, int type)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	mode_t old;
	int s;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	s = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		sd_fatal("socket: %s", strerror(errno));
	/* Created owner-only, opened up to the mode afterwards: never
	 * wider than asked, not even for an instant. */
	old = umask(0177);
	if (bind(s, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		sd_fatal("bind %s: %s", path, strerror(errno));
	umask(old);
	if (chmod(path, sd.mode) != 0)
		sd_fatal("chmod %s: %s", path, strerror(errno));
	return s;
}

static void
sd_setup_sockets(void)
{
	char dir[PATH_MAX];
	int one = 1, size = 8 * 1024 * 1024, s;

	snprintf(dir, sizeof(dir), "%s", sd.sock);
	if (mkdir(dirname(dir), 0755) != 0 && errno != EEXIST)
		sd_fatal("mkdir %s: %s", dir, strerror(errno));
	sd_claim(sd.sock);
	sd_claim(sd.reg);
	sd_open_cfgfile();

	s = sd_bind(sd.reg, SOCK_DGRAM);
	if (setsockopt(s, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) != 0)
		sd_fatal("SO_PASSCRED: %s", strerror(errno));
	/* Records come in bursts: room for many (root may exceed rmem_max). */
	if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
		(void)setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	sd.regfd = s;
	sd.regev = event_new(sd.base, s, EV_READ | EV_PERSIST, sd_reg_cb, NULL);
	event_add(sd.regev, NULL);

	s = sd_bind(sd.sock, SOCK_STREAM);
	sd.lst = evconnlistener_new(sd.base, sd_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, s);
	if (sd.lst == NULL)
		sd_fatal("listen %s: %s", sd.sock, strerror(errno));
}

static void
sd_setup_inotify(void)
{
	sd.reloadev = evtimer_new(sd.base, sd_reload_cb, NULL);
	sd.inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sd.inofd < 0 || inotify_add_watch(sd.inofd, sd.confdir,
	                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
	                            IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
		sd_warn("inotify on %s (changes need SIGHUP)", sd.confdir);
		return;
	}
	sd.inoev = event_new(sd.base, sd.inofd, EV_READ | EV_PERSIST,
	    sd_inotify_cb, NULL);
	event_add(sd.inoev, NULL);
}

static void
sd_usage(void)
{
	fprintf(stderr,
	    "usage: soconfigd [-dt] [-c CONF] [-s SOCKET] [-m MODE]\n"
	    "  -c CONF    configuration file (default: $SOCKFILTER_CONF, "
	    "else\n"
	    "             P/etc/sockfilter.conf beside the installation, "
	    "else %s/sockfilter.conf)\n"
	    "  -s SOCKET  the daemon's socket (default: $SOCKFILTER_SOCKET, "
	    "else %s)\n"
	    "  -m MODE    permissions of the socket (default 0666: reads are "
	    "open to\n"
	    "             local users, changes need root or this user)\n"
	    "  -d         run in the background, log to syslog\n"
	    "  -t         check the configuration and exit\n",
	    SDU_SYSCONFDIR, DMN_DEFAULT_SOCKET);
	exit(2);
}

int
main(int argc, char **argv)
{
	const char *conf = getenv("SOCKFILTER_CONF"), *sock = NULL;
	bool daemonize = false, test = false;
	struct cfg_snap *cs;
	char err[1024], path[PATH_MAX], *end;
	struct timeval sweep = {DMN_RETRY_SECS, 0};
	static const int sigs[] = {SIGHUP, SIGTERM, SIGINT};
	int c, i;

	while ((c = getopt(argc, argv, "c:s:m:dth")) != -1) {
		switch (c) {
		case 'c':
			conf = optarg;
			break;
		case 's':
			sock = optarg;
			break;
		case 'm':
			sd.mode = (mode_t)strtoul(optarg, &end, 8);
			if (*end != '\0' || sd.mode > 0777)
				sd_usage();
			break;
		case 'd':
			daemonize = true;
			break;
		case 't':
			test = true;
			break;
		default:
			sd_usage();
		}
	}
	if (optind != argc)
		sd_usage();
	sdu_default_conf(conf, path, sizeof(path));
	if (realpath(path, sd.conf) == NULL)
		snprintf(sd.conf, sizeof(sd.conf), "%s", path);
	snprintf(path, sizeof(path), "%s", sd.conf);
	snprintf(sd.confdir, sizeof(sd.confdir), "%s", dirname(path));
	snprintf(path, sizeof(path), "%s", sd.conf);
	snprintf(sd.confbase, sizeof(sd.confbase), "%s", basename(path));
	sdu_moddir(sd.moddir, sizeof(sd.moddir));

	if (cfg_load_file(sd.conf, &cs, err, sizeof(err)) != 0)
		sd_fatal("%s", err);
	if (test) {
		if (cs->cs_warnings != NULL)
			fprintf(stderr, "%s", cs->cs_warnings);
		printf("%s: configuration OK (%d filters)\n", sd.conf,
		    cs->cs_nfilters);
		cfg_rele(cs);
		return 0;
	}

	if (sdu_socket_path(sock, sd.sock, sizeof(sd.sock)) != 0 ||
	    strlen(sd.sock) + sizeof(DMN_SUFFIX_REG) > sizeof(sd.reg))
		sd_fatal("socket path too long");
	sd_errf(sd.reg, sizeof(sd.reg), "%s%s", sd.sock, DMN_SUFFIX_REG);
	sd_errf(sd.cfgfile, sizeof(sd.cfgfile), "%s%s", sd.sock,
	    DMN_SUFFIX_CFG);
	sd.owner = geteuid();
	signal(SIGPIPE, SIG_IGN);

	if ((sd.base = event_base_new()) == NULL)
		sd_fatal("event_base_new failed");
	sd_setup_sockets();
	sd_apply(cs);
	sd_setup_inotify();
	for (i = 0; i < 3; i++) {
		sd.sigev[i] =
		    evsignal_new(sd.base, sigs[i], sd_signal_cb, NULL);
		event_add(sd.sigev[i], NULL);
	}
	sd.sweepev = event_new(sd.base, -1, EV_PERSIST, sd_sweep_cb, NULL);
	event_add(sd.sweepev, &sweep);

	if (daemonize) {
		if (daemon(0, 0) != 0)
			sd_fatal("daemon: %s", strerror(errno));
		sd.use_syslog = true;
		openlog("soconfigd", LOG_PID, LOG_DAEMON);
		sd.dc->dc_pid = (int32_t)getpid();
		event_reinit(sd.base);
	}
	/* Open for business: processes see the daemon from here on. */
	atomic_store(&sd.dc->dc_state, DMN_ST_RUNNING);
	sd_log(LOG_INFO, "serving %s on %s (epoch %llu)", sd.conf, sd.sock,
	    (unsigned long long)atomic_load(&sd.dc->dc_epoch));
	event_base_dispatch(sd.base);

	/* Programs keep their last configuration; new ones read the file. */
	atomic_store(&sd.dc->dc_state, DMN_ST_STOPPED);
	unlink(sd.sock);
	unlink(sd.reg);
	sd_log(LOG_INFO, "stopped");
	while (sd.clients != NULL)
		sd_client_free(sd.clients);
	while (sd.procs != NULL)
		sd_proc_free(sd.procs, false);
	evconnlistener_free(sd.lst);
	for (i = 0; i < 3; i++)
		event_free(sd.sigev[i]);
	event_free(sd.sweepev);
	event_free(sd.regev);
	event_free(sd.reloadev);
	if (sd.inoev != NULL)
		event_free(sd.inoev);
	if (sd.inofd >= 0)
		close(sd.inofd);
	close(sd.regfd);
	event_base_free(sd.base);
	cfg_rele(sd.snap);
	free(sd.pubtext);
	free(sd.tot);
	munmap(sd.dc, DMN_CFG_SIZE);
	return 0;
}
