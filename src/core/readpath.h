/*
 * The read path through the block cache (readpath.c): the only code
 * that joins the cache and the network.
 */
#ifndef RFS_CORE_READPATH_H
#define RFS_CORE_READPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "cache/cache.h"

struct rfs_fs;
struct rfs_file;
struct rfs_target;
struct rfs_how;

/* Bytes in block @idx of @f (the last one may be short). */
size_t rfs_block_len(const struct rfs_target *f, uint64_t bs, uint64_t idx);

/* Most blocks fetched in one request. */
#define RFS_RUN_MAX 64

/*
 * The run of blocks from @idx of @f that are all stored in the cache, or
 * all not, as @idx is (*@stored, unless NULL): its length in blocks, at
 * most @max (>= 1) and not past the file's end nor, beyond its first
 * block, @max_bytes; its bytes in *@bytes unless NULL.
 */
size_t rfs_blocks_run(struct rfs_fs *fs, const struct rfs_target *f,
		      uint64_t idx, size_t max, size_t max_bytes, bool *stored,
		      size_t *bytes);

/*
 * Fetches blocks @idx.. (up to @n, stopping short of one being fetched
 * already) in one request, once for all waiters, stores them and copies
 * them to @out unless NULL. Returns how many blocks it got, or a negative
 * errno; -EAGAIN: another thread fetched @idx but it left the cache
 * before this one read it (call again). Read-ahead (@out NULL) returns at
 * once when @idx is being fetched.
 */
int rfs_blocks_fetch(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		     size_t n, char *out, const struct rfs_how *how);
/* As rfs_blocks_fetch, asked again (a few times, then -EIO) while the
 * fetch it waited for lost its blocks. */
int rfs_blocks_fetch_retry(struct rfs_fs *fs, struct rfs_target *f,
			   uint64_t idx, size_t n, char *out,
			   const struct rfs_how *how);
/* What one read met in the cache, counted once it is answered. */
struct rfs_read_tally {
	uint64_t hits, hit_bytes, misses;
};
/*
 * With @nowait, RFS_WOULD_BLOCK rather than reach the network. Adds to
 * @t each block the read found (a hit) or had to wait for (a miss).
 */
ssize_t rfs_blocks_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
			size_t size, uint64_t off, double deadline, bool nowait,
			struct rfs_read_tally *t);
/* Whether block @idx of the file @id is being fetched now. */
bool rfs_blocks_in_flight(struct rfs_fs *fs, const struct rfs_cache_id *id,
			  uint64_t idx);
/* The one log line for block @idx of @f found corrupt (and dropped). */
void rfs_blocks_say_corrupt(const struct rfs_target *f, uint64_t idx);

#endif
