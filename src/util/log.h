/* One logger for the whole daemon (and libfuse, through fuse/). */
#ifndef RFS_LOG_H
#define RFS_LOG_H

#include <stdbool.h>
#include <stdarg.h>
#include <syslog.h>

enum rfs_log_sink {
	RFS_LOG_STDERR,
	RFS_LOG_SYSLOG,
};

/* Before any thread starts: where lines go and the most verbose level. */
void rfs_log_init(enum rfs_log_sink sink, int max_level);
void rfs_log_set_sink(enum rfs_log_sink sink);

/*
 * Log one line at a syslog level. Lines never carry secrets: callers pass
 * identifiers (DIDs, URLs without query strings), never tokens or passwords.
 */
void rfs_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void rfs_vlog(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/*
 * Rate-limited error line: at most one per key and interval, so a failing
 * endpoint cannot flood syslog. @key is any stable string (e.g. the host).
 */
void rfs_log_limited(int level, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define rfs_err(...) rfs_log(LOG_ERR, __VA_ARGS__)
#define rfs_warn(...) rfs_log(LOG_WARNING, __VA_ARGS__)
#define rfs_info(...) rfs_log(LOG_INFO, __VA_ARGS__)
#define rfs_dbg(...) rfs_log(LOG_DEBUG, __VA_ARGS__)

#endif
