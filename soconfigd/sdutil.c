/*
 * sdutil.c: helpers shared by soconfigd, soconfig and sockfilter.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmn.h"
#include "sdutil.h"

const char *
sdu_errname(int error)
{
	switch (error) {
	case EINVAL:
		return "EINVAL";
	case EPERM:
		return "EPERM";
	case ENOENT:
		return "ENOENT";
	case EEXIST:
		return "EEXIST";
	case ENOSPC:
		return "ENOSPC";
	case ENOMEM:
		return "ENOMEM";
	default:
		return "EIO";
	}
}

char *
sdu_replace(const char *s, const char *from, const char *to)
{
	size_t fl = strlen(from), tl = strlen(to), n = 0, o = 0;
	const char *p;
	char *out;

	if (fl == 0)
		return strdup(s);
	for (p = s; (p = strstr(p, from)) != NULL; p += fl)
		n++;
	if ((out = malloc(strlen(s) + n * tl + 1)) == NULL)
		return NULL;
	for (p = s; *p != '\0';) {
		if (strncmp(p, from, fl) == 0) {
			memcpy(out + o, to, tl);
			o += tl;
			p += fl;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = '\0';
	return out;
}

void
sdu_tuple_parts(int family, int type, int proto, char *fb, char *tb, char *pb)
{
	switch (family) {
	case AF_INET:
		strcpy(fb, "inet");
		break;
	case AF_INET6:
		strcpy(fb, "inet6");
		break;
	case AF_UNIX:
		strcpy(fb, "unix");
		break;
	default:
		snprintf(fb, 16, "%d", family);
	}
	switch (type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) {
	case SOCK_STREAM:
		strcpy(tb, "stream");
		break;
	case SOCK_DGRAM:
		strcpy(tb, "dgram");
		break;
	case SOCK_SEQPACKET:
		strcpy(tb, "seqpacket");
		break;
	case SOCK_RAW:
		strcpy(tb, "raw");
		break;
	default:
		snprintf(tb, 16, "%d", type);
	}
	/* socket(AF_INET, SOCK_STREAM, 0) is TCP: say so. */
	if (proto == 0 && (family == AF_INET || family == AF_INET6))
		proto = type == SOCK_STREAM  ? IPPROTO_TCP
		        : type == SOCK_DGRAM ? IPPROTO_UDP
		                             : 0;
	if ((family == AF_INET || family == AF_INET6) && proto == IPPROTO_TCP)
		strcpy(pb, "tcp");
	else if ((family == AF_INET || family == AF_INET6) &&
	         proto == IPPROTO_UDP)
		strcpy(pb, "udp");
	else
		snprintf(pb, 16, "%d", proto);
}

void
sdu_tuple(int family, int type, int proto, char *buf, size_t len)
{
	char fb[16], tb[16], pb[16];

	sdu_tuple_parts(family, type, proto, fb, tb, pb);
	snprintf(buf, len, "%s:%s:%s", fb, tb, pb);
}

char *
sdu_printable(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	return s;
}

void
sdu_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n <= 0) {
		buf[0] = '\0';
		return;
	}
	buf[n] = '\0';
	if ((slash = strrchr(buf, '/')) != NULL)
		*slash = '\0';
}

void
sdu_default_conf(const char *conf, char *buf, size_t len)
{
	char dir[4096];

	if (conf != NULL && *conf != '\0') {
		snprintf(buf, len, "%s", conf);
		return;
	}
	sdu_exe_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/../etc/sockfilter.conf", dir);
	if (dir[0] != '\0' && access(buf, R_OK) == 0)
		return;
	snprintf(buf, len, "%s/sockfilter.conf", SDU_SYSCONFDIR);
}

void
sdu_moddir(char *buf, size_t len)
{
	char dir[4096];

	sdu_exe_dir(dir, sizeof(dir));
	snprintf(buf, len, "%s/../%s/sockfilter", dir, SDU_LIBDIR);
	if (access(buf, X_OK) != 0)
		snprintf(buf, len, "%s/../lib/sockfilter", dir);
}

int
sdu_socket_path(const char *opt, char *buf, size_t len)
{
	const char *p = opt;

	if (p == NULL || *p == '\0')
		p = getenv("SOCKFILTER_SOCKET");
	if (p == NULL || *p == '\0')
		p = DMN_DEFAULT_SOCKET;
	if (strlen(p) >= len)
		return ENAMETOOLONG;
	snprintf(buf, len, "%s", p);
	return 0;
}
