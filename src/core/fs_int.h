/* Internals of the core shared by its files. */
#ifndef RFS_FS_INT_H
#define RFS_FS_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "cache/cache.h"
#include "catalog/catalog.h"
#include "core/fs.h"
#include "transport/transport.h"
#include "util/clock.h"

/*
 * Who fetches, and so how the first replica is picked: the fastest for a
 * reader waiting on it; weighted by speed for background fetches
 * (read-ahead, prefetch), so a stream draws on every good replica at
 * once. Background fetches also wait for room in the cache's queue.
 */
enum rfs_pick { RFS_PICK_BEST, RFS_PICK_SPREAD };

/* How a fetch goes. */
struct rfs_how {
	enum rfs_pick pick;
	/* rfs_mono_now() by which the bytes must be here, 0: none */
	double deadline;
	/* a source URL not to try at all (finding which replica lied) */
	const char *exclude;
	/* waits for room in the cache's queue rather than leave a block
	 * uncached: read-ahead, prefetch and the whole-file checks */
	bool background;
};

/* One replica URL and the transport that can read it. */
struct rfs_source {
	char *url; /* normalised for the transport, Rucio's fragment cut */
	char *rse;
	struct rfs_transport *tp;
	/* the RSE asks for one range per request (Rucio's
	 * simulate_multirange): for vector reads */
	bool no_multirange;
};

/*
 * The replicas of one file as the catalogue listed them, in the order
 * they are tried. Shared by the inode and every open handle: refcounted.
 */
struct rfs_replicas {
	unsigned refs; /* atomic */
	uint64_t size;
	size_t n;
	struct rfs_source *src;
	size_t skipped;	    /* PFNs with no transport in this build */
	unsigned preferred; /* atomic: the last source that answered */
};

struct rfs_fs {
	const struct rfs_conf *conf;
	struct rfs_catalog *cat;
	struct rfs_transports *tps;
	time_t start;

	/* Lock order: table_lock only; it is never held across a network
	 * call or a FUSE reply. list_cv waits for an in-flight listing. */
	pthread_mutex_t table_lock;
	pthread_cond_t list_cv;
	struct rfs_node **buckets;
	size_t nbuckets;
	size_t nnodes;
	struct rfs_node *root;

	struct rfs_cache *cache; /* NULL: no cache, or it failed to open */
	/* blocks being fetched, so concurrent readers wait for one fetch;
	 * inflight_lock is a leaf lock, never held across the fetch */
	pthread_mutex_t inflight_lock;
	pthread_cond_t inflight_cv;
	struct rfs_inflight *inflight;

	/* counters for status: bytes from the network, per-endpoint
	 * errors; stats_lock is a leaf lock */
	pthread_mutex_t stats_lock;
	uint64_t net_bytes;
	uint64_t whole_opens; /* opens read by the kernel from the cache */
	struct rfs_endpoint_stats {
		char rse[64];
		uint64_t bytes;
		uint64_t errors;
		uint64_t slow; /* transfers under min_rate */
		double rate; /* bytes/s of large transfers, EWMA; 0: unknown */
		double slow_until; /* rfs_mono_now(): last resort until then */
		double wrr;	   /* spread picks' running credit */
	} eps[32];
	struct rfs_ctl *ctl;
	struct rfs_prefetch *prefetch; /* NULL: no read-ahead */
	/* whole-file checks (verify.c); verify_lock guards its table of
	 * verifiers and its workers' queue, a leaf */
	pthread_mutex_t verify_lock;
	struct rfs_verify *verify;

	/* Open files and directories: the kernel sends RELEASE after the
	 * close, asynchronously, so some may still be open when the session
	 * ends; rfs_fs_free() releases those. open_lock is a leaf lock. */
	pthread_mutex_t open_lock;
	struct rfs_file *open_files;
	struct rfs_dir *open_dirs;
};

/* read.c: one more transfer of @bytes in @secs from endpoint @rse, that
 * ended with @rc (0 or a negative errno) */
void rfs_fs_count(struct rfs_fs *fs, const char *rse, uint64_t bytes, int rc,
		  double secs);

/* ctl.c: the control socket beside the cache (prefetch, pin, status) */
int rfs_ctl_start(struct rfs_fs *fs);
void rfs_ctl_stop(struct rfs_fs *fs);
/* The socket's path, or NULL when there is none. */
const char *rfs_ctl_path(struct rfs_fs *fs);
/* A file as the read path wants it, for a DID from a /files listing,
 * with its replicas @reps (borrowed) or, if NULL, resolved now. */
int rfs_fs_file_of(struct rfs_fs *fs, const struct rfs_did_rec *rec,
		   struct rfs_replicas *reps, struct rfs_file **out);

struct rfs_file {
	struct rfs_file *prev, *next; /* fs->open_files, under open_lock */
	uint64_t ino;
	struct rfs_did_rec did;
	struct rfs_replicas *reps;
	struct rfs_cache_id cid; /* identity of the bytes in the cache */
	char didstr[520];	 /* "scope:name" for the cache's records */

	/* the whole-file check of these bytes (verify.c), NULL: none */
	struct rfs_verifier *v;
	unsigned vgen;	/* generation first served to it, 0: none yet */
	uint64_t *seen; /* blocks served to it (a bitmap), or NULL */
	uint64_t nseen;

	/* read-ahead state (prefetch.c), under pf_lock, a leaf lock */
	pthread_mutex_t pf_lock;
	uint64_t pf_next;      /* the block a sequential reader reads next */
	uint64_t pf_run;       /* blocks read in sequence so far */
	uint64_t pf_window;    /* blocks to keep fetched ahead */
	uint64_t pf_ahead;     /* the last block queued ahead */
	uint64_t pf_little[4]; /* blocks read in part at random, plus one */
	unsigned pf_nlittle;
};

/* prefetch.c: read-ahead workers for sequential readers */
int rfs_prefetch_start(struct rfs_fs *fs);
void rfs_prefetch_stop(struct rfs_fs *fs);
/* After a read of blocks @first..@last of @f: grows or resets the
 * window and queues the blocks ahead that are not cached. */
void rfs_prefetch_after(struct rfs_fs *fs, struct rfs_file *f, uint64_t first,
			uint64_t last);

/*
 * Whether a read of part of block @idx, not cached, should fetch only its
 * own pages: yes when it is neither where a sequential reader goes next
 * nor a block read in part lately (that one is wanted whole, and kept).
 */
bool rfs_prefetch_wants_little(struct rfs_file *f, uint64_t idx);

/* blocks.c: the read path through the block cache */
/* Bytes in block @idx of @f (the last one may be short). */
size_t rfs_block_len(const struct rfs_file *f, uint64_t bs, uint64_t idx);

/* Most blocks fetched in one request. */
#define RFS_RUN_MAX 64

/*
 * Fetches blocks @idx.. (up to @n, stopping short of one being fetched
 * already) in one request, once for all waiters, stores them and copies
 * them to @out unless NULL. Returns how many blocks it got, or a negative
 * errno; -EAGAIN: another thread fetched @idx but it left the cache
 * before this one read it (call again). Read-ahead (@out NULL) returns at
 * once when @idx is being fetched.
 */
int rfs_blocks_fetch(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		     size_t n, char *out, const struct rfs_how *how);
/* As rfs_blocks_fetch, asked again (a few times, then -EIO) while the
 * fetch it waited for lost its blocks. */
int rfs_blocks_fetch_retry(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
			   size_t n, char *out, const struct rfs_how *how);
/* With @nowait, RFS_WOULD_BLOCK rather than reach the network. */
ssize_t rfs_blocks_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
			size_t size, uint64_t off, double deadline,
			bool nowait);
/* Whether block @idx of the file @id is being fetched now. */
bool rfs_blocks_in_flight(struct rfs_fs *fs, const struct rfs_cache_id *id,
			  uint64_t idx);
/* The one log line for block @idx of @f found corrupt (and dropped). */
void rfs_blocks_say_corrupt(const struct rfs_file *f, uint64_t idx);

/* The catalogue could not be reached or did not answer (not: it said no) */
bool rfs_unreachable(int rc);

/*
 * Catalogue answers kept in the cache for offline use, keyed by @kind
 * ('L' listings, 'R' replica lists, 'F' a DID's files, for ctl.c) and
 * the DID. load returns a malloc'ed copy, or -ENOENT (also when there is
 * no cache).
 */
void rfs_meta_store(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		    const struct rfs_buf *b);
int rfs_meta_load(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		  char **val, size_t *len);

/* read.c */
int rfs_replicas_resolve(struct rfs_fs *fs, const struct rfs_did_rec *did,
			 struct rfs_replicas **out);
/*
 * Resolves @n DIDs in one catalogue request; @out[i] is NULL for one the
 * catalogue lists no readable replica of. Returns @dids[0]'s outcome:
 * 0, or its errno as rfs_replicas_resolve() gives it.
 */
int rfs_replicas_resolve_many(struct rfs_fs *fs, const struct rfs_did_rec *dids,
			      size_t n, struct rfs_replicas **out);
void rfs_replicas_put(struct rfs_replicas *r);
struct rfs_replicas *rfs_replicas_get(struct rfs_replicas *r);
/*
 * The bytes at @off of @f into @iov, from its replicas in the order
 * @how and their health say; one log line if all fail. *@served (may be
 * NULL) is the source that answered, valid while @f holds its replicas.
 */
ssize_t rfs_replicas_readv(struct rfs_fs *fs, struct rfs_file *f,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   const struct rfs_how *how,
			   const struct rfs_source **served);
/* The URLs in try order, one per line. */
int rfs_replicas_describe(struct rfs_replicas *r, struct rfs_buf *out);

/* Network and catalogue errnos become EIO at the filesystem boundary. */
int rfs_fs_errno(int rc);

#endif
