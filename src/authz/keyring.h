/*
 * Issuers' signing keys: JWKS documents parsed into keys, found through
 * each accepted issuer's OpenID discovery document over verified HTTPS,
 * kept in memory and, through a store the caller supplies (the cache's
 * metadata), across restarts so an offline site still validates tokens.
 */
#ifndef RFS_AUTHZ_KEYRING_H
#define RFS_AUTHZ_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "authz/jwt.h"
#include "conf/conf.h"

/* A parsed JWKS: the usable keys by kid (RSA; EC on P-256). */
struct rfs_jwks;

/*
 * Parses a JWKS document. Keys it cannot use (other kty or curve, no kid,
 * "use" other than "sig", bad numbers) are skipped; -EINVAL only when the
 * document is not a JWKS at all. An empty usable set is not an error.
 */
int rfs_jwks_parse(const char *json, size_t len, struct rfs_jwks **out);
void rfs_jwks_free(struct rfs_jwks *k);
size_t rfs_jwks_count(const struct rfs_jwks *k);
bool rfs_jwks_has(const struct rfs_jwks *k, const char *kid);

/* "jwks_uri" of an OpenID discovery document into @out: an https:// URL
 * only (-EPROTO otherwise), -EINVAL when absent or malformed. */
int rfs_oidc_jwks_uri(const char *json, size_t len, char *out, size_t outlen);

/*
 * Where an issuer's discovery document is: "<iss without its trailing
 * slash>/.well-known/openid-configuration"; for an issuer with a path,
 * @i = 0 gives "https://host/.well-known/openid-configuration/<path>",
 * @i = 1 "<iss>/.well-known/openid-configuration". -ENOENT past the
 * last, -EINVAL for an issuer that is not https://.
 */
int rfs_oidc_discovery_url(const char *iss, int i, char *out, size_t outlen);

/* Persistence of fetched key sets (the JWKS document as fetched). */
struct rfs_keyring_store {
	/* the document kept for @iss and when it was fetched; -ENOENT */
	int (*load)(void *arg, const char *iss, char **json, size_t *len,
		    time_t *fetched);
	int (*save)(void *arg, const char *iss, const char *json, size_t len,
		    time_t fetched);
	void *arg;
};

struct rfs_keyring_opts {
	const struct rfs_strv *issuers;
	const char *ca_cert; /* NULL: the system store */
	double connect_timeout, io_timeout;
	/* optional; copied */
	const struct rfs_keyring_store *store;
};

struct rfs_keyring;

/* Contacts nobody. */
int rfs_keyring_new(struct rfs_keyring **out, const struct rfs_keyring_opts *o);
void rfs_keyring_free(struct rfs_keyring *kr);

/*
 * Parses and verifies @token (jwt.h) with its issuer's keys: kept ones
 * (memory, then the store) while younger than 6 h; fetched when older,
 * or when the token's kid is unknown (at most once a minute per issuer);
 * on a fetch failure, kept keys younger than 2 days still serve. Only
 * issuers in the allow-list are ever fetched. May wait on the network
 * (bounded by the timeouts); holds no lock meanwhile. Returns 0 with @out
 * filled (release it), -EACCES with *@why as rfs_jwt_verify, or "issuer
 * keys unavailable" when no key could be had.
 */
int rfs_keyring_verify(struct rfs_keyring *kr, const char *token,
		       const struct rfs_jwt_policy *p, time_t now,
		       struct rfs_jwt *out, const char **why);

#endif
