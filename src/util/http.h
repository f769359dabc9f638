/*
 * The face of util/http_client that needs no curl.h: a pool's options and
 * life, and a bounded GET of a small document, for code that must not see
 * libcurl (authz/ fetches issuers' keys through it). The rest of the
 * plumbing, for the catalogue and the HTTP transport, is
 * util/http_client.h.
 */
#ifndef RFS_UTIL_HTTP_H
#define RFS_UTIL_HTTP_H

#include <stdint.h>

#include "util/buf.h"

struct rfs_http_opts {
	const char *ca_cert;	/* file or directory; NULL: system store */
	double connect_timeout; /* seconds */
	double io_timeout;	/* seconds under low_speed_limit that fail */
	long low_speed_limit;	/* bytes/s */
	const char *user_agent;
};

struct rfs_http;

/* Copies what it needs from @opts. Needs rfs_http_global_init() done. */
int rfs_http_new(struct rfs_http **out, const struct rfs_http_opts *opts);
void rfs_http_free(struct rfs_http *http);

/*
 * GETs @url, https:// only (-EPROTO otherwise), appending the body to
 * @out, whose cap bounds it (-EFBIG past it). Redirects are not followed:
 * a 3xx is an answer like any other. The whole exchange must end within
 * the connect timeout plus the I/O timeout, so a server sending a byte a
 * second cannot hold the caller. Returns 0 with *@status the HTTP status
 * of the answer, or a negative errno when none was had (-EPROTO also for
 * a certificate the CA does not vouch for).
 */
int rfs_http_fetch(struct rfs_http *http, const char *url, struct rfs_buf *out,
		   long *status);

/*
 * "bytes 0-9/21" -> 0, 9, 21; "bytes 0-9/\*" gives *total = UINT64_MAX.
 * Rejects anything else (including "bytes 15--1/21" from XrdHttp 5.5).
 * (Here, not in http_client.h: the multipart parser needs no curl.)
 */
int rfs_http_parse_content_range(const char *v, uint64_t *start, uint64_t *end,
				 uint64_t *total);

#endif
