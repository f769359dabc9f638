/*
 * The namespace operations: lookups, and directories open for reading
 * (a snapshot of their listing, stable while open).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include "authz/cred.h"
#include "core/authz.h"
#include "core/core.h"
#include "core/listing.h"
#include "core/node.h"
#include "util/banned.h"

struct rfs_dir {
	struct rfs_dir *prev, *next; /* fs->open_dirs, under open_lock */
	struct rfs_fs *fs;
	struct rfs_cred *who; /* who opened it */
	struct rfs_node *node;
	struct rfs_listing *list;
};

/* The node of listing entry @e, with one more kernel reference. */
static int ref_entry(struct rfs_fs *fs, const struct rfs_cred *who,
		     uint64_t parent, size_t idx, const struct rfs_entry *e,
		     struct rfs_attr *out)
{
	struct rfs_did_rec copy;
	bool kept = false;
	struct rfs_node *n;
	int rc;

	pthread_mutex_lock(&fs->table_lock);
	rc = rfs_node_for_entry(fs, e, &n);
	if (!rc) {
		n->nlookup++;
		n->parent = parent;
		n->pidx = idx;
		rfs_fill_attr(fs, n->ino, &n->rec, out);
		kept = rfs_authz_attr_keep(fs, &n->rec, &copy);
	}
	pthread_mutex_unlock(&fs->table_lock);
	rfs_authz_attr_done(fs, who, &copy, kept, out);
	return rc;
}

/* Attributes of @rec for @d's opener; takes table_lock. */
static void dir_attr(struct rfs_dir *d, uint64_t ino,
		     const struct rfs_did_rec *rec, struct rfs_attr *attr)
{
	struct rfs_fs *fs = d->fs;
	struct rfs_did_rec copy;
	bool kept;

	pthread_mutex_lock(&fs->table_lock); /* times may come meanwhile */
	rfs_fill_attr(fs, ino, rec, attr);
	kept = rfs_authz_attr_keep(fs, rec, &copy);
	pthread_mutex_unlock(&fs->table_lock);
	rfs_authz_attr_done(fs, d->who, &copy, kept, attr);
}

int rfs_fs_lookup(struct rfs_fs *fs, struct rfs_cred *who, uint64_t parent,
		  const char *name, struct rfs_attr *out, int flags)
{
	struct rfs_node *p = rfs_node_get(fs, parent);
	struct rfs_listing *l = NULL;
	const struct rfs_entry *e;
	size_t idx;
	int rc;

	if (!p)
		return -ESTALE;
	rc = rfs_authz_names(fs, who);
	if (!rc)
		rc = rfs_node_listing(fs, p, &l, flags & RFS_NOWAIT);
	if (rc) {
		rfs_node_put(fs, p);
		return rfs_fs_errno(rc);
	}
	e = rfs_listing_find(l, name);
	if (!e) {
		rfs_node_put(fs, p);
		rfs_listing_put(l);
		return -ENOENT;
	}
	idx = (size_t)(e - l->e);
	if ((flags & RFS_NOWAIT) && rfs_entry_untimed(fs, l, idx)) {
		rfs_node_put(fs, p);
		rfs_listing_put(l);
		return RFS_WOULD_BLOCK;
	}
	rfs_entry_times(fs, p, l, idx);
	rc = ref_entry(fs, who, parent, idx, e, out);
	rfs_node_put(fs, p);
	rfs_listing_put(l);
	return rc;
}

int rfs_fs_opendir(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		   struct rfs_dir **out, int flags)
{
	struct rfs_node *n = rfs_node_get(fs, ino);
	struct rfs_dir *d;
	int rc;

	if (!n)
		return -ESTALE;
	rc = rfs_authz_names(fs, who);
	d = rc ? NULL : calloc(1, sizeof(*d));
	if (!rc)
		rc = d ? rfs_node_listing(fs, n, &d->list, flags & RFS_NOWAIT)
		       : -ENOMEM;
	if (rc) {
		free(d);
		rfs_node_put(fs, n);
		return rfs_fs_errno(rc);
	}
	d->fs = fs;
	d->who = rfs_cred_get(who);
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
	const struct rfs_entry *e;

	if (idx < 2) {
		*name = idx ? ".." : ".";
		dir_attr(d, d->node->ino, &d->node->rec, attr);
		if (idx)
			attr->ino = RFS_ROOT_INO; /* a DID has many parents */
		return 0;
	}
	if (idx - 2 >= d->list->n)
		return -ENOENT;
	e = &d->list->e[idx - 2];
	*name = e->name;
	dir_attr(d, e->ino, &e->rec, attr);
	return 0;
}

int rfs_fs_dir_lookup(struct rfs_dir *d, size_t idx, const char **name,
		      struct rfs_attr *attr)
{
	struct rfs_fs *fs = d->fs;
	const struct rfs_entry *e;
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
	return ref_entry(fs, d->who, d->node->ino, idx - 2, e, attr);
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
	rfs_listing_put(d->list);
	rfs_node_put(d->fs, d->node);
	rfs_cred_put(d->who);
	free(d);
}
