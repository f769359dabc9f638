/*
 * A caller's environment block as discovery reads /proc/<pid>/environ
 * (rfs_environ_feed, in pieces of any size), checked against getenv(3)'s
 * answer worked out here the plain way; and the same bytes as a line of
 * /proc/<pid>/stat (rfs_proc_stat_parse).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>

#include "authz/discover_int.h"
#include "authz/token.h"
#include "fuzz.h"

static const char *const names[RFS_ENV_NVARS] = {
	[RFS_ENV_TOKEN] = "BEARER_TOKEN",
	[RFS_ENV_TOKEN_FILE] = "BEARER_TOKEN_FILE",
	[RFS_ENV_XDG] = "XDG_RUNTIME_DIR",
};

static const size_t caps[RFS_ENV_NVARS] = {
	[RFS_ENV_TOKEN] = RFS_TOKEN_MAX,
	[RFS_ENV_TOKEN_FILE] = PATH_MAX - 1,
	[RFS_ENV_XDG] = PATH_MAX - 1,
};

/* The first "NAME=" entry's value (its length in *@n), or NULL. */
static const uint8_t *first_value(const uint8_t *data, size_t size,
				  const char *name, size_t *n)
{
	size_t len = strlen(name);

	for (size_t pos = 0; pos < size;) {
		const uint8_t *e = data + pos, *nul = memchr(e, 0, size - pos);
		size_t elen = nul ? (size_t)(nul - e) : size - pos;

		if (elen > len && !memcmp(e, name, len) && e[len] == '=') {
			*n = elen - len - 1;
			return e + len + 1;
		}
		pos += elen + 1;
	}
	return NULL;
}

static void check_environ(const uint8_t *data, size_t size)
{
	struct rfs_environ whole, parts;
	size_t step = size ? (size_t)data[0] % 61 + 1 : 1;

	rfs_environ_init(&whole);
	FUZZ_CHECK(rfs_environ_feed(&whole, (const char *)data, size) == 0);
	FUZZ_CHECK(rfs_environ_end(&whole) == 0);
	rfs_environ_init(&parts);
	for (size_t pos = 0; pos < size; pos += step) {
		size_t n = size - pos < step ? size - pos : step;

		FUZZ_CHECK(rfs_environ_feed(&parts, (const char *)data + pos,
					    n) == 0);
	}
	FUZZ_CHECK(rfs_environ_end(&parts) == 0);
	for (int i = 0; i < RFS_ENV_NVARS; i++) {
		size_t n = 0;
		const uint8_t *v = first_value(data, size, names[i], &n);

		FUZZ_CHECK(whole.over[i] == parts.over[i]);
		FUZZ_CHECK(!whole.val[i] == !parts.val[i]);
		FUZZ_CHECK(!whole.val[i] ||
			   !strcmp(whole.val[i], parts.val[i]));
		if (!v) {
			FUZZ_CHECK(!whole.val[i] && !whole.over[i]);
		} else if (n > caps[i]) {
			FUZZ_CHECK(!whole.val[i] && whole.over[i]);
		} else {
			FUZZ_CHECK(whole.val[i] && !whole.over[i]);
			FUZZ_CHECK(strlen(whole.val[i]) == n);
			FUZZ_CHECK(!memcmp(whole.val[i], v, n));
		}
	}
	rfs_environ_release(&whole);
	rfs_environ_release(&parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned long long start = 0;
	pid_t sid = -1;
	int rc;

	check_environ(data, size);
	rc = rfs_proc_stat_parse((const char *)data, size, &sid, &start);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == 0)
		FUZZ_CHECK(sid >= 0);
	return 0;
}
