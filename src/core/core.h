/*
 * The filesystem object that the core's files share: each subsystem's
 * state and its lock. Only src/core/ includes this; fuse/ sees
 * core/fs.h.
 *
 * Lock order, outermost first: an open file's pf_lock (file.h), then at
 * most one of the prefetch queue's lock, verify_lock, or the cache's
 * own (its calls take them inside). Every other core lock is a leaf:
 * table_lock, inflight_lock, gather_lock, stats_lock, open_lock,
 * verify_lock, a
 * verifier's lock, the prefetch queue's lock. No core lock is held
 * across a network wait or a FUSE reply; only pf_lock is held across
 * cache reads (LMDB read transactions, never a write).
 */
#ifndef RFS_CORE_CORE_H
#define RFS_CORE_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include "cache/cache.h"
#include "catalog/catalog.h"
#include "core/fs.h"
#include "core/metrics.h"
#include "transport/transport.h"
#include "util/clock.h"

struct rfs_fs {
	const struct rfs_conf *conf;
	/* the one block size: the cache's, and the unit of every fetch,
	 * read-ahead and whole-file check (the cache is rebuilt if its own
	 * differs) */
	uint64_t bs;
	struct rfs_catalog *cat;
	/* the mount's own identity: every caller's, but on a shared mount
	 * (authz.c: each caller's own; NULL authz when not shared) */
	struct rfs_identity *mount_id;
	struct rfs_authz *authz;
	struct rfs_transports *tps;
	time_t start;

	/* the inode table and listings; table_lock is a leaf (it takes no
	 * other lock, calls no cache). list_cv waits for an in-flight
	 * listing. */
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

	/* sparse misses being grouped into vector reads (gather.c), per
	 * open file; gather_lock is a leaf, never held across a fetch */
	pthread_mutex_t gather_lock;
	struct rfs_gather *gathers;

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
		/* from its endpoint-penalty event to its endpoint-recovered */
		bool penalised;
	} eps[32];
	char ctl_path[108];	       /* the control socket, "": none */
	struct rfs_prefetch *prefetch; /* NULL: no read-ahead */
	/* whole-file checks (verify.c); verify_lock guards its table of
	 * verifiers and its workers' queue, a leaf (taken inside a file's
	 * pf_lock too) */
	pthread_mutex_t verify_lock;
	struct rfs_verify *verify;

	/* Open files and directories: the kernel sends RELEASE after the
	 * close, asynchronously, so some may still be open when the session
	 * ends; rfs_fs_free() releases those. open_lock is a leaf lock. */
	pthread_mutex_t open_lock;
	struct rfs_file *open_files;
	struct rfs_dir *open_dirs;

	/* latency histograms, reads by identity, the metrics file */
	struct rfs_metrics metrics;
};

/* Blocks in a file of @size bytes. */
static inline uint64_t rfs_nblocks(const struct rfs_fs *fs, uint64_t size)
{
	return (size + fs->bs - 1) / fs->bs;
}

/* The catalogue could not be reached or did not answer (not: it said no) */
bool rfs_unreachable(int rc);

/* Network and catalogue errnos become EIO at the filesystem boundary. */
int rfs_fs_errno(int rc);

#endif
