/*
 * FUSE low-level operations: each one turns a request into one core call
 * and exactly one reply. The errno sign flips here and nowhere else.
 * Request userdata is a struct rfs_fuse. A call that would wait on the
 * network (the core says RFS_WOULD_BLOCK when asked with RFS_NOWAIT) is
 * made again, waiting, on a thread of fuse/async.c, which replies: the
 * session's workers stay free for what is at hand.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "fuse/async.h"
#include "fuse/ops.h"
#include "fuse/passthrough.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/banned.h"

#define MAX_XATTR (1024 * 1024)

static struct rfs_fs *fs_of(fuse_req_t req)
{
	return ((struct rfs_fuse *)fuse_req_userdata(req))->fs;
}

static struct rfs_async *async_of(fuse_req_t req)
{
	return ((struct rfs_fuse *)fuse_req_userdata(req))->async;
}

/* Who asks: the request's uid, gid and pid, as the core credits them;
 * NULL when out of memory. */
static struct rfs_cred *caller(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct rfs_cred *who = NULL;

	rfs_fs_caller(fs_of(req), c->uid, c->gid, c->pid, &who);
	return who;
}

static void reply_err(fuse_req_t req, int rc)
{
	int e = rc < 0 ? -rc : rc;

	/* libfuse rejects values outside 1..4095; never send it one */
	if (e <= 0 || e >= 4096)
		e = EIO;
	fuse_reply_err(req, e);
}

static void to_stat(const struct rfs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = a->blksize;
	st->st_mtim.tv_sec = a->mtime;
	st->st_ctim.tv_sec = a->ctime;
	st->st_atim.tv_sec = a->mtime;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Big reads and the kernel's page cache: file DIDs never change. */
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	/* `ls -l` of a dataset: names and attributes in one answer, from
	 * the one listing the catalogue gave, not a lookup per file */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* The kernel takes the smaller of this and the bdi's read_ahead_kb,
	 * which main.c raises to 1 MiB when it can: then sequential reads
	 * arrive as 1 MiB requests, one cache block each. */
	conn->max_readahead = RFS_FUSE_READAHEAD;
	/* The kernel's default lets 12 reads wait on the daemon at once: a
	 * sparse reader's 32 threads then queue in the kernel, where the
	 * daemon can neither overlap their round trips nor group them. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static void reply_lookup(fuse_req_t req, int rc, const struct rfs_attr *a)
{
	struct rfs_fs *fs = fs_of(req);
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	if (rc == -ENOENT) {
		/* a negative entry: the kernel remembers "no such name",
		 * but not for a shared mount's callers, who may differ */
		e.ino = 0;
		e.entry_timeout = rfs_fs_conf(fs)->per_caller
					  ? 0
					  : rfs_fs_conf(fs)->negative_ttl;
		fuse_reply_entry(req, &e);
		return;
	}
	if (rc) {
		reply_err(req, rc);
		return;
	}
	e.ino = a->ino;
	e.generation = 1;
	e.attr_timeout = a->attr_ttl;
	e.entry_timeout = a->entry_ttl;
	to_stat(a, &e.attr);
	if (fuse_reply_entry(req, &e))
		rfs_fs_forget(fs, a->ino, 1); /* the kernel never got it */
}

/* A request for a thread that may wait: its own copy of the arguments
 * (libfuse reuses the request's buffer once the handler returns). */
struct job {
	struct rfs_job j; /* first */
	fuse_req_t req;
	struct rfs_cred *who; /* a reference of the job's own */
	fuse_ino_t ino;
	struct fuse_file_info fi;
	size_t size;
	off_t off;
	double t0;   /* a read's arrival (rfs_mono_now), for its latency */
	char name[]; /* lookup, getxattr */
};

static void free_job(struct job *jb)
{
	rfs_fs_cred_put(jb->who);
	free(jb);
}

static void drop_job(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;

	reply_err(jb->req, -EIO);
	free_job(jb);
}

/*
 * Takes (@d 1: whether one was free) or gives back (-1) one of the
 * session workers that may wait on the network: answering inline saves
 * the hand-over (a cold random read's round trip is its latency), as
 * long as some workers stay free for cached data.
 */
static bool inline_slot(struct rfs_fuse *ctx, int d)
{
	if (d < 0) {
		__atomic_sub_fetch(&ctx->inline_busy, 1, __ATOMIC_RELAXED);
		return true;
	}
	if (__atomic_add_fetch(&ctx->inline_busy, 1, __ATOMIC_RELAXED) <=
	    ctx->inline_max)
		return true;
	__atomic_sub_fetch(&ctx->inline_busy, 1, __ATOMIC_RELAXED);
	return false;
}

/* Hands the request to a thread that may wait; on no memory, EIO.
 * @t0: when it arrived (reads: their latency is counted). */
static void later_at(fuse_req_t req, enum rfs_async_kind kind,
		     void (*run)(struct rfs_job *), struct rfs_cred *who,
		     fuse_ino_t ino, const struct fuse_file_info *fi,
		     const char *name, size_t size, off_t off, double t0)
{
	struct rfs_fuse *ctx = fuse_req_userdata(req);
	size_t nl = name ? strlen(name) + 1 : 0;
	struct job *jb = calloc(1, sizeof(*jb) + nl);

	if (!jb) {
		reply_err(req, -ENOMEM);
		return;
	}
	jb->j.run = run;
	jb->j.drop = drop_job;
	jb->req = req;
	jb->who = who ? rfs_fs_cred_get(who) : NULL;
	jb->ino = ino;
	if (fi)
		jb->fi = *fi;
	if (name)
		memcpy(jb->name, name, nl);
	jb->size = size;
	jb->off = off;
	jb->t0 = t0;
	/* a worker to spare: no hand-over (@req is gone once answered) */
	if (inline_slot(ctx, 1)) {
		run(&jb->j);
		inline_slot(ctx, -1);
		return;
	}
	rfs_async_run(async_of(req), kind, &jb->j);
}

static void later(fuse_req_t req, enum rfs_async_kind kind,
		  void (*run)(struct rfs_job *), struct rfs_cred *who,
		  fuse_ino_t ino, const struct fuse_file_info *fi,
		  const char *name, size_t size, off_t off)
{
	later_at(req, kind, run, who, ino, fi, name, size, off, 0);
}

static void run_lookup(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;
	struct rfs_attr a;
	int rc = rfs_fs_lookup(fs_of(jb->req), jb->who, jb->ino, jb->name, &a,
			       0);

	reply_lookup(jb->req, rc, &a);
	free_job(jb);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct rfs_cred *who = caller(req);
	struct rfs_attr a;
	int rc = who ? rfs_fs_lookup(fs_of(req), who, parent, name, &a,
				     RFS_NOWAIT)
		     : -ENOMEM;

	if (rc == RFS_WOULD_BLOCK)
		later(req, RFS_ASYNC_LIST, run_lookup, who, parent, NULL, name,
		      0, 0);
	else
		reply_lookup(req, rc, &a);
	rfs_fs_cred_put(who);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	rfs_fs_forget(fs_of(req), ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		rfs_fs_forget(fs_of(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct rfs_attr a;
	struct stat st;
	struct rfs_cred *who = caller(req);
	int rc = who ? rfs_fs_getattr(fs_of(req), who, ino, &a) : -ENOMEM;

	rfs_fs_cred_put(who);

	if (rc) {
		reply_err(req, rc);
		return;
	}
	to_stat(&a, &st);
	fuse_reply_attr(req, &st, a.attr_ttl);
}

static void reply_opendir(fuse_req_t req, int rc, struct rfs_dir *d,
			  struct fuse_file_info *fi)
{
	if (rc) {
		reply_err(req, rc);
		return;
	}
	fi->fh = (uintptr_t)d;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi))
		rfs_fs_releasedir(d);
}

static void run_opendir(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;
	struct rfs_dir *d = NULL;
	int rc = rfs_fs_opendir(fs_of(jb->req), jb->who, jb->ino, &d, 0);

	reply_opendir(jb->req, rc, d, &jb->fi);
	free_job(jb);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct rfs_cred *who = caller(req);
	struct rfs_dir *d = NULL;
	int rc = who ? rfs_fs_opendir(fs_of(req), who, ino, &d, RFS_NOWAIT)
		     : -ENOMEM;

	if (rc == RFS_WOULD_BLOCK)
		later(req, RFS_ASYNC_LIST, run_opendir, who, ino, fi, NULL, 0,
		      0);
	else
		reply_opendir(req, rc, d, fi);
	rfs_fs_cred_put(who);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct rfs_dir *d = (struct rfs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	struct rfs_attr a;
	struct stat st;
	const char *name;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	for (size_t idx = off; rfs_fs_dir_entry(d, idx, &name, &a) == 0;
	     idx++) {
		size_t n;

		to_stat(&a, &st);
		n = fuse_add_direntry(req, buf + used, size - used, name, &st,
				      (off_t)(idx + 1));
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

/* Entry @idx for readdirplus: its size, or 0 if it did not fit. */
static size_t add_plus(fuse_req_t req, struct rfs_dir *d, size_t idx, char *buf,
		       size_t room, int *rc)
{
	struct fuse_entry_param e;
	struct rfs_attr a;
	const char *name;
	bool name_only;
	size_t n;

	*rc = rfs_fs_dir_lookup(d, idx, &name, &a);
	name_only = *rc == 1 || idx < 2;
	if (*rc < 0)
		return 0;
	*rc = 0;
	memset(&e, 0, sizeof(e));
	to_stat(&a, &e.attr);
	e.attr_timeout = a.attr_ttl;
	e.entry_timeout = a.entry_ttl;
	e.generation = 1;
	/* a name only ("." and "..", or an entry whose attributes are not
	 * all known yet): no reference taken, and ino 0 tells the kernel
	 * to count none and to look the name up when it needs more */
	e.ino = name_only ? 0 : a.ino;
	n = fuse_add_direntry_plus(req, buf, room, name, &e, (off_t)(idx + 1));
	if (n > room && !name_only)
		rfs_fs_forget(fs_of(req), a.ino, 1); /* not sent after all */
	return n > room ? 0 : n;
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	struct rfs_dir *d = (struct rfs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0, n;
	int rc = 0;

	if (!buf) {
		reply_err(req, -ENOMEM);
		return;
	}
	for (size_t idx = off; !rc; idx++) {
		n = add_plus(req, d, idx, buf + used, size - used, &rc);
		if (!n)
			break;
		used += n;
	}
	/* past the end (-ENOENT) or out of room: what fits so far */
	if (rc && rc != -ENOENT && !used)
		reply_err(req, rc);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	rfs_fs_releasedir((struct rfs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/*
 * An open file's fh: the core's file, its lowest bits telling when the
 * kernel reads it from a backing file, and when passthrough counted the
 * open (calloc'ed, so those bits are free). Not a struct of our own: the
 * core frees files still open at exit, whose RELEASE never came, and a
 * wrapper would leak.
 */
#define FH_DIRECT 1u
#define FH_COUNTED 2u

static struct rfs_file *file_of(const struct fuse_file_info *fi)
{
	return (struct rfs_file *)(uintptr_t)(fi->fh & ~(uint64_t)(FH_DIRECT |
								   FH_COUNTED));
}

static bool is_direct(const struct fuse_file_info *fi)
{
	return fi->fh & FH_DIRECT;
}

static void pt_release(fuse_ino_t ino, const struct fuse_file_info *fi)
{
	if (fi->fh & FH_COUNTED)
		rfs_pt_release(ino, is_direct(fi));
}

/* A backing id for a whole cached file, or 0: read through the daemon. */
static int backing_for(struct rfs_fs *fs, fuse_ino_t ino, struct rfs_file *f,
		       bool *counted)
{
	int fd = rfs_pt_wants_fd(ino) ? rfs_fs_open_whole(fs, f) : -1;
	int id = rfs_pt_open(ino, fd, counted);

	if (fd >= 0)
		close(fd); /* a registered backing file holds its own */
	if (id > 0)
		rfs_fs_count_whole(fs);
	return id;
}

static void reply_open(fuse_req_t req, fuse_ino_t ino, int rc,
		       struct rfs_file *f, struct fuse_file_info *fi)
{
	struct rfs_fs *fs = fs_of(req);
	bool counted;
	int id;

	if (rc) {
		reply_err(req, rc);
		return;
	}
	id = backing_for(fs, ino, f, &counted);
	if (id < 0) {
		rfs_fs_release(fs, f);
		reply_err(req, id);
		return;
	}
	fi->fh = (uintptr_t)f | (id > 0 ? FH_DIRECT : 0) |
		 (counted ? FH_COUNTED : 0);
	/* a file DID's bytes are fixed: keep pages, but for bytes found
	 * wrong since (not keeping them drops them); the kernel refuses
	 * that flag with a backing file, whose pages are the cache's */
	fi->keep_cache = id == 0 && rfs_fs_keep_pages(fs, f);
	if (rfs_pt_reply_open(req, fi, id)) {
		pt_release(ino, fi);
		rfs_fs_release(fs, f);
	}
}

static void run_open(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;
	struct rfs_file *f = NULL;
	int rc = rfs_fs_open(fs_of(jb->req), jb->who, jb->ino, &f, 0);

	reply_open(jb->req, jb->ino, rc, f, &jb->fi);
	free_job(jb);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct rfs_file *f = NULL;
	struct rfs_cred *who;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY ||
	    (fi->flags & (O_TRUNC | O_CREAT))) {
		reply_err(req, -EROFS);
		return;
	}
	who = caller(req);
	rc = who ? rfs_fs_open(fs_of(req), who, ino, &f, RFS_NOWAIT) : -ENOMEM;
	if (rc == RFS_WOULD_BLOCK)
		later(req, RFS_ASYNC_OPEN, run_open, who, ino, fi, NULL, 0, 0);
	else
		reply_open(req, ino, rc, f, fi);
	rfs_fs_cred_put(who);
}

/* A read, answered here or, if it must wait, handed on: true when
 * answered. The bytes are fetched as the file's opener, as POSIX reads
 * use the open file's credentials, not the reading process's. */
static bool do_read(fuse_req_t req, struct rfs_file *f, size_t size, off_t off,
		    int flags, double t0)
{
	struct rfs_fs *fs = fs_of(req);
	char *buf;
	ssize_t n;

	buf = off < 0 ? NULL : malloc(size ? size : 1);
	n = off < 0 ? -EINVAL : !buf ? -ENOMEM : 0;
	if (!n)
		n = rfs_fs_read(fs, f, buf, size, (uint64_t)off, flags);
	if (n == RFS_WOULD_BLOCK) {
		free(buf);
		return false;
	}
	/* before the reply: once answered, a RELEASE may free @f */
	rfs_fs_count_read(fs, f, n, rfs_mono_now() - t0);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
	return true;
}

static void run_read(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;

	do_read(jb->req, file_of(&jb->fi), jb->size, jb->off, 0, jb->t0);
	free_job(jb);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	double t0 = rfs_mono_now();

	if (!do_read(req, file_of(fi), size, off, RFS_NOWAIT, t0))
		later_at(req, RFS_ASYNC_READ, run_read, NULL, ino, fi, NULL,
			 size, off, t0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	pt_release(ino, fi);
	rfs_fs_release(fs_of(req), file_of(fi));
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct rfs_statfs s;
	struct statvfs v;

	rfs_fs_statfs(fs_of(req), &s);
	memset(&v, 0, sizeof(v));
	v.f_bsize = s.bsize;
	v.f_frsize = s.bsize;
	v.f_namemax = s.namemax;
	v.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
	fuse_reply_statfs(req, &v);
}

/* Answers a getxattr/listxattr value the way the syscall contract asks. */
static void reply_xattr(fuse_req_t req, size_t size, int rc,
			const struct rfs_buf *b)
{
	if (rc)
		reply_err(req, rc);
	else if (size == 0)
		fuse_reply_xattr(req, b->len);
	else if (b->len > size)
		reply_err(req, -ERANGE);
	else
		fuse_reply_buf(req, b->data ? b->data : "", b->len);
}

/* A getxattr, answered here or handed on: true when answered. */
static bool do_getxattr(fuse_req_t req, struct rfs_cred *who, fuse_ino_t ino,
			const char *name, size_t size, int flags)
{
	struct rfs_buf b;
	int rc;

	rfs_buf_init(&b, MAX_XATTR);
	rc = rfs_fs_getxattr(fs_of(req), who, ino, name, &b, flags);
	if (rc != RFS_WOULD_BLOCK)
		reply_xattr(req, size, rc, &b);
	rfs_buf_release(&b);
	return rc != RFS_WOULD_BLOCK;
}

static void run_getxattr(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;

	do_getxattr(jb->req, jb->who, jb->ino, jb->name, jb->size, 0);
	free_job(jb);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			size_t size)
{
	struct rfs_cred *who = caller(req);

	if (!who)
		reply_err(req, -ENOMEM);
	else if (!do_getxattr(req, who, ino, name, size, RFS_NOWAIT))
		later(req, RFS_ASYNC_OPEN, run_getxattr, who, ino, NULL, name,
		      size, 0);
	rfs_fs_cred_put(who);
}

/* access(2): the kernel asks only without default_permissions, which a
 * shared mount must not use (one inode, callers with different rights).
 * jb->size carries the mask. */
static bool do_access(fuse_req_t req, struct rfs_cred *who, fuse_ino_t ino,
		      int mask, int flags)
{
	int rc = rfs_fs_access(fs_of(req), who, ino, mask, flags);

	if (rc == RFS_WOULD_BLOCK)
		return false;
	if (rc)
		reply_err(req, rc);
	else
		fuse_reply_err(req, 0);
	return true;
}

static void run_access(struct rfs_job *j)
{
	struct job *jb = (struct job *)j;

	do_access(jb->req, jb->who, jb->ino, (int)jb->size, 0);
	free_job(jb);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct rfs_cred *who = caller(req);

	if (!who)
		reply_err(req, -ENOMEM);
	else if (!do_access(req, who, ino, mask, RFS_NOWAIT))
		later(req, RFS_ASYNC_OPEN, run_access, who, ino, NULL, NULL,
		      (size_t)mask, 0);
	rfs_fs_cred_put(who);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct rfs_buf b;
	int rc;

	rfs_buf_init(&b, MAX_XATTR);
	rc = rfs_fs_listxattr(fs_of(req), ino, &b);
	reply_xattr(req, size, rc, &b);
	rfs_buf_release(&b);
}

/* ---- the lake is read-only (for now): every change is EROFS ---- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	reply_err(req, -EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	reply_err(req, -EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode)
{
	reply_err(req, -EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	reply_err(req, -EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
		       const char *name)
{
	reply_err(req, -EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname,
		      unsigned int flags)
{
	reply_err(req, -EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		    const char *newname)
{
	reply_err(req, -EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, struct fuse_file_info *fi)
{
	reply_err(req, -EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	reply_err(req, -EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	reply_err(req, -EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	reply_err(req, -EROFS);
}

const struct fuse_lowlevel_ops rfs_fuse_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_unlink,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.access = op_access,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.create = op_create,
};
