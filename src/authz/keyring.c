/*
 * Issuers' signing keys: JWKS documents into OpenSSL keys, and OpenID
 * discovery.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "authz/jose_int.h"
#include "authz/keyring.h"
#include "util/banned.h"

/* IAM publishes one or two keys: a document of more keeps its first 64 */
#define JWKS_KEYS_MAX 64
#define RSA_BITS_MIN 2048
#define RSA_BYTES_MAX 1024 /* 8192 bits */
#define WELL_KNOWN "/.well-known/openid-configuration"

const struct rfs_jwk *rfs_jwks_find(const struct rfs_jwks *k, const char *kid)
{
	for (size_t i = 0; k && i < k->n; i++)
		if (!strcmp(k->keys[i].kid, kid))
			return &k->keys[i];
	return NULL;
}

/* A base64url member of @key into @out (at most @max bytes). */
static int b64_member(json_t *key, const char *name, unsigned char *out,
		      size_t max, size_t *len)
{
	json_t *v = json_object_get(key, name);

	if (!json_is_string(v) || json_string_length(v) * 3 / 4 > max)
		return -EINVAL;
	return rfs_b64url_decode(json_string_value(v), json_string_length(v),
				 out, len);
}

/* A public key of @type from @bld's parameters, checked (an EC point on
 * its curve, an RSA modulus that is odd...). */
static EVP_PKEY *key_from(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY_CTX *check = NULL;
	EVP_PKEY *pkey = NULL;

	if (params && ctx && EVP_PKEY_fromdata_init(ctx) == 1 &&
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1)
		check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (pkey && (!check || EVP_PKEY_public_check(check) != 1)) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(check);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(json_t *key)
{
	unsigned char n[RSA_BYTES_MAX], e[16];
	size_t nlen, elen;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (b64_member(key, "n", n, sizeof(n), &nlen) ||
	    b64_member(key, "e", e, sizeof(e), &elen))
		return NULL;
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	/* short moduli are factorable: a key an issuer should not use */
	if (bn && be && bld && BN_num_bits(bn) >= RSA_BITS_MIN &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		pkey = key_from("RSA", bld);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	return pkey;
}

static EVP_PKEY *ec_key(json_t *key)
{
	unsigned char pub[65];
	size_t xlen, ylen;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pkey = NULL;

	if (!json_is_string(json_object_get(key, "crv")) ||
	    strcmp(json_string_value(json_object_get(key, "crv")), "P-256"))
		return NULL;
	/* the uncompressed point: 0x04 || x || y, each the full 32 bytes
	 * (RFC 7518 6.2.1.2) */
	pub[0] = 0x04;
	if (b64_member(key, "x", pub + 1, 32, &xlen) ||
	    b64_member(key, "y", pub + 33, 32, &ylen) || xlen != 32 ||
	    ylen != 32)
		return NULL;
	bld = OSSL_PARAM_BLD_new();
	if (bld &&
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
					    "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
					     sizeof(pub)))
		pkey = key_from("EC", bld);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* Whether optional member @name of @key is absent or equals @want. */
static bool member_is(json_t *key, const char *name, const char *want)
{
	json_t *v = json_object_get(key, name);

	return !v || (json_is_string(v) && !strcmp(json_string_value(v), want));
}

/* One JWK into @out; false for a key we cannot or must not use. */
static bool parse_key(json_t *key, struct rfs_jwk *out)
{
	json_t *kid = json_object_get(key, "kid");
	const char *kty = json_string_value(json_object_get(key, "kty"));

	if (!json_is_object(key) || !json_is_string(kid) ||
	    !json_string_length(kid) ||
	    json_string_length(kid) >= sizeof(out->kid) || !kty ||
	    !member_is(key, "use", "sig"))
		return false;
	memcpy(out->kid, json_string_value(kid), json_string_length(kid) + 1);
	/* a key published for another algorithm is not ours to use with
	 * this one (RFC 7517 4.4) */
	if (!strcmp(kty, "RSA") && member_is(key, "alg", "RS256")) {
		out->type = RFS_JWK_RSA;
		out->pkey = rsa_key(key);
	} else if (!strcmp(kty, "EC") && member_is(key, "alg", "ES256")) {
		out->type = RFS_JWK_EC;
		out->pkey = ec_key(key);
	}
	return out->pkey != NULL;
}

int rfs_jwks_parse(const char *json, size_t len, struct rfs_jwks **out)
{
	json_t *doc = json_loadb(json, len, 0, NULL);
	json_t *keys = json_object_get(doc, "keys"), *key;
	struct rfs_jwks *k;
	size_t i;

	if (!json_is_array(keys)) {
		json_decref(doc);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (k)
		k->keys = calloc(JWKS_KEYS_MAX, sizeof(*k->keys));
	if (!k || !k->keys) {
		free(k);
		json_decref(doc);
		return -ENOMEM;
	}
	json_array_foreach(keys, i, key)
	{
		struct rfs_jwk *slot = &k->keys[k->n];

		if (k->n == JWKS_KEYS_MAX)
			break;
		memset(slot, 0, sizeof(*slot));
		/* a kid names one key: a second one of that name is ignored
		 * rather than tried */
		if (parse_key(key, slot) && !rfs_jwks_find(k, slot->kid))
			k->n++;
		else
			EVP_PKEY_free(slot->pkey);
	}
	json_decref(doc);
	*out = k;
	return 0;
}

void rfs_jwks_free(struct rfs_jwks *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		EVP_PKEY_free(k->keys[i].pkey);
	free(k->keys);
	free(k);
}

size_t rfs_jwks_count(const struct rfs_jwks *k)
{
	return k ? k->n : 0;
}

bool rfs_jwks_has(const struct rfs_jwks *k, const char *kid)
{
	return rfs_jwks_find(k, kid) != NULL;
}

/* A URL we may hand to libcurl: printable ASCII, no blanks, a host. */
static bool https_url_ok(const char *s)
{
	for (const char *p = s; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return !strncasecmp(s, "https://", 8) && s[8] && s[8] != '/';
}

int rfs_oidc_jwks_uri(const char *json, size_t len, char *out, size_t outlen)
{
	json_t *doc = json_loadb(json, len, 0, NULL);
	json_t *v = json_object_get(doc, "jwks_uri");
	const char *s = json_string_value(v);
	int rc = -EINVAL;

	/* keys fetched in clear, or from wherever a relative reference
	 * points, could be anyone's */
	if (s && strncasecmp(s, "https://", 8))
		rc = -EPROTO;
	else if (s && https_url_ok(s) && json_string_length(v) < outlen)
		rc = 0;
	if (!rc)
		memcpy(out, s, json_string_length(v) + 1);
	json_decref(doc);
	return rc;
}

int rfs_oidc_discovery_url(const char *iss, int i, char *out, size_t outlen)
{
	const char *path;
	size_t base, hostlen;
	int n;

	/* an issuer is a URL without query or fragment (OIDC Discovery 2) */
	if (i < 0 || !https_url_ok(iss) || strpbrk(iss, "?#"))
		return -EINVAL;
	path = strchrnul(iss + 8, '/');
	hostlen = (size_t)(path - iss);
	base = strlen(iss);
	while (base > hostlen && iss[base - 1] == '/')
		base--;
	if (i == 0 && base > hostlen) /* RFC 8414 3.1: the well-known first */
		n = snprintf(out, outlen, "%.*s" WELL_KNOWN "%.*s",
			     (int)hostlen, iss, (int)(base - hostlen), path);
	else if (i == 0 || (i == 1 && base > hostlen))
		n = snprintf(out, outlen, "%.*s" WELL_KNOWN, (int)base, iss);
	else
		return -ENOENT;
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}
