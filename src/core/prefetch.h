/* Read-ahead for sequential readers (prefetch.c). */
#ifndef RFS_CORE_PREFETCH_H
#define RFS_CORE_PREFETCH_H

#include <stdbool.h>
#include <stdint.h>

struct rfs_fs;
struct rfs_file;

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

#endif
