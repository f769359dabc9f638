/*
 * Any json-stream answer of the catalogue's DID endpoints (listings,
 * contents, bulkmeta): a malformed answer is refused whole, a malformed
 * record skipped and counted; checksums normalised.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>

#include "catalog/parse.h"
#include "fuzz.h"

static void check_hex(const char *s, size_t width)
{
	size_t n = strlen(s);

	FUZZ_CHECK(n == 0 || n == width);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(isxdigit((unsigned char)s[i]) &&
			   !isupper((unsigned char)s[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_did_list l;
	struct rfs_did_rec copy;
	struct rfs_parse_skips sk;
	int rc;

	rc = rfs_parse_dids((const char *)data, size, &l, &sk);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
	if (rc) {
		/* a malformed answer is rejected as a whole */
		FUZZ_CHECK(l.n == 0 && l.v == NULL);
		return 0;
	}
	FUZZ_CHECK(l.n + sk.nul_names + sk.malformed <= size);
	FUZZ_CHECK(memchr(sk.first, '\0', sizeof(sk.first)) != NULL);
	FUZZ_CHECK(!sk.malformed || (sk.field && sk.first[0]));
	for (size_t i = 0; i < l.n; i++) {
		const struct rfs_did_rec *r = &l.v[i];

		FUZZ_CHECK(r->scope && *r->scope && r->name && *r->name);
		FUZZ_CHECK(r->type <= RFS_DID_CONTAINER);
		FUZZ_CHECK(r->has_bytes || r->bytes == 0);
		FUZZ_CHECK(r->bytes <= INT64_MAX);
		check_hex(r->adler32, 8);
		check_hex(r->md5, 32);
	}
	if (l.n) {
		FUZZ_CHECK(rfs_did_rec_copy(&copy, &l.v[0]) == 0);
		FUZZ_CHECK(!strcmp(copy.scope, l.v[0].scope) &&
			   !strcmp(copy.name, l.v[0].name));
		rfs_did_rec_release(&copy);
	}
	rfs_did_list_release(&l);
	return 0;
}
