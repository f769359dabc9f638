/*
 * The store's index, in LMDB (all keys binary, big-endian numbers):
 *
 *   blk   id[16] idx[8]        -> len[4] adler32[4] crc32c[4] per 4 KiB
 *   files id[16]               -> struct file_rec + "scope:name" [+ md5]
 *   lru   atime[8] id[16]      -> (empty)   eviction order, by file
 *   meta  "key"                -> stored[8] bytes...
 *
 * One writer thread owns every write transaction and applies queued
 * operations in batches; readers use short read-only transactions
 * (MDB_NOTLS) and never wait for it. Access times are kept in memory and
 * folded into the lru index by the writer, never with a write per read.
 * The blocks' bytes are in block files (blockfile.c).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>
#include <openssl/evp.h>

#include "cache/cache_int.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

void rfs_cache_id_of(struct rfs_cache_id *id, const char *scope,
		     const char *name, const char *adler32)
{
	unsigned char md[32];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	/* NUL separators: "a:b" + "c" never collides with "a" + "b:c" */
	memset(md, 0, sizeof(md));
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		EVP_DigestUpdate(ctx, scope, strlen(scope) + 1);
		EVP_DigestUpdate(ctx, name, strlen(name) + 1);
		EVP_DigestUpdate(ctx, adler32 ? adler32 : "",
				 strlen(adler32 ? adler32 : "") + 1);
		EVP_DigestFinal_ex(ctx, md, &n);
	}
	EVP_MD_CTX_free(ctx);
	memcpy(id->b, md, RFS_CACHE_ID_LEN);
}

uint32_t rfs_cache_block_size(const struct rfs_cache *c)
{
	return c->block_size;
}

/* ---- opening ---- */

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, n + 1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* LMDB's lock file needs a local filesystem (lmdb.h caveats). */
static bool network_fs(long type)
{
	static const long magic[] = {
		0x6969,	    /* NFS */ 0x517b,	     /* SMB */
		0xff534d42, /* CIFS */ 0xfe534d42,   /* SMB2 */
		0x65735546, /* FUSE */ 0x00c36400,   /* Ceph */
		0x0bd00bd0, /* Lustre */ 0x47504653, /* GPFS */
		0x6b414653, /* AFS */ 0x5346414f,    /* OpenAFS */
	};

	for (size_t i = 0; i < sizeof(magic) / sizeof(magic[0]); i++)
		if (type == magic[i])
			return true;
	return false;
}

int rfs_cache_check_dir(const char *dir, char *err, size_t errlen)
{
	struct statfs sfs;
	int rc = mkdir_p(dir);

	if (rc) {
		snprintf(err, errlen, "cache_dir '%s': %s", dir, strerror(-rc));
		return rc;
	}
	if (access(dir, R_OK | W_OK | X_OK)) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir '%s': %s", dir, strerror(-rc));
		return rc;
	}
	if (statfs(dir, &sfs) == 0 && network_fs((long)sfs.f_type)) {
		snprintf(err, errlen,
			 "cache_dir '%s' is on a network filesystem; LMDB "
			 "needs a local one",
			 dir);
		return -EINVAL;
	}
	return 0;
}

/*
 * Blocks of another size or layout cannot serve this one: such a cache
 * starts empty (pins included) rather than reading every block as
 * corrupt. Layout 1 wrote the block size alone; layout 2 kept the bytes
 * in LMDB.
 */
static int check_layout(struct rfs_cache *c, MDB_txn *txn, bool *emptied)
{
	static const char key[] = "\001block_size";
	MDB_val k = { sizeof(key) - 1, (void *)key }, v;
	unsigned char val[16];
	int rc = mdb_get(txn, c->meta, &k, &v);

	if (rc == 0 && v.mv_size == 16 &&
	    be64_get(v.mv_data) == c->block_size &&
	    be64_get((const unsigned char *)v.mv_data + 8) == LAYOUT)
		return 0;
	if (rc == 0) {
		rfs_warn("cache: written with another block size or layout "
			 "(now %u bytes, layout %d); emptying the cache",
			 c->block_size, LAYOUT);
		rc = mdb_drop(txn, c->blk, 0);
		if (!rc)
			rc = mdb_drop(txn, c->files, 0);
		if (!rc)
			rc = mdb_drop(txn, c->lru, 0);
		*emptied = true;
	} else if (rc == MDB_NOTFOUND) {
		rc = 0;
	}
	be64_put(val, c->block_size);
	be64_put(val + 8, LAYOUT);
	v.mv_size = sizeof(val);
	v.mv_data = val;
	return rc ? rc : mdb_put(txn, c->meta, &k, &v, 0);
}

/* A failed step of opening: LMDB's own code is kept to name it. */
static int open_failed(struct rfs_cache *c, int mdb_rc)
{
	c->open_mdb_rc = mdb_rc;
	return rfs_errno_from_mdb(mdb_rc);
}

static int open_dbis(struct rfs_cache *c, bool *emptied)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->env, NULL, 0, &txn);

	if (rc)
		return open_failed(c, rc);
	rc = mdb_dbi_open(txn, "blk", MDB_CREATE, &c->blk);
	if (!rc)
		rc = mdb_dbi_open(txn, "files", MDB_CREATE, &c->files);
	if (!rc)
		rc = mdb_dbi_open(txn, "lru", MDB_CREATE, &c->lru);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta);
	if (!rc)
		rc = check_layout(c, txn, emptied);
	if (rc) {
		mdb_txn_abort(txn);
		return open_failed(c, rc);
	}
	rc = mdb_txn_commit(txn);
	return rc ? open_failed(c, rc) : 0;
}

/* Usage comes from the file records, so it survives restarts exactly. */
static int load_usage(struct rfs_cache *c)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);

	if (rc)
		return open_failed(c, rc);
	rc = mdb_cursor_open(txn, c->files, &cur);
	if (rc) {
		mdb_txn_abort(txn);
		return open_failed(c, rc);
	}
	for (int op = MDB_FIRST; !rc; op = MDB_NEXT) {
		struct file_rec f; /* copied: LMDB data is not aligned */

		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc || v.mv_size < sizeof(f))
			continue;
		memcpy(&f, v.mv_data, sizeof(f));
		c->st.used += f.bytes;
		c->st.files++;
		if (f.flags & FILE_PINNED)
			c->st.pinned += f.bytes;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	return rc == MDB_NOTFOUND ? 0 : open_failed(c, rc);
}

static int open_env(struct rfs_cache *c, const char *dir)
{
	/* headers (with their key and node, under 64 bytes more) and
	 * catalogue answers only: the map is address space, the file grows
	 * as they need */
	size_t map = (1u << 30) + (size_t)(c->quota / c->block_size + 1) *
					  (hdr_len(c->block_size) + 64);
	int dead = 0, rc;

	rc = mdb_env_create(&c->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(c->env, 8);
	if (!rc)
		rc = mdb_env_set_maxreaders(c->env, 512);
	if (!rc)
		rc = mdb_env_set_mapsize(c->env, map);
	/* NOSYNC: a cache can refetch; every block has its own checksum,
	 * and the syncer syncs every few seconds */
	if (!rc)
		rc = mdb_env_open(c->env, dir, MDB_NOTLS | MDB_NOSYNC, 0600);
	if (rc)
		return open_failed(c, rc);
	mdb_reader_check(c->env, &dead); /* slots of a crashed daemon */
	if (dead)
		rfs_info("cache: cleared %d stale reader slots", dead);
	return 0;
}

/*
 * An emptied cache of an older layout leaves LMDB's file as large as the
 * blocks it held (LMDB never shrinks it): copy what is left compactly and
 * put the copy in its place. On failure the cache goes on, just large.
 */
static int compact(struct rfs_cache *c, const char *dir)
{
	char tmp[4096], from[4200], to[4200];
	int rc, reopened = 0;

	snprintf(tmp, sizeof(tmp), "%s/compact.tmp", dir);
	snprintf(from, sizeof(from), "%s/data.mdb", tmp);
	snprintf(to, sizeof(to), "%s/data.mdb", dir);
	unlink(from);
	if (mkdir(tmp, 0700) && errno != EEXIST)
		return 0;
	rc = mdb_env_copy2(c->env, tmp, MDB_CP_COMPACT);
	if (!rc) {
		mdb_env_close(c->env);
		c->env = NULL;
		rc = rename(from, to) ? errno : 0;
		reopened = open_env(c, dir);
	}
	if (rc)
		rfs_warn("cache: cannot compact %s: %s", to, mdb_strerror(rc));
	unlink(from);
	rmdir(tmp);
	return reopened;
}

/* @id's file record, copied out (LMDB data is unaligned): 0, -ENOENT
 * or another -errno. */
static int read_file_rec(struct rfs_cache *c, const struct rfs_cache_id *id,
			 struct file_rec *f)
{
	MDB_val key = { RFS_CACHE_ID_LEN, (void *)id->b }, v;
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);

	if (rc)
		return rfs_errno_from_mdb(rc);
	rc = mdb_get(txn, c->files, &key, &v);
	if (rc == 0 && v.mv_size >= sizeof(*f))
		memcpy(f, v.mv_data, sizeof(*f));
	else if (rc == 0)
		rc = MDB_CORRUPTED;
	mdb_txn_abort(txn);
	return rc ? rfs_errno_from_mdb(rc) : 0;
}

/* Whether the index has a record of @id (for the sweep at opening). */
static bool known_file(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	struct file_rec f;

	/* when in doubt, keep */
	return read_file_rec(c, id, &f) != -ENOENT;
}

static int open_index(struct rfs_cache *c, const char *dir)
{
	bool emptied = false;
	int rc;

	c->open_mdb_rc = 0;
	rc = open_env(c, dir);
	if (!rc)
		rc = open_dbis(c, &emptied);
	if (!rc && emptied)
		rc = compact(c, dir);
	if (!rc && emptied)
		rc = open_dbis(c, &emptied);
	if (!rc)
		rc = load_usage(c);
	return rc;
}

/* LMDB's word that its file is not a sound environment. */
static bool corrupt(int mdb_rc)
{
	return mdb_rc == MDB_INVALID || mdb_rc == MDB_CORRUPTED ||
	       mdb_rc == MDB_PAGE_NOTFOUND || mdb_rc == MDB_VERSION_MISMATCH;
}

/*
 * A corrupt index is kept for inspection under another name, and the
 * cache starts again with an empty one rather than none: the sweep then
 * removes the block files no record names. Its lock file goes too (it
 * may be as bad; no other process uses it: we hold lock.ruciofs).
 */
static int set_aside(struct rfs_cache *c, const char *dir)
{
	char from[4200], to[4300], lock[4200];
	int rc = 0;

	if (c->env)
		mdb_env_close(c->env);
	c->env = NULL;
	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	/* an earlier one of the same second is kept too */
	for (int n = 0; n == 0 || (n < 100 && access(to, F_OK) == 0); n++)
		snprintf(to, sizeof(to),
			 n ? "%s.corrupt-%lld.%d" : "%s.corrupt-%lld", from,
			 (long long)time(NULL), n);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", dir);
	if (rename(from, to))
		rc = -errno;
	else
		unlink(lock);
	if (rc)
		rfs_err("cache index '%s' is corrupt (%s) and cannot be moved "
			"aside: %s",
			from, mdb_strerror(c->open_mdb_rc), strerror(-rc));
	else
		rfs_err("cache index '%s' is corrupt (%s); kept as '%s', "
			"starting an empty cache",
			from, mdb_strerror(c->open_mdb_rc), to);
	return rc;
}

static int open_store(struct rfs_cache *c, const char *dir)
{
	int rc = mkdir_p(dir);

	if (!rc)
		rc = rfs_bf_open(c, dir);
	if (!rc)
		rc = open_index(c, dir);
	if (rc && corrupt(c->open_mdb_rc)) {
		rc = set_aside(c, dir);
		if (!rc)
			rc = open_index(c, dir);
	}
	if (!rc)
		rfs_bf_sweep(c, known_file);
	return rc;
}

int rfs_cache_open(struct rfs_cache **out, const struct rfs_cache_conf *conf)
{
	struct rfs_cache *c = calloc(1, sizeof(*c));
	int rc;

	if (!c)
		return -ENOMEM;
	c->block_size = conf->block_size;
	c->quota = conf->quota;
	c->dfd = c->lockfd = c->w.fd = -1;
	for (size_t i = 0; i < READER_SLOTS; i++)
		c->rd[i].fd = -1;
	pthread_mutex_init(&c->rd_lock, NULL);
	pthread_mutex_init(&c->st_lock, NULL);
	pthread_cond_init(&c->st_loaded, NULL);
	c->st.quota = conf->quota;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->wake, NULL);
	pthread_cond_init(&c->done, NULL);
	pthread_cond_init(&c->stopping, NULL);
	rc = open_store(c, conf->dir);
	if (!rc) {
		rc = -pthread_create(&c->writer, NULL, rfs_cache_writer_main,
				     c);
		c->writer_started = rc == 0;
	}
	if (!rc) {
		rc = -pthread_create(&c->syncer, NULL, rfs_cache_syncer_main,
				     c);
		c->syncer_started = rc == 0;
	}
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail:
	rfs_cache_close(c);
	return rc;
}

/* ---- the queue ---- */

void rfs_cache_free_op(struct op *o)
{
	free(o->did);
	free(o->key);
	if (o->kind == OP_PUT)
		rfs_cache_buf_free(o->data);
	else
		free(o->data);
	free(o);
}

/* Under c->lock: until a block of @len fits in the queue, or @wait_ms. */
static void wait_room(struct rfs_cache *c, size_t len, int wait_ms)
{
	double t0 = rfs_mono_now();
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_ms / 1000;
	until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!c->stop && c->writer_started &&
	       c->queued_bytes + len > QUEUE_MAX_BYTES)
		if (pthread_cond_timedwait(&c->done, &c->lock, &until))
			break;
	c->st.wait_us += (uint64_t)((rfs_mono_now() - t0) * 1e6);
}

/* Queues @o; returns its sequence number, or 0 if it was refused (and
 * @o is still the caller's). */
static uint64_t enqueue_or_keep(struct rfs_cache *c, struct op *o, int wait_ms)
{
	uint64_t seq = 0;

	pthread_mutex_lock(&c->lock);
	if (o->kind == OP_PUT && wait_ms > 0)
		wait_room(c, o->len, wait_ms);
	if (!c->stop && (o->kind != OP_PUT ||
			 c->queued_bytes + o->len <= QUEUE_MAX_BYTES)) {
		seq = o->seq = ++c->next_seq;
		c->queued_bytes += o->len;
		if (c->tail)
			c->tail->next = o;
		else
			c->head = o;
		c->tail = o;
		pthread_cond_signal(&c->wake);
	} else if (o->kind == OP_PUT) {
		c->st.dropped++;
	}
	pthread_mutex_unlock(&c->lock);
	return seq;
}

/* Takes @o; returns its sequence number, or 0 if it was refused. */
static uint64_t enqueue(struct rfs_cache *c, struct op *o)
{
	uint64_t seq = enqueue_or_keep(c, o, 0);

	if (!seq)
		rfs_cache_free_op(o);
	return seq;
}

static struct op *new_op(enum op_kind kind, const struct rfs_cache_id *id)
{
	struct op *o = calloc(1, sizeof(*o));

	if (o) {
		o->kind = kind;
		if (id)
			o->id = *id;
	}
	return o;
}

static int set_file(struct op *o, const struct rfs_cache_file *f)
{
	o->size = f->size;
	snprintf(o->adler32, sizeof(o->adler32), "%s", f->adler32);
	snprintf(o->md5, sizeof(o->md5), "%s", f->md5 ? f->md5 : "");
	o->did = strdup(f->did ? f->did : "");
	return o->did ? 0 : -ENOMEM;
}

int rfs_cache_put(struct rfs_cache *c, const struct rfs_cache_id *id,
		  const struct rfs_cache_file *f, uint64_t idx, const void *buf,
		  size_t len)
{
	struct op *o = new_op(OP_PUT, id);

	if (!o)
		return -ENOMEM;
	o->idx = idx;
	o->len = len;
	o->data = rfs_cache_buf_alloc(len);
	if (!o->data || set_file(o, f)) {
		rfs_cache_free_op(o);
		return -ENOMEM;
	}
	memcpy(o->data, buf, len);
	return enqueue(c, o) ? 0 : -ENOSPC;
}

int rfs_cache_put_take(struct rfs_cache *c, const struct rfs_cache_id *id,
		       const struct rfs_cache_file *f, uint64_t idx, void *buf,
		       size_t len, int wait_ms)
{
	struct op *o = new_op(OP_PUT, id);
	int rc = o ? set_file(o, f) : -ENOMEM;

	if (!rc) {
		o->idx = idx;
		o->len = len;
		o->data = buf;
		if (enqueue_or_keep(c, o, wait_ms))
			return 0;
		o->data = NULL; /* refused: the buffer stays the caller's */
		rc = -ENOSPC;
	}
	if (o)
		rfs_cache_free_op(o);
	return rc;
}

static void wait_seq(struct rfs_cache *c, uint64_t seq)
{
	pthread_mutex_lock(&c->lock);
	while (seq && c->committed_seq < seq && c->writer_started)
		pthread_cond_wait(&c->done, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

void rfs_cache_flush(struct rfs_cache *c)
{
	struct op *o = new_op(OP_FLUSH, NULL);

	if (o)
		wait_seq(c, enqueue(c, o));
}

/*
 * A block still in the queue is a hit too: it was just fetched. 1 when
 * found, -EINVAL when queued with another length (as when stored).
 */
static int get_queued(struct rfs_cache *c, const struct rfs_cache_id *id,
		      uint64_t idx, size_t blen, size_t off, void *buf,
		      size_t n)
{
	int found = 0;

	pthread_mutex_lock(&c->lock);
	for (struct op *o = c->head; o && !found; o = o->next) {
		if (o->kind != OP_PUT || o->idx != idx ||
		    memcmp(o->id.b, id->b, RFS_CACHE_ID_LEN))
			continue;
		found = o->len == blen ? 1 : -EINVAL;
		if (found == 1)
			memcpy(buf, (const char *)o->data + off, n);
	}
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* ---- reading ---- */

/* Under c->lock: notes an access to @id, for the writer to fold into
 * the lru index. */
static void touch_locked(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	unsigned slot = (id->b[0] | id->b[1] << 8) % TOUCH_SLOTS;
	struct touch *t = &c->touches[slot];
	uint64_t now = wall_now();

	/* a collision just loses one access time update: LRU is a hint */
	if (memcmp(t->id.b, id->b, RFS_CACHE_ID_LEN) || t->atime != now) {
		t->id = *id;
		t->atime = now;
		t->dirty = true;
	}
}

static void touch(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	pthread_mutex_lock(&c->lock);
	touch_locked(c, id);
	pthread_mutex_unlock(&c->lock);
}

/* Atomics, not c->lock: every read counts, and the writer holds the
 * lock while it applies a batch. */
void rfs_cache_count_reads(struct rfs_cache *c, uint64_t hits,
			   uint64_t hit_bytes, uint64_t misses)
{
	__atomic_add_fetch(&c->st.hits, hits, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->st.hit_bytes, hit_bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&c->st.misses, misses, __ATOMIC_RELAXED);
}

void rfs_cache_count_corrupt(struct rfs_cache *c)
{
	__atomic_add_fetch(&c->st.corrupt, 1, __ATOMIC_RELAXED);
}

/*
 * The CRC32Cs of pages @first.. (@n of them) of block @idx, whose length
 * must be @len: 0, -ENOENT, -EINVAL (another length is stored) or
 * -EBADMSG.
 */
int rfs_cache_get_crcs(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t idx, size_t len, size_t first, size_t n,
		       uint32_t *crcs)
{
	unsigned char k[BLK_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v;
	MDB_txn *txn;
	int rc;

	blk_key(k, id, idx);
	rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);
	if (rc)
		return rfs_errno_from_mdb(rc);
	rc = mdb_get(txn, c->blk, &key, &v);
	rc = rc ? rfs_errno_from_mdb(rc) : hdr_check(&v, len);
	if (!rc)
		memcpy(crcs, (const char *)v.mv_data + HDR_FIXED + 4 * first,
		       4 * n);
	mdb_txn_abort(txn);
	return rc;
}

/* Whether each page of the @len bytes at @p matches its CRC in @crcs. */
bool rfs_cache_pages_ok(const char *p, size_t len, const uint32_t *crcs)
{
	for (size_t i = 0; i < crc_pages(len); i++)
		if (page_crc(p, len, i) != crcs[i])
			return false;
	return true;
}

void rfs_cache_drop_block(struct rfs_cache *c, const struct rfs_cache_id *id,
			  uint64_t idx)
{
	struct op *o = new_op(OP_DROP, id);

	if (o) {
		o->idx = idx;
		enqueue(c, o);
	}
}

/*
 * Bytes [@from, @from + @len) of block @idx (whole pages, or up to its
 * end), checked, into @dst: 0, -ENOENT, -EINVAL or -EBADMSG.
 */
static int read_pages(struct rfs_cache *c, const struct rfs_cache_id *id,
		      uint64_t idx, size_t blen, size_t from, size_t len,
		      char *dst, bool *had_header)
{
	size_t first = from / CRC_PAGE, n = crc_pages(len);
	uint32_t crcs_s[256], *crcs = crcs_s;
	int rc;

	if (n > 256 && !(crcs = malloc(4 * n)))
		return -ENOMEM;
	/* the bytes are read outside the transaction: a reader never
	 * holds an LMDB snapshot across disk I/O */
	rc = rfs_cache_get_crcs(c, id, idx, blen, first, n, crcs);
	/* -EBADMSG: there is one, malformed */
	*had_header = rc == 0 || rc == -EBADMSG;
	if (!rc)
		rc = rfs_bf_read(c, id, idx * c->block_size + from, dst, len);
	if (!rc && !rfs_cache_pages_ok(dst, len, crcs))
		rc = -EBADMSG;
	if (crcs != crcs_s)
		free(crcs);
	return rc;
}

/*
 * As rfs_cache_get_part; a @peek (a whole-file check) marks no use of the
 * file and leaves a staged block to the reader it was staged for.
 */
static int get_part(struct rfs_cache *c, const struct rfs_cache_id *id,
		    uint64_t idx, size_t blen, size_t off, void *buf, size_t n,
		    bool peek)
{
	size_t from = off / CRC_PAGE * CRC_PAGE;
	size_t to = (off + n + CRC_PAGE - 1) / CRC_PAGE * CRC_PAGE;
	bool had_header = false;
	char *dst = buf;
	int rc;

	if (off + n > blen || n == 0)
		return -EINVAL;
	/* the queue first: a block leaves it only once committed, so
	 * looking there before LMDB cannot miss one between the two */
	rc = get_queued(c, id, idx, blen, off, buf, n);
	if (!rc && !peek)
		rc = rfs_cache_stage_get(c, id, idx, blen, off, buf, n);
	/* a warm stream reads from staging: its file is in use */
	if (rc == 1 && !peek)
		touch(c, id);
	if (rc)
		return rc == 1 ? 0 : rc;
	/* whole pages are read and checked; the caller's part copied */
	to = to < blen ? to : blen;
	/* aligned: a direct read of the block file lands in it as is */
	if ((from != off || to != off + n) &&
	    !(dst = rfs_cache_buf_alloc(to - from)))
		return -ENOMEM;
	rc = read_pages(c, id, idx, blen, from, to - from, dst, &had_header);
	if (!rc && dst != buf)
		memcpy(buf, dst + (off - from), n);
	if (dst != buf)
		rfs_cache_buf_free(dst);
	if (rc == -EINVAL || rc == -ENOMEM)
		return rc;
	/* a header whose bytes are gone (evicted meanwhile, lost in a
	 * crash) or wrong goes too: the caller fetches the block, and the
	 * writer keeps a stored header over a new one. A block file that
	 * cannot be opened now (-EIO: out of descriptors, say) is kept. */
	if (had_header && (rc == -ENOENT || rc == -EBADMSG))
		rfs_cache_drop_block(c, id, idx);
	if (rc == -EBADMSG)
		rfs_cache_count_corrupt(c);
	if (rc == 0 && !peek)
		touch(c, id);
	return rc;
}

int rfs_cache_get_part(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t idx, size_t blen, size_t off, void *buf,
		       size_t n)
{
	return get_part(c, id, idx, blen, off, buf, n, false);
}

int rfs_cache_get(struct rfs_cache *c, const struct rfs_cache_id *id,
		  uint64_t idx, void *buf, size_t len)
{
	return rfs_cache_get_part(c, id, idx, len, 0, buf, len);
}

int rfs_cache_peek(struct rfs_cache *c, const struct rfs_cache_id *id,
		   uint64_t idx, void *buf, size_t len)
{
	return get_part(c, id, idx, len, 0, buf, len, true);
}

bool rfs_cache_has(struct rfs_cache *c, const struct rfs_cache_id *id,
		   uint64_t idx)
{
	unsigned char k[BLK_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v;
	bool found = false;
	MDB_txn *txn;

	/* the queue first, for the same reason as in rfs_cache_get */
	pthread_mutex_lock(&c->lock);
	for (struct op *o = c->head; o && !found; o = o->next)
		found = o->kind == OP_PUT && o->idx == idx &&
			!memcmp(o->id.b, id->b, RFS_CACHE_ID_LEN);
	pthread_mutex_unlock(&c->lock);
	blk_key(k, id, idx);
	if (!found && mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn) == 0) {
		found = mdb_get(txn, c->blk, &key, &v) == 0;
		mdb_txn_abort(txn);
	}
	return found;
}

int rfs_cache_file_state(struct rfs_cache *c, const struct rfs_cache_id *id,
			 uint64_t *nblocks, bool *pinned)
{
	struct file_rec f;
	int rc = read_file_rec(c, id, &f);

	*nblocks = 0;
	*pinned = false;
	if (rc == 0) {
		*nblocks = f.nblocks;
		*pinned = f.flags & FILE_PINNED;
	} else if (rc != -ENOENT && rc != -EBADMSG) {
		return rc;
	}
	/* blocks still queued count too: they are readable already */
	pthread_mutex_lock(&c->lock);
	for (struct op *o = c->head; o; o = o->next)
		*nblocks += o->kind == OP_PUT &&
			    !memcmp(o->id.b, id->b, RFS_CACHE_ID_LEN);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

void rfs_cache_rec_strings(const void *rec, size_t len, char *did,
			   size_t didlen, char *md5, size_t md5len)
{
	const char *p = (const char *)rec + sizeof(struct file_rec);
	size_t left = len - sizeof(struct file_rec);
	size_t dl = strnlen(p, left);

	snprintf(did, didlen, "%.*s", (int)dl, p);
	md5[0] = '\0';
	if (dl + 1 < left)
		snprintf(md5, md5len, "%.*s",
			 (int)strnlen(p + dl + 1, left - dl - 1), p + dl + 1);
}

int rfs_cache_file_info(struct rfs_cache *c, const struct rfs_cache_id *id,
			struct rfs_cache_info *out)
{
	MDB_val key = { RFS_CACHE_ID_LEN, (void *)id->b }, v;
	struct file_rec f;
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rfs_errno_from_mdb(rc);
	rc = mdb_get(txn, c->files, &key, &v);
	if (rc == 0 && v.mv_size >= sizeof(f)) {
		memcpy(&f, v.mv_data, sizeof(f));
		out->size = f.size;
		out->nblocks = f.nblocks;
		out->pinned = f.flags & FILE_PINNED;
		out->verified = f.flags & FILE_VERIFIED;
		out->whole = f.nblocks ==
			     (f.size + c->block_size - 1) / c->block_size;
		memcpy(out->adler32, f.adler32, sizeof(out->adler32));
		out->adler32[sizeof(out->adler32) - 1] = '\0';
		rfs_cache_rec_strings(v.mv_data, v.mv_size, out->did,
				      sizeof(out->did), out->md5,
				      sizeof(out->md5));
	} else if (rc == 0) {
		rc = MDB_CORRUPTED;
	}
	mdb_txn_abort(txn);
	return rc ? rfs_errno_from_mdb(rc) : 0;
}

int rfs_cache_foreach(struct rfs_cache *c,
		      int (*fn)(void *arg, const struct rfs_cache_id *id),
		      void *arg)
{
	struct rfs_cache_id *ids = NULL, *nids;
	size_t n = 0, alloc = 0;
	MDB_cursor *cur;
	MDB_txn *txn;
	MDB_val k, v;
	int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);

	if (rc)
		return rfs_errno_from_mdb(rc);
	rc = mdb_cursor_open(txn, c->files, &cur);
	/* the identities first: @fn reads the disk, and a reader never
	 * holds a snapshot across disk I/O */
	for (int op = MDB_FIRST; !rc; op = MDB_NEXT) {
		rc = mdb_cursor_get(cur, &k, &v, op);
		if (rc || k.mv_size != RFS_CACHE_ID_LEN)
			continue;
		if (n == alloc) {
			alloc = alloc ? 2 * alloc : 1024;
			nids = realloc(ids, alloc * sizeof(*ids));
			if (!nids) {
				rc = ENOMEM;
				break;
			}
			ids = nids;
		}
		memcpy(ids[n++].b, k.mv_data, RFS_CACHE_ID_LEN);
	}
	if (cur && rc != EINVAL)
		mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	rc = rc == MDB_NOTFOUND ? 0 : rfs_errno_from_mdb(rc);
	for (size_t i = 0; !rc && i < n; i++)
		rc = fn(arg, &ids[i]);
	free(ids);
	return rc;
}

int rfs_cache_open_whole(struct rfs_cache *c, const struct rfs_cache_id *id,
			 uint64_t size)
{
	struct file_rec f;
	int rc = read_file_rec(c, id, &f);

	if (rc == -EBADMSG) /* a short record: as good as none */
		rc = -ENOENT;
	if (rc)
		return rc;
	/* a dropped block clears FILE_VERIFIED, an evicted file has no
	 * record: either way the daemon reads it, block by block */
	if (!(f.flags & FILE_VERIFIED) || f.size != size)
		return -ENOENT;
	rc = rfs_bf_open_sealed(c, id, size);
	if (rc == -ESTALE)
		rfs_log_limited(LOG_WARNING, "cache-seal",
				"cache: a block file changed since it was "
				"verified; its blocks are checked on every "
				"read instead");
	if (rc < 0)
		return rc;
	touch(c, id);
	return rc;
}

int rfs_cache_meta_get(struct rfs_cache *c, const char *key, void **val,
		       size_t *len, time_t *stored)
{
	MDB_val k = { strlen(key), (void *)key }, v;
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->env, NULL, MDB_RDONLY, &txn);

	if (rc)
		return rfs_errno_from_mdb(rc);
	rc = mdb_get(txn, c->meta, &k, &v);
	if (rc == 0 && v.mv_size >= 8) {
		*len = v.mv_size - 8;
		*stored = (time_t)be64_get(v.mv_data);
		*val = malloc(*len + 1);
		if (*val) {
			memcpy(*val, (unsigned char *)v.mv_data + 8, *len);
			((char *)*val)[*len] = '\0';
		}
		rc = *val ? 0 : -ENOMEM;
	} else {
		rc = rc ? rfs_errno_from_mdb(rc) : -EBADMSG;
	}
	mdb_txn_abort(txn);
	return rc;
}

void rfs_cache_stats(struct rfs_cache *c, struct rfs_cache_stats *out)
{
	const struct rfs_cache_stats *s = &c->st;

	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&c->lock);
	out->quota = s->quota;
	out->used = s->used;
	out->pinned = s->pinned;
	out->files = s->files;
	out->evicted = s->evicted;
	out->evicted_files = s->evicted_files;
	out->dropped = s->dropped;
	out->written = s->written;
	out->write_us = s->write_us;
	out->wait_us = s->wait_us;
	pthread_mutex_unlock(&c->lock);
	out->hits = __atomic_load_n(&c->st.hits, __ATOMIC_RELAXED);
	out->hit_bytes = __atomic_load_n(&c->st.hit_bytes, __ATOMIC_RELAXED);
	out->misses = __atomic_load_n(&c->st.misses, __ATOMIC_RELAXED);
	out->corrupt = __atomic_load_n(&c->st.corrupt, __ATOMIC_RELAXED);
	out->staged = rfs_cache_staged_bytes(c);
}

/* ---- requests handled by the writer ---- */

static int simple_op(struct rfs_cache *c, enum op_kind kind,
		     const struct rfs_cache_id *id,
		     const struct rfs_cache_file *f)
{
	struct op *o = new_op(kind, id);
	uint64_t seq;

	if (!o || (f && set_file(o, f))) {
		if (o)
			rfs_cache_free_op(o);
		return -ENOMEM;
	}
	seq = enqueue(c, o);
	wait_seq(c, seq);
	return seq ? 0 : -ESHUTDOWN;
}

int rfs_cache_pin(struct rfs_cache *c, const struct rfs_cache_id *id,
		  const struct rfs_cache_file *f, bool pin)
{
	return simple_op(c, pin ? OP_PIN : OP_UNPIN, id, f);
}

int rfs_cache_evict(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	return simple_op(c, OP_EVICT, id, NULL);
}

int rfs_cache_drop_file(struct rfs_cache *c, const struct rfs_cache_id *id)
{
	return simple_op(c, OP_DROP_FILE, id, NULL);
}

int rfs_cache_mark_verified(struct rfs_cache *c, const struct rfs_cache_id *id,
			    uint64_t size)
{
	struct op *o = new_op(OP_VERIFIED, id);

	if (!o)
		return -ENOMEM;
	o->size = size;
	return enqueue(c, o) ? 0 : -ESHUTDOWN;
}

int rfs_cache_meta_put(struct rfs_cache *c, const char *key, const void *val,
		       size_t len)
{
	size_t klen = strlen(key);
	struct op *o;

	/* a key LMDB refuses would make the writer drop a whole batch */
	if (klen == 0 || klen > (size_t)mdb_env_get_maxkeysize(c->env))
		return -EINVAL;
	o = new_op(OP_META, NULL);
	if (!o)
		return -ENOMEM;
	o->key = strdup(key);
	o->data = malloc(len + 8);
	if (!o->key || !o->data) {
		rfs_cache_free_op(o);
		return -ENOMEM;
	}
	be64_put(o->data, wall_now());
	memcpy((unsigned char *)o->data + 8, val, len);
	o->len = len + 8;
	return enqueue(c, o) ? 0 : -ESHUTDOWN;
}

void rfs_cache_close(struct rfs_cache *c)
{
	struct op *o;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = true;
	pthread_cond_signal(&c->wake);
	pthread_cond_signal(&c->stopping);
	pthread_mutex_unlock(&c->lock);
	if (c->writer_started)
		pthread_join(c->writer, NULL);
	if (c->syncer_started)
		pthread_join(c->syncer, NULL);
	while ((o = c->head)) {
		c->head = o->next;
		rfs_cache_free_op(o);
	}
	if (c->env) {
		rfs_cache_sync(c);
		mdb_env_close(c->env);
	}
	rfs_bf_writer_close(&c->w);
	rfs_bf_close(c);
	rfs_cache_stage_clear(c);
	pthread_cond_destroy(&c->st_loaded);
	pthread_mutex_destroy(&c->st_lock);
	pthread_mutex_destroy(&c->rd_lock);
	pthread_cond_destroy(&c->stopping);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
