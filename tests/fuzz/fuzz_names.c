/*
 * What a DID name becomes in the mount: a path component and an inode
 * number; and token hygiene, the other place raw strings meet the kernel
 * side (a bad token must never reach a header).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>

#include "authz/token.h"
#include "core/fs.h"
#include "fuzz.h"

static const char standin[] = "\xef\xbc\x8f";

/* Maps the stand-in back to '/' and compares with @want. */
static void check_roundtrip(const char *posix, const char *want)
{
	size_t i = 0;

	while (*posix) {
		if (!strncmp(posix, standin, 3)) {
			FUZZ_CHECK(want[i++] == '/');
			posix += 3;
		} else {
			FUZZ_CHECK(want[i++] == *posix++);
		}
	}
	FUZZ_CHECK(want[i] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_str(data, size), *copy = fuzz_str(data, size), *t;
	size_t outlen = 1 + size % 300;
	char *out = malloc(outlen);
	long long exp;
	uint64_t ino;
	int rc;

	if (!out)
		abort();
	if (rfs_name_to_posix(s, out, outlen) == 0) {
		FUZZ_CHECK(strlen(out) <= NAME_MAX && strlen(out) < outlen);
		FUZZ_CHECK(!strchr(out, '/'));
		FUZZ_CHECK(*out && strcmp(out, ".") && strcmp(out, ".."));
		if (!strstr(s, standin))
			check_roundtrip(out, s);
	}

	ino = rfs_ino_of(s, NULL);
	FUZZ_CHECK(ino > 1 && ino == rfs_ino_of(s, NULL));
	FUZZ_CHECK(rfs_ino_of("user.jdoe", s) > 1);

	t = rfs_token_clean(copy);
	if (t) {
		FUZZ_CHECK(*t);
		for (const char *p = t; *p; p++)
			FUZZ_CHECK(*p >= 0x21 && *p <= 0x7e);
	}
	if (rfs_token_is_jwt(s)) {
		size_t dots = 0;

		for (const char *p = s; *p; p++)
			dots += *p == '.';
		FUZZ_CHECK(dots == 2 && !strpbrk(s, " \t\r\n+/"));
	}
	rc = rfs_token_jwt_exp(s, &exp);
	FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK(rc == -EINVAL || rfs_token_is_jwt(s));
	free(out);
	free(copy);
	free(s);
	return 0;
}
