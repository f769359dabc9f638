/*
 * Sparse reads grouped into vector reads (gather.c): the small misses of
 * one open file that several threads wait on at once go out as one
 * request (HTTP multi-range, xrootd kXR_readv).
 */
#ifndef RFS_CORE_GATHER_H
#define RFS_CORE_GATHER_H

#include <stddef.h>
#include <stdint.h>

struct rfs_fs;
struct rfs_file;

/*
 * The @len bytes at @off of @file into @buf, from its replicas, not
 * stored: alone when no other miss of the file is pending, else grouped
 * with the others into one vector read (waiting at most a fraction of a
 * millisecond for them), and one by one where a replica cannot take
 * vector reads. 0 or a negative errno, as rfs_replicas_readv fails.
 */
int rfs_gather_read(struct rfs_fs *fs, struct rfs_file *file, char *buf,
		    uint64_t off, size_t len, double deadline);

#endif
