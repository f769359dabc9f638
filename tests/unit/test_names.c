/*
 * Unit tests for src/core/names.c: how a DID name becomes a path component
 * and an inode number. Both are visible to users and must never change
 * between runs, so the inode values are pinned here.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "core/fs.h"
#include "unit.h"

static const char *posix(const char *name, size_t outlen, int *rc)
{
	static char out[1024];

	memset(out, '#', sizeof(out));
	*rc = rfs_name_to_posix(name, out, outlen);
	return out;
}

static void test_name_to_posix(void)
{
	char name[400];
	const char *v;
	int rc;

	v = posix("file1.dat", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "file1.dat");
	/* '/' (allowed in names since Rucio 38) becomes U+FF0F */
	v = posix("a/b", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_MEM(v, strlen(v),
		  "a\xef\xbc\x8f"
		  "b",
		  5);
	v = posix("/", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "\xef\xbc\x8f");
	v = posix("run1/", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "run1\xef\xbc\x8f");
	/* other UTF-8 passes through untouched */
	v = posix("\xc3\xa9t\xc3\xa9-\xe6\x97\xa5", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "\xc3\xa9t\xc3\xa9-\xe6\x97\xa5");
	/* names that look special only as a whole */
	v = posix("...", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "...");
	v = posix("./", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, ".\xef\xbc\x8f");
	v = posix(".hidden", 256, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, ".hidden");

	/* names no directory entry can have */
	posix("", 256, &rc);
	CHECK_INT(rc, -EINVAL);
	posix(".", 256, &rc);
	CHECK_INT(rc, -EINVAL);
	posix("..", 256, &rc);
	CHECK_INT(rc, -EINVAL);

	/* NAME_MAX (255 bytes) counts the mapped bytes */
	memset(name, 'x', 255);
	name[255] = '\0';
	v = posix(name, 1024, &rc);
	CHECK_INT(rc, 0);
	CHECK_INT(strlen(v), 255);
	name[255] = 'x';
	name[256] = '\0';
	posix(name, 1024, &rc);
	CHECK_INT(rc, -EINVAL);
	/* 85 slashes are 255 bytes, 86 are 258 */
	memset(name, '/', 85);
	name[85] = '\0';
	v = posix(name, 1024, &rc);
	CHECK_INT(rc, 0);
	CHECK_INT(strlen(v), 255);
	name[85] = '/';
	name[86] = '\0';
	posix(name, 1024, &rc);
	CHECK_INT(rc, -EINVAL);
	/* 252 bytes plus one slash is 255; 253 plus one is 256 */
	memset(name, 'y', 252);
	name[252] = '/';
	name[253] = '\0';
	v = posix(name, 1024, &rc);
	CHECK_INT(rc, 0);
	CHECK_INT(strlen(v), 255);
	memset(name, 'y', 253);
	name[253] = '/';
	name[254] = '\0';
	posix(name, 1024, &rc);
	CHECK_INT(rc, -EINVAL);

	/* the output buffer bounds it too, NUL included */
	v = posix("abcd", 5, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "abcd");
	v = posix("abcde", 5, &rc);
	CHECK_INT(rc, -EINVAL);
	CHECK_INT(v[5], '#');
	v = posix("ab/", 5, &rc);
	CHECK_INT(rc, -EINVAL);
	CHECK_INT(v[5], '#');
	posix("a", 0, &rc);
	CHECK_INT(rc, -EINVAL);
}

static void test_ino_of(void)
{
	uint64_t a = rfs_ino_of("user.jdoe", "file1.dat");
	uint64_t scope = rfs_ino_of("user.jdoe", NULL);

	/*
	 * Pinned: inode numbers reach NFS file handles and find(1) caches,
	 * so they must not change across versions. FNV-1a over
	 * "user.jdoe:file1.dat", and "user.jdoe\001" for the scope.
	 */
	CHECK_U64(a, 0x1cde490b59ced1beULL);
	CHECK_U64(scope, 0xd9686bd28ae48f2dULL);
	CHECK_U64(rfs_ino_of("user.jdoe", "file1.dat"), a);
	CHECK(a != scope);
	CHECK(a > 1 && scope > 1);
	/* a scope and a DID with an empty name are different things */
	CHECK(rfs_ino_of("user.jdoe", "") != scope);
	CHECK(rfs_ino_of("user.jdoe", "file2.dat") != a);
	CHECK(rfs_ino_of("user.jdof", "file1.dat") != a);
	CHECK(rfs_ino_of("user.jdoe:file1.dat", NULL) != a);
	CHECK(rfs_ino_of("user.jdoe", "a/b") != rfs_ino_of("user.jdoe",
							   "a\xef\xbc\x8f"
							   "b"));
	CHECK(rfs_ino_of("", NULL) > 1);
}

/*
 * Never 0 or 1, and no collisions over a realistic directory: 20000 names
 * of one dataset plus the scopes they sit in.
 */
static void test_ino_spread(void)
{
	enum { N = 20000 };
	uint64_t *v = calloc(N + 2, sizeof(*v));
	size_t dup = 0, small = 0;
	char name[64];

	if (!v) {
		CHECK(v != NULL);
		return;
	}
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "file%05d.root", i);
		v[i] = rfs_ino_of("data26_13p6TeV", name);
	}
	v[N] = rfs_ino_of("data26_13p6TeV", NULL);
	v[N + 1] = rfs_ino_of("mc26_13p6TeV", NULL);
	for (int i = 0; i < N + 2; i++) {
		if (v[i] < 2)
			small++;
		for (int j = i + 1; j < N + 2; j++)
			if (v[i] == v[j])
				dup++;
	}
	CHECK_INT(small, 0);
	CHECK_INT(dup, 0);
	free(v);
}

int main(void)
{
	test_name_to_posix();
	test_ino_of();
	test_ino_spread();
	return unit_done("names");
}
