/*
 * XRootD frames, written from the protocol's definition (XProtocol.hh,
 * "The XRootD Protocol" v5.1) and frames captured from xrootd 5.5.3.
 * Nothing here trusts a length it was sent: every field is checked
 * against the bytes at hand.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "transport/xrd_wire.h"
#include "util/banned.h"

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

/*
 * A request header with a zero body at @out (which holds @cap bytes):
 * room for @dlen payload bytes is checked; the caller fills the body.
 */
static ssize_t req_start(uint8_t *out, size_t cap, uint16_t sid, uint16_t code,
			 size_t dlen)
{
	if (dlen > INT32_MAX || cap < RFS_XRD_REQ_HDR ||
	    cap - RFS_XRD_REQ_HDR < dlen)
		return -ENOBUFS;
	memset(out, 0, RFS_XRD_REQ_HDR);
	put16(out, sid);
	put16(out + 2, code);
	put32(out + 20, (uint32_t)dlen);
	return (ssize_t)(RFS_XRD_REQ_HDR + dlen);
}

/* A request whose payload is @a then @b (either may be empty). */
static ssize_t req_with(uint8_t *out, size_t cap, uint16_t sid, uint16_t code,
			const void *a, size_t alen, const void *b, size_t blen)
{
	ssize_t n;

	if (alen > SIZE_MAX / 2 || blen > SIZE_MAX / 2)
		return -ENOBUFS;
	n = req_start(out, cap, sid, code, alen + blen);
	if (n < 0)
		return n;
	if (alen)
		memcpy(out + RFS_XRD_REQ_HDR, a, alen);
	if (blen)
		memcpy(out + RFS_XRD_REQ_HDR + alen, b, blen);
	return n;
}

ssize_t rfs_xrd_req_hello(uint8_t *out, size_t cap, uint16_t sid,
			  uint8_t tls_flags)
{
	ssize_t n;

	if (cap < RFS_XRD_HANDSHAKE)
		return -ENOBUFS;
	memset(out, 0, RFS_XRD_HANDSHAKE);
	put32(out + 12, 4);
	put32(out + 16, 2012);
	n = req_start(out + RFS_XRD_HANDSHAKE, cap - RFS_XRD_HANDSHAKE, sid,
		      RFS_XRD_PROTOCOL, 0);
	if (n < 0)
		return n;
	out += RFS_XRD_HANDSHAKE;
	put32(out + 4, RFS_XRD_PROTOCOL_VERSION);
	out[8] = tls_flags;
	out[9] = 3; /* kXR_ExpLogin: the reply says what login needs */
	return n + RFS_XRD_HANDSHAKE;
}

ssize_t rfs_xrd_req_login(uint8_t *out, size_t cap, uint16_t sid, int32_t pid,
			  const char *user, const char *cgi)
{
	size_t ulen = strnlen(user, 8);
	ssize_t n = req_with(out, cap, sid, RFS_XRD_LOGIN, cgi,
			     cgi ? strlen(cgi) : 0, NULL, 0);

	if (n < 0)
		return n;
	put32(out + 4, (uint32_t)pid);
	memcpy(out + 8, user, ulen);
	/* ability: full URLs in redirects, read-only redirects */
	out[17] = 0x01 | 0x04;
	out[18] = 0x80 | 5; /* async answers, protocol level 5 */
	return n;
}

static ssize_t req_auth(uint8_t *out, size_t cap, uint16_t sid,
			const char *type, const void *cred, size_t clen)
{
	ssize_t n = req_with(out, cap, sid, RFS_XRD_AUTH, cred, clen, NULL, 0);

	if (n < 0)
		return n;
	memcpy(out + 16, type, strnlen(type, 4));
	return n;
}

ssize_t rfs_xrd_req_auth_unix(uint8_t *out, size_t cap, uint16_t sid,
			      const char *user, const char *group)
{
	size_t ul = strlen(user), gl = strlen(group), len;
	uint8_t cred[600];

	len = 5 + ul + 1 + gl + 1;
	if (ul > 256 || gl > 256)
		return -ENOBUFS;
	memcpy(cred, "unix", 5);
	memcpy(cred + 5, user, ul);
	cred[5 + ul] = ' ';
	memcpy(cred + 6 + ul, group, gl);
	cred[len - 1] = '\0';
	return req_auth(out, cap, sid, "unix", cred, len);
}

ssize_t rfs_xrd_req_auth_ztn(uint8_t *out, size_t cap, uint16_t sid,
			     const char *token, size_t toklen)
{
	uint8_t head[10] = { 'z', 't', 'n', 0, 0, 'T', 0, 0 };
	ssize_t n;

	if (toklen == 0 || toklen >= UINT16_MAX)
		return -EINVAL;
	put16(head + 8, (uint16_t)(toklen + 1));
	n = req_start(out, cap, sid, RFS_XRD_AUTH, sizeof(head) + toklen + 1);
	if (n < 0)
		return n;
	memcpy(out + 16, "ztn", 3);
	memcpy(out + RFS_XRD_REQ_HDR, head, sizeof(head));
	memcpy(out + RFS_XRD_REQ_HDR + sizeof(head), token, toklen);
	out[RFS_XRD_REQ_HDR + sizeof(head) + toklen] = '\0';
	return n;
}

ssize_t rfs_xrd_req_stat(uint8_t *out, size_t cap, uint16_t sid,
			 const char *path)
{
	return req_with(out, cap, sid, RFS_XRD_STAT, path, strlen(path), NULL,
			0);
}

ssize_t rfs_xrd_req_open(uint8_t *out, size_t cap, uint16_t sid,
			 const char *path)
{
	ssize_t n = req_with(out, cap, sid, RFS_XRD_OPEN, path, strlen(path),
			     NULL, 0);

	if (n < 0)
		return n;
	put16(out + 6, RFS_XRD_OPEN_READ | RFS_XRD_RETSTAT);
	return n;
}

ssize_t rfs_xrd_req_read(uint8_t *out, size_t cap, uint16_t sid,
			 const uint8_t fh[4], uint64_t off, uint32_t len)
{
	ssize_t n;

	if (len > INT32_MAX || off > INT64_MAX)
		return -EINVAL;
	n = req_start(out, cap, sid, RFS_XRD_READ, 0);
	if (n < 0)
		return n;
	memcpy(out + 4, fh, 4);
	put64(out + 8, off);
	put32(out + 16, len);
	return n;
}

ssize_t rfs_xrd_req_readv(uint8_t *out, size_t cap, uint16_t sid,
			  const uint8_t fh[4], const struct rfs_xrd_seg *segs,
			  size_t n)
{
	ssize_t len;

	if (n == 0 || n > RFS_XRD_READV_MAX_SEGS)
		return -EINVAL;
	len = req_start(out, cap, sid, RFS_XRD_READV,
			n * RFS_XRD_READV_SEG_HDR);
	if (len < 0)
		return len;
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = out + RFS_XRD_REQ_HDR + i * RFS_XRD_READV_SEG_HDR;

		if (segs[i].len >= RFS_XRD_READV_MAX_SEG ||
		    segs[i].off > INT64_MAX)
			return -EINVAL;
		memcpy(e, fh, 4);
		put32(e + 4, segs[i].len);
		put64(e + 8, segs[i].off);
	}
	return len;
}

ssize_t rfs_xrd_req_close(uint8_t *out, size_t cap, uint16_t sid,
			  const uint8_t fh[4])
{
	ssize_t n = req_start(out, cap, sid, RFS_XRD_CLOSE, 0);

	if (n >= 0)
		memcpy(out + 4, fh, 4);
	return n;
}

ssize_t rfs_xrd_req_cksum(uint8_t *out, size_t cap, uint16_t sid,
			  const char *path, const char *type)
{
	char cgi[64];
	size_t tl = strlen(type);
	const char *sep = strchr(path, '?') ? "&" : "?";
	ssize_t n;

	if (tl > 32)
		return -EINVAL;
	memcpy(cgi, sep, 1);
	memcpy(cgi + 1, "cks.type=", 9);
	memcpy(cgi + 10, type, tl);
	n = req_with(out, cap, sid, RFS_XRD_QUERY, path, strlen(path), cgi,
		     10 + tl);
	if (n >= 0)
		put16(out + 4, RFS_XRD_QCKSUM);
	return n;
}

int rfs_xrd_parse_hdr(const uint8_t *p, size_t n, struct rfs_xrd_hdr *h)
{
	if (n < RFS_XRD_RSP_HDR)
		return -EPROTO;
	h->sid = get16(p);
	h->status = get16(p + 2);
	h->dlen = get32(p + 4);
	return h->dlen > INT32_MAX ? -EPROTO : 0;
}

int rfs_xrd_parse_handshake(const uint8_t *p, size_t n, uint32_t *pv,
			    uint32_t *kind)
{
	if (n != 8)
		return -EPROTO;
	*pv = get32(p);
	*kind = get32(p + 4);
	return 0;
}

int rfs_xrd_parse_protocol(const uint8_t *p, size_t n, uint32_t *pv,
			   uint32_t *flags)
{
	if (n < 8)
		return -EPROTO;
	*pv = get32(p);
	*flags = get32(p + 4);
	return 0;
}

/* @n bytes of @p as a C string into @out: -EPROTO if it does not fit. */
static int take_text(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	const uint8_t *nul = memchr(p, '\0', n);

	if (nul)
		n = (size_t)(nul - p);
	if (n >= outlen)
		return -EPROTO;
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

int rfs_xrd_parse_login(const uint8_t *p, size_t n, uint8_t sessid[16],
			char *sec, size_t seclen)
{
	if (n < 16 || seclen == 0)
		return -EPROTO;
	memcpy(sessid, p, 16);
	return take_text(p + 16, n - 16, sec, seclen);
}

bool rfs_xrd_sec_offers(const char *sec, const char *proto, char *args,
			size_t argslen)
{
	size_t pl = strlen(proto);

	for (const char *s = sec; (s = strstr(s, "&P=")); s += 3) {
		const char *name = s + 3, *end;
		size_t al;

		if (strncmp(name, proto, pl) ||
		    (name[pl] && name[pl] != ',' && name[pl] != '&'))
			continue;
		end = name + pl;
		if (*end == ',')
			end++;
		al = strcspn(end, "&");
		if (args && argslen) {
			if (al >= argslen)
				al = argslen - 1;
			memcpy(args, end, al);
			args[al] = '\0';
		}
		return true;
	}
	return false;
}

/* One decimal field of @s (at most @n bytes) into @v; *@used consumed. */
static int dec_field(const char *s, size_t n, uint64_t *v, bool neg_ok,
		     bool *neg, size_t *used)
{
	size_t i = 0;
	uint64_t x = 0;

	while (i < n && s[i] == ' ')
		i++;
	*neg = false;
	if (neg_ok && i < n && s[i] == '-') {
		*neg = true;
		i++;
	}
	if (i >= n || s[i] < '0' || s[i] > '9')
		return -EPROTO;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (x > (UINT64_MAX - 9) / 10)
			return -EPROTO;
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (i < n && s[i] != ' ' && s[i] != '\0')
		return -EPROTO;
	*v = x;
	*used = i;
	return 0;
}

int rfs_xrd_parse_stat(const uint8_t *p, size_t n, struct rfs_xrd_stat *st)
{
	const char *s = (const char *)p;
	const uint8_t *nul = memchr(p, '\0', n);
	uint64_t v[4];
	size_t used;
	bool neg = false;

	if (nul)
		n = (size_t)(nul - p);
	for (int i = 0; i < 4; i++) {
		int rc = dec_field(s, n, &v[i], i == 3, &neg, &used);

		if (rc)
			return rc;
		s += used;
		n -= used;
	}
	if (v[1] > INT64_MAX || v[2] > UINT32_MAX || v[3] > INT64_MAX)
		return -EPROTO;
	st->id = v[0];
	st->size = v[1];
	st->flags = (uint32_t)v[2];
	st->mtime = neg ? -(int64_t)v[3] : (int64_t)v[3];
	return 0;
}

int rfs_xrd_parse_open(const uint8_t *p, size_t n, uint8_t fh[4],
		       struct rfs_xrd_stat *st, bool *has_stat)
{
	*has_stat = false;
	if (n < 4)
		return -EPROTO;
	memcpy(fh, p, 4);
	/* with retstat: cpsize i32, cptype[4], then the stat string */
	if (n <= 12)
		return n == 4 || n == 12 ? 0 : -EPROTO;
	/* the stat is a courtesy: one we cannot read leaves the handle */
	*has_stat = rfs_xrd_parse_stat(p + 12, n - 12, st) == 0;
	return 0;
}

int rfs_xrd_parse_error(const uint8_t *p, size_t n, int32_t *errnum, char *msg,
			size_t msglen)
{
	if (n < 4 || msglen == 0)
		return -EPROTO;
	*errnum = (int32_t)get32(p);
	p += 4;
	n -= 4;
	if (n >= msglen)
		n = msglen - 1; /* a long message is cut, not refused */
	return take_text(p, n, msg, msglen);
}

/* "[v6]" or "name": the host of a redirect without brackets. */
static int take_host(const char *h, size_t n, char *out, size_t outlen)
{
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n == 0 || n >= outlen || memchr(h, '/', n) || memchr(h, '@', n))
		return -EPROTO;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)h[i] <= ' ' || (unsigned char)h[i] >= 0x7f)
			return -EPROTO;
	memcpy(out, h, n);
	out[n] = '\0';
	return 0;
}

/* "[v6]:port", "host:port" or "host" into r->host and r->port. */
static int take_authority(const char *a, size_t n, struct rfs_xrd_redirect *r)
{
	const char *colon = NULL, *end = a + n;
	long port = 0;

	if (n && a[0] == '[') {
		const char *rb = memchr(a, ']', n);

		if (!rb)
			return -EPROTO;
		colon = rb + 1 < end ? rb + 1 : NULL;
		if (colon && *colon != ':')
			return -EPROTO;
	} else {
		colon = memchr(a, ':', n);
	}
	if (take_host(a, colon ? (size_t)(colon - a) : n, r->host,
		      sizeof(r->host)))
		return -EPROTO;
	if (!colon)
		port = 1094;
	for (const char *d = colon ? colon + 1 : end; d < end; d++) {
		if (*d < '0' || *d > '9' || port > 65535)
			return -EPROTO;
		port = port * 10 + (*d - '0');
	}
	if (port <= 0 || port > 65535)
		return -EPROTO;
	r->port = (int32_t)port;
	return 0;
}

/* A URL redirect "root[s]://host[:port]/path?cgi": host, port, cgi. */
static int redirect_url(const char *s, size_t n, struct rfs_xrd_redirect *r)
{
	const char *a = memchr(s, ':', n), *end = s + n, *hp, *q;

	if (!a || end - a < 3 || a[1] != '/' || a[2] != '/')
		return -EPROTO;
	hp = a + 3;
	for (q = hp; q < end && *q != '/' && *q != '?';)
		q++;
	if (take_authority(hp, (size_t)(q - hp), r))
		return -EPROTO;
	q = memchr(q, '?', (size_t)(end - q));
	if (q && take_text((const uint8_t *)q + 1, (size_t)(end - q - 1),
			   r->opaque, sizeof(r->opaque)))
		return -EPROTO;
	return 0;
}

int rfs_xrd_parse_redirect(const uint8_t *p, size_t n,
			   struct rfs_xrd_redirect *r)
{
	const char *s = (const char *)p + 4, *q1, *q2;
	size_t len;
	int32_t port;

	memset(r, 0, sizeof(*r));
	if (n < 5)
		return -EPROTO;
	port = (int32_t)get32(p);
	len = n - 4;
	if (memchr(s, '\0', len))
		len = strnlen(s, len);
	if (port < 0)
		return redirect_url(s, len, r);
	if (port == 0 || port > 65535)
		return -EPROTO;
	r->port = port;
	q1 = memchr(s, '?', len);
	if (take_host(s, q1 ? (size_t)(q1 - s) : len, r->host, sizeof(r->host)))
		return -EPROTO;
	if (!q1)
		return 0;
	q1++;
	q2 = memchr(q1, '?', len - (size_t)(q1 - s));
	if (take_text((const uint8_t *)q1,
		      q2 ? (size_t)(q2 - q1) : len - (size_t)(q1 - s),
		      r->opaque, sizeof(r->opaque)))
		return -EPROTO;
	if (q2 && take_text((const uint8_t *)q2 + 1, len - (size_t)(q2 + 1 - s),
			    r->token, sizeof(r->token)))
		return -EPROTO;
	return 0;
}

int rfs_xrd_parse_wait(const uint8_t *p, size_t n, uint32_t *secs)
{
	int32_t s;

	if (n < 4)
		return -EPROTO;
	s = (int32_t)get32(p);
	*secs = s < 0 ? 0 : s > 3600 ? 3600 : (uint32_t)s;
	return 0;
}

int rfs_xrd_parse_attn(const uint8_t *p, size_t n, int32_t *action,
		       struct rfs_xrd_hdr *inner, const uint8_t **body)
{
	if (n < 4)
		return -EPROTO;
	*action = (int32_t)get32(p);
	*body = NULL;
	if (*action != RFS_XRD_ASYNRESP)
		return 0;
	if (n < 8 + RFS_XRD_RSP_HDR || rfs_xrd_parse_hdr(p + 8, n - 8, inner) ||
	    inner->dlen != n - 8 - RFS_XRD_RSP_HDR)
		return -EPROTO;
	*body = p + 8 + RFS_XRD_RSP_HDR;
	return 0;
}

int rfs_xrd_parse_cksum(const uint8_t *p, size_t n, char *type, size_t typelen,
			char *hex, size_t hexlen)
{
	char text[160], *sp, *h;
	size_t tl, hl;

	if (take_text(p, n < sizeof(text) ? n : sizeof(text), text,
		      sizeof(text)))
		return -EPROTO;
	sp = strchr(text, ' ');
	if (!sp)
		return -EPROTO;
	tl = (size_t)(sp - text);
	h = sp + 1;
	hl = strcspn(h, " \n");
	if (tl == 0 || tl >= typelen || hl == 0 || hl >= hexlen)
		return -EPROTO;
	for (size_t i = 0; i < hl; i++) {
		char c = h[i];

		if (c >= 'A' && c <= 'F')
			c = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EPROTO;
		hex[i] = c;
	}
	hex[hl] = '\0';
	memcpy(type, text, tl);
	type[tl] = '\0';
	return 0;
}

void rfs_xrd_rv_init(struct rfs_xrd_rv *rv, const uint8_t fh[4],
		     const struct rfs_xrd_seg *segs, size_t n)
{
	memset(rv, 0, sizeof(*rv));
	memcpy(rv->fh, fh, 4);
	rv->segs = segs;
	rv->n = n;
}

bool rfs_xrd_rv_done(const struct rfs_xrd_rv *rv)
{
	return rv->cur == rv->n;
}

size_t rfs_xrd_rv_next(struct rfs_xrd_rv *rv, ssize_t *seg, uint32_t *at,
		       uint8_t **where)
{
	if (rfs_xrd_rv_done(rv))
		return 0;
	if (!rv->in_data) {
		*seg = -1;
		*at = rv->pos;
		*where = rv->hdr + rv->pos;
		return RFS_XRD_READV_SEG_HDR - rv->pos;
	}
	*seg = (ssize_t)rv->cur;
	*at = rv->pos;
	*where = NULL;
	return rv->segs[rv->cur].len - rv->pos;
}

/* The segment's header is in: it must be exactly the one asked for. */
static int rv_check_hdr(struct rfs_xrd_rv *rv)
{
	const struct rfs_xrd_seg *s = &rv->segs[rv->cur];

	if (memcmp(rv->hdr, rv->fh, 4) || get32(rv->hdr + 4) != s->len ||
	    get64(rv->hdr + 8) != s->off)
		return -EPROTO;
	rv->in_data = true;
	rv->pos = 0;
	return 0;
}

/* Past empty segments' data, and past finished ones. */
static void rv_settle(struct rfs_xrd_rv *rv)
{
	while (rv->cur < rv->n && rv->in_data &&
	       rv->pos == rv->segs[rv->cur].len) {
		rv->cur++;
		rv->in_data = false;
		rv->pos = 0;
	}
}

int rfs_xrd_rv_took(struct rfs_xrd_rv *rv, size_t n)
{
	size_t room;

	if (rfs_xrd_rv_done(rv))
		return n ? -EPROTO : 0;
	room = rv->in_data ? rv->segs[rv->cur].len - rv->pos
			   : RFS_XRD_READV_SEG_HDR - rv->pos;
	if (n > room)
		return -EPROTO;
	rv->pos += (uint32_t)n;
	if (!rv->in_data && rv->pos == RFS_XRD_READV_SEG_HDR) {
		int rc = rv_check_hdr(rv);

		if (rc)
			return rc;
	}
	rv_settle(rv);
	return 0;
}

int rfs_xrd_rv_feed(struct rfs_xrd_rv *rv, const uint8_t *p, size_t n,
		    uint8_t *const *bufs)
{
	while (n) {
		ssize_t seg;
		uint32_t at;
		uint8_t *where;
		size_t k = rfs_xrd_rv_next(rv, &seg, &at, &where);
		int rc;

		if (k == 0)
			return -EPROTO; /* more than was asked for */
		if (k > n)
			k = n;
		if (seg >= 0)
			where = bufs[seg] + at;
		memcpy(where, p, k);
		rc = rfs_xrd_rv_took(rv, k);
		if (rc)
			return rc;
		p += k;
		n -= k;
	}
	return 0;
}
