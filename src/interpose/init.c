/*
 * init.c: start-up, environment, configuration loading, fork handlers.
 *
 * The constructor does only what cannot fail or recurse: read the aux
 * vector and register fork handlers.  Files (configuration, log) are
 * opened on first need, from a wrapper, with the library marked busy so
 * that the I/O of libconfig and dlopen passes straight to libc.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "interpose.h"

#ifndef SF_SYSCONFDIR
#define SF_SYSCONFDIR "/etc"
#endif

__thread int sfi_busy __attribute__((tls_model("initial-exec")));
pid_t sfi_pid;

static bool sfi_secure;
static pthread_once_t sfi_once = PTHREAD_ONCE_INIT;
static char sfi_libdir[PATH_MAX];

/* secure_getenv: in a setuid/setgid program the environment chooses
 * nothing (no file, path or module named by it is used). */
static const char *
sfi_env(const char *name)
{
	return sfi_secure ? NULL : secure_getenv(name);
}

/* The directory of libsockfilter.so itself: modules live beside it. */
static void
sfi_find_libdir(void)
{
	Dl_info info;
	char *slash;

	if (dladdr((void *)sfi_find_libdir, &info) == 0 ||
	    info.dli_fname == NULL ||
	    strlen(info.dli_fname) >= sizeof(sfi_libdir))
		return;
	strcpy(sfi_libdir, info.dli_fname);
	if ((slash = strrchr(sfi_libdir, '/')) != NULL)
		*slash = '\0';
	else
		strcpy(sfi_libdir, ".");
}

static bool
sfi_exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static struct cfg_snap *
sfi_load_config(void)
{
	char path[PATH_MAX + 64], err[512];
	const char *env = sfi_env("SOCKFILTER_CONF");
	struct cfg_snap *cs = NULL;
	int error;

	if (env != NULL && *env != '\0') {
		snprintf(path, sizeof(path), "%s", env);
	} else {
		snprintf(path, sizeof(path), "%s/../etc/sockfilter.conf",
		    sfi_libdir);
		if (!sfi_exists(path))
			snprintf(path, sizeof(path), "%s/sockfilter.conf",
			    SF_SYSCONFDIR);
		if (!sfi_exists(path)) {
			sf_log(SF_LOG_DEBUG,
			    "no configuration file: no filters");
			return cfg_empty();
		}
	}
	error = cfg_load_file(path, &cs, err, sizeof(err));
	if (error != 0) {
		sf_log(SF_LOG_ERR, "%s; running without filters", err);
		return cfg_empty();
	}
	if (cs->cs_warnings != NULL)
		sf_log(SF_LOG_WARN, "%s", cs->cs_warnings);
	sf_log(SF_LOG_DEBUG, "configuration %s: %d filters", path,
	    cs->cs_nfilters);
	return cs;
}

/* exit(): the kernel is about to close every socket; give the filters
 * their CLOSING and detach first, as a close would.  An atexit handler
 * runs before any module's destructor (those run later, in _dl_fini). */
static void
sfi_at_exit(void)
{
	fdt_close_all();
}

static void
sfi_init_once(void)
{
	char moddir[PATH_MAX + 16];
	struct cfg_snap *cs;

	sfi_busy++;
	sfi_find_libdir();
	sf_log_open(sfi_env("SOCKFILTER_LOG"), sfi_env("SOCKFILTER_TRACE"));
	snprintf(moddir, sizeof(moddir), "%s/sockfilter", sfi_libdir);
	reg_set_default_dir(moddir, sfi_secure);
	if (sfi_secure)
		sf_log(SF_LOG_DEBUG,
		    "secure mode: environment ignored, "
		    "modules only from %s",
		    moddir);
	/* soconfigd's configuration when one runs, else the file. */
	dmn_init(sfi_env("SOCKFILTER_SOCKET"), sfi_secure,
	    sfi_env("SOCKFILTER_ATTACH"));
	if ((cs = dmn_config_initial()) == NULL) {
		cs = sfi_load_config();
		dmn_attach_env(cs);
	}
	sf_config_set(cs);
	atexit(sfi_at_exit);
	sfi_busy--;
}

/* vfork() and clone(CLONE_VM) children run on the parent's memory and
 * never run fork handlers: their pid is not the one we recorded.  They
 * must leave the table alone (they close and dup before exec). */
bool
sfi_foreign(void)
{
	return (pid_t)LIBC(syscall)(SYS_getpid) != sfi_pid;
}

struct cfg_snap *
sfi_config(void)
{
	pthread_once(&sfi_once, sfi_init_once);
	dmn_tick(); /* a new published configuration: no syscall otherwise */
	return sf_config_get();
}

static void
sfi_atfork_prepare(void)
{
	/* Bind now: a signal handler writing during fork must not dlsym. */
	libc_bind_all();
	svc_atfork_prepare();
}

static void
sfi_atfork_parent(void)
{
	svc_atfork_parent();
}

static void
sfi_atfork_child(void)
{
	sfi_pid = getpid();
	sock_atfork_child();
	svc_atfork_child();
}

__attribute__((constructor)) static void
sfi_constructor(void)
{
	const char *dbg;

	/* SOCKFILTER_SECURE=1 can only add restrictions: it lets a test (or a
	 * cautious administrator) get the setuid behaviour without setuid. */
	sfi_secure = getauxval(AT_SECURE) != 0 ||
	             (getenv("SOCKFILTER_SECURE") != NULL &&
	                 strcmp(getenv("SOCKFILTER_SECURE"), "1") == 0);
	dbg = sfi_env("SOCKFILTER_DEBUG");
	if (dbg != NULL && *dbg != '\0' && strcmp(dbg, "0") != 0)
		sf_log_level = SF_LOG_DEBUG;
	sf_log_set_prog(
	    program_invocation_name != NULL ? program_invocation_name : "?");
	sfi_pid = getpid();
	pthread_atfork(sfi_atfork_prepare, sfi_atfork_parent, sfi_atfork_child);
}
