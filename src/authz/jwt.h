/*
 * WLCG JWT access tokens (common JWT profile v1; INDIGO IAM's "wlcg" and
 * "iam" profiles): parsing, and verification against an issuer's keys.
 * Only RS256 and ES256, each pinned to its key type (an RSA key verifies
 * only RS256, an EC P-256 key only ES256): never "none", never HMAC.
 * Nothing here touches the network; keyring.h finds the keys.
 */
#ifndef RFS_AUTHZ_JWT_H
#define RFS_AUTHZ_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "conf/conf.h" /* struct rfs_strv */

struct rfs_jwks;

/* The audience every relying party accepts (WLCG profile). */
#define RFS_JWT_AUD_ANY "https://wlcg.cern.ch/jwt/v1/any"

/* A token's header and claims, as parsed; nothing verified yet. */
struct rfs_jwt {
	char alg[16];
	char kid[128];
	char iss[512]; /* exactly as in the token (IAM's ends in '/') */
	char sub[256];
	long long exp, nbf, iat; /* seconds since the epoch */
	bool has_exp, has_nbf, has_iat;
	char ver[16]; /* wlcg.ver, "" when absent (IAM's "iam" profile) */
	struct rfs_strv aud;	/* "aud": a string or an array */
	struct rfs_strv groups; /* wlcg.groups, or IAM's "groups" given a
				   leading '/': always "/vo[/sub...]" */
	struct rfs_strv scopes; /* "scope", split on spaces */
	/* what the signature covers, and the signature (owned) */
	char *signed_part;
	size_t signed_len;
	unsigned char *sig;
	size_t sig_len;
};

/*
 * Parses @token (a compact JWS, at most RFS_TOKEN_MAX bytes): base64url
 * parts, header and payload JSON objects. Returns 0, or -EINVAL for
 * anything malformed (then @out holds nothing to release). Strings longer
 * than their field are malformed, not cut.
 */
int rfs_jwt_parse(const char *token, struct rfs_jwt *out);
void rfs_jwt_release(struct rfs_jwt *j);

/* What a token must satisfy beyond its signature. */
struct rfs_jwt_policy {
	const struct rfs_strv *issuers;	  /* "iss" must equal one exactly */
	const struct rfs_strv *audiences; /* one must be in "aud"; the WLCG
					     "any" audience always is */
	long skew;			  /* seconds allowed on exp/nbf/iat */
};

/*
 * Verifies @j: its key is @keys' key of j->kid, of the type its alg needs;
 * the signature; exp (required) and nbf/iat (when present) against @now
 * with the skew; iss; aud; wlcg.ver's major version 1 when present; every
 * storage.* scope has a path. Returns 0, or -EACCES with *@why a static
 * phrase for the log line ("expired", "not yet valid", "issued in the
 * future", "bad signature", "unknown key id", "algorithm not allowed",
 * "algorithm does not match the key", "issuer not accepted",
 * "audience not accepted", "unsupported wlcg.ver", "storage scope without
 * a path", "no expiry").
 */
int rfs_jwt_verify(const struct rfs_jwt *j, const struct rfs_jwks *keys,
		   const struct rfs_jwt_policy *p, time_t now,
		   const char **why);

/*
 * Whether @j's scopes grant @cap ("read", "create", "modify", "stage")
 * on @path (relative to the VO's base path, starting with '/'): a
 * "storage.<cap>:<prefix>" whose prefix is @path or one of its ancestors
 * by whole components ("/foo/bar" covers "/foo/bar/qux", not
 * "/foo/bargain"); "modify" implies "create". Only for a verified token.
 */
bool rfs_jwt_allows(const struct rfs_jwt *j, const char *cap, const char *path);

/* Whether @j asserts @group ("/vo/sub"; exact: "/vo/sub" does not imply
 * "/vo"). */
bool rfs_jwt_in_group(const struct rfs_jwt *j, const char *group);

/* A short stable fingerprint of a token (hex of the first 8 bytes of its
 * SHA-256) for keys and log lines: never the token. @out >= 17 bytes. */
void rfs_jwt_fingerprint(const char *token, char *out, size_t len);

#endif
