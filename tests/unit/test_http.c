/*
 * Unit tests for the header helpers of src/util/http.c: what the transport
 * believes about a ranged answer comes from these two functions.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>

#include "transport/transport.h"
#include "util/http.h"
#include "unit.h"

/* rfs_http_header_value on a C string, value into a static buffer. */
static const char *hval(const char *line, const char *name, size_t outlen,
			int *rc)
{
	static char out[600];

	memset(out, '#', sizeof(out));
	*rc = rfs_http_header_value(line, strlen(line), name, out, outlen);
	return out;
}

static void test_header_value(void)
{
	char out[16];
	const char *v;
	int rc;

	v = hval("Content-Range: bytes 0-9/21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 0-9/21");
	/* names are case-insensitive; curl passes lines as the server sent */
	v = hval("content-range: bytes 0-9/21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 0-9/21");
	v = hval("X-RUCIO-AUTH-TOKEN: root-ddmlab-unknown-8fea\r\n",
		 "X-Rucio-Auth-Token", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "root-ddmlab-unknown-8fea");
	/* XrdHttp ends lines with a bare LF */
	v = hval("Content-Range: bytes 5-6/7\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "bytes 5-6/7");
	/* no line end at all, and blanks around the value */
	v = hval("ETag:\t \"abc\" \t", "ETag", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "\"abc\"");
	v = hval("X-Empty:\r\n", "X-Empty", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "");
	/* the value's inner blanks and colons are kept */
	v = hval(
		"X-Rucio-Auth-Token-Expires: Tue, 24 Nov 2026 08:55:32 UTC\r\n",
		"X-Rucio-Auth-Token-Expires", 64, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "Tue, 24 Nov 2026 08:55:32 UTC");

	/* other headers, including ones our name is a prefix of */
	hval("Content-Length: 21\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range-Extra: x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Rang: x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range : x\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("HTTP/1.1 206 Partial Content\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("\r\n", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);
	hval("Content-Range", "Content-Range", 64, &rc);
	CHECK_INT(rc, -ENOENT);

	/* the value must fit with its NUL: 3 bytes need 4 */
	v = hval("ETag: abc\r\n", "ETag", 4, &rc);
	CHECK_INT(rc, 0);
	CHECK_STR(v, "abc");
	v = hval("ETag: abcd\r\n", "ETag", 4, &rc);
	CHECK_INT(rc, -ENAMETOOLONG);
	CHECK_INT(v[4], '#'); /* nothing written past the buffer */
	hval("ETag: \r\n", "ETag", 0, &rc);
	CHECK_INT(rc, -ENAMETOOLONG);

	/* @len bounds the read: what follows is not part of the line */
	memcpy(out, "ETag: ab\r\nX", 11);
	CHECK_INT(rfs_http_header_value(out, 8, "ETag", out + 11, 5), 0);
	CHECK_STR(out + 11, "ab");
	CHECK_INT(rfs_http_header_value("ETag: ab", 4, "ETag", out, 8),
		  -ENOENT);
}

struct cr {
	int rc;
	uint64_t start, end, total;
};

static struct cr cr(const char *v)
{
	struct cr r = { 0, 111, 222, 333 };

	r.rc = rfs_http_parse_content_range(v, &r.start, &r.end, &r.total);
	return r;
}

static void test_content_range(void)
{
	struct cr r;

	r = cr("bytes 0-9/21");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 0);
	CHECK_U64(r.end, 9);
	CHECK_U64(r.total, 21);
	r = cr("bytes 20-20/21");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 20);
	CHECK_U64(r.end, 20);
	r = cr("bytes 0-9/*");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.end, 9);
	CHECK_U64(r.total, UINT64_MAX);
	r = cr("bytes 1073741824-2147483647/10737418240");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.start, 1073741824ULL);
	CHECK_U64(r.end, 2147483647ULL);
	CHECK_U64(r.total, 10737418240ULL);
	r = cr("bytes 0-18446744073709551614/18446744073709551615");
	CHECK_INT(r.rc, 0);
	CHECK_U64(r.end, UINT64_MAX - 1);
	/* trailing line end, as a raw header value may keep it */
	CHECK_INT(cr("bytes 0-9/21\r\n").rc, 0);
	CHECK_INT(cr("bytes 0-9/21\n").rc, 0);
	CHECK_INT(cr("bytes 0-9/21 ").rc, 0);
	CHECK_INT(cr("BYTES 0-9/21").rc, 0);

	/* XrdHttp 5.5 answers a suffix range with this */
	CHECK_INT(cr("bytes 15--1/21").rc, -EINVAL);
	/* end past the resource, end before start */
	CHECK_INT(cr("bytes 0-21/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-30/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 9-0/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-0/0").rc, -EINVAL);
	/* numbers that do not fit 64 bits */
	CHECK_INT(cr("bytes 18446744073709551616-1/2").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-18446744073709551616/*").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-1/18446744073709551616").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-1/99999999999999999999999").rc, -EINVAL);
	/* the unsatisfied-range form and other garbage */
	CHECK_INT(cr("bytes */21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/").rc, -EINVAL);
	CHECK_INT(cr("bytes -1-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes +0-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/21x").rc, -EINVAL);
	CHECK_INT(cr("bytes 0-9/21 0").rc, -EINVAL);
	CHECK_INT(cr("bytes0-9/21").rc, -EINVAL);
	CHECK_INT(cr("items 0-9/21").rc, -EINVAL);
	CHECK_INT(cr("0-9/21").rc, -EINVAL);
	CHECK_INT(cr("bytes").rc, -EINVAL);
	CHECK_INT(cr("").rc, -EINVAL);
}

/* What the catalogue is asked for by default: every scheme read here. */
static void test_readable_schemes(void)
{
	bool http = false, https = false, davs = false, root = false;
	const char *s;
	size_t i;

	for (i = 0; (s = rfs_transports_scheme(i)); i++) {
		http |= !strcmp(s, "http");
		https |= !strcmp(s, "https");
		davs |= !strcmp(s, "davs");
		root |= !strcmp(s, "root") || !strcmp(s, "roots");
	}
	CHECK(http && https && davs);
	CHECK(!root); /* asked for only once a transport reads it */
	CHECK_INT(i, 4);
	CHECK(rfs_transports_scheme(i + 1) == NULL);
}

int main(void)
{
	test_header_value();
	test_content_range();
	test_readable_schemes();
	return unit_done("http");
}
