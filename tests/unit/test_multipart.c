/*
 * Unit tests for the multipart/byteranges parser (transport/multipart.c):
 * the exact answers of XrdHttp 5.5.3 and nginx 1.22 to the same
 * two-range request, fed whole and a byte at a time, and answers that
 * must never reach a reader's buffer: truncated, lying about a range,
 * with a range twice or one missing, or data left over.
 */
#include "config.h"

#include <errno.h>

#include "transport/multipart.h"
#include "unit.h"

/* captured from xrootd 5.5.3 (XrdHttp) for "Range: bytes=0-3,10-13" of a
 * 21-byte file "0123456789abcdefghij\n" */
static const char xrd_ct[] = "multipart/byteranges; boundary=123456";
static const char xrd_body[] =
	"\r\n--123456\r\nContent-type: text/plain; charset=UTF-8\r\n"
	"Content-range: bytes 0-3/21\r\n\r\n0123\r\n--123456\r\n"
	"Content-type: text/plain; charset=UTF-8\r\n"
	"Content-range: bytes 10-13/21\r\n\r\nabcd\r\n--123456--\r\n";
/* and from nginx 1.22.1 for the same request */
static const char ng_ct[] =
	"multipart/byteranges; boundary=00000000000000000002";
static const char ng_body[] =
	"\r\n--00000000000000000002\r\nContent-Type: application/octet-stream"
	"\r\nContent-Range: bytes 0-3/21\r\n\r\n0123\r\n"
	"--00000000000000000002\r\nContent-Type: application/octet-stream\r\n"
	"Content-Range: bytes 10-13/21\r\n\r\nabcd\r\n"
	"--00000000000000000002--\r\n";

struct two {
	char a[4], b[4];
	struct rfs_tseg segs[2];
};

static void two_init(struct two *t)
{
	memset(t->a, '#', sizeof(t->a));
	memset(t->b, '#', sizeof(t->b));
	t->segs[0] = (struct rfs_tseg){ 0, 4, t->a };
	t->segs[1] = (struct rfs_tseg){ 10, 4, t->b };
}

/* Feeds @body in pieces of @step bytes; the parser's verdict. */
static int parse(const char *ct, const char *body, size_t len, size_t step,
		 struct two *t)
{
	struct rfs_multipart m;
	int rc;

	two_init(t);
	rc = rfs_mp_init(&m, ct, t->segs, 2, 21);
	for (size_t i = 0; !rc && i < len; i += step)
		rc = rfs_mp_feed(&m, body + i, len - i < step ? len - i : step);
	if (!rc)
		rc = rfs_mp_finish(&m);
	rfs_mp_release(&m);
	return rc;
}

static void test_real_servers(void)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64, 4096 };
	struct two t;

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		CHECK_INT(
			parse(xrd_ct, xrd_body, strlen(xrd_body), steps[i], &t),
			0);
		CHECK_MEM(t.a, 4, "0123", 4);
		CHECK_MEM(t.b, 4, "abcd", 4);
		CHECK_INT(parse(ng_ct, ng_body, strlen(ng_body), steps[i], &t),
			  0);
		CHECK_MEM(t.a, 4, "0123", 4);
		CHECK_MEM(t.b, 4, "abcd", 4);
	}
}

static void test_tolerated(void)
{
	static const char bare_lf[] =
		"\n--123456\ncontent-RANGE:bytes 10-13/21\n\nabcd\n"
		"--123456\nContent-Range: bytes 0-3/21\n\n0123\n--123456--";
	static const char padded[] =
		"\r\n\r\n--123456  \r\nContent-Range: bytes 0-3/*\r\n\r\n"
		"0123\r\n--123456\t\r\nContent-Range: bytes 10-13/21\r\n\r\n"
		"abcd\r\n--123456-- \r\n\r\n";
	struct two t;

	/* bare LF, any case, parts out of order, no final line break */
	CHECK_INT(parse(xrd_ct, bare_lf, strlen(bare_lf), 1, &t), 0);
	CHECK_MEM(t.a, 4, "0123", 4);
	CHECK_MEM(t.b, 4, "abcd", 4);
	/* transport padding after delimiters, an unknown total */
	CHECK_INT(parse(xrd_ct, padded, strlen(padded), 5, &t), 0);
	CHECK_MEM(t.b, 4, "abcd", 4);
	CHECK_INT(parse("Multipart/ByteRanges;boundary=\"123456\"", xrd_body,
			strlen(xrd_body), 9, &t),
		  0);
}

/* @body must be refused, whatever the pieces it comes in. */
static void refused(const char *body, const char *why)
{
	struct two t;
	int rc1 = parse(xrd_ct, body, strlen(body), 1, &t);
	int rc2 = parse(xrd_ct, body, strlen(body), 4096, &t);

	CHECK_INT(rc1, -EBADMSG);
	CHECK_INT(rc2, -EBADMSG);
	if (rc1 != -EBADMSG || rc2 != -EBADMSG)
		printf("# accepted: %s\n", why);
}

static void test_refused(void)
{
	char buf[512];
	size_t n = strlen(xrd_body);

	/* truncated anywhere: never complete */
	for (size_t cut = 0; cut + 2 < n; cut++) {
		memcpy(buf, xrd_body, cut);
		buf[cut] = '\0';
		refused(buf, "truncated");
	}
	refused("\r\n--123456\r\nContent-range: bytes 1-4/21\r\n\r\n1234\r\n"
		"--123456\r\nContent-range: bytes 10-13/21\r\n\r\nabcd\r\n"
		"--123456--\r\n",
		"a range not asked for");
	refused("\r\n--123456\r\nContent-range: bytes 0-4/21\r\n\r\n01234\r\n"
		"--123456\r\nContent-range: bytes 10-13/21\r\n\r\nabcd\r\n"
		"--123456--\r\n",
		"a longer range");
	refused("\r\n--123456\r\nContent-range: bytes 0-3/22\r\n\r\n0123\r\n"
		"--123456\r\nContent-range: bytes 10-13/21\r\n\r\nabcd\r\n"
		"--123456--\r\n",
		"another file's size");
	refused("\r\n--123456\r\nContent-range: bytes 0-3/21\r\n\r\n0123\r\n"
		"--123456\r\nContent-range: bytes 0-3/21\r\n\r\n0123\r\n"
		"--123456--\r\n",
		"a range twice, one missing");
	refused("\r\n--123456\r\nContent-range: bytes 0-3/21\r\n\r\n0123\r\n"
		"--123456--\r\n",
		"a range missing");
	refused("\r\n--123456\r\nContent-range: bytes 0-3/21\r\n\r\n012345\r\n"
		"--123456\r\nContent-range: bytes 10-13/21\r\n\r\nabcd\r\n"
		"--123456--\r\n",
		"more bytes than the part's range");
	refused("\r\n--123456\r\nContent-type: text/plain\r\n\r\n0123\r\n"
		"--123456--\r\n",
		"a part without Content-Range");
	refused("\r\n--123456\r\nContent-range: bytes 0-3/21\r\n"
		"Content-range: bytes 0-3/21\r\n\r\n0123\r\n--123456--\r\n",
		"two Content-Ranges");
	refused("\r\n--654321\r\nContent-range: bytes 0-3/21\r\n\r\n0123\r\n"
		"--654321\r\nContent-range: bytes 10-13/21\r\n\r\nabcd\r\n"
		"--654321--\r\n",
		"another boundary");
	snprintf(buf, sizeof(buf), "%sX", xrd_body);
	refused(buf, "data after the closing delimiter");
	snprintf(buf, sizeof(buf), "%s\r\n--123456\r\n", xrd_body);
	refused(buf, "a part after the closing delimiter");
	refused("\r\n--123456--\r\n", "no part at all");
	refused("\r\n--123456\r\nContent-range: bytes 15--1/21\r\n\r\n"
		"--123456--\r\n",
		"XrdHttp 5.5's open-ended answer");
}

static void test_bounded(void)
{
	struct rfs_multipart m;
	struct two t;
	char junk[4096];
	int rc = 0;

	/* a header line without end, or endless header lines, is refused
	 * before it costs more than a line's buffer */
	two_init(&t);
	CHECK_INT(rfs_mp_init(&m, xrd_ct, t.segs, 2, 21), 0);
	memset(junk, 'x', sizeof(junk));
	CHECK_INT(rfs_mp_feed(&m, "\r\n--123456\r\nX-A: ", 17), 0);
	for (int i = 0; i < 4 && !rc; i++)
		rc = rfs_mp_feed(&m, junk, sizeof(junk));
	CHECK_INT(rc, -EBADMSG);
	CHECK_INT(rfs_mp_feed(&m, "\r\n", 2), -EBADMSG);
	rfs_mp_release(&m);

	CHECK_INT(rfs_mp_init(&m, xrd_ct, t.segs, 2, 21), 0);
	rc = rfs_mp_feed(&m, "\r\n--123456\r\n", 12);
	for (int i = 0; i < 100 && !rc; i++)
		rc = rfs_mp_feed(&m, "X-A: b\r\n", 8);
	CHECK_INT(rc, -EBADMSG);
	rfs_mp_release(&m);

	CHECK_INT(rfs_mp_init(&m, xrd_ct, t.segs, 2, 21), 0);
	for (int i = 0; i < 100 && !rc; i++)
		rc = rfs_mp_feed(&m, "preamble\r\n", 10);
	CHECK_INT(rc, -EBADMSG);
	rfs_mp_release(&m);
}

static void test_content_type(void)
{
	char b[RFS_MP_BOUNDARY_MAX + 1];

	CHECK_INT(rfs_mp_boundary(xrd_ct, b, sizeof(b)), 0);
	CHECK_STR(b, "123456");
	CHECK_INT(rfs_mp_boundary("multipart/byteranges; charset=x; "
				  "BOUNDARY=\"a b\"",
				  b, sizeof(b)),
		  -EPROTO); /* a space is no bchar of ours */
	CHECK_INT(rfs_mp_boundary("multipart/byteranges; x=y; boundary=ab.c", b,
				  sizeof(b)),
		  0);
	CHECK_STR(b, "ab.c");
	CHECK_INT(rfs_mp_boundary("application/octet-stream", b, sizeof(b)),
		  -EPROTO);
	CHECK_INT(rfs_mp_boundary("multipart/byteranges", b, sizeof(b)),
		  -EPROTO);
	CHECK_INT(rfs_mp_boundary("multipart/byteranges; boundary=", b,
				  sizeof(b)),
		  -EPROTO);
	CHECK_INT(rfs_mp_boundary("multipart/byteranges; boundary=\"ab", b,
				  sizeof(b)),
		  -EPROTO);
	CHECK_INT(rfs_mp_boundary("multipart/byterangesX; boundary=ab", b,
				  sizeof(b)),
		  -EPROTO);
	CHECK_INT(rfs_mp_boundary("multipart/byteranges; boundary="
				  "01234567890123456789012345678901234567890"
				  "123456789012345678901234567890",
				  b, sizeof(b)),
		  -EPROTO); /* 71 characters */
}

int main(void)
{
	test_real_servers();
	test_tolerated();
	test_refused();
	test_bounded();
	test_content_type();
	return unit_done("multipart");
}
