#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

static enum rfs_log_sink log_sink = RFS_LOG_STDERR;
static int log_max = LOG_INFO;
/* stderr is the journal: lines carry their "<N>" priority */
static bool log_journal;

/* Rate limiting state: a tiny table is enough, keys are endpoints. */
#define LIMIT_SLOTS 64
#define LIMIT_SECONDS 30
static struct {
	unsigned long hash;
	time_t last;
	unsigned suppressed;
} limits[LIMIT_SLOTS];
static pthread_mutex_t limits_lock = PTHREAD_MUTEX_INITIALIZER;

bool rfs_log_is_journal(const char *journal_stream, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (!journal_stream || !*journal_stream)
		return false;
	errno = 0;
	dev = strtoull(journal_stream, &end, 10);
	if (errno || end == journal_stream || *end != ':')
		return false;
	journal_stream = end + 1;
	ino = strtoull(journal_stream, &end, 10);
	if (errno || end == journal_stream || *end)
		return false;
	/* the variable is inherited: a child whose stderr was redirected
	 * elsewhere must not prefix its lines */
	return fstat(fd, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void rfs_log_init(enum rfs_log_sink sink, int max_level)
{
	log_max = max_level;
	rfs_log_set_sink(sink);
}

/* syslog(3) as the daemon's own: LOG_DAEMON, its pid on every line */
void rfs_log_set_sink(enum rfs_log_sink sink)
{
	if (sink == RFS_LOG_SYSLOG && log_sink != RFS_LOG_SYSLOG)
		openlog("ruciofs", LOG_PID, LOG_DAEMON);
	log_sink = sink;
	log_journal =
		sink == RFS_LOG_STDERR &&
		rfs_log_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

int rfs_log_level_of(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = { { "error", LOG_ERR },
		       { "warning", LOG_WARNING },
		       { "info", LOG_INFO },
		       { "debug", LOG_DEBUG } };

	for (size_t i = 0; name && i < sizeof(levels) / sizeof(levels[0]); i++)
		if (!strcmp(name, levels[i].name))
			return levels[i].level;
	return -EINVAL;
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
	if (log_journal)
		fprintf(stderr, "<%d>ruciofs: %s: %s%s\n", level & 7,
			level_name(level), line, tail);
	else
		fprintf(stderr, "ruciofs: %s: %s%s\n", level_name(level), line,
			tail);
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

/*
 * Whether a line about @key may go now (at most one per key and
 * LIMIT_SECONDS); *@suppressed: how many were held back before it.
 */
static bool limit_pass(const char *key, unsigned *suppressed)
{
	unsigned long h = hash_key(key);
	unsigned slot = h % LIMIT_SLOTS;
	time_t now = time(NULL);
	bool pass = false;

	*suppressed = 0;
	pthread_mutex_lock(&limits_lock);
	if (limits[slot].hash != h ||
	    now - limits[slot].last >= LIMIT_SECONDS) {
		*suppressed =
			limits[slot].hash == h ? limits[slot].suppressed : 0;
		limits[slot].hash = h;
		limits[slot].last = now;
		limits[slot].suppressed = 0;
		pass = true;
	} else {
		limits[slot].suppressed++;
	}
	pthread_mutex_unlock(&limits_lock);
	return pass;
}

void rfs_log_limited(int level, const char *key, const char *fmt, ...)
{
	unsigned suppressed;
	va_list ap;

	if (level > log_max || !limit_pass(key, &suppressed))
		return;
	va_start(ap, fmt);
	rfs_vlog(level, fmt, ap);
	va_end(ap);
	if (suppressed)
		rfs_log(level, "(%u similar lines about '%s' suppressed)",
			suppressed, key);
}

/* "event NAME: " and the message, as one line. */
static void __attribute__((format(printf, 3, 0)))
vevent(int level, const char *name, const char *fmt, va_list ap)
{
	char msg[LINE_MAX_BYTES];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	rfs_log(level, "event %s: %s", name, msg);
}

void rfs_event(int level, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (level > log_max)
		return;
	va_start(ap, fmt);
	vevent(level, name, fmt, ap);
	va_end(ap);
}

void rfs_event_limited(int level, const char *name, const char *key,
		       const char *fmt, ...)
{
	unsigned suppressed;
	va_list ap;

	if (level > log_max || !limit_pass(key, &suppressed))
		return;
	va_start(ap, fmt);
	vevent(level, name, fmt, ap);
	va_end(ap);
	if (suppressed)
		rfs_log(level, "event %s: (%u similar lines suppressed)", name,
			suppressed);
}
