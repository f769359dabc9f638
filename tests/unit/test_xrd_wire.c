/*
 * Unit tests for transport/xrd_wire.c: requests byte for byte (the
 * handshake captured from xrootd 5.5.3's client exchange), answers as
 * 5.5.3 sent them, and every lie a server could tell in a vector read.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "transport/xrd_wire.h"
#include "unit.h"

static void test_hello(void)
{
	/* storage-and-tokens.md 1.1, flags secreqs|bifreqs as XrdCl sends */
	static const uint8_t want[44] = {
		0, 0, 0,    0,	  0, 0, 0,    0,    0,	  0,
		0, 0, 0,    0,	  0, 4, 0,    0,    7,	  0xdc,
		0, 0, 0x0b, 0xbe, 0, 0, 0x05, 0x11, 0x09, 0x03,
	};
	uint8_t out[64];

	CHECK_INT((int)rfs_xrd_req_hello(out, sizeof(out), 0, 0x09), 44);
	CHECK_MEM(out, 44, want, 44);
	CHECK_INT((int)rfs_xrd_req_hello(out, 43, 0, 0x09), -ENOBUFS);
	CHECK_INT((int)rfs_xrd_req_hello(out, 10, 0, 0x09), -ENOBUFS);
}

static void test_requests(void)
{
	static const uint8_t fh[4] = { 0, 0, 0, 7 };
	struct rfs_xrd_seg segs[2] = { { 100, 5 }, { 1ull << 33, 7 } };
	uint8_t out[512];
	ssize_t n;

	n = rfs_xrd_req_login(out, sizeof(out), 0x0102, 4242, "ruciofsuser",
			      NULL);
	CHECK_INT((int)n, 24);
	CHECK(out[0] == 1 && out[1] == 2 && out[2] == 0x0b && out[3] == 0xbf);
	CHECK_MEM(out + 4, 4, "\0\0\x10\x92", 4);
	CHECK_MEM(out + 8, 8, "ruciofsu", 8); /* 8 bytes at most */

	n = rfs_xrd_req_auth_unix(out, sizeof(out), 1, "xrootd", "daemon");
	CHECK_INT((int)n, 24 + 19);
	CHECK_MEM(out + 16, 4, "unix", 4);
	CHECK_MEM(out + 24, 19, "unix\0xrootd daemon\0", 19);

	n = rfs_xrd_req_auth_ztn(out, sizeof(out), 1, "abc", 3);
	CHECK_INT((int)n, 24 + 14);
	CHECK_MEM(out + 16, 4, "ztn\0", 4);
	CHECK_MEM(out + 20, 4, "\0\0\0\x0e", 4);
	CHECK_MEM(out + 24, 14,
		  "ztn\0\0T\0\0\0\x04"
		  "abc\0",
		  14);
	CHECK_INT((int)rfs_xrd_req_auth_ztn(out, sizeof(out), 1, "", 0),
		  -EINVAL);

	n = rfs_xrd_req_open(out, sizeof(out), 3, "/rucio/a/b");
	CHECK_INT((int)n, 34);
	CHECK_MEM(out + 2, 2, "\x0b\xc2", 2);
	CHECK_MEM(out + 6, 2, "\x04\x10", 2); /* read | retstat */
	CHECK_MEM(out + 24, 10, "/rucio/a/b", 10);
	CHECK_INT((int)rfs_xrd_req_open(out, 30, 3, "/rucio/a/b"), -ENOBUFS);

	n = rfs_xrd_req_read(out, sizeof(out), 3, fh, 0x123456789ull, 4096);
	CHECK_INT((int)n, 24);
	CHECK_MEM(out + 4, 16, "\0\0\0\x07\0\0\0\x01\x23\x45\x67\x89\0\0\x10\0",
		  16);

	n = rfs_xrd_req_readv(out, sizeof(out), 3, fh, segs, 2);
	CHECK_INT((int)n, 24 + 32);
	CHECK_MEM(out + 20, 4, "\0\0\0\x20", 4);
	CHECK_MEM(out + 24, 16, "\0\0\0\x07\0\0\0\x05\0\0\0\0\0\0\0\x64", 16);
	CHECK_MEM(out + 40, 16, "\0\0\0\x07\0\0\0\x07\0\0\0\x02\0\0\0\0", 16);
	CHECK_INT((int)rfs_xrd_req_readv(out, sizeof(out), 3, fh, segs, 0),
		  -EINVAL);
	segs[0].len = RFS_XRD_READV_MAX_SEG;
	CHECK_INT((int)rfs_xrd_req_readv(out, sizeof(out), 3, fh, segs, 2),
		  -EINVAL);

	n = rfs_xrd_req_cksum(out, sizeof(out), 3, "/a?x=1", "adler32");
	CHECK_INT((int)n, 24 + 23);
	CHECK_MEM(out + 4, 2, "\0\x03", 2);
	CHECK_MEM(out + 24, 23, "/a?x=1&cks.type=adler32", 23);

	n = rfs_xrd_req_close(out, sizeof(out), 9, fh);
	CHECK_INT((int)n, 24);
	CHECK_MEM(out, 8, "\0\x09\x0b\xbb\0\0\0\x07", 8);
}

static void test_setup_answers(void)
{
	uint8_t login[40] = { 0 }, sessid[16];
	struct rfs_xrd_hdr h;
	uint32_t pv, flags, kind;
	char sec[64], args[32];

	CHECK_INT(
		rfs_xrd_parse_hdr((const uint8_t *)"\0\0\0\0\0\0\0\x08", 8, &h),
		0);
	CHECK(h.sid == 0 && h.status == 0 && h.dlen == 8);
	CHECK_INT(rfs_xrd_parse_hdr((const uint8_t *)"\0\1\x0f\xa3\xff\0\0\0",
				    8, &h),
		  -EPROTO); /* negative dlen */
	CHECK_INT(rfs_xrd_parse_hdr((const uint8_t *)"\0\1", 2, &h), -EPROTO);

	CHECK_INT(rfs_xrd_parse_handshake(
			  (const uint8_t *)"\0\0\x05\x11\0\0\0\x01", 8, &pv,
			  &kind),
		  0);
	CHECK(pv == 0x511 && kind == 1);
	CHECK_INT(rfs_xrd_parse_protocol(
			  (const uint8_t *)"\0\0\x05\x11\xc4\x30\0\x01", 8, &pv,
			  &flags),
		  0);
	CHECK(flags & RFS_XRD_GOTO_TLS && flags & RFS_XRD_HAVE_TLS);
	CHECK_INT(rfs_xrd_parse_protocol((const uint8_t *)"\0\0\x05", 3, &pv,
					 &flags),
		  -EPROTO);

	memcpy(login + 16, "&P=ztn,0:4096:&P=unix", 21);
	CHECK_INT(rfs_xrd_parse_login(login, 37, sessid, sec, sizeof(sec)), 0);
	CHECK_STR(sec, "&P=ztn,0:4096:&P=unix");
	CHECK(rfs_xrd_sec_offers(sec, "ztn", args, sizeof(args)));
	CHECK_STR(args, "0:4096:");
	CHECK(rfs_xrd_sec_offers(sec, "unix", NULL, 0));
	CHECK(!rfs_xrd_sec_offers(sec, "gsi", NULL, 0));
	CHECK(!rfs_xrd_sec_offers("&P=unixx", "unix", NULL, 0));
	CHECK_INT(rfs_xrd_parse_login(login, 16, sessid, sec, sizeof(sec)), 0);
	CHECK_STR(sec, ""); /* no authentication asked */
	CHECK_INT(rfs_xrd_parse_login(login, 37, sessid, sec, 8), -EPROTO);
	CHECK_INT(rfs_xrd_parse_login(login, 15, sessid, sec, sizeof(sec)),
		  -EPROTO);
}

static void test_stat_open(void)
{
	static const char st5[] = "47049326618279424 21 16 1795506574 "
				  "1795506579 1795506582 0444 xrootd xrootd";
	uint8_t open[128] = { 0, 0, 0, 5, 0, 0, 0, 0, 'a', 'd', 'l', 'r' };
	struct rfs_xrd_stat st;
	uint8_t fh[4];
	bool has;

	CHECK_INT(rfs_xrd_parse_stat((const uint8_t *)st5, sizeof(st5), &st),
		  0);
	CHECK_U64(st.size, 21);
	CHECK_U64(st.id, 47049326618279424ull);
	CHECK_INT((int)st.flags, 16);
	CHECK_INT(rfs_xrd_parse_stat((const uint8_t *)"1 2 3 4", 7, &st), 0);
	CHECK_INT(rfs_xrd_parse_stat((const uint8_t *)"1 2 3", 5, &st),
		  -EPROTO);
	CHECK_INT(rfs_xrd_parse_stat((const uint8_t *)"1 -2 3 4", 8, &st),
		  -EPROTO);
	CHECK_INT(rfs_xrd_parse_stat((const uint8_t *)"1 2x 3 4", 8, &st),
		  -EPROTO);
	CHECK_INT(
		rfs_xrd_parse_stat(
			(const uint8_t *)"1 99999999999999999999 3 4", 26, &st),
		-EPROTO);

	CHECK_INT(rfs_xrd_parse_open(open, 4, fh, &st, &has), 0);
	CHECK(!has && fh[3] == 5);
	memcpy(open + 12, st5, sizeof(st5));
	CHECK_INT(rfs_xrd_parse_open(open, 12 + sizeof(st5), fh, &st, &has), 0);
	CHECK(has && st.size == 21);
	memcpy(open + 12, "x y", 3);
	CHECK_INT(rfs_xrd_parse_open(open, 15, fh, &st, &has), 0);
	CHECK(!has && fh[3] == 5); /* an unreadable stat is not an error */
	CHECK_INT(rfs_xrd_parse_open(open, 3, fh, &st, &has), -EPROTO);
	CHECK_INT(rfs_xrd_parse_open(open, 8, fh, &st, &has), -EPROTO);
}

static void test_control_answers(void)
{
	static const char nf[] = "\0\0\x0b\xc3Unable to locate /nope";
	static const uint8_t red[] = "\0\0\x2a\xb7"
				     "127.0.0.1?org.dcache.uuid="
				     "u1&x=2?tok";
	static const uint8_t url[] = "\xff\xff\xff\xff"
				     "roots://[::1]:2000//p/q?a=b";
	struct rfs_xrd_redirect r;
	char msg[64];
	int32_t num;
	uint32_t secs;

	CHECK_INT(rfs_xrd_parse_error((const uint8_t *)nf, sizeof(nf) - 1, &num,
				      msg, sizeof(msg)),
		  0);
	CHECK_INT(num, 3011);
	CHECK_STR(msg, "Unable to locate /nope");
	CHECK_INT(rfs_xrd_parse_error((const uint8_t *)nf, sizeof(nf) - 1, &num,
				      msg, 7),
		  0);
	CHECK_STR(msg, "Unable"); /* cut, not refused */
	CHECK_INT(rfs_xrd_parse_error((const uint8_t *)nf, 3, &num, msg, 7),
		  -EPROTO);

	CHECK_INT(rfs_xrd_parse_redirect(red, sizeof(red) - 1, &r), 0);
	CHECK_INT(r.port, 10935);
	CHECK_STR(r.host, "127.0.0.1");
	CHECK_STR(r.opaque, "org.dcache.uuid=u1&x=2");
	CHECK_STR(r.token, "tok");
	CHECK_INT(rfs_xrd_parse_redirect(red, 13, &r), 0); /* no '?' */
	CHECK_STR(r.opaque, "");
	CHECK_INT(rfs_xrd_parse_redirect(url, sizeof(url) - 1, &r), 0);
	CHECK_STR(r.host, "::1");
	CHECK_INT(r.port, 2000);
	CHECK_STR(r.opaque, "a=b");
	CHECK_INT(rfs_xrd_parse_redirect((const uint8_t *)"\0\0\0\0h", 5, &r),
		  -EPROTO); /* port 0 */
	CHECK_INT(rfs_xrd_parse_redirect((const uint8_t *)"\0\0\0\x01", 4, &r),
		  -EPROTO);
	CHECK_INT(
		rfs_xrd_parse_redirect((const uint8_t *)"\0\0\0\x01h/x", 7, &r),
		-EPROTO);
	CHECK_INT(rfs_xrd_parse_redirect(
			  (const uint8_t *)"\xff\xff\xff\xffroot://h:99999/",
			  19, &r),
		  -EPROTO);

	CHECK_INT(
		rfs_xrd_parse_wait((const uint8_t *)"\0\0\0\x0await", 8, &secs),
		0);
	CHECK_INT((int)secs, 10);
	CHECK_INT(rfs_xrd_parse_wait((const uint8_t *)"\xff\xff\xff\xff", 4,
				     &secs),
		  0);
	CHECK_INT((int)secs, 0);
	CHECK_INT(rfs_xrd_parse_wait((const uint8_t *)"\0\0", 2, &secs),
		  -EPROTO);
}

static void test_attn_cksum(void)
{
	/* asynresp: action, reserved, then sid 7 ok with a 4-byte body */
	static const uint8_t a[] = { 0, 0, 0x13, 0x90, 0, 0, 0, 0, 0, 7,
				     0, 0, 0,	 0,    0, 4, 1, 2, 3, 4 };
	struct rfs_xrd_hdr in;
	const uint8_t *body;
	int32_t act;
	char type[16], hex[16];

	CHECK_INT(rfs_xrd_parse_attn(a, sizeof(a), &act, &in, &body), 0);
	CHECK(act == RFS_XRD_ASYNRESP && in.sid == 7 && in.dlen == 4);
	CHECK(body == a + 16);
	CHECK_INT(rfs_xrd_parse_attn(a, sizeof(a) - 1, &act, &in, &body),
		  -EPROTO);
	CHECK_INT(rfs_xrd_parse_attn(a, 10, &act, &in, &body), -EPROTO);

	CHECK_INT(rfs_xrd_parse_cksum((const uint8_t *)"adler32 B57952c5", 17,
				      type, sizeof(type), hex, sizeof(hex)),
		  0);
	CHECK_STR(type, "adler32");
	CHECK_STR(hex, "b57952c5");
	CHECK_INT(rfs_xrd_parse_cksum((const uint8_t *)"adler32 xyz", 11, type,
				      sizeof(type), hex, sizeof(hex)),
		  -EPROTO);
	CHECK_INT(rfs_xrd_parse_cksum((const uint8_t *)"adler32", 7, type,
				      sizeof(type), hex, sizeof(hex)),
		  -EPROTO);
}

/* The answer to @segs as a server sends it, into @out; its length. */
static size_t rv_answer(uint8_t *out, const uint8_t fh[4],
			const struct rfs_xrd_seg *segs, size_t n)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		uint8_t h[16];

		memcpy(h, fh, 4);
		h[4] = h[5] = h[6] = 0;
		h[7] = (uint8_t)segs[i].len;
		memset(h + 8, 0, 8);
		h[14] = (uint8_t)(segs[i].off >> 8);
		h[15] = (uint8_t)segs[i].off;
		memcpy(out + len, h, 16);
		len += 16;
		for (uint32_t k = 0; k < segs[i].len; k++)
			out[len++] = (uint8_t)(segs[i].off + k);
	}
	return len;
}

static void test_readv_stream(void)
{
	static const uint8_t fh[4] = { 1, 2, 3, 4 };
	const struct rfs_xrd_seg segs[3] = { { 10, 5 }, { 300, 0 }, { 40, 9 } };
	uint8_t wire[256], b0[5], b1[1], b2[9];
	uint8_t *const bufs[3] = { b0, b1, b2 };
	size_t len = rv_answer(wire, fh, segs, 3);
	struct rfs_xrd_rv rv;

	/* split at every possible place: the same bytes land */
	for (size_t cut = 0; cut <= len; cut++) {
		memset(b0, 0, 5);
		memset(b2, 0, 9);
		rfs_xrd_rv_init(&rv, fh, segs, 3);
		CHECK_INT(rfs_xrd_rv_feed(&rv, wire, cut, bufs), 0);
		CHECK_INT(rfs_xrd_rv_feed(&rv, wire + cut, len - cut, bufs), 0);
		CHECK(rfs_xrd_rv_done(&rv));
		CHECK(b0[0] == 10 && b0[4] == 14 && b2[0] == 40 && b2[8] == 48);
	}
	/* one byte more than asked for */
	rfs_xrd_rv_init(&rv, fh, segs, 3);
	wire[len] = 0;
	CHECK_INT(rfs_xrd_rv_feed(&rv, wire, len + 1, bufs), -EPROTO);
	/* short: not done */
	rfs_xrd_rv_init(&rv, fh, segs, 3);
	CHECK_INT(rfs_xrd_rv_feed(&rv, wire, len - 1, bufs), 0);
	CHECK(!rfs_xrd_rv_done(&rv));
	/* a lying handle, offset, length; segments out of order */
	for (int lie = 0; lie < 4; lie++) {
		uint8_t bad[256];

		memcpy(bad, wire, len);
		if (lie == 0)
			bad[0] ^= 1; /* handle */
		else if (lie == 1)
			bad[15] ^= 1; /* offset */
		else if (lie == 2)
			bad[7] = 200; /* a longer segment */
		else
			rv_answer(bad, fh,
				  (const struct rfs_xrd_seg[]){ segs[2],
								segs[0] },
				  2);
		rfs_xrd_rv_init(&rv, fh, segs, 3);
		CHECK_INT(rfs_xrd_rv_feed(&rv, bad, len, bufs), -EPROTO);
	}
}

int main(void)
{
	test_hello();
	test_requests();
	test_setup_answers();
	test_stat_open();
	test_control_answers();
	test_attn_cksum();
	test_readv_stream();
	return unit_done("xrd_wire");
}
