/*
 * The replicas of a file node: its own while younger than replica_ttl,
 * or resolved with its siblings' in one catalogue request.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/authz.h"
#include "core/batch.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/node.h"
#include "core/replicas.h"
#include "util/banned.h"

/* Opens in one directory, in its order, resolve this many files at once
 * at most: a thousand is the catalogue's limit per request. */
#define REP_BATCH_MAX 512

/* Replica lists follow the caller: another identity's are not used
 * (Rucio may list, or sign, differently per account). */
static bool fresh(const struct rfs_fs *fs, const struct rfs_replicas *r,
		  double t, uint64_t tag, uint64_t want)
{
	return r && tag == want && rfs_mono_now() - t < fs->conf->replica_ttl;
}

/* Under table_lock: @n's entry in its directory's current listing. */
static struct rfs_entry *entry_of(struct rfs_fs *fs, const struct rfs_node *n,
				  struct rfs_node **dir)
{
	struct rfs_node *p = n->parent ? rfs_node_find(fs, n->parent) : NULL;
	struct rfs_listing *l = p ? p->list : NULL;

	*dir = p;
	if (!l || n->pidx >= l->n || !rfs_same_did(&l->e[n->pidx].rec, &n->rec))
		return NULL;
	return &l->e[n->pidx];
}

/* Under table_lock: @tag's growth in directory @p, else the stalest. */
static struct rfs_rep_grow *grow_of(struct rfs_node *p, uint64_t tag)
{
	struct rfs_rep_grow *g = &p->rep_grow[0];

	for (size_t i = 0; i < RFS_REP_GROW_SLOTS; i++) {
		if (p->rep_grow[i].tag == tag && p->rep_grow[i].batch)
			return &p->rep_grow[i];
		if (p->rep_grow[i].time < g->time)
			g = &p->rep_grow[i];
	}
	return g;
}

/*
 * Under table_lock: the DIDs to resolve with @n's, like read-ahead for
 * names. tar, cp -r and a loop over a dataset open many files of one
 * directory, in whatever order they walk it (cp -r goes by inode), so
 * growth follows membership, not position: each miss in a directory
 * within replica_ttl of the last takes 8 times more of its files that
 * are not known yet, the ones after @n in the listing first, wrapping.
 * Growth is the caller's own: another identity's first miss asks for
 * one file (a new user's cat should not pay for 512 replica lists).
 */
static size_t batch_of(struct rfs_fs *fs, struct rfs_node *n, uint64_t tag,
		       struct rfs_did_rec *dids, size_t max, size_t *first)
{
	double now = rfs_mono_now();
	struct rfs_node *p;
	struct rfs_entry *e = entry_of(fs, n, &p);
	struct rfs_listing *l;
	struct rfs_rep_grow *g;
	size_t k = 1, want;

	if (!e)
		return 0;
	l = p->list;
	g = grow_of(p, tag);
	want = g->tag == tag && g->batch &&
			       now - g->time < fs->conf->replica_ttl
		       ? g->batch * 8
		       : 1;
	want = want < max ? want : max;
	*first = n->pidx;
	*g = (struct rfs_rep_grow){ tag, want, now };
	for (size_t s = 1; s < l->n && k < want; s++) {
		struct rfs_entry *o = &l->e[(n->pidx + s) % l->n];

		if (o->rec.type != RFS_DID_FILE ||
		    fresh(fs, o->reps, o->reps_time, o->reps_tag, tag))
			continue;
		if (rfs_did_rec_copy(&dids[k], &o->rec))
			break;
		k++;
	}
	return k - 1; /* beside @n's own, in dids[0] */
}

/* Under table_lock: keeps what a batch resolved, for the siblings' opens. */
static void keep_batch(struct rfs_fs *fs, struct rfs_node *n, uint64_t tag,
		       const struct rfs_did_rec *dids, struct rfs_replicas **r,
		       size_t k, size_t first)
{
	struct rfs_node *p;
	struct rfs_listing *l = entry_of(fs, n, &p) ? p->list : NULL;
	size_t j = 1;

	for (size_t s = 1; l && s < l->n && j < k; s++) {
		struct rfs_entry *e = &l->e[(first + s) % l->n];

		if (!rfs_same_did(&e->rec, &dids[j]))
			continue;
		if (r[j]) {
			if (e->reps)
				rfs_replicas_put(e->reps);
			e->reps = rfs_replicas_get(r[j]);
			e->reps_time = rfs_mono_now();
			e->reps_tag = tag;
		}
		j++;
	}
}

/* Under table_lock: @r becomes @n's replica set, as resolved at @t for
 * the identity of @tag. */
static void adopt(struct rfs_node *n, struct rfs_replicas *r, double t,
		  uint64_t tag, struct rfs_replicas **old)
{
	*old = n->reps;
	n->reps = rfs_replicas_get(r);
	n->reps_time = t;
	n->reps_tag = tag;
}

/*
 * Under table_lock: @n's replicas if known and fresh, its own or those
 * resolved with a sibling's (then its own from now on).
 */
static bool known(struct rfs_fs *fs, struct rfs_node *n, uint64_t tag,
		  struct rfs_replicas **out, struct rfs_replicas **old)
{
	struct rfs_node *p;
	struct rfs_entry *e;

	*out = NULL;
	*old = NULL;
	if (fresh(fs, n->reps, n->reps_time, n->reps_tag, tag)) {
		*out = rfs_replicas_get(n->reps);
		return true;
	}
	e = entry_of(fs, n, &p);
	if (e && fresh(fs, e->reps, e->reps_time, e->reps_tag, tag)) {
		adopt(n, e->reps, e->reps_time, tag, old);
		*out = rfs_replicas_get(e->reps);
		return true;
	}
	return false;
}

/* Under table_lock: as known(), or else the DIDs to ask for in @dids. */
static size_t known_or_batch(struct rfs_fs *fs, struct rfs_node *n,
			     uint64_t tag, struct rfs_replicas **out,
			     struct rfs_did_rec *dids, size_t *first,
			     struct rfs_replicas **old)
{
	if (known(fs, n, tag, out, old))
		return 0;
	if (rfs_did_rec_copy(&dids[0], &n->rec))
		return 0;
	return 1 + batch_of(fs, n, tag, dids, REP_BATCH_MAX, first);
}

/*
 * The node's replicas: its own while younger than replica_ttl, or those
 * resolved with a sibling's, or from the catalogue together with the
 * batch of siblings batch_of() picks.
 */
int rfs_node_replicas(struct rfs_fs *fs, struct rfs_cred *who,
		      struct rfs_node *n, struct rfs_replicas **out,
		      bool nowait)
{
	uint64_t tag = rfs_authz_tag(who);
	struct rfs_did_rec *dids;
	struct rfs_replicas **r, *old = NULL;
	size_t k = 0, first = 0;
	int rc;

	/* most opens find them: no batch arrays for those */
	pthread_mutex_lock(&fs->table_lock);
	known(fs, n, tag, out, &old);
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
		k = known_or_batch(fs, n, tag, out, dids, &first, &old);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc && !*out)
		rc = k ? rfs_replicas_resolve_many(fs, who, dids, k, r)
		       : -ENOMEM;
	pthread_mutex_lock(&fs->table_lock);
	if (k > 1)
		keep_batch(fs, n, tag, dids, r, k, first);
	/* a cache-only set (offline, nothing known) stays with this open
	 * only, so the next open asks the catalogue again */
	if (!rc && !*out && r[0]->n)
		adopt(n, r[0], rfs_mono_now(), tag, &old);
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
