#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authz/callers.h"
#include "authz/discover.h"
#include "authz/identity.h"
#include "authz/jwt.h"
#include "authz/keyring.h"
#include "authz/token.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/banned.h"

/* Users kept at most, and how often a kept answer is looked at again. */
#define CALLERS_MAX 1024
#define RECHECK 1.0
/* Clock difference tolerated on exp, nbf and iat. */
#define SKEW 60

struct caller {
	uid_t uid;
	struct rfs_identity *id; /* NULL: none usable */
	double checked;		 /* rfs_mono_now() */
	double used;
};

struct rfs_callers {
	struct rfs_discovery *disc;
	struct rfs_keyring *kr;
	struct rfs_identity *mount;
	struct rfs_jwt_policy pol;
	/* lock guards the table; a leaf, never held across discovery or
	 * verification */
	pthread_mutex_t lock;
	struct caller v[CALLERS_MAX];
	size_t n;
};

int rfs_callers_new(struct rfs_callers **out, const struct rfs_callers_opts *o)
{
	const struct rfs_conf *conf = o->conf;
	struct rfs_discover_opts d = { .token_env = conf->token_env,
				       .env_timeout = 2,
				       .forbid_dir = conf->mountpoint };
	struct rfs_keyring_opts k = { .issuers = &conf->token_issuers,
				      .ca_cert = conf->ca_cert,
				      .connect_timeout = conf->connect_timeout,
				      .io_timeout = conf->io_timeout,
				      .store = o->store };
	struct rfs_callers *cs = calloc(1, sizeof(*cs));
	int rc;

	if (!cs)
		return -ENOMEM;
	pthread_mutex_init(&cs->lock, NULL);
	cs->mount = o->mount;
	cs->pol.issuers = &conf->token_issuers;
	cs->pol.audiences = &conf->token_audiences;
	cs->pol.skew = SKEW;
	rc = rfs_discovery_new(&cs->disc, &d);
	if (!rc)
		rc = rfs_keyring_new(&cs->kr, &k);
	if (rc) {
		rfs_callers_free(cs);
		return rc;
	}
	*out = cs;
	return 0;
}

void rfs_callers_free(struct rfs_callers *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->n; i++)
		rfs_identity_put(cs->v[i].id);
	rfs_keyring_free(cs->kr);
	rfs_discovery_free(cs->disc);
	pthread_mutex_destroy(&cs->lock);
	free(cs);
}

/* Under cs->lock. */
static struct caller *find(struct rfs_callers *cs, uid_t uid)
{
	for (size_t i = 0; i < cs->n; i++)
		if (cs->v[i].uid == uid)
			return &cs->v[i];
	return NULL;
}

/* Under cs->lock: a kept answer still good to give without a look. */
static bool still_good(const struct caller *c, double now)
{
	if (now - c->checked >= RECHECK)
		return false;
	return !c->id || (!rfs_identity_was_refused(c->id) &&
			  (!rfs_identity_is_bearer(c->id) ||
			   rfs_identity_expires(c->id) > time(NULL)));
}

/* Under cs->lock: the slot for @uid, the least recently used one taken
 * when the table is full. */
static struct caller *slot(struct rfs_callers *cs, uid_t uid,
			   struct rfs_identity **old)
{
	struct caller *c = find(cs, uid);

	*old = NULL;
	if (!c && cs->n < CALLERS_MAX)
		c = &cs->v[cs->n++];
	for (size_t i = 0; !c && i < cs->n; i++)
		if (!c || cs->v[i].used < c->used)
			c = &cs->v[i];
	if (c->uid != uid || c->id) {
		*old = c->id;
		c->id = NULL;
	}
	c->uid = uid;
	return c;
}

/* Keeps @id (may be NULL) as @uid's answer; takes a reference. */
static void keep(struct rfs_callers *cs, uid_t uid, struct rfs_identity *id)
{
	struct rfs_identity *old;
	struct caller *c;
	double now = rfs_mono_now();

	pthread_mutex_lock(&cs->lock);
	c = slot(cs, uid, &old);
	c->id = rfs_identity_get(id);
	c->checked = c->used = now;
	pthread_mutex_unlock(&cs->lock);
	rfs_identity_put(old);
}

/* The kept identity of @uid, unchanged token: *@out; true if kept. */
static bool kept(struct rfs_callers *cs, uid_t uid, const char *key,
		 struct rfs_identity **out)
{
	struct caller *c;
	bool yes = false;

	pthread_mutex_lock(&cs->lock);
	c = find(cs, uid);
	if (c && c->id && !strcmp(rfs_identity_key(c->id), key) &&
	    !rfs_identity_was_refused(c->id) &&
	    rfs_identity_expires(c->id) > time(NULL)) {
		*out = rfs_identity_get(c->id);
		c->checked = c->used = rfs_mono_now();
		yes = true;
	}
	pthread_mutex_unlock(&cs->lock);
	return yes;
}

/* One log line per uid and reason a minute; never the token. */
static void refused(uid_t uid, const char *why, const char *where)
{
	char key[96];

	snprintf(key, sizeof(key), "caller:%u:%s", (unsigned)uid, why);
	rfs_log_limited(LOG_WARNING, key,
			"uid %u: token refused: %s (%s); reads as no one",
			(unsigned)uid, why, where);
}

/* Verifies @token and makes @uid's identity of it. */
static int verified(struct rfs_callers *cs, uid_t uid, const char *token,
		    const char *key, const char *where,
		    struct rfs_identity **out)
{
	struct rfs_bearer b = { .token = token, .where = where, .uid = uid };
	struct rfs_jwt jwt;
	const char *why = "malformed";
	int rc = rfs_keyring_verify(cs->kr, token, &cs->pol, time(NULL), &jwt,
				    &why);

	*out = NULL;
	if (rc == -ENOMEM)
		return rc;
	if (rc) {
		refused(uid, why, where);
		return 0;
	}
	b.sub = jwt.sub;
	b.exp = (time_t)jwt.exp;
	b.groups = &jwt.groups;
	rc = rfs_identity_new_bearer(out, key, &b);
	rfs_jwt_release(&jwt);
	return rc;
}

/* The caller's identity, looked for: discovery, then verification. */
static int look(struct rfs_callers *cs, uid_t uid, gid_t gid, pid_t pid,
		struct rfs_identity **out)
{
	char where[320], fp[32], key[96];
	char *token = NULL;
	int rc = rfs_discovery_token(cs->disc, uid, gid, pid, &token, where,
				     sizeof(where));

	*out = NULL;
	if (rc == -ENOENT && uid == 0)
		*out = rfs_identity_get(cs->mount);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return 0; /* discovery said why, once */
	rfs_jwt_fingerprint(token, fp, sizeof(fp));
	snprintf(key, sizeof(key), "u%u:%s", (unsigned)uid, fp);
	if (!kept(cs, uid, key, out))
		rc = verified(cs, uid, token, key, where, out);
	rfs_token_free(token);
	return rc;
}

int rfs_callers_identity(struct rfs_callers *cs, uid_t uid, gid_t gid,
			 pid_t pid, struct rfs_identity **out)
{
	double now = rfs_mono_now();
	bool stale = false;
	struct caller *c;
	int rc;

	pthread_mutex_lock(&cs->lock);
	c = find(cs, uid);
	if (c && still_good(c, now)) {
		*out = rfs_identity_get(c->id);
		c->used = now;
		pthread_mutex_unlock(&cs->lock);
		return 0;
	}
	stale = c && c->id && rfs_identity_was_refused(c->id);
	pthread_mutex_unlock(&cs->lock);
	/* the catalogue refused it: the file may hold a new one already */
	if (stale)
		rfs_discovery_forget(cs->disc, uid);
	rc = look(cs, uid, gid, pid, out);
	if (!rc)
		keep(cs, uid, *out);
	return rc;
}

size_t rfs_callers_count(struct rfs_callers *cs)
{
	size_t n = 0;

	pthread_mutex_lock(&cs->lock);
	for (size_t i = 0; i < cs->n; i++)
		n += cs->v[i].id != NULL;
	pthread_mutex_unlock(&cs->lock);
	return n;
}
