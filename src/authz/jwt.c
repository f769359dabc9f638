/*
 * WLCG JWT access tokens: a strict parser, and verification with OpenSSL
 * 3 against keys the caller found (keyring.c). Every check that can
 * refuse a token names its reason with a static phrase; none of them
 * ever sees the network.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "authz/jose_int.h"
#include "authz/jwt.h"
#include "authz/token.h"
#include "util/banned.h"

/* Beyond a day a "skew" is no clock error; the cap also keeps now +/- skew
 * far from overflow whatever the policy says. */
#define SKEW_MAX 86400L

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int rfs_b64url_decode(const char *in, size_t len, unsigned char *out,
		      size_t *outlen)
{
	unsigned acc = 0;
	size_t n = 0;
	int bits = 0;

	/* one character left over carries only 6 bits: never a byte */
	if (len % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value(in[i]);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6 | (unsigned)v) & 0xffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	/* "QQ" and "QR" would otherwise both decode to "A": a signed token
	 * must have one spelling */
	if (acc & ((1u << bits) - 1))
		return -EINVAL;
	*outlen = n;
	return 0;
}

/* A base64url part into a NUL-terminated buffer of its own (free()). */
static int decode_part(const char *p, size_t len, unsigned char **out,
		       size_t *outlen)
{
	unsigned char *buf = malloc(len * 3 / 4 + 1);
	int rc;

	if (!buf)
		return -ENOMEM;
	rc = rfs_b64url_decode(p, len, buf, outlen);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[*outlen] = '\0';
	*out = buf;
	return 0;
}

/*
 * A part that must be a JSON object. Duplicate names are refused: a
 * verifier and the storage must not read two different "aud"s.
 */
static json_t *decode_object(const char *p, size_t len)
{
	unsigned char *buf;
	size_t n;
	json_t *o;

	if (!len || decode_part(p, len, &buf, &n))
		return NULL;
	o = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
	free(buf);
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* @key's string into @out; absent leaves "". Too long is malformed: a
 * cut "iss" could match an issuer the token does not name. */
static int get_str(json_t *obj, const char *key, char *out, size_t outlen)
{
	json_t *v = json_object_get(obj, key);
	size_t len;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	len = json_string_length(v);
	if (len >= outlen)
		return -EINVAL;
	/* jansson refuses \u0000 unless asked: the length is the string's */
	memcpy(out, json_string_value(v), len + 1);
	return 0;
}

/* A NumericDate (RFC 7519 allows a fraction; whole seconds are kept). */
static int get_time(json_t *obj, const char *key, long long *out, bool *has)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return 0;
	if (json_is_integer(v)) {
		*out = (long long)json_integer_value(v);
	} else if (json_is_real(v) && json_real_value(v) > -1e15 &&
		   json_real_value(v) < 1e15) {
		*out = (long long)json_real_value(v);
	} else {
		return -EINVAL;
	}
	*has = true;
	return 0;
}

static int get_aud(json_t *claims, struct rfs_strv *aud)
{
	json_t *v = json_object_get(claims, "aud"), *e;
	size_t i;
	int rc;

	if (!v)
		return 0;
	if (json_is_string(v))
		return rfs_strv_push(aud, json_string_value(v));
	if (!json_is_array(v))
		return -EINVAL;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return -EINVAL;
		rc = rfs_strv_push(aud, json_string_value(e));
		if (rc)
			return rc;
	}
	return 0;
}

/* IAM's "iam" profile says "escape" where the WLCG one says "/escape":
 * one spelling for both, so a map file names a group once. */
static int push_group(struct rfs_strv *groups, const char *g)
{
	size_t len = strlen(g);
	char *s;
	int rc;

	if (!len || (len == 1 && g[0] == '/'))
		return 0; /* names no group */
	if (g[0] == '/')
		return rfs_strv_push(groups, g);
	s = malloc(len + 2);
	if (!s)
		return -ENOMEM;
	s[0] = '/';
	memcpy(s + 1, g, len + 1);
	rc = rfs_strv_push(groups, s);
	free(s);
	return rc;
}

/* wlcg.groups when the token has it, else IAM's "groups". */
static int get_groups(json_t *claims, struct rfs_strv *groups)
{
	json_t *v = json_object_get(claims, "wlcg.groups"), *e;
	size_t i;
	int rc;

	if (!v)
		v = json_object_get(claims, "groups");
	if (!v)
		return 0;
	if (!json_is_array(v))
		return -EINVAL;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return -EINVAL;
		rc = push_group(groups, json_string_value(e));
		if (rc)
			return rc;
	}
	return 0;
}

/* "scope" is one string of space-separated scopes (RFC 6749 3.3). */
static int get_scopes(json_t *claims, struct rfs_strv *scopes)
{
	json_t *v = json_object_get(claims, "scope");
	const char *p, *end;
	char *one;
	int rc = 0;

	if (!v)
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	for (p = json_string_value(v); *p && !rc; p = end) {
		while (*p == ' ')
			p++;
		end = strchrnul(p, ' ');
		if (end == p)
			break;
		one = strndup(p, (size_t)(end - p));
		rc = one ? rfs_strv_push(scopes, one) : -ENOMEM;
		free(one);
	}
	return rc;
}

static int parse_header(json_t *h, struct rfs_jwt *out)
{
	/* an extension we would have to understand (RFC 7515 4.1.11): we
	 * understand none, so such a token is not one we can check */
	if (json_object_get(h, "crit"))
		return -EINVAL;
	if (get_str(h, "alg", out->alg, sizeof(out->alg)) || !out->alg[0])
		return -EINVAL;
	/* "jku", "jwk", "x5u" are ignored on purpose: keys come from the
	 * issuer's JWKS only, never from the token itself */
	return get_str(h, "kid", out->kid, sizeof(out->kid));
}

static int parse_claims(json_t *c, struct rfs_jwt *out)
{
	json_t *ver = json_object_get(c, "wlcg.ver");
	int rc;

	rc = get_str(c, "iss", out->iss, sizeof(out->iss));
	if (!rc)
		rc = get_str(c, "sub", out->sub, sizeof(out->sub));
	if (!rc)
		rc = get_time(c, "exp", &out->exp, &out->has_exp);
	if (!rc)
		rc = get_time(c, "nbf", &out->nbf, &out->has_nbf);
	if (!rc)
		rc = get_time(c, "iat", &out->iat, &out->has_iat);
	/* the profile writes wlcg.ver as a string; "1.0" as a number would
	 * lose its minor version */
	if (!rc && ver)
		rc = json_is_string(ver) ? get_str(c, "wlcg.ver", out->ver,
						   sizeof(out->ver))
					 : -EINVAL;
	if (!rc)
		rc = get_aud(c, &out->aud);
	if (!rc)
		rc = get_groups(c, &out->groups);
	if (!rc)
		rc = get_scopes(c, &out->scopes);
	return rc;
}

/* What the signature covers, and the signature, kept in @out. */
static int keep_signed(const char *token, const char *dot2, struct rfs_jwt *out)
{
	const char *sig = dot2 + 1;
	unsigned char *raw;
	int rc;

	out->signed_len = (size_t)(dot2 - token);
	out->signed_part = strndup(token, out->signed_len);
	if (!out->signed_part)
		return -ENOMEM;
	/* an empty signature is well-formed ("alg": "none"): verification,
	 * not parsing, refuses it and says why */
	rc = decode_part(sig, strlen(sig), &raw, &out->sig_len);
	if (!rc)
		out->sig = raw;
	return rc;
}

static void jwt_init(struct rfs_jwt *j)
{
	memset(j, 0, sizeof(*j));
	rfs_strv_init(&j->aud);
	rfs_strv_init(&j->groups);
	rfs_strv_init(&j->scopes);
}

int rfs_jwt_parse(const char *token, struct rfs_jwt *out)
{
	const char *dot1, *dot2;
	json_t *h = NULL, *c = NULL;
	int rc = -EINVAL;

	jwt_init(out);
	if (strnlen(token, RFS_TOKEN_MAX + 1) > RFS_TOKEN_MAX)
		return -EINVAL;
	dot1 = strchr(token, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot2 || strchr(dot2 + 1, '.'))
		return -EINVAL;
	h = decode_object(token, (size_t)(dot1 - token));
	c = h ? decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1)) : NULL;
	if (c)
		rc = parse_header(h, out);
	if (!rc)
		rc = parse_claims(c, out);
	if (!rc)
		rc = keep_signed(token, dot2, out);
	json_decref(h);
	json_decref(c);
	if (rc)
		rfs_jwt_release(out);
	return rc == -ENOMEM ? rc : rc ? -EINVAL : 0;
}

void rfs_jwt_release(struct rfs_jwt *j)
{
	/* header.payload and the signature are the token itself */
	if (j->signed_part)
		OPENSSL_cleanse(j->signed_part, j->signed_len);
	free(j->signed_part);
	if (j->sig)
		OPENSSL_cleanse(j->sig, j->sig_len);
	free(j->sig);
	rfs_strv_release(&j->aud);
	rfs_strv_release(&j->groups);
	rfs_strv_release(&j->scopes);
	jwt_init(j);
}

static int digest_verify(EVP_PKEY *pkey, bool rsa, const unsigned char *sig,
			 size_t siglen, const char *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	int ok;

	ok = ctx && EVP_DigestVerifyInit_ex(ctx, &pctx, "SHA256", NULL, NULL,
					    pkey, NULL) == 1;
	/* RS256 is PKCS#1 v1.5 (RFC 7518 3.3): pinned, not a default */
	if (ok && rsa)
		ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1;
	ok = ok && EVP_DigestVerify(ctx, sig, siglen,
				    (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EACCES;
}

/* JWS sends ES256 as R || S, 32 bytes each (RFC 7518 3.4); OpenSSL
 * verifies the DER ECDSA-Sig-Value. *@der: OPENSSL_free(). */
static int es256_to_der(const unsigned char *raw, size_t len,
			unsigned char **der, size_t *derlen)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, 32, NULL),
	       *ss = BN_bin2bn(raw + 32, 32, NULL);
	int n;

	if (!s || !r || !ss || !ECDSA_SIG_set0(s, r, ss)) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(ss);
		return -ENOMEM;
	}
	*der = NULL;
	n = i2d_ECDSA_SIG(s, der);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return -ENOMEM;
	*derlen = (size_t)n;
	return 0;
}

static int verify_sig(const struct rfs_jwk *k, const struct rfs_jwt *j)
{
	unsigned char *der;
	size_t derlen;
	int rc;

	if (k->type == RFS_JWK_RSA) {
		/* exactly the modulus' length (RFC 7518 3.3), no shorter */
		if (j->sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
			return -EACCES;
		return digest_verify(k->pkey, true, j->sig, j->sig_len,
				     j->signed_part, j->signed_len);
	}
	if (j->sig_len != 64 || es256_to_der(j->sig, j->sig_len, &der, &derlen))
		return -EACCES;
	rc = digest_verify(k->pkey, false, der, derlen, j->signed_part,
			   j->signed_len);
	OPENSSL_free(der);
	return rc;
}

/*
 * The algorithm is the token's claim and the key type the issuer's: the
 * two must agree, so an RSA public key can never be used as an HMAC
 * secret, nor "none" skip the signature.
 */
static const char *check_signature(const struct rfs_jwt *j,
				   const struct rfs_jwks *keys)
{
	const struct rfs_jwk *k;
	enum rfs_jwk_type want;

	if (!strcmp(j->alg, "RS256"))
		want = RFS_JWK_RSA;
	else if (!strcmp(j->alg, "ES256"))
		want = RFS_JWK_EC;
	else
		return "algorithm not allowed";
	k = j->kid[0] ? rfs_jwks_find(keys, j->kid) : NULL;
	if (!k)
		return "unknown key id";
	if (k->type != want ||
	    !EVP_PKEY_is_a(k->pkey, want == RFS_JWK_RSA ? "RSA" : "EC"))
		return "algorithm does not match the key";
	return verify_sig(k, j) ? "bad signature" : NULL;
}

static const char *check_times(const struct rfs_jwt *j, time_t now, long skew)
{
	long long s = skew < 0 ? 0 : skew > SKEW_MAX ? SKEW_MAX : skew;

	if (!j->has_exp)
		return "no expiry";
	/* RFC 7519 4.1.4: valid only before exp */
	if ((long long)now - s >= j->exp)
		return "expired";
	if (j->has_nbf && j->nbf > (long long)now + s)
		return "not yet valid";
	if (j->has_iat && j->iat > (long long)now + s)
		return "issued in the future";
	return NULL;
}

static bool strv_has(const struct rfs_strv *sv, const char *s)
{
	for (size_t i = 0; sv && i < sv->n; i++)
		if (!strcmp(sv->v[i], s))
			return true;
	return false;
}

static const char *check_iss_aud(const struct rfs_jwt *j,
				 const struct rfs_jwt_policy *p)
{
	bool aud_ok = false;

	/* exact: IAM's trailing '/' is part of the name (profile section 4) */
	if (!j->iss[0] || !strv_has(p->issuers, j->iss))
		return "issuer not accepted";
	for (size_t i = 0; i < j->aud.n && !aud_ok; i++)
		aud_ok = !strcmp(j->aud.v[i], RFS_JWT_AUD_ANY) ||
			 strv_has(p->audiences, j->aud.v[i]);
	return aud_ok ? NULL : "audience not accepted";
}

static bool all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return n > 0;
}

/* [0-9]+\.[0-9]+ with major 1: a newer minor version only adds claims
 * we may ignore; another major may change what the old ones mean. */
static bool ver_ok(const char *v)
{
	const char *dot = strchr(v, '.');

	if (!v[0])
		return true; /* absent: IAM's "iam" profile */
	return dot && all_digits(v, (size_t)(dot - v)) &&
	       all_digits(dot + 1, strlen(dot + 1)) && dot - v == 1 &&
	       v[0] == '1';
}

/* The profile: a storage.* scope without a path rejects the token. */
static bool scopes_ok(const struct rfs_jwt *j)
{
	for (size_t i = 0; i < j->scopes.n; i++) {
		const char *s = j->scopes.v[i], *colon;

		if (strncmp(s, "storage.", 8))
			continue;
		colon = strchr(s, ':');
		if (!colon || !colon[1])
			return false;
	}
	return true;
}

int rfs_jwt_verify(const struct rfs_jwt *j, const struct rfs_jwks *keys,
		   const struct rfs_jwt_policy *p, time_t now, const char **why)
{
	const char *w = check_signature(j, keys);

	if (!w)
		w = check_times(j, now, p->skew);
	if (!w)
		w = check_iss_aud(j, p);
	if (!w && !ver_ok(j->ver))
		w = "unsupported wlcg.ver";
	if (!w && !scopes_ok(j))
		w = "storage scope without a path";
	if (why)
		*why = w;
	return w ? -EACCES : 0;
}

/* The next component of *@p ("a" of "//a/b"), false past the last. */
static bool next_comp(const char **p, const char **c, size_t *len)
{
	while (**p == '/')
		(*p)++;
	if (!**p)
		return false;
	*c = *p;
	while (**p && **p != '/')
		(*p)++;
	*len = (size_t)(*p - *c);
	return true;
}

static bool is_dots(const char *c, size_t len)
{
	return (len == 1 && c[0] == '.') ||
	       (len == 2 && c[0] == '.' && c[1] == '.');
}

/* An absolute path without "." or "..": "/a/b/../../x" must not pass as
 * below "/a/b". */
static bool path_ok(const char *path)
{
	const char *c;
	size_t len;

	if (*path != '/')
		return false;
	while (next_comp(&path, &c, &len))
		if (is_dots(c, len))
			return false;
	return true;
}

/*
 * Whether @prefix is @path or an ancestor of it, by whole components:
 * "/foo/bar" covers "/foo/bar/qux", never "/foo/bargain". Repeated and
 * trailing slashes do not count, so "/foo/" (a directory) covers what
 * "/foo" does.
 */
static bool covers(const char *prefix, const char *path)
{
	const char *pc, *qc;
	size_t pl, ql;

	if (*prefix != '/')
		return false;
	while (next_comp(&prefix, &pc, &pl)) {
		if (is_dots(pc, pl) || !next_comp(&path, &qc, &ql) ||
		    pl != ql || memcmp(pc, qc, pl))
			return false;
	}
	return true;
}

/* The path of @scope when it is "storage.<cap>:<path>", else NULL. */
static const char *scope_path(const char *scope, const char *cap)
{
	size_t n = strlen(cap);

	if (strncmp(scope, "storage.", 8) || strncmp(scope + 8, cap, n) ||
	    scope[8 + n] != ':')
		return NULL;
	return scope + 9 + n;
}

bool rfs_jwt_allows(const struct rfs_jwt *j, const char *cap, const char *path)
{
	/* create = new files and directories; modify adds overwriting and
	 * deleting, so it implies create (profile, "scope") */
	bool create = !strcmp(cap, "create");

	if (strcmp(cap, "read") && !create && strcmp(cap, "modify") &&
	    strcmp(cap, "stage"))
		return false;
	if (!path_ok(path))
		return false;
	for (size_t i = 0; i < j->scopes.n; i++) {
		const char *s = j->scopes.v[i];
		const char *p = scope_path(s, cap);

		if (!p && create)
			p = scope_path(s, "modify");
		if (p && covers(p, path))
			return true;
	}
	return false;
}

bool rfs_jwt_in_group(const struct rfs_jwt *j, const char *group)
{
	return strv_has(&j->groups, group);
}

void rfs_jwt_fingerprint(const char *token, char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char s[17];

	if (!len)
		return;
	/* out of memory inside OpenSSL: "" rather than a shared value */
	if (!EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen < 8) {
		out[0] = '\0';
		return;
	}
	for (int i = 0; i < 8; i++) {
		s[2 * i] = hex[md[i] >> 4];
		s[2 * i + 1] = hex[md[i] & 15];
	}
	s[16] = '\0';
	snprintf(out, len, "%s", s);
}
