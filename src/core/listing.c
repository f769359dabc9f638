/*
 * Listings: a collection's children as one catalogue answer, named for
 * POSIX and sorted; fetched by one thread at a time per directory and
 * shared by all, served from the cache's offline copy when the
 * catalogue is out of reach; entries' times asked for in bulk when first
 * needed.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authz/cred.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/meta.h"
#include "core/node.h"
#include "core/replicas.h"
#include "util/log.h"
#include "util/banned.h"

#define NAME_BUF (NAME_MAX + 1)

void rfs_listing_put(struct rfs_listing *l)
{
	if (!l || __atomic_sub_fetch(&l->refs, 1, __ATOMIC_ACQ_REL))
		return;
	for (size_t i = 0; i < l->n; i++) {
		free(l->e[i].name);
		rfs_did_rec_release(&l->e[i].rec);
		if (l->e[i].reps)
			rfs_replicas_put(l->e[i].reps);
	}
	free(l->e);
	free(l);
}

struct rfs_listing *rfs_listing_get(struct rfs_listing *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct rfs_entry *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static const char *rec_label(const struct rfs_did_rec *r)
{
	return r->name ? r->name : r->scope;
}

/* Entry @i gets its shown name, or -EINVAL if it cannot have one. */
static int name_entry(struct rfs_entry *e, bool qualify)
{
	char buf[NAME_BUF], full[PATH_MAX];
	const char *src = rec_label(&e->rec);
	int rc;

	if (qualify) {
		snprintf(full, sizeof(full), "%s:%s", e->rec.scope,
			 e->rec.name);
		src = full;
	}
	rc = rfs_name_to_posix(src, buf, sizeof(buf));
	if (rc)
		return rc;
	free(e->name);
	e->name = strdup(buf);
	return e->name ? 0 : -ENOMEM;
}

/*
 * Children of one collection may share a name if they live in different
 * scopes: those not in the parent's scope are then shown as "scope:name".
 */
static int qualify_duplicates(struct rfs_listing *l, const char *parent_scope)
{
	bool changed = false;
	int rc;

	for (size_t i = 0; i + 1 < l->n; i++) {
		size_t j = i + 1;

		while (j < l->n && !strcmp(l->e[i].name, l->e[j].name))
			j++;
		for (size_t k = i; j - i > 1 && k < j; k++) {
			if (!l->e[k].rec.name || !parent_scope ||
			    !strcmp(l->e[k].rec.scope, parent_scope))
				continue;
			rc = name_entry(&l->e[k], true);
			if (rc)
				return rc;
			changed = true;
		}
		i = j - 1;
	}
	if (changed)
		qsort(l->e, l->n, sizeof(*l->e), entry_cmp);
	return 0;
}

/* What is still doubled after qualifying cannot be shown twice. */
static void drop_duplicates(struct rfs_listing *l, const char *where)
{
	size_t out = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (out && !strcmp(l->e[out - 1].name, l->e[i].name)) {
			rfs_log_limited(LOG_WARNING, "dupname",
					"%s: '%s:%s' hidden, its name is shown "
					"for another DID",
					where, l->e[i].rec.scope,
					l->e[i].rec.name);
			free(l->e[i].name);
			rfs_did_rec_release(&l->e[i].rec);
			continue;
		}
		l->e[out++] = l->e[i];
	}
	l->n = out;
}

static void adopt_record(struct rfs_listing *l, struct rfs_did_rec *r,
			 const char *where)
{
	struct rfs_entry *e = &l->e[l->n];

	memset(e, 0, sizeof(*e));
	e->rec = *r;
	memset(r, 0, sizeof(*r));
	if (name_entry(e, false)) {
		rfs_log_limited(LOG_WARNING, "badname",
				"%s: DID '%s:%s' has a name that cannot be a "
				"file name; not shown",
				where, e->rec.scope,
				e->rec.name ? e->rec.name : "");
		rfs_did_rec_release(&e->rec);
		return;
	}
	e->ino = rfs_ino_of(e->rec.scope, e->rec.name);
	l->n++;
}

/* Takes the records of @dl (leaving it empty) into a new listing. */
static int build_listing(const struct rfs_did_rec *parent,
			 struct rfs_did_list *dl, bool lazy,
			 struct rfs_listing **out)
{
	struct rfs_listing *l = calloc(1, sizeof(*l));
	const char *where = parent->scope ? parent->scope : "/";
	int rc;

	if (!l)
		return -ENOMEM;
	l->refs = 1;
	l->e = calloc(dl->n + 1, sizeof(*l->e));
	if (!l->e) {
		free(l);
		return -ENOMEM;
	}
	for (size_t i = 0; i < dl->n; i++)
		adopt_record(l, &dl->v[i], where);
	rfs_did_list_release(dl);
	qsort(l->e, l->n, sizeof(*l->e), entry_cmp);
	rc = qualify_duplicates(
		l, parent->type == RFS_DID_ROOT ? NULL : parent->scope);
	if (rc) {
		rfs_listing_put(l);
		return rc;
	}
	drop_duplicates(l, where);
	for (size_t i = 0; lazy && i < l->n; i++) {
		l->e[i].untimed = !l->e[i].rec.created && !l->e[i].rec.updated;
		l->untimed += l->e[i].untimed;
	}
	*out = l;
	return 0;
}

/*
 * A collection's content carries its files' sizes and checksums: only
 * the times are missing, and they are asked for when first needed (see
 * entry_times), so that `find` or a plain `ls` costs no metadata at all.
 */
static bool times_later(const struct rfs_did_list *dl)
{
	for (size_t i = 0; i < dl->n; i++)
		if (dl->v[i].type == RFS_DID_FILE &&
		    (!dl->v[i].has_bytes || !dl->v[i].adler32[0]))
			return false;
	return dl->n > 0;
}

/* As the mount's own identity: the namespace is shown alike to every
 * caller (Rucio shows it to every account), so one fetch serves all. */
static int fetch_children(struct rfs_fs *fs, const struct rfs_did_rec *rec,
			  struct rfs_did_list *dl, bool *lazy)
{
	struct rfs_identity *id = fs->mount_id;
	int rc;

	*lazy = false;
	switch (rec->type) {
	case RFS_DID_ROOT:
		return rfs_catalog_list_scopes(fs->cat, id, dl);
	case RFS_DID_SCOPE:
		rc = rfs_catalog_list_top(fs->cat, id, rec->scope, dl);
		break;
	case RFS_DID_DATASET:
	case RFS_DID_CONTAINER:
		rc = rfs_catalog_list_content(fs->cat, id, rec->scope,
					      rec->name, dl);
		break;
	default:
		return -ENOTDIR;
	}
	if (rc)
		return rc;
	*lazy = times_later(dl);
	/* Times (and the sizes and checksums a scope's listing lacks) come
	 * in bulk: a listing costs a request per thousand entries, not one
	 * per entry. Without them the entries still show, dated at mount. */
	if (!*lazy && dl->n && rfs_catalog_fill_meta(fs->cat, id, dl))
		rfs_log_limited(LOG_WARNING, "bulkmeta",
				"no metadata for the entries of '%s%s%s'",
				rec->scope, rec->name ? ":" : "",
				rec->name ? rec->name : "");
	return 0;
}

/* Keeps a copy of a listing for the days the catalogue is out of reach. */
static void save_children(struct rfs_fs *fs, const struct rfs_did_rec *rec,
			  const struct rfs_did_list *dl)
{
	struct rfs_buf b;
	int rc;

	if (!fs->cache)
		return;
	rfs_buf_init(&b, fs->conf->max_answer);
	rc = rec->type == RFS_DID_ROOT ? rfs_scopes_to_json(dl, &b)
				       : rfs_dids_to_stream(dl, &b);
	if (!rc)
		rfs_meta_store(fs, 'L', rec, &b);
	rfs_buf_release(&b);
}

static int load_children(struct rfs_fs *fs, const struct rfs_did_rec *rec,
			 struct rfs_did_list *dl)
{
	size_t len;
	char *val;
	int rc = rfs_meta_load(fs, 'L', rec, &val, &len);

	if (rc)
		return rc;
	rc = rec->type == RFS_DID_ROOT ? rfs_parse_scopes(val, len, dl)
				       : rfs_parse_dids(val, len, dl, NULL);
	free(val);
	return rc;
}

/*
 * A listing from the catalogue, or, when it cannot be reached, the copy
 * kept in the cache (*@offline is then true).
 */
static int fetch_listing(struct rfs_fs *fs, const struct rfs_did_rec *rec,
			 struct rfs_listing **out, bool *offline)
{
	struct rfs_did_list dl;
	bool lazy = false;
	int rc;

	*offline = false;
	rfs_did_list_init(&dl);
	rc = fetch_children(fs, rec, &dl, &lazy);
	if (!rc) {
		save_children(fs, rec, &dl);
	} else if (rfs_unreachable_or_busy(rc) &&
		   load_children(fs, rec, &dl) == 0) {
		*offline = true; /* whatever times were kept, or none */
		rc = 0;
	}
	if (!rc)
		rc = build_listing(rec, &dl, lazy, out);
	rfs_did_list_release(&dl);
	return rc;
}

/* For listings a busy catalogue (429/503) counts as out of reach too. */
bool rfs_unreachable_or_busy(int rc)
{
	return rfs_unreachable(rc) || rc == -EBUSY;
}

/*
 * The listing of @n, fetched if missing or older than dir_ttl. Only one
 * thread fetches a given directory; the others wait for its answer. When
 * the catalogue cannot be reached, an older listing is served.
 */
/* Under table_lock: what a failed or offline fetch leaves on the node. */
static int fetch_done(struct rfs_fs *fs, struct rfs_node *n, int rc,
		      struct rfs_listing *fresh, bool offline,
		      struct rfs_listing **out)
{
	double retry = fs->conf->offline_retry < fs->conf->dir_ttl
			       ? fs->conf->offline_retry
			       : fs->conf->dir_ttl;

	if (!rc) {
		rfs_listing_put(n->list);
		n->list = fresh;
		/* an offline copy is asked for again once the retry is due */
		n->list_time = rfs_mono_now() -
			       (offline ? fs->conf->dir_ttl - retry : 0);
		n->list_rc = 0;
	} else if (rc != -ENOMEM) {
		n->list_rc = rc;
		n->list_retry = rfs_mono_now() + (retry > 1 ? retry : 1);
	}
	if (!rc || (n->list && rfs_unreachable_or_busy(rc))) {
		*out = rfs_listing_get(n->list);
		return 0;
	}
	return rc;
}

/*
 * The listing of @n, fetched if missing or older than dir_ttl. Only one
 * thread fetches a given directory; the others wait for its answer and
 * share it, success or failure. When the catalogue cannot be reached or
 * does not answer, an older listing is served.
 */
int rfs_node_listing(struct rfs_fs *fs, struct rfs_node *n,
		     struct rfs_listing **out, bool nowait)
{
	struct rfs_did_rec rec;
	struct rfs_listing *fresh = NULL;
	bool offline = false, waited = false;
	int rc;

	pthread_mutex_lock(&fs->table_lock);
	for (;;) {
		bool fresh_enough = n->list && rfs_mono_now() - n->list_time <
						       fs->conf->dir_ttl;
		bool failing = n->list_rc && rfs_mono_now() < n->list_retry;

		if (fresh_enough || (failing && n->list &&
				     rfs_unreachable_or_busy(n->list_rc))) {
			*out = rfs_listing_get(n->list);
			pthread_mutex_unlock(&fs->table_lock);
			return 0;
		}
		if (failing || (waited && !n->list_busy && n->list_rc)) {
			rc = n->list_rc;
			pthread_mutex_unlock(&fs->table_lock);
			return rc;
		}
		if (nowait) { /* a fetch to make or wait for */
			pthread_mutex_unlock(&fs->table_lock);
			return RFS_WOULD_BLOCK;
		}
		if (!n->list_busy)
			break;
		pthread_cond_wait(&fs->list_cv, &fs->table_lock);
		waited = true;
	}
	n->list_busy = true;
	rc = rfs_did_rec_copy(&rec, &n->rec);
	pthread_mutex_unlock(&fs->table_lock);

	if (!rc)
		rc = fetch_listing(fs, &rec, &fresh, &offline);

	pthread_mutex_lock(&fs->table_lock);
	n->list_busy = false;
	pthread_cond_broadcast(&fs->list_cv);
	rc = fetch_done(fs, n, rc, fresh, offline, out);
	pthread_mutex_unlock(&fs->table_lock);
	rfs_did_rec_release(&rec);
	return rc;
}

const struct rfs_entry *rfs_listing_find(const struct rfs_listing *l,
					 const char *name)
{
	struct rfs_entry key = { .name = (char *)name };

	return bsearch(&key, l->e, l->n, sizeof(*l->e), entry_cmp);
}

/* ---- times asked for late ---- */

/*
 * Entries whose times one request round asks for: the catalogue client
 * sends a listing's metadata four batches of a thousand at a time.
 */
#define TIMES_WINDOW 4000

/* Under table_lock: copies of up to TIMES_WINDOW untimed entries from
 * @idx on (wrapping: `ls` may sort in another order), their places in
 * @at. */
static int untimed_window(const struct rfs_listing *l, size_t idx,
			  struct rfs_did_list *dl, size_t *at)
{
	struct rfs_did_rec r;
	int rc = 0;

	for (size_t k = 0; !rc && k < l->n && dl->n < TIMES_WINDOW; k++) {
		size_t j = (idx + k) % l->n;

		if (!l->e[j].untimed)
			continue;
		rc = rfs_did_rec_copy(&r, &l->e[j].rec);
		if (!rc)
			rc = rfs_did_list_take(dl, &r);
		if (!rc)
			at[dl->n - 1] = j;
	}
	return rc;
}

/* Keeps the listing again once all its times are known, for offline use. */
static void resave_listing(struct rfs_fs *fs, const struct rfs_did_rec *dir,
			   const struct rfs_listing *l)
{
	struct rfs_did_list dl;
	struct rfs_did_rec r;
	int rc = 0;

	rfs_did_list_init(&dl);
	pthread_mutex_lock(&fs->table_lock);
	for (size_t i = 0; !rc && i < l->n; i++) {
		rc = rfs_did_rec_copy(&r, &l->e[i].rec);
		if (!rc)
			rc = rfs_did_list_take(&dl, &r);
	}
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc)
		save_children(fs, dir, &dl);
	rfs_did_list_release(&dl);
}

/*
 * Makes entry @idx of @dir's listing @l timed: its times and those of the
 * untimed entries after it come in one round of bulk requests. One thread
 * asks at a time; the others wait for its answer. When the catalogue
 * does not answer, the entries are dated at mount, as an eager listing's
 * would be.
 */
void rfs_entry_times(struct rfs_fs *fs, struct rfs_node *dir,
		     struct rfs_listing *l, size_t idx)
{
	struct rfs_did_list dl;
	struct rfs_did_rec parent;
	size_t *at;
	bool done;
	int rc;

	/* every lookup comes here: most find the entry timed */
	pthread_mutex_lock(&fs->table_lock);
	done = !l->e[idx].untimed;
	pthread_mutex_unlock(&fs->table_lock);
	if (done)
		return;
	at = malloc(TIMES_WINDOW * sizeof(*at));
	rfs_did_list_init(&dl);
	pthread_mutex_lock(&fs->table_lock);
	while (l->times_busy)
		pthread_cond_wait(&fs->list_cv, &fs->table_lock);
	if (!at || !l->e[idx].untimed || rfs_did_rec_copy(&parent, &dir->rec)) {
		pthread_mutex_unlock(&fs->table_lock);
		free(at);
		return;
	}
	l->times_busy = true;
	rc = untimed_window(l, idx, &dl, at);
	pthread_mutex_unlock(&fs->table_lock);

	if (!rc)
		rc = rfs_catalog_fill_meta(fs->cat, fs->mount_id, &dl);
	if (rc)
		rfs_log_limited(LOG_WARNING, "bulkmeta",
				"no times for the entries of '%s%s%s'",
				parent.scope, parent.name ? ":" : "",
				parent.name ? parent.name : "");

	pthread_mutex_lock(&fs->table_lock);
	for (size_t i = 0; i < dl.n; i++) {
		struct rfs_entry *e = &l->e[at[i]];

		if (!rc) {
			e->rec.created = dl.v[i].created;
			e->rec.updated = dl.v[i].updated;
			/* content listings lack it; bulkmeta has it */
			if (!e->rec.account[0])
				memcpy(e->rec.account, dl.v[i].account,
				       sizeof(e->rec.account));
		}
		e->untimed = false;
		l->untimed--;
	}
	if (!dl.n) { /* nothing copied: this one goes undated */
		l->e[idx].untimed = false;
		l->untimed--;
	}
	done = !rc && l->untimed == 0;
	l->times_busy = false;
	pthread_cond_broadcast(&fs->list_cv);
	pthread_mutex_unlock(&fs->table_lock);
	rfs_did_list_release(&dl);
	free(at);
	if (done)
		resave_listing(fs, &parent, l);
	rfs_did_rec_release(&parent);
}

/* Whether entry @idx of @l waits for its times (a bulk request). */
bool rfs_entry_untimed(struct rfs_fs *fs, const struct rfs_listing *l,
		       size_t idx)
{
	bool yes;

	pthread_mutex_lock(&fs->table_lock);
	yes = l->e[idx].untimed;
	pthread_mutex_unlock(&fs->table_lock);
	return yes;
}
