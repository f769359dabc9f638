#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/transport.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

/* The registry: a new transport is one more line here. */
static const struct rfs_transport_ops *const all_ops[] = {
	&rfs_http_transport_ops,
	&rfs_xrootd_transport_ops,
};
#define NOPS (sizeof(all_ops) / sizeof(all_ops[0]))

/* Unused sessions are kept this long, and this many at most: the next
 * file on the same endpoint skips the login. */
#define IDLE_SECS 300.0
#define IDLE_MAX 64

struct rfs_transports {
	struct rfs_transport *t[NOPS];
	/* lock guards the sessions; a leaf, never held across a session's
	 * or a file's open or close. opened: a session's open ended. */
	pthread_mutex_t lock;
	pthread_cond_t opened;
	struct rfs_tsession *sessions;
};

static void cleanup_first(size_t n)
{
	while (n--)
		if (all_ops[n]->global_cleanup)
			all_ops[n]->global_cleanup();
}

int rfs_transports_global_init(void)
{
	for (size_t i = 0; i < NOPS; i++) {
		int rc =
			all_ops[i]->global_init ? all_ops[i]->global_init() : 0;

		if (rc) {
			cleanup_first(i);
			return rc;
		}
	}
	return 0;
}

void rfs_transports_global_cleanup(void)
{
	cleanup_first(NOPS);
}

int rfs_transports_open(struct rfs_transports **out,
			const struct rfs_conf *conf)
{
	struct rfs_transports *ts = calloc(1, sizeof(*ts));
	int rc = 0;

	if (!ts)
		return -ENOMEM;
	pthread_mutex_init(&ts->lock, NULL);
	pthread_cond_init(&ts->opened, NULL);
	for (size_t i = 0; i < NOPS && !rc; i++)
		rc = all_ops[i]->open(&ts->t[i], conf);
	if (rc) {
		rfs_transports_close(ts);
		return rc;
	}
	*out = ts;
	return 0;
}

int rfs_transports_start(struct rfs_transports *ts)
{
	int first = 0;

	for (size_t i = 0; i < NOPS; i++) {
		int rc = all_ops[i]->start ? all_ops[i]->start(ts->t[i]) : 0;

		if (rc) {
			/* after daemonizing nothing exits: the mount goes
			 * on, and the ranges it fails go to other replicas */
			rfs_err("transport %s cannot start: %s",
				all_ops[i]->name, rfs_errno_reason(rc));
			if (!first)
				first = rc;
		}
	}
	return first;
}

static void session_free(struct rfs_tsession *s)
{
	if (s->state > 0 && s->tp->ops->session_close)
		s->tp->ops->session_close(s->tp, s);
	free(s);
}

void rfs_transports_close(struct rfs_transports *ts)
{
	struct rfs_tsession *s;

	if (!ts)
		return;
	/* every file handle is closed by now: only idle sessions remain */
	while ((s = ts->sessions)) {
		ts->sessions = s->next;
		session_free(s);
	}
	for (size_t i = 0; i < NOPS; i++)
		if (ts->t[i])
			ts->t[i]->ops->close(ts->t[i]);
	pthread_cond_destroy(&ts->opened);
	pthread_mutex_destroy(&ts->lock);
	free(ts);
}

static bool scheme_matches(const char *url, const char *scheme)
{
	size_t n = strlen(scheme);

	return strncasecmp(url, scheme, n) == 0 && !strncmp(url + n, "://", 3);
}

const char *rfs_transports_scheme(size_t i)
{
	for (size_t k = 0; k < NOPS; k++) {
		const char *const *s = all_ops[k]->schemes;

		for (; *s; s++)
			if (i-- == 0)
				return *s;
	}
	return NULL;
}

struct rfs_transport *rfs_transports_find(struct rfs_transports *ts,
					  const char *url)
{
	for (size_t i = 0; i < NOPS; i++) {
		const char *const *s = all_ops[i]->schemes;

		for (; *s; s++)
			if (scheme_matches(url, *s))
				return ts->t[i];
	}
	return NULL;
}

void rfs_transports_versions(char *out, size_t len)
{
	size_t used = 0;

	if (!len)
		return;
	out[0] = '\0';
	for (size_t i = 0; i < NOPS && used < len; i++) {
		const char *v =
			all_ops[i]->version ? all_ops[i]->version() : NULL;
		int n;

		if (!v || !v[0])
			continue;
		n = snprintf(out + used, len - used, "%s%s", used ? ", " : "",
			     v);
		used = n < 0 ? len : used + (size_t)n;
	}
}

int rfs_transport_normalize(const struct rfs_transport *t, struct rfs_buf *out,
			    const char *pfn)
{
	if (t->ops->normalize)
		return t->ops->normalize(out, pfn);
	return rfs_buf_add(out, pfn, strlen(pfn));
}

/* "scheme://authority" of @url: what a session is per. */
static int endpoint_of(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://");
	size_t n;

	if (!p)
		return -EINVAL;
	p += 3;
	n = (size_t)(p - url) + strcspn(p, "/?#");
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, url, n);
	out[n] = '\0';
	return 0;
}

/* Under ts->lock. */
static struct rfs_tsession *find_session(struct rfs_transports *ts,
					 const struct rfs_transport *t,
					 const char *ep, const char *key)
{
	for (struct rfs_tsession *s = ts->sessions; s; s = s->next)
		if (s->tp == t && s->state >= 0 && !strcmp(s->endpoint, ep) &&
		    !strcmp(s->key, key))
			return s;
	return NULL;
}

/* Under ts->lock: takes @s out of the list (its holders keep it). */
static void unlink_session(struct rfs_transports *ts, struct rfs_tsession *s)
{
	for (struct rfs_tsession **pp = &ts->sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			return;
		}
}

/* Under ts->lock: the session unused the longest, or NULL. */
static struct rfs_tsession *oldest_idle(struct rfs_transports *ts, size_t *idle)
{
	struct rfs_tsession *old = NULL;

	*idle = 0;
	for (struct rfs_tsession *s = ts->sessions; s; s = s->next) {
		if (s->refs)
			continue;
		++*idle;
		if (!old || s->idle_since < old->idle_since)
			old = s;
	}
	return old;
}

/*
 * Under ts->lock: unused sessions past IDLE_SECS, or beyond IDLE_MAX
 * (the oldest first), unlinked onto *@out for closing without the lock.
 */
static void trim_idle(struct rfs_transports *ts, struct rfs_tsession **out)
{
	double now = rfs_mono_now();
	struct rfs_tsession *old;
	size_t idle;

	while ((old = oldest_idle(ts, &idle)) &&
	       (idle > IDLE_MAX || now - old->idle_since >= IDLE_SECS)) {
		unlink_session(ts, old);
		old->next = *out;
		*out = old;
	}
}

static void close_sessions(struct rfs_tsession *s)
{
	while (s) {
		struct rfs_tsession *next = s->next;

		session_free(s);
		s = next;
	}
}

/* Under ts->lock: drops a reference; frees a failed session unlinked. */
static void unref_session(struct rfs_transports *ts, struct rfs_tsession *s,
			  struct rfs_tsession **closing)
{
	if (--s->refs)
		return;
	if (s->state < 0) {
		free(s);
		return;
	}
	s->idle_since = rfs_mono_now();
	trim_idle(ts, closing);
}

/* Under ts->lock, which it drops while the transport opens a session. */
static int open_session(struct rfs_transports *ts, struct rfs_transport *t,
			struct rfs_tsession *s, const struct rfs_who *who)
{
	int rc;

	pthread_mutex_unlock(&ts->lock);
	rc = t->ops->session_open(t, s, who);
	pthread_mutex_lock(&ts->lock);
	s->state = rc ? (rc < 0 ? rc : -EIO) : 1;
	if (rc) /* the next open tries again; waiters see this one fail */
		unlink_session(ts, s);
	pthread_cond_broadcast(&ts->opened);
	return rc;
}

/* The session of (@ep, @who->key), found or made; a reference. */
static int get_session(struct rfs_transports *ts, struct rfs_transport *t,
		       const char *ep, const struct rfs_who *who,
		       struct rfs_tsession **out)
{
	struct rfs_tsession *s, *closing = NULL;
	int rc = 0;

	pthread_mutex_lock(&ts->lock);
	s = find_session(ts, t, ep, who->key);
	if (s) {
		s->refs++;
		while (s->state == 0)
			pthread_cond_wait(&ts->opened, &ts->lock);
		rc = s->state < 0 ? s->state : 0;
	} else if ((s = calloc(1, sizeof(*s)))) {
		s->tp = t;
		snprintf(s->endpoint, sizeof(s->endpoint), "%s", ep);
		snprintf(s->key, sizeof(s->key), "%s", who->key);
		s->refs = 1;
		s->state = t->ops->session_open ? 0 : 1;
		s->next = ts->sessions;
		ts->sessions = s;
		if (!s->state)
			rc = open_session(ts, t, s, who);
	} else {
		rc = -ENOMEM;
	}
	if (rc && s)
		unref_session(ts, s, &closing);
	pthread_mutex_unlock(&ts->lock);
	close_sessions(closing);
	*out = rc ? NULL : s;
	return rc;
}

static void put_session(struct rfs_transports *ts, struct rfs_tsession *s)
{
	struct rfs_tsession *closing = NULL;

	pthread_mutex_lock(&ts->lock);
	unref_session(ts, s, &closing);
	pthread_mutex_unlock(&ts->lock);
	close_sessions(closing);
}

int rfs_transport_open_file(struct rfs_transports *ts, struct rfs_transport *t,
			    const char *url, const struct rfs_who *who,
			    struct rfs_tfile **out)
{
	char ep[sizeof(((struct rfs_tsession *)0)->endpoint)];
	struct rfs_tfile *f;
	int rc = endpoint_of(url, ep, sizeof(ep));

	if (rc)
		return rc;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->url = strdup(url))) {
		free(f);
		return -ENOMEM;
	}
	f->who = who;
	rc = get_session(ts, t, ep, who, &f->sess);
	if (!rc && t->ops->open_file)
		rc = t->ops->open_file(t, f);
	if (rc) {
		if (f->sess)
			put_session(ts, f->sess);
		free(f->url);
		free(f);
		return rc;
	}
	*out = f;
	return 0;
}

ssize_t rfs_transport_preadv(struct rfs_tfile *f, const struct iovec *iov,
			     int iovcnt, uint64_t off, uint64_t file_size,
			     struct rfs_xfer_note *note)
{
	struct rfs_transport *t = f->sess->tp;

	return t->ops->preadv(t, f, iov, iovcnt, off, file_size, note);
}

ssize_t rfs_transport_readv(struct rfs_tfile *f, const struct rfs_tseg *segs,
			    size_t n, uint64_t file_size,
			    struct rfs_xfer_note *note)
{
	struct rfs_transport *t = f->sess->tp;

	if (!t->ops->readv || !(t->ops->caps & RFS_TP_VECTOR))
		return -EOPNOTSUPP;
	return t->ops->readv(t, f, segs, n, file_size, note);
}

int rfs_transport_checksum(struct rfs_tfile *f, const char *type, char *hex,
			   size_t hexlen, struct rfs_xfer_note *note)
{
	struct rfs_transport *t = f->sess->tp;

	if (!t->ops->checksum)
		return -EOPNOTSUPP;
	return t->ops->checksum(t, f, type, hex, hexlen, note);
}

void rfs_transport_close_file(struct rfs_transports *ts, struct rfs_tfile *f)
{
	struct rfs_transport *t;

	if (!f)
		return;
	t = f->sess->tp;
	if (t->ops->close_file)
		t->ops->close_file(t, f);
	put_session(ts, f->sess);
	free(f->url);
	free(f);
}

void rfs_transports_sessions(struct rfs_transports *ts, size_t *busy,
			     size_t *idle)
{
	*busy = *idle = 0;
	pthread_mutex_lock(&ts->lock);
	for (struct rfs_tsession *s = ts->sessions; s; s = s->next) {
		*busy += s->refs > 0;
		*idle += s->refs == 0;
	}
	pthread_mutex_unlock(&ts->lock);
}
