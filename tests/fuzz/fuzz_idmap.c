/*
 * The identity map (-o idmap=FILE) as rfs_idmap_parse reads it, names
 * looked up in a small table of our own (no NSS in a fuzz run): errors
 * name a line that exists, and every rule kept is found by its key.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "authz/idmap_int.h"
#include "fuzz.h"

static int lookup(const char *name, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned id;
	} known[] = { { "root", 0 },
		      { "alice", 1000 },
		      { "bob", 1001 },
		      { "cta", 2000 },
		      { "escape", 2001 } };

	if (!strncmp(name, "err", 3))
		return -EIO;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(name, known[i].name)) {
			*out = known[i].id;
			return 0;
		}
	return -ENOENT;
}

static int user(const char *name, uid_t *out, void *arg)
{
	unsigned id = 0;
	int rc = lookup(name, &id);

	*out = id;
	return rc;
}

static int group(const char *name, gid_t *out, void *arg)
{
	unsigned id = 0;
	int rc = lookup(name, &id);

	*out = id;
	return rc;
}

static void check_error(const char *err, const uint8_t *data, size_t size)
{
	unsigned long line, lines = 1;
	char *end;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	FUZZ_CHECK(!strncmp(err, "idmap line ", 11));
	line = strtoul(err + 11, &end, 10);
	FUZZ_CHECK(line >= 1 && line <= lines);
	FUZZ_CHECK(!strncmp(end, ": ", 2));
	for (const char *p = err; *p; p++)
		FUZZ_CHECK((unsigned char)*p >= 0x20 &&
			   (unsigned char)*p < 0x7f);
}

static void check_rules(const struct rfs_idmap *m)
{
	for (int k = 0; k < RFS_IDMAP_NKINDS; k++) {
		size_t n;
		const struct rfs_idmap_rule *r = rfs_idmap_rules(m, k, &n);

		for (size_t i = 0; i < n; i++) {
			uid_t uid = 0;
			gid_t gid = 0;

			FUZZ_CHECK(i == 0 ||
				   strcmp(r[i - 1].key, r[i].key) < 0);
			if (k == RFS_IDMAP_GROUP) {
				FUZZ_CHECK(r[i].key[0] == '/');
				FUZZ_CHECK(rfs_idmap_gid(m, r[i].key, &gid) &&
					   gid == r[i].id);
				FUZZ_CHECK(
					rfs_idmap_gid(m, r[i].key + 1, &gid));
			} else if (k == RFS_IDMAP_USER) {
				FUZZ_CHECK(rfs_idmap_uid_of_sub(m, r[i].key,
								&uid) &&
					   uid == r[i].id);
			} else if (k == RFS_IDMAP_ACCOUNT) {
				FUZZ_CHECK(rfs_idmap_uid_of_account(m, r[i].key,
								    &uid) &&
					   uid == r[i].id);
			} else {
				FUZZ_CHECK(r[i].group[0] == '/');
				FUZZ_CHECK(rfs_idmap_scope_group(m, r[i].key) ==
					   r[i].group);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rfs_idmap_names names = { user, group, NULL };
	struct rfs_idmap *m = NULL;
	char err[256];
	int rc;

	rc = rfs_idmap_parse_with((const char *)data, size, &names, &m, err,
				  sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK((rc == 0) == (m != NULL));
	if (rc == -EINVAL)
		check_error(err, data, size);
	if (m)
		check_rules(m);
	rfs_idmap_free(m);
	return 0;
}
