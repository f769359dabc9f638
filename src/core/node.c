/*
 * The inode table: a node for every scope and DID the kernel was told
 * of, found by inode number (a 64-bit hash of "scope:name", stable
 * across remounts), freed when the kernel forgets it and nothing uses it.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/authz.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/node.h"
#include "core/replicas.h"
#include "util/banned.h"
#define BLKSIZE (1024 * 1024)

struct rfs_node *rfs_node_find(struct rfs_fs *fs, uint64_t ino)
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

void rfs_node_insert(struct rfs_fs *fs, struct rfs_node *n)
{
	if (fs->nnodes >= fs->nbuckets)
		rehash(fs);
	n->next = fs->buckets[n->ino % fs->nbuckets];
	fs->buckets[n->ino % fs->nbuckets] = n;
	fs->nnodes++;
}

void rfs_node_free(struct rfs_node *n)
{
	rfs_listing_put(n->list);
	if (n->reps)
		rfs_replicas_put(n->reps);
	rfs_did_rec_release(&n->rec);
	free(n);
}

/* Under table_lock. */
void rfs_node_maybe_free(struct rfs_fs *fs, struct rfs_node *n)
{
	struct rfs_node **pp;

	if (n == fs->root || n->nlookup || n->refs)
		return;
	pp = &fs->buckets[n->ino % fs->nbuckets];
	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	fs->nnodes--;
	rfs_node_free(n);
}

bool rfs_same_did(const struct rfs_did_rec *a, const struct rfs_did_rec *b)
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
int rfs_node_for_entry(struct rfs_fs *fs, const struct rfs_entry *e,
		       struct rfs_node **out)
{
	uint64_t ino = e->ino;
	struct rfs_node *n;
	struct rfs_did_rec copy;
	int rc;

	while ((n = rfs_node_find(fs, ino)) && !rfs_same_did(&n->rec, &e->rec))
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
		rfs_node_insert(fs, n);
	}
	*out = n;
	return 0;
}

struct rfs_node *rfs_node_get(struct rfs_fs *fs, uint64_t ino)
{
	struct rfs_node *n;

	pthread_mutex_lock(&fs->table_lock);
	n = rfs_node_find(fs, ino);
	if (n)
		n->refs++;
	pthread_mutex_unlock(&fs->table_lock);
	return n;
}

void rfs_node_put(struct rfs_fs *fs, struct rfs_node *n)
{
	pthread_mutex_lock(&fs->table_lock);
	n->refs--;
	rfs_node_maybe_free(fs, n);
	pthread_mutex_unlock(&fs->table_lock);
}

/* Under table_lock (the record may be replaced by a lookup). */
void rfs_fill_attr(struct rfs_fs *fs, uint64_t ino, const struct rfs_did_rec *r,
		   struct rfs_attr *a)
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
	if (rfs_is_dir(r->type)) {
		a->mode = S_IFDIR | 0555;
		a->attr_ttl = conf->dir_ttl;
		return;
	}
	a->mode = S_IFREG | 0444;
	a->size = r->has_bytes ? r->bytes : 0;
	a->blocks = (a->size + 511) / 512;
	a->attr_ttl = conf->file_ttl; /* a file DID's bytes never change */
}

void rfs_fs_forget(struct rfs_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct rfs_node *n;

	pthread_mutex_lock(&fs->table_lock);
	n = rfs_node_find(fs, ino);
	if (n && n != fs->root) {
		n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
		rfs_node_maybe_free(fs, n);
	}
	pthread_mutex_unlock(&fs->table_lock);
}

int rfs_fs_getattr(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		   struct rfs_attr *out)
{
	struct rfs_did_rec copy;
	bool kept = false;
	struct rfs_node *n;
	int rc = 0;

	pthread_mutex_lock(&fs->table_lock);
	n = rfs_node_find(fs, ino);
	if (n) {
		rfs_fill_attr(fs, n->ino, &n->rec, out);
		kept = rfs_authz_attr_keep(fs, &n->rec, &copy);
	} else {
		rc = -ESTALE;
	}
	pthread_mutex_unlock(&fs->table_lock);
	rfs_authz_attr_done(fs, who, &copy, kept, out);
	return rc;
}
