/*
 * The JWT parser and the scope matcher: whatever the bytes, a token that
 * parses has bounded, terminated fields, groups that start with '/',
 * scopes without blanks, and a signed part that is the token's own
 * prefix; scopes grant by whole components (a grant on a path is one on
 * everything below it, modify implies create, and no path climbs out
 * with ".."); and nothing verifies without a key.
 */
#include "config.h"

#include <errno.h>

#include "authz/jwt.h"
#include "fuzz.h"

static const char *const caps[] = { "read", "create", "modify", "stage" };

static void check_fields(const struct rfs_jwt *j, const char *token)
{
	FUZZ_CHECK(j->alg[0] &&
		   strnlen(j->alg, sizeof(j->alg)) < sizeof(j->alg));
	FUZZ_CHECK(strnlen(j->kid, sizeof(j->kid)) < sizeof(j->kid));
	FUZZ_CHECK(strnlen(j->iss, sizeof(j->iss)) < sizeof(j->iss));
	FUZZ_CHECK(strnlen(j->sub, sizeof(j->sub)) < sizeof(j->sub));
	FUZZ_CHECK(strnlen(j->ver, sizeof(j->ver)) < sizeof(j->ver));
	FUZZ_CHECK(j->signed_len == (size_t)(strrchr(token, '.') - token));
	FUZZ_CHECK(!memcmp(j->signed_part, token, j->signed_len));
	FUZZ_CHECK(j->sig_len <= strlen(token) - j->signed_len);
	for (size_t i = 0; i < j->groups.n; i++)
		FUZZ_CHECK(j->groups.v[i][0] == '/' && j->groups.v[i][1]);
	for (size_t i = 0; i < j->scopes.n; i++)
		FUZZ_CHECK(j->scopes.v[i][0] && !strchr(j->scopes.v[i], ' '));
}

/* @a + @b in a new string. */
static char *cat(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 1;
	char *s = malloc(n);

	if (!s)
		abort();
	snprintf(s, n, "%s%s", a, b);
	return s;
}

/* A path rfs_jwt_allows may grant on: absolute, no "." or "..". */
static bool clean(const char *p)
{
	if (*p != '/')
		return false;
	for (const char *c = p; *c; c++) {
		if (c[0] == '.' && c[-1] == '/' &&
		    (!c[1] || c[1] == '/' ||
		     (c[1] == '.' && (!c[2] || c[2] == '/'))))
			return false;
	}
	return true;
}

/* What holds for any path: grants reach down, modify implies create,
 * ".." never passes. */
static void check_path(const struct rfs_jwt *j, const char *path)
{
	char *child = cat(path, "/x"), *up = cat(path, "/../x");

	for (size_t c = 0; c < sizeof(caps) / sizeof(*caps); c++) {
		if (rfs_jwt_allows(j, caps[c], path))
			FUZZ_CHECK(rfs_jwt_allows(j, caps[c], child));
		FUZZ_CHECK(!rfs_jwt_allows(j, caps[c], up));
	}
	if (rfs_jwt_allows(j, "modify", path))
		FUZZ_CHECK(rfs_jwt_allows(j, "create", path));
	free(child);
	free(up);
}

static void check_scopes(const struct rfs_jwt *j)
{
	static const char *const paths[] = { "/",	 "/foo",
					     "/foo/bar", "/foo/bargain",
					     "relative", "" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++)
		check_path(j, paths[i]);
	FUZZ_CHECK(!rfs_jwt_allows(j, "relative", "/"));
	for (size_t i = 0; i < j->scopes.n; i++) {
		const char *s = j->scopes.v[i], *colon = strchr(s, ':');

		if (!colon)
			continue;
		check_path(j, colon + 1);
		/* "storage.<cap>:<clean path>" grants <cap> on that path */
		for (size_t c = 0; c < sizeof(caps) / sizeof(*caps); c++) {
			size_t n = strlen(caps[c]);

			if (!strncmp(s, "storage.", 8) &&
			    !strncmp(s + 8, caps[c], n) && s + 8 + n == colon &&
			    clean(colon + 1))
				FUZZ_CHECK(
					rfs_jwt_allows(j, caps[c], colon + 1));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rfs_strv iss = { 0 };
	struct rfs_jwt_policy p = { .issuers = &iss, .skew = 60 };
	char *s = fuzz_str(data, size), fp[17];
	const char *why = NULL;
	struct rfs_jwt j;

	rfs_jwt_fingerprint(s, fp, sizeof(fp));
	FUZZ_CHECK(strlen(fp) == 16 && strspn(fp, "0123456789abcdef") == 16);
	if (rfs_jwt_parse(s, &j) == 0) {
		check_fields(&j, s);
		check_scopes(&j);
		FUZZ_CHECK(rfs_jwt_verify(&j, NULL, &p, 0, &why) == -EACCES);
		FUZZ_CHECK(why != NULL);
		rfs_jwt_release(&j);
	}
	free(s);
	return 0;
}
