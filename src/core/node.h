/* The inode table (node.c). */
#ifndef RFS_CORE_NODE_H
#define RFS_CORE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/parse.h"

struct rfs_fs;
struct rfs_attr;
struct rfs_entry;
struct rfs_listing;
struct rfs_replicas;

/*
 * A directory's batch growth for one identity: each identity's first
 * miss starts small (one file, not the 512 another's tar grew it to),
 * and a few callers at once keep their own.
 */
#define RFS_REP_GROW_SLOTS 4
struct rfs_rep_grow {
	uint64_t tag; /* rfs_authz_tag */
	size_t batch;
	double time;
};

struct rfs_node {
	uint64_t ino;
	uint64_t nlookup; /* the kernel's references */
	unsigned refs;	  /* ours: operations in progress, open handles */
	struct rfs_did_rec rec;
	struct rfs_listing *list;
	double list_time;
	bool list_busy; /* a thread is fetching the listing */
	/* after a failed fetch: its error, served without asking again
	 * until list_retry (monotonic seconds), so that a catalogue that does
	 * not answer costs one timeout, not one per access or per waiter */
	int list_rc;
	double list_retry;
	struct rfs_replicas *reps;
	double reps_time;
	uint64_t reps_tag; /* whose they are (rfs_authz_tag) */
	/* the directory it was last looked up in, and its place there: a
	 * hint for resolving siblings' replicas together */
	uint64_t parent;
	size_t pidx;
	/* as a directory, per identity: how many of its files' replicas
	 * the last miss in it resolved, and when (monotonic seconds) */
	struct rfs_rep_grow rep_grow[RFS_REP_GROW_SLOTS];
	struct rfs_node *next; /* hash chain */
};

static inline bool rfs_is_dir(enum rfs_did_type t)
{
	return t != RFS_DID_FILE;
}

/* Under table_lock: the node of @ino, or NULL. */
struct rfs_node *rfs_node_find(struct rfs_fs *fs, uint64_t ino);
/* Under table_lock. */
void rfs_node_insert(struct rfs_fs *fs, struct rfs_node *n);
void rfs_node_free(struct rfs_node *n);
/* Under table_lock: frees @n once neither the kernel nor we use it. */
void rfs_node_maybe_free(struct rfs_fs *fs, struct rfs_node *n);
bool rfs_same_did(const struct rfs_did_rec *a, const struct rfs_did_rec *b);
/*
 * Under table_lock: the node of listing entry @e, made if needed, its
 * record updated from the fresher listing.
 */
int rfs_node_for_entry(struct rfs_fs *fs, const struct rfs_entry *e,
		       struct rfs_node **out);
/* The node of @ino with one more of our references, or NULL. */
struct rfs_node *rfs_node_get(struct rfs_fs *fs, uint64_t ino);
void rfs_node_put(struct rfs_fs *fs, struct rfs_node *n);
/* Under table_lock (the record may be replaced by a lookup). */
void rfs_fill_attr(struct rfs_fs *fs, uint64_t ino, const struct rfs_did_rec *r,
		   struct rfs_attr *a);

#endif
