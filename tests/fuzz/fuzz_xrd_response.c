/*
 * Whatever an xrootd server (or something posing as one) sends: every
 * answer parser, and a vector-read answer streamed in pieces against a
 * request made of the input's first bytes. No parse may read past its
 * input, no segment byte may land outside its buffer, and an accepted
 * vector answer is exactly the bytes asked for.
 */
#include "config.h"

#include <errno.h>

#include "transport/xrd_wire.h"
#include "fuzz.h"

static void parse_all(const uint8_t *p, size_t n)
{
	struct rfs_xrd_hdr h, in;
	struct rfs_xrd_stat st;
	struct rfs_xrd_redirect r;
	uint8_t fh[4], sessid[16];
	const uint8_t *body;
	char sec[64], msg[32], type[16], hex[40], args[16];
	uint32_t u, v;
	int32_t num;
	bool has;

	rfs_xrd_parse_hdr(p, n, &h);
	rfs_xrd_parse_handshake(p, n, &u, &v);
	rfs_xrd_parse_protocol(p, n, &u, &v);
	if (!rfs_xrd_parse_login(p, n, sessid, sec, sizeof(sec))) {
		FUZZ_CHECK(strlen(sec) < sizeof(sec));
		if (rfs_xrd_sec_offers(sec, "ztn", args, sizeof(args)))
			FUZZ_CHECK(strlen(args) < sizeof(args));
	}
	rfs_xrd_parse_stat(p, n, &st);
	if (!rfs_xrd_parse_open(p, n, fh, &st, &has))
		FUZZ_CHECK(!has || st.size <= INT64_MAX);
	if (!rfs_xrd_parse_error(p, n, &num, msg, sizeof(msg)))
		FUZZ_CHECK(strlen(msg) < sizeof(msg));
	if (!rfs_xrd_parse_redirect(p, n, &r)) {
		FUZZ_CHECK(r.port > 0 && r.port <= 65535);
		FUZZ_CHECK(r.host[0] && !strchr(r.host, '/'));
	}
	if (!rfs_xrd_parse_wait(p, n, &u))
		FUZZ_CHECK(u <= 3600);
	if (!rfs_xrd_parse_attn(p, n, &num, &in, &body) && body)
		FUZZ_CHECK(body + in.dlen == p + n);
	if (!rfs_xrd_parse_cksum(p, n, type, sizeof(type), hex, sizeof(hex)))
		FUZZ_CHECK(strspn(hex, "0123456789abcdef") == strlen(hex));
}

/* The first bytes pick up to 4 segments; the rest is the answer. */
static void readv(const uint8_t *p, size_t n)
{
	static const uint8_t fh[4] = { 0, 0, 0, 1 };
	struct rfs_xrd_seg segs[4];
	uint8_t b[4][32], *bufs[4] = { b[0], b[1], b[2], b[3] };
	struct rfs_xrd_rv rv;
	size_t k, fed = 0, total = 0;
	int rc = 0;

	if (n < 1)
		return;
	k = 1 + p[0] % 4;
	if (n < 1 + 2 * k)
		return;
	for (size_t i = 0; i < k; i++) {
		segs[i].off = p[1 + 2 * i];
		segs[i].len = p[2 + 2 * i] % 33;
		total += 16 + segs[i].len;
	}
	p += 1 + 2 * k;
	n -= 1 + 2 * k;
	rfs_xrd_rv_init(&rv, fh, segs, k);
	/* in pieces of 1..7 bytes, as a socket might hand them over */
	while (fed < n && !rc) {
		size_t piece = 1 + (fed % 7);

		if (piece > n - fed)
			piece = n - fed;
		rc = rfs_xrd_rv_feed(&rv, p + fed, piece, bufs);
		fed += piece;
	}
	if (!rc && rfs_xrd_rv_done(&rv))
		FUZZ_CHECK(fed == total);
	if (fed > total)
		FUZZ_CHECK(rc == -EPROTO);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);

	if (!copy)
		abort();
	memcpy(copy, data, size); /* exactly @size bytes: ASan sees past it */
	parse_all(copy, size);
	readv(copy, size);
	free(copy);
	return 0;
}
