/*
 * Unit tests for src/authz/jwt.c and the parsers of src/authz/keyring.c:
 * tokens minted here with real keys (tests/unit/minter.h), verified,
 * forged in the ways the WLCG profile and the issue list, and the scope
 * and group rules a shared mount will decide by.
 */
#include "config.h"

#include <errno.h>

#include "authz/jwt.h"
#include "authz/keyring.h"
#include "authz/token.h"
#include "minter.h"
#include "unit.h"

#define ISS "https://iam.ruciofs.test/"
#define NOW ((time_t)1760000000)

static EVP_PKEY *rsa, *rsa2, *ec;
static struct rfs_jwks *jwks; /* rsa as "rsa1", ec as "ec1" */
static struct rfs_strv issuers, audiences;
static struct rfs_jwt_policy policy = {
	.issuers = &issuers,
	.audiences = &audiences,
	.skew = 60,
};

/* An IAM "wlcg" profile access token's claims, issued at NOW. */
static json_t *claims(void)
{
	json_t *c = json_pack(
		"{s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:[s,s], s:s}", "iss",
		ISS, "sub", "7b0c-alice", "iat", (json_int_t)NOW, "nbf",
		(json_int_t)NOW, "exp", (json_int_t)NOW + 3600, "aud",
		RFS_JWT_AUD_ANY, "wlcg.ver", "1.0", "jti", "4e1f-1",
		"wlcg.groups", "/escape", "/escape/cta", "scope",
		"openid storage.read:/cta storage.modify:/cta/user/alice");

	if (!c)
		abort();
	return c;
}

/* Parses and verifies @token at @now: 0, or -EACCES with *why. */
static int check_at(const char *token, time_t now, const char **why)
{
	struct rfs_jwt j;
	int rc;

	*why = "(not parsed)";
	rc = rfs_jwt_parse(token, &j);
	if (rc)
		return rc;
	rc = rfs_jwt_verify(&j, jwks, &policy, now, why);
	rfs_jwt_release(&j);
	return rc;
}

/* The reason @token is refused at NOW; "" when accepted. */
static const char *refusal(const char *token)
{
	const char *why = NULL;
	int rc = check_at(token, NOW, &why);

	if (rc == 0)
		return why ? "(accepted with a reason)" : "";
	return rc == -EACCES ? why : "(not parsed)";
}

/* The reason a token of @c (taken) signed by rsa as "rsa1" is refused. */
static const char *refusal_of(json_t *c)
{
	static char why[64];
	char *t = mint("RS256", "rsa1", rsa, c);

	snprintf(why, sizeof(why), "%s", refusal(t));
	free(t);
	json_decref(c);
	return why;
}

static json_t *with(json_t *c, const char *key, json_t *v)
{
	if (v)
		json_object_set_new(c, key, v);
	else
		json_object_del(c, key);
	return c;
}

static void test_valid(void)
{
	json_t *c = claims();
	char *t = mint("RS256", "rsa1", rsa, c);
	struct rfs_jwt j;

	CHECK_STR(refusal(t), "");
	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_STR(j.alg, "RS256");
	CHECK_STR(j.kid, "rsa1");
	CHECK_STR(j.iss, ISS);
	CHECK_STR(j.sub, "7b0c-alice");
	CHECK(j.has_exp && j.has_nbf && j.has_iat);
	CHECK_INT(j.exp, NOW + 3600);
	CHECK_STR(j.ver, "1.0");
	CHECK_INT(j.aud.n, 1);
	CHECK_INT(j.scopes.n, 3);
	CHECK_STR(j.scopes.v[1], "storage.read:/cta");
	CHECK_INT(j.sig_len, 256);
	CHECK(j.signed_len == (size_t)(strrchr(t, '.') - t));
	rfs_jwt_release(&j);
	free(t);

	t = mint("ES256", "ec1", ec, c);
	CHECK_STR(refusal(t), "");
	free(t);
	json_decref(c);
}

/* @a's header and signature around @b's payload, to free(). */
static char *splice(const char *a, const char *b)
{
	const char *bp = strchr(b, '.');
	size_t n = strlen(a) + strlen(b) + 1;
	char *t = malloc(n);

	if (!t)
		abort();
	snprintf(t, n, "%.*s%.*s%s", (int)(strchr(a, '.') - a), a,
		 (int)(strrchr(b, '.') - bp), bp, strrchr(a, '.'));
	return t;
}

/* RS256 signatures are the modulus' length exactly (RFC 7518 3.3). */
static void test_signature_length(json_t *c)
{
	char *h = mint_header("RS256", "rsa1"), *cl = mint_dump(c);
	char *input = mint_signing_input(h, cl), *t;
	unsigned char sig[512];
	size_t len = mint_sign(rsa, input, sig, false);

	t = mint_join(strdup(input), sig, len);
	CHECK_STR(refusal(t), "");
	free(t);
	t = mint_join(strdup(input), sig, len - 1);
	CHECK_STR(refusal(t), "bad signature");
	free(t);
	/* a leading zero byte: the same number, another length */
	memmove(sig + 1, sig, len);
	sig[0] = 0;
	t = mint_join(input, sig, len + 1);
	CHECK_STR(refusal(t), "bad signature");
	free(t);
	free(h);
	free(cl);
}

static void test_signature(void)
{
	json_t *c = claims();
	char *t = mint("RS256", "rsa1", rsa, c), *forged, *other, *dot;

	/* another payload under the original signature */
	with(c, "scope", json_string("storage.read:/"));
	other = mint("RS256", "rsa1", rsa, c);
	forged = splice(t, other);
	CHECK_STR(refusal(other), "");
	CHECK_STR(refusal(forged), "bad signature");
	free(forged);
	free(other);

	/* one bit of the signature */
	forged = strdup(t);
	dot = strrchr(forged, '.');
	dot[5] = dot[5] == 'A' ? 'B' : 'A';
	CHECK_STR(refusal(forged), "bad signature");
	free(forged);
	free(t);
	test_signature_length(c);

	/* signed by another RSA key under rsa1's kid */
	t = mint("RS256", "rsa1", rsa2, c);
	CHECK_STR(refusal(t), "bad signature");
	free(t);
	/* a kid the key set does not have, and none at all */
	t = mint("RS256", "rsa9", rsa, c);
	CHECK_STR(refusal(t), "unknown key id");
	free(t);
	t = mint("RS256", NULL, rsa, c);
	CHECK_STR(refusal(t), "unknown key id");
	free(t);
	json_decref(c);
}

static void test_es256_encoding(void)
{
	json_t *c = claims();
	char *h = mint_header("ES256", "ec1"), *cl = mint_dump(c);
	char *input = mint_signing_input(h, cl), *t;
	unsigned char sig[256];
	size_t len;

	/* DER is what OpenSSL makes, not what a JWS carries */
	len = mint_sign(ec, input, sig, true);
	t = mint_join(input, sig, len);
	CHECK_STR(refusal(t), "bad signature");
	free(t);
	/* R || S with S = 0 */
	input = mint_signing_input(h, cl);
	len = mint_sign(ec, input, sig, false);
	memset(sig + 32, 0, 32);
	t = mint_join(input, sig, len);
	CHECK_STR(refusal(t), "bad signature");
	free(t);
	free(h);
	free(cl);
	json_decref(c);
}

static void test_algorithms(void)
{
	json_t *c = claims();
	char *h, *cl = mint_dump(c), *t, *pem;
	size_t pemlen;

	/* "none", without and with a signature */
	h = mint_header("none", "rsa1");
	t = mint_raw(h, cl, NULL);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	t = mint_raw(h, cl, rsa);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	free(h);
	/* HS256 keyed with the issuer's public key PEM: libjwt 1.10 took it */
	pem = mint_pubkey_pem(rsa, &pemlen);
	t = mint_hs256("rsa1", c, pem, pemlen);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	free(pem);
	/* the key type decides: RS256 naming the EC key, ES256 the RSA one
	 * (each signed by the key it names, so only the pinning refuses) */
	t = mint("RS256", "ec1", ec, c);
	CHECK_STR(refusal(t), "algorithm does not match the key");
	free(t);
	t = mint("ES256", "rsa1", rsa, c);
	CHECK_STR(refusal(t), "algorithm does not match the key");
	free(t);
	/* other asymmetric algorithms are not ours either */
	t = mint("RS512", "rsa1", rsa, c);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	t = mint("PS256", "rsa1", rsa, c);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	t = mint("rs256", "rsa1", rsa, c);
	CHECK_STR(refusal(t), "algorithm not allowed");
	free(t);
	free(cl);
	json_decref(c);
}

static void test_times(void)
{
	json_t *c = claims();
	char *t = mint("RS256", "rsa1", rsa, c);
	const char *why;

	/* exp is NOW + 3600, the skew 60 */
	CHECK_INT(check_at(t, NOW + 3600 + 59, &why), 0);
	CHECK_INT(check_at(t, NOW + 3600 + 60, &why), -EACCES);
	CHECK_STR(why, "expired");
	CHECK_INT(check_at(t, NOW + 86400, &why), -EACCES);
	CHECK_STR(why, "expired");
	/* nbf = iat = NOW: a minute early is the skew, more is not */
	CHECK_INT(check_at(t, NOW - 60, &why), 0);
	CHECK_INT(check_at(t, NOW - 61, &why), -EACCES);
	CHECK_STR(why, "not yet valid");
	free(t);

	CHECK_STR(refusal_of(with(claims(), "nbf",
				  json_integer((json_int_t)NOW + 600))),
		  "not yet valid");
	/* iat far in the future, no nbf */
	CHECK_STR(refusal_of(with(with(claims(), "nbf", NULL), "iat",
				  json_integer((json_int_t)NOW + 600))),
		  "issued in the future");
	CHECK_STR(refusal_of(with(claims(), "exp", NULL)), "no expiry");
	CHECK_STR(refusal_of(with(claims(), "exp",
				  json_integer((json_int_t)NOW - 3600))),
		  "expired");
	/* a fraction is allowed (RFC 7519 2, NumericDate) */
	CHECK_STR(refusal_of(with(claims(), "exp",
				  json_real((double)NOW + 100.5))),
		  "");
	/* nbf and iat absent are fine */
	CHECK_STR(refusal_of(with(with(claims(), "nbf", NULL), "iat", NULL)),
		  "");
	/* extremes do not overflow into validity */
	CHECK_STR(refusal_of(with(claims(), "exp",
				  json_integer(-9223372036854775807LL))),
		  "expired");
	CHECK_STR(refusal_of(with(claims(), "nbf",
				  json_integer(9223372036854775807LL))),
		  "not yet valid");
	CHECK_STR(refusal_of(with(claims(), "exp",
				  json_integer(9223372036854775807LL))),
		  "");
	json_decref(c);
}

static void test_issuer_audience(void)
{
	CHECK_STR(refusal_of(with(claims(), "iss",
				  json_string("https://evil.example/"))),
		  "issuer not accepted");
	/* exact: IAM's trailing slash is part of the name, both ways */
	CHECK_STR(refusal_of(with(claims(), "iss",
				  json_string("https://iam.ruciofs.test"))),
		  "issuer not accepted");
	rfs_strv_push(&issuers, "https://iam2.ruciofs.test");
	CHECK_STR(refusal_of(with(claims(), "iss",
				  json_string("https://iam2.ruciofs.test/"))),
		  "issuer not accepted");
	CHECK_STR(refusal_of(with(claims(), "iss",
				  json_string("https://iam2.ruciofs.test"))),
		  "");
	CHECK_STR(refusal_of(with(claims(), "iss", NULL)),
		  "issuer not accepted");
	CHECK_STR(refusal_of(with(claims(), "iss",
				  json_string("HTTPS://iam.ruciofs.test/"))),
		  "issuer not accepted");

	CHECK_STR(refusal_of(with(claims(), "aud",
				  json_string("https://other.example"))),
		  "audience not accepted");
	CHECK_STR(refusal_of(with(claims(), "aud", NULL)),
		  "audience not accepted");
	CHECK_STR(refusal_of(with(claims(), "aud", json_array())),
		  "audience not accepted");
	/* an array holding the WLCG "any" audience */
	CHECK_STR(refusal_of(with(claims(), "aud",
				  json_pack("[s,s]", "https://other.example",
					    RFS_JWT_AUD_ANY))),
		  "");
	/* an audience the policy adds, as a string and in an array */
	rfs_strv_push(&audiences, "https://fuse.ruciofs.test");
	CHECK_STR(refusal_of(with(claims(), "aud",
				  json_string("https://fuse.ruciofs.test"))),
		  "");
	CHECK_STR(refusal_of(with(claims(), "aud",
				  json_pack("[s,s]", "https://a.example",
					    "https://fuse.ruciofs.test"))),
		  "");
	CHECK_STR(refusal_of(with(claims(), "aud",
				  json_string("https://fuse.ruciofs.test/"))),
		  "audience not accepted");
}

static void test_version_scopes(void)
{
	static const char *const good[] = { "1.0", "1.3", "1.10", "1.0000" };
	static const char *const bad[] = { "2.0",   "0.9",  "1",    "1.",
					   ".1",    "1.x",  "10.0", "01.0",
					   "1.0.1", " 1.0", "v1.0", "" };

	for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
		CHECK_STR(refusal_of(with(claims(), "wlcg.ver",
					  json_string(good[i]))),
			  "");
	/* "" is an empty string present, not an absent claim */
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad) - 1; i++)
		CHECK_STR(refusal_of(with(claims(), "wlcg.ver",
					  json_string(bad[i]))),
			  "unsupported wlcg.ver");
	/* absent: IAM's "iam" profile */
	CHECK_STR(refusal_of(with(claims(), "wlcg.ver", NULL)), "");

	CHECK_STR(refusal_of(with(claims(), "scope",
				  json_string("openid storage.read"))),
		  "storage scope without a path");
	CHECK_STR(refusal_of(with(claims(), "scope",
				  json_string("storage.read: openid"))),
		  "storage scope without a path");
	CHECK_STR(refusal_of(with(claims(), "scope",
				  json_string("storage.read:/ storage.stage"))),
		  "storage scope without a path");
	/* other scopes need no path; group-only tokens have no storage.* */
	CHECK_STR(refusal_of(with(claims(), "scope",
				  json_string("openid profile wlcg.groups"))),
		  "");
	CHECK_STR(refusal_of(with(claims(), "scope", NULL)), "");
}

/* Parse result of the token with header @h and claims @c (JSON). */
static int parse_raw(const char *h, const char *c)
{
	char *t = mint_raw(h, c, rsa);
	struct rfs_jwt j;
	int rc = rfs_jwt_parse(t, &j);

	if (!rc)
		rfs_jwt_release(&j);
	free(t);
	return rc;
}

static int parse_str(const char *t)
{
	struct rfs_jwt j;
	int rc = rfs_jwt_parse(t, &j);

	if (!rc)
		rfs_jwt_release(&j);
	return rc;
}

static void test_parse_malformed(void)
{
	const char *h = "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}";
	char *t, *big, kid[200];
	size_t n;

	CHECK_INT(parse_raw(h, "{\"iss\":\"x\"}"), 0);
	CHECK_INT(parse_raw(h, "[1]"), -EINVAL);
	CHECK_INT(parse_raw("[\"alg\"]", "{}"), -EINVAL);
	CHECK_INT(parse_raw(h, "not json"), -EINVAL);
	CHECK_INT(parse_raw(h, "\"string\""), -EINVAL);
	CHECK_INT(parse_raw("{\"kid\":\"rsa1\"}", "{}"), -EINVAL);
	CHECK_INT(parse_raw("{\"alg\":5}", "{}"), -EINVAL);
	CHECK_INT(parse_raw("{\"alg\":\"RS256\",\"crit\":[\"b64\"]}", "{}"),
		  -EINVAL);
	/* two "aud"s: which one would the storage read? */
	CHECK_INT(parse_raw(h, "{\"aud\":\"a\",\"aud\":\"b\"}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"iss\":\"a\\u0000b\"}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"exp\":\"1760000000\"}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"exp\":true}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"aud\":5}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"aud\":[\"a\",5]}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"scope\":[\"openid\"]}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"wlcg.ver\":1.0}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"wlcg.groups\":\"/escape\"}"), -EINVAL);
	CHECK_INT(parse_raw(h, "{\"groups\":[\"escape\",1]}"), -EINVAL);
	/* too long for its field: malformed, not cut */
	memset(kid, 'k', sizeof(kid));
	kid[127] = '\0';
	snprintf(kid + 127, sizeof(kid) - 127, "\"}");
	t = malloc(300);
	snprintf(t, 300, "{\"alg\":\"RS256\",\"kid\":\"%.127s\"}", kid);
	CHECK_INT(parse_raw(t, "{}"), 0);
	snprintf(t, 300, "{\"alg\":\"RS256\",\"kid\":\"%.127sk\"}", kid);
	CHECK_INT(parse_raw(t, "{}"), -EINVAL);
	free(t);

	/* the compact form itself */
	CHECK_INT(parse_str(""), -EINVAL);
	CHECK_INT(parse_str("a.b"), -EINVAL);
	CHECK_INT(parse_str("a.b.c.d"), -EINVAL);
	CHECK_INT(parse_str(".."), -EINVAL);
	t = mint_raw(h, "{}", rsa);
	CHECK_INT(parse_str(t), 0);
	n = strlen(t);
	t = realloc(t, n + 3);
	/* padding, or a blank, is not base64url */
	memcpy(t + n, "==", 3);
	CHECK_INT(parse_str(t), -EINVAL);
	t[n] = ' ';
	t[n + 1] = '\0';
	CHECK_INT(parse_str(t), -EINVAL);
	t[n] = '\0';
	/* standard base64's '+' and '/' are not base64url's */
	strchr(t, '.')[-1] = '+';
	CHECK_INT(parse_str(t), -EINVAL);
	free(t);
	/* "e30" is "{}"; "e31" has the same bytes and other trailing bits */
	CHECK_INT(parse_str("eyJhbGciOiJSUzI1NiJ9.e30.AAAA"), 0);
	CHECK_INT(parse_str("eyJhbGciOiJSUzI1NiJ9.e31.AAAA"), -EINVAL);
	CHECK_INT(parse_str("eyJhbGciOiJSUzI1NiJ9.e30.A"), -EINVAL);
	/* an empty signature is well-formed ("none"), verify refuses it */
	CHECK_INT(parse_str("eyJhbGciOiJSUzI1NiJ9.e30."), 0);

	/* a token longer than a token file may be */
	big = malloc(RFS_TOKEN_MAX + 100);
	memset(big, 'A', RFS_TOKEN_MAX + 99);
	big[RFS_TOKEN_MAX + 99] = '\0';
	memcpy(big, "eyJhbGciOiJSUzI1NiJ9.e30.", 25);
	CHECK_INT(parse_str(big), -EINVAL);
	big[RFS_TOKEN_MAX] = '\0';
	CHECK_INT(parse_str(big), 0);
	free(big);
}

static void test_groups(void)
{
	json_t *c = claims();
	char *t = mint("RS256", "rsa1", rsa, c);
	struct rfs_jwt j;

	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_INT(j.groups.n, 2);
	CHECK(rfs_jwt_in_group(&j, "/escape"));
	CHECK(rfs_jwt_in_group(&j, "/escape/cta"));
	CHECK(!rfs_jwt_in_group(&j, "escape"));
	CHECK(!rfs_jwt_in_group(&j, "/escape/ct"));
	CHECK(!rfs_jwt_in_group(&j, "/escape/"));
	rfs_jwt_release(&j);
	free(t);

	/* a subgroup does not imply its parent */
	with(c, "wlcg.groups", json_pack("[s]", "/escape/cta"));
	t = mint("RS256", "rsa1", rsa, c);
	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK(rfs_jwt_in_group(&j, "/escape/cta"));
	CHECK(!rfs_jwt_in_group(&j, "/escape"));
	rfs_jwt_release(&j);
	free(t);

	/* IAM's "iam" profile: "groups" without the slash, no wlcg.ver */
	with(with(c, "wlcg.groups", NULL), "wlcg.ver", NULL);
	with(c, "groups", json_pack("[s,s,s]", "escape", "escape/pilots", ""));
	t = mint("RS256", "rsa1", rsa, c);
	CHECK_STR(refusal(t), "");
	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_INT(j.groups.n, 2);
	CHECK_STR(j.groups.n == 2 ? j.groups.v[0] : NULL, "/escape");
	CHECK_STR(j.groups.n == 2 ? j.groups.v[1] : NULL, "/escape/pilots");
	CHECK(rfs_jwt_in_group(&j, "/escape/pilots"));
	CHECK(!rfs_jwt_in_group(&j, "escape"));
	rfs_jwt_release(&j);
	free(t);

	/* both: wlcg.groups is the profile's claim, "groups" is ignored */
	with(c, "wlcg.groups", json_pack("[s]", "/atlas"));
	t = mint("RS256", "rsa1", rsa, c);
	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_INT(j.groups.n, 1);
	CHECK(rfs_jwt_in_group(&j, "/atlas"));
	CHECK(!rfs_jwt_in_group(&j, "/escape"));
	rfs_jwt_release(&j);
	free(t);

	/* "/" names no group, as "" does (found by fuzz_jwt) */
	with(c, "wlcg.groups", json_pack("[s,s]", "/", "/atlas"));
	t = mint("RS256", "rsa1", rsa, c);
	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_INT(j.groups.n, 1);
	CHECK(!rfs_jwt_in_group(&j, "/"));
	rfs_jwt_release(&j);
	free(t);
	json_decref(c);
}

/* rfs_jwt_allows of a token whose "scope" is @scope. */
static bool allows(const char *scope, const char *cap, const char *path)
{
	json_t *c = with(claims(), "scope", json_string(scope));
	char *t = mint("RS256", "rsa1", rsa, c);
	struct rfs_jwt j;
	bool ok;

	if (rfs_jwt_parse(t, &j))
		abort();
	ok = rfs_jwt_allows(&j, cap, path);
	rfs_jwt_release(&j);
	free(t);
	json_decref(c);
	return ok;
}

static void test_allows(void)
{
	const char *s = "openid storage.read:/foo/bar";

	CHECK(allows(s, "read", "/foo/bar"));
	CHECK(allows(s, "read", "/foo/bar/qux"));
	CHECK(allows(s, "read", "/foo/bar/qux/deep/file.fits"));
	CHECK(allows(s, "read", "/foo/bar/"));
	CHECK(allows(s, "read", "//foo//bar/qux"));
	CHECK(!allows(s, "read", "/foo/bargain"));
	CHECK(!allows(s, "read", "/foo/ba"));
	CHECK(!allows(s, "read", "/foo"));
	CHECK(!allows(s, "read", "/"));
	CHECK(!allows(s, "read", "/other"));
	CHECK(!allows(s, "read", "foo/bar"));
	CHECK(!allows(s, "read", ""));
	/* no climbing out of the prefix */
	CHECK(!allows(s, "read", "/foo/bar/../secret"));
	CHECK(!allows(s, "read", "/foo/bar/./x"));
	CHECK(!allows(s, "read", "/foo/bar/.."));
	CHECK(allows(s, "read", "/foo/bar/..x"));
	/* read grants nothing else */
	CHECK(!allows(s, "create", "/foo/bar"));
	CHECK(!allows(s, "modify", "/foo/bar"));
	CHECK(!allows(s, "stage", "/foo/bar"));

	/* modify implies create, not the other way round, nor read */
	s = "storage.modify:/cta/user/alice storage.create:/cta/scratch";
	CHECK(allows(s, "modify", "/cta/user/alice/x"));
	CHECK(allows(s, "create", "/cta/user/alice/x"));
	CHECK(allows(s, "create", "/cta/scratch/y"));
	CHECK(!allows(s, "modify", "/cta/scratch/y"));
	CHECK(!allows(s, "read", "/cta/user/alice/x"));
	CHECK(!allows(s, "create", "/cta/user/alicex"));

	/* a trailing '/' names a directory: itself and what is below */
	s = "storage.read:/foo/ storage.stage:/tape";
	CHECK(allows(s, "read", "/foo/x"));
	CHECK(allows(s, "read", "/foo"));
	CHECK(!allows(s, "read", "/foobar"));
	CHECK(allows(s, "stage", "/tape/run1"));
	CHECK(!allows(s, "read", "/tape/run1"));

	/* the root covers all; odd scope paths cover nothing */
	CHECK(allows("storage.read:/", "read", "/any/where"));
	CHECK(allows("storage.read:/", "read", "/"));
	CHECK(!allows("storage.read:foo", "read", "/foo"));
	CHECK(!allows("storage.read:/foo/../bar", "read", "/bar"));
	CHECK(!allows("storage.read:/foo/../bar", "read", "/foo/../bar/x"));
	/* near misses of the scope's own spelling */
	CHECK(!allows("storage.reads:/", "read", "/x"));
	CHECK(!allows("storage.rea:/", "read", "/x"));
	CHECK(!allows("xstorage.read:/", "read", "/x"));
	CHECK(!allows("storage.read/", "read", "/x"));
	CHECK(!allows("storage.read:/", "write", "/x"));
	CHECK(!allows("storage.read:/", "", "/x"));
	CHECK(!allows("openid", "read", "/x"));
}

static void test_fingerprint(void)
{
	char out[17], small[5];

	/* SHA-256("abc") = ba7816bf 8f01cfea ... */
	rfs_jwt_fingerprint("abc", out, sizeof(out));
	CHECK_STR(out, "ba7816bf8f01cfea");
	rfs_jwt_fingerprint("abd", out, sizeof(out));
	CHECK(strcmp(out, "ba7816bf8f01cfea") != 0);
	CHECK_INT(strlen(out), 16);
	rfs_jwt_fingerprint("abc", small, sizeof(small));
	CHECK_STR(small, "ba78");
}

/* rsa's JWK with its modulus made even: a number, not an RSA key */
static json_t *even_modulus_jwk(void)
{
	json_t *k = mint_jwk(rsa, "even");
	unsigned char buf[256];
	BIGNUM *n = NULL;
	char *b;

	if (!EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n))
		abort();
	BN_clear_bit(n, 0);
	BN_bn2binpad(n, buf, sizeof(buf));
	b = mint_b64(buf, sizeof(buf));
	json_object_set_new(k, "n", json_string(b));
	free(b);
	BN_free(n);
	return k;
}

static void test_jwks_parse(void)
{
	EVP_PKEY *small = mint_rsa_key(1024);
	EVP_PKEY *keys[] = { rsa, ec, small };
	const char *kids[] = { "rsa1", "ec1", "small" };
	char *doc = mint_jwks(keys, kids, 3);
	json_t *d = json_loads(doc, 0, NULL), *arr = json_object_get(d, "keys");
	json_t *k;
	struct rfs_jwks *set;
	char *s;

	/* a 1024-bit modulus is skipped */
	CHECK_INT(rfs_jwks_parse(doc, strlen(doc), &set), 0);
	CHECK_INT(rfs_jwks_count(set), 2);
	CHECK(rfs_jwks_has(set, "rsa1") && rfs_jwks_has(set, "ec1"));
	CHECK(!rfs_jwks_has(set, "small"));
	rfs_jwks_free(set);

	/* unusable keys, each skipped, the good ones kept */
	json_array_remove(arr, 2);
	json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "kty", "oct",
					     "kid", "hmac", "k", "c2VjcmV0"));
	k = json_deep_copy(json_array_get(arr, 0));
	json_object_set_new(k, "kid", json_string("enc"));
	json_object_set_new(k, "use", json_string("enc"));
	json_array_append_new(arr, k);
	k = json_deep_copy(json_array_get(arr, 0));
	json_object_set_new(k, "kid", json_string("rs512"));
	json_object_set_new(k, "alg", json_string("RS512"));
	json_array_append_new(arr, k);
	k = json_deep_copy(json_array_get(arr, 0));
	json_object_del(k, "kid");
	json_array_append_new(arr, k);
	k = json_deep_copy(json_array_get(arr, 0));
	json_object_set_new(k, "kid", json_string("badn"));
	json_object_set_new(k, "n", json_string("AQAB=="));
	json_array_append_new(arr, k);
	k = json_deep_copy(json_array_get(arr, 1));
	json_object_set_new(k, "kid", json_string("p384"));
	json_object_set_new(k, "crv", json_string("P-384"));
	json_array_append_new(arr, k);
	json_array_append_new(arr, even_modulus_jwk());
	/* a point off the curve: y + 1 */
	k = json_deep_copy(json_array_get(arr, 1));
	json_object_set_new(k, "kid", json_string("offcurve"));
	{
		const char *y = json_string_value(json_object_get(k, "y"));
		char *y2 = strdup(y);

		y2[strlen(y2) - 2] = y2[strlen(y2) - 2] == 'A' ? 'B' : 'A';
		json_object_set_new(k, "y", json_string(y2));
		free(y2);
	}
	json_array_append_new(arr, k);
	/* a short x (31 bytes) */
	k = json_deep_copy(json_array_get(arr, 1));
	json_object_set_new(k, "kid", json_string("shortx"));
	json_object_set_new(
		k, "x",
		json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	json_array_append_new(arr, k);
	/* the same kid again, another key: the first one stays */
	k = json_deep_copy(json_array_get(arr, 1));
	json_object_set_new(k, "kid", json_string("rsa1"));
	json_array_append_new(arr, k);
	json_array_append_new(arr, json_string("not a key"));
	s = mint_dump(d);
	CHECK_INT(rfs_jwks_parse(s, strlen(s), &set), 0);
	CHECK_INT(rfs_jwks_count(set), 2);
	CHECK(rfs_jwks_has(set, "rsa1") && rfs_jwks_has(set, "ec1"));
	CHECK(!rfs_jwks_has(set, "offcurve") && !rfs_jwks_has(set, "enc"));
	CHECK(!rfs_jwks_has(set, "even"));
	rfs_jwks_free(set);
	free(s);

	/* not a JWKS at all; an empty one is a JWKS */
	CHECK_INT(rfs_jwks_parse("[]", 2, &set), -EINVAL);
	CHECK_INT(rfs_jwks_parse("{}", 2, &set), -EINVAL);
	CHECK_INT(rfs_jwks_parse("{\"keys\":{}}", 11, &set), -EINVAL);
	CHECK_INT(rfs_jwks_parse("<html>", 6, &set), -EINVAL);
	CHECK_INT(rfs_jwks_parse("", 0, &set), -EINVAL);
	CHECK_INT(rfs_jwks_parse("{\"keys\":[]}", 11, &set), 0);
	CHECK_INT(rfs_jwks_count(set), 0);
	CHECK(!rfs_jwks_has(set, "rsa1"));
	rfs_jwks_free(set);

	json_decref(d);
	free(doc);
	EVP_PKEY_free(small);
}

static int jwks_uri(const char *doc, char *out, size_t outlen)
{
	return rfs_oidc_jwks_uri(doc, strlen(doc), out, outlen);
}

static void test_discovery(void)
{
	char out[128];

	CHECK_INT(jwks_uri("{\"issuer\":\"https://iam.example/\","
			   "\"jwks_uri\":\"https://iam.example/jwk\"}",
			   out, sizeof(out)),
		  0);
	CHECK_STR(out, "https://iam.example/jwk");
	CHECK_INT(jwks_uri("{\"jwks_uri\":\"http://iam.example/jwk\"}", out,
			   sizeof(out)),
		  -EPROTO);
	CHECK_INT(jwks_uri("{\"jwks_uri\":\"/jwk\"}", out, sizeof(out)),
		  -EPROTO);
	CHECK_INT(jwks_uri("{\"jwks_uri\":\"https://\"}", out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(jwks_uri("{\"jwks_uri\":\"https://a b/\"}", out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(jwks_uri("{\"jwks_uri\":5}", out, sizeof(out)), -EINVAL);
	CHECK_INT(jwks_uri("{}", out, sizeof(out)), -EINVAL);
	CHECK_INT(jwks_uri("nope", out, sizeof(out)), -EINVAL);
	CHECK_INT(
		jwks_uri("{\"jwks_uri\":\"https://iam.example/jwk\"}", out, 23),
		-EINVAL);
	CHECK_INT(
		jwks_uri("{\"jwks_uri\":\"https://iam.example/jwk\"}", out, 24),
		0);

	CHECK_INT(rfs_oidc_discovery_url(ISS, 0, out, sizeof(out)), 0);
	CHECK_STR(out,
		  "https://iam.ruciofs.test/.well-known/openid-configuration");
	CHECK_INT(rfs_oidc_discovery_url(ISS, 1, out, sizeof(out)), -ENOENT);
	CHECK_INT(rfs_oidc_discovery_url("https://iam.ruciofs.test", 0, out,
					 sizeof(out)),
		  0);
	CHECK_STR(out,
		  "https://iam.ruciofs.test/.well-known/openid-configuration");
	/* an issuer with a path: RFC 8414's spelling, then OIDC's */
	CHECK_INT(rfs_oidc_discovery_url("https://h.example:8443/realms/cta/",
					 0, out, sizeof(out)),
		  0);
	CHECK_STR(out, "https://h.example:8443/.well-known/"
		       "openid-configuration/realms/cta");
	CHECK_INT(rfs_oidc_discovery_url("https://h.example:8443/realms/cta/",
					 1, out, sizeof(out)),
		  0);
	CHECK_STR(out, "https://h.example:8443/realms/cta/.well-known/"
		       "openid-configuration");
	CHECK_INT(rfs_oidc_discovery_url("https://h.example/realms/cta", 2, out,
					 sizeof(out)),
		  -ENOENT);
	CHECK_INT(rfs_oidc_discovery_url("http://iam.example/", 0, out,
					 sizeof(out)),
		  -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url("https://", 0, out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url("https:///x", 0, out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url("https://h/?a=b", 0, out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url("https://h/ x", 0, out, sizeof(out)),
		  -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url(ISS, -1, out, sizeof(out)), -EINVAL);
	CHECK_INT(rfs_oidc_discovery_url(ISS, 0, out, 20), -ENAMETOOLONG);
}

static void setup(void)
{
	EVP_PKEY *keys[2];
	const char *kids[] = { "rsa1", "ec1" };
	char *doc;

	rsa = mint_rsa_key(2048);
	rsa2 = mint_rsa_key(2048);
	ec = mint_ec_key();
	keys[0] = rsa;
	keys[1] = ec;
	doc = mint_jwks(keys, kids, 2);
	if (rfs_jwks_parse(doc, strlen(doc), &jwks) ||
	    rfs_jwks_count(jwks) != 2)
		abort();
	free(doc);
	rfs_strv_init(&issuers);
	rfs_strv_init(&audiences);
	rfs_strv_push(&issuers, ISS);
}

/* A key set that lacks the kid, or none at all, never verifies. */
static void test_no_keys(void)
{
	json_t *c = claims();
	char *t = mint("RS256", "rsa1", rsa, c);
	const char *why = NULL;
	struct rfs_jwt j;

	CHECK_INT(rfs_jwt_parse(t, &j), 0);
	CHECK_INT(rfs_jwt_verify(&j, NULL, &policy, NOW, &why), -EACCES);
	CHECK_STR(why, "unknown key id");
	rfs_jwt_release(&j);
	free(t);
	json_decref(c);
}

int main(void)
{
	setup();
	test_valid();
	test_signature();
	test_es256_encoding();
	test_algorithms();
	test_times();
	test_issuer_audience();
	test_version_scopes();
	test_parse_malformed();
	test_groups();
	test_allows();
	test_fingerprint();
	test_jwks_parse();
	test_discovery();
	test_no_keys();
	rfs_jwks_free(jwks);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(ec);
	rfs_strv_release(&issuers);
	rfs_strv_release(&audiences);
	return unit_done("test_jwt");
}
