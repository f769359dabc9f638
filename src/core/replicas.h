/*
 * The replica layer (replicas.c): a file's replicas as the catalogue
 * lists them, kept for offline use, ranked by measured speed and health,
 * and read from, one after the other until one answers right.
 */
#ifndef RFS_CORE_REPLICAS_H
#define RFS_CORE_REPLICAS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include "catalog/parse.h"
#include "util/buf.h"

struct rfs_fs_stats;

struct rfs_cred;
struct rfs_fs;
struct rfs_handles;
struct rfs_target;
struct rfs_transport;
struct rfs_tseg;

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
	 * simulate_multirange): no vector read ever goes to it */
	bool no_multirange;
	/* atomic: its server answered a vector read otherwise than asked
	 * (the whole file, one range): its ranges go one by one */
	bool no_vector;
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

/* One more transfer of @bytes in @secs from endpoint @rse, that
 * ended with @rc (0 or a negative errno) */
void rfs_fs_count(struct rfs_fs *fs, const char *rse, uint64_t bytes, int rc,
		  double secs);
/* The endpoints' counts, network bytes and passthrough opens into @out
 * (net_bytes, whole_opens, endpoints, nendpoints). */
void rfs_endpoints_snapshot(struct rfs_fs *fs, struct rfs_fs_stats *out);

int rfs_replicas_resolve(struct rfs_fs *fs, struct rfs_cred *who,
			 const struct rfs_did_rec *did,
			 struct rfs_replicas **out);
/*
 * Resolves @n DIDs in one catalogue request; @out[i] is NULL for one the
 * catalogue lists no readable replica of. Returns @dids[0]'s outcome:
 * 0, or its errno as rfs_replicas_resolve() gives it.
 */
int rfs_replicas_resolve_many(struct rfs_fs *fs, struct rfs_cred *who,
			      const struct rfs_did_rec *dids, size_t n,
			      struct rfs_replicas **out);
void rfs_replicas_put(struct rfs_replicas *r);
struct rfs_replicas *rfs_replicas_get(struct rfs_replicas *r);
/*
 * The bytes at @off of @f into @iov, from its replicas in the order
 * @how and their health say; one log line if all fail. *@served (may be
 * NULL) is the source that answered, valid while @f holds its replicas.
 */
ssize_t rfs_replicas_readv(struct rfs_fs *fs, struct rfs_target *f,
			   const struct iovec *iov, int iovcnt, uint64_t off,
			   const struct rfs_how *how,
			   const struct rfs_source **served);
/*
 * Whether some replica of @r takes vector reads: its transport can, its
 * RSE does not say simulate_multirange, its server did not refuse one.
 */
bool rfs_replicas_can_vector(const struct rfs_replicas *r);
/*
 * The @n segments of @segs (sorted, not overlapping, within the file)
 * of @f in one vector read (the transport splits what one request cannot
 * hold), from its replicas in the order @how and their health say, as
 * rfs_replicas_readv. -EOPNOTSUPP when the replica whose turn it is
 * cannot take vector reads: the caller reads the segments one by one.
 */
ssize_t rfs_replicas_read_segs(struct rfs_fs *fs, struct rfs_target *f,
			       const struct rfs_tseg *segs, size_t n,
			       const struct rfs_how *how);
/* The URLs in try order, one per line. */
int rfs_replicas_describe(struct rfs_replicas *r, struct rfs_buf *out);

/*
 * Asks storage whether @t's opener may read it: the first byte, read with
 * the opener's credential from each replica in turn until one gives it.
 * 0 when one did; -EACCES when every one that answered refused (401, 403)
 * and none gave it; else the last error (none could say: out of reach,
 * offline). Counts nothing towards the endpoints' speed or health.
 */
int rfs_replicas_probe(struct rfs_fs *fs, struct rfs_target *t);

/*
 * The first byte of @t from its source @i alone, with the opener's
 * credential: 0, or why not. Counts nothing towards its endpoint's
 * speed or health (ruciofs --check).
 */
int rfs_replicas_probe_one(struct rfs_fs *fs, struct rfs_target *t, size_t i);
/* The endpoint @s belongs to, as status counts them: an RSE's HTTP
 * doors are one ("RSE"), each other door its own ("RSE root"). */
const char *rfs_source_endpoint(const struct rfs_source *s, char *buf,
				size_t len);

/*
 * The transport handles on a file's @n replicas, each opened at its first
 * read, for @who: made with an open file, shared (counted) with its
 * read-ahead jobs, closed with the last of them.
 */
int rfs_handles_new(struct rfs_fs *fs, struct rfs_cred *who, size_t n,
		    struct rfs_handles **out);
struct rfs_handles *rfs_handles_get(struct rfs_handles *h);
void rfs_handles_put(struct rfs_handles *h);

#endif
