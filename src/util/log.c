#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

static enum rfs_log_sink log_sink = RFS_LOG_STDERR;
static int log_max = LOG_INFO;

/* Rate limiting state: a tiny table is enough, keys are endpoints. */
#define LIMIT_SLOTS 64
#define LIMIT_SECONDS 30
static struct {
	unsigned long hash;
	time_t last;
	unsigned suppressed;
} limits[LIMIT_SLOTS];
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;

void rfs_log_init(enum rfs_log_sink sink, int max_level)
{
	log_sink = sink;
	log_max = max_level;
	if (sink == RFS_LOG_SYSLOG)
		openlog("ruciofs", LOG_PID, LOG_DAEMON);
}

void rfs_log_set_sink(enum rfs_log_sink sink)
{
	if (sink == RFS_LOG_SYSLOG && log_sink != RFS_LOG_SYSLOG)
		openlog("ruciofs", LOG_PID, LOG_DAEMON);
	log_sink = sink;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/*
 * Every line is escaped here, the one place all lines pass: DID names,
 * URLs and server messages come from servers, and a newline in one
 * would forge a line of its own.
 */
void rfs_vlog(int level, const char *fmt, va_list ap)
{
	char raw[1024], line[1536];

	if (level > log_max)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	rfs_escape_controls(line, sizeof(line), raw);
	if (log_sink == RFS_LOG_SYSLOG) {
		syslog(level, "%s", line);
		return;
	}
	/* One fprintf per line so lines from threads do not interleave. */
	fprintf(stderr, "ruciofs: %s: %s\n", level_name(level), line);
}

void rfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rfs_vlog(level, fmt, ap);
	va_end(ap);
}

static unsigned long hash_key(const char *s)
{
	unsigned long h = 5381;

	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

void rfs_log_limited(int level, const char *key, const char *fmt, ...)
{
	unsigned long h = hash_key(key);
	unsigned slot = h % LIMIT_SLOTS;
	time_t now = time(NULL);
	unsigned suppressed = 0;
	bool emit = false;
	va_list ap;

	pthread_mutex_lock(&limits_lock);
	if (limits[slot].hash != h ||
	    now - limits[slot].last >= LIMIT_SECONDS) {
		suppressed =
			limits[slot].hash == h ? limits[slot].suppressed : 0;
		limits[slot].hash = h;
		limits[slot].last = now;
		limits[slot].suppressed = 0;
		emit = true;
	} else {
		limits[slot].suppressed++;
	}
	pthread_mutex_unlock(&limits_lock);
	if (!emit)
		return;
	va_start(ap, fmt);
	rfs_vlog(level, fmt, ap);
	va_end(ap);
	if (suppressed)
		rfs_log(level, "(%u similar lines about '%s' suppressed)",
			suppressed, key);
}
