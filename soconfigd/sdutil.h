/*
 * sdutil.h: small helpers shared by soconfigd, soconfig and sockfilter.
 */
#ifndef SD_SDUTIL_H
#define SD_SDUTIL_H

#include <stddef.h>

#include "core.h"

#define SDU_VERSION "0.1.0"
#ifndef SDU_SYSCONFDIR
#define SDU_SYSCONFDIR "/etc"
#endif
#ifndef SDU_LIBDIR
#define SDU_LIBDIR "lib"
#endif

/* "EINVAL" for EINVAL, and so on for the codes the protocol uses. */
const char *sdu_errname(int error);
/* s with every from replaced by to (malloc'd), or NULL. */
char *sdu_replace(const char *s, const char *from, const char *to);
/* "inet:stream:tcp" with names where they exist. */
void sdu_tuple(int family, int type, int proto, char *buf, size_t len);
/* The three fields apart (16 bytes each). */
void sdu_tuple_parts(int family, int type, int proto, char *fb, char *tb,
    char *pb);
/* Non-printable bytes of s become '?' (in place); returns s. */
char *sdu_printable(char *s);
/* The directory of the running executable ("" if unknown). */
void sdu_exe_dir(char *buf, size_t len);
/* The configuration file: conf if given, else P/etc/sockfilter.conf of
 * this installation when it exists, else SDU_SYSCONFDIR/sockfilter.conf. */
void sdu_default_conf(const char *conf, char *buf, size_t len);
/* The installation's module directory P/LIBDIR/sockfilter. */
void sdu_moddir(char *buf, size_t len);
/* The daemon's socket: opt, else $SOCKFILTER_SOCKET, else the default
 * (the library finds it the same way).  0 or ENAMETOOLONG. */
int sdu_socket_path(const char *opt, char *buf, size_t len);

#endif /* SD_SDUTIL_H */
