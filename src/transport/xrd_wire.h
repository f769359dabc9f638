/*
 * The read-only subset of the XRootD protocol (v5.1) as bytes: request
 * builders into bounded buffers and response parsers, no I/O, so every
 * frame a server may send is tested and fuzzed without a socket. All
 * integers on the wire are big-endian. Builders return the frame's
 * length or -ENOBUFS; parsers return 0 or a negative errno (-EPROTO for
 * a frame that breaks the protocol).
 */
#ifndef RFS_XRD_WIRE_H
#define RFS_XRD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RFS_XRD_RSP_HDR 8  /* streamid[2] status u16 dlen i32 */
#define RFS_XRD_REQ_HDR 24 /* streamid[2] requestid u16 body[16] dlen */
#define RFS_XRD_HANDSHAKE 20

/* request codes */
enum {
	RFS_XRD_AUTH = 3000,
	RFS_XRD_QUERY = 3001,
	RFS_XRD_CLOSE = 3003,
	RFS_XRD_PROTOCOL = 3006,
	RFS_XRD_LOGIN = 3007,
	RFS_XRD_OPEN = 3010,
	RFS_XRD_READ = 3013,
	RFS_XRD_STAT = 3017,
	RFS_XRD_READV = 3025,
};

/* response status codes */
enum {
	RFS_XRD_OK = 0,
	RFS_XRD_OKSOFAR = 4000,
	RFS_XRD_ATTN = 4001,
	RFS_XRD_AUTHMORE = 4002,
	RFS_XRD_ERROR = 4003,
	RFS_XRD_REDIRECT = 4004,
	RFS_XRD_WAIT = 4005,
	RFS_XRD_WAITRESP = 4006,
	RFS_XRD_STATUS = 4007,
};

#define RFS_XRD_ASYNRESP 5008 /* attn action: a waitresp's answer */

/* kXR_protocol: what we offer, what the server says it does */
#define RFS_XRD_PROTOCOL_VERSION 0x511
#define RFS_XRD_ABLE_TLS 0x02
#define RFS_XRD_WANT_TLS 0x04
#define RFS_XRD_IS_MANAGER 0x00000002u
#define RFS_XRD_IS_SERVER 0x00000001u
#define RFS_XRD_HAVE_TLS 0x80000000u
#define RFS_XRD_GOTO_TLS 0x40000000u

/* kXR_open options, kXR_query info types */
#define RFS_XRD_OPEN_READ 0x0010
#define RFS_XRD_RETSTAT 0x0400
#define RFS_XRD_QCKSUM 3

/* kXR_readv limits (query config readv_iov_max, readv_ior_max) */
#define RFS_XRD_READV_MAX_SEGS 1024
#define RFS_XRD_READV_MAX_SEG 2097136u
#define RFS_XRD_READV_SEG_HDR 16

/* the stat flags */
#define RFS_XRD_STAT_ISDIR 2
#define RFS_XRD_STAT_OFFLINE 8
#define RFS_XRD_STAT_READABLE 16

struct rfs_xrd_hdr {
	uint16_t sid;
	uint16_t status;
	uint32_t dlen; /* a negative dlen on the wire is -EPROTO */
};

struct rfs_xrd_stat {
	uint64_t id;
	uint64_t size;
	uint32_t flags;
	int64_t mtime;
};

struct rfs_xrd_redirect {
	int32_t port;	   /* as sent; < 0: host was a URL, port from it */
	char host[256];	   /* no brackets */
	char opaque[2048]; /* the CGI to append, without '?' ("" if none) */
	char token[1024];  /* after a second '?' ("" if none) */
};

/* ---- requests: @out holds at most @cap bytes ---- */

/* The 20-byte handshake followed by kXR_protocol, in one frame. */
ssize_t rfs_xrd_req_hello(uint8_t *out, size_t cap, uint16_t sid,
			  uint8_t tls_flags);
/* @user: at most 8 bytes go out; @cgi may be NULL. */
ssize_t rfs_xrd_req_login(uint8_t *out, size_t cap, uint16_t sid, int32_t pid,
			  const char *user, const char *cgi);
/* "unix\0<user> <group>\0" */
ssize_t rfs_xrd_req_auth_unix(uint8_t *out, size_t cap, uint16_t sid,
			      const char *user, const char *group);
/* the WLCG token of @toklen bytes, ztn version 0 */
ssize_t rfs_xrd_req_auth_ztn(uint8_t *out, size_t cap, uint16_t sid,
			     const char *token, size_t toklen);
ssize_t rfs_xrd_req_stat(uint8_t *out, size_t cap, uint16_t sid,
			 const char *path);
/* read-only, with the file's stat in the answer */
ssize_t rfs_xrd_req_open(uint8_t *out, size_t cap, uint16_t sid,
			 const char *path);
ssize_t rfs_xrd_req_read(uint8_t *out, size_t cap, uint16_t sid,
			 const uint8_t fh[4], uint64_t off, uint32_t len);

struct rfs_xrd_seg {
	uint64_t off;
	uint32_t len; /* < RFS_XRD_READV_MAX_SEG */
};

/* @n segments (1..1024) of the file @fh */
ssize_t rfs_xrd_req_readv(uint8_t *out, size_t cap, uint16_t sid,
			  const uint8_t fh[4], const struct rfs_xrd_seg *segs,
			  size_t n);
ssize_t rfs_xrd_req_close(uint8_t *out, size_t cap, uint16_t sid,
			  const uint8_t fh[4]);
/* checksum of @path ("cks.type=adler32" is added) */
ssize_t rfs_xrd_req_cksum(uint8_t *out, size_t cap, uint16_t sid,
			  const char *path, const char *type);

/* ---- responses ---- */

int rfs_xrd_parse_hdr(const uint8_t *p, size_t n, struct rfs_xrd_hdr *h);
/* the handshake's own answer: protocol version, 1 data server 0 manager */
int rfs_xrd_parse_handshake(const uint8_t *p, size_t n, uint32_t *pv,
			    uint32_t *kind);
/* kXR_protocol: version and flags (extra sections ignored) */
int rfs_xrd_parse_protocol(const uint8_t *p, size_t n, uint32_t *pv,
			   uint32_t *flags);
/* kXR_login: the session id and security string (NUL-terminated) */
int rfs_xrd_parse_login(const uint8_t *p, size_t n, uint8_t sessid[16],
			char *sec, size_t seclen);
/*
 * Whether the security string @sec offers protocol @proto ("&P=unix",
 * "&P=ztn,0:4096:"); its parameters (after the comma) into @args.
 */
bool rfs_xrd_sec_offers(const char *sec, const char *proto, char *args,
			size_t argslen);
/* "id size flags mtime[ ...]": four fields, the rest ignored */
int rfs_xrd_parse_stat(const uint8_t *p, size_t n, struct rfs_xrd_stat *st);
/* kXR_open: the handle, and the stat when the server sent one we read */
int rfs_xrd_parse_open(const uint8_t *p, size_t n, uint8_t fh[4],
		       struct rfs_xrd_stat *st, bool *has_stat);
/* kXR_error: its number and message (NUL-terminated, control bytes kept) */
int rfs_xrd_parse_error(const uint8_t *p, size_t n, int32_t *errnum, char *msg,
			size_t msglen);
int rfs_xrd_parse_redirect(const uint8_t *p, size_t n,
			   struct rfs_xrd_redirect *r);
/* kXR_wait and kXR_waitresp: the seconds, at least 0, at most 3600 */
int rfs_xrd_parse_wait(const uint8_t *p, size_t n, uint32_t *secs);
/*
 * kXR_attn: its action; for an asynresp, the embedded header and body
 * (a slice of @p that must hold exactly the header's dlen).
 */
int rfs_xrd_parse_attn(const uint8_t *p, size_t n, int32_t *action,
		       struct rfs_xrd_hdr *inner, const uint8_t **body);
/* "adler32 b57952c5": the type and lower-case hex digits */
int rfs_xrd_parse_cksum(const uint8_t *p, size_t n, char *type, size_t typelen,
			char *hex, size_t hexlen);

/*
 * A kXR_readv answer as a stream (segments may be split anywhere over
 * oksofar chunks): each 16-byte segment header must name the handle,
 * offset and length asked for, in order; data past the last segment,
 * or a segment not asked for, is -EPROTO. The receiver asks what comes
 * next, reads that many bytes (at most) where it is told, then reports
 * them: the data lands in place, with no copy.
 */
struct rfs_xrd_rv {
	const struct rfs_xrd_seg *segs;
	size_t n;
	uint8_t fh[4];
	size_t cur;   /* the segment whose header or data is next */
	bool in_data; /* its header is in */
	uint32_t pos; /* bytes of it (header or data) in */
	uint8_t hdr[RFS_XRD_READV_SEG_HDR];
};

void rfs_xrd_rv_init(struct rfs_xrd_rv *rv, const uint8_t fh[4],
		     const struct rfs_xrd_seg *segs, size_t n);
/*
 * What comes next: *@seg is the segment (-1: a header, into *@where =
 * rv->hdr + pos) and *@at the offset in its data; returns how many bytes
 * at most (0: every segment is in).
 */
size_t rfs_xrd_rv_next(struct rfs_xrd_rv *rv, ssize_t *seg, uint32_t *at,
		       uint8_t **where);
/* @n bytes came where rfs_xrd_rv_next said: 0, or -EPROTO */
int rfs_xrd_rv_took(struct rfs_xrd_rv *rv, size_t n);
bool rfs_xrd_rv_done(const struct rfs_xrd_rv *rv);
/*
 * Feeds @n bytes from memory (tests, fuzzing, an asynresp's body): data
 * of segment i at offset k goes to bufs[i] + k. 0 or -EPROTO.
 */
int rfs_xrd_rv_feed(struct rfs_xrd_rv *rv, const uint8_t *p, size_t n,
		    uint8_t *const *bufs);

#endif
