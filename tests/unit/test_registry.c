/*
 * test_registry.c: sof_register/sof_unregister, reg_resolve and module
 * loading.  Criterion runs every test in its own process, so each starts
 * with an empty registry.
 */
#include <criterion/criterion.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libconfig.h>

#include "core.h"

static sof_rval_t
rt_attach(sof_handle_t h, int family, int type, int proto, cred_t *cr,
    void **cookiep)
{
	return SOF_RVAL_CONTINUE;
}

static const sof_ops_t rt_ops = {.sofop_attach_active = rt_attach};

/* ---------------------------------------------------------------------
 * Capturing the library's log (standard error).
 * ------------------------------------------------------------------- */

static int rt_saved_fd = -1;
static char rt_log_path[] = "/tmp/sfreglogXXXXXX";
static char rt_log[8192];

static void
rt_capture_start(void)
{
	int fd = mkstemp(rt_log_path);

	cr_assert_geq(fd, 0);
	rt_saved_fd = dup(2);
	dup2(fd, 2);
	close(fd);
}

static const char *
rt_capture_end(void)
{
	ssize_t n;
	int fd;

	dup2(rt_saved_fd, 2);
	close(rt_saved_fd);
	fd = open(rt_log_path, O_RDONLY);
	cr_assert_geq(fd, 0);
	n = read(fd, rt_log, sizeof(rt_log) - 1);
	close(fd);
	unlink(rt_log_path);
	strcpy(rt_log_path, "/tmp/sfreglogXXXXXX");
	rt_log[n > 0 ? n : 0] = '\0';
	return rt_log;
}

/* ---------------------------------------------------------------------
 * A temporary module directory.
 * ------------------------------------------------------------------- */

static char rt_dir[PATH_MAX];
static char rt_dir2[PATH_MAX];

static void
rt_setup(void)
{
	snprintf(rt_dir, sizeof(rt_dir), "/tmp/sfregXXXXXX");
	snprintf(rt_dir2, sizeof(rt_dir2), "/tmp/sfregXXXXXX");
	cr_assert_not_null(mkdtemp(rt_dir));
	cr_assert_not_null(mkdtemp(rt_dir2));
}

static void
rt_teardown(void)
{
	char cmd[2 * PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", rt_dir, rt_dir2);
	cr_assert_eq(system(cmd), 0);
}

/* A configuration with one automatic TCP filter; module may be NULL. */
static struct cfg_snap *
rt_config(const char *name, const char *module, const char *modpath)
{
	char text[1024], err[256];
	struct cfg_snap *cs = NULL;

	snprintf(text, sizeof(text),
	    "%s%s%s"
	    "filters = ( { name = \"%s\"; %s%s%s attach = \"auto\"; "
	    "sockets = [ \"inet:stream:tcp\" ]; } );\n",
	    modpath != NULL ? "module_path = [ \"" : "",
	    modpath != NULL ? modpath : "", modpath != NULL ? "\" ];\n" : "",
	    name, module != NULL ? "module = \"" : "",
	    module != NULL ? module : "", module != NULL ? "\";" : "");
	cr_assert_eq(cfg_load_string(text, "r.conf", &cs, err, sizeof(err)), 0,
	    "%s", err);
	return cs;
}

/* A real shared object that registers no filter: libconfig, already
 * loaded by this program, reached through a symlink named MODULE.so. */
static void
rt_link_noreg_module(const char *dir, const char *module)
{
	char path[PATH_MAX + 64];
	Dl_info info;

	cr_assert_neq(dladdr((void *)config_init, &info), 0);
	snprintf(path, sizeof(path), "%s/%s.so", dir, module);
	cr_assert_eq(symlink(info.dli_fname, path), 0, "symlink %s",
	    info.dli_fname);
}

static void
rt_write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_not_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* ---------------------------------------------------------------------
 * sof_register / sof_unregister.
 * ------------------------------------------------------------------- */

Test(registry, register_version_mismatch_is_einval_and_logged)
{
	const char *log;

	rt_capture_start();
	cr_assert_eq(sof_register(SOF_VERSION + 1, "vfilt", &rt_ops, 0),
	    EINVAL);
	log = rt_capture_end();
	cr_assert(strstr(log, "'vfilt'") != NULL, "log: %s", log);
	cr_assert(strstr(log, "version 2") != NULL, "log: %s", log);
	cr_assert(strstr(log, "version 1") != NULL, "log: %s", log);
	cr_assert_eq(strchr(log, '\n'), log + strlen(log) - 1, "one line: %s",
	    log);
	/* Not registered: the name is still free. */
	cr_assert_eq(sof_unregister("vfilt"), ENXIO);
	cr_assert_eq(sof_register(SOF_VERSION, "vfilt", &rt_ops, 0), 0);
}

Test(registry, register_bad_arguments_are_einval)
{
	cr_assert_eq(sof_register(SOF_VERSION, NULL, &rt_ops, 0), EINVAL);
	cr_assert_eq(sof_register(SOF_VERSION, "", &rt_ops, 0), EINVAL);
	cr_assert_eq(sof_register(SOF_VERSION,
	                 "01234567890123456789012345678901", &rt_ops, 0),
	    EINVAL);
	cr_assert_eq(sof_register(SOF_VERSION, "nullops", NULL, 0), EINVAL);
	cr_assert_eq(sof_register(SOF_VERSION,
	                 "0123456789012345678901234567890", &rt_ops,
	                 SOF_ATT_SAFE),
	    0);
}

Test(registry, register_twice_is_eexist)
{
	cr_assert_eq(sof_register(SOF_VERSION, "dup", &rt_ops, 0), 0);
	cr_assert_eq(sof_register(SOF_VERSION, "dup", &rt_ops, 0), EEXIST);
	cr_assert_eq(sof_unregister("dup"), 0);
	cr_assert_eq(sof_register(SOF_VERSION, "dup", &rt_ops, 0), 0);
}

Test(registry, unregister_unknown_is_enxio)
{
	cr_assert_eq(sof_unregister("nobody"), ENXIO);
	cr_assert_eq(sof_unregister(NULL), ENXIO);
	cr_assert_eq(sof_register(SOF_VERSION, "once", &rt_ops, 0), 0);
	cr_assert_eq(sof_unregister("once"), 0);
	cr_assert_eq(sof_unregister("once"), ENXIO);
}

/* ---------------------------------------------------------------------
 * reg_resolve.
 * ------------------------------------------------------------------- */

Test(registry, resolve_in_process_registration)
{
	struct cfg_snap *cs = rt_config("inproc", NULL, NULL);
	struct reg_filter *rf = NULL, *rf2 = NULL;
	sof_ops_t ops = rt_ops;

	cr_assert_eq(sof_register(SOF_VERSION, "inproc", &ops, SOF_ATT_SAFE),
	    0);
	/* The table was copied: later changes to ours do not matter. */
	ops.sofop_attach_active = NULL;

	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), 0);
	cr_assert_not_null(rf);
	cr_assert_str_eq(rf->rf_name, "inproc");
	cr_assert_eq(rf->rf_ops.sofop_attach_active, rt_attach);
	cr_assert_eq(rf->rf_flags, SOF_ATT_SAFE);
	cr_assert_null(rf->rf_dlhandle);
	cr_assert_eq(atomic_load(&rf->rf_refs), 1);

	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf2), 0);
	cr_assert_eq(rf2, rf);
	cr_assert_eq(atomic_load(&rf->rf_refs), 2);
	reg_rele(rf2);
	reg_rele(rf);
	cr_assert_eq(atomic_load(&rf->rf_refs), 0);
	cfg_rele(cs);
}

Test(registry, unregister_while_held_is_ebusy)
{
	struct cfg_snap *cs = rt_config("busy", NULL, NULL);
	struct reg_filter *rf = NULL;

	cr_assert_eq(sof_register(SOF_VERSION, "busy", &rt_ops, 0), 0);
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), 0);
	cr_assert_eq(sof_unregister("busy"), EBUSY);
	cr_assert_eq(sof_register(SOF_VERSION, "busy", &rt_ops, 0), EEXIST);
	reg_rele(rf);
	cr_assert_eq(sof_unregister("busy"), 0);
	cr_assert_eq(sof_unregister("busy"), ENXIO);
	cfg_rele(cs);
}

Test(registry, resolve_missing_module_is_enxio, .init = rt_setup,
    .fini = rt_teardown)
{
	struct cfg_snap *cs = rt_config("ghost", "ghostmod", rt_dir2);
	struct reg_filter *rf = (struct reg_filter *)1;
	const char *log;

	reg_set_default_dir(rt_dir, false);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert_null(rf);
	cr_assert(strstr(log, "module ghostmod") != NULL, "log: %s", log);
	cr_assert(strstr(log, "ghostmod.so not found") != NULL, "log: %s", log);
	cr_assert(strstr(log, rt_dir) != NULL, "log: %s", log);
	cr_assert(strstr(log, rt_dir2) != NULL, "log: %s", log);
	cr_assert(strstr(log, "No such file or directory") != NULL, "log: %s",
	    log);
	cr_assert_eq(strchr(log, '\n'), log + strlen(log) - 1, "one line: %s",
	    log);

	/* Cached: not tried (nor logged) again for the next socket. */
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert_str_eq(log, "");

	/* A registration that appears later is still found. */
	cr_assert_eq(sof_register(SOF_VERSION, "ghost", &rt_ops, 0), 0);
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), 0);
	cr_assert_str_eq(rf->rf_name, "ghost");
	reg_rele(rf);
	cfg_rele(cs);
}

Test(registry, resolve_without_any_directory_is_enxio)
{
	struct cfg_snap *cs = rt_config("nodir", NULL, NULL);
	struct reg_filter *rf = NULL;
	const char *log;

	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert(strstr(log, "module nodir: not found (no module directory "
	                      "configured)") != NULL,
	    "log: %s", log);
	cfg_rele(cs);
}

Test(registry, resolve_module_that_registers_nothing, .init = rt_setup,
    .fini = rt_teardown)
{
	struct cfg_snap *cs = rt_config("nf", "nothing", NULL);
	struct reg_filter *rf = NULL;
	const char *log;

	rt_link_noreg_module(rt_dir, "nothing");
	reg_set_default_dir(rt_dir, false);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert_null(rf);
	cr_assert(strstr(log, "module nothing was loaded but registered no "
	                      "filter named nf") != NULL,
	    "log: %s", log);

	/* Once per filter: silent for nf again, a warning for another. */
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert_str_eq(log, "");
	cfg_rele(cs);
	cs = rt_config("nf2", "nothing", NULL);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert(strstr(log, "registered no filter named nf2") != NULL,
	    "log: %s", log);
	cfg_rele(cs);
}

Test(registry, resolve_broken_module_names_path_and_dlerror, .init = rt_setup,
    .fini = rt_teardown)
{
	struct cfg_snap *cs = rt_config("brk", "broken", rt_dir2);
	struct reg_filter *rf = NULL;
	char path[PATH_MAX + 32];
	const char *log;

	rt_write_file(rt_dir2, "broken.so", "this is not an ELF file\n");
	reg_set_default_dir(rt_dir, false);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	snprintf(path, sizeof(path), "%s/broken.so", rt_dir2);
	cr_assert(strstr(log, "module broken: cannot load ") != NULL, "log: %s",
	    log);
	cr_assert(strstr(log, path) != NULL, "log: %s", log);
	/* dlerror() text, e.g. "invalid ELF header" or "file too short". */
	cr_assert(strstr(log, "ELF") != NULL || strstr(log, "short") != NULL,
	    "log: %s", log);
	cfg_rele(cs);
}

Test(registry, secure_mode_ignores_module_path, .init = rt_setup,
    .fini = rt_teardown)
{
	struct cfg_snap *cs = rt_config("sec", "secmod", rt_dir2);
	struct reg_filter *rf = NULL;
	const char *log;

	/* A module only on the configured path: found (and fails to load)
	 * normally, not even looked for in secure mode. */
	rt_write_file(rt_dir2, "secmod.so", "not ELF\n");
	reg_set_default_dir(rt_dir, true);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	cr_assert(strstr(log, "secmod.so not found in ") != NULL, "log: %s",
	    log);
	cr_assert(strstr(log, rt_dir) != NULL, "log: %s", log);
	cr_assert(strstr(log, rt_dir2) == NULL, "log: %s", log);
	cfg_rele(cs);
}

Test(registry, module_path_is_searched_before_default_dir, .init = rt_setup,
    .fini = rt_teardown)
{
	struct cfg_snap *cs = rt_config("ord", "ordmod", rt_dir2);
	struct reg_filter *rf = NULL;
	const char *log;

	rt_write_file(rt_dir2, "ordmod.so", "not ELF\n");
	rt_link_noreg_module(rt_dir, "ordmod");
	reg_set_default_dir(rt_dir, false);
	rt_capture_start();
	cr_assert_eq(reg_resolve(cs, &cs->cs_filters[0], &rf), ENXIO);
	log = rt_capture_end();
	/* The first file found wins: the broken one on module_path. */
	cr_assert(strstr(log, "cannot load") != NULL, "log: %s", log);
	cr_assert(strstr(log, rt_dir2) != NULL, "log: %s", log);
	cfg_rele(cs);
}

Test(registry, module_name_with_slash_is_enxio)
{
	struct cfg_filter cf;
	struct reg_filter *rf = NULL;
	const char *log;
	char module[] = "../evil";

	memset(&cf, 0, sizeof(cf));
	snprintf(cf.cf_name, sizeof(cf.cf_name), "evil");
	cf.cf_module = module;
	reg_set_default_dir("/nonexistent", false);
	rt_capture_start();
	cr_assert_eq(reg_resolve(NULL, &cf, &rf), ENXIO);
	log = rt_capture_end();
	cr_assert(strstr(log, "a module is a name, not a path") != NULL,
	    "log: %s", log);
}

/* ---------------------------------------------------------------------
 * stats.c (no test file of its own: kept beside the registry).
 * ------------------------------------------------------------------- */

Test(stats, filter_get_creates_once)
{
	struct st_filter *a = st_filter_get("sa");
	struct st_filter *b = st_filter_get("sb");
	struct st_filter *sf;
	int n = 0;

	cr_assert_not_null(a);
	cr_assert_neq(a, b);
	cr_assert_eq(st_filter_get("sa"), a);
	cr_assert_str_eq(a->sf_name, "sa");
	for (sf = st_filter_first(); sf != NULL; sf = sf->sf_next)
		n++;
	cr_assert_eq(n, 2);
	cr_assert_not_null(st_filter_get(NULL), "never NULL");
}

Test(stats, json_has_every_counter_and_escapes_names)
{
	struct st_filter *sf = st_filter_get("q\"x");
	char buf[2048], small[16];
	size_t n;

	atomic_fetch_add(&sf->sf_nactive, 2);
	atomic_fetch_add(&sf->sf_bytes_in, 100);
	atomic_fetch_add(&sf->sf_denied, 1);
	atomic_fetch_add(&st_global.sg_defer_closed, 3);
	n = st_format_json(buf, sizeof(buf));
	cr_assert_eq(n, strlen(buf));
	cr_assert_str_eq(buf,
	    "{\"global\":{\"defer_closed\":3,\"defer_close_backlog\":0,"
	    "\"defer_close_failed\":0},\"filters\":{\"q\\\"x\":{\"nactive\":2,"
	    "\"ndeferred\":0,\"tot_active_attach\":0,\"tot_passive_attach\":0,"
	    "\"attach_failures\":0,\"bytes_in\":100,\"bytes_out\":0,"
	    "\"denied\":1}}}");
	/* snprintf-style: the needed length, a terminated prefix. */
	cr_assert_eq(st_format_json(small, sizeof(small)), n);
	cr_assert_eq(strlen(small), sizeof(small) - 1);
	cr_assert_eq(strncmp(small, buf, sizeof(small) - 1), 0);
	cr_assert_eq(st_format_json(NULL, 0), n);
}
