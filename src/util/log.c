#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A line's bytes before escaping: debug lines carry whole requests. */
#define LINE_MAX_BYTES 1024
#define DEBUG_LINE_MAX_BYTES (64 * 1024)

static void emit(int level, const char *line, size_t more)
{
	char tail[48] = "";

	if (more)
		snprintf(tail, sizeof(tail), "... (%zu bytes more)", more);
	if (log_sink == RFS_LOG_SYSLOG) {
		syslog(level, "%s%s", line, tail);
		return;
	}
	/* One fprintf per line so lines from threads do not interleave. */
	fprintf(stderr, "ruciofs: %s: %s%s\n", level_name(level), line, tail);
}

/* Escapes @len bytes at @raw (cut from @total) and emits them. */
static void emit_raw(int level, const char *raw, size_t len, size_t total)
{
	char small[4 * LINE_MAX_BYTES + 1];
	/* every byte may become a four-byte escape */
	char *line = 4 * len < sizeof(small) ? small : malloc(4 * len + 1);

	if (!line) {
		emit(level, "(a log line too long for the memory left)", total);
		return;
	}
	rfs_escape_controls(line, 4 * len + 1, raw);
	emit(level, line, total - len);
	if (line != small)
		free(line);
}

/*
 * Every line is escaped here, the one place all lines pass: DID names,
 * URLs and server messages come from servers, and a newline in one
 * would forge a line of its own. A line past its bound is cut and says
 * how much was left out.
 */
void rfs_vlog(int level, const char *fmt, va_list ap)
{
	size_t cap = level >= LOG_DEBUG ? DEBUG_LINE_MAX_BYTES : LINE_MAX_BYTES;
	char raw[LINE_MAX_BYTES], *big;
	va_list again;
	int n;

	if (level > log_max)
		return;
	va_copy(again, ap);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0) {
		va_end(again);
		return;
	}
	if ((size_t)n < sizeof(raw) || cap <= sizeof(raw)) {
		va_end(again);
		emit_raw(level, raw, strlen(raw), (size_t)n);
		return;
	}
	/* a long debug line: formatted again, whole up to its bound */
	big = malloc((size_t)n < cap ? (size_t)n + 1 : cap);
	if (big)
		vsnprintf(big, (size_t)n < cap ? (size_t)n + 1 : cap, fmt,
			  again);
	va_end(again);
	if (big)
		emit_raw(level, big, strlen(big), (size_t)n);
	else
		emit_raw(level, raw, strlen(raw), (size_t)n);
	free(big);
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
