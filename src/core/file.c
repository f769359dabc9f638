/* Open files: open, read, release; the bytes through the read path. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authz/cred.h"
#include "core/authz.h"
#include "core/batch.h"
#include "core/core.h"
#include "core/file.h"
#include "core/node.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/log.h"
#include "util/banned.h"

/* What every file handle derives from its DID and replicas. */
static int file_ready(struct rfs_fs *fs, struct rfs_file *f, uint64_t ino,
		      struct rfs_cred *who)
{
	int rc = rfs_handles_new(fs, who, f->t.reps->n, &f->t.hs);

	f->ino = ino;
	f->t.who = rfs_cred_get(who);
	rfs_cache_id_of(&f->t.cid, f->t.did.scope, f->t.did.name,
			f->t.did.adler32);
	snprintf(f->t.didstr, sizeof(f->t.didstr), "%s:%s", f->t.did.scope,
		 f->t.did.name);
	pthread_mutex_init(&f->pf_lock, NULL);
	f->pf_next = UINT64_MAX; /* no read yet: the first is not "next" */
	return rc;
}

int rfs_fs_file_of(struct rfs_fs *fs, struct rfs_cred *who,
		   const struct rfs_did_rec *rec, struct rfs_replicas *reps,
		   struct rfs_file **out)
{
	struct rfs_file *f = calloc(1, sizeof(*f));
	int rc = f ? rfs_did_rec_copy(&f->t.did, rec) : -ENOMEM;

	if (!rc && reps)
		f->t.reps = rfs_replicas_get(reps);
	else if (!rc)
		rc = rfs_replicas_resolve(fs, who, &f->t.did, &f->t.reps);
	if (rc) {
		if (f)
			rfs_did_rec_release(&f->t.did);
		free(f);
		return rc;
	}
	rc = file_ready(fs, f, rfs_ino_of(rec->scope, rec->name), who);
	if (!rc)
		rc = rfs_verify_attach(fs, f);
	if (rc) {
		rfs_fs_release(fs, f);
		return rc;
	}
	*out = f;
	return 0;
}

int rfs_node_may_read(struct rfs_fs *fs, struct rfs_cred *who,
		      struct rfs_node *n, struct rfs_replicas *reps,
		      bool nowait)
{
	struct rfs_did_rec rec;
	struct rfs_file *f = NULL;
	int rc;

	if (!fs->authz)
		return 0;
	pthread_mutex_lock(&fs->table_lock);
	rc = rfs_did_rec_copy(&rec, &n->rec);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc)
		rc = rfs_fs_file_of(fs, who, &rec, reps, &f);
	if (!rc) {
		rc = rfs_authz_read(fs, who, &f->t, nowait);
		rfs_fs_release(fs, f);
	}
	rfs_did_rec_release(&rec);
	return rc;
}

int rfs_fs_access(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		  int mask, int flags)
{
	struct rfs_node *n = rfs_node_get(fs, ino);
	struct rfs_replicas *reps = NULL;
	bool dir;
	int rc;

	if (!n)
		return -ESTALE;
	pthread_mutex_lock(&fs->table_lock);
	dir = rfs_is_dir(n->rec.type);
	pthread_mutex_unlock(&fs->table_lock);
	if (mask & W_OK)
		rc = -EROFS;
	else if (dir || !(mask & (R_OK | X_OK)))
		rc = rfs_authz_names(fs, who);
	else if (mask & X_OK)
		rc = -EACCES;
	else if (!fs->authz)
		rc = 0;
	else if (!(rc = rfs_node_replicas(fs, who, n, &reps,
					  flags & RFS_NOWAIT)))
		rc = rfs_node_may_read(fs, who, n, reps, flags & RFS_NOWAIT);
	rfs_replicas_put(reps);
	rfs_node_put(fs, n);
	return rfs_fs_errno(rc);
}

int rfs_fs_open(struct rfs_fs *fs, struct rfs_cred *who, uint64_t ino,
		struct rfs_file **out, int flags)
{
	struct rfs_node *n = rfs_node_get(fs, ino);
	struct rfs_file *f;
	int rc;

	if (!n)
		return -ESTALE;
	f = calloc(1, sizeof(*f));
	pthread_mutex_lock(&fs->table_lock);
	rc = !f			       ? -ENOMEM
	     : rfs_is_dir(n->rec.type) ? -EISDIR
				       : rfs_did_rec_copy(&f->t.did, &n->rec);
	pthread_mutex_unlock(&fs->table_lock);
	if (!rc)
		rc = rfs_node_replicas(fs, who, n, &f->t.reps,
				       flags & RFS_NOWAIT);
	rfs_node_put(fs, n);
	if (rc) {
		if (f)
			rfs_did_rec_release(&f->t.did);
		free(f);
		return rfs_fs_errno(rc);
	}
	rc = file_ready(fs, f, ino, who);
	pthread_mutex_lock(&fs->open_lock);
	f->next = fs->open_files;
	if (f->next)
		f->next->prev = f;
	fs->open_files = f;
	pthread_mutex_unlock(&fs->open_lock);
	/* on a shared mount: not a byte, not a cached block, before the
	 * storage said this caller may read it */
	if (!rc)
		rc = rfs_authz_read(fs, who, &f->t, flags & RFS_NOWAIT);
	if (!rc)
		rc = rfs_verify_attach(fs, f);
	/* verify=always: not a byte before the whole matched */
	if (!rc && fs->conf->verify_always)
		rc = flags & RFS_NOWAIT
			     ? rfs_verify_is_good(f) ? 0 : RFS_WOULD_BLOCK
			     : rfs_verify_whole(fs, f);
	if (rc) {
		rfs_fs_release(fs, f);
		return rfs_fs_errno(rc);
	}
	*out = f;
	return 0;
}

/* Without a cache: the reader's range, straight from a replica. */
static ssize_t read_direct(struct rfs_fs *fs, struct rfs_file *f, void *buf,
			   size_t size, uint64_t off, double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	const struct rfs_source *src = NULL;
	struct iovec iov = { buf, size };
	uint64_t bs = fs->bs;
	ssize_t got = rfs_replicas_readv(fs, &f->t, &iov, 1, off, &how, &src);

	/* who served them, should the whole not match */
	if (got > 0)
		rfs_verify_fetched(
			fs, &f->t, off / bs,
			(size_t)((off + size - 1) / bs - off / bs + 1), src);
	return got;
}

ssize_t rfs_fs_read(struct rfs_fs *fs, struct rfs_file *f, void *buf,
		    size_t size, uint64_t off, int flags)
{
	double deadline = rfs_mono_now() + fs->conf->read_timeout;
	struct rfs_read_tally t = { 0 };
	uint64_t fsize = f->t.reps->size;
	bool nowait = flags & RFS_NOWAIT;
	ssize_t got;
	int rc;

	if (off >= fsize || size == 0)
		return 0;
	if (size > fsize - off)
		size = fsize - off;
	if (nowait && (!fs->cache || rfs_verify_busy(f)))
		return RFS_WOULD_BLOCK;
	rc = rfs_verify_before_read(fs, f, off, size, deadline);
	if (rc)
		return rc;
	if (fs->cache)
		got = rfs_blocks_read(fs, f, buf, size, off, deadline, nowait,
				      &t);
	else
		got = read_direct(fs, f, buf, size, off, deadline);
	/* the read that ends the file is answered once the whole matched */
	if (got == RFS_WOULD_BLOCK)
		rc = rfs_verify_after_read(fs, f, off, buf, 0, deadline, false);
	else
		rc = rfs_verify_after_read(fs, f, off, buf,
					   got > 0 ? (size_t)got : 0, deadline,
					   nowait);
	/* a read asked again, waiting, counts once: the last time */
	if (fs->cache && rc != RFS_WOULD_BLOCK && got != RFS_WOULD_BLOCK)
		rfs_cache_count_reads(fs->cache, t.hits, t.hit_bytes, t.misses);
	if (rc)
		return rc;
	return got < 0 ? rfs_fs_errno((int)got) : got;
}

bool rfs_fs_keep_pages(struct rfs_fs *fs, struct rfs_file *f)
{
	return rfs_verify_keep_pages(fs, f);
}

void rfs_fs_release(struct rfs_fs *fs, struct rfs_file *f)
{
	pthread_mutex_lock(&fs->open_lock);
	if (f->prev)
		f->prev->next = f->next;
	else if (fs->open_files == f)
		fs->open_files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	pthread_mutex_unlock(&fs->open_lock);
	rfs_verify_detach(fs, f);
	pthread_mutex_destroy(&f->pf_lock);
	rfs_replicas_put(f->t.reps);
	rfs_did_rec_release(&f->t.did);
	rfs_cred_put(f->t.who);
	rfs_handles_put(f->t.hs);
	free(f);
}

int rfs_target_copy(struct rfs_target *to, const struct rfs_target *from)
{
	memset(to, 0, sizeof(*to));
	if (rfs_did_rec_copy(&to->did, &from->did))
		return -ENOMEM;
	to->reps = rfs_replicas_get(from->reps);
	to->cid = from->cid;
	memcpy(to->didstr, from->didstr, sizeof(to->didstr));
	to->who = rfs_cred_get(from->who);
	to->hs = rfs_handles_get(from->hs);
	return 0;
}

void rfs_target_release(struct rfs_fs *fs, struct rfs_target *t)
{
	rfs_verify_unshare(fs, t);
	if (t->reps)
		rfs_replicas_put(t->reps);
	rfs_did_rec_release(&t->did);
	rfs_cred_put(t->who);
	rfs_handles_put(t->hs);
	memset(t, 0, sizeof(*t));
}

int rfs_fs_open_whole(struct rfs_fs *fs, const struct rfs_file *f)
{
	if (!fs->cache || !fs->conf->passthrough || !f->t.reps->size)
		return -ENOENT;
	return rfs_cache_open_whole(fs->cache, &f->t.cid, f->t.reps->size);
}

void rfs_fs_count_whole(struct rfs_fs *fs)
{
	pthread_mutex_lock(&fs->stats_lock);
	fs->whole_opens++;
	pthread_mutex_unlock(&fs->stats_lock);
}
