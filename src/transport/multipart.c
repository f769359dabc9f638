/*
 * multipart/byteranges, incrementally: the body comes in pieces of any
 * size (curl's write callback), so the parser is a small state machine
 * that keeps one bounded line at a time and copies part bodies straight
 * into the segments' buffers.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "transport/multipart.h"
#include "util/http.h"
#include "util/banned.h"

enum {
	ST_PRE,	  /* before the first delimiter */
	ST_HDR,	  /* a part's header lines */
	ST_BODY,  /* a part's bytes */
	ST_AFTER, /* the line break that ends a part's bytes */
	ST_DELIM, /* the delimiter after a part */
	ST_END,	  /* after the closing delimiter */
	ST_ERR,
};

/* Lines before the first delimiter, header lines per part, and bytes
 * after the closing delimiter that are tolerated. */
#define PRE_LINES 16
#define HDR_LINES 16
#define TRAIL_MAX 64

static bool is_token_char(char c)
{
	return c > ' ' && c < 127 && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* RFC 2046 bchars, less space: what a boundary may hold here. */
static bool is_bchar(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || strchr("'()+_,-./:=?", c);
}

/* The value of parameter "boundary" at @p (after its '='). */
static int take_boundary(const char *p, char *out, size_t outlen)
{
	bool quoted = *p == '"';
	size_t n = 0;

	p += quoted;
	while (*p && (quoted ? *p != '"' : is_token_char(*p))) {
		if (!is_bchar(*p) || n + 1 >= outlen ||
		    n >= RFS_MP_BOUNDARY_MAX)
			return -EPROTO;
		out[n++] = *p++;
	}
	if (quoted && *p++ != '"')
		return -EPROTO;
	while (*p == ' ' || *p == '\t')
		p++;
	if (n == 0 || (*p && *p != ';'))
		return -EPROTO;
	out[n] = '\0';
	return 0;
}

int rfs_mp_boundary(const char *ct, char *out, size_t outlen)
{
	static const char type[] = "multipart/byteranges";
	const char *p = ct;

	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, type, sizeof(type) - 1))
		return -EPROTO;
	p += sizeof(type) - 1;
	while (*p) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ';')
			return -EPROTO;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!strncasecmp(p, "boundary=", 9))
			return take_boundary(p + 9, out, outlen);
		while (*p && *p != ';') /* another parameter */
			p++;
	}
	return -EPROTO;
}

int rfs_mp_init(struct rfs_multipart *m, const char *content_type,
		const struct rfs_tseg *segs, size_t n, uint64_t file_size)
{
	int rc;

	memset(m, 0, sizeof(*m));
	rc = rfs_mp_boundary(content_type, m->boundary, sizeof(m->boundary));
	if (rc)
		return rc;
	m->blen = strlen(m->boundary);
	m->segs = segs;
	m->n = n;
	m->file_size = file_size;
	m->filled = calloc(n ? n : 1, 1);
	return m->filled ? 0 : -ENOMEM;
}

void rfs_mp_release(struct rfs_multipart *m)
{
	free(m->filled);
	m->filled = NULL;
}

/* "--boundary" (1) or "--boundary--" (2), padding allowed; else 0. */
static int delimiter(const struct rfs_multipart *m, const char *l, size_t n)
{
	size_t end;
	int kind = 1;

	if (n < m->blen + 2 || l[0] != '-' || l[1] != '-' ||
	    memcmp(l + 2, m->boundary, m->blen))
		return 0;
	end = m->blen + 2;
	if (n >= end + 2 && l[end] == '-' && l[end + 1] == '-') {
		kind = 2;
		end += 2;
	}
	while (end < n && (l[end] == ' ' || l[end] == '\t'))
		end++;
	return end == n ? kind : 0;
}

/* The segment that starts at @off, by bisection; n when none does. */
static size_t find_seg(const struct rfs_multipart *m, uint64_t off)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->segs[mid].off < off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->segs[lo].off == off ? lo : m->n;
}

/* A part's Content-Range: one of the asked ranges, not had yet. */
static int take_range(struct rfs_multipart *m, const char *v)
{
	uint64_t start, end, total;
	size_t i;

	if (m->have_range ||
	    rfs_http_parse_content_range(v, &start, &end, &total))
		return -EBADMSG;
	if (total != UINT64_MAX && total != m->file_size)
		return -EBADMSG;
	i = find_seg(m, start);
	if (i == m->n || m->filled[i] || m->segs[i].len == 0 ||
	    end - start + 1 != m->segs[i].len)
		return -EBADMSG;
	m->part = i;
	m->have_range = true;
	m->body_left = m->segs[i].len;
	return 0;
}

static int header_line(struct rfs_multipart *m, const char *l, size_t n)
{
	static const char cr[] = "content-range:";
	const char *colon = memchr(l, ':', n);

	if (n == 0) { /* the part's bytes follow */
		if (!m->have_range)
			return -EBADMSG;
		m->state = ST_BODY;
		return 0;
	}
	if (!colon || colon == l || ++m->lines > HDR_LINES)
		return -EBADMSG;
	if (n < sizeof(cr) - 1 || strncasecmp(l, cr, sizeof(cr) - 1))
		return 0; /* Content-Type and the like */
	l += sizeof(cr) - 1;
	while (*l == ' ' || *l == '\t')
		l++;
	return take_range(m, l);
}

/* One whole line, its line break cut off. */
static int line(struct rfs_multipart *m, const char *l, size_t n)
{
	int kind;

	switch (m->state) {
	case ST_PRE:
		kind = delimiter(m, l, n);
		if (kind == 1) {
			m->state = ST_HDR;
			m->lines = 0;
			return 0;
		}
		/* a body with no part at all is not an answer */
		return kind == 0 && ++m->lines <= PRE_LINES ? 0 : -EBADMSG;
	case ST_HDR:
		return header_line(m, l, n);
	case ST_AFTER: /* the CRLF that belongs to the next delimiter */
		if (n)
			return -EBADMSG;
		m->state = ST_DELIM;
		return 0;
	case ST_DELIM:
		kind = delimiter(m, l, n);
		if (kind == 0)
			return -EBADMSG;
		m->state = kind == 1 ? ST_HDR : ST_END;
		m->lines = 0;
		m->have_range = false;
		return 0;
	default:
		return -EBADMSG;
	}
}

/* Bytes of a part into its segment; returns how many were taken. */
static size_t body(struct rfs_multipart *m, const char *p, size_t len)
{
	const struct rfs_tseg *s = &m->segs[m->part];
	size_t k = len < m->body_left ? len : (size_t)m->body_left;

	memcpy((char *)s->buf + (s->len - m->body_left), p, k);
	m->body_left -= k;
	if (m->body_left == 0) {
		m->filled[m->part] = 1;
		m->nfilled++;
		m->state = ST_AFTER;
	}
	return k;
}

/* Line bytes up to and including a '\n'; returns how many were taken. */
static size_t line_bytes(struct rfs_multipart *m, const char *p, size_t len,
			 int *rc)
{
	const char *nl = memchr(p, '\n', len);
	size_t k = nl ? (size_t)(nl - p) + 1 : len;
	size_t n;

	if (m->linelen + k > RFS_MP_LINE_MAX) {
		*rc = -EBADMSG;
		return len;
	}
	memcpy(m->line + m->linelen, p, k);
	m->linelen += k;
	if (!nl)
		return k;
	n = m->linelen - 1; /* CRLF or a bare LF (XrdHttp) */
	if (n && m->line[n - 1] == '\r')
		n--;
	m->line[n] = '\0';
	m->linelen = 0;
	*rc = line(m, m->line, n);
	return k;
}

/* After the closing delimiter: line breaks only, a few. */
static int trailer(struct rfs_multipart *m, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != '\r' && p[i] != '\n')
			return -EBADMSG;
	m->trailing += len;
	return m->trailing <= TRAIL_MAX ? 0 : -EBADMSG;
}

int rfs_mp_feed(struct rfs_multipart *m, const char *p, size_t len)
{
	int rc = 0;

	while (len && !rc) {
		size_t k;

		if (m->state == ST_ERR)
			return -EBADMSG;
		if (m->state == ST_END) {
			rc = trailer(m, p, len);
			break;
		}
		k = m->state == ST_BODY ? body(m, p, len)
					: line_bytes(m, p, len, &rc);
		p += k;
		len -= k;
	}
	if (rc)
		m->state = ST_ERR;
	return rc;
}

int rfs_mp_finish(const struct rfs_multipart *m)
{
	/* a closing delimiter without its line break is whole too */
	bool closed =
		m->state == ST_END || (m->state == ST_DELIM && m->linelen &&
				       delimiter(m, m->line, m->linelen) == 2);

	return closed && m->nfilled == m->n ? 0 : -EBADMSG;
}
