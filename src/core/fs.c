#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs_int.h"
#include "core/verify.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

#define NAME_BUF (NAME_MAX + 1)
#define BLKSIZE (1024 * 1024)

struct entry {
	char *name; /* the POSIX name shown */
	uint64_t ino;
	struct rfs_did_rec rec;
	/* resolved ahead with a sibling's (under table_lock) */
	struct rfs_replicas *reps;
	double reps_time;
	bool untimed; /* times not asked for yet (under table_lock) */
};

/*
 * One answer of the catalogue for a directory: immutable, refcounted,
 * but for what is asked for later under table_lock (entries' times and
 * replicas).
 */
struct listing {
	unsigned refs; /* atomic */
	size_t n;
	struct entry *e; /* sorted by name */
	size_t untimed;	 /* entries still untimed */
	bool times_busy; /* a thread is asking for times */
};

struct rfs_node {
	uint64_t ino;
	uint64_t nlookup; /* the kernel's references */
	unsigned refs;	  /* ours: operations in progress, open handles */
	struct rfs_did_rec rec;
	struct listing *list;
	double list_time;
	bool list_busy; /* a thread is fetching the listing */
	/* after a failed fetch: its error, served without asking again
	 * until list_retry (monotonic seconds), so that a catalogue that does
	 * not answer costs one timeout, not one per access or per waiter */
	int list_rc;
	double list_retry;
	struct rfs_replicas *reps;
	double reps_time;
	/* the directory it was last looked up in, and its place there: a
	 * hint for resolving siblings' replicas together */
	uint64_t parent;
	size_t pidx;
	/* as a directory: the batch of its files' replicas resolved next,
	 * and the entry a sequential opener would miss next */
	size_t rep_batch;
	size_t rep_next;
	struct rfs_node *next; /* hash chain */
};

struct rfs_dir {
	struct rfs_dir *prev, *next; /* fs->open_dirs, under open_lock */
	struct rfs_fs *fs;
	struct rfs_node *node;
	struct listing *list;
};

int rfs_fs_errno(int rc)
{
	switch (-rc) {
	case 0:
	case ENOENT:
	case EACCES:
	case EPERM:
	case ENOMEM:
	case ENOTDIR:
	case EISDIR:
	case EROFS:
	case ENODATA:
	case ERANGE:
	case ESTALE:
	case EINVAL:
	case ENOTSUP:
	case EINPROGRESS: /* RFS_WOULD_BLOCK */
		return rc;
	default:
		return -EIO;
	}
}

/* ---- listings ---- */

static void listing_put(struct listing *l)
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

static struct listing *listing_get(struct listing *l)
{
	__atomic_add_fetch(&l->refs, 1, __ATOMIC_RELAXED);
	return l;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static const char *rec_label(const struct rfs_did_rec *r)
{
	return r->name ? r->name : r->scope;
}

/* Entry @i gets its shown name, or -EINVAL if it cannot have one. */
static int name_entry(struct entry *e, bool qualify)
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
static int qualify_duplicates(struct listing *l, const char *parent_scope)
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
static void drop_duplicates(struct listing *l, const char *where)
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

static void adopt_record(struct listing *l, struct rfs_did_rec *r,
			 const char *where)
{
	struct entry *e = &l->e[l->n];

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
			 struct listing **out)
{
	struct listing *l = calloc(1, sizeof(*l));
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
		listing_put(l);
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

static int fetch_children(struct rfs_fs *fs, const struct rfs_did_rec *rec,
			  struct rfs_did_list *dl, bool *lazy)
{
	int rc;

	*lazy = false;
	switch (rec->type) {
	case RFS_DID_ROOT:
		return rfs_catalog_list_scopes(fs->cat, dl);
	case RFS_DID_SCOPE:
		rc = rfs_catalog_list_top(fs->cat, rec->scope, dl);
		break;
	case RFS_DID_DATASET:
	case RFS_DID_CONTAINER:
		rc = rfs_catalog_list_content(fs->cat, rec->scope, rec->name,
					      dl);
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
	if (!*lazy && dl->n && rfs_catalog_fill_meta(fs->cat, dl))
		rfs_log_limited(LOG_WARNING, "bulkmeta",
				"no metadata for the entries of '%s%s%s'",
				rec->scope, rec->name ? ":" : "",
				rec->name ? rec->name : "");
	return 0;
}

static bool unreachable(int rc);

/* The key of a catalogue answer in the cache: kind, scope, name. */
static void meta_key(char *key, size_t len, char kind,
		     const struct rfs_did_rec *rec)
{
	snprintf(key, len, "%c\x1f%s\x1f%s", kind, rec->scope,
		 rec->name ? rec->name : "");
}

void rfs_meta_store(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		    const struct rfs_buf *b)
{
	char key[1024];

	meta_key(key, sizeof(key), kind, rec);
	rfs_cache_meta_put(fs->cache, key, b->data ? b->data : "", b->len);
}

int rfs_meta_load(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		  char **val, size_t *len)
{
	char key[1024];
	time_t stored;

	if (!fs->cache)
		return -ENOENT;
	meta_key(key, sizeof(key), kind, rec);
	return rfs_cache_meta_get(fs->cache, key, (void **)val, len, &stored);
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
			 struct listing **out, bool *offline)
{
	struct rfs_did_list dl;
	bool lazy = false;
	int rc;

	*offline = false;
	rfs_did_list_init(&dl);
	rc = fetch_children(fs, rec, &dl, &lazy);
	if (!rc) {
		save_children(fs, rec, &dl);
	} else if (unreachable(rc) && load_children(fs, rec, &dl) == 0) {
		*offline = true; /* whatever times were kept, or none */
		rc = 0;
	}
	if (!rc)
		rc = build_listing(rec, &dl, lazy, out);
	rfs_did_list_release(&dl);
	return rc;
}

/* Errors that say the catalogue could not be reached, not that it said no */
bool rfs_unreachable(int rc)
{
	/* -EHOSTUNREACH also while the catalogue's offline window is open */
	return rc == -ECONNREFUSED || rc == -ETIMEDOUT || rc == -EHOSTUNREACH ||
	       rc == -ENETUNREACH || rc == -ENETDOWN || rc == -EHOSTDOWN ||
	       rc == -ECONNRESET;
}

/* For listings a busy catalogue (429/503) counts as out of reach too. */
static bool unreachable(int rc)
{
	return rfs_unreachable(rc) || rc == -EBUSY;
}

/* ---- nodes ---- */

static struct rfs_node *find_node(struct rfs_fs *fs, uint64_t ino)
{
	struct rfs_node *n = fs->buckets[ino % fs->nbuckets];

	while (n && n->ino != ino)
		n = n->next;
	return n;
}

static void rehash(struct rfs_fs *fs)
{
	size_t nb = fs->nbuckets * 4;
	struct rfs_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < fs->nbuckets; i++) {
		struct rfs_node *n = fs->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			n->next = b[n->ino % nb];
			b[n->ino % nb] = n;
		}
	}
	free(fs->buckets);
	fs->buckets = b;
	fs->nbuckets = nb;
}

static void insert_node(struct rfs_fs *fs, struct rfs_node *n)
{
	if (fs->nnodes >= fs->nbuckets)
		rehash(fs);
	n->next = fs->buckets[n->ino % fs->nbuckets];
	fs->buckets[n->ino % fs->nbuckets] = n;
	fs->nnodes++;
}

static void free_node(struct rfs_node *n)
{
	listing_put(n->list);
	if (n->reps)
		rfs_replicas_put(n->reps);
	rfs_did_rec_release(&n->rec);
	free(n);
}

/* Under table_lock. */
static void maybe_free(struct rfs_fs *fs, struct rfs_node *n)
{
	struct rfs_node **pp;

	if (n == fs->root || n->nlookup || n->refs)
		return;
	pp = &fs->buckets[n->ino % fs->nbuckets];
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	fs->nnodes--;
	free_node(n);
}

static bool same_did(const struct rfs_did_rec *a, const struct rfs_did_rec *b)
{
	return !strcmp(a->scope, b->scope) &&
	       !((a->name == NULL) != (b->name == NULL)) &&
	       (!a->name || !strcmp(a->name, b->name));
}

/*
 * Under table_lock: the node of @e, created if needed, its record updated
 * from the fresher listing. A 64-bit hash collision moves to the next
 * free number.
 */
static int node_for_entry(struct rfs_fs *fs, const struct entry *e,
			  struct rfs_node **out)
{
	uint64_t ino = e->ino;
	struct rfs_node *n;
	struct rfs_did_rec copy;
	int rc;

	while ((n = find_node(fs, ino)) && !same_did(&n->rec, &e->rec))
		ino = ino + 1 < 2 ? 2 : ino + 1;
	rc = rfs_did_rec_copy(&copy, &e->rec);
	if (rc)
		return rc;
	if (n) {
		rfs_did_rec_release(&n->rec);
		n->rec = copy;
	} else {
		n = calloc(1, sizeof(*n));
		if (!n) {
			rfs_did_rec_release(&copy);
			return -ENOMEM;
		}
		n->ino = ino;
		n->rec = copy;
		insert_node(fs, n);
	}
	*out = n;
	return 0;
}

static struct rfs_node *node_get(struct rfs_fs *fs, uint64_t ino)
{
	struct rfs_node *n;

	pthread_mutex_lock(&fs->table_lock);
	n = find_node(fs, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

static void node_put(struct rfs_fs *fs, struct rfs_node *n)
{
	pthread_mutex_lock(&fs->table_lock);
	n->refs--;
	maybe_free(fs, n);
	pthread_mutex_unlock(&fs->table_lock);
}

static bool is_dir(enum rfs_did_type t)
{
	return t != RFS_DID_FILE;
}

/* Under table_lock (the record may be replaced by a lookup). */
static void fill_attr(struct rfs_fs *fs, uint64_t ino,
		      const struct rfs_did_rec *r, struct rfs_attr *a)
{
	const struct rfs_conf *conf = fs->conf;

	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->uid = conf->uid;
	a->gid = conf->gid;
	a->nlink = 1; /* unknown subdirectory count: fts must not guess */
	a->blksize = BLKSIZE;
	a->mtime = r->updated	? r->updated
		   : r->created ? r->created
				: fs->start;
	a->ctime = r->created ? r->created : a->mtime;
	a->entry_ttl = conf->dir_ttl;
	if (is_dir(r->type)) {
		a->mode = S_IFDIR | 0555;
		a->attr_ttl = conf->dir_ttl;
		return;
	}
	a->mode = S_IFREG | 0444;
	a->size = r->has_bytes ? r->bytes : 0;
	a->blocks = (a->size + 511) / 512;
	a->attr_ttl = conf->file_ttl; /* a file DID's bytes never change */
}

/*
 * The listing of @n, fetched if missing or older than dir_ttl. Only one
 * thread fetches a given directory; the others wait for its answer. When
 * the catalogue cannot be reached, an older listing is served.
 */
/* Under table_lock: what a failed or offline fetch leaves on the node. */
static int fetch_done(struct rfs_fs *fs, struct rfs_node *n, int rc,
		      struct listing *fresh, bool offline, struct listing **out)
{
	double retry = fs->conf->offline_retry < fs->conf->dir_ttl
			       ? fs->conf->offline_retry
			       : fs->conf->dir_ttl;

	if (!rc) {
		listing_put(n->list);
		n->list = fresh;
		/* an offline copy is asked for again once the retry is due */
		n->list_time = rfs_mono_now() -
			       (offline ? fs->conf->dir_ttl - retry : 0);
		n->list_rc = 0;
	} else if (rc != -ENOMEM) {
		n->list_rc = rc;
		n->list_retry = rfs_mono_now() + (retry > 1 ? retry : 1);
	}
	if (!rc || (n->list && unreachable(rc))) {
		*out = listing_get(n->list);
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
static int node_listing(struct rfs_fs *fs, struct rfs_node *n,
			struct listing **out, bool nowait)
{
	struct rfs_did_rec rec;
	struct listing *fresh = NULL;
	bool offline = false, waited = false;
	int rc;

	pthread_mutex_lock(&fs->table_lock);
	for (;;) {
		bool fresh_enough = n->list && rfs_mono_now() - n->list_time <
						       fs->conf->dir_ttl;
		bool failing = n->list_rc && rfs_mono_now() < n->list_retry;

		if (fresh_enough ||
		    (failing && n->list && unreachable(n->list_rc))) {
			*out = listing_get(n->list);
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

static const struct entry *listing_find(const struct listing *l,
					const char *name)
{
	struct entry key = { .name = (char *)name };

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
static int untimed_window(const struct listing *l, size_t idx,
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
			   const struct listing *l)
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
static void entry_times(struct rfs_fs *fs, struct rfs_node *dir,
			struct listing *l, size_t idx)
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
		rc = rfs_catalog_fill_meta(fs->cat, &dl);
	if (rc)
		rfs_log_limited(LOG_WARNING, "bulkmeta",
				"no times for the entries of '%s%s%s'",
				parent.scope, parent.name ? ":" : "",
				parent.name ? parent.name : "");

	pthread_mutex_lock(&fs->table_lock);
	for (size_t i = 0; i < dl.n; i++) {
		struct entry *e = &l->e[at[i]];

		if (!rc) {
			e->rec.created = dl.v[i].created;
			e->rec.updated = dl.v[i].updated;
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

/* ---- operations ---- */

/*
 * With no -o schemes, the catalogue is asked for every scheme this build
 * reads: Rucio returns no PFN of a scheme left out, so a lake whose RSEs
 * speak plain http would list every file and read none. A scheme no
 * transport reads (root:// today) is not asked for.
 */
static int ask_readable_schemes(struct rfs_catalog *cat)
{
	struct rfs_strv sv;
	const char *s;
	int rc = 0;

	rfs_strv_init(&sv);
	for (size_t i = 0; !rc && (s = rfs_transports_scheme(i)); i++)
		rc = rfs_strv_push(&sv, s);
	if (!rc)
		rc = rfs_catalog_set_schemes(cat, &sv);
	rfs_strv_release(&sv);
	return rc;
}

int rfs_fs_new(struct rfs_fs **out, const struct rfs_conf *conf)
{
	struct rfs_fs *fs = calloc(1, sizeof(*fs));
	int rc = -ENOMEM;

	if (!fs)
		return -ENOMEM;
	fs->conf = conf;
	fs->start = time(NULL);
	pthread_mutex_init(&fs->table_lock, NULL);
	pthread_cond_init(&fs->list_cv, NULL);
	pthread_mutex_init(&fs->inflight_lock, NULL);
	pthread_cond_init(&fs->inflight_cv, NULL);
	pthread_mutex_init(&fs->stats_lock, NULL);
	pthread_mutex_init(&fs->open_lock, NULL);
	pthread_mutex_init(&fs->verify_lock, NULL);
	fs->nbuckets = 1024;
	fs->buckets = calloc(fs->nbuckets, sizeof(*fs->buckets));
	fs->root = calloc(1, sizeof(*fs->root));
	if (!fs->buckets || !fs->root)
		goto fail;
	fs->root->ino = RFS_ROOT_INO;
	fs->root->nlookup = 1;
	fs->root->rec.type = RFS_DID_ROOT;
	fs->root->rec.scope = strdup("");
	if (!fs->root->rec.scope)
		goto fail;
	insert_node(fs, fs->root);
	rc = rfs_catalog_new(&fs->cat, conf);
	if (!rc)
		rc = rfs_transports_open(&fs->tps, conf);
	if (!rc && !conf->schemes.n)
		rc = ask_readable_schemes(fs->cat);
	if (!rc) {
		*out = fs;
		return 0;
	}
fail:
	rfs_fs_free(fs);
	return rc;
}

void rfs_fs_free(struct rfs_fs *fs)
{
	if (!fs)
		return;
	while (fs->open_files)
		rfs_fs_release(fs, fs->open_files);
	while (fs->open_dirs)
		rfs_fs_releasedir(fs->open_dirs);
	for (size_t i = 0; fs->buckets && i < fs->nbuckets; i++) {
		struct rfs_node *n = fs->buckets[i], *next;

		for (; n; n = next) {
			next = n->next;
			free_node(n);
		}
	}
	if (fs->root && !fs->nnodes)
		free_node(fs->root);
	free(fs->buckets);
	rfs_ctl_stop(fs);
	rfs_prefetch_stop(fs);
	rfs_verify_stop(fs);
	rfs_cache_close(fs->cache);
	rfs_transports_close(fs->tps);
	rfs_catalog_free(fs->cat);
	pthread_cond_destroy(&fs->inflight_cv);
	pthread_mutex_destroy(&fs->inflight_lock);
	pthread_mutex_destroy(&fs->stats_lock);
	pthread_mutex_destroy(&fs->open_lock);
	pthread_mutex_destroy(&fs->verify_lock);
	pthread_cond_destroy(&fs->list_cv);
	pthread_mutex_destroy(&fs->table_lock);
	free(fs);
}

const struct rfs_conf *rfs_fs_conf(const struct rfs_fs *fs)
{
	return fs->conf;
}

int rfs_fs_prepare(struct rfs_fs *fs, char *err, size_t errlen)
{
	if (!fs->conf->cache)
		return 0;
	return rfs_cache_check_dir(fs->conf->cache_dir, err, errlen);
}

void rfs_fs_start(struct rfs_fs *fs)
{
	struct rfs_cache_conf cc = {
		.dir = fs->conf->cache_dir,
		.quota = fs->conf->cache_size,
		.block_size = (uint32_t)fs->conf->block_size,
	};
	int rc;

	if (rfs_verify_start(fs))
		rfs_err("no verify workers: whole files are not checked "
			"against the catalogue's checksums");
	if (!fs->conf->cache)
		return;
	rc = rfs_cache_open(&fs->cache, &cc);
	if (rc) {
		rfs_err("cache '%s' cannot be opened (%s); reading from the "
			"network only",
			cc.dir, rfs_errno_reason(rc));
		fs->cache = NULL;
		return;
	}
	rc = rfs_ctl_start(fs);
	if (rc)
		rfs_err("control socket in '%s' not available: %s", cc.dir,
			rfs_errno_reason(rc));
	if (fs->conf->readahead && rfs_prefetch_start(fs))
		rfs_err("no read-ahead workers: reads fetch only what they "
			"need");
}

/* What every file handle derives from its DID, once it has one. */
static void file_ready(struct rfs_file *f, uint64_t ino)
{
	f->ino = ino;
	rfs_cache_id_of(&f->cid, f->did.scope, f->did.name, f->did.adler32);
	snprintf(f->didstr, sizeof(f->didstr), "%s:%s", f->did.scope,
		 f->did.name);
	pthread_mutex_init(&f->pf_lock, NULL);
	f->pf_next = UINT64_MAX; /* no read yet: the first is not "next" */
}

int rfs_fs_file_of(struct rfs_fs *fs, const struct rfs_did_rec *rec,
		   struct rfs_replicas *reps, struct rfs_file **out)
{
	struct rfs_file *f = calloc(1, sizeof(*f));
	int rc = f ? rfs_did_rec_copy(&f->did, rec) : -ENOMEM;

	if (!rc && reps)
		f->reps = rfs_replicas_get(reps);
	else if (!rc)
		rc = rfs_replicas_resolve(fs, &f->did, &f->reps);
	if (rc) {
		if (f)
			rfs_did_rec_release(&f->did);
		free(f);
		return rc;
	}
	file_ready(f, rfs_ino_of(rec->scope, rec->name));
	rc = rfs_verify_attach(fs, f);
	if (rc) {
		rfs_fs_release(fs, f);
		return rc;
	}
	*out = f;
	return 0;
}

bool rfs_fs_can_start_offline(struct rfs_fs *fs, int rc)
{
	char path[4096];

	if (!unreachable(rc) || !fs->conf->cache)
		return false;
	snprintf(path, sizeof(path), "%s/data.mdb", fs->conf->cache_dir);
	return access(path, R_OK) == 0;
}

int rfs_fs_check(struct rfs_fs *fs)
{
	struct rfs_did_list dl;
	int rc = rfs_catalog_login(fs->cat);

	if (rc)
		return rc;
	rc = rfs_catalog_list_scopes(fs->cat, &dl);
	if (!rc)
		rfs_did_list_release(&dl);
	return rc;
}

/* The node of listing entry @e, with one more kernel reference. */
static int ref_entry(struct rfs_fs *fs, uint64_t parent, size_t idx,
		     const struct entry *e, struct rfs_attr *out)
{
	struct rfs_node *n;
	int rc;

	pthread_mutex_lock(&fs->table_lock);
	rc = node_for_entry(fs, e, &n);
	if (!rc) {
		n->nlookup++;
		n->parent = parent;
		n->pidx = idx;
		fill_attr(fs, n->ino, &n->rec, out);
	}
	pthread_mutex_unlock(&fs->table_lock);
	return rc;
}

/* Whether entry @idx of @l waits for its times (a bulk request). */
static bool untimed(struct rfs_fs *fs, const struct listing *l, size_t idx)
{
	bool yes;

	pthread_mutex_lock(&fs->table_lock);
	yes = l->e[idx].untimed;
	pthread_mutex_unlock(&fs->table_lock);
	return yes;
}

int rfs_fs_lookup(struct rfs_fs *fs, uint64_t parent, const char *name,
		  struct rfs_attr *out, int flags)
{
	struct rfs_node *p = node_get(fs, parent);
	struct listing *l = NULL;
	const struct entry *e;
	size_t idx;
	int rc;

	if (!p)
		return -ESTALE;
	rc = node_listing(fs, p, &l, flags & RFS_NOWAIT);
	if (rc) {
		node_put(fs, p);
		return rfs_fs_errno(rc);
	}
	e = listing_find(l, name);
	if (!e) {
		node_put(fs, p);
		listing_put(l);
		return -ENOENT;
	}
	idx = (size_t)(e - l->e);
	if ((flags & RFS_NOWAIT) && untimed(fs, l, idx)) {
		node_put(fs, p);
		listing_put(l);
		return RFS_WOULD_BLOCK;
	}
	entry_times(fs, p, l, idx);
	rc = ref_entry(fs, parent, idx, e, out);
	node_put(fs, p);
	listing_put(l);
	return rc;
}

void rfs_fs_forget(struct rfs_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct rfs_node *n;

	pthread_mutex_lock(&fs->table_lock);
	n = find_node(fs, ino);
	if (n && n != fs->root) {
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->table_lock);
}

int rfs_fs_getattr(struct rfs_fs *fs, uint64_t ino, struct rfs_attr *out)
{
	struct rfs_node *n;
	int rc = 0;

	pthread_mutex_lock(&fs->table_lock);
	n = find_node(fs, ino);
	if (n)
		fill_attr(fs, n->ino, &n->rec, out);
	else
		rc = -ESTALE;
	pthread_mutex_unlock(&fs->table_lock);
	return rc;
}

int rfs_fs_opendir(struct rfs_fs *fs, uint64_t ino, struct rfs_dir **out,
		   int flags)
{
	struct rfs_node *n = node_get(fs, ino);
	struct rfs_dir *d;
	int rc;

	if (!n)
		return -ESTALE;
	d = calloc(1, sizeof(*d));
	rc = d ? node_listing(fs, n, &d->list, flags & RFS_NOWAIT) : -ENOMEM;
	if (rc) {
		free(d);
		node_put(fs, n);
		return rfs_fs_errno(rc);
	}
	d->fs = fs;
	d->node = n; /* keeps the node for "." while open */
	pthread_mutex_lock(&fs->open_lock);
	d->next = fs->open_dirs;
	if (d->next)
		d->next->prev = d;
	fs->open_dirs = d;
	pthread_mutex_unlock(&fs->open_lock);
	*out = d;
	return 0;
}

int rfs_fs_dir_entry(struct rfs_dir *d, size_t idx, const char **name,
		     struct rfs_attr *attr)
{
	struct rfs_fs *fs = d->fs;
	const struct entry *e;

	if (idx < 2) {
		*name = idx ? ".." : ".";
		pthread_mutex_lock(&fs->table_lock);
		fill_attr(fs, d->node->ino, &d->node->rec, attr);
		pthread_mutex_unlock(&fs->table_lock);
		if (idx)
			attr->ino = RFS_ROOT_INO; /* a DID has many parents */
		return 0;
	}
	if (idx - 2 >= d->list->n)
		return -ENOENT;
	e = &d->list->e[idx - 2];
	*name = e->name;
	pthread_mutex_lock(&fs->table_lock); /* times may come meanwhile */
	fill_attr(fs, e->ino, &e->rec, attr);
	pthread_mutex_unlock(&fs->table_lock);
	return 0;
}

int rfs_fs_dir_lookup(struct rfs_dir *d, size_t idx, const char **name,
		      struct rfs_attr *attr)
{
	struct rfs_fs *fs = d->fs;
	const struct entry *e;
	bool untimed;

	if (idx < 2 || idx - 2 >= d->list->n)
		return rfs_fs_dir_entry(d, idx, name, attr);
	e = &d->list->e[idx - 2];
	pthread_mutex_lock(&fs->table_lock);
	untimed = e->untimed;
	pthread_mutex_unlock(&fs->table_lock);
	if (untimed) { /* a name only: `find` needs no more, `ls -l` asks */
		int rc = rfs_fs_dir_entry(d, idx, name, attr);

		return rc ? rc : 1;
	}
	*name = e->name;
	return ref_entry(fs, d->node->ino, idx - 2, e, attr);
}

void rfs_fs_releasedir(struct rfs_dir *d)
{
	struct rfs_fs *fs = d->fs;

	pthread_mutex_lock(&fs->open_lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		fs->open_dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&fs->open_lock);
	listing_put(d->list);
	node_put(d->fs, d->node);
	free(d);
}

/* Opens in one directory, in its order, resolve this many files at once
 * at most: a thousand is the catalogue's limit per request. */
#define REP_BATCH_MAX 512

static bool fresh(const struct rfs_fs *fs, const struct rfs_replicas *r,
		  double t)
{
	return r && rfs_mono_now() - t < fs->conf->replica_ttl;
}

/* Under table_lock: @n's entry in its directory's current listing. */
static struct entry *entry_of(struct rfs_fs *fs, const struct rfs_node *n,
			      struct rfs_node **dir)
{
	struct rfs_node *p = n->parent ? find_node(fs, n->parent) : NULL;
	struct listing *l = p ? p->list : NULL;

	*dir = p;
	if (!l || n->pidx >= l->n || !same_did(&l->e[n->pidx].rec, &n->rec))
		return NULL;
	return &l->e[n->pidx];
}

/*
 * Under table_lock: the DIDs to resolve with @n's, like read-ahead for
 * names. An open that misses right where the last batch ended (tar, cp
 * -r, a loop over a dataset) takes 8 times more of the files that follow
 * it in the listing; any other miss resolves its own file alone.
 */
static size_t batch_of(struct rfs_fs *fs, struct rfs_node *n,
		       struct rfs_did_rec *dids, size_t max, size_t *first)
{
	struct rfs_node *p;
	struct entry *e = entry_of(fs, n, &p);
	struct listing *l;
	size_t k = 1, want;

	if (!e)
		return 0;
	l = p->list;
	want = n->pidx == p->rep_next && p->rep_batch ? p->rep_batch * 8 : 1;
	want = want < max ? want : max;
	*first = n->pidx;
	p->rep_batch = want;
	p->rep_next = n->pidx + 1;
	for (size_t i = n->pidx + 1; i < l->n && k < want; i++) {
		if (l->e[i].rec.type != RFS_DID_FILE ||
		    fresh(fs, l->e[i].reps, l->e[i].reps_time))
			continue;
		if (rfs_did_rec_copy(&dids[k], &l->e[i].rec))
			break;
		k++;
		p->rep_next = i + 1;
	}
	return k - 1; /* beside @n's own, in dids[0] */
}

/* Under table_lock: keeps what a batch resolved, for the siblings' opens. */
static void keep_batch(struct rfs_fs *fs, struct rfs_node *n,
		       const struct rfs_did_rec *dids, struct rfs_replicas **r,
		       size_t k, size_t first)
{
	struct rfs_node *p;
	struct listing *l = entry_of(fs, n, &p) ? p->list : NULL;
	size_t j = 1;

	for (size_t i = first + 1; l && i < l->n && j < k; i++) {
		struct entry *e = &l->e[i];

		if (!same_did(&e->rec, &dids[j]))
			continue;
		if (r[j]) {
			if (e->reps)
				rfs_replicas_put(e->reps);
			e->reps = rfs_replicas_get(r[j]);
			e->reps_time = rfs_mono_now();
		}
		j++;
	}
}

/* Under table_lock: @r becomes @n's replica set, as resolved at @t. */
static void adopt(struct rfs_node *n, struct rfs_replicas *r, double t,
		  struct rfs_replicas **old)
{
	*old = n->reps;
	n->reps = rfs_replicas_get(r);
	n->reps_time = t;
}

/*
 * Under table_lock: @n's replicas if known and fresh, its own or those
 * resolved with a sibling's (then its own from now on).
 */
static bool known(struct rfs_fs *fs, struct rfs_node *n,
		  struct rfs_replicas **out, struct rfs_replicas **old)
{
	struct rfs_node *p;
	struct entry *e;

	*out = NULL;
	*old = NULL;
	if (fresh(fs, n->reps, n->reps_time)) {
		*out = rfs_replicas_get(n->reps);
		return true;
	}
	e = entry_of(fs, n, &p);
	if (e && fresh(fs, e->reps, e->reps_time)) {
		adopt(n, e->reps, e->reps_time, old);
		*out = rfs_replicas_get(e->reps);
		return true;
	}
	return false;
}

/* Under table_lock: as known(), or else the DIDs to ask for in @dids. */
static size_t known_or_batch(struct rfs_fs *fs, struct rfs_node *n,
			     struct rfs_replicas **out,
			     struct rfs_did_rec *dids, size_t *first,
			     struct rfs_replicas **old)
{
	if (known(fs, n, out, old))
		return 0;
	if (rfs_did_rec_copy(&dids[0], &n->rec))
		return 0;
	return 1 + batch_of(fs, n, dids, REP_BATCH_MAX, first);
}

/*
 * The node's replicas: its own while younger than replica_ttl, or those
 * resolved with a sibling's, or from the catalogue together with the
 * batch of siblings batch_of() picks.
 */
static int node_replicas(struct rfs_fs *fs, struct rfs_node *n,
			 struct rfs_replicas **out, bool nowait)
{
	struct rfs_did_rec *dids;
	struct rfs_replicas **r, *old = NULL;
	size_t k = 0, first = 0;
	int rc;

	/* most opens find them: no batch arrays for those */
	pthread_mutex_lock(&fs->table_lock);
	known(fs, n, out, &old);
	pthread_mutex_unlock(&fs->table_lock);
	if (old)
		rfs_replicas_put(old);
	if (*out)
		return 0;
	if (nowait)
		return RFS_WOULD_BLOCK;
	old = NULL;
	dids = calloc(REP_BATCH_MAX, sizeof(*dids));
	r = calloc(REP_BATCH_MAX, sizeof(*r));
	rc = dids && r ? 0 : -ENOMEM;
	pthread_mutex_lock(&fs->table_lock);
	if (!rc)
		k = known_or_batch(fs, n, out, dids, &first, &old);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc && !*out)
		rc = k ? rfs_replicas_resolve_many(fs, dids, k, r) : -ENOMEM;
	pthread_mutex_lock(&fs->table_lock);
	if (k > 1)
		keep_batch(fs, n, dids, r, k, first);
	/* a cache-only set (offline, nothing known) stays with this open
	 * only, so the next open asks the catalogue again */
	if (!rc && !*out && r[0]->n)
		adopt(n, r[0], rfs_mono_now(), &old);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc && !*out)
		*out = r[0];
	if (old)
		rfs_replicas_put(old);
	for (size_t i = 0; i < k; i++) {
		rfs_did_rec_release(&dids[i]);
		if (i && r[i])
			rfs_replicas_put(r[i]);
	}
	free(dids);
	free(r);
	return rc;
}

int rfs_fs_open(struct rfs_fs *fs, uint64_t ino, struct rfs_file **out,
		int flags)
{
	struct rfs_node *n = node_get(fs, ino);
	struct rfs_file *f;
	int rc;

	if (!n)
		return -ESTALE;
	f = calloc(1, sizeof(*f));
	pthread_mutex_lock(&fs->table_lock);
	rc = !f			   ? -ENOMEM
	     : is_dir(n->rec.type) ? -EISDIR
				   : rfs_did_rec_copy(&f->did, &n->rec);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc)
		rc = node_replicas(fs, n, &f->reps, flags & RFS_NOWAIT);
	node_put(fs, n);
	if (rc) {
		if (f)
			rfs_did_rec_release(&f->did);
		free(f);
		return rfs_fs_errno(rc);
	}
	file_ready(f, ino);
	pthread_mutex_lock(&fs->open_lock);
	f->next = fs->open_files;
	if (f->next)
		f->next->prev = f;
	fs->open_files = f;
	pthread_mutex_unlock(&fs->open_lock);
	rc = rfs_verify_attach(fs, f);
	/* verify=always: not a byte before the whole matched */
	if (!rc && fs->conf->verify_always)
		rc = flags & RFS_NOWAIT
			     ? rfs_verify_is_good(f) ? 0 : RFS_WOULD_BLOCK
			     : rfs_verify_whole(fs, f);
	if (rc) {
		rfs_fs_release(fs, f);
		return rfs_fs_errno(rc);
	}
	*out = f;
	return 0;
}

/* Without a cache: the reader's range, straight from a replica. */
static ssize_t read_direct(struct rfs_fs *fs, struct rfs_file *f, void *buf,
			   size_t size, uint64_t off, double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	const struct rfs_source *src = NULL;
	struct iovec iov = { buf, size };
	uint64_t bs = fs->conf->block_size;
	ssize_t got = rfs_replicas_readv(fs, f, &iov, 1, off, &how, &src);

	/* who served them, should the whole not match */
	if (got > 0)
		rfs_verify_fetched(
			fs, f, off / bs,
			(size_t)((off + size - 1) / bs - off / bs + 1), src);
	return got;
}

ssize_t rfs_fs_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
		    size_t size, uint64_t off, int flags)
{
	double deadline = rfs_mono_now() + fs->conf->read_timeout;
	uint64_t fsize = f->reps->size;
	bool nowait = flags & RFS_NOWAIT;
	ssize_t got;
	int rc;

	if (off >= fsize || size == 0)
		return 0;
	if (size > fsize - off)
		size = fsize - off;
	if (nowait && (!fs->cache || rfs_verify_busy(f)))
		return RFS_WOULD_BLOCK;
	rc = rfs_verify_before_read(fs, f, off, size, deadline);
	if (rc)
		return rc;
	if (fs->cache)
		got = rfs_blocks_read(fs, f, buf, size, off, deadline, nowait);
	else
		got = read_direct(fs, f, buf, size, off, deadline);
	/* the read that ends the file is answered once the whole matched */
	if (got == RFS_WOULD_BLOCK)
		rc = rfs_verify_after_read(fs, f, off, buf, 0, deadline, false);
	else
		rc = rfs_verify_after_read(fs, f, off, buf,
					   got > 0 ? (size_t)got : 0, deadline,
					   nowait);
	if (rc)
		return rc;
	return got < 0 ? rfs_fs_errno((int)got) : got;
}

bool rfs_fs_keep_pages(struct rfs_fs *fs, struct rfs_file *f)
{
	return rfs_verify_keep_pages(fs, f);
}

void rfs_fs_release(struct rfs_fs *fs, struct rfs_file *f)
{
	pthread_mutex_lock(&fs->open_lock);
	if (f->prev)
		f->prev->next = f->next;
	else if (fs->open_files == f)
		fs->open_files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&fs->open_lock);
	rfs_verify_detach(fs, f);
	pthread_mutex_destroy(&f->pf_lock);
	rfs_replicas_put(f->reps);
	rfs_did_rec_release(&f->did);
	free(f);
}

int rfs_fs_open_whole(struct rfs_fs *fs, const struct rfs_file *f)
{
	if (!fs->cache || !fs->conf->passthrough || !f->reps->size)
		return -ENOENT;
	return rfs_cache_open_whole(fs->cache, &f->cid, f->reps->size);
}

void rfs_fs_count_whole(struct rfs_fs *fs)
{
	pthread_mutex_lock(&fs->stats_lock);
	fs->whole_opens++;
	pthread_mutex_unlock(&fs->stats_lock);
}

void rfs_fs_statfs(struct rfs_fs *fs, struct rfs_statfs *out)
{
	out->bsize = 4096;
	out->namemax = NAME_MAX;
}

/* ---- extended attributes ---- */

enum xattr_id {
	X_DID,
	X_TYPE,
	X_BYTES,
	X_ADLER32,
	X_MD5,
	X_REPLICAS,
	X_CACHED,
	X_COUNT,
};

static const char *const xattr_names[X_COUNT] = {
	"user.rucio.did",      "user.rucio.type", "user.rucio.bytes",
	"user.rucio.adler32",  "user.rucio.md5",  "user.rucio.replicas",
	"user.ruciofs.cached",
};

/* Whether @r has attribute @id at all (for listxattr and ENODATA). */
static bool has_xattr(const struct rfs_fs *fs, const struct rfs_did_rec *r,
		      enum xattr_id id)
{
	switch (id) {
	case X_DID:
		return r->type != RFS_DID_ROOT;
	case X_TYPE:
		return r->type != RFS_DID_ROOT;
	case X_BYTES:
		return r->has_bytes;
	case X_ADLER32:
		return r->adler32[0] != '\0';
	case X_MD5:
		return r->md5[0] != '\0';
	case X_REPLICAS:
		return r->type == RFS_DID_FILE;
	case X_CACHED:
		return r->type == RFS_DID_FILE && fs->cache;
	default:
		return false;
	}
}

/* The fraction of the file's bytes in the block cache, "0.000".."1.000" */
static int cached_fraction(struct rfs_fs *fs, const struct rfs_did_rec *r,
			   struct rfs_buf *out)
{
	uint64_t bs = rfs_cache_block_size(fs->cache), nblocks, total;
	struct rfs_cache_id id;
	bool pinned;
	int rc;

	rfs_cache_id_of(&id, r->scope, r->name, r->adler32);
	rc = rfs_cache_file_state(fs->cache, &id, &nblocks, &pinned);
	if (rc)
		return rc;
	total = (r->bytes + bs - 1) / bs;
	if (nblocks > total)
		nblocks = total;
	return rfs_buf_printf(out, "%.3f",
			      total ? (double)nblocks / (double)total : 1.0);
}

static int xattr_value(const struct rfs_did_rec *r, enum xattr_id id,
		       struct rfs_buf *out)
{
	switch (id) {
	case X_DID:
		if (r->type == RFS_DID_SCOPE)
			return rfs_buf_addstr(out, r->scope);
		return rfs_buf_printf(out, "%s:%s", r->scope, r->name);
	case X_TYPE:
		return rfs_buf_addstr(out, rfs_did_type_name(r->type));
	case X_BYTES:
		return rfs_buf_printf(out, "%llu",
				      (unsigned long long)r->bytes);
	case X_ADLER32:
		return rfs_buf_addstr(out, r->adler32);
	case X_MD5:
		return rfs_buf_addstr(out, r->md5);
	default:
		return -ENODATA;
	}
}

int rfs_fs_getxattr(struct rfs_fs *fs, uint64_t ino, const char *name,
		    struct rfs_buf *out, int flags)
{
	struct rfs_node *n = node_get(fs, ino);
	struct rfs_did_rec rec = { 0 };
	struct rfs_replicas *r;
	int id, rc = -ENODATA;

	if (!n)
		return -ESTALE;
	/* No SELinux labels, no POSIX ACLs: "not supported" rather than
	 * "none here" lets ls -l stop asking after the first file (coreutils
	 * remembers it per device); ENODATA cost two round trips per file. */
	if (strncmp(name, "user.", 5)) {
		node_put(fs, n);
		return -EOPNOTSUPP;
	}
	/* hidden (not listed): where ruciofs-ctl finds this mount's socket */
	if (!strcmp(name, "user.ruciofs.ctl")) {
		rc = rfs_ctl_path(fs) ? rfs_buf_addstr(out, rfs_ctl_path(fs))
				      : -ENODATA;
		node_put(fs, n);
		return rc;
	}
	for (id = 0; id < X_COUNT && strcmp(name, xattr_names[id]); id++)
		;
	pthread_mutex_lock(&fs->table_lock);
	if (id < X_COUNT && has_xattr(fs, &n->rec, id))
		rc = id == X_REPLICAS || id == X_CACHED
			     ? rfs_did_rec_copy(&rec, &n->rec)
			     : xattr_value(&n->rec, id, out);
	pthread_mutex_unlock(&fs->table_lock);
	/* these two read the network or the disk: not under the lock */
	if (!rc && id == X_CACHED) {
		rc = cached_fraction(fs, &rec, out);
	} else if (!rc && id == X_REPLICAS) {
		rc = node_replicas(fs, n, &r, flags & RFS_NOWAIT);
		if (!rc) {
			rc = rfs_replicas_describe(r, out);
			rfs_replicas_put(r);
		}
	}
	rfs_did_rec_release(&rec);
	node_put(fs, n);
	return rfs_fs_errno(rc);
}

int rfs_fs_listxattr(struct rfs_fs *fs, uint64_t ino, struct rfs_buf *out)
{
	struct rfs_node *n;
	int rc = 0;

	pthread_mutex_lock(&fs->table_lock);
	n = find_node(fs, ino);
	for (int id = 0; n && id < X_COUNT && !rc; id++)
		if (has_xattr(fs, &n->rec, id))
			rc = rfs_buf_add(out, xattr_names[id],
					 strlen(xattr_names[id]) + 1);
	pthread_mutex_unlock(&fs->table_lock);
	return n ? rc : -ESTALE;
}
