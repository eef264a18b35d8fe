/*
 * log.c: formatted log lines written with the real write(), never stdio
 * (the host program owns its FILE buffers) and never our own wrappers.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "libc.h"

int sf_log_level = SF_LOG_WARN;
int sf_trace_fd = -1;
static int sf_log_fd = 2;
static char sf_prog[64] = "?";

static const char *const sf_level_name[] = {"error", "warning", "info",
    "debug"};

void
sf_log_set_prog(const char *prog)
{
	const char *p = strrchr(prog, '/');

	snprintf(sf_prog, sizeof(sf_prog), "%s", p != NULL ? p + 1 : prog);
}

static int
sf_open_append(const char *path)
{
	/* Raw syscall: open() is not wrapped, but keep the library's own
	 * files away from any other preload's open() as well. */
	long fd = syscall(SYS_openat, AT_FDCWD, path,
	    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	return fd < 0 ? -1 : (int)fd;
}

void
sf_log_open(const char *logpath, const char *tracepath)
{
	int fd;

	if (logpath != NULL && *logpath != '\0' &&
	    (fd = sf_open_append(logpath)) >= 0)
		sf_log_fd = fd;
	if (tracepath != NULL && *tracepath != '\0')
		sf_trace_fd = sf_open_append(tracepath);
}

static void
sf_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = LIBC(write)(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		buf += n;
		len -= (size_t)n;
	}
}

void
sf_log_impl(int level, const char *func, const char *fmt, ...)
{
	char buf[1024];
	int saved = errno;
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "sockfilter[%s:%d] %s: %s: ", sf_prog,
	    (int)getpid(), sf_level_name[level], func);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	sf_write_all(sf_log_fd, buf, (size_t)n);
	errno = saved;
}

void
sf_trace_impl(const char *fmt, ...)
{
	char buf[512];
	struct timespec ts;
	int saved = errno;
	va_list ap;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(buf, sizeof(buf), "%lld.%06ld %d ", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000, (int)getpid());
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < sizeof(buf))
		n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(buf) - 1)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	sf_write_all(sf_trace_fd, buf, (size_t)n);
	errno = saved;
}
