/*
 * The writer thread: the only code that opens LMDB write transactions.
 * It applies queued operations in batches (one commit per batch, so a
 * sequential read storing 1 MiB blocks costs a commit per 256 blocks at
 * most), writes blocks' bytes to their block files before their headers,
 * folds access times into the lru index, evicts past the high water
 * mark, and seals the files the read path found whole and matching the
 * catalogue's checksums. A syncer thread makes it durable every few
 * seconds.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_int.h"
#include "util/clock.h"
#include "util/errmap.h"
#include "util/log.h"
#include "util/banned.h"

/* blocks a transaction drops whose staged copies go with them */
#define GONE_MAX 64

/* Counter changes of one transaction, applied only once it commits. */
struct delta {
	int64_t used;
	int64_t pinned;
	int64_t files;
	uint64_t evicted;
	uint64_t evicted_files;
	uint64_t written;
	double write_s;
	struct gone {
		struct rfs_cache_id id;
		uint64_t idx; /* RFS_STAGE_ALL: the whole file */
	} gone[GONE_MAX];
	size_t ngone; /* past GONE_MAX: every staged block goes */
};

/* Block @idx of @id leaves the store if the transaction commits. */
static void note_gone(struct delta *d, const struct rfs_cache_id *id,
		      uint64_t idx)
{
	if (d->ngone < GONE_MAX)
		d->gone[d->ngone] = (struct gone){ *id, idx };
	d->ngone++;
}

/* every file a batch can seal, or write: one per op at most */
#define VERIFY_MAX BATCH_MAX

struct batch {
	struct op *first;
	size_t n;
	uint64_t last_seq;
	size_t bytes;
	struct touch touches[TOUCH_SLOTS];
	size_t ntouch;
	struct rfs_cache_id seal[VERIFY_MAX]; /* sealed once committed */
	uint64_t seal_size[VERIFY_MAX];
	size_t nseal;
	struct rfs_cache_id written[VERIFY_MAX]; /* block files written */
	size_t nwritten;
};

/* A file record copied out of LMDB, to be modified and put back. */
struct frec {
	struct file_rec r;
	char did[512];
	char md5[33]; /* "" if the catalogue has none */
	bool exists;
};

static int get_frec(struct rfs_cache *c, MDB_txn *txn,
		    const struct rfs_cache_id *id, struct frec *f)
{
	MDB_val k = { RFS_CACHE_ID_LEN, (void *)id->b }, v;
	int rc = mdb_get(txn, c->files, &k, &v);

	memset(f, 0, sizeof(*f));
	if (rc)
		return rc;
	if (v.mv_size < sizeof(f->r))
		return MDB_CORRUPTED;
	memcpy(&f->r, v.mv_data, sizeof(f->r));
	rfs_cache_rec_strings(v.mv_data, v.mv_size, f->did, sizeof(f->did),
			      f->md5, sizeof(f->md5));
	f->exists = true;
	return 0;
}

static int put_frec(struct rfs_cache *c, MDB_txn *txn,
		    const struct rfs_cache_id *id, const struct frec *f)
{
	size_t dl = strlen(f->did) + 1, ml = f->md5[0] ? strlen(f->md5) + 1 : 0;
	MDB_val k = { RFS_CACHE_ID_LEN, (void *)id->b };
	MDB_val v = { sizeof(f->r) + dl + ml, NULL };
	int rc = mdb_put(txn, c->files, &k, &v, MDB_RESERVE);

	if (rc)
		return rc;
	memcpy(v.mv_data, &f->r, sizeof(f->r));
	memcpy((char *)v.mv_data + sizeof(f->r), f->did, dl);
	memcpy((char *)v.mv_data + sizeof(f->r) + dl, f->md5, ml);
	return 0;
}

static int set_lru(struct rfs_cache *c, MDB_txn *txn,
		   const struct rfs_cache_id *id, uint64_t old, uint64_t now)
{
	unsigned char k[LRU_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v = { 0, "" };
	int rc;

	if (old) {
		lru_key(k, old, id);
		rc = mdb_del(txn, c->lru, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	lru_key(k, now, id);
	return mdb_put(txn, c->lru, &key, &v, 0);
}

/* The file record for @o, created from what the op says if missing. */
static int file_for(struct rfs_cache *c, MDB_txn *txn, const struct op *o,
		    struct frec *f, struct delta *d)
{
	int rc = get_frec(c, txn, &o->id, f);

	if (rc != MDB_NOTFOUND)
		return rc;
	f->r.size = o->size;
	f->r.atime = wall_now();
	snprintf(f->r.adler32, sizeof(f->r.adler32), "%s", o->adler32);
	snprintf(f->md5, sizeof(f->md5), "%s", o->md5);
	snprintf(f->did, sizeof(f->did), "%s", o->did ? o->did : "");
	d->files++;
	return set_lru(c, txn, &o->id, 0, f->r.atime);
}

/* The batch is sorted by file: a file written is noted once per run. */
static void note_written(struct batch *b, const struct rfs_cache_id *id)
{
	if (b->nwritten &&
	    !memcmp(b->written[b->nwritten - 1].b, id->b, RFS_CACHE_ID_LEN))
		return;
	if (b->nwritten < VERIFY_MAX)
		b->written[b->nwritten++] = *id;
}

static int apply_put(struct rfs_cache *c, MDB_txn *txn, struct op *o,
		     struct delta *d, struct batch *b)
{
	unsigned char k[BLK_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v;
	struct frec f;
	uint32_t crc, adler, len = (uint32_t)o->len;
	double t;
	int rc;

	blk_key(k, &o->id, o->idx);
	if (mdb_get(txn, c->blk, &key, &v) == 0)
		return 0; /* two readers fetched it: keep the first */
	rc = file_for(c, txn, o, &f, d);
	if (rc)
		return rc;
	/* bytes before header: a header never names bytes not written */
	t = rfs_mono_now();
	rc = rfs_bf_write(c, &c->w, &o->id, o->idx, o->data, o->len);
	if (rc)
		return -rc; /* LMDB's convention: a positive errno */
	d->write_s += rfs_mono_now() - t;
	d->written += o->len;
	note_written(b, &o->id);
	v.mv_size = hdr_len(o->len);
	rc = mdb_put(txn, c->blk, &key, &v, MDB_RESERVE);
	if (rc)
		return rc;
	adler = rfs_adler32(1, o->data, o->len);
	memcpy(v.mv_data, &len, 4);
	memcpy((char *)v.mv_data + 4, &adler, 4);
	for (size_t i = 0; i < crc_pages(o->len); i++) {
		crc = page_crc(o->data, o->len, i);
		memcpy((char *)v.mv_data + HDR_FIXED + 4 * i, &crc, 4);
	}
	f.r.bytes += o->len;
	f.r.nblocks++;
	d->used += (int64_t)o->len;
	if (f.r.flags & FILE_PINNED)
		d->pinned += (int64_t)o->len;
	/* a record from before the md5 was kept learns it */
	if (!f.md5[0])
		snprintf(f.md5, sizeof(f.md5), "%s", o->md5);
	return put_frec(c, txn, &o->id, &f);
}

static int apply_drop(struct rfs_cache *c, MDB_txn *txn, struct op *o,
		      struct delta *d)
{
	unsigned char k[BLK_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v;
	struct frec f;
	size_t len;
	int rc;

	blk_key(k, &o->id, o->idx);
	if (mdb_get(txn, c->blk, &key, &v))
		return 0;
	/* a malformed header says no length to take off */
	len = hdr_well_formed(&v) ? hdr_block_len(&v) : 0;
	rc = mdb_del(txn, c->blk, &key, NULL);
	if (rc)
		return rc;
	rfs_bf_punch(c, &o->id, o->idx, len);
	note_gone(d, &o->id, o->idx);
	if (get_frec(c, txn, &o->id, &f))
		return 0;
	f.r.bytes -= len < f.r.bytes ? len : f.r.bytes;
	f.r.nblocks -= f.r.nblocks ? 1 : 0;
	f.r.flags &= ~(FILE_VERIFIED | FILE_ADLER_ONLY);
	d->used -= (int64_t)len;
	if (f.r.flags & FILE_PINNED)
		d->pinned -= (int64_t)len;
	return put_frec(c, txn, &o->id, &f);
}

/* Deletes every block header of one file, and its block file. */
static int del_blocks(struct rfs_cache *c, MDB_txn *txn,
		      const struct rfs_cache_id *id)
{
	unsigned char k[BLK_KEY_LEN];
	MDB_val key = { sizeof(k), k }, v;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, c->blk, &cur);

	if (rc)
		return rc;
	/* seek again after each delete: a cursor left past the last item
	 * by mdb_cursor_del() is not positioned (GET_CURRENT fails) */
	for (;;) {
		blk_key(k, id, 0);
		key.mv_size = sizeof(k);
		key.mv_data = k;
		rc = mdb_cursor_get(cur, &key, &v, MDB_SET_RANGE);
		if (rc || key.mv_size != BLK_KEY_LEN ||
		    memcmp(key.mv_data, id->b, RFS_CACHE_ID_LEN))
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc)
			break;
	}
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	/* now, not after the commit: a put of the same file later in this
	 * batch must start a new file. Should the commit fail, headers
	 * without bytes read as absent and are dropped (blockfile.c). */
	rfs_bf_remove(c, &c->w, id);
	return 0;
}

/*
 * Every block of one file deleted and counted off; its record, read
 * first, in @f. 1 when the file has no record (nothing to do).
 */
static int drop_blocks(struct rfs_cache *c, MDB_txn *txn,
		       const struct rfs_cache_id *id, struct delta *d,
		       struct frec *f)
{
	int rc = get_frec(c, txn, id, f);

	if (rc)
		return rc == MDB_NOTFOUND ? 1 : rc;
	rc = del_blocks(c, txn, id);
	if (rc)
		return rc;
	note_gone(d, id, RFS_STAGE_ALL);
	d->used -= (int64_t)f->r.bytes;
	if (f->r.flags & FILE_PINNED)
		d->pinned -= (int64_t)f->r.bytes;
	return 0;
}

/* Deletes every block, the record and the lru entry of one file. */
static int evict_file(struct rfs_cache *c, MDB_txn *txn,
		      const struct rfs_cache_id *id, struct delta *d)
{
	unsigned char lk[LRU_KEY_LEN];
	MDB_val fk = { RFS_CACHE_ID_LEN, (void *)id->b };
	MDB_val lkey = { sizeof(lk), lk };
	struct frec f;
	int rc = drop_blocks(c, txn, id, d, &f);

	if (rc)
		return rc == 1 ? 0 : rc;
	lru_key(lk, f.r.atime, id);
	mdb_del(txn, c->lru, &lkey, NULL);
	rc = mdb_del(txn, c->files, &fk, NULL);
	d->files--;
	d->evicted += f.r.bytes;
	d->evicted_files++;
	return rc;
}

/* Drops every block of one file but keeps its record: a pin stays. */
static int drop_file(struct rfs_cache *c, MDB_txn *txn,
		     const struct rfs_cache_id *id, struct delta *d)
{
	struct frec f;
	int rc = drop_blocks(c, txn, id, d, &f);

	if (rc)
		return rc == 1 ? 0 : rc;
	f.r.bytes = 0;
	f.r.nblocks = 0;
	f.r.flags &= ~(FILE_VERIFIED | FILE_ADLER_ONLY);
	return put_frec(c, txn, id, &f);
}

static int apply_pin(struct rfs_cache *c, MDB_txn *txn, struct op *o,
		     struct delta *d, bool pin)
{
	struct frec f;
	int rc =
		pin ? file_for(c, txn, o, &f, d) : get_frec(c, txn, &o->id, &f);

	if (!pin && rc == MDB_NOTFOUND)
		return 0;
	if (rc || pin == !!(f.r.flags & FILE_PINNED))
		return rc;
	if (pin)
		f.r.flags |= FILE_PINNED;
	else
		f.r.flags &= ~FILE_PINNED;
	d->pinned += pin ? (int64_t)f.r.bytes : -(int64_t)f.r.bytes;
	return put_frec(c, txn, &o->id, &f);
}

/*
 * The read path found the whole file matching the catalogue's checksums:
 * marked and, once committed, sealed. Only if every block is still stored
 * (one may have been dropped since it was checked) and the size agrees.
 */
static int apply_verified(struct rfs_cache *c, MDB_txn *txn, struct op *o,
			  struct batch *b)
{
	struct frec f;
	int rc = get_frec(c, txn, &o->id, &f);

	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	if (f.r.size != o->size || (f.r.flags & FILE_VERIFIED) ||
	    f.r.nblocks != (f.r.size + c->block_size - 1) / c->block_size)
		return 0;
	f.r.flags = (f.r.flags & ~FILE_ADLER_ONLY) | FILE_VERIFIED;
	if (b->nseal < VERIFY_MAX) {
		b->seal_size[b->nseal] = f.r.size;
		b->seal[b->nseal++] = o->id;
	}
	return put_frec(c, txn, &o->id, &f);
}

static int apply_op(struct rfs_cache *c, MDB_txn *txn, struct op *o,
		    struct delta *d, struct batch *b)
{
	MDB_val k, v;

	switch (o->kind) {
	case OP_PUT:
		return apply_put(c, txn, o, d, b);
	case OP_DROP:
		return apply_drop(c, txn, o, d);
	case OP_PIN:
	case OP_UNPIN:
		return apply_pin(c, txn, o, d, o->kind == OP_PIN);
	case OP_EVICT:
		return evict_file(c, txn, &o->id, d);
	case OP_DROP_FILE:
		return drop_file(c, txn, &o->id, d);
	case OP_VERIFIED:
		return apply_verified(c, txn, o, b);
	case OP_META:
		k.mv_size = strlen(o->key);
		k.mv_data = o->key;
		v.mv_size = o->len;
		v.mv_data = o->data;
		return mdb_put(txn, c->meta, &k, &v, 0);
	default:
		return 0;
	}
}

static int apply_touches(struct rfs_cache *c, MDB_txn *txn, struct batch *b)
{
	int rc = 0;

	for (size_t i = 0; i < b->ntouch && !rc; i++) {
		struct touch *t = &b->touches[i];
		struct frec f;

		if (get_frec(c, txn, &t->id, &f) || f.r.atime >= t->atime)
			continue;
		rc = set_lru(c, txn, &t->id, f.r.atime, t->atime);
		f.r.atime = t->atime;
		if (!rc)
			rc = put_frec(c, txn, &t->id, &f);
	}
	return rc;
}

static void apply_delta(struct rfs_cache *c, const struct delta *d)
{
	pthread_mutex_lock(&c->lock);
	c->st.used = (uint64_t)((int64_t)c->st.used + d->used);
	c->st.pinned = (uint64_t)((int64_t)c->st.pinned + d->pinned);
	c->st.files = (uint64_t)((int64_t)c->st.files + d->files);
	c->st.evicted += d->evicted;
	c->st.evicted_files += d->evicted_files;
	c->st.written += d->written;
	c->st.write_us += (uint64_t)(d->write_s * 1e6);
	pthread_mutex_unlock(&c->lock);
	/* after the commit, before the batch counts as committed: a
	 * block a stager claimed before this goes here, one claimed after
	 * finds no header; and an evict returns with no copy left for a
	 * reader, or a prefetch, to take as stored */
	if (d->ngone > GONE_MAX)
		rfs_cache_stage_clear(c);
	for (size_t i = 0; i < d->ngone && i < GONE_MAX; i++)
		rfs_cache_stage_forget(c, &d->gone[i].id, d->gone[i].idx);
}

static uint64_t used_now(struct rfs_cache *c)
{
	uint64_t u;

	pthread_mutex_lock(&c->lock);
	u = c->st.used;
	pthread_mutex_unlock(&c->lock);
	return u;
}

/* Up to @max unpinned files, least recently used first. */
static size_t lru_candidates(struct rfs_cache *c, MDB_txn *txn,
			     struct rfs_cache_id *ids, size_t max,
			     uint64_t want)
{
	MDB_cursor *cur;
	MDB_val k, v;
	uint64_t got = 0;
	size_t n = 0;

	if (mdb_cursor_open(txn, c->lru, &cur))
		return 0;
	for (int op = MDB_FIRST; n < max && got < want; op = MDB_NEXT) {
		struct frec f;

		if (mdb_cursor_get(cur, &k, &v, op) || k.mv_size != LRU_KEY_LEN)
			break;
		memcpy(ids[n].b, (unsigned char *)k.mv_data + 8,
		       RFS_CACHE_ID_LEN);
		if (get_frec(c, txn, &ids[n], &f) == 0 &&
		    !(f.r.flags & FILE_PINNED)) {
			got += f.r.bytes;
			n++;
		}
	}
	mdb_cursor_close(cur);
	return n;
}

/*
 * One line per eviction run (not per file or block), rate-limited: a
 * quota far smaller than the working set evicts every few batches.
 */
static void say_evicted(struct rfs_cache *c, const struct delta *d,
			uint64_t used_before)
{
	rfs_event_limited(LOG_INFO, "evict", "cache-evict",
			  "%llu files, %llu bytes evicted (the cache held "
			  "%llu of a %llu-byte quota)",
			  (unsigned long long)d->evicted_files,
			  (unsigned long long)d->evicted,
			  (unsigned long long)used_before,
			  (unsigned long long)c->quota);
}

/*
 * Evicts least recently used, unpinned files until at most @target bytes
 * remain. Runs in its own transaction, between batches: readers go on
 * reading (LMDB's MVCC), and the freed pages serve the next batch.
 */
static int evict_to(struct rfs_cache *c, uint64_t target)
{
	struct rfs_cache_id ids[256];
	struct delta d = { 0 };
	uint64_t used = used_now(c);
	MDB_txn *txn;
	size_t n;
	int rc;

	rc = mdb_txn_begin(c->env, NULL, 0, &txn);
	if (rc)
		return rc;
	while (!rc && (int64_t)used + d.used > (int64_t)target) {
		n = lru_candidates(c, txn, ids, 256, used + d.used - target);
		if (n == 0)
			break; /* everything left is pinned */
		for (size_t i = 0; i < n && !rc; i++)
			rc = evict_file(c, txn, &ids[i], &d);
	}
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	rc = mdb_txn_commit(txn);
	if (!rc)
		apply_delta(c, &d);
	if (!rc && d.evicted_files)
		say_evicted(c, &d, used);
	return rc;
}

static bool put_before(const struct op *a, const struct op *b)
{
	int c = memcmp(&a->id, &b->id, sizeof(a->id));

	return c < 0 || (c == 0 && a->idx < b->idx);
}

/*
 * The batch's ops in the order to apply them: runs of block puts sorted
 * by file and block (stably: a block put twice keeps its last value),
 * everything else where it was. Parallel read-ahead queues blocks out of
 * order; written in order, a block file is laid out contiguously (direct
 * writes allocate as they go) and a warm read takes it from disk in
 * requests of several MiB; the one-per-file sync list stays short.
 */
static void apply_order(const struct batch *b, struct op **ops)
{
	struct op *o = b->first;
	size_t start = 0;

	for (size_t i = 0; i < b->n; i++) {
		ops[i] = o;
		/* never read past the batch: enqueue() may be writing the
		 * last op's next pointer right now */
		if (i + 1 < b->n)
			o = o->next;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (ops[i]->kind != OP_PUT) {
			start = i + 1;
			continue;
		}
		for (size_t j = i; j > start && put_before(ops[j], ops[j - 1]);
		     j--) {
			struct op *t = ops[j];

			ops[j] = ops[j - 1];
			ops[j - 1] = t;
		}
	}
}

static int commit_batch(struct rfs_cache *c, struct batch *b, struct delta *d)
{
	struct op *ops[BATCH_MAX];
	MDB_txn *txn;
	int rc;

	memset(d, 0, sizeof(*d));
	b->nseal = 0;
	apply_order(b, ops);
	rc = mdb_txn_begin(c->env, NULL, 0, &txn);
	for (size_t i = 0; !rc && i < b->n; i++)
		rc = apply_op(c, txn, ops[i], d, b);
	if (!rc)
		rc = apply_touches(c, txn, b);
	if (rc) {
		mdb_txn_abort(txn);
		return rc;
	}
	return mdb_txn_commit(txn);
}

/*
 * A full map or disk is not an error to report upward: evict harder and
 * try once more; if it still does not fit, these blocks are just not
 * cached (the reads that fetched them were served already).
 */
static size_t batch_puts(const struct batch *b)
{
	const struct op *o = b->first;
	size_t n = 0;

	for (size_t i = 0; i < b->n; i++, o = i < b->n ? o->next : o)
		n += o->kind == OP_PUT;
	return n;
}

/* The filesystem is full (LMDB says EIO for a short write) or the map. */
static bool full(int rc)
{
	return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL || rc == ENOSPC ||
	       rc == EIO || rc == EDQUOT;
}

static void write_batch(struct rfs_cache *c, struct batch *b)
{
	struct delta d;
	int rc = commit_batch(c, b, &d);

	if (full(rc)) {
		/* the disk may be smaller than the quota: make room relative
		 * to what is used, at least this batch's size */
		uint64_t used = used_now(c), room = used / 4;

		if (room < b->bytes)
			room = b->bytes;
		evict_to(c, used > room ? used - room : 0);
		rc = commit_batch(c, b, &d);
	}
	if (rc) {
		rfs_log_limited(LOG_WARNING, "cache-write",
				"cache: cannot store %zu updates: %s; reads "
				"go on from the network",
				b->n, mdb_strerror(rc));
		pthread_mutex_lock(&c->lock);
		c->st.dropped += batch_puts(b);
		pthread_mutex_unlock(&c->lock);
		return;
	}
	apply_delta(c, &d);
	for (size_t i = 0; i < b->nseal; i++)
		rfs_bf_seal(c, &b->seal[i], b->seal_size[i]);
	if (used_now(c) > c->quota / 1000 * HIGH_WATER)
		evict_to(c, c->quota / 1000 * LOW_WATER);
}

/* Under c->lock: the next batch, left in the queue until committed so
 * that readers still find its blocks there. */
static void take_batch(struct rfs_cache *c, struct batch *b)
{
	struct op *o = c->head;

	b->first = o;
	b->n = 0;
	b->bytes = 0;
	for (; o && b->n < BATCH_MAX; o = o->next) {
		b->n++;
		b->bytes += o->len;
		b->last_seq = o->seq;
	}
	b->ntouch = 0;
	for (size_t i = 0; i < TOUCH_SLOTS; i++) {
		if (!c->touches[i].dirty)
			continue;
		b->touches[b->ntouch++] = c->touches[i];
		c->touches[i].dirty = false;
	}
}

/* Under c->lock: drops the committed batch from the queue. */
static void finish_batch(struct rfs_cache *c, struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		struct op *o = c->head;

		c->head = o->next;
		if (!c->head)
			c->tail = NULL;
		c->queued_bytes -= o->len;
		rfs_cache_free_op(o);
	}
	if (b->n)
		c->committed_seq = b->last_seq;
	pthread_cond_broadcast(&c->done);
}

static void wait_for_work(struct rfs_cache *c)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	while (!c->head && !c->stop)
		if (pthread_cond_timedwait(&c->wake, &c->lock, &until))
			break; /* once a second: access times, sync */
}

/* Under c->lock: the block files the batch wrote, for the syncer. */
static void note_for_sync(struct rfs_cache *c, const struct batch *b)
{
	for (size_t i = 0; i < b->nwritten; i++) {
		size_t j = 0;

		while (j < c->nwritten &&
		       memcmp(c->written[j].b, b->written[i].b,
			      RFS_CACHE_ID_LEN))
			j++;
		if (j < c->nwritten)
			continue;
		if (c->nwritten < SYNC_IDS)
			c->written[c->nwritten++] = b->written[i];
		else
			c->written_overflow = true;
	}
}

void rfs_cache_sync(struct rfs_cache *c)
{
	struct rfs_cache_id ids[SYNC_IDS];
	size_t n;
	bool all;

	pthread_mutex_lock(&c->lock);
	n = c->nwritten;
	all = c->written_overflow;
	memcpy(ids, c->written, n * sizeof(ids[0]));
	c->nwritten = 0;
	c->written_overflow = false;
	pthread_mutex_unlock(&c->lock);
	/* bytes before the headers that name them */
	if (n || all)
		rfs_bf_sync(c, ids, n, all);
	mdb_env_sync(c->env, 1);
}

/*
 * The periodic sync runs here, not on the writer: a flush can take
 * seconds (when block bytes still lived in LMDB, a writer waiting for
 * one let its queue fill and stalled every reader behind it). Block
 * files are synced first, then LMDB, whose sync is a plain fdatasync of
 * its file, safe beside a write transaction.
 */
void *rfs_cache_syncer_main(void *arg)
{
	struct rfs_cache *c = arg;
	struct timespec until;

	pthread_setname_np(pthread_self(), "rfs-sync");
	pthread_mutex_lock(&c->lock);
	while (!c->stop) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += SYNC_SECONDS;
		while (!c->stop && pthread_cond_timedwait(
					   &c->stopping, &c->lock, &until) == 0)
			;
		if (c->stop || !c->unsynced)
			continue;
		c->unsynced = false;
		pthread_mutex_unlock(&c->lock);
		rfs_cache_sync(c);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

void *rfs_cache_writer_main(void *arg)
{
	struct rfs_cache *c = arg;
	struct batch *b = calloc(1, sizeof(*b));

	pthread_setname_np(pthread_self(), "rfs-writer");
	if (!b)
		return NULL;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		bool wrote;

		wait_for_work(c);
		if (c->stop && !c->head)
			break;
		take_batch(c, b);
		pthread_mutex_unlock(&c->lock);
		wrote = b->n || b->ntouch;
		b->nwritten = 0;
		if (wrote)
			write_batch(c, b);
		/* an idle writer holds no file open (an evicted file's
		 * space comes back at once) */
		rfs_bf_writer_close(&c->w);
		pthread_mutex_lock(&c->lock);
		note_for_sync(c, b);
		c->unsynced |= wrote;
		finish_batch(c, b);
	}
	pthread_mutex_unlock(&c->lock);
	free(b);
	return NULL;
}
