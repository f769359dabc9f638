/*
 * libcurl plumbing shared by the catalogue client and the HTTP transport:
 * a pool of easy handles (each keeps its own live connections), the common
 * timeouts and CA settings, and header parsing. util/http.h is the part
 * that needs no curl.h.
 */
#ifndef RFS_UTIL_HTTP_CLIENT_H
#define RFS_UTIL_HTTP_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include <curl/curl.h>

#include "util/buf.h"
#include "util/http.h" /* the options, new, free, a bounded GET */

/*
 * libcurl's global state, for the catalogue and the HTTP transport both:
 * once per process, before any pool is made and while no other thread
 * runs (curl_global_init is not thread-safe). Cleanup after the last pool
 * is freed.
 */
int rfs_http_global_init(void);
void rfs_http_global_cleanup(void);
/* "libcurl/x.y.z OpenSSL/..." (static), for --version. */
const char *rfs_http_version(void);

/*
 * A handle with the common options applied, or NULL when out of memory.
 * Give it back with rfs_http_put(); its connections stay alive for reuse.
 */
CURL *rfs_http_get(struct rfs_http *http);
void rfs_http_put(struct rfs_http *http, CURL *h);

/*
 * The errno of a transfer on @h that failed with @curlcode, read before
 * the handle is put back: for a failed connect, the system's own reason
 * (refused, network or host unreachable, timed out: see
 * rfs_errno_from_connect), else rfs_errno_from_curl's. *@connect_failed
 * (may be NULL) says whether the server was not reached at all (no
 * connection, name not resolved, a timeout before the request went out).
 */
int rfs_http_errno(CURL *h, int curlcode, bool *connect_failed);

/* Response headers a request wants to see, captured by rfs_http_hdr_cb. */
struct rfs_http_hdr {
	const char *name;
	char value[512];
	bool seen;
};
struct rfs_http_hdrs {
	struct rfs_http_hdr *h;
	size_t n;
};
/* CURLOPT_HEADERFUNCTION; a new status line (redirect hop) clears all. */
size_t rfs_http_hdr_cb(char *p, size_t size, size_t nmemb, void *userdata);
/* CURLOPT_WRITEFUNCTION appending to a struct rfs_buf (its cap applies). */
size_t rfs_http_buf_cb(char *p, size_t size, size_t nmemb, void *userdata);

/*
 * If @line (CRLF or bare LF ended, as XrdHttp sends) is header @name,
 * copies its trimmed value to @out and returns 0; -ENOENT if it is another
 * header; -ENAMETOOLONG if the value does not fit.
 */
int rfs_http_header_value(const char *line, size_t len, const char *name,
			  char *out, size_t outlen);

#endif
