/* Internals shared by cache.c (the API, readers) and writer.c. */
#ifndef RFS_CACHE_INT_H
#define RFS_CACHE_INT_H

#include <errno.h>
#include <pthread.h>
#include <sys/uio.h>
#include <string.h>
#include <time.h>

#include <lmdb.h>

#include "cache/cache.h"

/*
 * A block's header in LMDB: length, adler32, then a CRC32C for each
 * CRC_PAGE bytes (all host order), so that a read of a few pages checks
 * only those; its bytes are in its file's block file (blockfile.c).
 */
#define HDR_FIXED 8
#define CRC_PAGE 4096u
/* what check_layout finds in a cache written by another layout */
#define LAYOUT 4
#define BLK_KEY_LEN (RFS_CACHE_ID_LEN + 8)
#define LRU_KEY_LEN (8 + RFS_CACHE_ID_LEN)
#define QUEUE_MAX_BYTES (32u << 20)
#define BATCH_MAX 256
#define SYNC_SECONDS 5
/* evict down to LOW once usage passes HIGH (per mille of the quota) */
#define HIGH_WATER 950
#define LOW_WATER 850
#define TOUCH_SLOTS 1024
/* files whose blocks the syncer flushes by name; past that, syncfs */
#define SYNC_IDS 64

enum file_flags {
	FILE_PINNED = 1 << 0,
	/* set by versions that checked the adler32 alone: not trusted, as
	 * a change that keeps the adler32 passes that check */
	FILE_ADLER_ONLY = 1 << 1,
	/* the whole matched every checksum the catalogue has (adler32 and
	 * md5), as the read path checked it: sealed, may be read whole */
	FILE_VERIFIED = 1 << 2,
};

struct file_rec {
	uint64_t size;
	uint64_t atime;
	uint64_t bytes; /* block bytes stored */
	uint32_t nblocks;
	uint32_t flags;
	char adler32[9];
	char pad[7];
	/* followed by "scope:name", NUL-terminated, then the catalogue's
	 * md5 (32 hex digits, NUL-terminated) when it has one */
};

enum op_kind {
	OP_PUT,
	OP_DROP, /* one block, found corrupt */
	OP_PIN,
	OP_UNPIN,
	OP_EVICT,
	OP_DROP_FILE, /* every block, the record (and its pin) kept */
	OP_META,
	OP_VERIFIED, /* the read path checked the whole file */
	OP_FLUSH,
};

struct op {
	enum op_kind kind;
	struct rfs_cache_id id;
	uint64_t idx;
	uint64_t size; /* the file's */
	char adler32[9];
	char md5[33];
	char *did;
	char *key; /* OP_META */
	void *data;
	size_t len;
	uint64_t seq;
	struct op *next;
};

struct touch {
	struct rfs_cache_id id;
	uint64_t atime;
	bool dirty;
};

/* The writer thread's open block file. */
struct rfs_bf_writer {
	int fd;
	struct rfs_cache_id id;
};

/* A block file kept open for readers: a read costs no open(). */
struct rfs_bf_reader {
	struct rfs_cache_id id;
	int fd; /* -1: free */
	unsigned refs;
	bool stale; /* unlinked: closed by its last user */
	uint64_t used;
	bool direct; /* opened with O_DIRECT */
};

#define READER_SLOTS 16
/* Blocks in one staged run (stage.c): one read. */
#define RFS_STAGE_RUN 64

struct rfs_staged;

struct rfs_cache {
	MDB_env *env;
	MDB_dbi blk, files, lru, meta;
	int open_mdb_rc; /* LMDB's code for a failed step of opening */
	int dfd;	 /* the blocks/ directory */
	int lockfd;	 /* held for the daemon's life: one per directory */
	bool direct;	 /* block files are written with O_DIRECT */
	struct rfs_bf_writer w; /* the writer thread's alone */
	/* rd_lock guards the readers' open files; a leaf, held for no I/O
	 * but close() of an unused file */
	pthread_mutex_t rd_lock;
	struct rfs_bf_reader rd[READER_SLOTS];
	uint64_t rd_clock;
	/* files forgotten so far: a file opened across one is not kept */
	uint64_t rd_forgotten;
	/* st_lock guards the staged blocks (stage.c); a leaf, held for no
	 * I/O and no copy */
	pthread_mutex_t st_lock;
	pthread_cond_t st_loaded;
	struct rfs_staged *staged;
	size_t staged_bytes;
	uint32_t block_size;
	uint64_t quota;
	pthread_t writer;
	bool writer_started;
	pthread_t syncer;
	bool syncer_started;

	/* lock guards the queue, the counters and the touch table; it is
	 * never held during an LMDB write transaction */
	pthread_mutex_t lock;
	pthread_cond_t wake;	 /* the writer has work */
	pthread_cond_t done;	 /* a batch was committed */
	pthread_cond_t stopping; /* for the syncer's sleep */
	bool unsynced;		 /* committed since the syncer's last sync */
	/* block files written since then: synced before LMDB is */
	struct rfs_cache_id written[SYNC_IDS];
	size_t nwritten;
	bool written_overflow;
	struct op *head, *tail;
	size_t queued_bytes;
	uint64_t next_seq, committed_seq;
	bool stop;
	struct rfs_cache_stats st;
	struct touch touches[TOUCH_SLOTS];
};

/* The "scope:name" and md5 that follow a file record of @len bytes. */
void rfs_cache_rec_strings(const void *rec, size_t len, char *did,
			   size_t didlen, char *md5, size_t md5len);

/* blockfile.c: the block files, beside LMDB */
int rfs_bf_open(struct rfs_cache *c, const char *dir);
void rfs_bf_close(struct rfs_cache *c);
/* Writer only: block @idx of @id, before its header is committed; @data
 * from rfs_cache_buf_alloc (a direct write takes its padded page). */
int rfs_bf_write(struct rfs_cache *c, struct rfs_bf_writer *w,
		 const struct rfs_cache_id *id, uint64_t idx, const void *data,
		 size_t len);
void rfs_bf_writer_close(struct rfs_bf_writer *w);
/* Writer only: frees a dropped block's bytes, or a whole file's. */
void rfs_bf_punch(struct rfs_cache *c, const struct rfs_cache_id *id,
		  uint64_t idx, size_t len);
void rfs_bf_remove(struct rfs_cache *c, struct rfs_bf_writer *w,
		   const struct rfs_cache_id *id);
/* Writer only: seals a complete, verified file of @size bytes. */
void rfs_bf_seal(struct rfs_cache *c, const struct rfs_cache_id *id,
		 uint64_t size);
/* A read-only fd of @id's block file if its seal holds for @size bytes;
 * -ENOENT without a seal, -ESTALE when the file changed since. */
int rfs_bf_open_sealed(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t size);
/* @len bytes at @off of @id's block file: 0, or -ENOENT when they are
 * not all there. */
int rfs_bf_read(struct rfs_cache *c, const struct rfs_cache_id *id,
		uint64_t off, void *buf, size_t len);
/* The @n buffers of @iov from @off, through the page cache: 0, or
 * -ENOENT when fewer than @need bytes came. */
int rfs_bf_readv(struct rfs_cache *c, const struct rfs_cache_id *id,
		 uint64_t off, const struct iovec *iov, int n, size_t need);
/* cache.c, for stage.c */
int rfs_cache_get_crcs(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t idx, size_t len, size_t first, size_t n,
		       uint32_t *crcs);
bool rfs_cache_pages_ok(const char *p, size_t len, const uint32_t *crcs);
/* rfs_crc32c without the CPU's instruction, whatever the CPU: for tests. */
uint32_t rfs_crc32c_portable(uint32_t crc, const void *buf, size_t len);
/* A block failed its CRCs and was dropped. */
void rfs_cache_count_corrupt(struct rfs_cache *c);

/* stage.c: bytes [@off, @off + @n) of block @idx, if staged (waiting for
 * a staging read under way): 1; 0 when not staged; -EINVAL when staged
 * with a length other than @blen. A whole block is taken off. */
int rfs_cache_stage_get(struct rfs_cache *c, const struct rfs_cache_id *id,
			uint64_t idx, size_t blen, size_t off, void *buf,
			size_t n);
void rfs_cache_stage_clear(struct rfs_cache *c);
/* Drops the staged copies of block @idx of @id (of every block with
 * RFS_STAGE_ALL), those being loaded too: for the writer, once a
 * transaction that dropped them from the store has committed, so that
 * no reader is served a block the store no longer has. */
#define RFS_STAGE_ALL UINT64_MAX
void rfs_cache_stage_forget(struct rfs_cache *c, const struct rfs_cache_id *id,
			    uint64_t idx);
/* The bytes staged now, ready for a reader (for status). */
uint64_t rfs_cache_staged_bytes(struct rfs_cache *c);

/* Makes the files of @ids durable, or every file with @all. */
void rfs_bf_sync(struct rfs_cache *c, const struct rfs_cache_id *ids, size_t n,
		 bool all);
/* Removes the block files whose identity @known does not know. */
void rfs_bf_sweep(struct rfs_cache *c,
		  bool (*known)(struct rfs_cache *,
				const struct rfs_cache_id *));

/* The length of block @idx of a file of @size bytes. */
static inline size_t blk_len(const struct rfs_cache *c, uint64_t size,
			     uint64_t idx)
{
	uint64_t left = size - idx * c->block_size;

	return (size_t)(left < c->block_size ? left : c->block_size);
}

static inline size_t crc_pages(size_t len)
{
	return (len + CRC_PAGE - 1) / CRC_PAGE;
}

static inline size_t hdr_len(size_t len)
{
	return HDR_FIXED + 4 * crc_pages(len);
}

/* The length a block header @v records (0 if it is too short to say). */
static inline uint32_t hdr_block_len(const MDB_val *v)
{
	uint32_t len = 0;

	if (v->mv_size >= HDR_FIXED)
		memcpy(&len, v->mv_data, 4);
	return len;
}

/* Whether block header @v has the size the length it records implies. */
static inline bool hdr_well_formed(const MDB_val *v)
{
	return v->mv_size >= HDR_FIXED &&
	       v->mv_size == hdr_len(hdr_block_len(v));
}

/* Block header @v against a block of @len bytes: 0, -EINVAL (another
 * length recorded) or -EBADMSG (malformed). */
static inline int hdr_check(const MDB_val *v, size_t len)
{
	if (!hdr_well_formed(v))
		return -EBADMSG;
	return hdr_block_len(v) == len ? 0 : -EINVAL;
}

/* The CRC32C of page @i of the @len bytes at @p (the last may be short). */
static inline uint32_t page_crc(const void *p, size_t len, size_t i)
{
	size_t at = i * CRC_PAGE;
	size_t n = len - at < CRC_PAGE ? len - at : CRC_PAGE;

	return rfs_crc32c(0, (const char *)p + at, n);
}

static inline void be64_put(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

static inline uint64_t be64_get(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static inline void blk_key(unsigned char *k, const struct rfs_cache_id *id,
			   uint64_t idx)
{
	memcpy(k, id->b, RFS_CACHE_ID_LEN);
	be64_put(k + RFS_CACHE_ID_LEN, idx);
}

static inline void lru_key(unsigned char *k, uint64_t atime,
			   const struct rfs_cache_id *id)
{
	be64_put(k, atime);
	memcpy(k + 8, id->b, RFS_CACHE_ID_LEN);
}

static inline uint64_t wall_now(void)
{
	return (uint64_t)time(NULL);
}

/* Syncs every SYNC_SECONDS while something was committed. */
void *rfs_cache_syncer_main(void *arg);
/* Makes what was committed durable: block files first, then LMDB. */
void rfs_cache_sync(struct rfs_cache *c);
void *rfs_cache_writer_main(void *arg);
void rfs_cache_free_op(struct op *o);

#endif
