#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "authz/identity.h"
#include "authz/token.h"
#include "catalog/catalog.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/http_client.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

/* Rucio's schema caps one bulk request at 1000 DIDs. */
#define BULK_MAX 1000
#define ACCEPT_STREAM "application/x-json-stream"
#define ACCEPT_JSON "application/json"

struct rfs_catalog {
	const struct rfs_conf *conf;
	struct rfs_http *http;
	struct rfs_strv schemes; /* asked of /replicas/list */

	/* atomic: until when the catalogue counts as unreachable (monotonic
	 * seconds); requests meanwhile fail at once, so an offline site
	 * works from its cache without a timeout per operation */
	double offline_until;
	/* atomic: when the last userpass login's token expires, for
	 * ruciofs --check; 0: none yet */
	time_t login_expires;
	/* atomic: when the last contact found it out of reach, 0 once one
	 * reached it: the offline and online events */
	double down_since;
	/* atomic, for metrics */
	uint64_t calls[RFS_CAT_CALLS];
	uint64_t errors[RFS_CAT_CALLS];
};

/*
 * The offline and online events: only transitions, so a site offline
 * for a day logs two lines, not one per retry. @why: what the contact
 * met (curl's words), NULL when it got an answer.
 */
static void note_transition(struct rfs_catalog *cat, bool unreachable,
			    const char *why)
{
	double now = rfs_mono_now(), was, since = unreachable ? now : 0;
	char host[512];

	__atomic_exchange(&cat->down_since, &since, &was, __ATOMIC_RELAXED);
	if ((was > 0) == unreachable)
		return;
	rfs_url_for_log(host, sizeof(host), cat->conf->rucio_host);
	if (unreachable)
		rfs_event(LOG_WARNING, "offline",
			  "the catalogue at %s is out of reach (%s); serving "
			  "from the cache, trying again every %.0f s",
			  host, why ? why : "no answer",
			  cat->conf->offline_retry);
	else
		rfs_event(LOG_INFO, "online",
			  "the catalogue at %s answers again, after %.0f s",
			  host, now - was);
}

/*
 * Records the outcome of a contact: a server not reached at all (no
 * connection; a slow or broken answer does not count) opens the window.
 */
static void note_contact(struct rfs_catalog *cat, bool unreachable,
			 const char *why)
{
	double until =
		unreachable ? rfs_mono_now() + cat->conf->offline_retry : 0;

	__atomic_store(&cat->offline_until, &until, __ATOMIC_RELAXED);
	note_transition(cat, unreachable, why);
}

bool rfs_catalog_unreachable(struct rfs_catalog *cat)
{
	double since;

	__atomic_load(&cat->down_since, &since, __ATOMIC_RELAXED);
	return since > 0;
}

const char *rfs_catalog_call_name(enum rfs_catalog_call k)
{
	static const char *const names[RFS_CAT_CALLS] = {
		[RFS_CAT_LISTING] = "listing",
		[RFS_CAT_META] = "meta",
		[RFS_CAT_REPLICAS] = "replicas",
		[RFS_CAT_AUTH] = "auth",
	};

	return k < RFS_CAT_CALLS ? names[k] : "other";
}

static void count_call(struct rfs_catalog *cat, enum rfs_catalog_call k,
		       bool failed)
{
	__atomic_add_fetch(&cat->calls[k], 1, __ATOMIC_RELAXED);
	if (failed)
		__atomic_add_fetch(&cat->errors[k], 1, __ATOMIC_RELAXED);
}

void rfs_catalog_counts(struct rfs_catalog *cat, struct rfs_catalog_counts *out)
{
	for (int k = 0; k < RFS_CAT_CALLS; k++) {
		out->calls[k] =
			__atomic_load_n(&cat->calls[k], __ATOMIC_RELAXED);
		out->errors[k] =
			__atomic_load_n(&cat->errors[k], __ATOMIC_RELAXED);
	}
}

static bool offline(struct rfs_catalog *cat)
{
	double until;

	__atomic_load(&cat->offline_until, &until, __ATOMIC_RELAXED);
	return until > 0 && rfs_mono_now() < until;
}

bool rfs_catalog_offline(struct rfs_catalog *cat)
{
	return offline(cat);
}

int rfs_catalog_new(struct rfs_catalog **out, const struct rfs_conf *conf)
{
	struct rfs_catalog *cat = calloc(1, sizeof(*cat));
	struct rfs_http_opts hopts = {
		.ca_cert = conf->ca_cert,
		.connect_timeout = conf->connect_timeout,
		.io_timeout = conf->io_timeout,
		.low_speed_limit = (long)conf->low_speed_limit,
		.user_agent = "ruciofs/" PACKAGE_VERSION,
	};
	int rc;

	if (!cat)
		return -ENOMEM;
	cat->conf = conf;
	rfs_strv_init(&cat->schemes);
	rc = rfs_catalog_set_schemes(cat, &conf->schemes);
	if (!rc)
		rc = rfs_http_new(&cat->http, &hopts);
	if (rc) {
		rfs_catalog_free(cat);
		return rc;
	}
	*out = cat;
	return 0;
}

void rfs_catalog_free(struct rfs_catalog *cat)
{
	if (!cat)
		return;
	rfs_http_free(cat->http);
	rfs_strv_release(&cat->schemes);
	free(cat);
}

/* Generous: a big listing at a slow but steady rate still fits. */
static long request_timeout_ms(const struct rfs_catalog *cat)
{
	double t = 10 * cat->conf->io_timeout;

	return (long)((t < 120 ? 120 : t) * 1000);
}

/* ---- authentication ---- */

static int no_expect(struct curl_slist **l)
{
	struct curl_slist *nl = curl_slist_append(*l, "Expect:");

	if (!nl)
		return -ENOMEM;
	*l = nl;
	return 0;
}

static int add_header(struct curl_slist **l, const char *name,
		      const char *value)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *h = malloc(n);
	struct curl_slist *nl;

	if (!h)
		return -ENOMEM;
	snprintf(h, n, "%s: %s", name, value);
	nl = curl_slist_append(*l, h);
	rfs_wipe(h, n); /* curl copied it; it may be a secret */
	free(h);
	if (!nl)
		return -ENOMEM;
	*l = nl;
	return 0;
}

/* Wipes header values (tokens, passwords) before freeing the list. */
static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		rfs_wipe(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

static int userpass_headers(const struct rfs_conf *conf, struct curl_slist **h)
{
	int rc = add_header(h, "X-Rucio-Username", conf->username);

	if (!rc)
		rc = add_header(h, "X-Rucio-Password", conf->password);
	if (!rc && conf->account)
		rc = add_header(h, "X-Rucio-Account", conf->account);
	if (!rc && conf->vo)
		rc = add_header(h, "X-Rucio-VO", conf->vo);
	if (!rc)
		rc = add_header(h, "X-Rucio-AppID", "ruciofs");
	if (!rc)
		rc = add_header(h, "Accept", "*/*");
	return rc;
}

enum {
	H_TOKEN,
	H_EXPIRES,
	H_ACCOUNTS,
	H_EXC_CLASS,
	H_EXC_MSG,
	H_LOCATION,
	H_COUNT
};

static void init_hdrs(struct rfs_http_hdr *h)
{
	static const char *const names[H_COUNT] = {
		"X-Rucio-Auth-Token",	 "X-Rucio-Auth-Token-Expires",
		"X-Rucio-Auth-Accounts", "ExceptionClass",
		"ExceptionMessage",	 "Location"
	};

	memset(h, 0, sizeof(*h) * H_COUNT);
	for (int i = 0; i < H_COUNT; i++)
		h[i].name = names[i];
}

/*
 * When to log in again: a quarter of the lifetime early, at most 5 min.
 * An expiry already past says our clock and the server's disagree: then
 * Rucio's fixed one-hour lifetime is assumed.
 */
static time_t renew_time(time_t now, time_t expires)
{
	time_t life = expires > now ? expires - now : 3600;

	if (expires <= now)
		expires = now + life;
	time_t early = life / 4 < 300 ? life / 4 : 300;

	return expires - early;
}

static int login_result(struct rfs_catalog *cat, long status,
			struct rfs_http_hdr *h, char **token, time_t *renew)
{
	time_t now = time(NULL), expires;

	if (status == 206) {
		rfs_log_limited(
			LOG_ERR, "login",
			"catalogue login: identity '%s' maps to several "
			"accounts (%s): set account= in rucio.cfg or -o",
			cat->conf->username,
			h[H_ACCOUNTS].seen ? h[H_ACCOUNTS].value : "?");
		return -EACCES;
	}
	if (status != 200) {
		rfs_log_limited(
			LOG_ERR, "login",
			"catalogue login as '%s' failed: HTTP %ld %s: %s",
			cat->conf->username, status,
			h[H_EXC_CLASS].seen ? h[H_EXC_CLASS].value : "",
			h[H_EXC_MSG].seen ? h[H_EXC_MSG].value : "");
		return status == 401 || status == 403
			       ? -EACCES
			       : rfs_errno_from_http(status);
	}
	if (!h[H_TOKEN].seen || !h[H_TOKEN].value[0]) {
		rfs_err("catalogue login: answer carries no token");
		return -EBADMSG;
	}
	if (!h[H_EXPIRES].seen || rfs_parse_time(h[H_EXPIRES].value, &expires))
		expires = now + 3600; /* Rucio's fixed lifetime */
	*token = strdup(h[H_TOKEN].value);
	*renew = renew_time(now, expires);
	__atomic_store_n(&cat->login_expires, expires, __ATOMIC_RELAXED);
	rfs_wipe(h[H_TOKEN].value, sizeof(h[H_TOKEN].value));
	return *token ? 0 : -ENOMEM;
}

/*
 * One GET that carries no identity's token (the login itself, /ping):
 * @headers and the answer's @hdrs and @body are the caller's. Returns
 * curl's code; @status, @down (out of reach) and @err (curl's code as an
 * errno) as the request ended.
 */
static CURLcode bare_get(struct rfs_catalog *cat, const char *url,
			 struct curl_slist *headers, struct rfs_http_hdrs *hdrs,
			 struct rfs_buf *body, long *status, bool *down,
			 int *err)
{
	CURLcode rc;
	CURL *h;

	h = rfs_http_get(cat->http);
	if (!h) {
		*err = -ENOMEM;
		return CURLE_OUT_OF_MEMORY;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rfs_http_hdr_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rfs_http_buf_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, request_timeout_ms(cat));
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	*err = rc ? rfs_http_errno(h, rc, down) : 0;
	rfs_http_put(cat->http, h);
	return rc;
}

int rfs_catalog_userpass(struct rfs_catalog *cat, char **token, time_t *renew)
{
	struct rfs_http_hdr hdr[H_COUNT];
	struct rfs_http_hdrs hdrs = { hdr, H_COUNT };
	struct curl_slist *headers = NULL;
	char url[2048], shown[512];
	struct rfs_buf body;
	long status = 0;
	bool down = false;
	CURLcode cc;
	int rc, err;

	init_hdrs(hdr);
	rfs_buf_init(&body, 64 * 1024);
	snprintf(url, sizeof(url), "%s/auth/userpass", cat->conf->auth_host);
	rc = userpass_headers(cat->conf, &headers);
	if (rc) {
		free_headers(headers);
		return rc;
	}
	cc = bare_get(cat, url, headers, &hdrs, &body, &status, &down, &err);
	free_headers(headers);
	rfs_buf_release(&body);
	if (cc) {
		rfs_url_for_log(shown, sizeof(shown), url);
		rfs_log_limited(LOG_ERR, "login",
				"catalogue login at %s failed: %s", shown,
				curl_easy_strerror(cc));
		note_contact(cat, down, curl_easy_strerror(cc));
		rc = err;
	} else {
		note_contact(cat, false, NULL);
		rc = login_result(cat, status, hdr, token, renew);
	}
	count_call(cat, RFS_CAT_AUTH, rc != 0);
	rfs_wipe(hdr, sizeof(hdr));
	return rc;
}

/* ---- requests ---- */

struct request {
	struct rfs_identity *who; /* whose token goes with it */
	const char *method;	  /* "GET" or "POST" */
	const char *path;	  /* escaped, starting with '/' */
	const char *accept;
	const char *body; /* JSON, for POST */
	struct rfs_buf *out;
};

static void log_http_error(const struct request *rq, long status,
			   const struct rfs_http_hdr *hdr)
{
	int level = status == 404 ? LOG_DEBUG : LOG_ERR;

	rfs_log(level, "catalogue: %s %s: HTTP %ld %s%s%s", rq->method,
		rq->path, status,
		hdr[H_EXC_CLASS].seen ? hdr[H_EXC_CLASS].value : "",
		hdr[H_EXC_MSG].seen ? ": " : "",
		hdr[H_EXC_MSG].seen ? hdr[H_EXC_MSG].value : "");
}

static int perform(struct rfs_catalog *cat, const struct request *rq,
		   const char *token, long *status, struct rfs_http_hdr *hdr)
{
	struct rfs_http_hdrs hdrs = { hdr, H_COUNT };
	struct curl_slist *headers = NULL;
	size_t n = strlen(cat->conf->rucio_host) + strlen(rq->path) + 1;
	char *url = malloc(n);
	bool down = false;
	CURL *h = NULL;
	int rc, err;

	init_hdrs(hdr);
	rfs_buf_reset(rq->out);
	rc = url ? add_header(&headers, "X-Rucio-Auth-Token", token) : -ENOMEM;
	if (!rc)
		rc = add_header(&headers, "Accept", rq->accept);
	if (!rc && rq->body)
		rc = add_header(&headers, "Content-Type", "application/json");
	/* curl would wait for a "100 Continue" before a big body: one more
	 * round trip per bulk request, and 40 ms of delayed ACK locally */
	if (!rc && rq->body)
		rc = no_expect(&headers);
	if (!rc)
		h = rfs_http_get(cat->http);
	if (!h) {
		free(url);
		free_headers(headers);
		return rc ? rc : -ENOMEM;
	}
	snprintf(url, n, "%s%s", cat->conf->rucio_host, rq->path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, rfs_http_hdr_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rfs_http_buf_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, rq->out);
	/* No redirects: curl would carry X-Rucio-Auth-Token (a custom
	 * header) to any host. Paths already end in the slash Rucio's 308s
	 * ask for; a 3xx is an error. An overall bound on top of the
	 * low-speed limit: a trickling answer cannot hold a worker long. */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, request_timeout_ms(cat));
	if (rq->body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	err = rc ? rfs_http_errno(h, rc, &down) : 0;
	rfs_http_put(cat->http, h);
	free_headers(headers);
	note_contact(cat, down, rc ? curl_easy_strerror(rc) : NULL);
	/* an answer over max_answer is logged once, by request() */
	if (rc && rc != CURLE_WRITE_ERROR)
		rfs_log_limited(LOG_ERR, rq->path, "catalogue: %s %s: %s",
				rq->method, rq->path, curl_easy_strerror(rc));
	free(url);
	return err;
}

/* What a request asks, by its path. */
static enum rfs_catalog_call kind_of(const struct request *rq)
{
	if (!strncmp(rq->path, "/replicas/", 10))
		return RFS_CAT_REPLICAS;
	if (!strncmp(rq->path, "/dids/bulkmeta", 14))
		return RFS_CAT_META;
	return RFS_CAT_LISTING;
}

/*
 * @rq as its identity, once more after a 401. With @location, a 3xx
 * answer is taken too, its Location copied there (not followed).
 */
static int request_at(struct rfs_catalog *cat, const struct request *rq,
		      char *location, size_t location_len)
{
	bool file = !rfs_identity_logs_in(rq->who);
	const char *again =
		file ? "looking for a new bearer token" : "logging in again";
	struct rfs_http_hdr hdr[H_COUNT];
	long status = 0;
	unsigned gen;
	char *token;
	int rc;

	if (offline(cat))
		return -EHOSTUNREACH;
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = rfs_identity_catalog_token(rq->who, &token, &gen);
		if (rc)
			return rc;
		if (attempt && file)
			rfs_dbg("catalogue: bearer token from %s",
				rfs_identity_where(rq->who));
		rc = perform(cat, rq, token, &status, hdr);
		rfs_token_free(token);
		if (rc)
			count_call(cat, kind_of(rq), true);
		if (rc == -EFBIG) {
			rfs_log_limited(
				LOG_ERR, rq->path,
				"catalogue: %s %s: answer larger than "
				"max_answer (%llu bytes)",
				rq->method, rq->path,
				(unsigned long long)cat->conf->max_answer);
			return -EIO;
		}
		if (rc)
			return rc;
		if (status != 401)
			break;
		rfs_dbg("catalogue: %s %s: HTTP 401 %s%s%s; %s", rq->method,
			rq->path,
			hdr[H_EXC_CLASS].seen ? hdr[H_EXC_CLASS].value : "",
			hdr[H_EXC_MSG].seen ? ": " : "",
			hdr[H_EXC_MSG].seen ? hdr[H_EXC_MSG].value : "",
			attempt ? "refused again" : again);
		/* expired early or revoked: a new one, once */
		rfs_identity_refused(rq->who, gen);
	}
	rfs_dbg("catalogue: %s %s%s%s: HTTP %ld, %zu bytes", rq->method,
		rq->path, rq->body ? " " : "", rq->body ? rq->body : "", status,
		rq->out->len);
	count_call(cat, kind_of(rq),
		   (status < 200 || status >= 300) && status != 404);
	if (status >= 200 && status < 300)
		return 0;
	if (location && status >= 300 && status < 400 && hdr[H_LOCATION].seen) {
		snprintf(location, location_len, "%s", hdr[H_LOCATION].value);
		return 0;
	}
	log_http_error(rq, status, hdr);
	return rfs_errno_from_http(status);
}

static int request(struct rfs_catalog *cat, const struct request *rq)
{
	return request_at(cat, rq, NULL, 0);
}

/* Logs a malformed answer once and turns it into EIO. */
static int bad_answer(const struct request *rq, int rc)
{
	if (rc == -ENOMEM)
		return rc;
	rfs_log_limited(LOG_ERR, rq->path,
			"catalogue: malformed answer to %s %s", rq->method,
			rq->path);
	return -EIO;
}

static int did_path(struct rfs_buf *p, const char *scope, const char *name,
		    const char *suffix)
{
	int rc = rfs_buf_addstr(p, "/dids/");

	if (!rc)
		rc = rfs_url_escape(p, scope);
	if (!rc)
		rc = rfs_buf_addstr(p, "/");
	if (!rc && name)
		rc = rfs_url_escape(p, name);
	if (!rc && suffix)
		rc = rfs_buf_addstr(p, suffix);
	return rc;
}

/* One warning per answer for the records its parser left out. */
static void log_skips(const struct request *rq,
		      const struct rfs_parse_skips *sk)
{
	if (sk->nul_names)
		rfs_log_limited(LOG_WARNING, "nul-name",
				"catalogue: %s: %zu DIDs with a NUL byte in "
				"their name are not shown",
				rq->path, sk->nul_names);
	if (sk->malformed == 1)
		rfs_log_limited(LOG_WARNING, rq->path,
				"catalogue: %s %s: record '%s' skipped: bad "
				"or missing '%s'",
				rq->method, rq->path, sk->first, sk->field);
	else if (sk->malformed)
		rfs_log_limited(LOG_WARNING, rq->path,
				"catalogue: %s %s: %zu malformed records "
				"skipped, the first '%s' (bad or missing '%s')",
				rq->method, rq->path, sk->malformed, sk->first,
				sk->field);
}

/* A DID stream: malformed records are skipped (and logged), not the
 * whole answer. */
static int parse_dids(const struct request *rq, struct rfs_did_list *out)
{
	struct rfs_parse_skips sk;
	const struct rfs_buf *b = rq->out;
	int rc = rfs_parse_dids(b->data ? b->data : "", b->len, out, &sk);

	if (rc)
		return bad_answer(rq, rc);
	log_skips(rq, &sk);
	return 0;
}

static int get_dids(struct rfs_catalog *cat, struct rfs_identity *who,
		    const char *path, struct rfs_did_list *out)
{
	struct rfs_buf body;
	struct request rq = { who, "GET", path, ACCEPT_STREAM, NULL, &body };
	int rc;

	rfs_buf_init(&body, cat->conf->max_answer);
	rc = request(cat, &rq);
	if (!rc)
		rc = parse_dids(&rq, out);
	rfs_buf_release(&body);
	return rc;
}

int rfs_catalog_list_scopes(struct rfs_catalog *cat, struct rfs_identity *who,
			    struct rfs_did_list *out)
{
	struct rfs_buf body;
	struct request rq = {
		who, "GET", "/scopes/", ACCEPT_JSON, NULL, &body
	};
	int rc;

	rfs_buf_init(&body, cat->conf->max_answer);
	rc = request(cat, &rq);
	if (!rc) {
		rc = rfs_parse_scopes(body.data ? body.data : "", body.len,
				      out);
		if (rc)
			rc = bad_answer(&rq, rc);
	}
	rfs_buf_release(&body);
	return rc;
}

/* GET /dids/{scope}/[{name}{suffix}] as a list of DIDs. */
static int list_dids(struct rfs_catalog *cat, struct rfs_identity *who,
		     const char *scope, const char *name, const char *suffix,
		     struct rfs_did_list *out)
{
	struct rfs_buf path;
	int rc;

	rfs_buf_init(&path, 4096);
	rc = did_path(&path, scope, name, suffix);
	if (!rc)
		rc = get_dids(cat, who, path.data, out);
	rfs_buf_release(&path);
	return rc;
}

int rfs_catalog_list_top(struct rfs_catalog *cat, struct rfs_identity *who,
			 const char *scope, struct rfs_did_list *out)
{
	return list_dids(cat, who, scope, NULL, NULL, out);
}

int rfs_catalog_list_content(struct rfs_catalog *cat, struct rfs_identity *who,
			     const char *scope, const char *name,
			     struct rfs_did_list *out)
{
	return list_dids(cat, who, scope, name, "/dids", out);
}

static char *dids_body(const struct rfs_did_list *l, size_t from, size_t n,
		       const char *extra_key, json_t *extra)
{
	json_t *root = json_object(), *arr = json_array();
	char *s = NULL;

	if (!root || !arr)
		goto out;
	for (size_t i = from; i < from + n; i++) {
		json_t *d = json_pack("{s:s,s:s}", "scope", l->v[i].scope,
				      "name", l->v[i].name);

		if (!d || json_array_append_new(arr, d))
			goto out;
	}
	if (json_object_set(root, "dids", arr))
		goto out;
	if (extra_key && json_object_set(root, extra_key, extra))
		goto out;
	s = json_dumps(root, JSON_COMPACT);
out:
	json_decref(arr);
	json_decref(root);
	return s;
}

static bool same_did(const struct rfs_did_rec *a, const struct rfs_did_rec *b)
{
	return !strcmp(a->scope, b->scope) && !strcmp(a->name, b->name);
}

/*
 * @key in @l, looked for first at @hint: answers come in the order asked
 * in practice, and a search of every one for each would make a 10,000
 * file dataset cost 10^7 comparisons.
 */
static const struct rfs_did_rec *find_rec(const struct rfs_did_list *l,
					  const struct rfs_did_rec *key,
					  size_t hint)
{
	if (hint < l->n && same_did(&l->v[hint], key))
		return &l->v[hint];
	for (size_t i = 0; i < l->n; i++)
		if (same_did(&l->v[i], key))
			return &l->v[i];
	return NULL;
}

/* Metadata answers may come in any order; match each by scope:name. */
static void merge_meta(struct rfs_did_list *l, size_t from, size_t n,
		       const struct rfs_did_list *meta)
{
	for (size_t i = from; i < from + n; i++) {
		struct rfs_did_rec *r = &l->v[i];
		const struct rfs_did_rec *m = find_rec(meta, r, i - from);

		if (!m)
			continue;
		r->created = m->created;
		r->updated = m->updated;
		if (!r->has_bytes && m->has_bytes) {
			r->bytes = m->bytes;
			r->has_bytes = true;
		}
		if (!r->adler32[0])
			memcpy(r->adler32, m->adler32, sizeof(r->adler32));
		if (!r->md5[0])
			memcpy(r->md5, m->md5, sizeof(r->md5));
		if (!r->account[0])
			memcpy(r->account, m->account, sizeof(r->account));
		if (r->type == RFS_DID_UNKNOWN)
			r->type = m->type;
	}
}

static int bulkmeta_batch(struct rfs_catalog *cat, struct rfs_identity *who,
			  struct rfs_did_list *l, size_t from, size_t n)
{
	struct rfs_buf body;
	struct request rq = { who,	     "POST", "/dids/bulkmeta",
			      ACCEPT_STREAM, NULL,   &body };
	struct rfs_did_list meta;
	char *req = dids_body(l, from, n, "inherit", json_false());
	int rc;

	if (!req)
		return -ENOMEM;
	rq.body = req;
	rfs_buf_init(&body, cat->conf->max_answer);
	rc = request(cat, &rq);
	if (!rc)
		rc = parse_dids(&rq, &meta);
	if (!rc) {
		merge_meta(l, from, n, &meta);
		rfs_did_list_release(&meta);
	}
	rfs_buf_release(&body);
	free(req);
	return rc;
}

/* Batches of one listing's metadata in flight at once. */
#define BULK_PAR 4

struct fill_job {
	struct rfs_catalog *cat;
	struct rfs_identity *who;
	struct rfs_did_list *l; /* each batch writes its own records only */
	size_t next;		/* atomic: the next batch's first record */
	int rc;			/* atomic: the first error */
};

static void *fill_worker(void *arg)
{
	struct fill_job *j = arg;
	size_t from, n;
	int rc, none;

	while (!__atomic_load_n(&j->rc, __ATOMIC_RELAXED)) {
		from = __atomic_fetch_add(&j->next, BULK_MAX, __ATOMIC_RELAXED);
		if (from >= j->l->n)
			break;
		n = j->l->n - from < BULK_MAX ? j->l->n - from : BULK_MAX;
		rc = bulkmeta_batch(j->cat, j->who, j->l, from, n);
		none = 0;
		if (rc)
			__atomic_compare_exchange_n(&j->rc, &none, rc, false,
						    __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * A listing of 10,000 entries is ten batches: sent side by side on
 * kept-alive connections, they cost the time of three, on a server with
 * several workers (Rucio runs many). The caller's thread works too.
 */
int rfs_catalog_fill_meta(struct rfs_catalog *cat, struct rfs_identity *who,
			  struct rfs_did_list *l)
{
	struct fill_job j = { cat, who, l, 0, 0 };
	size_t batches = (l->n + BULK_MAX - 1) / BULK_MAX, nt = 0;
	pthread_t t[BULK_PAR - 1];

	while (nt < BULK_PAR - 1 && nt + 1 < batches &&
	       pthread_create(&t[nt], NULL, fill_worker, &j) == 0)
		nt++;
	fill_worker(&j);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	return j.rc;
}

int rfs_catalog_set_schemes(struct rfs_catalog *cat,
			    const struct rfs_strv *schemes)
{
	int rc = 0;

	rfs_strv_release(&cat->schemes);
	for (size_t i = 0; i < schemes->n && !rc; i++)
		rc = rfs_strv_push(&cat->schemes, schemes->v[i]);
	return rc;
}

static char *replicas_body(const struct rfs_catalog *cat,
			   const struct rfs_did_rec *dids, size_t n)
{
	const struct rfs_conf *conf = cat->conf;
	json_t *root, *schemes = json_array(), *arr = json_array();
	char *s = NULL;

	for (size_t i = 0; schemes && i < cat->schemes.n; i++)
		json_array_append_new(schemes, json_string(cat->schemes.v[i]));
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_pack("{s:s,s:s}", "scope",
							 dids[i].scope, "name",
							 dids[i].name)))
			break;
	root = json_pack("{s:o,s:o}", "dids", arr, "schemes", schemes);
	if (root && json_array_size(arr) != n)
		goto out;
	if (root && conf->replica_sort)
		json_object_set_new(root, "sort",
				    json_string(conf->replica_sort));
	if (root && conf->rse_expression)
		json_object_set_new(root, "rse_expression",
				    json_string(conf->rse_expression));
	if (root)
		s = json_dumps(root, JSON_COMPACT);
out:
	json_decref(root);
	return s;
}

int rfs_catalog_list_replicas_many(struct rfs_catalog *cat,
				   struct rfs_identity *who,
				   const struct rfs_did_rec *dids, size_t n,
				   struct rfs_replica_list *out)
{
	struct rfs_buf body;
	struct request rq = { who,	     "POST", "/replicas/list",
			      ACCEPT_STREAM, NULL,   &body };
	char *req;
	int rc;

	if (n == 0 || n > RFS_REPLICAS_MANY_MAX)
		return -EINVAL;
	req = replicas_body(cat, dids, n);
	if (!req)
		return -ENOMEM;
	rq.body = req;
	rfs_buf_init(&body, cat->conf->max_answer);
	rc = request(cat, &rq);
	if (!rc) {
		rc = rfs_parse_replicas(body.data ? body.data : "", body.len,
					out);
		if (rc)
			rc = bad_answer(&rq, rc);
	}
	rfs_buf_release(&body);
	free(req);
	return rc;
}

int rfs_catalog_list_replicas(struct rfs_catalog *cat, struct rfs_identity *who,
			      const char *scope, const char *name,
			      struct rfs_replica_list *out)
{
	struct rfs_did_rec did = { .scope = (char *)scope,
				   .name = (char *)name };

	return rfs_catalog_list_replicas_many(cat, who, &did, 1, out);
}

int rfs_catalog_list_files(struct rfs_catalog *cat, struct rfs_identity *who,
			   const char *scope, const char *name,
			   struct rfs_did_list *out)
{
	int rc = list_dids(cat, who, scope, name, "/files", out);

	for (size_t i = 0; !rc && i < out->n; i++)
		out->v[i].type = RFS_DID_FILE;
	return rc;
}

time_t rfs_catalog_login_expires(struct rfs_catalog *cat)
{
	return __atomic_load_n(&cat->login_expires, __ATOMIC_RELAXED);
}

int rfs_catalog_ping(struct rfs_catalog *cat, char *version, size_t len)
{
	struct rfs_http_hdr hdr[H_COUNT];
	struct rfs_http_hdrs hdrs = { hdr, H_COUNT };
	struct curl_slist *headers = NULL;
	char url[2048];
	struct rfs_buf body;
	long status = 0;
	bool down = false;
	int rc;

	init_hdrs(hdr);
	rfs_buf_init(&body, 64 * 1024);
	snprintf(url, sizeof(url), "%s/ping", cat->conf->rucio_host);
	rc = add_header(&headers, "Accept", ACCEPT_JSON);
	if (!rc)
		bare_get(cat, url, headers, &hdrs, &body, &status, &down, &rc);
	free_headers(headers);
	if (!rc && (status < 200 || status >= 300))
		rc = rfs_errno_from_http(status);
	else if (!rc)
		rc = rfs_parse_ping(body.data ? body.data : "", body.len,
				    version, len);
	rfs_buf_release(&body);
	return rc;
}

int rfs_catalog_whoami(struct rfs_catalog *cat, struct rfs_identity *who,
		       char *account, size_t len)
{
	char location[512] = "";
	struct rfs_buf body;
	/* a 303 to /accounts/NAME: not followed (the token would go along),
	 * the name is read off the Location */
	struct request rq = { who,	   "GET", "/accounts/whoami",
			      ACCEPT_JSON, NULL,  &body };
	int rc;

	rfs_buf_init(&body, 64 * 1024);
	rc = request_at(cat, &rq, location, sizeof(location));
	if (!rc)
		rc = rfs_parse_whoami(location, body.data ? body.data : "",
				      body.len, account, len);
	if (rc == -EBADMSG)
		rc = bad_answer(&rq, rc);
	rfs_buf_release(&body);
	return rc;
}
