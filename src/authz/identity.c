#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/identity.h"
#include "authz/token.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

struct rfs_identity {
	unsigned refs; /* atomic */
	char key[96];
	char where[320];
	/* a caller's (bearer): the token shown as it is, and its claims */
	char *bearer;
	char sub[256];
	time_t exp;
	struct rfs_strv groups;
	bool refused; /* atomic */

	struct rfs_token_source *tokens; /* a token found: RFS_AUTH_TOKEN */
	struct rfs_login login;		 /* or one logged in for */
	const struct rfs_conf *conf;

	/* lock guards the logged-in token; a leaf, never held during a
	 * login: one thread logs in (login_busy), the others wait on
	 * login_done */
	pthread_mutex_t lock;
	pthread_cond_t login_done;
	bool login_busy;
	int login_rc;
	double login_retry; /* monotonic: a failed login is not retried
			       before this */
	char *token;
	time_t renew_at;
	unsigned generation; /* bumped by every login */
};

int rfs_identity_new(struct rfs_identity **out, const struct rfs_conf *conf,
		     const char *key, const struct rfs_login *login)
{
	struct rfs_identity *id = calloc(1, sizeof(*id));
	int rc = 0;

	if (!id)
		return -ENOMEM;
	id->refs = 1;
	rfs_strv_init(&id->groups);
	snprintf(id->key, sizeof(id->key), "%s", key);
	id->conf = conf;
	id->login = *login;
	pthread_mutex_init(&id->lock, NULL);
	pthread_cond_init(&id->login_done, NULL);
	if (conf->auth_type == RFS_AUTH_TOKEN) {
		rc = rfs_token_source_new(&id->tokens, conf->token_file);
		if (!rc)
			rc = rfs_token_source_forbid(id->tokens,
						     conf->mountpoint);
	} else {
		snprintf(id->where, sizeof(id->where), "userpass login as '%s'",
			 conf->username);
	}
	if (rc) {
		rfs_identity_put(id);
		return rc;
	}
	*out = id;
	return 0;
}

int rfs_identity_new_bearer(struct rfs_identity **out, const char *key,
			    const struct rfs_bearer *b)
{
	struct rfs_identity *id = calloc(1, sizeof(*id));
	int rc = 0;

	if (!id)
		return -ENOMEM;
	id->refs = 1;
	rfs_strv_init(&id->groups);
	pthread_mutex_init(&id->lock, NULL);
	pthread_cond_init(&id->login_done, NULL);
	snprintf(id->key, sizeof(id->key), "%s", key);
	snprintf(id->where, sizeof(id->where), "%s", b->where);
	snprintf(id->sub, sizeof(id->sub), "%s", b->sub ? b->sub : "");
	id->exp = b->exp;
	id->bearer = strdup(b->token);
	for (size_t i = 0; b->groups && i < b->groups->n && !rc; i++)
		rc = rfs_strv_push(&id->groups, b->groups->v[i]);
	if (!rc && !id->bearer)
		rc = -ENOMEM;
	if (rc) {
		rfs_identity_put(id);
		return rc;
	}
	*out = id;
	return 0;
}

struct rfs_identity *rfs_identity_get(struct rfs_identity *id)
{
	if (id)
		__atomic_add_fetch(&id->refs, 1, __ATOMIC_RELAXED);
	return id;
}

void rfs_identity_put(struct rfs_identity *id)
{
	if (!id || __atomic_sub_fetch(&id->refs, 1, __ATOMIC_ACQ_REL))
		return;
	rfs_token_source_free(id->tokens);
	rfs_token_free(id->token);
	rfs_token_free(id->bearer);
	rfs_strv_release(&id->groups);
	pthread_cond_destroy(&id->login_done);
	pthread_mutex_destroy(&id->lock);
	free(id);
}

bool rfs_identity_is_bearer(const struct rfs_identity *id)
{
	return id->bearer != NULL;
}

bool rfs_identity_in_group(const struct rfs_identity *id, const char *group)
{
	for (size_t i = 0; i < id->groups.n; i++)
		if (!strcmp(id->groups.v[i], group))
			return true;
	return false;
}

const char *rfs_identity_sub(const struct rfs_identity *id)
{
	return id->sub;
}

time_t rfs_identity_expires(const struct rfs_identity *id)
{
	return id->exp;
}

int rfs_identity_token_expires(struct rfs_identity *id, time_t *exp)
{
	long long e = 0;
	char *token;
	int rc;

	*exp = id->exp;
	if (!id->tokens)
		return id->bearer ? 0 : -ENOENT;
	rc = rfs_token_source_get(id->tokens, &token);
	if (rc)
		return rc;
	rc = rfs_token_is_jwt(token) ? rfs_token_jwt_exp(token, &e) : -ENOENT;
	rfs_token_free(token);
	*exp = rc ? 0 : (time_t)e;
	return rc;
}

bool rfs_identity_was_refused(const struct rfs_identity *id)
{
	return __atomic_load_n(&id->refused, __ATOMIC_RELAXED);
}

const char *rfs_identity_key(const struct rfs_identity *id)
{
	return id->key;
}

bool rfs_identity_logs_in(const struct rfs_identity *id)
{
	return !id->tokens && !id->bearer;
}

const char *rfs_identity_where(struct rfs_identity *id)
{
	return id->tokens ? rfs_token_source_where(id->tokens) : id->where;
}

/* A copy of a bearer identity's token. */
static int bearer_copy(const struct rfs_identity *id, char **out)
{
	*out = strdup(id->bearer);
	return *out ? 0 : -ENOMEM;
}

/*
 * Logs in once for everybody: concurrent callers that find a login under
 * way wait for it rather than starting their own.
 */
static int log_in(struct rfs_identity *id, unsigned seen_generation)
{
	const struct rfs_conf *conf = id->conf;
	char *token = NULL;
	time_t renew = 0;
	int rc;

	pthread_mutex_lock(&id->lock);
	while (id->login_busy)
		pthread_cond_wait(&id->login_done, &id->lock);
	/* someone just tried (their result is ours), or a login failed
	 * moments ago: no new attempt, no new log line */
	if (id->generation != seen_generation ||
	    (id->login_rc && rfs_mono_now() < id->login_retry)) {
		rc = id->login_rc;
		pthread_mutex_unlock(&id->lock);
		return rc;
	}
	id->login_busy = true;
	pthread_mutex_unlock(&id->lock);

	rc = id->login.login(id->login.arg, &token, &renew);
	/* never the token: who logged in, and until when it is used */
	if (rc)
		rfs_dbg("catalogue: login as '%s' at %s: %s", conf->username,
			conf->auth_host, rfs_errno_reason(rc));
	else
		rfs_dbg("catalogue: logged in as '%s' at %s; renewal in %lld s",
			conf->username, conf->auth_host,
			(long long)(renew - time(NULL)));

	pthread_mutex_lock(&id->lock);
	if (!rc) {
		rfs_token_free(id->token);
		id->token = token;
		id->renew_at = renew;
	}
	id->login_rc = rc;
	/* a refused or broken login is not repeated for a second by every
	 * thread; a catalogue out of reach has its offline window anyway */
	id->login_retry = rfs_mono_now() + 1;
	id->generation++;
	id->login_busy = false;
	pthread_cond_broadcast(&id->login_done);
	pthread_mutex_unlock(&id->lock);
	return rc;
}

/* Errors of the token source mean "no credential", never "no file". */
static int token_errno(int rc)
{
	return rc == -ENOMEM ? rc : -EACCES;
}

static int found_token(struct rfs_identity *id, char **out)
{
	int rc = rfs_token_source_get(id->tokens, out);

	if (rc)
		rfs_log_limited(LOG_ERR, "token",
				"no usable bearer token (%s): %s",
				rfs_token_source_where(id->tokens),
				rfs_errno_reason(rc));
	return rc ? token_errno(rc) : 0;
}

int rfs_identity_catalog_token(struct rfs_identity *id, char **out,
			       unsigned *gen)
{
	bool fresh;
	int rc;

	*out = NULL;
	*gen = 0;
	if (id->bearer)
		return bearer_copy(id, out);
	if (id->tokens)
		return found_token(id, out);
	pthread_mutex_lock(&id->lock);
	fresh = id->token && time(NULL) < id->renew_at;
	*gen = id->generation;
	*out = fresh ? strdup(id->token) : NULL;
	pthread_mutex_unlock(&id->lock);
	if (fresh)
		return *out ? 0 : -ENOMEM;
	rc = log_in(id, *gen);
	if (rc)
		return rc;
	/* the token just obtained is used at least once, whatever its
	 * renewal time says */
	pthread_mutex_lock(&id->lock);
	*gen = id->generation;
	*out = id->token ? strdup(id->token) : NULL;
	pthread_mutex_unlock(&id->lock);
	return *out ? 0 : -EACCES;
}

void rfs_identity_refused(struct rfs_identity *id, unsigned gen)
{
	/* a caller's token is theirs to renew: their next request looks
	 * for it again (callers.c) */
	if (id->bearer) {
		__atomic_store_n(&id->refused, true, __ATOMIC_RELAXED);
		return;
	}
	/* a token file may hold a new one already: look now, not in 1 s */
	if (id->tokens)
		rfs_token_source_stale(id->tokens);
	pthread_mutex_lock(&id->lock);
	if (id->generation == gen)
		id->renew_at = 0;
	pthread_mutex_unlock(&id->lock);
}

int rfs_identity_storage_token(struct rfs_identity *id, char **out)
{
	int rc;

	*out = NULL;
	if (id->bearer)
		return bearer_copy(id, out);
	if (!id->tokens)
		return 0;
	rc = rfs_token_source_get(id->tokens, out);
	if (rc == 0 && !rfs_token_is_jwt(*out)) {
		rfs_token_free(*out);
		*out = NULL;
	}
	return rc == -ENOENT ? 0 : rc ? token_errno(rc) : 0;
}
