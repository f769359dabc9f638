/*
 * Unit tests for src/authz/idmap.c: the identity map file (-o idmap=).
 * Names are looked up for real (getpwnam_r, getgrnam_r) with the ones
 * every Debian system has: root, nobody, nogroup.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "authz/idmap.h"
#include "authz/idmap_int.h"
#include "unit.h"

static char err[256];

static struct rfs_idmap *parse(const char *text, int *rc)
{
	struct rfs_idmap *m = NULL;

	*rc = rfs_idmap_parse(text, strlen(text), &m, err, sizeof(err));
	CHECK((*rc == 0) == (m != NULL));
	return m;
}

/* The error @text gives (its message in err). */
static int parse_error(const char *text)
{
	struct rfs_idmap *m;
	int rc;

	m = parse(text, &rc);
	rfs_idmap_free(m);
	return rc;
}

static void test_example(void)
{
	static const char text[] =
		"# who owns what\n"
		"group   /escape        root\n"
		"group   escape/cta     nogroup   # IAM's groups: no '/'\n"
		"group\t/escape/pilots\t4242\n"
		"\n"
		"user    a3f1c2de-4b5a-4c8e-9f01-23456789abcd   nobody\n"
		"user    5e0c11aa-0000-4000-8000-000000000001   1001\r\n"
		"account jdoe     root\n"
		"account a#b      7   \n"
		"scope   cta      /escape/cta\n"
		"scope   user.jdoe  escape\n"
		"   # an indented comment\n";
	struct rfs_idmap *m;
	uid_t uid = 1;
	gid_t gid = 1;
	int rc;

	m = parse(text, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(err, "");
	CHECK(rfs_idmap_gid(m, "/escape", &gid));
	CHECK_INT(gid, 0);
	/* either spelling of a group, in the file or asked */
	CHECK(rfs_idmap_gid(m, "/escape/cta", &gid));
	CHECK_INT(gid, 65534);
	CHECK(rfs_idmap_gid(m, "escape/pilots", &gid));
	CHECK_INT(gid, 4242);
	CHECK(!rfs_idmap_gid(m, "/escape/other", &gid));
	CHECK(!rfs_idmap_gid(m, "/esc", &gid));
	CHECK(!rfs_idmap_gid(m, "", &gid));
	CHECK(rfs_idmap_uid_of_sub(m, "a3f1c2de-4b5a-4c8e-9f01-23456789abcd",
				   &uid));
	CHECK_INT(uid, 65534);
	CHECK(rfs_idmap_uid_of_sub(m, "5e0c11aa-0000-4000-8000-000000000001",
				   &uid));
	CHECK_INT(uid, 1001);
	/* subjects are not accounts */
	CHECK(!rfs_idmap_uid_of_sub(m, "jdoe", &uid));
	CHECK(rfs_idmap_uid_of_account(m, "jdoe", &uid));
	CHECK_INT(uid, 0);
	/* a '#' inside a field is part of it */
	CHECK(rfs_idmap_uid_of_account(m, "a#b", &uid));
	CHECK_INT(uid, 7);
	CHECK_STR(rfs_idmap_scope_group(m, "cta"), "/escape/cta");
	CHECK_STR(rfs_idmap_scope_group(m, "user.jdoe"), "/escape");
	CHECK(rfs_idmap_scope_group(m, "user") == NULL);
	CHECK(rfs_idmap_scope_group(m, NULL) == NULL);
	rfs_idmap_free(m);

	/* no map: nothing is mapped */
	CHECK(!rfs_idmap_gid(NULL, "/escape", &gid));
	CHECK(!rfs_idmap_uid_of_sub(NULL, "x", &uid));
	CHECK(!rfs_idmap_uid_of_account(NULL, "x", &uid));
	CHECK(rfs_idmap_scope_group(NULL, "cta") == NULL);
	m = parse("", &rc);
	CHECK_INT(rc, 0);
	CHECK(!rfs_idmap_gid(m, "/escape", &gid));
	rfs_idmap_free(m);
	m = parse("\n\n# only comments\n\t\n", &rc);
	CHECK_INT(rc, 0);
	rfs_idmap_free(m);
}

static void test_later_wins(void)
{
	struct rfs_idmap *m;
	uid_t uid = 0;
	gid_t gid = 0;
	int rc;

	m = parse("account jdoe 10\ngroup /g 1\naccount jdoe 11\n"
		  "group g 2\nscope s /a\nscope s /b\naccount jdoe 12\n",
		  &rc);
	CHECK_INT(rc, 0);
	CHECK(rfs_idmap_uid_of_account(m, "jdoe", &uid));
	CHECK_INT(uid, 12);
	CHECK(rfs_idmap_gid(m, "/g", &gid));
	CHECK_INT(gid, 2);
	CHECK_STR(rfs_idmap_scope_group(m, "s"), "/b");
	rfs_idmap_free(m);
}

static void test_errors(void)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "owner x y\n", "idmap line 1: unknown rule 'owner' (group, "
				 "user, account or scope)" },
		{ "# c\n\ngroup /escape\n",
		  "idmap line 3: 'group' needs a key and a value" },
		{ "user\n", "idmap line 1: 'user' needs a key and a value" },
		{ "group /a b c\n",
		  "idmap line 1: more than three fields (a key with blanks "
		  "cannot be written)" },
		{ "account x 1\nuser x no-such-user-rfs\n",
		  "idmap line 2: unknown user 'no-such-user-rfs'" },
		{ "group /x no-such-group-rfs # comment\n",
		  "idmap line 1: unknown group 'no-such-group-rfs'" },
		{ "user x 4294967295\n",
		  "idmap line 1: user id '4294967295' is out of range" },
		{ "group /x 99999999999999999999\n",
		  "idmap line 1: group id '99999999999999999999' is out of "
		  "range" },
		{ "group / 1\n",
		  "idmap line 1: '/' is not an IAM group (like /vo/sub)" },
		{ "group //x 1\n",
		  "idmap line 1: '//x' is not an IAM group (like /vo/sub)" },
		{ "scope s /a/\n",
		  "idmap line 1: '/a/' is not an IAM group (like /vo/sub)" },
		{ "scope s a//b\n",
		  "idmap line 1: 'a//b' is not an IAM group (like /vo/sub)" },
		{ "account x 1\naccount y\xc3\xa9 1\n",
		  "idmap line 2: field 2 has a byte that is not printable "
		  "ASCII" },
		{ "account x\x01y 1\n",
		  "idmap line 1: field 2 has a byte that is not printable "
		  "ASCII" },
	};
	char line[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		CHECK_INT(parse_error(cases[i].text), -EINVAL);
		CHECK_STR(err, cases[i].err);
	}
	/* a NUL byte: parse takes a length */
	{
		struct rfs_idmap *m = NULL;

		CHECK_INT(rfs_idmap_parse("user a 1\nuser b\0 1\n", 19, &m, err,
					  sizeof(err)),
			  -EINVAL);
		CHECK_STR(err, "idmap line 2: NUL byte");
		CHECK(m == NULL);
	}
	/* fields are capped; a subject of 255 bytes is fine */
	memset(line, 'x', sizeof(line));
	memcpy(line, "user ", 5);
	snprintf(line + 5 + RFS_IDMAP_FIELD_MAX + 1, 8, " 1\n");
	CHECK_INT(parse_error(line), -EINVAL);
	CHECK_STR(err, "idmap line 1: field 2 is longer than 1024 bytes");
	snprintf(line + 5 + 255, 8, " 1\n");
	CHECK_INT(parse_error(line), 0);
	/* a short buffer is cut, not overrun */
	{
		struct rfs_idmap *m = NULL;
		char small[15];

		CHECK_INT(rfs_idmap_parse("bad\n", 4, &m, small, sizeof(small)),
			  -EINVAL);
		CHECK_STR(small, "idmap line 1: ");
		CHECK_INT(rfs_idmap_parse("bad\n", 4, &m, NULL, 0), -EINVAL);
	}
}

static int failing_user(const char *name, uid_t *out, void *arg)
{
	return -EIO;
}

static void test_lookup_failure(void)
{
	static const struct rfs_idmap_names names = { failing_user,
						      failing_user, NULL };
	struct rfs_idmap *m = NULL;

	CHECK_INT(rfs_idmap_parse_with("account x y\n", 12, &names, &m, err,
				       sizeof(err)),
		  -EINVAL);
	CHECK_STR(err, "idmap line 1: cannot look up user 'y': Input/output "
		       "error");
	/* numbers are not looked up */
	CHECK_INT(rfs_idmap_parse_with("account x 5\n", 12, &names, &m, err,
				       sizeof(err)),
		  0);
	rfs_idmap_free(m);
}

/* Many rules: each found, in any order written. */
static void test_many(void)
{
	size_t n = 20000, len = 0;
	char *text = malloc(n * 48);
	struct rfs_idmap *m = NULL;
	const struct rfs_idmap_rule *r;
	size_t nr = 0;
	uid_t uid;
	int bad = 0;

	CHECK(text != NULL);
	if (!text)
		return;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, 48, "account acc%zu %zu\n",
					(i * 7919) % n, (i * 7919) % n);
	CHECK_INT(rfs_idmap_parse(text, len, &m, err, sizeof(err)), 0);
	for (size_t i = 0; i < n; i++) {
		char key[32];

		snprintf(key, sizeof(key), "acc%zu", i);
		bad += !rfs_idmap_uid_of_account(m, key, &uid) || uid != i;
	}
	CHECK_INT(bad, 0);
	r = rfs_idmap_rules(m, RFS_IDMAP_ACCOUNT, &nr);
	CHECK_INT(nr, n);
	CHECK(r != NULL);
	rfs_idmap_free(m);
	free(text);
}

static void test_load(void)
{
	char *dir = unit_mkdtemp("idmap"), *p, *big;
	struct rfs_idmap *m = NULL;
	char path[4200];
	uid_t uid = 0;

	CHECK(dir != NULL);
	if (!dir)
		return;
	p = unit_write(dir, "map", "account jdoe 42\n", 0644);
	CHECK_INT(rfs_idmap_load(p, &m, err, sizeof(err)), 0);
	CHECK(rfs_idmap_uid_of_account(m, "jdoe", &uid));
	CHECK_INT(uid, 42);
	rfs_idmap_free(m);
	/* whoever may write it may own any file in "ls -l" */
	CHECK_INT(chmod(p, 0646), 0);
	CHECK_INT(rfs_idmap_load(p, &m, err, sizeof(err)), -EACCES);
	snprintf(path, sizeof(path),
		 "idmap '%s': writable by others (chmod "
		 "o-w)",
		 p);
	CHECK_STR(err, path);
	free(p);
	p = unit_write(dir, "bad", "account jdoe\n", 0644);
	CHECK_INT(rfs_idmap_load(p, &m, err, sizeof(err)), -EINVAL);
	CHECK_STR(err, "idmap line 1: 'account' needs a key and a value");
	free(p);
	snprintf(path, sizeof(path), "%s/none", dir);
	CHECK_INT(rfs_idmap_load(path, &m, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/none': No such file or directory") != NULL);
	CHECK_INT(rfs_idmap_load(dir, &m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "': not a regular file") != NULL);
	/* 1 MiB of comments is read, a byte more is not */
	big = malloc(RFS_IDMAP_FILE_MAX + 2);
	CHECK(big != NULL);
	if (big) {
		memset(big, '#', RFS_IDMAP_FILE_MAX + 1);
		big[RFS_IDMAP_FILE_MAX] = '\0';
		p = unit_write(dir, "big", big, 0600);
		CHECK_INT(rfs_idmap_load(p, &m, err, sizeof(err)), 0);
		rfs_idmap_free(m);
		free(p);
		big[RFS_IDMAP_FILE_MAX] = '#';
		big[RFS_IDMAP_FILE_MAX + 1] = '\0';
		p = unit_write(dir, "big", big, 0600);
		CHECK_INT(rfs_idmap_load(p, &m, err, sizeof(err)), -EFBIG);
		CHECK(strstr(err, "': larger than 1 MiB") != NULL);
		free(p);
		free(big);
	}
	CHECK(m == NULL);
	unit_rmtree(dir);
	free(dir);
}

int main(void)
{
	test_example();
	test_later_wins();
	test_errors();
	test_lookup_failure();
	test_many();
	test_load();
	return unit_done("idmap");
}
