/*
 * registry.c: sof_register/sof_unregister and loading filter modules.
 *
 * Data structures, all under reg_lock:
 *
 *   reg_list    struct reg_filter, one per sof_register()ed name.  A
 *               registration is freed only by sof_unregister() with no
 *               instance left (rf_refs == 0); reg_resolve() takes its
 *               reference under the lock, so the two cannot cross.
 *   reg_mods    struct reg_module, one per module name ever looked for:
 *               whether MODULE.so is loaded or failed (and when to try
 *               again), and the names its constructors registered.  Never
 *               freed: modules are never unloaded (an instance may still
 *               run their code), and the list stays small.
 *
 * A module registers from its constructor, that is inside dlopen(), which
 * runs constructors in the calling thread while holding the loader lock.
 * So reg_lock is never held across dlopen() (nor across anything that
 * takes the loader lock: dlsym, hence logging), and the thread-local
 * reg_loading tells sof_register() which module it belongs to.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core.h"
#include "log.h"

#define REG_EXPORT __attribute__((visibility("default")))

#define REG_MAXMODREGS 8  /* names remembered per module */
#define REG_RETRY_SECS 10 /* a failed module is tried again after this */
#define REG_MSGLEN     1024

struct reg_module {
	char *rm_name;
	int rm_state;     /* REG_M_* */
	void *rm_handle;  /* dlopen() handle once loaded */
	char *rm_pathkey; /* directories searched by the last try */
	time_t rm_retry;  /* failed: no new try before (monotonic) */
	bool rm_warned;   /* a load failure was logged as a warning */
	char rm_warned_for[FILNAME_MAX]; /* last filter it did not register */
	int rm_nregs; /* registrations its loading produced */
	char rm_regs[REG_MAXMODREGS][FILNAME_MAX];
	struct reg_module *rm_next;
};

#define REG_M_NEW    0
#define REG_M_LOADED 1
#define REG_M_FAILED 2

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct reg_filter *reg_list;
static struct reg_module *reg_mods;
static char *reg_default_dir;
static bool reg_secure;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;

/* The module this thread is dlopen()ing, for sof_register(). */
static __thread struct reg_module *reg_loading;

/* A fork while another thread held reg_lock must not leave the child
 * with a lock nobody will release; every update under the lock leaves
 * the lists consistent at each store, so a fresh mutex is safe. */
static void
reg_atfork_child(void)
{
	pthread_mutex_init(&reg_lock, NULL);
}

static void
reg_init_once(void)
{
	pthread_atfork(NULL, NULL, reg_atfork_child);
}

static void
reg_lock_take(void)
{
	pthread_once(&reg_once, reg_init_once);
	pthread_mutex_lock(&reg_lock);
}

static void
reg_lock_drop(void)
{
	pthread_mutex_unlock(&reg_lock);
}

/* Held by the service thread's creation: under ThreadSanitizer a
 * pthread_create racing a dlopen can deadlock the runtime, and the
 * library never needs both at once. */
void
reg_serialize_begin(void)
{
	reg_lock_take();
}

void
reg_serialize_end(void)
{
	reg_lock_drop();
}

static struct reg_filter *
reg_find_locked(const char *name)
{
	struct reg_filter *rf;

	for (rf = reg_list; rf != NULL; rf = rf->rf_next)
		if (strcmp(rf->rf_name, name) == 0)
			return rf;
	return NULL;
}

static struct reg_module *
reg_mod_find_locked(const char *name)
{
	struct reg_module *rm;

	for (rm = reg_mods; rm != NULL; rm = rm->rm_next)
		if (strcmp(rm->rm_name, name) == 0)
			return rm;
	return NULL;
}

REG_EXPORT int
sof_register(int version, const char *name, const sof_ops_t *ops, int flags)
{
	struct reg_filter *rf;
	struct reg_module *rm;
	int error = 0;

	if (version != SOF_VERSION) {
		sf_log(SF_LOG_WARN,
		    "filter '%s' was built for sof API version %d, this "
		    "library has version %d: not registered",
		    name != NULL ? name : "(null)", version, SOF_VERSION);
		return EINVAL;
	}
	if (name == NULL || *name == '\0' ||
	    strnlen(name, FILNAME_MAX) > FILNAME_MAX - 1 || ops == NULL)
		return EINVAL;
	/* Allocated before the lock: keep the critical section short. */
	if ((rf = calloc(1, sizeof(*rf))) == NULL)
		return ENOMEM;
	memcpy(rf->rf_name, name, strlen(name) + 1);
	rf->rf_ops = *ops;
	rf->rf_flags = flags;
	atomic_init(&rf->rf_refs, 0);

	reg_lock_take();
	if (reg_find_locked(name) != NULL) {
		error = EEXIST;
	} else {
		rf->rf_next = reg_list;
		reg_list = rf;
		/* Inside reg_resolve()'s dlopen(): credit the module. */
		if ((rm = reg_loading) != NULL) {
			rf->rf_dlhandle = rm->rm_handle;
			if (rm->rm_nregs < REG_MAXMODREGS)
				memcpy(rm->rm_regs[rm->rm_nregs], rf->rf_name,
				    FILNAME_MAX);
			rm->rm_nregs++;
		}
	}
	reg_lock_drop();
	if (error != 0)
		free(rf);
	return error;
}

REG_EXPORT int
sof_unregister(const char *name)
{
	struct reg_filter **pp, *rf = NULL;
	int error = ENXIO;

	if (name == NULL)
		return ENXIO;
	reg_lock_take();
	for (pp = &reg_list; *pp != NULL; pp = &(*pp)->rf_next) {
		if (strcmp((*pp)->rf_name, name) == 0) {
			if (atomic_load(&(*pp)->rf_refs) > 0) {
				error = EBUSY;
			} else {
				rf = *pp;
				*pp = rf->rf_next;
				error = 0;
			}
			break;
		}
	}
	reg_lock_drop();
	free(rf);
	return error;
}

void
reg_set_default_dir(const char *dir, bool secure)
{
	char *copy = dir != NULL ? strdup(dir) : NULL;
	char *old;

	reg_lock_take();
	old = reg_default_dir;
	reg_default_dir = copy;
	reg_secure = secure;
	reg_lock_drop();
	free(old);
}

static time_t
reg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The registration for cf once rm's constructors ran: the one named
 * cf_name, else the module's only one.  Takes a reference. */
static struct reg_filter *
reg_pick_locked(const struct reg_module *rm, const char *name)
{
	struct reg_filter *rf = reg_find_locked(name);

	if (rf == NULL && rm->rm_nregs == 1)
		rf = reg_find_locked(rm->rm_regs[0]);
	if (rf != NULL)
		atomic_fetch_add(&rf->rf_refs, 1);
	return rf;
}

/* "loaded but registered no filter named Y" with what it did register. */
static void
reg_msg_noreg(char *msg, size_t len, const struct reg_module *rm,
    const char *name)
{
	int n, i;

	n = snprintf(msg, len,
	    "module %s was loaded but registered no filter named %s",
	    rm->rm_name, name);
	for (i = 0; i < rm->rm_nregs && i < REG_MAXMODREGS && n >= 0 &&
	            (size_t)n < len;
	     i++)
		n += snprintf(msg + n, len - (size_t)n, "%s%s",
		    i == 0 ? " (it registered: " : ", ", rm->rm_regs[i]);
	if (rm->rm_nregs > 0 && n >= 0 && (size_t)n < len)
		snprintf(msg + n, len - (size_t)n, ")");
}

/* Directories to search, in order, joined by ':' (the cache key), and
 * each one in dirs[].  Returns the count. */
static int
reg_search_dirs(const struct cfg_snap *cs, const char **dirs, int max,
    char *key, size_t keylen, const char *defdir, bool secure)
{
	int n = 0, i;
	size_t off = 0;

	if (!secure && cs != NULL)
		for (i = 0; i < cs->cs_nmodpath && n < max - 1; i++)
			dirs[n++] = cs->cs_modpath[i];
	if (defdir != NULL)
		dirs[n++] = defdir;
	key[0] = '\0';
	for (i = 0; i < n && off < keylen; i++) {
		int w = snprintf(key + off, keylen - off, "%s%s",
		    i > 0 ? ":" : "", dirs[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	return n;
}

/* Find MODULE.so in dirs and dlopen() it.  The first existing file wins:
 * a broken module is reported, not silently shadowed by a later one.
 * On failure msg holds the reason. */
static void *
reg_dlopen(const char *module, const char **dirs, int ndirs, char *msg,
    size_t msglen)
{
	char path[4096];
	struct stat st;
	void *h;
	int i, n;

	for (i = 0; i < ndirs; i++) {
		n = snprintf(path, sizeof(path), "%s/%s.so", dirs[i], module);
		if (n < 0 || (size_t)n >= sizeof(path))
			continue;
		if (stat(path, &st) != 0)
			continue;
		if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
			return h;
		{
			const char *e = dlerror();

			/* Truncation is fine: it is a log line. */
			if (snprintf(msg, msglen,
			        "module %s: cannot load %s: %s", module, path,
			        e != NULL ? e : "unknown error") < 0)
				msg[0] = '\0';
		}
		return NULL;
	}
	if (ndirs == 0) {
		snprintf(msg, msglen,
		    "module %s: not found (no module directory configured)",
		    module);
		return NULL;
	}
	n = snprintf(msg, msglen, "module %s: %s.so not found in ", module,
	    module);
	for (i = 0; i < ndirs && n >= 0 && (size_t)n < msglen; i++)
		n += snprintf(msg + n, msglen - (size_t)n, "%s%s",
		    i > 0 ? ", " : "", dirs[i]);
	if (n >= 0 && (size_t)n < msglen)
		snprintf(msg + n, msglen - (size_t)n,
		    " (No such file or directory)");
	return NULL;
}

/* A resolve failure is logged at warning level once per module (load
 * failures) or per module and filter (nothing registered under that
 * name), then only in debug mode: a missing module must not flood the
 * log with one line per socket.  True if this is the first. */
static bool
reg_fail_first(struct reg_module *rm, const char *name)
{
	bool first;

	reg_lock_take();
	if (name == NULL) {
		first = !rm->rm_warned;
		rm->rm_warned = true;
	} else {
		first = strcmp(rm->rm_warned_for, name) != 0;
		snprintf(rm->rm_warned_for, sizeof(rm->rm_warned_for), "%s",
		    name);
	}
	reg_lock_drop();
	return first;
}

/* A macro so that the log line names reg_resolve, not a helper. */
#define REG_FAIL_LOG(rm, name, msg)                                            \
	do {                                                                   \
		if (reg_fail_first((rm), (name)))                              \
			sf_log(SF_LOG_WARN, "%s", (msg));                      \
		else                                                           \
			sf_log(SF_LOG_DEBUG, "%s", (msg));                     \
	} while (0)

int
reg_resolve(const struct cfg_snap *cs, const struct cfg_filter *cf,
    struct reg_filter **rfp)
{
	const char *dirs[64];
	char key[2048], msg[REG_MSGLEN];
	const char *module;
	struct reg_module *rm, *prev_loading;
	struct reg_filter *rf;
	char *defdir = NULL;
	bool secure;
	void *h;
	int ndirs;

	*rfp = NULL;
	if (cf == NULL)
		return ENXIO;
	module = cf->cf_module != NULL && *cf->cf_module != '\0' ? cf->cf_module
	                                                         : cf->cf_name;

	reg_lock_take();
	/* Registered already (by its module, or by the program itself). */
	if ((rf = reg_find_locked(cf->cf_name)) != NULL) {
		atomic_fetch_add(&rf->rf_refs, 1);
		reg_lock_drop();
		*rfp = rf;
		return 0;
	}
	if ((rm = reg_mod_find_locked(module)) == NULL) {
		if ((rm = calloc(1, sizeof(*rm))) == NULL ||
		    (rm->rm_name = strdup(module)) == NULL) {
			reg_lock_drop();
			free(rm);
			sf_log(SF_LOG_WARN, "module %s: out of memory", module);
			return ENXIO;
		}
		rm->rm_next = reg_mods;
		reg_mods = rm;
	}
	if (rm->rm_state == REG_M_LOADED) {
		/* Loaded for another filter: its registrations are known. */
		rf = reg_pick_locked(rm, cf->cf_name);
		if (rf == NULL)
			reg_msg_noreg(msg, sizeof(msg), rm, cf->cf_name);
		reg_lock_drop();
		if (rf == NULL) {
			REG_FAIL_LOG(rm, cf->cf_name, msg);
			return ENXIO;
		}
		*rfp = rf;
		return 0;
	}
	if (reg_default_dir != NULL &&
	    (defdir = strdup(reg_default_dir)) == NULL) {
		reg_lock_drop();
		return ENXIO;
	}
	secure = reg_secure;
	ndirs = reg_search_dirs(cs, dirs, 64, key, sizeof(key), defdir, secure);
	if (rm->rm_state == REG_M_FAILED && rm->rm_pathkey != NULL &&
	    strcmp(rm->rm_pathkey, key) == 0 && reg_now() < rm->rm_retry) {
		reg_lock_drop();
		free(defdir);
		sf_log(SF_LOG_DEBUG, "module %s failed recently: not retried",
		    module);
		return ENXIO;
	}
	reg_lock_drop();

	if (strchr(module, '/') != NULL) {
		snprintf(msg, sizeof(msg),
		    "module %s: a module is a name, not a path", module);
		h = NULL;
	} else {
		/* Not under reg_lock: constructors call sof_register(). */
		prev_loading = reg_loading;
		reg_loading = rm;
		h = reg_dlopen(module, dirs, ndirs, msg, sizeof(msg));
		reg_loading = prev_loading;
	}
	free(defdir);

	reg_lock_take();
	if (h == NULL) {
		char *k = strdup(key);

		if (rm->rm_state != REG_M_LOADED) {
			/* Another path: a new failure, worth a warning. */
			if (rm->rm_pathkey != NULL && k != NULL &&
			    strcmp(rm->rm_pathkey, k) != 0)
				rm->rm_warned = false;
			rm->rm_state = REG_M_FAILED;
			rm->rm_retry = reg_now() + REG_RETRY_SECS;
			free(rm->rm_pathkey);
			rm->rm_pathkey = k;
		} else {
			free(k);
		}
		reg_lock_drop();
		REG_FAIL_LOG(rm, NULL, msg);
		return ENXIO;
	}
	rm->rm_state = REG_M_LOADED;
	rm->rm_handle = h;
	/* Registered before dlopen() returned the handle. */
	for (rf = reg_list; rf != NULL; rf = rf->rf_next) {
		int i;

		for (i = 0; i < rm->rm_nregs && i < REG_MAXMODREGS; i++)
			if (rf->rf_dlhandle == NULL &&
			    strcmp(rf->rf_name, rm->rm_regs[i]) == 0)
				rf->rf_dlhandle = h;
	}
	rf = reg_pick_locked(rm, cf->cf_name);
	if (rf == NULL)
		reg_msg_noreg(msg, sizeof(msg), rm, cf->cf_name);
	reg_lock_drop();
	if (rf == NULL) {
		REG_FAIL_LOG(rm, cf->cf_name, msg);
		return ENXIO;
	}
	*rfp = rf;
	return 0;
}

void
reg_rele(struct reg_filter *rf)
{
	if (rf != NULL)
		atomic_fetch_sub_explicit(&rf->rf_refs, 1,
		    memory_order_release);
}
