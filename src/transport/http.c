/*
 * HTTP(S)/WebDAV transport: one closed Range GET per read, on pooled
 * kept-alive connections. Only closed ranges clamped to the file size are
 * sent: XrdHttp 5.5 and dCache answer open-ended and past-EOF ranges with
 * wrong bodies, so nothing the server says is trusted unless it matches
 * the request exactly (status, Content-Range, length).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "transport/transport.h"
#include "util/buf.h"
#include "util/errmap.h"
#include "util/http.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

struct http_transport {
	struct rfs_transport base;
	struct rfs_http *http;
};

/* Where the body goes: exactly @want bytes into the caller's buffers. */
struct sink {
	CURL *h;
	const struct iovec *iov;
	int iovcnt;
	int cur;     /* the buffer being filled */
	size_t used; /* bytes of it filled */
	size_t want;
	size_t got;
	bool overflow;
	uint64_t min_rate; /* bytes/s; 0: any rate will do */
	bool too_slow;
};

/* Judged only after this long: connection set-up is not streaming. */
#define SLOW_GRACE_US 1000000

static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct sink *s = userdata;
	curl_off_t us = 0;

	(void)dltotal;
	(void)ultotal;
	(void)ulnow;
	if (curl_easy_getinfo(s->h, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK ||
	    us < SLOW_GRACE_US)
		return 0;
	if ((double)dlnow * 1e6 / (double)us >= (double)s->min_rate)
		return 0;
	s->too_slow = true;
	return 1; /* aborts: another replica will do better */
}

static size_t sink_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb, left = n;

	if (n > s->want - s->got) {
		s->overflow = true;
		return 0; /* aborts the transfer: the server sent too much */
	}
	while (left) {
		const struct iovec *v;
		size_t k;

		while (s->used == s->iov[s->cur].iov_len &&
		       s->cur + 1 < s->iovcnt) { /* empty pieces too */
			s->cur++;
			s->used = 0;
		}
		v = &s->iov[s->cur];
		k = v->iov_len - s->used < left ? v->iov_len - s->used : left;

		memcpy((char *)v->iov_base + s->used, p, k);
		p += k;
		left -= k;
		s->used += k;
	}
	s->got += n;
	return n;
}

static int http_open(struct rfs_transport **out, const struct rfs_conf *conf)
{
	struct http_transport *t = calloc(1, sizeof(*t));
	struct rfs_http_opts hopts = {
		.ca_cert = conf->ca_cert,
		.connect_timeout = conf->connect_timeout,
		.io_timeout = conf->io_timeout,
		.low_speed_limit = (long)conf->low_speed_limit,
		.user_agent = "ruciofs/" PACKAGE_VERSION,
	};
	int rc;

	if (!t)
		return -ENOMEM;
	t->base.ops = &rfs_http_transport_ops;
	rc = rfs_http_new(&t->http, &hopts);
	if (rc) {
		free(t);
		return rc;
	}
	*out = &t->base;
	return 0;
}

static void http_close(struct rfs_transport *base)
{
	struct http_transport *t = (struct http_transport *)base;

	rfs_http_free(t->http);
	free(t);
}

/* davs:// and dav:// are WebDAV over https:// and http:// */
static int real_url(const char *url, char *out, size_t outlen, bool *tls)
{
	const char *rest = strstr(url, "://");
	const char *scheme;
	int n;

	if (!rest)
		return -EINVAL;
	if (!strncasecmp(url, "davs://", 7) || !strncasecmp(url, "https://", 8))
		scheme = "https";
	else if (!strncasecmp(url, "dav://", 6) ||
		 !strncasecmp(url, "http://", 7))
		scheme = "http";
	else
		return -EPROTONOSUPPORT;
	*tls = scheme[4] == 's';
	n = snprintf(out, outlen, "%s%s", scheme, rest);
	return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

/*
 * Accept the answer only if it is exactly the range asked for. A 200 is
 * the whole file, which is right only when the whole file was asked for.
 */
static int check_answer(long status, const struct rfs_http_hdr *cr,
			const struct sink *s, uint64_t off, uint64_t size)
{
	uint64_t start, end, total;

	if (status == 200)
		return off == 0 && s->want == size && s->got == s->want ? 0
									: -EIO;
	if (status != 206)
		return status >= 400 ? rfs_errno_from_http(status) : -EIO;
	if (!cr->seen ||
	    rfs_http_parse_content_range(cr->value, &start, &end, &total))
		return -EBADMSG;
	if (start != off || end != off + s->want - 1 ||
	    (total != UINT64_MAX && total != size))
		return -EBADMSG;
	return s->got == s->want ? 0 : -EPIPE;
}

static int set_headers(struct curl_slist **l, uint64_t off, size_t len,
		       const char *bearer, bool tls)
{
	char range[64];
	struct curl_slist *nl;

	snprintf(range, sizeof(range), "Range: bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	*l = curl_slist_append(NULL, range);
	if (*l && bearer && tls) {
		/* built in place so the token is wiped, never logged */
		size_t n = strlen(bearer) + 32;
		char *h = malloc(n);

		if (!h)
			return -ENOMEM;
		snprintf(h, n, "Authorization: Bearer %s", bearer);
		nl = curl_slist_append(*l, h);
		rfs_wipe(h, n);
		free(h);
		if (!nl)
			return -ENOMEM;
	}
	return *l ? 0 : -ENOMEM;
}

static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		rfs_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int do_get(struct http_transport *t, const char *url,
		  struct curl_slist *headers, struct sink *s,
		  struct rfs_http_hdrs *hdrs, long *status)
{
	CURL *h = rfs_http_get(t->http);
	int rc;

	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rfs_http_hdr_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
	s->h = h;
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, s->min_rate ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION,
			 s->min_rate ? progress_cb : NULL);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
	/* dCache doors and EOS head nodes redirect every GET; curl drops
	 * our Authorization header if the target is another host. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	rfs_http_put(t->http, h);
	if (rc == CURLE_WRITE_ERROR && s->overflow)
		return -EBADMSG;
	if (rc == CURLE_ABORTED_BY_CALLBACK && s->too_slow)
		return -ETIMEDOUT;
	return rc ? rfs_errno_from_curl(rc) : 0;
}

static ssize_t http_preadv(struct rfs_transport *base, const char *url,
			   const char *bearer, const struct iovec *iov,
			   int iovcnt, uint64_t off, uint64_t file_size,
			   uint64_t min_rate)
{
	struct http_transport *t = (struct http_transport *)base;
	struct rfs_http_hdr cr = { .name = "Content-Range" };
	struct rfs_http_hdrs hdrs = { &cr, 1 };
	struct sink s = { .iov = iov, .iovcnt = iovcnt, .min_rate = min_rate };
	struct curl_slist *headers = NULL;
	char target[8192];
	long status = 0;
	size_t len = rfs_iov_len(iov, iovcnt);
	bool tls;
	int rc;

	if (len == 0)
		return 0;
	s.want = len;
	rc = real_url(url, target, sizeof(target), &tls);
	if (!rc)
		rc = set_headers(&headers, off, len, bearer, tls);
	if (!rc)
		rc = do_get(t, target, headers, &s, &hdrs, &status);
	free_headers(headers);
	if (!rc)
		rc = check_answer(status, &cr, &s, off, file_size);
	return rc ? rc : (ssize_t)len;
}

static const char *const http_schemes[] = { "https", "davs", "http", "dav",
					    NULL };

const struct rfs_transport_ops rfs_http_transport_ops = {
	.name = "http",
	.schemes = http_schemes,
	.open = http_open,
	.preadv = http_preadv,
	.close = http_close,
};
