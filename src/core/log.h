/*
 * log.h: the library's log.  Lines go to standard error (or the file of
 * SOCKFILTER_LOG) through the real write(), prefixed with the program name
 * and pid.  SOCKFILTER_DEBUG=1 enables the debug level; SOCKFILTER_TRACE
 * names a file that gets one line per interposed call on a filtered socket.
 */
#ifndef SF_LOG_H
#define SF_LOG_H

#include <stdbool.h>

enum sf_level { SF_LOG_ERR, SF_LOG_WARN, SF_LOG_INFO, SF_LOG_DEBUG };

/* Highest level written (SF_LOG_WARN unless SOCKFILTER_DEBUG is set). */
extern int sf_log_level __attribute__((visibility("hidden")));
/* Descriptor of the trace file, or -1. */
extern int sf_trace_fd __attribute__((visibility("hidden")));

void sf_log_impl(int level, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), visibility("hidden")));
void sf_trace_impl(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), visibility("hidden")));
/* Set the program name used in log lines. */
void sf_log_set_prog(const char *prog) __attribute__((visibility("hidden")));
/* Open the log/trace targets (called once by init, outside the constructor). */
void sf_log_open(const char *logpath, const char *tracepath)
    __attribute__((visibility("hidden")));

#define sf_log(level, ...)                                                     \
	do {                                                                   \
		if ((level) <= sf_log_level)                                   \
			sf_log_impl((level), __func__, __VA_ARGS__);           \
	} while (0)
#define sf_trace(...)                                                          \
	do {                                                                   \
		if (sf_trace_fd >= 0)                                          \
			sf_trace_impl(__VA_ARGS__);                            \
	} while (0)

/* sf_log_once(flag, level, ...): log on the first call only. */
#define sf_log_once(flagp, level, ...)                                         \
	do {                                                                   \
		if (!__atomic_exchange_n((flagp), true, __ATOMIC_RELAXED))     \
			sf_log((level), __VA_ARGS__);                          \
	} while (0)

#ifdef SF_DEBUG
#include <stdlib.h>
#define SF_ASSERT(x)                                                           \
	do {                                                                   \
		if (!(x)) {                                                    \
			sf_log_impl(SF_LOG_ERR, __func__,                      \
			    "assertion failed: %s (%s:%d)", #x, __FILE__,      \
			    __LINE__);                                         \
			abort();                                               \
		}                                                              \
	} while (0)
#else
#define SF_ASSERT(x) ((void)0)
#endif

#endif /* SF_LOG_H */
