/*
 * Reads through the block cache: a read is cut into cache blocks; each is
 * copied from the cache, or fetched whole from the replicas (the only
 * place that joins the cache and the network), stored, then copied. When
 * several readers miss the same block, one fetches it and the others wait
 * for that fetch: a block crosses the network once.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs_int.h"
#include "util/log.h"
#include "util/banned.h"

struct rfs_inflight {
	struct rfs_cache_id id;
	uint64_t idx;
	unsigned refs; /* the fetcher and every waiter */
	bool done;
	int rc;
	char *buf;
	size_t len;
	struct rfs_inflight *next;
};

/* Under inflight_lock. */
static struct rfs_inflight *
find_inflight(struct rfs_fs *fs, const struct rfs_cache_id *id, uint64_t idx)
{
	struct rfs_inflight *e = fs->inflight;

	while (e && (e->idx != idx || memcmp(e->id.b, id->b, sizeof(id->b))))
		e = e->next;
	return e;
}

/* Under inflight_lock. */
static void unlink_inflight(struct rfs_fs *fs, struct rfs_inflight *e)
{
	struct rfs_inflight **pp = &fs->inflight;

	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
}

/* Under inflight_lock. */
static void put_inflight(struct rfs_inflight *e)
{
	if (--e->refs)
		return;
	free(e->buf);
	free(e);
}

static int wait_for(struct rfs_fs *fs, struct rfs_inflight *e, char *out)
{
	int rc;

	e->refs++;
	while (!e->done)
		pthread_cond_wait(&fs->inflight_cv, &fs->inflight_lock);
	rc = e->rc;
	if (!rc)
		memcpy(out, e->buf, e->len);
	put_inflight(e);
	pthread_mutex_unlock(&fs->inflight_lock);
	return rc;
}

int rfs_blocks_fetch(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		     char *out, size_t len)
{
	uint64_t bs = rfs_cache_block_size(fs->cache);
	struct rfs_cache_file cf = { f->reps->size, "", f->didstr };
	struct rfs_inflight *e;
	ssize_t got;
	int rc;

	pthread_mutex_lock(&fs->inflight_lock);
	e = find_inflight(fs, &f->cid, idx);
	if (e)
		return wait_for(fs, e, out); /* unlocks */
	e = calloc(1, sizeof(*e));
	if (e)
		e->buf = malloc(len);
	if (!e || !e->buf) {
		pthread_mutex_unlock(&fs->inflight_lock);
		free(e);
		return -ENOMEM;
	}
	e->id = f->cid;
	e->idx = idx;
	e->len = len;
	e->refs = 1;
	e->next = fs->inflight;
	fs->inflight = e;
	pthread_mutex_unlock(&fs->inflight_lock);

	/* another fetch of this block may have ended between our caller's
	 * cache lookup and our registration: look once more */
	if (rfs_cache_get(fs->cache, &f->cid, idx, e->buf, len) == 0) {
		memcpy(out, e->buf, len);
		e->rc = 0;
		goto done;
	}
	got = rfs_replicas_read(fs, f->reps, &f->did, e->buf, len, idx * bs);
	e->rc = got == (ssize_t)len ? 0 : got < 0 ? (int)got : -EIO;
	if (!e->rc) {
		memcpy(cf.adler32, f->did.adler32, sizeof(cf.adler32));
		/* queued before the waiters wake, so a later reader finds it
		 * in the cache's queue if not yet committed */
		rfs_cache_put(fs->cache, &f->cid, &cf, idx, e->buf, len);
		memcpy(out, e->buf, len);
	}

done:
	rc = e->rc;
	pthread_mutex_lock(&fs->inflight_lock);
	e->done = true;
	unlink_inflight(fs, e);
	pthread_cond_broadcast(&fs->inflight_cv);
	put_inflight(e); /* may free it: rc was read before */
	pthread_mutex_unlock(&fs->inflight_lock);
	return rc;
}

/* Block @idx of @f into @out (its whole length @len). */
static int get_block(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		     char *out, size_t len)
{
	int rc = rfs_cache_get(fs->cache, &f->cid, idx, out, len);

	return rc == 0 ? 0 : rfs_blocks_fetch(fs, f, idx, out, len);
}

ssize_t rfs_blocks_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
			size_t size, uint64_t off)
{
	uint64_t bs = rfs_cache_block_size(fs->cache), fsize = f->reps->size;
	char *tmp = NULL;
	size_t done = 0;
	int rc = 0;

	while (done < size && !rc) {
		uint64_t pos = off + done, idx = pos / bs, start = idx * bs;
		size_t blen = (size_t)(fsize - start < bs ? fsize - start : bs);
		size_t skip = (size_t)(pos - start);
		size_t n =
			blen - skip < size - done ? blen - skip : size - done;

		if (skip == 0 && n == blen) { /* whole block: no copy */
			rc = get_block(fs, f, idx, (char *)buf + done, blen);
		} else {
			if (!tmp)
				tmp = malloc(bs);
			rc = tmp ? get_block(fs, f, idx, tmp, blen) : -ENOMEM;
			if (!rc)
				memcpy((char *)buf + done, tmp + skip, n);
		}
		done += rc ? 0 : n;
	}
	free(tmp);
	if (!rc && size)
		rfs_prefetch_after(fs, f, off / bs, (off + size - 1) / bs);
	return rc ? rc : (ssize_t)done;
}
