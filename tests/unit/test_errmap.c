/*
 * Unit tests for the errno tables that need no network library
 * (util/errmap_http.c, util/errmap_mdb.c, util/errmap_xrd.c,
 * util/errmap.c): what a
 * catalogue or storage status and an LMDB code become, and that every
 * failure stays a failure. Linked without libcurl, as cache/ is; the
 * curl table's checks are in test_http.c, which has curl.
 */
#include "config.h"

#include <errno.h>

#include <lmdb.h>

#include "util/errmap.h"
#include "unit.h"

struct pair {
	long from;
	int to;
};

static void test_http_status(void)
{
	static const struct pair t[] = {
		{ 400, -EINVAL }, { 401, -EACCES },    { 403, -EACCES },
		{ 404, -ENOENT }, { 410, -ENOENT },    { 406, -EPROTO },
		{ 415, -EPROTO }, { 408, -ETIMEDOUT }, { 504, -ETIMEDOUT },
		{ 409, -EEXIST }, { 413, -EFBIG },     { 416, -ERANGE },
		{ 429, -EBUSY },  { 503, -EBUSY },     { 500, -EIO },
		{ 502, -EIO },	  { 302, -EIO },       { 200, -EIO },
		{ 0, -EIO },	  { -1, -EIO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_INT(rfs_errno_from_http(t[i].from), t[i].to);
	/* whatever a server sends, the caller sees a failure */
	for (long s = 100; s < 1000; s++)
		if (rfs_errno_from_http(s) >= 0)
			CHECK_INT(s, -1);
}

static void test_mdb(void)
{
	static const struct pair t[] = {
		{ 0, 0 },
		{ MDB_NOTFOUND, -ENOENT },
		{ MDB_MAP_FULL, -ENOSPC },
		{ MDB_TXN_FULL, -ENOSPC },
		{ MDB_READERS_FULL, -EAGAIN },
		{ MDB_CORRUPTED, -EBADMSG },
		{ MDB_PAGE_NOTFOUND, -EBADMSG },
		{ MDB_INVALID, -EBADMSG },
		{ MDB_VERSION_MISMATCH, -EBADMSG },
		{ MDB_KEYEXIST, -EIO },
		{ MDB_BAD_TXN, -EIO },
		{ EIO, -EIO }, /* system errors come through positive */
		{ ENOSPC, -ENOSPC },
		{ EACCES, -EACCES },
		{ ENOMEM, -ENOMEM },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_INT(rfs_errno_from_mdb((int)t[i].from), t[i].to);
	for (int rc = MDB_KEYEXIST; rc <= MDB_LAST_ERRCODE; rc++)
		if (rfs_errno_from_mdb(rc) >= 0)
			CHECK_INT(rc, -1);
}

static void test_xrd(void)
{
	static const struct pair t[] = {
		{ 3011, -ENOENT },    { 3029, -ENOENT }, { 3010, -EACCES },
		{ 3030, -EACCES },    { 3028, -EACCES }, { 3000, -EINVAL },
		{ 3016, -EISDIR },    { 3024, -EBUSY },	 { 3013, -EOPNOTSUPP },
		{ 3034, -ETIMEDOUT }, { 3005, -EIO },	 { 3007, -EIO },
		{ 3012, -EIO },	      { 0, -EIO },	 { -1, -EIO },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		CHECK_INT(rfs_errno_from_xrd((int)t[i].from), t[i].to);
	/* whatever number a server sends, the read fails */
	for (int n = 2990; n < 3100; n++)
		if (rfs_errno_from_xrd(n) >= 0)
			CHECK_INT(n, -1);
}

static void test_reason(void)
{
	CHECK_STR(rfs_errno_reason(-ETIMEDOUT), "timed out");
	CHECK_STR(rfs_errno_reason(-EPROTO), "protocol or TLS error");
	CHECK_STR(rfs_errno_reason(-EBUSY), "server busy");
	CHECK_STR(rfs_errno_reason(-EBADMSG), "malformed answer");
	/* the rest: the system's words */
	CHECK_STR(rfs_errno_reason(-ENOSPC), strerror(ENOSPC));
}

int main(void)
{
	test_http_status();
	test_mdb();
	test_xrd();
	test_reason();
	return unit_done("errmap");
}
