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

#include "core/core.h"
#include "core/file.h"
#include "core/gather.h"
#include "core/prefetch.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/log.h"
#include "util/banned.h"

struct rfs_inflight {
	struct rfs_cache_id id;
	uint64_t idx;
	unsigned refs; /* the fetcher and every waiter */
	bool done;
	int rc;
	char *buf; /* NULL once the cache took it: waiters read it there */
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

bool rfs_blocks_in_flight(struct rfs_fs *fs, const struct rfs_cache_id *id,
			  uint64_t idx)
{
	bool yes;

	pthread_mutex_lock(&fs->inflight_lock);
	yes = find_inflight(fs, id, idx) != NULL;
	pthread_mutex_unlock(&fs->inflight_lock);
	return yes;
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
	rfs_cache_buf_free(e->buf);
	free(e);
}

void rfs_blocks_say_corrupt(const struct rfs_target *f, uint64_t idx)
{
	rfs_event_limited(LOG_WARNING, "corrupt-block", "cache-crc",
			  "block %llu of %s failed its checksum in the cache; "
			  "dropped, fetching it again",
			  (unsigned long long)idx, f->didstr);
}

/*
 * Bytes of block @idx of @f from the cache (see rfs_cache_get_part). A
 * block that failed its checksum was dropped there; it is said here,
 * where the file's name is known.
 */
static int cache_get(struct rfs_fs *fs, const struct rfs_target *f,
		     uint64_t idx, size_t blen, size_t off, void *buf, size_t n)
{
	int rc = rfs_cache_get_part(fs->cache, &f->cid, idx, blen, off, buf, n);

	if (rc == -EBADMSG)
		rfs_blocks_say_corrupt(f, idx);
	return rc;
}

/*
 * Waits for another thread's fetch of the block. -EAGAIN: it was fetched
 * and queued for the cache but is gone again (evicted at once by a tiny
 * quota); the caller fetches it itself.
 */
static int wait_for(struct rfs_fs *fs, struct rfs_inflight *e,
		    const struct rfs_target *f, char *out, double deadline)
{
	uint64_t idx = e->idx;
	size_t len = e->len;
	bool from_cache;
	int rc = 0;

	e->refs++;
	while (!e->done && !rc)
		rc = rfs_cond_wait_until(&fs->inflight_cv, &fs->inflight_lock,
					 deadline);
	if (!e->done) { /* its fetcher has a deadline of its own */
		put_inflight(e);
		pthread_mutex_unlock(&fs->inflight_lock);
		return -ETIMEDOUT;
	}
	rc = e->rc;
	from_cache = !rc && out && !e->buf;
	if (!rc && out && e->buf)
		memcpy(out, e->buf, e->len);
	put_inflight(e); /* may free it */
	pthread_mutex_unlock(&fs->inflight_lock);
	if (from_cache && cache_get(fs, f, idx, len, 0, out, len))
		return -EAGAIN;
	return rc;
}

size_t rfs_block_len(const struct rfs_target *f, uint64_t bs, uint64_t idx)
{
	uint64_t left = f->reps->size - idx * bs;

	return (size_t)(left < bs ? left : bs);
}

/* Fetches this thread registered: consecutive blocks, one request. */
struct run {
	struct rfs_inflight *e[RFS_RUN_MAX];
	size_t n;
};

/*
 * Under inflight_lock: registers fetches of blocks @first.. (at most @n),
 * stopping short of one that is under way already.
 */
static int start_run(struct rfs_fs *fs, const struct rfs_target *f,
		     uint64_t first, size_t n, struct run *run)
{
	uint64_t bs = fs->bs;

	run->n = 0;
	for (size_t i = 0; i < n && i < RFS_RUN_MAX; i++) {
		struct rfs_inflight *e;

		if (find_inflight(fs, &f->cid, first + i))
			break;
		e = calloc(1, sizeof(*e));
		if (!e)
			break;
		e->id = f->cid;
		e->idx = first + i;
		e->len = rfs_block_len(f, bs, first + i);
		e->refs = 1;
		e->next = fs->inflight;
		fs->inflight = e;
		run->e[run->n++] = e;
	}
	return run->n ? 0 : -ENOMEM;
}

/* Ends fetches [@from, run->n) with @rc and wakes their waiters. */
static void finish_run(struct rfs_fs *fs, struct run *run, size_t from, int rc)
{
	pthread_mutex_lock(&fs->inflight_lock);
	for (size_t i = from; i < run->n; i++) {
		struct rfs_inflight *e = run->e[i];

		e->rc = rc;
		e->done = true;
		unlink_inflight(fs, e);
		put_inflight(e);
	}
	pthread_cond_broadcast(&fs->inflight_cv);
	pthread_mutex_unlock(&fs->inflight_lock);
	run->n = from < run->n ? from : run->n;
}

static void free_bufs(struct iovec *iov, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rfs_cache_buf_free(iov[i].iov_base);
}

/* Background fetches (read-ahead, ctl prefetch: they spread over the
 * replicas) wait this long at most for room in the cache's queue; a
 * reader never waits (it has its bytes, and the block may be refetched). */
#define PUT_WAIT_MS 2000

/*
 * The network part: the run's blocks in one range request, each into its
 * own buffer, handed to the cache; copied to @out (the run's bytes, laid
 * end to end) for a reader.
 */
static int fetch_run(struct rfs_fs *fs, struct rfs_target *f, struct run *run,
		     char *out, const struct rfs_how *how,
		     const struct rfs_source **src)
{
	uint64_t bs = fs->bs;
	struct rfs_cache_file cf = { f->reps->size, "", f->didstr, f->did.md5 };
	struct iovec iov[RFS_RUN_MAX];
	size_t total = 0;
	ssize_t got;

	for (size_t i = 0; i < run->n; i++) {
		iov[i].iov_len = run->e[i]->len;
		/* aligned: the cache's writer gives it to the disk as is */
		iov[i].iov_base = rfs_cache_buf_alloc(run->e[i]->len);
		total += run->e[i]->len;
		if (!iov[i].iov_base) {
			free_bufs(iov, i);
			return -ENOMEM;
		}
	}
	got = rfs_replicas_readv(fs, f, iov, (int)run->n, run->e[0]->idx * bs,
				 how, src);
	if (got != (ssize_t)total) {
		free_bufs(iov, run->n);
		return got < 0 ? (int)got : -EIO;
	}
	memcpy(cf.adler32, f->did.adler32, sizeof(cf.adler32));
	/* who served them, before the sums can see them */
	rfs_verify_source(fs, f, run->e[0]->idx, run->n, *src);
	/* for the whole-file sums, before the cache takes the buffers */
	rfs_verify_offer(fs, f, run->e[0]->idx * bs, iov, (int)run->n,
			 how->background, how->deadline);
	for (size_t i = 0; i < run->n; i++) {
		if (out)
			memcpy(out + i * bs, iov[i].iov_base, iov[i].iov_len);
		/* queued before the waiters wake, so they find it in the
		 * cache's queue; if the cache refuses it, they copy it
		 * from here */
		if (rfs_cache_put_take(fs->cache, &f->cid, &cf, run->e[i]->idx,
				       iov[i].iov_base, iov[i].iov_len,
				       how->background ? PUT_WAIT_MS : 0))
			run->e[i]->buf = iov[i].iov_base;
	}
	return 0;
}

/*
 * How many of the registered blocks to fetch: another fetch may have
 * ended between our caller's cache lookup and our registration, so look
 * once more. The first block is copied to @out if it is there.
 */
static size_t still_missing(struct rfs_fs *fs, const struct rfs_target *f,
			    const struct run *run, char *out)
{
	size_t k = 0;

	if (out ? cache_get(fs, f, run->e[0]->idx, run->e[0]->len, 0, out,
			    run->e[0]->len) == 0
		: rfs_cache_has(fs->cache, &f->cid, run->e[0]->idx))
		return 0;
	while (++k < run->n &&
	       !rfs_cache_has(fs->cache, &f->cid, run->e[k]->idx))
		;
	return k;
}

int rfs_blocks_fetch(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		     size_t n, char *out, const struct rfs_how *how)
{
	const struct rfs_source *src = NULL;
	struct rfs_inflight *e;
	struct run run;
	size_t k;
	int rc;

	pthread_mutex_lock(&fs->inflight_lock);
	e = find_inflight(fs, &f->cid, idx);
	if (e && !out) { /* read-ahead: someone is on it already */
		pthread_mutex_unlock(&fs->inflight_lock);
		return 1;
	}
	if (e) {
		rc = wait_for(fs, e, f, out, how->deadline); /* unlocks */
		return rc ? rc : 1;
	}
	rc = start_run(fs, f, idx, n, &run);
	pthread_mutex_unlock(&fs->inflight_lock);
	if (rc)
		return rc;

	k = still_missing(fs, f, &run, out);
	/* blocks past @k were not fetched here: their waiters look again */
	finish_run(fs, &run, k ? k : 1, -EAGAIN);
	rc = k ? fetch_run(fs, f, &run, out, how, &src) : 0;
	finish_run(fs, &run, 0, rc);
	/* once no longer in flight: the whole-file sums go on from these
	 * (read back from the cache in order), or see they never came */
	if (k && !rc)
		rfs_verify_fetched(fs, f, idx, k, src);
	return rc ? rc : (int)(k ? k : 1);
}

int rfs_blocks_fetch_retry(struct rfs_fs *fs, struct rfs_target *f,
			   uint64_t idx, size_t n, char *out,
			   const struct rfs_how *how)
{
	int rc = -EAGAIN;

	for (int tries = 0; rc == -EAGAIN && tries < 4; tries++)
		rc = rfs_blocks_fetch(fs, f, idx, n, out, how);
	return rc == -EAGAIN ? -EIO : rc;
}

/* Block @idx of @f into @out (its whole length), which is not cached. */
static int fetch_block(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		       char *out, double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	int rc = rfs_blocks_fetch_retry(fs, f, idx, 1, out, &how);

	return rc > 0 ? 0 : rc;
}

size_t rfs_blocks_run(struct rfs_fs *fs, const struct rfs_target *f,
		      uint64_t idx, size_t max, size_t max_bytes, bool *stored,
		      size_t *bytes)
{
	uint64_t nblocks = rfs_nblocks(fs, f->reps->size);
	bool first = rfs_cache_has(fs->cache, &f->cid, idx);
	size_t n = 1, sum = rfs_block_len(f, fs->bs, idx);

	while (n < max && idx + n < nblocks) {
		size_t len = rfs_block_len(f, fs->bs, idx + n);

		if (sum + len > max_bytes ||
		    rfs_cache_has(fs->cache, &f->cid, idx + n) != first)
			break;
		sum += len;
		n++;
	}
	if (stored)
		*stored = first;
	if (bytes)
		*bytes = sum;
	return n;
}

/*
 * Whole blocks @idx.. of the @left bytes a reader wants at @out, up to
 * the first one cached: fetched as one run. Returns the bytes filled.
 */
static ssize_t get_run(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		       char *out, size_t left, double deadline, bool nowait,
		       struct rfs_read_tally *t)
{
	uint64_t bs = fs->bs;
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	size_t n, bytes;
	int rc;

	if (cache_get(fs, f, idx, rfs_block_len(f, bs, idx), 0, out,
		      rfs_block_len(f, bs, idx)) == 0) {
		t->hits++;
		t->hit_bytes += rfs_block_len(f, bs, idx);
		return (ssize_t)rfs_block_len(f, bs, idx);
	}
	if (nowait)
		return RFS_WOULD_BLOCK;
	n = rfs_blocks_run(fs, f, idx, RFS_RUN_MAX, left, NULL, NULL);
	rc = rfs_blocks_fetch(fs, f, idx, n, out, &how);
	/* each block it filled, or the one it could not, was a miss */
	t->misses += rc > 0 ? (uint64_t)rc : 1;
	if (rc == -EAGAIN) { /* its fetcher lost it: one block at a time */
		rc = fetch_block(fs, f, idx, out, deadline);
		return rc ? rc : (ssize_t)rfs_block_len(f, bs, idx);
	}
	if (rc < 0)
		return rc;
	bytes = 0;
	for (int i = 0; i < rc; i++)
		bytes += rfs_block_len(f, bs, idx + (uint64_t)i);
	return (ssize_t)bytes;
}

#define PAGE 4096u

/* Whether block @idx is cached or being fetched. */
static bool known(struct rfs_fs *fs, const struct rfs_target *f, uint64_t idx)
{
	bool yes = rfs_cache_has(fs->cache, &f->cid, idx);

	if (!yes) {
		pthread_mutex_lock(&fs->inflight_lock);
		yes = find_inflight(fs, &f->cid, idx) != NULL;
		pthread_mutex_unlock(&fs->inflight_lock);
	}
	return yes;
}

/*
 * A random read of less than half a block that is not cached: only its
 * own pages, one round trip with nothing more on the wire, and not kept
 * (a second read of the block fetches and keeps it whole). Not for the
 * first block (headers: read again by nearly every open), nor after a
 * block that is there (another handle reading in order: the kernel
 * hands a stream's requests to whichever reader it likes). Returns 1
 * when this is not such a read.
 */
static int get_little(struct rfs_fs *fs, struct rfs_file *file, uint64_t pos,
		      size_t n, size_t blen, char *out, char *tmp,
		      double deadline)
{
	struct rfs_target *f = &file->t;
	uint64_t bs = fs->bs, idx = pos / bs;
	uint64_t from = pos / PAGE * PAGE, end = idx * bs + blen;
	uint64_t to = (pos + n + PAGE - 1) / PAGE * PAGE;
	int rc;

	if (n * 2 > blen || idx == 0 || known(fs, f, idx) ||
	    known(fs, f, idx - 1) || !rfs_prefetch_wants_little(file, idx))
		return 1;
	to = to < end ? to : end;
	/* with other such misses of the file, in one vector read */
	rc = rfs_gather_read(fs, file, tmp, from, (size_t)(to - from),
			     deadline);
	if (rc)
		return rc;
	memcpy(out, tmp + (pos - from), n);
	return 0;
}

ssize_t rfs_blocks_read(struct rfs_fs *fs, struct rfs_file *file, void *buf,
			size_t size, uint64_t off, double deadline, bool nowait,
			struct rfs_read_tally *t)
{
	uint64_t bs = fs->bs;
	struct rfs_target *f = &file->t;
	char *tmp = NULL;
	size_t done = 0;
	int rc = 0;

	while (done < size && !rc) {
		uint64_t pos = off + done, idx = pos / bs;
		size_t blen = rfs_block_len(f, bs, idx);
		size_t skip = (size_t)(pos - idx * bs);
		size_t n =
			blen - skip < size - done ? blen - skip : size - done;
		ssize_t got;

		if (skip == 0 && n == blen) { /* whole blocks: no copy */
			got = get_run(fs, f, idx, (char *)buf + done,
				      size - done, deadline, nowait, t);
			rc = got < 0 ? (int)got : 0;
			done += got > 0 ? (size_t)got : 0;
			continue;
		}
		/* cached: only the pages it needs are read and checked */
		if (cache_get(fs, f, idx, blen, skip, (char *)buf + done, n) ==
		    0) {
			t->hits++;
			t->hit_bytes += n;
			done += n;
			continue;
		}
		if (nowait) {
			rc = RFS_WOULD_BLOCK;
			break;
		}
		t->misses++;
		if (!tmp)
			tmp = malloc(bs);
		rc = tmp ? get_little(fs, file, pos, n, blen,
				      (char *)buf + done, tmp, deadline)
			 : -ENOMEM;
		if (rc == 1) {
			rc = fetch_block(fs, f, idx, tmp, deadline);
			if (!rc)
				memcpy((char *)buf + done, tmp + skip, n);
		}
		done += rc ? 0 : n;
	}
	free(tmp);
	if (!rc && size)
		rfs_prefetch_after(fs, file, off / bs, (off + size - 1) / bs);
	return rc ? rc : (ssize_t)done;
}
