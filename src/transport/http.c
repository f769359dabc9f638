/*
 * HTTP(S)/WebDAV transport: one closed Range GET per read, on pooled
 * kept-alive connections. Only closed ranges clamped to the file size are
 * sent: XrdHttp 5.5 and dCache answer open-ended and past-EOF ranges with
 * wrong bodies, so nothing the server says is trusted unless it matches
 * the request exactly (status, Content-Range, length).
 *
 * Vector reads are one GET with several closed ranges, answered as
 * multipart/byteranges (multipart.c checks every part against what was
 * asked). A server that answers such a request with the whole file (200)
 * or with one range is marked: vector reads of that endpoint then fail
 * at once with -EOPNOTSUPP and the read path reads the ranges one by one.
 * Serving from a whole-file answer was not chosen: its size is the
 * file's, not the ranges', and a 200 says the server ignores ranges.
 *
 * Redirects (dCache doors, EOS head nodes) are followed here, not by
 * curl: each hop's host is checked against the connection policy
 * (util/net.h) before any connection, each address before connect(),
 * and the bearer token goes with a hop only when the policy allows it.
 *
 * Sessions hold nothing here: a bearer token rides on each request, never
 * on a connection, so identities share curl's pool of kept-alive
 * connections safely, and the token is asked for only when a hop may
 * carry it (never for plain http).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "transport/multipart.h"
#include "transport/transport.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/http_client.h"
#include "util/log.h"
#include "util/net.h"
#include "util/str.h"
#include "util/banned.h"

/* Endpoints remembered as answering multi-range requests wrongly. */
#define NO_VECTOR_MAX 32
#define ORIGIN_MAX 264

struct http_transport {
	struct rfs_transport base;
	struct rfs_http *http;
	struct rfs_netpol pol;
	/* lock guards no_vector[], a leaf never held across a request */
	pthread_mutex_t lock;
	char no_vector[NO_VECTOR_MAX][ORIGIN_MAX];
	unsigned nno_vector; /* entries used; a ring once full */
};

#define MAX_REDIRECTS 5
#define URL_MAX 8192
/* the body of a redirect or an error is read and dropped up to this */
#define JUNK_MAX (64 << 10)
/* ranges per request (XrdHttp caps them at 1024, a readv), and the
 * longest Range value sent: nginx, Apache and Jetty refuse a header line
 * past 8 KiB by default */
#define VEC_RANGES_MAX 1024
#define VEC_RANGE_BYTES 4096

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
	/* the read path's slow-transfer policy (rfs_xfer_note) */
	bool (*go_on)(void *arg, uint64_t got, double secs);
	void *go_on_arg;
	bool too_slow;
	double deadline; /* rfs_mono_now(); 0: none */
	bool past_deadline;
	bool judged; /* the status was looked at */
	bool junk;   /* not 200/206: the body is dropped */
	size_t junk_len;
	/* a vector read: the answer goes through the multipart parser */
	bool vec;
	const struct rfs_tseg *segs;
	size_t nsegs;
	uint64_t file_size;
	const struct rfs_http_hdr *ctype; /* the answer's Content-Type */
	struct rfs_multipart mp;
	bool mp_ready;
	bool refused; /* not multipart: the whole file, or one range */
	bool bad;     /* the parser refused the body */
};

static int progress_cb(void *userdata, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct sink *s = userdata;
	curl_off_t us = 0;

	(void)dltotal;
	(void)ultotal;
	(void)ulnow;
	/* called about once a second even while nothing comes */
	if (s->deadline && rfs_mono_now() >= s->deadline) {
		s->past_deadline = true;
		return 1;
	}
	if (!s->go_on ||
	    curl_easy_getinfo(s->h, CURLINFO_TOTAL_TIME_T, &us) != CURLE_OK)
		return 0;
	if (s->go_on(s->go_on_arg, (uint64_t)dlnow, (double)us / 1e6))
		return 0;
	s->too_slow = true;
	return 1; /* aborts: another replica will do better */
}

/*
 * A redirect's or an error's body is not the file: it must not land in
 * the caller's buffers, and its status says what happened.
 */
static bool junk_body(struct sink *s)
{
	long status = 0;

	if (!s->judged) {
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		s->junk = status != 200 && status != 206;
		s->judged = true;
	}
	return s->junk;
}

/*
 * A vector read's body: multipart/byteranges into the segments, or, if
 * the server answered otherwise, the transfer stopped at once.
 */
static size_t vec_cb(struct sink *s, const char *p, size_t n)
{
	long status = 0;

	if (!s->mp_ready) {
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		if (status != 206 || !s->ctype->seen ||
		    rfs_mp_init(&s->mp, s->ctype->value, s->segs, s->nsegs,
				s->file_size)) {
			s->refused = true;
			return 0;
		}
		s->mp_ready = true;
	}
	if (rfs_mp_feed(&s->mp, p, n)) {
		s->bad = true;
		return 0;
	}
	s->got += n;
	return n;
}

static size_t sink_cb(char *p, size_t size, size_t nmemb, void *userdata)
{
	struct sink *s = userdata;
	size_t n = size * nmemb, left = n;

	if (junk_body(s)) {
		s->junk_len += n;
		return s->junk_len > JUNK_MAX ? 0 : n;
	}
	if (s->vec)
		return vec_cb(s, p, n);
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

/* Every hop starts with empty buffers: a redirect's body is not kept. */
static void sink_restart(struct sink *s)
{
	s->cur = 0;
	s->used = s->got = s->junk_len = 0;
	s->overflow = s->too_slow = s->judged = s->junk = false;
	if (s->mp_ready)
		rfs_mp_release(&s->mp);
	s->mp_ready = s->refused = s->bad = false;
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
	char err[256];
	int rc;

	if (!t)
		return -ENOMEM;
	t->base.ops = &rfs_http_transport_ops;
	pthread_mutex_init(&t->lock, NULL);
	/* checked by rfs_conf_validate already */
	rc = rfs_netpol_init(&t->pol, conf->storage_hosts.v, conf->deny_nets.v,
			     err, sizeof(err));
	if (rc) {
		free(t);
		return rc;
	}
	rc = rfs_http_new(&t->http, &hopts);
	if (rc) {
		rfs_netpol_release(&t->pol);
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
	rfs_netpol_release(&t->pol);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* davs:// and dav:// are WebDAV over https:// and http:// */
static int real_url(const char *url, char *out, size_t outlen)
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

/*
 * A vector read's answer: every asked range came in a multipart body. A
 * 200 (the whole file) or a single range is a server that does not do
 * what was asked: -EOPNOTSUPP.
 */
static int check_vec_answer(long status, const struct sink *s)
{
	if (status == 200 || s->refused)
		return -EOPNOTSUPP;
	if (status != 206)
		return status >= 400 ? rfs_errno_from_http(status) : -EIO;
	if (!s->mp_ready) /* no body at all */
		return s->ctype->seen && !strncasecmp(s->ctype->value,
						      "multipart/", 10)
			       ? -EBADMSG
			       : -EOPNOTSUPP;
	return rfs_mp_finish(&s->mp);
}

/* @range: "bytes=..." */
static int set_headers(struct curl_slist **l, const char *range,
		       const char *bearer)
{
	struct curl_slist *nl;
	char *line = malloc(strlen(range) + 8);

	if (!line)
		return -ENOMEM;
	snprintf(line, strlen(range) + 8, "Range: %s", range);
	*l = curl_slist_append(NULL, line);
	free(line);
	if (*l && bearer) {
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

/* One request of a transfer: where it goes, what it may connect to. */
struct hop {
	CURLU *u;
	char *host; /* curl's: "[v6]" for IPv6 */
	bool tls;
	bool need_range; /* each address must lie in a storage_hosts range */
	const struct rfs_netpol *pol;
	bool refused;	 /* an address was refused before connect() */
	unsigned opened; /* sockets handed to curl */
	char why[192];
};

static void hop_release(struct hop *hop)
{
	curl_free(hop->host);
	curl_url_cleanup(hop->u);
}

/* Parses @url (http or https only) and judges its host. */
static int hop_open(struct hop *hop, const struct rfs_netpol *pol,
		    const char *url)
{
	char *scheme = NULL;
	int rc = 0;

	memset(hop, 0, sizeof(*hop));
	hop->pol = pol;
	hop->u = curl_url();
	if (!hop->u)
		return -ENOMEM;
	if (curl_url_set(hop->u, CURLUPART_URL, url, 0) ||
	    curl_url_get(hop->u, CURLUPART_SCHEME, &scheme, 0) ||
	    curl_url_get(hop->u, CURLUPART_HOST, &hop->host, 0))
		rc = -EINVAL;
	else if (!strcasecmp(scheme, "https"))
		hop->tls = true;
	else if (strcasecmp(scheme, "http")) {
		snprintf(hop->why, sizeof(hop->why),
			 "refused: not an http(s) URL"); /* file://, ftp:// */
		rc = -EPROTONOSUPPORT;
	}
	curl_free(scheme);
	/* storage is authenticated by token: userinfo in a URL (a
	 * redirect's Location) would go out as Basic auth */
	if (!rc && (curl_url_set(hop->u, CURLUPART_USER, NULL, 0) ||
		    curl_url_set(hop->u, CURLUPART_PASSWORD, NULL, 0)))
		rc = -ENOMEM;
	if (!rc)
		rc = rfs_netpol_check_host(pol, hop->host, &hop->need_range,
					   hop->why, sizeof(hop->why));
	return rc;
}

/*
 * curl hands every address it is about to connect to here first (one
 * per happy-eyeballs attempt): a name is checked by where it resolves,
 * whatever the resolver says, before connect().
 */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
				 struct curl_sockaddr *a)
{
	struct hop *hop = clientp;
	char why[sizeof(hop->why)];

	(void)purpose;
	if (rfs_netpol_check_addr(hop->pol, &a->addr, a->addrlen,
				  hop->need_range, why, sizeof(why))) {
		if (!hop->refused)
			memcpy(hop->why, why, sizeof(why));
		hop->refused = true;
		return CURL_SOCKET_BAD; /* curl tries the next address */
	}
	hop->opened++;
	return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static bool is_redirect(long status)
{
	return status == 301 || status == 302 || status == 303 ||
	       status == 307 || status == 308;
}

/* A redirect's target into @next ("" when the answer is no redirect). */
static int take_target(CURL *h, long status, char *next, size_t nextlen)
{
	char *loc = NULL;

	next[0] = '\0';
	if (!is_redirect(status) ||
	    curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &loc) || !loc)
		return 0;
	if (strlen(loc) >= nextlen)
		return -ENAMETOOLONG;
	memcpy(next, loc, strlen(loc) + 1);
	return 0;
}

/* What is left until the sink's deadline, for curl (at least 1 ms). */
static long deadline_ms(const struct sink *s)
{
	double left = (s->deadline - rfs_mono_now()) * 1000;

	return left < 1 ? 1 : (long)left;
}

static int do_get(struct http_transport *t, struct hop *hop,
		  struct curl_slist *headers, struct sink *s,
		  struct rfs_http_hdrs *hdrs, long *status, char *next)
{
	CURL *h = rfs_http_get(t->http);
	int rc, trc, err;

	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_CURLU, hop->u);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, hop);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rfs_http_hdr_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
	s->h = h;
	curl_easy_setopt(h, CURLOPT_NOPROGRESS,
			 s->go_on || s->deadline ? 0L : 1L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION,
			 s->go_on || s->deadline ? progress_cb : NULL);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, s);
	if (s->deadline) /* also while connecting, when no callback runs */
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, deadline_ms(s));
	rc = curl_easy_perform(h);
	*status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	err = rc ? rfs_http_errno(h, rc, NULL) : 0;
	if (rc == CURLE_WRITE_ERROR && s->junk)
		rc = CURLE_OK; /* a long error page: its status says enough */
	trc = rc ? 0 : take_target(h, *status, next, URL_MAX);
	curl_easy_setopt(h, CURLOPT_CURLU, NULL); /* freed after this */
	rfs_http_put(t->http, h);
	/* a refusal is the failure only if no address was left to try */
	if (rc && hop->refused && !hop->opened)
		return -EPERM;
	hop->why[0] = '\0';
	if (rc == CURLE_WRITE_ERROR && (s->overflow || s->bad))
		return -EBADMSG;
	if (rc == CURLE_WRITE_ERROR && s->refused)
		return -EOPNOTSUPP;
	if (rc == CURLE_ABORTED_BY_CALLBACK && s->too_slow)
		return -ETIMEDOUT;
	if (s->deadline &&
	    (s->past_deadline || rc == CURLE_OPERATION_TIMEDOUT) &&
	    rfs_mono_now() >= s->deadline - 0.05) {
		s->past_deadline = true;
		return -ETIMEDOUT;
	}
	return rc ? err : trc;
}

/* What a transfer keeps across its hops. */
struct xfer {
	struct http_transport *t;
	const struct rfs_who *who;
	char *bearer; /* asked of @who once a hop may carry it */
	bool asked;
	const char *range; /* "bytes=a-b[,c-d...]" */
	struct sink *s;
	struct rfs_http_hdrs *hdrs;
	char origin[300]; /* the replica's own host */
	struct rfs_xfer_note *note;
};

/*
 * One hop to @url; *@next gets where a redirect points. The token goes
 * along only where the policy lets it: over TLS, to the replica's own
 * host or a host storage_hosts names.
 */
static int one_hop(struct xfer *x, const char *url, int n, long *status,
		   char *next)
{
	struct curl_slist *headers = NULL;
	struct hop hop;
	bool token;
	int rc = hop_open(&hop, &x->t->pol, url);

	if (!rc && n == 0 &&
	    snprintf(x->origin, sizeof(x->origin), "%s", hop.host) >=
		    (int)sizeof(x->origin))
		rc = -ENAMETOOLONG;
	token = !rc && x->who && x->who->bearer &&
		rfs_netpol_token_ok(&x->t->pol, x->origin, hop.host, hop.tls);
	if (token && !x->asked) {
		x->asked = true;
		rc = x->who->bearer(x->who->arg, &x->bearer);
	}
	if (!rc)
		rc = set_headers(&headers, x->range, token ? x->bearer : NULL);
	sink_restart(x->s);
	if (!rc)
		rc = do_get(x->t, &hop, headers, x->s, x->hdrs, status, next);
	if (rc && hop.why[0])
		memcpy(x->note->why, hop.why, sizeof(x->note->why));
	free_headers(headers);
	hop_release(&hop);
	return rc;
}

/* Follows @url hop by hop; the last answer's status in *@status. */
static int transfer(struct xfer *x, const char *url, long *status)
{
	char cur[URL_MAX], next[URL_MAX];
	struct rfs_xfer_note *note = x->note;
	int rc = real_url(url, cur, sizeof(cur));

	for (int n = 0; !rc; n++) {
		rc = one_hop(x, cur, n, status, next);
		if (rc || !next[0])
			break;
		rfs_url_for_log(note->target, sizeof(note->target), next);
		if (n == MAX_REDIRECTS) {
			snprintf(note->why, sizeof(note->why),
				 "more than %d redirects", MAX_REDIRECTS);
			rc = -ELOOP;
		}
		memcpy(cur, next, strlen(next) + 1);
	}
	return rc;
}

/* What the note says of a transfer's end; the token is wiped. */
static void transfer_done(struct xfer *x)
{
	x->note->got += x->s->got;
	x->note->past_deadline = x->s->past_deadline;
	x->note->given_up = x->s->too_slow;
	if (x->bearer) {
		rfs_wipe(x->bearer, strlen(x->bearer));
		free(x->bearer);
		x->bearer = NULL;
	}
}

static void note_reset(struct rfs_xfer_note *note)
{
	note->target[0] = note->why[0] = '\0';
	note->got = 0;
	note->past_deadline = note->given_up = false;
}

/* One closed range GET into @iov; @note is added to. */
static ssize_t pread_one(struct http_transport *t, struct rfs_tfile *f,
			 const struct iovec *iov, int iovcnt, uint64_t off,
			 uint64_t file_size, struct rfs_xfer_note *note)
{
	struct rfs_http_hdr cr = { .name = "Content-Range" };
	struct rfs_http_hdrs hdrs = { &cr, 1 };
	struct sink s = { .iov = iov,
			  .iovcnt = iovcnt,
			  .go_on = note->go_on,
			  .go_on_arg = note->go_on_arg,
			  .deadline = note->deadline };
	struct xfer x = {
		.t = t, .who = f->who, .s = &s, .hdrs = &hdrs, .note = note
	};
	size_t len = rfs_iov_len(iov, iovcnt);
	char range[64];
	long status = 0;
	int rc;

	if (len == 0)
		return 0;
	snprintf(range, sizeof(range), "bytes=%llu-%llu",
		 (unsigned long long)off, (unsigned long long)(off + len - 1));
	x.range = range;
	s.want = len;
	rc = transfer(&x, f->url, &status);
	if (!rc)
		rc = check_answer(status, &cr, &s, off, file_size);
	transfer_done(&x);
	return rc ? rc : (ssize_t)len;
}

static ssize_t http_preadv(struct rfs_transport *base, struct rfs_tfile *f,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   uint64_t file_size, struct rfs_xfer_note *note)
{
	note_reset(note);
	return pread_one((struct http_transport *)base, f, iov, iovcnt, off,
			 file_size, note);
}

/* "scheme://host:port" of @url, what multi-range answers are kept by. */
static void origin_of(const char *url, char *out, size_t outlen)
{
	const char *p = strstr(url, "://");
	size_t n =
		p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/?#") : strlen(url);

	snprintf(out, outlen, "%.*s", (int)n, url);
}

static bool vector_refused(struct http_transport *t, const char *origin)
{
	bool yes = false;

	pthread_mutex_lock(&t->lock);
	for (unsigned i = 0; i < t->nno_vector && i < NO_VECTOR_MAX && !yes;
	     i++)
		yes = !strcmp(t->no_vector[i], origin);
	pthread_mutex_unlock(&t->lock);
	return yes;
}

static void refuse_vector(struct http_transport *t, const char *origin)
{
	if (vector_refused(t, origin))
		return;
	pthread_mutex_lock(&t->lock);
	snprintf(t->no_vector[t->nno_vector++ % NO_VECTOR_MAX], ORIGIN_MAX,
		 "%s", origin);
	pthread_mutex_unlock(&t->lock);
	rfs_log_limited(LOG_NOTICE, origin,
			"%s answers multi-range requests with other than "
			"multipart/byteranges: its ranges are read one by one",
			origin);
}

/*
 * How many of the @n segments of @segs go into one request, and their
 * Range value into @range: at most VEC_RANGES_MAX ranges and
 * VEC_RANGE_BYTES bytes of header.
 */
static size_t vec_chunk(const struct rfs_tseg *segs, size_t n, char *range,
			size_t rlen)
{
	size_t k = 0, used = (size_t)snprintf(range, rlen, "bytes=");

	for (; k < n && k < VEC_RANGES_MAX; k++) {
		char one[48];
		int w = snprintf(
			one, sizeof(one), "%s%llu-%llu", k ? "," : "",
			(unsigned long long)segs[k].off,
			(unsigned long long)(segs[k].off + segs[k].len - 1));

		if (used + (size_t)w >= rlen)
			break;
		memcpy(range + used, one, (size_t)w + 1);
		used += (size_t)w;
	}
	return k;
}

/* One multi-range GET of the @n segments of @segs (n >= 2). */
static int readv_one(struct http_transport *t, struct rfs_tfile *f,
		     const struct rfs_tseg *segs, size_t n, const char *range,
		     uint64_t file_size, struct rfs_xfer_note *note)
{
	struct rfs_http_hdr h[1] = { { .name = "Content-Type" } };
	struct rfs_http_hdrs hdrs = { h, 1 };
	struct sink s = { .go_on = note->go_on,
			  .go_on_arg = note->go_on_arg,
			  .deadline = note->deadline,
			  .vec = true,
			  .segs = segs,
			  .nsegs = n,
			  .file_size = file_size,
			  .ctype = &h[0] };
	struct xfer x = { .t = t,
			  .who = f->who,
			  .range = range,
			  .s = &s,
			  .hdrs = &hdrs,
			  .note = note };
	long status = 0;
	int rc = transfer(&x, f->url, &status);

	if (!rc)
		rc = check_vec_answer(status, &s);
	if (s.mp_ready)
		rfs_mp_release(&s.mp);
	transfer_done(&x);
	return rc;
}

static ssize_t http_readv(struct rfs_transport *base, struct rfs_tfile *f,
			  const struct rfs_tseg *segs, size_t n,
			  uint64_t file_size, struct rfs_xfer_note *note)
{
	struct http_transport *t = (struct http_transport *)base;
	char origin[ORIGIN_MAX], range[VEC_RANGE_BYTES];
	ssize_t total = 0;
	int rc = 0;

	note_reset(note);
	origin_of(f->url, origin, sizeof(origin));
	if (n > 1 && vector_refused(t, origin))
		return -EOPNOTSUPP;
	for (size_t i = 0; i < n && !rc;) {
		size_t k = vec_chunk(segs + i, n - i, range, sizeof(range));
		struct iovec iov = { segs[i].buf, segs[i].len };
		ssize_t got = 0;

		if (k == 1) /* a plain range: nothing to group */
			got = pread_one(t, f, &iov, 1, segs[i].off, file_size,
					note);
		else
			rc = readv_one(t, f, segs + i, k, range, file_size,
				       note);
		for (size_t j = i; !rc && got >= 0 && j < i + k; j++)
			total += (ssize_t)segs[j].len;
		rc = got < 0 ? (int)got : rc;
		i += k;
	}
	if (rc == -EOPNOTSUPP)
		refuse_vector(t, origin);
	return rc ? rc : total;
}

static const char *const http_schemes[] = { "https", "davs", "http", "dav",
					    NULL };

/* A PFN may hold what a URL may not (spaces, '#', UTF-8): encoded. */
static int http_normalize(struct rfs_buf *out, const char *pfn)
{
	return rfs_url_normalize(out, pfn);
}

const struct rfs_transport_ops rfs_http_transport_ops = {
	.name = "http",
	.schemes = http_schemes,
	.caps = RFS_TP_TLS | RFS_TP_VECTOR,
	.global_init = rfs_http_global_init,
	.global_cleanup = rfs_http_global_cleanup,
	.version = rfs_http_version,
	.open = http_open,
	.normalize = http_normalize,
	.preadv = http_preadv,
	.readv = http_readv,
	.close = http_close,
};
