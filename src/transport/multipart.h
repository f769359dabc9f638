/*
 * A multipart/byteranges body (RFC 9110 14.6, RFC 2046 5.1), parsed as
 * it arrives into the buffers of the ranges that were asked for: the
 * answer to a multi-range GET. Pure (no curl), bounded: every line it
 * keeps has a cap, so whatever a server sends costs at most the parts'
 * bytes plus a few KiB per part.
 *
 * Strict where a wrong byte could reach a reader: every part must carry
 * exactly one Content-Range naming one of the asked ranges exactly (its
 * total the file's size), each range must come once, and nothing but
 * line breaks may follow the closing delimiter. Tolerant where servers
 * differ harmlessly: bare-LF line ends (XrdHttp), header names in any
 * case, parts in any order, a preamble of empty lines.
 */
#ifndef RFS_TRANSPORT_MULTIPART_H
#define RFS_TRANSPORT_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

/* RFC 2046: a boundary is 1 to 70 characters */
#define RFS_MP_BOUNDARY_MAX 70
/* the longest line kept: a part's header, a delimiter, the preamble's */
#define RFS_MP_LINE_MAX 1024

struct rfs_multipart {
	const struct rfs_tseg *segs; /* borrowed, sorted by offset */
	size_t n;
	uint64_t file_size;
	char boundary[RFS_MP_BOUNDARY_MAX + 1];
	size_t blen;

	int state;
	char line[RFS_MP_LINE_MAX + 1];
	size_t linelen;
	size_t lines;	       /* header lines of this part, or preamble's */
	size_t part;	       /* the segment this part fills */
	bool have_range;       /* this part named its range */
	uint64_t body_left;    /* bytes of this part still to come */
	unsigned char *filled; /* one byte per segment: 1 once filled */
	size_t nfilled;
	size_t trailing; /* bytes after the closing delimiter */
};

/*
 * Ready to parse an answer whose Content-Type is @content_type into the
 * @n segments of @segs (sorted by offset, not overlapping, borrowed until
 * release) of a file of @file_size bytes. -EPROTO when the answer is not
 * multipart/byteranges with a usable boundary; -ENOMEM.
 */
int rfs_mp_init(struct rfs_multipart *m, const char *content_type,
		const struct rfs_tseg *segs, size_t n, uint64_t file_size);
/*
 * The next @len bytes of the body. 0, or -EBADMSG once the body is not
 * what was asked (then every later call fails too).
 */
int rfs_mp_feed(struct rfs_multipart *m, const char *p, size_t len);
/* At the body's end: 0 when every segment came, whole, and the closing
 * delimiter was seen; else -EBADMSG. */
int rfs_mp_finish(const struct rfs_multipart *m);
void rfs_mp_release(struct rfs_multipart *m);

/*
 * The boundary of a Content-Type value "multipart/byteranges;
 * boundary=X" (X may be quoted) into @out (RFS_MP_BOUNDARY_MAX + 1
 * bytes). -EPROTO if it is another type or has no valid boundary.
 */
int rfs_mp_boundary(const char *content_type, char *out, size_t outlen);

#endif
