/* Catalogue answers kept in the cache for offline use (meta.c). */
#ifndef RFS_CORE_META_H
#define RFS_CORE_META_H

#include "catalog/parse.h"
#include "util/buf.h"

struct rfs_fs;

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

#endif
