/*
 * The persistent block and metadata store in a cache directory: an LMDB
 * environment for metadata and block headers, block bytes in plain files
 * beside it. Knows nothing of FUSE, catalogues or transports; the read path
 * in src/core/ joins it to the network.
 *
 * Blocks are keyed by a file identity (scope, name and adler32, so a DID
 * re-created with other bytes never meets stale blocks) and a block index.
 * Every 4 KiB of a block carries a CRC32C, checked on every read; a bad
 * block is dropped and reported as missing. Writes go through one writer
 * thread in batches, so readers never wait for a write transaction, and a
 * full map or disk evicts and carries on rather than failing reads.
 */
#ifndef RFS_CACHE_H
#define RFS_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>

#define RFS_CACHE_ID_LEN 16

struct rfs_cache;

struct rfs_cache_id {
	unsigned char b[RFS_CACHE_ID_LEN];
};

struct rfs_cache_conf {
	const char *dir; /* created if missing */
	uint64_t quota;	 /* bytes of block data kept */
	uint32_t block_size;
};

/* What a file is, stored with its blocks (for eviction and checks). */
struct rfs_cache_file {
	uint64_t size;
	char adler32[9]; /* "" if unknown */
	const char *did; /* "scope:name", for logs and status */
	const char *md5; /* the catalogue's, or NULL: kept for scrubs */
};

/* What the store knows of one file. */
struct rfs_cache_info {
	uint64_t size;
	uint64_t nblocks; /* stored (the writer's queue not counted) */
	bool whole;	  /* every block stored */
	bool pinned;
	bool verified; /* see rfs_cache_mark_verified */
	char did[512];
	char adler32[9];
	char md5[33];
};

struct rfs_cache_stats {
	uint64_t quota;
	uint64_t used;	 /* block bytes stored */
	uint64_t pinned; /* block bytes of pinned files */
	uint64_t files;
	/* hits, misses, hit_bytes, corrupt: atomic (counted on reads) */
	uint64_t hits;	    /* blocks readers found (rfs_cache_count_reads) */
	uint64_t misses;    /* blocks readers had to wait for */
	uint64_t hit_bytes; /* bytes the hits served */
	uint64_t corrupt;   /* blocks dropped for a bad checksum */
	uint64_t evicted;   /* bytes evicted */
	uint64_t evicted_files;
	uint64_t dropped; /* blocks that could not be stored */
	/* whether the cache's disk keeps up with the network: */
	uint64_t written;  /* block bytes the writer stored */
	uint64_t write_us; /* time it spent writing them */
	uint64_t wait_us;  /* time read-ahead waited for room in its queue */
	uint64_t staged;   /* stored bytes read ahead into memory, now */
};

/* The identity of a file's bytes. */
void rfs_cache_id_of(struct rfs_cache_id *id, const char *scope,
		     const char *name, const char *adler32);

/*
 * Before daemonizing, so that errors reach the terminal: creates @dir (and
 * its parents) and refuses network filesystems, where LMDB's locking does
 * not hold. Fills @err.
 */
int rfs_cache_check_dir(const char *dir, char *err, size_t errlen);

/* Opens (or creates) the store and starts its writer thread. */
int rfs_cache_open(struct rfs_cache **out, const struct rfs_cache_conf *conf);
/* Flushes what is queued, stops the writer, closes. */
void rfs_cache_close(struct rfs_cache *c);
uint32_t rfs_cache_block_size(const struct rfs_cache *c);

/*
 * Copies block @idx of @id into @buf, which must hold @len bytes, the
 * block's length. Returns 0, -ENOENT if absent, -EBADMSG if it failed its
 * checksum (it is dropped and counted; the caller fetches it again).
 * Counts no hit or miss: see rfs_cache_count_reads.
 */
int rfs_cache_get(struct rfs_cache *c, const struct rfs_cache_id *id,
		  uint64_t idx, void *buf, size_t len);

/*
 * Bytes [@off, @off + @n) of block @idx, whose whole length is @blen, into
 * @buf: only the pages holding them are read and checked (each 4 KiB
 * page has its own CRC32C). Returns as rfs_cache_get.
 */
int rfs_cache_get_part(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t idx, size_t blen, size_t off, void *buf,
		       size_t n);

/*
 * Queues a copy of block @idx for storage; returns at once. -ENOSPC when
 * the queue is full (the block is simply not cached). @f describes the
 * file (borrowed for the call).
 */
int rfs_cache_put(struct rfs_cache *c, const struct rfs_cache_id *id,
		  const struct rfs_cache_file *f, uint64_t idx, const void *buf,
		  size_t len);

/*
 * A buffer for a block of @len bytes that the cache can hand to the disk
 * as it is (page-aligned, padded with zeros to a whole page). Only
 * rfs_cache_buf_free frees it.
 */
void *rfs_cache_buf_alloc(size_t len);
void rfs_cache_buf_free(void *buf);

/*
 * As rfs_cache_put, but takes @buf, from rfs_cache_buf_alloc, instead of
 * copying it: it goes to the disk as it is. With the writer's
 * queue full, waits up to @wait_ms for room: read-ahead then keeps pace
 * with the disk instead of fetching blocks the cache cannot keep. On 0
 * the cache owns @buf; on an error the caller still does.
 */
int rfs_cache_put_take(struct rfs_cache *c, const struct rfs_cache_id *id,
		       const struct rfs_cache_file *f, uint64_t idx, void *buf,
		       size_t len, int wait_ms);

/*
 * Reads stored blocks @idx..@idx+@n-1 of @id (a file of @size bytes) from
 * the disk into memory, checked, for a sequential reader about to want
 * them; rfs_cache_get then copies them from there. Blocking: for the
 * prefetcher's workers. Stops at a block not stored or staged already,
 * and at what fits in the memory for staging (32 MiB for all files).
 * Returns how many blocks failed their checksum (dropped, counted; the
 * first one's index in *@bad_idx), for the caller to say which file.
 */
size_t rfs_cache_stage(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t idx, size_t n, uint64_t size,
		       uint64_t *bad_idx);

/*
 * As rfs_cache_get, for a whole-file check: counts no hit or miss, and
 * leaves a block staged for a reader to that reader.
 */
int rfs_cache_peek(struct rfs_cache *c, const struct rfs_cache_id *id,
		   uint64_t idx, void *buf, size_t len);

/* Whether block @idx of @id is stored or queued (no copy, no check). */
bool rfs_cache_has(struct rfs_cache *c, const struct rfs_cache_id *id,
		   uint64_t idx);

/* Waits until everything queued so far is committed (tests, ctl). */
void rfs_cache_flush(struct rfs_cache *c);

/*
 * How many blocks of @id are stored or queued (a block fetched twice may
 * briefly count twice: callers clamp), and whether it is pinned.
 */
int rfs_cache_file_state(struct rfs_cache *c, const struct rfs_cache_id *id,
			 uint64_t *nblocks, bool *pinned);

/* @id's file record: 0, or -ENOENT when the store has none. */
int rfs_cache_file_info(struct rfs_cache *c, const struct rfs_cache_id *id,
			struct rfs_cache_info *out);

/*
 * Calls @fn for every file the store has a record of (a snapshot of their
 * identities taken first); stops at the first non-zero return, which it
 * returns.
 */
int rfs_cache_foreach(struct rfs_cache *c,
		      int (*fn)(void *arg, const struct rfs_cache_id *id),
		      void *arg);

/*
 * The read path found the whole of @id, a file of @size bytes, matching
 * every checksum the catalogue has (the cache checks blocks, never whole
 * files: that needs the md5, which only a read in file order can sum).
 * Queued: once every block is stored, the file is marked and sealed, and
 * may be handed out whole. A dropped block undoes it.
 */
int rfs_cache_mark_verified(struct rfs_cache *c, const struct rfs_cache_id *id,
			    uint64_t size);

/*
 * A read-only fd of the block file of @id, a file of @size bytes, for the
 * kernel to read from directly: only when every block is stored, the
 * read path found the whole matching the catalogue's checksums
 * (rfs_cache_mark_verified) and the file is unchanged since (its seal:
 * see blockfile.c). Those reads skip the per-page CRC checks; the bytes
 * were checked when stored. -ENOENT when the file is not whole or not
 * verified, -ESTALE when it changed.
 */
int rfs_cache_open_whole(struct rfs_cache *c, const struct rfs_cache_id *id,
			 uint64_t size);
/* Pinned files are never evicted; pins survive restarts. */
int rfs_cache_pin(struct rfs_cache *c, const struct rfs_cache_id *id,
		  const struct rfs_cache_file *f, bool pin);
/* Drops block @idx of @id (queued): it is fetched again. */
void rfs_cache_drop_block(struct rfs_cache *c, const struct rfs_cache_id *id,
			  uint64_t idx);
/* Drops every block of @id. */
int rfs_cache_evict(struct rfs_cache *c, const struct rfs_cache_id *id);
/* As rfs_cache_evict, but the file's record stays, and a pin with it:
 * its bytes were found wrong and are fetched again. */
int rfs_cache_drop_file(struct rfs_cache *c, const struct rfs_cache_id *id);

/*
 * Small metadata records (catalogue answers) under a string key, with the
 * wall-clock time they were stored. get returns a malloc'ed copy.
 */
int rfs_cache_meta_put(struct rfs_cache *c, const char *key, const void *val,
		       size_t len);
int rfs_cache_meta_get(struct rfs_cache *c, const char *key, void **val,
		       size_t *len, time_t *stored);

void rfs_cache_stats(struct rfs_cache *c, struct rfs_cache_stats *out);

/*
 * Counts what one read met: @hits blocks found in the store (@hit_bytes
 * bytes served from them) and @misses blocks it had to wait for. Lookups
 * count nothing themselves: a reader may look a block up several times
 * (a read asked first without waiting, then again; a look before its
 * fetch), and the hit ratio is what readers saw, once each.
 */
void rfs_cache_count_reads(struct rfs_cache *c, uint64_t hits,
			   uint64_t hit_bytes, uint64_t misses);

/* CRC32C (Castagnoli), hardware-accelerated where the CPU has it. */
uint32_t rfs_crc32c(uint32_t crc, const void *buf, size_t len);
/* Adler-32 as Rucio computes it (zlib's definition). */
uint32_t rfs_adler32(uint32_t adler, const void *buf, size_t len);
/* The adler32 of two pieces end to end, from theirs and the second's
 * length: a file's, from its blocks'. */
uint32_t rfs_adler32_combine(uint32_t a, uint32_t b, uint64_t len_b);

#endif
