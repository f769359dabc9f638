/* An open file as the read path sees it (file.c, readpath.c, prefetch.c,
 * verify.c). */
#ifndef RFS_CORE_FILE_H
#define RFS_CORE_FILE_H

#include <pthread.h>
#include <stdint.h>
#include "cache/cache.h"
#include "catalog/parse.h"

struct rfs_cred;
struct rfs_fs;
struct rfs_replicas;
struct rfs_verifier;

/*
 * What a fetch needs of a file, and no more: an open file has one, and
 * a read-ahead job a copy of its own (each holds its references).
 */
struct rfs_target {
	struct rfs_did_rec did;
	struct rfs_replicas *reps;
	struct rfs_cache_id cid; /* identity of the bytes in the cache */
	char didstr[520];	 /* "scope:name" for the cache's records */
	/* the whole-file check of these bytes (verify.c), NULL: none */
	struct rfs_verifier *v;
	struct rfs_cred *who;	/* whom the bytes are fetched for */
	struct rfs_handles *hs; /* transport handles on its replicas, as @who */
};

/* An open file: its target, and what its reads have done. */
struct rfs_file {
	struct rfs_target t;
	struct rfs_file *prev, *next; /* fs->open_files, under open_lock */
	uint64_t ino;

	unsigned vgen;	/* generation first served to it, 0: none yet */
	uint64_t *seen; /* blocks served to it (a bitmap), or NULL */
	uint64_t nseen;

	/* read-ahead state (prefetch.c), under pf_lock. Not a leaf: held
	 * while the runs to queue are looked up in the cache (its lock and
	 * LMDB read transactions) and queued (the prefetch queue's lock,
	 * verify_lock); no lock is held when it is taken. */
	pthread_mutex_t pf_lock;
	uint64_t pf_next;      /* the block a sequential reader reads next */
	uint64_t pf_run;       /* blocks read in sequence so far */
	uint64_t pf_window;    /* blocks to keep fetched ahead */
	uint64_t pf_ahead;     /* the last block queued ahead */
	uint64_t pf_little[4]; /* blocks read in part at random, plus one */
	unsigned pf_nlittle;
	/* seconds its grouped small reads took lately (gather.c), under
	 * fs->gather_lock; 0: none yet */
	double gather_secs;
};

/* A file as the read path wants it, for a DID from a /files listing,
 * with its replicas @reps (borrowed) or, if NULL, resolved now, read for
 * @who. */
/* Whether @who may read node @n's bytes (its replicas @reps, resolved
 * as @who): rfs_authz_read, for a node not opened. */
int rfs_node_may_read(struct rfs_fs *fs, struct rfs_cred *who,
		      struct rfs_node *n, struct rfs_replicas *reps,
		      bool nowait);
int rfs_fs_file_of(struct rfs_fs *fs, struct rfs_cred *who,
		   const struct rfs_did_rec *rec, struct rfs_replicas *reps,
		   struct rfs_file **out);
/* A copy of @from for a job of its own (references taken). */
int rfs_target_copy(struct rfs_target *to, const struct rfs_target *from);
void rfs_target_release(struct rfs_fs *fs, struct rfs_target *t);

#endif
