/* Catalogue answers kept in the cache for offline use. */
#include "config.h"

#include <stdio.h>

#include "core/core.h"
#include "core/meta.h"
#include "util/banned.h"

/* The key of a catalogue answer in the cache: kind, scope, name. */
static void meta_key(char *key, size_t len, char kind,
		     const struct rfs_did_rec *rec)
{
	snprintf(key, len, "%c\x1f%s\x1f%s", kind, rec->scope,
		 rec->name ? rec->name : "");
}

void rfs_meta_store(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		    const struct rfs_buf *b)
{
	char key[1024];

	meta_key(key, sizeof(key), kind, rec);
	rfs_cache_meta_put(fs->cache, key, b->data ? b->data : "", b->len);
}

int rfs_meta_load(struct rfs_fs *fs, char kind, const struct rfs_did_rec *rec,
		  char **val, size_t *len)
{
	char key[1024];
	time_t stored;

	if (!fs->cache)
		return -ENOENT;
	meta_key(key, sizeof(key), kind, rec);
	return rfs_cache_meta_get(fs->cache, key, (void **)val, len, &stored);
}
