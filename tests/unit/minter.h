/*
 * A token issuer for the unit tests, in C with OpenSSL: real RSA 2048 and
 * EC P-256 keys made at test time, compact JWS signed the way IAM signs
 * them (RS256: PKCS#1 v1.5; ES256: raw R || S), and the JWKS an issuer
 * would publish for its keys. Nothing here shares code with src/authz/:
 * a bug there must not be mirrored here.
 */
#ifndef RFS_UNIT_MINTER_H
#define RFS_UNIT_MINTER_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

/* base64url without padding (RFC 7515 2) of @n bytes, to free(). */
static inline char *mint_b64(const void *p, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	int len;

	if (!s)
		abort();
	len = EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (char *c = s; *c; c++)
		*c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
	return s;
}

static inline EVP_PKEY *mint_rsa_key(unsigned bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);

	if (!k)
		abort();
	return k;
}

static inline EVP_PKEY *mint_ec_key(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	if (!k)
		abort();
	return k;
}

/* DER ECDSA-Sig-Value -> the 64 bytes R || S a JWS carries. */
static inline void mint_der_to_raw(const unsigned char *der, size_t len,
				   unsigned char raw[64])
{
	ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &der, (long)len);

	if (!s)
		abort();
	BN_bn2binpad(ECDSA_SIG_get0_r(s), raw, 32);
	BN_bn2binpad(ECDSA_SIG_get0_s(s), raw + 32, 32);
	ECDSA_SIG_free(s);
}

/* SHA-256 signature of @data with @key, as JWS wants it for the key's
 * type; @der_ec keeps an EC signature in DER (a wrong encoding). */
static inline size_t mint_sign(EVP_PKEY *key, const char *data,
			       unsigned char *sig, bool der_ec)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[1024];
	size_t len = sizeof(buf);
	bool ec = EVP_PKEY_is_a(key, "EC");

	if (!ctx ||
	    EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) !=
		    1 ||
	    EVP_DigestSign(ctx, buf, &len, (const unsigned char *)data,
			   strlen(data)) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (ec && !der_ec) {
		mint_der_to_raw(buf, len, sig);
		return 64;
	}
	memcpy(sig, buf, len);
	return len;
}

/* "<b64 header>.<b64 claims>", to free(). */
static inline char *mint_signing_input(const char *header, const char *claims)
{
	char *h = mint_b64(header, strlen(header));
	char *c = mint_b64(claims, strlen(claims));
	size_t n = strlen(h) + strlen(c) + 2;
	char *s = malloc(n);

	if (!s)
		abort();
	snprintf(s, n, "%s.%s", h, c);
	free(h);
	free(c);
	return s;
}

/* "<input>.<b64 sig>", to free(); frees @input. */
static inline char *mint_join(char *input, const unsigned char *sig,
			      size_t siglen)
{
	char *b = mint_b64(sig, siglen);
	size_t n = strlen(input) + strlen(b) + 2;
	char *t = malloc(n);

	if (!t)
		abort();
	snprintf(t, n, "%s.%s", input, b);
	free(input);
	free(b);
	return t;
}

/* A token of JSON texts @header and @claims signed with @key (NULL: an
 * empty signature, as "alg": "none" has). */
static inline char *mint_raw(const char *header, const char *claims,
			     EVP_PKEY *key)
{
	char *input = mint_signing_input(header, claims);
	unsigned char sig[1024];
	size_t siglen = key ? mint_sign(key, input, sig, false) : 0;

	return mint_join(input, sig, siglen);
}

static inline char *mint_dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

	if (!s)
		abort();
	return s;
}

static inline char *mint_header(const char *alg, const char *kid)
{
	json_t *h = json_pack("{s:s, s:s}", "typ", "JWT", "alg", alg);
	char *s;

	if (kid)
		json_object_set_new(h, "kid", json_string(kid));
	s = mint_dump(h);
	json_decref(h);
	return s;
}

/* A token with header {alg, kid} and @claims (not taken) signed with
 * @key, whatever @alg says. */
static inline char *mint(const char *alg, const char *kid, EVP_PKEY *key,
			 json_t *claims)
{
	char *h = mint_header(alg, kid), *c = mint_dump(claims);
	char *t = mint_raw(h, c, key);

	free(h);
	free(c);
	return t;
}

/* An HS256 token whose HMAC key is @secret: the algorithm-confusion
 * forgery, with the issuer's public key PEM as the "secret". */
static inline char *mint_hs256(const char *kid, json_t *claims,
			       const void *secret, size_t secretlen)
{
	char *h = mint_header("HS256", kid), *c = mint_dump(claims);
	char *input = mint_signing_input(h, c);
	unsigned char mac[64];
	size_t maclen = 0;

	if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secretlen,
		       (unsigned char *)input, strlen(input), mac, sizeof(mac),
		       &maclen))
		abort();
	free(h);
	free(c);
	return mint_join(input, mac, maclen);
}

/* The SubjectPublicKeyInfo PEM of @key, to free(). */
static inline char *mint_pubkey_pem(EVP_PKEY *key, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *s;
	long n;

	if (!b || !PEM_write_bio_PUBKEY(b, key))
		abort();
	n = BIO_get_mem_data(b, &p);
	s = malloc((size_t)n + 1);
	if (!s)
		abort();
	memcpy(s, p, (size_t)n);
	s[n] = '\0';
	*len = (size_t)n;
	BIO_free(b);
	return s;
}

static inline char *mint_bn_b64(EVP_PKEY *key, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *s;

	if (!EVP_PKEY_get_bn_param(key, param, &bn))
		abort();
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	if (n <= 0)
		abort();
	s = mint_b64(buf, (size_t)n);
	return s;
}

/* The JWK of @key's public half, named @kid. */
static inline json_t *mint_jwk(EVP_PKEY *key, const char *kid)
{
	bool ec = EVP_PKEY_is_a(key, "EC");
	char *a = mint_bn_b64(
		key, ec ? OSSL_PKEY_PARAM_EC_PUB_X : OSSL_PKEY_PARAM_RSA_N,
		ec ? 32 : 0);
	char *b = mint_bn_b64(
		key, ec ? OSSL_PKEY_PARAM_EC_PUB_Y : OSSL_PKEY_PARAM_RSA_E,
		ec ? 32 : 0);
	json_t *k;

	if (ec)
		k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC",
			      "crv", "P-256", "use", "sig", "kid", kid, "x", a,
			      "y", b);
	else
		k = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA",
			      "alg", "RS256", "use", "sig", "kid", kid, "n", a,
			      "e", b);
	free(a);
	free(b);
	if (!k)
		abort();
	return k;
}

/* A JWKS document of @n keys named @kids, to free(). */
static inline char *mint_jwks(EVP_PKEY **keys, const char **kids, int n)
{
	json_t *arr = json_array(), *doc;
	char *s;

	for (int i = 0; i < n; i++)
		json_array_append_new(arr, mint_jwk(keys[i], kids[i]));
	doc = json_pack("{s:o}", "keys", arr);
	s = mint_dump(doc);
	json_decref(doc);
	return s;
}

#endif
