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

/*
 * Before any thread starts: where lines go and the most verbose level.
 * Lines to stderr carry sd-daemon's "<N>" priority prefix when stderr is
 * the journal ($JOURNAL_STREAM names its device and inode), so that
 * journald keeps each line's level.
 */
void rfs_log_init(enum rfs_log_sink sink, int max_level);
void rfs_log_set_sink(enum rfs_log_sink sink);
/*
 * The level -o log_level names ("error", "warning", "info", "debug"),
 * or -EINVAL.
 */
int rfs_log_level_of(const char *name);
/*
 * Whether stderr is the stream $JOURNAL_STREAM ("DEV:INO", as systemd
 * sets it) names; @journal_stream NULL or not of that form: false.
 */
bool rfs_log_is_journal(const char *journal_stream, int fd);

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

/*
 * An event an admin may grep for or alert on: one line starting
 * "event NAME: " (names are fixed and documented: mount, unmount,
 * offline, online, endpoint-penalty, endpoint-recovered, evict,
 * corrupt-block, checksum-mismatch). The _limited form is rate-limited
 * as rfs_log_limited is, for events that can come in floods; its
 * "suppressed" line carries the same prefix.
 */
void rfs_event(int level, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void rfs_event_limited(int level, const char *name, const char *key,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define rfs_err(...) rfs_log(LOG_ERR, __VA_ARGS__)
#define rfs_warn(...) rfs_log(LOG_WARNING, __VA_ARGS__)
#define rfs_info(...) rfs_log(LOG_INFO, __VA_ARGS__)
#define rfs_dbg(...) rfs_log(LOG_DEBUG, __VA_ARGS__)

#endif
