/*
 * Issuers' signing keys: JWKS documents into OpenSSL keys, OpenID
 * discovery, and the keyring that keeps each accepted issuer's key set,
 * fetched once for all the verifiers that need it.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
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
#include "util/clock.h"
#include "util/errmap.h"
#include "util/http.h"
#include "util/log.h"
#include "util/banned.h"

/* IAM publishes one or two keys: a document of more keeps its first 64 */
#define JWKS_KEYS_MAX 64
#define RSA_BITS_MIN 2048
#define RSA_BYTES_MAX 1024 /* 8192 bits */
#define DISCOVERY_DOC_MAX (64 * 1024)
#define JWKS_DOC_MAX (256 * 1024)
#define URL_MAX 2048
#define WELL_KNOWN "/.well-known/openid-configuration"

/* The WLCG profile's key cache: refresh after 6 h, keys kept 2 days at
 * most when the issuer cannot be reached; an unknown kid (a rotation)
 * refetches, once a minute per issuer, so forged kids cannot make us
 * hammer the issuer. */
#define KEYS_FRESH (6 * 3600)
#define KEYS_STALE (2 * 86400)
#define FETCH_EVERY 60

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

/* A key set several verifiers may hold while a newer one replaces it. */
struct keyset {
	struct rfs_jwks *jwks;
	int refs; /* under rfs_keyring.lock */
};

struct issuer {
	char *iss;
	struct keyset *keys; /* NULL until some were had */
	time_t fetched; /* when @keys were fetched, as the store keeps it */
	time_t tried;	/* the last fetch began; 0: never */
	bool store_tried;
	bool busy; /* one thread loads or fetches, the others wait */
};

struct rfs_keyring {
	/*
	 * A leaf lock, never held across the store or the network: the
	 * thread that marks an issuer busy does those unlocked, then
	 * installs what it got and wakes the others.
	 */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct issuer *iss;
	size_t n;
	struct rfs_http *http;
	struct rfs_keyring_store store;
	bool has_store;
	double wait_max; /* how long a verifier waits on another's fetch */
};

static void keyset_put_locked(struct keyset *ks)
{
	if (ks && --ks->refs == 0) {
		rfs_jwks_free(ks->jwks);
		free(ks);
	}
}

static void keyset_put(struct rfs_keyring *kr, struct keyset *ks)
{
	if (!ks)
		return;
	pthread_mutex_lock(&kr->lock);
	keyset_put_locked(ks);
	pthread_mutex_unlock(&kr->lock);
}

static int add_issuers(struct rfs_keyring *kr, const struct rfs_strv *issuers)
{
	char url[URL_MAX];

	kr->iss = calloc(issuers->n ? issuers->n : 1, sizeof(*kr->iss));
	if (!kr->iss)
		return -ENOMEM;
	for (size_t i = 0; i < issuers->n; i++) {
		/* refused at start rather than at the first token */
		if (rfs_oidc_discovery_url(issuers->v[i], 0, url,
					   sizeof(url))) {
			rfs_err("token issuer '%s' is not an https:// URL",
				issuers->v[i]);
			return -EINVAL;
		}
		kr->iss[i].iss = strdup(issuers->v[i]);
		if (!kr->iss[i].iss)
			return -ENOMEM;
		kr->n++;
	}
	return 0;
}

int rfs_keyring_new(struct rfs_keyring **out, const struct rfs_keyring_opts *o)
{
	static const struct rfs_strv none;
	struct rfs_keyring *kr = calloc(1, sizeof(*kr));
	struct rfs_http_opts ho = {
		.ca_cert = o->ca_cert,
		.connect_timeout =
			o->connect_timeout > 0 ? o->connect_timeout : 10,
		.io_timeout = o->io_timeout > 0 ? o->io_timeout : 30,
		.low_speed_limit = 1,
		.user_agent = "ruciofs",
	};
	int rc;

	if (!kr)
		return -ENOMEM;
	pthread_mutex_init(&kr->lock, NULL);
	pthread_cond_init(&kr->cv, NULL);
	/* a verifier waits for at most the three requests of one fetch */
	kr->wait_max = 3 * (ho.connect_timeout + ho.io_timeout) + 1;
	if (o->store) {
		kr->store = *o->store;
		kr->has_store = true;
	}
	rc = add_issuers(kr, o->issuers ? o->issuers : &none);
	if (!rc)
		rc = rfs_http_new(&kr->http, &ho);
	if (rc) {
		rfs_keyring_free(kr);
		return rc;
	}
	*out = kr;
	return 0;
}

void rfs_keyring_free(struct rfs_keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->n; i++) {
		keyset_put_locked(kr->iss[i].keys);
		free(kr->iss[i].iss);
	}
	free(kr->iss);
	rfs_http_free(kr->http);
	pthread_cond_destroy(&kr->cv);
	pthread_mutex_destroy(&kr->lock);
	free(kr);
}

/* A document at @url with status 200 into @b (capped by its max). */
static int get_doc(struct rfs_keyring *kr, const char *url, struct rfs_buf *b)
{
	long status = 0;
	int rc = rfs_http_fetch(kr->http, url, b, &status);

	if (!rc && status != 200)
		rc = status / 100 == 2 ? -EPROTO : rfs_errno_from_http(status);
	if (!rc && !b->len)
		rc = -EINVAL;
	return rc;
}

/* The issuer's jwks_uri, through the discovery URLs in their order. */
static int find_jwks_uri(struct rfs_keyring *kr, const char *iss, char *out,
			 size_t outlen)
{
	char url[URL_MAX];
	struct rfs_buf b;
	int rc = -ENOENT;

	for (int i = 0; rfs_oidc_discovery_url(iss, i, url, sizeof(url)) == 0;
	     i++) {
		rfs_buf_init(&b, DISCOVERY_DOC_MAX);
		rc = get_doc(kr, url, &b);
		if (!rc)
			rc = rfs_oidc_jwks_uri(b.data, b.len, out, outlen);
		rfs_buf_release(&b);
		/* the next spelling only when this one is not the document;
		 * a host that does not answer will not answer the next */
		if (rc != -ENOENT && rc != -EINVAL)
			break;
	}
	return rc;
}

/* Fetches @iss's keys; the document goes to the store as fetched. */
static int fetch_keys(struct rfs_keyring *kr, const char *iss, time_t now,
		      struct rfs_jwks **out)
{
	char uri[URL_MAX];
	struct rfs_buf b;
	int rc = find_jwks_uri(kr, iss, uri, sizeof(uri));

	rfs_buf_init(&b, JWKS_DOC_MAX);
	if (!rc)
		rc = get_doc(kr, uri, &b);
	if (!rc)
		rc = rfs_jwks_parse(b.data, b.len, out);
	if (!rc && kr->store.save &&
	    kr->store.save(kr->store.arg, iss, b.data, b.len, now))
		rfs_warn("keys of issuer '%s' not stored", iss);
	rfs_buf_release(&b);
	if (rc)
		rfs_log_limited(LOG_WARNING, iss,
				"keys of issuer '%s' not fetched: %s", iss,
				rfs_errno_reason(rc));
	else
		rfs_info("keys of issuer '%s' fetched: %zu usable", iss,
			 rfs_jwks_count(*out));
	return rc;
}

static int load_keys(struct rfs_keyring *kr, const char *iss, time_t *at,
		     struct rfs_jwks **out)
{
	char *doc = NULL;
	size_t len = 0;
	int rc;

	if (!kr->store.load)
		return -ENOENT;
	rc = kr->store.load(kr->store.arg, iss, &doc, &len, at);
	if (!rc)
		rc = len > JWKS_DOC_MAX
			     ? -EFBIG
			     : rfs_jwks_parse(doc ? doc : "", len, out);
	free(doc);
	if (rc && rc != -ENOENT)
		rfs_warn("stored keys of issuer '%s' unusable: %s", iss,
			 rfs_errno_reason(rc));
	return rc;
}

enum step {
	USE,   /* the kept keys (fresh, or the best to be had) */
	LOAD,  /* ask the store first */
	FETCH, /* ask the issuer */
	FAIL,  /* no usable keys */
};

/* What to do for @kid at @now; @may_act false: only what is kept. */
static enum step decide(const struct rfs_keyring *kr, const struct issuer *is,
			const char *kid, time_t now, bool may_act)
{
	bool have = is->keys != NULL;
	bool has_kid = have && rfs_jwks_has(is->keys->jwks, kid);
	long long age = have ? (long long)now - is->fetched : 0;

	/* the clock stepped back: the real age is unknown, so refresh, but
	 * the keys were fetched by us and stay usable */
	if (age < 0)
		age = KEYS_FRESH;
	if (have && has_kid && age < KEYS_FRESH)
		return USE;
	if (may_act && !have && !is->store_tried && kr->has_store)
		return LOAD;
	if (may_act &&
	    (!is->tried || now < is->tried || now - is->tried >= FETCH_EVERY))
		return FETCH;
	return have && age <= KEYS_STALE ? USE : FAIL;
}

/* Replaces @is's keys with @jwks, fetched at @at (under the lock). */
static void install(struct issuer *is, struct rfs_jwks *jwks, time_t at)
{
	struct keyset *ks = calloc(1, sizeof(*ks));

	if (!ks) {
		rfs_jwks_free(jwks);
		return;
	}
	ks->jwks = jwks;
	ks->refs = 1;
	keyset_put_locked(is->keys);
	is->keys = ks;
	is->fetched = at;
}

/* Loads or fetches for @is, unlocked; back under the lock after. */
static void act(struct rfs_keyring *kr, struct issuer *is, enum step s,
		time_t now)
{
	struct rfs_jwks *jwks = NULL;
	time_t at = now;
	int rc;

	is->busy = true;
	if (s == LOAD)
		is->store_tried = true;
	else
		is->tried = now;
	pthread_mutex_unlock(&kr->lock);
	rc = s == LOAD ? load_keys(kr, is->iss, &at, &jwks)
		       : fetch_keys(kr, is->iss, now, &jwks);
	pthread_mutex_lock(&kr->lock);
	if (!rc)
		install(is, jwks, at);
	is->busy = false;
	pthread_cond_broadcast(&kr->cv);
}

/*
 * @is's keys for @kid at @now, a reference (keyset_put), or NULL. One
 * thread at a time loads or fetches for an issuer; the others wait for
 * it and then use what it got.
 */
static struct keyset *keys_for(struct rfs_keyring *kr, struct issuer *is,
			       const char *kid, time_t now)
{
	double deadline = rfs_mono_now() + kr->wait_max;
	struct keyset *ks = NULL;
	bool fetched = false;
	enum step s;

	pthread_mutex_lock(&kr->lock);
	for (;;) {
		if (is->busy) {
			if (!rfs_cond_wait_until(&kr->cv, &kr->lock, deadline))
				continue;
			s = decide(kr, is, kid, now, false);
			break;
		}
		/* one fetch per verification, whatever the rate limit says */
		s = decide(kr, is, kid, now, !fetched);
		if (s == USE || s == FAIL)
			break;
		fetched = s == FETCH;
		act(kr, is, s, now);
	}
	if (s == USE) {
		ks = is->keys;
		ks->refs++;
	}
	pthread_mutex_unlock(&kr->lock);
	return ks;
}

/* What a token must be before it may cost a fetch. */
static const char *precheck(struct rfs_keyring *kr, const struct rfs_jwt *j,
			    struct issuer **is)
{
	if (strcmp(j->alg, "RS256") && strcmp(j->alg, "ES256"))
		return "algorithm not allowed";
	if (!j->kid[0])
		return "unknown key id";
	for (size_t i = 0; i < kr->n; i++) {
		if (!strcmp(kr->iss[i].iss, j->iss)) {
			*is = &kr->iss[i];
			return NULL;
		}
	}
	return "issuer not accepted";
}

int rfs_keyring_verify(struct rfs_keyring *kr, const char *token,
		       const struct rfs_jwt_policy *p, time_t now,
		       struct rfs_jwt *out, const char **why)
{
	struct issuer *is = NULL;
	struct keyset *ks = NULL;
	const char *w;
	int rc = rfs_jwt_parse(token, out);

	if (rc) {
		*why = "malformed token";
		return rc == -ENOMEM ? rc : -EACCES;
	}
	w = precheck(kr, out, &is);
	if (!w) {
		ks = keys_for(kr, is, out->kid, now);
		if (!ks)
			w = "issuer keys unavailable";
	}
	if (!w)
		rfs_jwt_verify(out, ks->jwks, p, now, &w);
	keyset_put(kr, ks);
	if (w) {
		rfs_jwt_release(out);
		*why = w;
		return -EACCES;
	}
	return 0;
}
