/*
 * An identity: the credential presented to the catalogue and to storage.
 * The mount's own is found (a WLCG token file or discovery) or obtained
 * (a userpass login, renewed before it expires, once for all concurrent
 * callers). On a shared mount each caller's is a bearer identity: the
 * caller's own verified token, held as it is (callers.c makes them). The
 * catalogue and the transports are handed one and never fetch a
 * credential themselves. Counted: whoever keeps one takes a reference.
 */
#ifndef RFS_AUTHZ_IDENTITY_H
#define RFS_AUTHZ_IDENTITY_H

#include <stdbool.h>
#include <time.h>

#include "conf/conf.h"
#include <sys/types.h>

struct rfs_identity;

/*
 * The catalogue's login exchange, for an identity that logs in with a
 * user name and password (authz does not speak Rucio): fills a token,
 * owned by the caller, and when to renew it. 0 or a negative errno.
 */
struct rfs_login {
	int (*login)(void *arg, char **token, time_t *renew);
	void *arg;
};

/*
 * The identity @conf describes (auth_type, token_file, username), known by
 * @key. @login is copied; it is called only for userpass. Contacts nobody.
 * One reference.
 */
int rfs_identity_new(struct rfs_identity **out, const struct rfs_conf *conf,
		     const char *key, const struct rfs_login *login);

/* What a caller's verified token says, for a bearer identity. */
struct rfs_bearer {
	const char *token; /* copied, wiped when the identity goes */
	const char *where; /* where it was found, for messages */
	const char *sub;
	time_t exp;
	const struct rfs_strv *groups; /* "/vo[/sub]" */
	uid_t uid;		       /* whose it is */
};

/* A caller's identity, known by @key: its token shown as it is to the
 * catalogue and to storage. One reference. */
int rfs_identity_new_bearer(struct rfs_identity **out, const char *key,
			    const struct rfs_bearer *b);

struct rfs_identity *rfs_identity_get(struct rfs_identity *id);
/* Drops a reference; NULL is fine. */
void rfs_identity_put(struct rfs_identity *id);

const char *rfs_identity_key(const struct rfs_identity *id);
/* True when it logs in (userpass), false when it finds a token. */
bool rfs_identity_logs_in(const struct rfs_identity *id);
/* Where its token came from, for messages (never the token). */
const char *rfs_identity_where(struct rfs_identity *id);

/* A bearer identity's claims; the mount's has none (false, "", 0). */
bool rfs_identity_is_bearer(const struct rfs_identity *id);
bool rfs_identity_in_group(const struct rfs_identity *id, const char *group);
const char *rfs_identity_sub(const struct rfs_identity *id);
time_t rfs_identity_expires(const struct rfs_identity *id);
/*
 * When the token it shows expires: a bearer's, or a found token's JWT
 * "exp" (not verified: it is ours). -ENOENT when not known that way (a
 * userpass login: the catalogue's answer says; an opaque token).
 */
int rfs_identity_token_expires(struct rfs_identity *id, time_t *exp);
/* A bearer identity whose token the catalogue or storage refused: its
 * caller's token is to be looked for again. */
bool rfs_identity_was_refused(const struct rfs_identity *id);

/*
 * A copy of the token to show the catalogue (free with rfs_token_free),
 * logging in first when there is none or it is due for renewal. *@gen
 * names the login it came from, for rfs_identity_refused().
 */
int rfs_identity_catalog_token(struct rfs_identity *id, char **out,
			       unsigned *gen);
/* The catalogue refused the token of login @gen (HTTP 401): the next
 * call looks for a new one (a token file), or logs in again. */
void rfs_identity_refused(struct rfs_identity *id, unsigned gen);

/*
 * A copy of the bearer token to show storage endpoints, or NULL in *@out
 * when the identity has none that storage understands (a userpass token
 * is not a JWT). Free with rfs_token_free().
 */
int rfs_identity_storage_token(struct rfs_identity *id, char **out);

#endif
