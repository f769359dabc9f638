/*
 * The replica layer: one file's replicas, ranked by speed and health and
 * read through a transport handle each, opened at the first read as the
 * file's opener. A replica that fails (refused, timed out, HTTP error,
 * wrong or short body) hands the same range to the next; only when every
 * replica failed does the read fail, with one log line that says why for
 * each. The slow-transfer policy is here, not in the transports.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "authz/cred.h"
#include "authz/identity.h"
#include "authz/token.h"
#include "core/core.h"
#include "core/file.h"
#include "core/meta.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/buf.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

struct rfs_replicas *rfs_replicas_get(struct rfs_replicas *r)
{
	__atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
	return r;
}

void rfs_replicas_put(struct rfs_replicas *r)
{
	if (!r || __atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->src[i].url);
		free(r->src[i].rse);
	}
	free(r->src);
	free(r);
}

static int add_source(struct rfs_fs *fs, struct rfs_replicas *r,
		      const struct rfs_pfn *p)
{
	struct rfs_transport *tp = rfs_transports_find(fs->tps, p->url);
	struct rfs_source *s = &r->src[r->n];
	struct rfs_buf url;
	char *raw;
	int rc;

	if (!tp) {
		r->skipped++; /* e.g. root:// before the xrootd transport */
		return 0;
	}
	/* Rucio's simulate_multirange fragment is for the client, and
	 * normalising would encode its '#' into the file's name */
	raw = strndup(p->url,
		      rfs_url_rucio_fragment(p->url, &s->no_multirange));
	if (!raw)
		return -ENOMEM;
	rfs_buf_init(&url, 16384);
	rc = rfs_transport_normalize(tp, &url, raw);
	free(raw);
	if (rc) {
		rfs_buf_release(&url);
		return rc == -EFBIG ? 0 : rc;
	}
	s->url = rfs_buf_take(&url);
	s->rse = strdup(p->rse);
	s->tp = tp;
	if (!s->url || !s->rse) {
		free(s->url);
		free(s->rse);
		return -ENOMEM;
	}
	r->n++;
	return 0;
}

static const struct rfs_replica_rec *find_file(const struct rfs_replica_list *l,
					       const struct rfs_did_rec *did)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i].did.scope, did->scope) &&
		    !strcmp(l->v[i].did.name, did->name))
			return &l->v[i];
	return NULL;
}

static int build(struct rfs_fs *fs, const struct rfs_did_rec *did,
		 const struct rfs_replica_rec *rec, struct rfs_replicas **out)
{
	struct rfs_replicas *r = calloc(1, sizeof(*r));
	int rc = 0;

	if (!r)
		return -ENOMEM;
	r->refs = 1;
	r->src = calloc(rec->npfn + 1, sizeof(*r->src));
	if (!r->src) {
		free(r);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rec->npfn && !rc; i++)
		rc = add_source(fs, r, &rec->pfn[i]);
	/* the catalogue's replica answer is the authority on the size */
	r->size = rec->did.has_bytes ? rec->did.bytes : did->bytes;
	if (!rc && !rec->did.has_bytes && !did->has_bytes)
		rc = -EBADMSG;
	if (rc) {
		rfs_replicas_put(r);
		return rc;
	}
	*out = r;
	return 0;
}

/*
 * Storage is authenticated by bearer tokens, never by credentials in a
 * URL: a PFN's userinfo ("user:password@") is dropped as it arrives, so
 * it is never sent, logged, shown in user.rucio.replicas (which every
 * user of an allow_other mount reads) or kept in the cache. One warning
 * per RSE and interval names the URL without it.
 */
static void drop_userinfo(struct rfs_replica_list *l)
{
	char url[512], key[160];

	for (size_t i = 0; i < l->n; i++)
		for (size_t j = 0; j < l->v[i].npfn; j++) {
			struct rfs_pfn *p = &l->v[i].pfn[j];

			if (!rfs_url_strip_userinfo(p->url))
				continue;
			rfs_url_for_log(url, sizeof(url), p->url);
			snprintf(key, sizeof(key), "userinfo:%s", p->rse);
			rfs_log_limited(LOG_WARNING, key,
					"replica '%s' (%s): credentials in the "
					"URL ignored; storage is authenticated "
					"by token",
					url, p->rse);
		}
}

static int fetch_replicas(struct rfs_fs *fs, struct rfs_cred *who,
			  const struct rfs_did_rec *dids, size_t n,
			  struct rfs_replica_list *l)
{
	/* a shared mount's caller without a token has no replicas */
	int rc = who->id ? rfs_catalog_list_replicas_many(fs->cat, who->id,
							  dids, n, l)
			 : -EACCES;

	if (!rc)
		drop_userinfo(l);
	return rc;
}

/* The replica list of @rec alone, kept for offline opens. */
static void save_replicas(struct rfs_fs *fs, const struct rfs_replica_rec *rec)
{
	struct rfs_replica_list one = { (struct rfs_replica_rec *)rec, 1 };
	struct rfs_buf b;

	if (!fs->cache)
		return;
	rfs_buf_init(&b, fs->conf->max_answer);
	if (rfs_replicas_to_stream(&one, &b) == 0)
		rfs_meta_store(fs, 'R', &rec->did, &b);
	rfs_buf_release(&b);
}

static int load_replicas(struct rfs_fs *fs, const struct rfs_did_rec *did,
			 struct rfs_replica_list *l)
{
	size_t len;
	char *val;
	int rc = rfs_meta_load(fs, 'R', did, &val, &len);

	if (rc)
		return rc;
	rc = rfs_parse_replicas(val, len, l);
	free(val);
	if (!rc) /* kept by a version that did not drop them */
		drop_userinfo(l);
	return rc;
}

/* Without a size no read can be clamped or checked: EIO, said once. */
static int no_size(const struct rfs_did_rec *did)
{
	rfs_log_limited(LOG_ERR, did->name,
			"open '%s:%s': the catalogue gives no size for this "
			"file",
			did->scope, did->name);
	return -EIO;
}

/*
 * Offline and never opened before: no replica is known, but every block
 * may be in the cache. Reads of missing blocks fail with EIO at once.
 */
static int cache_only(const struct rfs_did_rec *did, struct rfs_replicas **out)
{
	struct rfs_replicas *r;

	if (!did->has_bytes)
		return no_size(did);
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->refs = 1;
	r->size = did->bytes;
	*out = r;
	return 0;
}

static int list_replicas(struct rfs_fs *fs, struct rfs_cred *who,
			 const struct rfs_did_rec *did,
			 struct rfs_replica_list *l, bool *offline)
{
	int rc = fetch_replicas(fs, who, did, 1, l);
	const struct rfs_replica_rec *rec;

	*offline = false;
	if (!rc) {
		rec = find_file(l, did);
		if (rec)
			save_replicas(fs, rec);
		return 0;
	}
	if (!rfs_unreachable(rc))
		return rc;
	*offline = true;
	return load_replicas(fs, did, l) == 0 ? 0 : rc;
}

/* @did's replicas from the catalogue's answer @l; says why there are none. */
static int from_list(struct rfs_fs *fs, const struct rfs_did_rec *did,
		     const struct rfs_replica_list *l,
		     struct rfs_replicas **out)
{
	const struct rfs_replica_rec *rec = find_file(l, did);
	int rc;

	if (!rec || rec->npfn == 0) {
		rfs_log_limited(LOG_ERR, did->name,
				"open '%s:%s': the catalogue lists no replica",
				did->scope, did->name);
		return -EIO;
	}
	rc = build(fs, did, rec, out);
	if (rc == -EBADMSG) /* neither the listing nor the replicas say */
		return no_size(did);
	if (!rc && (*out)->n == 0) {
		rfs_log_limited(LOG_ERR, did->name,
				"open '%s:%s': no replica has a scheme this "
				"build can read (%zu skipped)",
				did->scope, did->name, (*out)->skipped);
		rfs_replicas_put(*out);
		*out = NULL;
		rc = -EIO;
	}
	return rc;
}

int rfs_replicas_resolve(struct rfs_fs *fs, struct rfs_cred *who,
			 const struct rfs_did_rec *did,
			 struct rfs_replicas **out)
{
	struct rfs_replica_list l = { NULL, 0 };
	bool offline;
	int rc;

	rc = list_replicas(fs, who, did, &l, &offline);
	if (rc)
		return offline && fs->cache ? cache_only(did, out) : rc;
	rc = from_list(fs, did, &l, out);
	rfs_replica_list_release(&l);
	return rc;
}

int rfs_replicas_resolve_many(struct rfs_fs *fs, struct rfs_cred *who,
			      const struct rfs_did_rec *dids, size_t n,
			      struct rfs_replicas **out)
{
	struct rfs_replica_list l = { NULL, 0 };
	const struct rfs_replica_rec *rec;
	int rc;

	for (size_t i = 0; i < n; i++)
		out[i] = NULL;
	if (n == 1)
		return rfs_replicas_resolve(fs, who, &dids[0], &out[0]);
	rc = fetch_replicas(fs, who, dids, n, &l);
	if (rc) /* the one asked for goes on alone, offline too */
		return rfs_replicas_resolve(fs, who, &dids[0], &out[0]);
	for (size_t i = 0; i < l.n; i++)
		save_replicas(fs, &l.v[i]);
	rc = from_list(fs, &dids[0], &l, &out[0]);
	/* the others are ahead of need: no log line for them */
	for (size_t i = 1; i < n; i++) {
		rec = find_file(&l, &dids[i]);
		if (rec && rec->npfn &&
		    build(fs, &dids[i], rec, &out[i]) == 0 && out[i]->n == 0) {
			rfs_replicas_put(out[i]);
			out[i] = NULL;
		}
	}
	rfs_replica_list_release(&l);
	return rc;
}

/*
 * Appends "RSE (url): reason; " to the failure summary, bounded, or
 * "RSE (url -> target): reason" when a redirect was followed; no query.
 */
static void note_failure(char *why, size_t len, const struct rfs_source *s,
			 int rc, const struct rfs_xfer_note *note, double secs)
{
	char url[256], slow[128] = "";
	size_t used = strlen(why);

	rfs_url_for_log(url, sizeof(url), s->url);
	/* cut at its share of the read's deadline: how slow it was */
	if (note->past_deadline)
		snprintf(slow, sizeof(slow),
			 "given up after %.1f s, %llu bytes at %.1f KiB/s",
			 secs, (unsigned long long)note->got,
			 secs > 0 ? (double)note->got / secs / 1024 : 0);
	snprintf(why + used, len - used, "%s%s (%s%s%s): %s", used ? "; " : "",
		 s->rse, url, note->target[0] ? " -> " : "", note->target,
		 slow[0]	? slow
		 : note->why[0] ? note->why
				: rfs_errno_reason(rc));
}

/* One line per failed read (rate-limited per file), or per failover. */
static void log_outcome(const struct rfs_did_rec *did, uint64_t off,
			size_t size, size_t n, bool failed, const char *why)
{
	char key[300];

	snprintf(key, sizeof(key), "%s:%s:%s", failed ? "fail" : "over",
		 did->scope, did->name);
	if (failed)
		rfs_log_limited(LOG_ERR, key,
				"read '%s:%s' at %llu+%zu: all %zu replicas "
				"failed: %s",
				did->scope, did->name, (unsigned long long)off,
				size, n, why);
	else
		rfs_log_limited(LOG_WARNING, key,
				"read '%s:%s': moved to the next replica "
				"after: %s",
				did->scope, did->name, why);
}

/*
 * What speed and health are kept for: the RSE for its HTTP doors (as
 * status has always named them), "RSE scheme" for any other, so a slow
 * https door does not demote the same RSE's root:// one.
 */
static const char *endpoint_key(const struct rfs_source *s, char *buf,
				size_t len)
{
	static const char *const web[] = { "http", "https", "dav", "davs" };
	const char *sep = strstr(s->url, "://");
	size_t n = sep ? (size_t)(sep - s->url) : 0;

	for (size_t i = 0; i < sizeof(web) / sizeof(web[0]); i++)
		if (n == strlen(web[i]) && !strncasecmp(s->url, web[i], n))
			return s->rse;
	if (!n)
		return s->rse;
	snprintf(buf, len, "%s %.*s", s->rse, (int)(n < 16 ? n : 16), s->url);
	return buf;
}

/* Endpoint @rse's speed and health, under stats_lock. */
static struct rfs_endpoint_stats *endpoint(struct rfs_fs *fs, const char *rse)
{
	size_t i, n = sizeof(fs->eps) / sizeof(fs->eps[0]);

	for (i = 0; i < n && fs->eps[i].rse[0]; i++)
		if (!strcmp(fs->eps[i].rse, rse))
			return &fs->eps[i];
	if (i == n)
		return NULL; /* past 32 endpoints, the rest go unmeasured */
	snprintf(fs->eps[i].rse, sizeof(fs->eps[i].rse), "%s", rse);
	return &fs->eps[i];
}

/* A source and its place in the order of tries. */
struct ranked {
	double score; /* -1: last resort */
	unsigned idx;
};

/*
 * Spread picks are a smooth weighted round robin over the healthy
 * sources (nginx's upstream scheme): deterministic, and each source's
 * share of the runs matches its share of the speed. Under stats_lock.
 */
static unsigned spread_pick(struct rfs_fs *fs, const struct rfs_replicas *r,
			    const struct ranked *order, double total)
{
	struct rfs_endpoint_stats *e, *best_e = NULL;
	unsigned best = 0;

	for (size_t i = 0; i < r->n; i++) {
		char key[96];

		e = endpoint(fs, endpoint_key(&r->src[i], key, sizeof(key)));
		if (!e || order[i].score <= 0)
			continue;
		e->wrr += order[i].score;
		if (!best_e || e->wrr > best_e->wrr) {
			best_e = e;
			best = (unsigned)i;
		}
	}
	if (best_e)
		best_e->wrr -= total;
	return best;
}

/* Higher scores first; ties keep the catalogue's order. */
static int ranked_cmp(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * The order in which to try @f's sources, into @order (r->n of them).
 * Healthy ones first: ranked by measured speed (an unmeasured one counts
 * as fast as the best, so it gets measured), a spread pick putting its
 * own first. A source that was slower than min_rate or out of reach
 * lately, or that lied about this file, comes last, still tried before a
 * read fails. Ties keep the catalogue's order.
 */
static void rank_sources(struct rfs_fs *fs, const struct rfs_target *f,
			 enum rfs_pick pick, struct ranked *order)
{
	const struct rfs_replicas *r = f->reps;
	double now = rfs_mono_now(), best = 0, total = 0;
	unsigned first = __atomic_load_n(&r->preferred, __ATOMIC_RELAXED);
	size_t n = r->n;

	/* a replica that lied about this file: after even the slow ones */
	for (size_t i = 0; i < n; i++) {
		order[i].idx = (unsigned)i;
		order[i].score = rfs_verify_demoted(f, r->src[i].url) ? -2 : 0;
	}
	pthread_mutex_lock(&fs->stats_lock);
	for (size_t i = 0; i < n; i++) {
		char key[96];
		struct rfs_endpoint_stats *e = endpoint(
			fs, endpoint_key(&r->src[i], key, sizeof(key)));

		if (order[i].score < 0)
			continue;
		order[i].score = e ? e->rate : 0;
		best = order[i].score > best ? order[i].score : best;
		if (e && e->slow_until > now)
			order[i].score = -1;
	}
	for (size_t i = 0; i < n; i++) {
		double *score = &order[i].score;

		if (*score == 0)
			*score = best > 0 ? best : 1;
		if (i == first && *score > 0)
			*score *= 1.0001; /* the last one that answered */
		total += *score > 0 ? *score : 0;
	}
	if (pick == RFS_PICK_SPREAD && total > 0)
		order[spread_pick(fs, r, order, total)].score += 2 * total;
	pthread_mutex_unlock(&fs->stats_lock);
	qsort(order, n, sizeof(*order), ranked_cmp);
}

struct rfs_handles {
	unsigned refs; /* atomic */
	struct rfs_fs *fs;
	struct rfs_cred *who;
	struct rfs_who tw; /* what transports see of @who */
	/* lock guards h[]; a leaf, never held across a handle's open */
	pthread_mutex_t lock;
	size_t n;
	struct rfs_tfile *h[]; /* per source, NULL until its first read */
};

/* The credential a transport presents for @arg's identity. */
static int storage_bearer(void *arg, char **out)
{
	struct rfs_handles *hs = arg;

	return rfs_identity_storage_token(hs->who->id, out);
}

int rfs_handles_new(struct rfs_fs *fs, struct rfs_cred *who, size_t n,
		    struct rfs_handles **out)
{
	struct rfs_handles *hs = calloc(1, sizeof(*hs) + n * sizeof(hs->h[0]));

	*out = hs;
	if (!hs)
		return -ENOMEM;
	hs->refs = 1;
	hs->fs = fs;
	hs->who = rfs_cred_get(who);
	hs->tw.key = who->id ? rfs_identity_key(who->id) : "";
	hs->tw.bearer = storage_bearer;
	hs->tw.arg = hs;
	pthread_mutex_init(&hs->lock, NULL);
	hs->n = n;
	return 0;
}

struct rfs_handles *rfs_handles_get(struct rfs_handles *hs)
{
	if (hs)
		__atomic_add_fetch(&hs->refs, 1, __ATOMIC_RELAXED);
	return hs;
}

void rfs_handles_put(struct rfs_handles *hs)
{
	if (!hs || __atomic_sub_fetch(&hs->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (size_t i = 0; i < hs->n; i++)
		rfs_transport_close_file(hs->fs->tps, hs->h[i]);
	pthread_mutex_destroy(&hs->lock);
	rfs_cred_put(hs->who);
	free(hs);
}

/* The handle on source @i of @f, opened now if this is its first read. */
static int handle_of(struct rfs_fs *fs, const struct rfs_target *f, size_t i,
		     struct rfs_tfile **out)
{
	struct rfs_handles *hs = f->hs;
	const struct rfs_source *s = &f->reps->src[i];
	struct rfs_tfile *mine;
	int rc;

	pthread_mutex_lock(&hs->lock);
	*out = hs->h[i];
	pthread_mutex_unlock(&hs->lock);
	if (*out)
		return 0;
	rc = rfs_transport_open_file(fs->tps, s->tp, s->url, &hs->tw, &mine);
	if (rc)
		return rc;
	pthread_mutex_lock(&hs->lock);
	if (!hs->h[i])
		hs->h[i] = mine, mine = NULL;
	*out = hs->h[i];
	pthread_mutex_unlock(&hs->lock);
	rfs_transport_close_file(fs->tps, mine); /* another opened it first */
	return 0;
}

/* Transfers still under min_rate a second after they began are given
 * up: connection set-up is not streaming. */
#define SLOW_GRACE 1.0

static bool fast_enough(void *arg, uint64_t got, double secs)
{
	const struct rfs_fs *fs = arg;

	return secs < SLOW_GRACE ||
	       (double)got / secs >= (double)fs->conf->min_rate;
}

/*
 * One attempt on source @i of @f; counts it for the endpoint's speed.
 * Unless it is the @last hope, a transfer under min_rate is given up, and
 * one may take half of what is left of the read's time at most: a replica
 * slower than that is left for a faster one before the read's deadline.
 */
/* What one attempt reads: a range into @iov, or the segments @segs. */
struct ask {
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	const struct rfs_tseg *segs; /* a vector read when not NULL */
	size_t nsegs;
	size_t size; /* the bytes of either */
};

static ssize_t try_source(struct rfs_fs *fs, const struct rfs_target *f,
			  size_t i, const struct ask *a, bool last,
			  double deadline, struct rfs_xfer_note *note)
{
	struct rfs_source *s = &f->reps->src[i];
	double t0 = rfs_mono_now(), secs;
	struct rfs_tfile *h;
	char key[96];
	ssize_t got;

	memset(note, 0, sizeof(*note));
	note->go_on = !last && fs->conf->min_rate ? fast_enough : NULL;
	note->go_on_arg = fs;
	note->deadline =
		deadline && !last ? t0 + (deadline - t0) / 2 : deadline;
	got = handle_of(fs, f, i, &h);
	if (!got && a->segs)
		got = rfs_transport_readv(h, a->segs, a->nsegs, f->reps->size,
					  note);
	else if (!got)
		got = rfs_transport_preadv(h, a->iov, a->iovcnt, a->off,
					   f->reps->size, note);
	if (got == -EOPNOTSUPP) { /* says nothing of the endpoint */
		__atomic_store_n(&s->no_vector, true, __ATOMIC_RELAXED);
		return got;
	}
	secs = rfs_mono_now() - t0;
	rfs_metrics_fetch(fs, s->url, secs);
	rfs_fs_count(fs, endpoint_key(s, key, sizeof(key)),
		     got > 0 ? (uint64_t)got : 0,
		     got == (ssize_t)a->size ? 0
		     : got < 0		     ? (int)got
					     : -EIO,
		     secs);
	return got;
}

/* The sources to try, in order, or NULL when out of memory. */
static struct ranked *try_order(struct rfs_fs *fs, const struct rfs_target *f,
				const struct rfs_how *how, size_t *n)
{
	struct ranked *order = calloc(f->reps->n, sizeof(*order));
	size_t k = 0;

	if (!order)
		return NULL;
	rank_sources(fs, f, how->pick, order);
	for (size_t i = 0; i < f->reps->n; i++)
		if (!how->exclude ||
		    strcmp(f->reps->src[order[i].idx].url, how->exclude))
			order[k++] = order[i];
	*n = k;
	return order;
}

static bool source_vector(const struct rfs_source *s)
{
	return (s->tp->ops->caps & RFS_TP_VECTOR) && !s->no_multirange &&
	       !__atomic_load_n(&s->no_vector, __ATOMIC_RELAXED);
}

bool rfs_replicas_can_vector(const struct rfs_replicas *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (source_vector(&r->src[i]))
			return true;
	return false;
}

/* @a from @f's replicas in turn, until one answers it right. */
static ssize_t read_from(struct rfs_fs *fs, struct rfs_target *f,
			 const struct ask *a, const struct rfs_how *how,
			 const struct rfs_source **served)
{
	struct rfs_replicas *r = f->reps;
	size_t size = a->size, n = 0, i;
	struct ranked *order = NULL;
	char why[2048] = "";
	struct rfs_xfer_note note = { 0 };
	ssize_t got = -EIO;
	bool refused = true; /* by every replica tried: EACCES, not EIO */
	double t0;

	if (r->n == 0) {
		rfs_log_limited(LOG_ERR, "offline-miss",
				"read '%s:%s': the catalogue is out of reach "
				"and these bytes are not cached",
				f->did.scope, f->did.name);
		return -EIO;
	}
	order = try_order(fs, f, how, &n);
	if (!order)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct rfs_source *s = &r->src[order[i].idx];

		if (how->deadline && rfs_mono_now() >= how->deadline)
			break;
		/* its turn, and it cannot: the caller goes one by one */
		if (a->segs && !source_vector(s)) {
			got = -EOPNOTSUPP;
			break;
		}
		t0 = rfs_mono_now();
		got = try_source(fs, f, order[i].idx, a, i + 1 == n,
				 how->deadline, &note);
		if (got == -EOPNOTSUPP && a->segs)
			break;
		if (got == (ssize_t)size) {
			__atomic_store_n(&r->preferred, order[i].idx,
					 __ATOMIC_RELAXED);
			if (served)
				*served = s;
			break;
		}
		note_failure(why, sizeof(why), s, got < 0 ? (int)got : -EIO,
			     &note, rfs_mono_now() - t0);
		refused &= got == -EACCES;
		got = -EIO;
	}
	if (got == -EOPNOTSUPP && a->segs) {
		free(order);
		return got;
	}
	if (got < 0 && (i < n || note.past_deadline)) {
		snprintf(why + strlen(why), sizeof(why) - strlen(why),
			 "%sread_timeout (%.0f s) reached", why[0] ? "; " : "",
			 fs->conf->read_timeout);
		got = -ETIMEDOUT;
	} else if (got < 0 && i > 0 && refused) {
		got = -EACCES; /* the storage said no to this identity */
	}
	free(order);
	if (got < 0 || why[0])
		log_outcome(&f->did, a->segs ? a->segs[0].off : a->off, size, n,
			    got < 0, why);
	return got;
}

ssize_t rfs_replicas_readv(struct rfs_fs *fs, struct rfs_target *f,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   const struct rfs_how *how,
			   const struct rfs_source **served)
{
	struct ask a = { .iov = iov,
			 .iovcnt = iovcnt,
			 .off = off,
			 .size = rfs_iov_len(iov, iovcnt) };

	return read_from(fs, f, &a, how, served);
}

ssize_t rfs_replicas_read_segs(struct rfs_fs *fs, struct rfs_target *f,
			       const struct rfs_tseg *segs, size_t n,
			       const struct rfs_how *how)
{
	struct ask a = { .segs = segs, .nsegs = n };

	for (size_t i = 0; i < n; i++)
		a.size += segs[i].len;
	return read_from(fs, f, &a, how, NULL);
}

int rfs_replicas_probe_one(struct rfs_fs *fs, struct rfs_target *t, size_t i)
{
	struct rfs_xfer_note note = { .deadline = rfs_mono_now() +
						  fs->conf->read_timeout };
	char byte;
	struct iovec iov = { &byte, 1 };
	struct rfs_tfile *h;
	ssize_t got;
	int rc = handle_of(fs, t, i, &h);

	if (rc)
		return rc;
	got = rfs_transport_preadv(h, &iov, 1, 0, t->reps->size, &note);
	return got == 1 ? 0 : got < 0 ? (int)got : -EIO;
}

const char *rfs_source_endpoint(const struct rfs_source *s, char *buf,
				size_t len)
{
	return endpoint_key(s, buf, len);
}

int rfs_replicas_probe(struct rfs_fs *fs, struct rfs_target *t)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST };
	size_t n = 0;
	struct ranked *order;
	bool refused = false;
	int rc = -EHOSTUNREACH; /* no replica: a cache-only set, offline */

	if (t->reps->n == 0)
		return rc;
	order = try_order(fs, t, &how, &n);
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc; i++) {
		rc = rfs_replicas_probe_one(fs, t, order[i].idx);
		refused |= rc == -EACCES;
	}
	free(order);
	return rc && refused ? -EACCES : rc;
}

/* What user.rucio.replicas shows at most: Linux caps xattrs at 64 KiB. */
#define DESCRIBE_MAX (60u << 10)

int rfs_replicas_describe(struct rfs_replicas *r, struct rfs_buf *out)
{
	unsigned first = __atomic_load_n(&r->preferred, __ATOMIC_RELAXED);
	char url[4096];
	size_t i;
	int rc = 0;

	/* query strings can hold signed URLs or tokens: not for xattrs */
	for (i = 0; i < r->n && !rc; i++) {
		rfs_url_for_log(url, sizeof(url),
				r->src[(first + i) % r->n].url);
		/* an xattr holds 64 KiB at most: the rest is counted */
		if (out->len + strlen(url) + 64 > DESCRIBE_MAX)
			break;
		rc = rfs_buf_printf(out, "%s%s", i ? "\n" : "", url);
	}
	if (!rc && i < r->n)
		rc = rfs_buf_printf(out, "\n(%zu more)", r->n - i);
	return rc;
}

/* Only transfers this large say how fast an endpoint streams; smaller
 * ones mostly measure its round trip. */
#define RATE_MIN_BYTES (256u << 10)
#define SLOW_PENALTY 60.0 /* seconds a slow endpoint stays last resort */

/* What an endpoint-penalty or endpoint-recovered event says. */
struct ep_event {
	char rse[64];
	bool penalty, recovered;
	char why[96];
};

/*
 * The events of one transfer's outcome, under stats_lock: a penalty that
 * starts an episode (not each one that renews it), and the first good
 * transfer once it is over.
 */
static void note_health(struct rfs_endpoint_stats *e, int rc, bool slow,
			double rate, struct ep_event *ev)
{
	double now = rfs_mono_now();
	bool penalty = slow || (rc && rfs_unreachable(rc)) || rc == -EPERM;

	snprintf(ev->rse, sizeof(ev->rse), "%s", e->rse);
	if (penalty && !e->penalised) {
		ev->penalty = e->penalised = true;
		if (slow)
			snprintf(ev->why, sizeof(ev->why),
				 "slower than min_rate (%.0f KiB/s)",
				 rate / 1024);
		else
			snprintf(ev->why, sizeof(ev->why), "%s",
				 rc == -EPERM ? "refused by the connection "
						"policy"
					      : rfs_errno_reason(rc));
	} else if (!penalty && !rc && e->penalised && e->slow_until <= now) {
		e->penalised = false;
		ev->recovered = true;
	}
	/* refused by the connection policy: as good as out of reach */
	if (penalty)
		e->slow_until = now + SLOW_PENALTY;
}

static void say_health(const struct ep_event *ev)
{
	if (ev->penalty)
		rfs_event(LOG_WARNING, "endpoint-penalty",
			  "%s: %s; tried after the others for %.0f s", ev->rse,
			  ev->why, SLOW_PENALTY);
	else if (ev->recovered)
		rfs_event(LOG_INFO, "endpoint-recovered",
			  "%s: a transfer went well again", ev->rse);
}

void rfs_fs_count(struct rfs_fs *fs, const char *rse, uint64_t bytes, int rc,
		  double secs)
{
	struct rfs_endpoint_stats *e;
	double rate = secs > 0 ? (double)bytes / secs : 0;
	bool slow = rc == -ETIMEDOUT;
	struct ep_event ev = { 0 };

	pthread_mutex_lock(&fs->stats_lock);
	fs->net_bytes += rc ? 0 : bytes;
	e = endpoint(fs, rse);
	if (e) {
		e->bytes += rc ? 0 : bytes;
		e->errors += rc ? 1 : 0;
	}
	/* a transfer under min_rate (finished or given up) counts as a
	 * failure of the endpoint: others go first for a while */
	if (e && !rc && bytes >= RATE_MIN_BYTES && rate > 0) {
		e->rate = e->rate > 0 ? 0.7 * e->rate + 0.3 * rate : rate;
		slow = rate < (double)fs->conf->min_rate;
	}
	if (e && slow) {
		e->slow++;
		e->rate = e->rate > 0 && rate < e->rate ? rate : e->rate;
	}
	if (e)
		note_health(e, rc, slow, rate, &ev);
	pthread_mutex_unlock(&fs->stats_lock);
	say_health(&ev);
}

void rfs_endpoints_snapshot(struct rfs_fs *fs, struct rfs_fs_stats *out)
{
	size_t n = sizeof(fs->eps) / sizeof(fs->eps[0]);
	double now = rfs_mono_now();

	out->nendpoints = 0;
	pthread_mutex_lock(&fs->stats_lock);
	out->net_bytes = fs->net_bytes;
	out->whole_opens = fs->whole_opens;
	for (size_t i = 0; i < n && fs->eps[i].rse[0]; i++) {
		struct rfs_endpoint_info *e = &out->endpoints[i];

		snprintf(e->rse, sizeof(e->rse), "%s", fs->eps[i].rse);
		e->bytes = fs->eps[i].bytes;
		e->errors = fs->eps[i].errors;
		e->slow = fs->eps[i].slow;
		e->rate = fs->eps[i].rate;
		e->last_resort = fs->eps[i].slow_until > now;
		out->nendpoints++;
	}
	pthread_mutex_unlock(&fs->stats_lock);
}
