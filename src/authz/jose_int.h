/*
 * What jwt.c and keyring.c share and nobody else needs: strict base64url,
 * and a key set's layout (a verifier looks a key up by kid).
 */
#ifndef RFS_AUTHZ_JOSE_INT_H
#define RFS_AUTHZ_JOSE_INT_H

#include <stddef.h>

#include <openssl/evp.h>

enum rfs_jwk_type {
	RFS_JWK_RSA,
	RFS_JWK_EC, /* P-256 only */
};

struct rfs_jwk {
	char kid[128];
	enum rfs_jwk_type type;
	EVP_PKEY *pkey; /* owned */
};

struct rfs_jwks {
	struct rfs_jwk *keys;
	size_t n;
};

/* The key of @kid in @k (NULL-safe), or NULL. */
const struct rfs_jwk *rfs_jwks_find(const struct rfs_jwks *k, const char *kid);

/*
 * Decodes the @len base64url characters at @in (RFC 7515 section 2: no
 * padding, no blanks, unused trailing bits zero, so each value has one
 * spelling) into @out, which has room for len * 3 / 4 bytes. Returns 0
 * or -EINVAL.
 */
int rfs_b64url_decode(const char *in, size_t len, unsigned char *out,
		      size_t *outlen);

#endif
