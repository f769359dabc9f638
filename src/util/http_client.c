#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "util/errmap.h"
#include "util/http_client.h"
#include "util/banned.h"

#define POOL_MAX_IDLE 64

struct rfs_http {
	char *ca_cert;
	bool ca_is_dir;
	char *user_agent;
	long connect_ms;
	long low_speed_time;
	long low_speed_limit;

	/* Lock order: share_locks are leaves; pool_lock is never held
	 * during a transfer. */
	pthread_mutex_t pool_lock;
	CURL *idle[POOL_MAX_IDLE];
	size_t nidle;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

int rfs_http_global_init(void)
{
	CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);

	return rc == CURLE_OK ? 0 : rfs_errno_from_curl(rc);
}

void rfs_http_global_cleanup(void)
{
	curl_global_cleanup();
}

const char *rfs_http_version(void)
{
	return curl_version();
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
		       void *userp)
{
	struct rfs_http *http = userp;

	pthread_mutex_lock(&http->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *userp)
{
	struct rfs_http *http = userp;

	pthread_mutex_unlock(&http->share_locks[data]);
}

static int setup_share(struct rfs_http *http)
{
	http->share = curl_share_init();
	if (!http->share)
		return -ENOMEM;
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&http->share_locks[i], NULL);
	curl_share_setopt(http->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(http->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(http->share, CURLSHOPT_USERDATA, http);
	/* DNS answers and TLS sessions are worth sharing; connections stay
	 * with their handle so that a busy handle never waits for another. */
	curl_share_setopt(http->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(http->share, CURLSHOPT_SHARE,
			  CURL_LOCK_DATA_SSL_SESSION);
	return 0;
}

int rfs_http_new(struct rfs_http **out, const struct rfs_http_opts *opts)
{
	struct rfs_http *http = calloc(1, sizeof(*http));
	struct stat st;

	if (!http)
		return -ENOMEM;
	pthread_mutex_init(&http->pool_lock, NULL);
	if (opts->ca_cert) {
		http->ca_cert = strdup(opts->ca_cert);
		http->ca_is_dir =
			stat(opts->ca_cert, &st) == 0 && S_ISDIR(st.st_mode);
	}
	http->user_agent =
		strdup(opts->user_agent ? opts->user_agent : "ruciofs");
	http->connect_ms = (long)(opts->connect_timeout * 1000);
	http->low_speed_time = (long)(opts->io_timeout + 0.999);
	http->low_speed_limit =
		opts->low_speed_limit ? opts->low_speed_limit : 1;
	if ((opts->ca_cert && !http->ca_cert) || !http->user_agent ||
	    setup_share(http)) {
		rfs_http_free(http);
		return -ENOMEM;
	}
	*out = http;
	return 0;
}

void rfs_http_free(struct rfs_http *http)
{
	if (!http)
		return;
	for (size_t i = 0; i < http->nidle; i++)
		curl_easy_cleanup(http->idle[i]);
	if (http->share) {
		curl_share_cleanup(http->share);
		for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&http->share_locks[i]);
	}
	pthread_mutex_destroy(&http->pool_lock);
	free(http->ca_cert);
	free(http->user_agent);
	free(http);
}

static void apply_defaults(struct rfs_http *http, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SHARE, http->share);
	curl_easy_setopt(h, CURLOPT_USERAGENT, http->user_agent);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, http->connect_ms);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, http->low_speed_limit);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, http->low_speed_time);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (http->ca_cert)
		curl_easy_setopt(
			h, http->ca_is_dir ? CURLOPT_CAPATH : CURLOPT_CAINFO,
			http->ca_cert);
}

CURL *rfs_http_get(struct rfs_http *http)
{
	CURL *h = NULL;

	pthread_mutex_lock(&http->pool_lock);
	if (http->nidle)
		h = http->idle[--http->nidle];
	pthread_mutex_unlock(&http->pool_lock);
	if (h)
		curl_easy_reset(h); /* keeps live connections */
	else
		h = curl_easy_init();
	if (h)
		apply_defaults(http, h);
	return h;
}

void rfs_http_put(struct rfs_http *http, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&http->pool_lock);
	if (http->nidle < POOL_MAX_IDLE) {
		http->idle[http->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&http->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

int rfs_http_fetch(struct rfs_http *http, const char *url, struct rfs_buf *out,
		   long *status)
{
	CURL *h;
	CURLcode cc;
	int rc = 0;

	if (strncasecmp(url, "https://", 8))
		return -EPROTO;
	h = rfs_http_get(http);
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	/* a redirect is an answer, not an order: where keys come from is
	 * the caller's decision, on the URL it chose */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
			 http->connect_ms + http->low_speed_time * 1000);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rfs_http_buf_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	else
		rc = rfs_http_errno(h, cc, NULL);
	rfs_http_put(http, h);
	return rc;
}

int rfs_http_errno(CURL *h, int curlcode, bool *connect_failed)
{
	bool down = curlcode == CURLE_COULDNT_CONNECT ||
		    curlcode == CURLE_COULDNT_RESOLVE_HOST ||
		    curlcode == CURLE_COULDNT_RESOLVE_PROXY;
	long os = 0, sent = -1;

	/* a timeout before the request went out is the connect's; after
	 * it, a slow answer, which says nothing about the link (the
	 * connect time cannot tell: it is 0 on a reused connection) */
	if (curlcode == CURLE_OPERATION_TIMEDOUT &&
	    curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK &&
	    sent == 0)
		down = true;
	if (connect_failed)
		*connect_failed = down;
	if (curlcode == CURLE_COULDNT_CONNECT &&
	    curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os) == CURLE_OK)
		return rfs_errno_from_connect(os);
	return rfs_errno_from_curl(curlcode);
}

int rfs_http_header_value(const char *line, size_t len, const char *name,
			  char *out, size_t outlen)
{
	size_t nl = strlen(name), vlen;
	const char *v, *end = line + len;

	if (len <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
		return -ENOENT;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' ||
			   end[-1] == ' ' || end[-1] == '\t'))
		end--;
	vlen = end - v;
	if (vlen >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	return 0;
}

size_t rfs_http_hdr_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct rfs_http_hdrs *hdrs = userdata;
	size_t len = size * nmemb;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		for (size_t i = 0; i < hdrs->n; i++)
			hdrs->h[i].seen = false;
		return len;
	}
	for (size_t i = 0; i < hdrs->n; i++) {
		struct rfs_http_hdr *h = &hdrs->h[i];

		if (rfs_http_header_value(p, len, h->name, h->value,
					  sizeof(h->value)) == 0)
			h->seen = true;
	}
	return len;
}

size_t rfs_http_buf_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	size_t len = size * nmemb;

	return rfs_buf_add(userdata, p, len) ? 0 : len;
}

static int parse_u64(const char **p, uint64_t *out)
{
	uint64_t v = 0;

	if (!isdigit((unsigned char)**p))
		return -EINVAL;
	for (; isdigit((unsigned char)**p); (*p)++) {
		unsigned d = **p - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int rfs_http_parse_content_range(const char *v, uint64_t *start, uint64_t *end,
				 uint64_t *total)
{
	const char *p = v;

	if (strncasecmp(p, "bytes", 5))
		return -EINVAL;
	p += 5;
	if (*p != ' ' && *p != '=')
		return -EINVAL;
	while (*p == ' ' || *p == '=')
		p++;
	if (parse_u64(&p, start) || *p++ != '-' || parse_u64(&p, end) ||
	    *p++ != '/')
		return -EINVAL;
	if (*p == '*') {
		*total = UINT64_MAX;
		p++;
	} else if (parse_u64(&p, total)) {
		return -EINVAL;
	}
	while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
		p++;
	if (*p || *end < *start || (*total != UINT64_MAX && *end >= *total))
		return -EINVAL;
	return 0;
}
