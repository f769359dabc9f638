#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "catalog/parse.h"
#include "util/str.h"
#include "util/banned.h"

/* One line of a json-stream may not exceed this (a DID row is < 4 KiB). */
#define MAX_LINE (1024 * 1024)

void rfs_did_rec_release(struct rfs_did_rec *r)
{
	free(r->scope);
	free(r->name);
	memset(r, 0, sizeof(*r));
}

int rfs_did_rec_copy(struct rfs_did_rec *dst, const struct rfs_did_rec *src)
{
	*dst = *src;
	dst->scope = src->scope ? strdup(src->scope) : NULL;
	dst->name = src->name ? strdup(src->name) : NULL;
	if ((src->scope && !dst->scope) || (src->name && !dst->name)) {
		rfs_did_rec_release(dst);
		return -ENOMEM;
	}
	return 0;
}

void rfs_did_list_init(struct rfs_did_list *l)
{
	memset(l, 0, sizeof(*l));
}

void rfs_did_list_release(struct rfs_did_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		rfs_did_rec_release(&l->v[i]);
	free(l->v);
	rfs_did_list_init(l);
}

int rfs_did_list_take(struct rfs_did_list *l, struct rfs_did_rec *r)
{
	if (l->n == l->alloc) {
		size_t na = l->alloc ? l->alloc * 2 : 16;
		struct rfs_did_rec *nv = realloc(l->v, na * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->alloc = na;
	}
	l->v[l->n++] = *r;
	memset(r, 0, sizeof(*r));
	return 0;
}

void rfs_replica_list_release(struct rfs_replica_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct rfs_replica_rec *r = &l->v[i];

		for (size_t j = 0; j < r->npfn; j++) {
			free(r->pfn[j].url);
			free(r->pfn[j].rse);
		}
		free(r->pfn);
		rfs_did_rec_release(&r->did);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

enum rfs_did_type rfs_did_type_parse(const char *s)
{
	if (!strncmp(s, "DIDType.", 8))
		s += 8;
	if (!strcasecmp(s, "FILE") || !strcasecmp(s, "F"))
		return RFS_DID_FILE;
	if (!strcasecmp(s, "DATASET") || !strcasecmp(s, "D"))
		return RFS_DID_DATASET;
	if (!strcasecmp(s, "CONTAINER") || !strcasecmp(s, "C"))
		return RFS_DID_CONTAINER;
	return RFS_DID_UNKNOWN;
}

const char *rfs_did_type_name(enum rfs_did_type t)
{
	switch (t) {
	case RFS_DID_FILE:
		return "FILE";
	case RFS_DID_DATASET:
		return "DATASET";
	case RFS_DID_CONTAINER:
		return "CONTAINER";
	case RFS_DID_SCOPE:
		return "SCOPE";
	case RFS_DID_ROOT:
		return "ROOT";
	default:
		return "UNKNOWN";
	}
}

int rfs_checksum_norm(char *out, size_t width, const char *in)
{
	size_t n = strlen(in);

	if (n == 0 || n > width)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)in[i]))
			return -EINVAL;
	memset(out, '0', width - n);
	for (size_t i = 0; i < n; i++)
		out[width - n + i] = (char)tolower((unsigned char)in[i]);
	out[width] = '\0';
	return 0;
}

/* A string member that must be absent, null, or a C string. */
static int get_str(json_t *obj, const char *key, const char **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EBADMSG;
	if (strlen(json_string_value(v)) != json_string_length(v))
		return -EILSEQ; /* embedded NUL */
	*out = json_string_value(v);
	return 0;
}

static int get_checksum(json_t *obj, const char *key, char *out, size_t w)
{
	const char *s;
	int rc = get_str(obj, key, &s);

	out[0] = '\0';
	if (rc || !s || !*s)
		return rc == -EILSEQ ? -EBADMSG : rc;
	return rfs_checksum_norm(out, w, s) ? -EBADMSG : 0;
}

static int get_time(json_t *obj, const char *key, time_t *out)
{
	const char *s;
	int rc = get_str(obj, key, &s);

	*out = 0;
	if (rc || !s)
		return rc == -EILSEQ ? -EBADMSG : rc;
	return rfs_parse_time(s, out) ? -EBADMSG : 0;
}

static int get_bytes(json_t *obj, struct rfs_did_rec *r)
{
	json_t *v = json_object_get(obj, "bytes");

	r->has_bytes = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EBADMSG;
	r->bytes = (uint64_t)json_integer_value(v);
	r->has_bytes = true;
	return 0;
}

static int get_type(json_t *obj, struct rfs_did_rec *r)
{
	const char *s;
	int rc = get_str(obj, "type", &s);

	if (!rc && !s)
		rc = get_str(obj, "did_type", &s);
	if (rc)
		return -EBADMSG;
	r->type = s ? rfs_did_type_parse(s) : RFS_DID_UNKNOWN;
	return 0;
}

/* Only shown, so one that does not fit is left out, not refused. */
static void get_account(json_t *obj, struct rfs_did_rec *r)
{
	const char *s;

	r->account[0] = '\0';
	if (get_str(obj, "account", &s) == 0 && s &&
	    strlen(s) < sizeof(r->account))
		memcpy(r->account, s, strlen(s) + 1);
}

/* The fields after scope and name; *@bad names the first wrong one. */
static int did_fields(json_t *obj, struct rfs_did_rec *r, const char **bad)
{
	int rc;

	if ((rc = get_type(obj, r)))
		*bad = "type";
	else if ((rc = get_bytes(obj, r)))
		*bad = "bytes";
	else if ((rc = get_checksum(obj, "adler32", r->adler32, 8)))
		*bad = "adler32";
	else if ((rc = get_checksum(obj, "md5", r->md5, 32)))
		*bad = "md5";
	else if ((rc = get_time(obj, "created_at", &r->created)))
		*bad = "created_at";
	else if ((rc = get_time(obj, "updated_at", &r->updated)))
		*bad = "updated_at";
	if (!rc)
		get_account(obj, r);
	return rc;
}

/*
 * Fills @r from a DID object. Returns -EILSEQ for a record to skip (a name
 * with an embedded NUL), -EBADMSG for a malformed one; *@bad then names
 * the field at fault.
 */
static int did_from_json(json_t *obj, struct rfs_did_rec *r, const char **bad)
{
	const char *scope, *name;
	int rc;

	memset(r, 0, sizeof(*r));
	*bad = "not an object";
	if (!json_is_object(obj))
		return -EBADMSG;
	if ((rc = get_str(obj, "scope", &scope)) || !scope || !*scope) {
		*bad = "scope";
		return rc ? rc : -EBADMSG;
	}
	if ((rc = get_str(obj, "name", &name)) || !name || !*name) {
		*bad = "name";
		return rc ? rc : -EBADMSG;
	}
	rc = did_fields(obj, r, bad);
	if (rc)
		return rc;
	r->scope = strdup(scope);
	r->name = strdup(name);
	if (!r->scope || !r->name) {
		rfs_did_rec_release(r);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Calls @fn for each line of a json-stream. Empty lines are allowed (an
 * empty answer is a valid empty stream); the last line may lack its '\n'.
 */
static int each_line(const char *buf, size_t len,
		     int (*fn)(json_t *obj, void *ctx), void *ctx)
{
	size_t pos = 0;
	int rc = 0;

	while (pos < len && !rc) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (buf + pos)) : len - pos;
		json_error_t jerr;
		json_t *obj;

		if (n > MAX_LINE)
			return -EBADMSG;
		if (n && !(n == 1 && buf[pos] == '\r')) {
			obj = json_loadb(
				buf + pos, n,
				JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
			if (!obj)
				return -EBADMSG;
			rc = fn(obj, ctx);
			json_decref(obj);
		}
		pos += n + 1;
	}
	return rc;
}

int rfs_parse_scopes(const char *buf, size_t len, struct rfs_did_list *out)
{
	json_error_t jerr;
	json_t *arr, *v;
	size_t i;
	int rc = 0;

	rfs_did_list_init(out);
	arr = json_loadb(buf, len, JSON_ALLOW_NUL, &jerr);
	if (!arr || !json_is_array(arr)) {
		json_decref(arr);
		return -EBADMSG;
	}
	json_array_foreach(arr, i, v)
	{
		struct rfs_did_rec r = { .type = RFS_DID_SCOPE };

		if (!json_is_string(v) || !json_string_length(v) ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			rc = -EBADMSG;
			break;
		}
		r.scope = strdup(json_string_value(v));
		rc = r.scope ? rfs_did_list_take(out, &r) : -ENOMEM;
		if (rc) {
			rfs_did_rec_release(&r);
			break;
		}
	}
	json_decref(arr);
	if (rc)
		rfs_did_list_release(out);
	return rc;
}

/* A short printable string: what --check shows on a terminal. */
static int copy_word(const char *s, size_t n, char *out, size_t outlen)
{
	if (n == 0 || n >= outlen)
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -EBADMSG;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* The string member @key of the JSON object in @buf. */
static int json_member(const char *buf, size_t len, const char *key, char *out,
		       size_t outlen)
{
	json_t *root = json_loadb(buf, len, JSON_ALLOW_NUL, NULL);
	json_t *v = json_is_object(root) ? json_object_get(root, key) : NULL;
	int rc = json_is_string(v)
			 ? copy_word(json_string_value(v),
				     json_string_length(v), out, outlen)
			 : -EBADMSG;

	json_decref(root);
	return rc;
}

int rfs_parse_ping(const char *buf, size_t len, char *version, size_t vlen)
{
	return json_member(buf, len, "version", version, vlen);
}

int rfs_parse_whoami(const char *location, const char *buf, size_t len,
		     char *account, size_t alen)
{
	const char *p = location ? strstr(location, "/accounts/") : NULL;

	if (p)
		return copy_word(p + 10, strcspn(p + 10, "/?#"), account, alen);
	return json_member(buf, len, "account", account, alen);
}

struct dids_ctx {
	struct rfs_did_list *out;
	struct rfs_parse_skips skips;
};

/* "scope:name" of a malformed record, as far as it has them. */
static void name_record(json_t *obj, char *out, size_t len)
{
	json_t *scope = json_object_get(obj, "scope");
	json_t *name = json_object_get(obj, "name");

	snprintf(out, len, "%s:%s",
		 json_is_string(scope) ? json_string_value(scope) : "?",
		 json_is_string(name) ? json_string_value(name) : "?");
}

/*
 * A line that is not a JSON object is not a DID stream: the answer is
 * malformed. An object with a bad field is one bad record: skipped and
 * counted, its siblings kept.
 */
static int did_line(json_t *obj, void *ctx)
{
	struct dids_ctx *c = ctx;
	struct rfs_did_rec r;
	const char *bad;
	int rc;

	if (!json_is_object(obj))
		return -EBADMSG;
	rc = did_from_json(obj, &r, &bad);
	if (rc == -EILSEQ) {
		c->skips.nul_names++;
		return 0;
	}
	if (rc == -EBADMSG) {
		if (!c->skips.malformed++) {
			name_record(obj, c->skips.first,
				    sizeof(c->skips.first));
			c->skips.field = bad;
		}
		return 0;
	}
	if (rc)
		return rc;
	rc = rfs_did_list_take(c->out, &r);
	if (rc)
		rfs_did_rec_release(&r);
	return rc;
}

int rfs_parse_dids(const char *buf, size_t len, struct rfs_did_list *out,
		   struct rfs_parse_skips *skips)
{
	struct dids_ctx c = { .out = out };
	int rc;

	rfs_did_list_init(out);
	rc = each_line(buf, len, did_line, &c);
	if (rc)
		rfs_did_list_release(out);
	if (skips)
		*skips = c.skips;
	return rc;
}

/* Stable, so equal priorities keep the catalogue's (URL) order. */
static void sort_pfns(struct rfs_pfn *p, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct rfs_pfn x = p[i];
		size_t j = i;

		for (; j > 0 && p[j - 1].priority > x.priority; j--)
			p[j] = p[j - 1];
		p[j] = x;
	}
}

static int pfn_from_json(const char *url, json_t *info, struct rfs_pfn *p)
{
	json_t *prio;
	const char *rse = NULL;

	if (!json_is_object(info) || get_str(info, "rse", &rse) || !*url)
		return -EBADMSG;
	prio = json_object_get(info, "priority");
	if (prio && !json_is_null(prio) && !json_is_integer(prio))
		return -EBADMSG;
	/* no priority: after the ranked ones, in the catalogue's order */
	p->priority =
		json_is_integer(prio) ? json_integer_value(prio) : INT64_MAX;
	p->url = strdup(url);
	p->rse = strdup(rse ? rse : "");
	if (!p->url || !p->rse)
		return -ENOMEM;
	return 0;
}

static int pfns_from_json(json_t *pfns, struct rfs_replica_rec *r)
{
	const char *url;
	json_t *info;
	int rc = 0;

	if (!pfns || json_is_null(pfns))
		return 0;
	if (!json_is_object(pfns))
		return -EBADMSG;
	r->pfn = calloc(json_object_size(pfns) + 1, sizeof(*r->pfn));
	if (!r->pfn)
		return -ENOMEM;
	json_object_foreach(pfns, url, info)
	{
		/* a member of an archive: these bytes are the archive's, to
		 * be extracted by the client; not a replica of this file */
		if (json_is_true(json_object_get(info, "client_extract")))
			continue;
		rc = pfn_from_json(url, info, &r->pfn[r->npfn]);
		if (rc) {
			free(r->pfn[r->npfn].url);
			free(r->pfn[r->npfn].rse);
			return rc;
		}
		r->npfn++;
	}
	sort_pfns(r->pfn, r->npfn);
	return 0;
}

static int replica_line(json_t *obj, void *ctx)
{
	struct rfs_replica_list *out = ctx;
	struct rfs_replica_rec *nv, *r;
	const char *bad;
	int rc;

	nv = realloc(out->v, (out->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	out->v = nv;
	r = &out->v[out->n];
	memset(r, 0, sizeof(*r));
	rc = did_from_json(obj, &r->did, &bad);
	if (rc)
		return rc == -EILSEQ ? -EBADMSG : rc;
	out->n++; /* counted now, so release frees a partial record */
	return pfns_from_json(json_object_get(obj, "pfns"), r);
}

int rfs_parse_replicas(const char *buf, size_t len,
		       struct rfs_replica_list *out)
{
	int rc;

	out->v = NULL;
	out->n = 0;
	rc = each_line(buf, len, replica_line, out);
	if (rc)
		rfs_replica_list_release(out);
	return rc;
}

/* ---- writing records back, for the offline copy ---- */

static int set_time(json_t *o, const char *key, time_t t)
{
	char buf[32];
	struct tm tm;

	if (!t)
		return 0;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	return json_object_set_new(o, key, json_string(buf));
}

static json_t *did_to_json(const struct rfs_did_rec *r)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "scope", r->scope, "name",
			      r->name ? r->name : "", "type",
			      rfs_did_type_name(r->type));

	if (!o)
		return NULL;
	if ((r->has_bytes &&
	     json_object_set_new(o, "bytes",
				 json_integer((json_int_t)r->bytes))) ||
	    (r->adler32[0] &&
	     json_object_set_new(o, "adler32", json_string(r->adler32))) ||
	    (r->md5[0] && json_object_set_new(o, "md5", json_string(r->md5))) ||
	    (r->account[0] &&
	     json_object_set_new(o, "account", json_string(r->account))) ||
	    set_time(o, "created_at", r->created) ||
	    set_time(o, "updated_at", r->updated)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Appends @o as one line and drops it. */
static int add_line(struct rfs_buf *out, json_t *o)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int rc = s ? rfs_buf_printf(out, "%s\n", s) : -ENOMEM;

	free(s);
	json_decref(o);
	return rc;
}

int rfs_dids_to_stream(const struct rfs_did_list *l, struct rfs_buf *out)
{
	int rc = 0;

	for (size_t i = 0; i < l->n && !rc; i++)
		rc = add_line(out, did_to_json(&l->v[i]));
	return rc;
}

int rfs_scopes_to_json(const struct rfs_did_list *l, struct rfs_buf *out)
{
	json_t *a = json_array();
	int rc = 0;

	for (size_t i = 0; a && i < l->n && !rc; i++)
		rc = json_array_append_new(a, json_string(l->v[i].scope))
			     ? -ENOMEM
			     : 0;
	return rc ? (json_decref(a), rc) : add_line(out, a);
}

static json_t *replica_to_json(const struct rfs_replica_rec *r)
{
	json_t *o = did_to_json(&r->did), *pfns = json_object();

	for (size_t i = 0; o && pfns && i < r->npfn; i++) {
		json_t *info = json_pack("{s:s,s:I}", "rse", r->pfn[i].rse,
					 "priority", (json_int_t)(i + 1));

		if (!info || json_object_set_new(pfns, r->pfn[i].url, info)) {
			json_decref(pfns);
			json_decref(o);
			return NULL;
		}
	}
	if (o && pfns && json_object_set_new(o, "pfns", pfns) == 0)
		return o;
	json_decref(o);
	return NULL;
}

int rfs_replicas_to_stream(const struct rfs_replica_list *l,
			   struct rfs_buf *out)
{
	int rc = 0;

	for (size_t i = 0; i < l->n && !rc; i++)
		rc = add_line(out, replica_to_json(&l->v[i]));
	return rc;
}
