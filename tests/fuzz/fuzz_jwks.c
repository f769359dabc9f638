/*
 * An issuer's documents: a JWKS (keys kept or skipped, never a crash or
 * a leak, never more than the cap, never one without a kid), the jwks_uri
 * of a discovery document (https:// only, fits its buffer), and the
 * discovery URLs of an issuer (https://, the well-known path in them, in
 * their order).
 */
#include "config.h"

#include <errno.h>
#include <strings.h>

#include "authz/keyring.h"
#include "fuzz.h"

#define WELL_KNOWN "/.well-known/openid-configuration"

static void check_jwks(const uint8_t *data, size_t size)
{
	struct rfs_jwks *k = NULL;
	int rc = rfs_jwks_parse((const char *)data, size, &k);

	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc)
		return;
	FUZZ_CHECK(rfs_jwks_count(k) <= 64);
	FUZZ_CHECK(!rfs_jwks_has(k, ""));
	rfs_jwks_free(k);
}

static void check_jwks_uri(const uint8_t *data, size_t size)
{
	size_t outlen = 1 + size % 200;
	char *out = malloc(outlen);
	int rc;

	if (!out)
		abort();
	rc = rfs_oidc_jwks_uri((const char *)data, size, out, outlen);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -EPROTO);
	if (!rc) {
		FUZZ_CHECK(strlen(out) < outlen);
		FUZZ_CHECK(!strncasecmp(out, "https://", 8) && out[8] != '/');
		for (const char *p = out; *p; p++)
			FUZZ_CHECK(*p > 0x20 && *p < 0x7f);
	}
	free(out);
}

static void check_discovery(const char *iss, size_t outlen)
{
	char *out = malloc(outlen);
	int rc, last = 0;

	if (!out)
		abort();
	for (int i = 0; i < 4; i++) {
		rc = rfs_oidc_discovery_url(iss, i, out, outlen);
		FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL ||
			   rc == -ENAMETOOLONG);
		/* an issuer is refused whole, and the list has no holes */
		if (i > 0)
			FUZZ_CHECK(rc != -EINVAL || last == -EINVAL);
		if (last == -ENOENT)
			FUZZ_CHECK(rc == -ENOENT);
		if (!rc) {
			FUZZ_CHECK(strlen(out) < outlen);
			FUZZ_CHECK(!strncasecmp(out, "https://", 8));
			FUZZ_CHECK(strstr(out, WELL_KNOWN) != NULL);
		}
		last = rc;
	}
	FUZZ_CHECK(last == -ENOENT || last == -EINVAL);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size);

	check_jwks(data, size);
	check_jwks_uri(data, size);
	check_discovery(s, 4096);
	check_discovery(s, 1 + size % 100);
	free(s);
	return 0;
}
