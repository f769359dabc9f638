/*
 * Unit tests for cache/: the checksums, file identities and the LMDB block
 * store. Every store lives in its own scratch directory under the build
 * tree; the full-disk check mounts a small tmpfs there when it can (root)
 * and is skipped otherwise. Checks that could crash or hang the store run
 * in a child process, so the parent survives to report them.
 *
 * Access times are kept per second, so the LRU and pin checks sleep a
 * few seconds in all: the whole program takes about ten seconds.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include <lmdb.h>

#include "cache/cache.h"
#include "cache/cache_int.h"
#include "unit.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

static char *scratch;

/* ---- helpers ---- */

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/*
 * Deterministic bytes for block @idx of file @file: every block differs
 * from every other, so a block served under the wrong key, or a stale or
 * shifted copy, reads back wrong.
 */
static void fill(void *buf, size_t len, uint32_t file, uint64_t idx)
{
	unsigned char *p = buf;
	uint64_t x = ((uint64_t)file << 32 ^ idx) * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

static size_t block_len(uint64_t size, uint32_t bs, uint64_t idx)
{
	uint64_t left = size - idx * bs;

	return left < bs ? (size_t)left : bs;
}

static uint64_t nblocks_of(uint64_t size, uint32_t bs)
{
	return (size + bs - 1) / bs;
}

/* The identity of test file @n; the catalogue checksum is left out. */
static void file_id(struct rfs_cache_id *id, uint32_t n)
{
	char name[64];

	snprintf(name, sizeof(name), "file.%u", (unsigned)n);
	rfs_cache_id_of(id, "user.unit", name, "");
}

static struct rfs_cache *open_at(const char *dir, uint64_t quota, uint32_t bs)
{
	struct rfs_cache_conf conf = { dir, quota, bs };
	struct rfs_cache *c = NULL;
	int rc = rfs_cache_open(&c, &conf);

	CHECK_INT(rc, 0);
	return rc ? NULL : c;
}

/* Queues every block of file @n; returns how many puts were refused. */
static int put_file(struct rfs_cache *c, const struct rfs_cache_id *id,
		    const struct rfs_cache_file *f, uint32_t n, uint32_t bs)
{
	unsigned char *buf = malloc(bs);
	int refused = 0;

	if (!buf)
		return -1;
	for (uint64_t i = 0; i < nblocks_of(f->size, bs); i++) {
		size_t len = block_len(f->size, bs, i);

		fill(buf, len, n, i);
		if (rfs_cache_put(c, id, f, i, buf, len))
			refused++;
	}
	free(buf);
	return refused;
}

/*
 * Reads block @idx of file @n and compares it with what fill() made.
 * Returns the get's error, or 0 for exact bytes, or 1 for wrong bytes.
 */
static int get_cmp(struct rfs_cache *c, const struct rfs_cache_id *id,
		   uint32_t n, uint64_t idx, size_t len)
{
	unsigned char *got = malloc(len + 1), *want = malloc(len + 1);
	int rc = -ENOMEM;

	if (got && want) {
		fill(want, len, n, idx);
		rc = rfs_cache_get(c, id, idx, got, len);
		if (rc == 0 && memcmp(got, want, len))
			rc = 1;
		/* counted as a reader counts it (lookups count nothing) */
		rfs_cache_count_reads(c, rc == 0, rc == 0 ? len : 0, rc != 0);
	}
	free(got);
	free(want);
	return rc;
}

/*
 * How many blocks of file @n read back exactly. A block may be absent;
 * wrong bytes or any other error fail a check here.
 */
static int count_file(struct rfs_cache *c, const struct rfs_cache_id *id,
		      uint32_t n, uint64_t size, uint32_t bs)
{
	int found = 0;

	for (uint64_t i = 0; i < nblocks_of(size, bs); i++) {
		int rc = get_cmp(c, id, n, i, block_len(size, bs, i));

		if (rc == 0)
			found++;
		else if (rc != -ENOENT)
			CHECK_INT(rc, 0);
	}
	return found;
}

/* Blocks stored for @id, from the file record (no access time update). */
static uint64_t stored_blocks(struct rfs_cache *c,
			      const struct rfs_cache_id *id, bool *pinned)
{
	uint64_t n = 0;
	bool p = false;

	CHECK_INT(rfs_cache_file_state(c, id, &n, &p), 0);
	if (pinned)
		*pinned = p;
	return n;
}

/*
 * Runs @fn in a child: a crash, a sanitizer abort or a hang (alarm) there
 * fails one check here instead of ending the program. The child's check
 * counts come back through a shared page.
 */
struct child_counts {
	int count;
	int failed;
};

static struct child_counts *child_counts;
static void (*child_fn)(void);

static void child_main(void)
{
	alarm(120);
	child_fn();
	child_counts->count = unit_count;
	child_counts->failed = unit_failed;
	fflush(stdout);
}

static void run_in_child(void (*fn)(void))
{
	bool ok;

	if (!child_counts) {
		fn();
		return;
	}
	child_counts->count = -1;
	child_fn = fn;
	ok = unit_in_child(child_main);
	if (child_counts->count >= 0) {
		unit_count = child_counts->count;
		unit_failed = child_counts->failed;
	}
	CHECK(ok);
}

/* ---- checksums ---- */

/* Bit at a time, straight from the definition: the reference. */
static uint32_t ref_crc32c(uint32_t crc, const unsigned char *p, size_t len)
{
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
	}
	return ~crc;
}

static uint32_t ref_adler32(uint32_t adler, const unsigned char *p, size_t len)
{
	uint64_t a = adler & 0xffff, b = adler >> 16;

	while (len--) {
		a = (a + *p++) % 65521;
		b = (b + a) % 65521;
	}
	return (uint32_t)(b << 16 | a);
}

#define FIRST_THREADS 16
#define FIRST_LEN (64 * 1024)

struct first_use {
	pthread_barrier_t *go;
	const unsigned char *buf;
	uint32_t crc;
};

static void *first_use_main(void *arg)
{
	struct first_use *u = arg;

	pthread_barrier_wait(u->go);
	u->crc = rfs_crc32c_portable(0, u->buf, FIRST_LEN);
	return NULL;
}

/*
 * The portable CRC's table is built at first use: threads that all come
 * at once must each get the right value, and (under ThreadSanitizer) none
 * may read the table while another writes it. Runs before anything else
 * uses that path.
 */
static void test_crc32c_first_use(void)
{
	struct first_use u[FIRST_THREADS];
	pthread_t th[FIRST_THREADS];
	unsigned char *buf = malloc(FIRST_LEN);
	pthread_barrier_t go;
	uint32_t want;
	int started = 0;

	if (!buf || pthread_barrier_init(&go, NULL, FIRST_THREADS)) {
		CHECK(!"first use: no buffer or barrier");
		free(buf);
		return;
	}
	fill(buf, FIRST_LEN, 5, 5);
	want = ref_crc32c(0, buf, FIRST_LEN);
	for (int i = 0; i < FIRST_THREADS; i++) {
		u[i] = (struct first_use){ &go, buf, 0 };
		started += pthread_create(&th[i], NULL, first_use_main,
					  &u[i]) == 0;
	}
	/* a thread that did not start would leave the others at the
	 * barrier: nothing to join then, the alarm ends the test */
	CHECK_INT(started, FIRST_THREADS);
	for (int i = 0; i < started; i++) {
		pthread_join(th[i], NULL);
		CHECK_U64(u[i].crc, want);
	}
	pthread_barrier_destroy(&go);
	free(buf);
}

static void test_crc32c(void)
{
	static const size_t lens[] = { 0,    1,	   3,	 7,    8,    9,
				       15,   16,   63,	 64,   65,   1000,
				       4095, 4096, 4097, 4119, 6000, 9990 };
	unsigned char v[32], *buf = malloc(10000), *big;
	uint32_t one, crc;
	size_t off;

	if (!buf)
		return;
	CHECK_U64(rfs_crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_U64(rfs_crc32c(0, "", 0), 0);
	/* RFC 3720, B.4 */
	memset(v, 0, sizeof(v));
	CHECK_U64(rfs_crc32c(0, v, 32), 0x8a9136aau);
	memset(v, 0xff, sizeof(v));
	CHECK_U64(rfs_crc32c(0, v, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		v[i] = (unsigned char)i;
	CHECK_U64(rfs_crc32c(0, v, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		v[i] = (unsigned char)(31 - i);
	CHECK_U64(rfs_crc32c(0, v, 32), 0x113fdb5cu);

	/*
	 * On a CPU with SSE4.2 rfs_crc32c uses the instruction, 8 bytes at a
	 * time and then bytewise: every alignment and every tail length
	 * must give what the bitwise definition gives.
	 */
	fill(buf, 10000, 1, 1);
	for (off = 0; off < 8; off++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			CHECK_U64(rfs_crc32c(0, buf + off, lens[i]),
				  ref_crc32c(0, buf + off, lens[i]));
	/* and the path of CPUs without it, on this one too */
	for (off = 0; off < 8; off++)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			CHECK_U64(rfs_crc32c_portable(7, buf + off, lens[i]),
				  ref_crc32c(7, buf + off, lens[i]));

	/* Long buffers run in three lanes joined by shifts: a block's worth
	 * and odd sizes around it match the bytewise definition, each twice
	 * (a thread keeps the last length's shift). */
	big = malloc((1 << 20) + 64);
	if (big) {
		static const size_t big_lens[] = { 1 << 20, (1 << 20) + 13,
						   (1 << 20) - 5, 777777,
						   12289 };

		fill(big, (1 << 20) + 64, 9, 3);
		for (size_t i = 0; i < 2 * sizeof(big_lens) / sizeof(*big_lens);
		     i++)
			CHECK_U64(rfs_crc32c(7, big + 3, big_lens[i / 2]),
				  ref_crc32c(7, big + 3, big_lens[i / 2]));
		free(big);
	}

	/* Continuing a CRC over pieces gives the one-shot value. */
	one = rfs_crc32c(0, buf, 100);
	for (size_t s = 0; s <= 100; s++) {
		crc = rfs_crc32c(rfs_crc32c(0, buf, s), buf + s, 100 - s);
		if (crc != one)
			CHECK_U64(crc, one);
	}
	CHECK(one == ref_crc32c(0, buf, 100));
	one = rfs_crc32c(0, buf, 10000);
	crc = 0;
	for (off = 0; off < 10000;) {
		size_t n = 1 + (off * 7919) % 1237;

		n = n < 10000 - off ? n : 10000 - off;
		crc = rfs_crc32c(crc, buf + off, n);
		off += n;
	}
	CHECK_U64(crc, one);
	CHECK_U64(one, ref_crc32c(0, buf, 10000));
	free(buf);
}

static void test_adler32(void)
{
	static const size_t lens[] = { 5551, 5552, 5553, 11104, 11105, 100000 };
	size_t big = 100000, off;
	unsigned char *buf = malloc(big);
	uint32_t one, a;

	if (!buf)
		return;
	CHECK_U64(rfs_adler32(1, "Wikipedia", 9), 0x11E60398u);
	CHECK_U64(rfs_adler32(1, "", 0), 1);
	CHECK_U64(rfs_adler32(1, "a", 1), 0x00620062u);
	CHECK_U64(rfs_adler32(1, "abc", 3), 0x024d0127u);
	CHECK_U64(rfs_adler32(1, "message digest", 14), 0x29750586u);

	/*
	 * All 0xff is the worst case for the deferred modulo: past 5552
	 * bytes between reductions the sums would overflow 32 bits.
	 */
	memset(buf, 0xff, big);
	CHECK_U64(rfs_adler32(1, buf, big), 0x149a302cu); /* zlib's value */
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		CHECK_U64(rfs_adler32(1, buf, lens[i]),
			  ref_adler32(1, buf, lens[i]));

	/* Pieces of every size, continued, give the one-shot value. */
	fill(buf, big, 2, 2);
	one = rfs_adler32(1, buf, big);
	CHECK_U64(one, ref_adler32(1, buf, big));
	a = 1;
	for (off = 0; off < big;) {
		size_t n = 1 + (off * 7919) % 9001;

		n = n < big - off ? n : big - off;
		a = rfs_adler32(a, buf + off, n);
		off += n;
	}
	CHECK_U64(a, one);
	memset(buf, 0xff, big);
	a = rfs_adler32(rfs_adler32(1, buf, 7000), buf + 7000, big - 7000);
	CHECK_U64(a, 0x149a302cu);
	/* Pieces summed apart and joined give the one-shot value, for
	 * splits at 0, at the end and around the modulus; all 0xff too. */
	for (int pass = 0; pass < 2; pass++) {
		static const size_t cuts[] = { 0,     1,     5552,  65520,
					       65521, 65522, 99999, 100000 };

		if (pass)
			fill(buf, big, 2, 2);
		one = rfs_adler32(1, buf, big);
		for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++)
			CHECK_U64(rfs_adler32_combine(
					  rfs_adler32(1, buf, cuts[k]),
					  rfs_adler32(1, buf + cuts[k],
						      big - cuts[k]),
					  big - cuts[k]),
				  one);
	}
	CHECK_U64(rfs_adler32_combine(rfs_adler32(1, "Wiki", 4),
				      rfs_adler32(1, "pedia", 5), 5),
		  0x11E60398u);
	free(buf);
}

/* ---- identities ---- */

static bool same_id(const struct rfs_cache_id *a, const struct rfs_cache_id *b)
{
	return !memcmp(a->b, b->b, RFS_CACHE_ID_LEN);
}

static void test_id_of(void)
{
	struct rfs_cache_id a, b, zero;

	memset(&zero, 0, sizeof(zero));
	rfs_cache_id_of(&a, "user.jdoe", "file.root", "0a1b2c3d");
	rfs_cache_id_of(&b, "user.jdoe", "file.root", "0a1b2c3d");
	CHECK(same_id(&a, &b));
	CHECK(!same_id(&a, &zero)); /* a failed digest leaves zeros */
	rfs_cache_id_of(&b, "user.jdo", "file.root", "0a1b2c3d");
	CHECK(!same_id(&a, &b));
	rfs_cache_id_of(&b, "user.jdoe", "file.rooT", "0a1b2c3d");
	CHECK(!same_id(&a, &b));
	/* the same name re-created with other bytes is another file */
	rfs_cache_id_of(&b, "user.jdoe", "file.root", "0a1b2c3e");
	CHECK(!same_id(&a, &b));
	rfs_cache_id_of(&b, "user.jdoe", "file.root", "");
	CHECK(!same_id(&a, &b));

	/* where one field ends and the next begins is part of the identity */
	rfs_cache_id_of(&a, "a:b", "c", "");
	rfs_cache_id_of(&b, "a", "b:c", "");
	CHECK(!same_id(&a, &b));
	rfs_cache_id_of(&a, "ab", "c", "");
	rfs_cache_id_of(&b, "a", "bc", "");
	CHECK(!same_id(&a, &b));
	rfs_cache_id_of(&a, "a", "bc", "");
	rfs_cache_id_of(&b, "a", "b", "c");
	CHECK(!same_id(&a, &b));
	rfs_cache_id_of(&a, "a", "b", "0a1b2c3d");
	rfs_cache_id_of(&b, "a", "b0a1b2c3d", "");
	CHECK(!same_id(&a, &b));
	/* NULL stands for an unknown checksum, as "" does */
	rfs_cache_id_of(&a, "a", "b", NULL);
	rfs_cache_id_of(&b, "a", "b", "");
	CHECK(same_id(&a, &b));
}

/* ---- the store ---- */

/* Three small files with a short last block, and five of 50 blocks. */
#define BASIC_BS 4096u
static const struct {
	uint32_t n;
	uint64_t size;
} basic_files[] = {
	{ 1, 4 * BASIC_BS - 1000 },
	{ 2, 2 * BASIC_BS },
	{ 3, 100 },
	{ 10, 50 * BASIC_BS },
	{ 11, 50 * BASIC_BS - 1 },
	{ 12, 49 * BASIC_BS + 1 },
	{ 13, 50 * BASIC_BS - 4000 },
	{ 14, 50 * BASIC_BS },
};
#define NBASIC (sizeof(basic_files) / sizeof(basic_files[0]))

static struct rfs_cache_stats basic_saved;

static void basic_put(struct rfs_cache *c, size_t i)
{
	struct rfs_cache_id id;
	struct rfs_cache_file f = { basic_files[i].size, "", "user.unit:x",
				    NULL };

	file_id(&id, basic_files[i].n);
	CHECK_INT(put_file(c, &id, &f, basic_files[i].n, BASIC_BS), 0);
}

static int basic_count(struct rfs_cache *c, size_t i)
{
	struct rfs_cache_id id;

	file_id(&id, basic_files[i].n);
	return count_file(c, &id, basic_files[i].n, basic_files[i].size,
			  BASIC_BS);
}

static void test_put_get(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_stats s;
	struct rfs_cache_id a, d;
	uint64_t used = 0, hit_bytes, hits, nblk;
	bool pinned = true;

	if (!c)
		return;
	CHECK_INT(rfs_cache_block_size(c), BASIC_BS);
	file_id(&a, 1);
	file_id(&d, 99);
	for (size_t i = 0; i < 3; i++)
		basic_put(c, i);

	/* no flush: a block still queued is served from the queue */
	CHECK_INT(get_cmp(c, &a, 1, 0, BASIC_BS), 0);
	CHECK_INT(get_cmp(c, &a, 1, 3, BASIC_BS - 1000), 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.hits, 2);
	CHECK_U64(s.hit_bytes, 2 * BASIC_BS - 1000);
	CHECK_U64(s.misses, 0);

	rfs_cache_flush(c);
	rfs_cache_stats(c, &s);
	for (size_t i = 0; i < 3; i++)
		used += basic_files[i].size;
	CHECK_U64(s.used, used);
	CHECK_U64(s.files, 3);
	/* every stored byte went through the writer's timed writes; no
	 * read-ahead asked for room */
	CHECK_U64(s.written, used);
	CHECK_U64(s.wait_us, 0);
	CHECK_INT(basic_count(c, 0), 4);
	CHECK_INT(basic_count(c, 1), 2);
	CHECK_INT(basic_count(c, 2), 1);
	hits = 2 + 7;
	hit_bytes = 2 * BASIC_BS - 1000 + used;

	CHECK_INT(get_cmp(c, &a, 1, 4, BASIC_BS), -ENOENT);
	CHECK_INT(get_cmp(c, &d, 99, 0, BASIC_BS), -ENOENT);
	CHECK_INT(rfs_cache_file_state(c, &a, &nblk, &pinned), 0);
	CHECK_U64(nblk, 4);
	CHECK(!pinned);
	CHECK_INT(rfs_cache_file_state(c, &d, &nblk, &pinned), 0);
	CHECK_U64(nblk, 0);
	CHECK(!pinned);

	rfs_cache_stats(c, &s);
	CHECK_U64(s.quota, 64 * MIB);
	CHECK_U64(s.used, used);
	CHECK_U64(s.pinned, 0);
	CHECK_U64(s.files, 3);
	CHECK_U64(s.hits, hits);
	CHECK_U64(s.misses, 2);
	CHECK_U64(s.hit_bytes, hit_bytes);
	CHECK_U64(s.corrupt, 0);
	CHECK_U64(s.evicted, 0);
	CHECK_U64(s.dropped, 0);

	/* many blocks of several files, queued together */
	for (size_t i = 3; i < NBASIC; i++)
		basic_put(c, i);
	rfs_cache_flush(c);
	for (size_t i = 3; i < NBASIC; i++) {
		int n = (int)nblocks_of(basic_files[i].size, BASIC_BS);
		struct rfs_cache_id id;

		file_id(&id, basic_files[i].n);
		CHECK_INT(basic_count(c, i), n);
		CHECK_U64(stored_blocks(c, &id, NULL), n);
		used += basic_files[i].size;
		hits += (uint64_t)n;
		hit_bytes += basic_files[i].size;
	}
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, used);
	CHECK_U64(s.files, NBASIC);
	CHECK_U64(s.hits, hits);
	CHECK_U64(s.misses, 2);
	CHECK_U64(s.hit_bytes, hit_bytes);
	CHECK_U64(s.dropped, 0);
	basic_saved = s;
	rfs_cache_close(c);
}

/*
 * Lookups count no hit and no miss: a reader may look one block up several
 * times in one read, and counts what it met once (rfs_cache_count_reads).
 */
static void test_lookups_count_nothing(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_file fa = { 2 * BASIC_BS, "", "user.unit:a", NULL };
	unsigned char *got = malloc(BASIC_BS);
	struct rfs_cache_stats s;
	struct rfs_cache_id a, b;

	if (!c || !got)
		goto out;
	file_id(&a, 1);
	file_id(&b, 2);
	CHECK_INT(put_file(c, &a, &fa, 1, BASIC_BS), 0);
	/* queued, then stored; a missing block twice, as a reader whose
	 * first look (without waiting) and second (waiting) both miss */
	CHECK_INT(rfs_cache_get(c, &a, 0, got, BASIC_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_get(c, &a, 0, got, BASIC_BS), 0);
	CHECK_INT(rfs_cache_get_part(c, &a, 1, BASIC_BS, 10, got, 100), 0);
	CHECK_INT(rfs_cache_peek(c, &a, 1, got, BASIC_BS), 0);
	CHECK_INT(rfs_cache_get(c, &b, 0, got, BASIC_BS), -ENOENT);
	CHECK_INT(rfs_cache_get(c, &b, 0, got, BASIC_BS), -ENOENT);
	CHECK(!rfs_cache_has(c, &b, 0));
	rfs_cache_stats(c, &s);
	CHECK_U64(s.hits, 0);
	CHECK_U64(s.misses, 0);
	CHECK_U64(s.hit_bytes, 0);

	rfs_cache_count_reads(c, 2, 5000, 1);
	rfs_cache_count_reads(c, 0, 0, 3);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.hits, 2);
	CHECK_U64(s.misses, 4);
	CHECK_U64(s.hit_bytes, 5000);
	CHECK_U64(s.corrupt, 0);
out:
	if (c)
		rfs_cache_close(c);
	free(got);
}

/* The store reopened: the same blocks, the same usage. */
static void test_persistence(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_stats s;
	void *val = NULL;
	size_t len = 0;
	time_t stored = 0;

	if (!c)
		return;
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, basic_saved.used);
	CHECK_U64(s.files, basic_saved.files);
	CHECK_U64(s.pinned, 0);
	for (size_t i = 0; i < NBASIC; i++)
		CHECK_INT(basic_count(c, i),
			  nblocks_of(basic_files[i].size, BASIC_BS));
	/* written by test_meta before the close */
	CHECK_INT(rfs_cache_meta_get(c, "did:user.unit:file.1", &val, &len,
				     &stored),
		  0);
	CHECK_MEM(val, len, "second", 6);
	free(val);
	rfs_cache_close(c);
}

static void test_meta(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	static const char bin[] = { 'x', '\0', 'y', '\xff' };
	void *val = NULL;
	size_t len = 0;
	time_t t0, t1, stored = 0;

	if (!c)
		return;
	t0 = time(NULL);
	CHECK_INT(rfs_cache_meta_put(c, "did:user.unit:file.1",
				     "{\"bytes\": 1}", 12),
		  0);
	CHECK_INT(rfs_cache_meta_put(c, "bin", bin, sizeof(bin)), 0);
	CHECK_INT(rfs_cache_meta_put(c, "empty", "", 0), 0);
	rfs_cache_flush(c);
	t1 = time(NULL);

	CHECK_INT(rfs_cache_meta_get(c, "did:user.unit:file.1", &val, &len,
				     &stored),
		  0);
	CHECK_MEM(val, len, "{\"bytes\": 1}", 12);
	CHECK(stored >= t0 && stored <= t1);
	free(val);
	val = NULL;
	CHECK_INT(rfs_cache_meta_get(c, "bin", &val, &len, &stored), 0);
	CHECK_MEM(val, len, bin, sizeof(bin));
	free(val);
	val = NULL;
	len = 99;
	CHECK_INT(rfs_cache_meta_get(c, "empty", &val, &len, &stored), 0);
	CHECK_U64(len, 0);
	free(val);
	val = NULL;
	CHECK_INT(rfs_cache_meta_get(c, "did:user.unit:nope", &val, &len,
				     &stored),
		  -ENOENT);
	/* a prefix of a stored key is another key */
	CHECK_INT(rfs_cache_meta_get(c, "did:user.unit:file.", &val, &len,
				     &stored),
		  -ENOENT);

	/* overwritten: the newer record wins, shorter than the older */
	CHECK_INT(rfs_cache_meta_put(c, "did:user.unit:file.1", "second", 6),
		  0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_meta_get(c, "did:user.unit:file.1", &val, &len,
				     &stored),
		  0);
	CHECK_MEM(val, len, "second", 6);
	free(val);
	rfs_cache_close(c);
}

/*
 * A caller asking with the wrong length gets an error, and nothing is
 * written past the buffer it gave.
 */
static void test_wrong_len(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_file f = { BASIC_BS, "", "user.unit:file.20", NULL };
	struct rfs_cache_id id;
	unsigned char buf[BASIC_BS + 64];

	if (!c)
		return;
	file_id(&id, 20);
	CHECK_INT(put_file(c, &id, &f, 20, BASIC_BS), 0);
	/* still queued, then committed */
	memset(buf, 0xa5, sizeof(buf));
	CHECK(rfs_cache_get(c, &id, 0, buf, BASIC_BS - 1) != 0);
	CHECK(buf[BASIC_BS - 1] == 0xa5);
	rfs_cache_flush(c);
	memset(buf, 0xa5, sizeof(buf));
	CHECK(rfs_cache_get(c, &id, 0, buf, BASIC_BS - 1) != 0);
	CHECK(buf[BASIC_BS - 1] == 0xa5);
	CHECK(rfs_cache_get(c, &id, 0, buf, BASIC_BS + 1) != 0);
	CHECK(buf[BASIC_BS] == 0xa5);
	rfs_cache_close(c);
}

/* put_take hands the buffer over: no copy, read back queued and stored */
static void test_put_take(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_file f = { 3 * BASIC_BS + 5, "", "user.unit:file.21",
				    NULL };
	struct rfs_cache_id id;

	if (!c)
		return;
	file_id(&id, 21);
	for (uint64_t i = 0; i < 4; i++) {
		size_t len = block_len(f.size, BASIC_BS, i);
		unsigned char *b = rfs_cache_buf_alloc(len);

		if (!b)
			break;
		CHECK((uintptr_t)b % 4096 == 0);
		fill(b, len, 21, i);
		/* on 0 the cache owns it (ASan would see a leak or a
		 * double free otherwise); on an error we still do */
		if (rfs_cache_put_take(c, &id, &f, i, b, len, 0))
			rfs_cache_buf_free(b);
		CHECK_INT(get_cmp(c, &id, 21, i, len), 0);
	}
	rfs_cache_flush(c);
	for (uint64_t i = 0; i < 4; i++)
		CHECK_INT(
			get_cmp(c, &id, 21, i, block_len(f.size, BASIC_BS, i)),
			0);
	CHECK(rfs_cache_has(c, &id, 3));
	CHECK(!rfs_cache_has(c, &id, 4));
	rfs_cache_close(c);
}

/* ---- corruption ---- */

#define CORRUPT_BS (16 * KIB)
#define MARKER "RFS-UNIT-CORRUPT-THIS-BLOCK-7f3a9c"

static void corrupt_block(void *buf, uint64_t idx)
{
	fill(buf, CORRUPT_BS, 40, idx);
	if (idx == 1)
		memcpy((char *)buf + 5000, MARKER, strlen(MARKER));
}

/* Flips the marker's bytes wherever they are in @path; returns how often. */
static int flip_marker(const char *path)
{
	int fd = open(path, O_RDWR), hits = 0;
	size_t mlen = strlen(MARKER);
	unsigned char *data;
	struct stat st;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || !(data = malloc((size_t)st.st_size))) {
		close(fd);
		return -1;
	}
	if (pread(fd, data, (size_t)st.st_size, 0) != st.st_size)
		st.st_size = 0;
	/* every copy, in case a freed page still holds an older one */
	for (unsigned char *p = data, *end = data + st.st_size;
	     (p = memmem(p, (size_t)(end - p), MARKER, mlen)); p += mlen) {
		for (size_t i = 8; i < 16; i++)
			p[i] ^= 0xff;
		if (pwrite(fd, p, mlen, p - data) == (ssize_t)mlen)
			hits++;
	}
	free(data);
	close(fd);
	return hits;
}

/* Where the cache keeps the bytes of @id: blocks/ab/abcd... */
static char *block_file(const char *dir, const struct rfs_cache_id *id)
{
	char hex[2 * RFS_CACHE_ID_LEN + 1], rel[3 * RFS_CACHE_ID_LEN];

	for (size_t i = 0; i < RFS_CACHE_ID_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", id->b[i]);
	snprintf(rel, sizeof(rel), "blocks/%.2s/%s", hex, hex);
	return path_in(dir, rel);
}

static void test_corruption(const char *dir)
{
	struct rfs_cache_file fk = { 3 * CORRUPT_BS, "", "user.unit:file.40",
				     NULL };
	struct rfs_cache_file fl = { 2 * CORRUPT_BS, "", "user.unit:file.41",
				     NULL };
	unsigned char *buf = malloc(CORRUPT_BS), *got = malloc(CORRUPT_BS);
	struct rfs_cache_id k, l;
	struct rfs_cache_stats s0, s;
	struct rfs_cache *c;
	char *mdb = path_in(dir, "data.mdb"), *blocks = NULL;

	if (!buf || !got || !mdb)
		goto out;
	file_id(&k, 40);
	blocks = block_file(dir, &k);
	if (!blocks)
		goto out;
	file_id(&l, 41);
	c = open_at(dir, 64 * MIB, CORRUPT_BS);
	if (!c)
		goto out;
	for (uint64_t i = 0; i < 3; i++) {
		corrupt_block(buf, i);
		CHECK_INT(rfs_cache_put(c, &k, &fk, i, buf, CORRUPT_BS), 0);
	}
	CHECK_INT(put_file(c, &l, &fl, 41, CORRUPT_BS), 0);
	rfs_cache_flush(c);
	rfs_cache_close(c);

	CHECK_INT(flip_marker(blocks), 1);
	/* the index holds headers only: the marker is in no page of it */
	CHECK_INT(flip_marker(mdb), 0);

	c = open_at(dir, 64 * MIB, CORRUPT_BS);
	if (!c)
		goto out;
	rfs_cache_stats(c, &s0);
	CHECK_U64(s0.used, 5 * CORRUPT_BS);
	CHECK_INT(rfs_cache_get(c, &k, 1, got, CORRUPT_BS), -EBADMSG);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.corrupt, 1);
	/* its reader counts the miss (rfs_cache_count_reads) */
	CHECK_U64(s.misses, 0);
	CHECK_U64(s.hits, 0);
	/* the bad block is dropped by the writer, not served again */
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_get(c, &k, 1, got, CORRUPT_BS), -ENOENT);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.corrupt, 1);
	CHECK_U64(s.used, 4 * CORRUPT_BS);
	CHECK_U64(s.files, 2);
	CHECK_U64(stored_blocks(c, &k, NULL), 2);
	for (uint64_t i = 0; i < 3; i += 2) {
		corrupt_block(buf, i);
		CHECK_INT(rfs_cache_get(c, &k, i, got, CORRUPT_BS), 0);
		CHECK_MEM(got, CORRUPT_BS, buf, CORRUPT_BS);
	}
	CHECK_INT(count_file(c, &l, 41, fl.size, CORRUPT_BS), 2);

	/* fetched again by the caller and stored: served again */
	corrupt_block(buf, 1);
	CHECK_INT(rfs_cache_put(c, &k, &fk, 1, buf, CORRUPT_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_get(c, &k, 1, got, CORRUPT_BS), 0);
	CHECK_MEM(got, CORRUPT_BS, buf, CORRUPT_BS);
	CHECK_U64(stored_blocks(c, &k, NULL), 3);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, 5 * CORRUPT_BS);
	CHECK_U64(s.corrupt, 1);
	rfs_cache_close(c);
out:
	free(blocks);
	free(mdb);
	free(buf);
	free(got);
}

/* ---- quota and LRU ---- */

/*
 * 24 files of one 1 MiB block into 8 MiB, four per second; files 0 and 1
 * are read every second. Eviction goes by access time, so at the end the
 * two read files are there and the untouched early ones are not.
 *
 * Eviction starts above 95% of the quota and stops below 85%, so up to
 * seven files stay, and depending on how the writer batched the last
 * puts, one file of the second-to-last second may be among them; none
 * older can be.
 */
/* Two files read between phases of new ones survive them; @staged: read
 * as a warm stream reads, from blocks staged in memory. */
static void lru_with(const char *dir, bool staged)
{
	const uint32_t bs = MIB, base = 100, nfiles = 24, per_phase = 4;
	struct rfs_cache *c = open_at(dir, 8 * MIB, bs);
	struct rfs_cache_stats s;
	struct rfs_cache_id id;
	int hot = 0, cold = 0, cold_old = 0, survivors = 0;
	uint64_t bad = 0;

	if (!c)
		return;
	for (uint32_t phase = 0; phase < nfiles / per_phase; phase++) {
		if (phase) {
			sleep(1);
			for (uint32_t h = 0; h < 2; h++) {
				file_id(&id, base + h);
				if (staged)
					CHECK_U64(rfs_cache_stage(c, &id, 0, 1,
								  bs, &bad),
						  0);
				CHECK_INT(get_cmp(c, &id, base + h, 0, bs), 0);
			}
		}
		for (uint32_t i = 0; i < per_phase; i++) {
			uint32_t n = base + phase * per_phase + i;
			struct rfs_cache_file f = { bs, "", "user.unit:lru",
						    NULL };

			file_id(&id, n);
			CHECK_INT(put_file(c, &id, &f, n, bs), 0);
		}
		rfs_cache_flush(c);
		rfs_cache_stats(c, &s);
		CHECK(s.used <= s.quota / 100 * 95);
	}

	for (uint32_t i = 0; i < nfiles; i++) {
		file_id(&id, base + i);
		if (stored_blocks(c, &id, NULL) == 0)
			continue;
		survivors++;
		if (i < 2)
			hot++;
		else if (i < nfiles - per_phase)
			cold++;
		if (i >= 2 && i < nfiles - 2 * per_phase)
			cold_old++;
		CHECK_INT(get_cmp(c, &id, base + i, 0, bs), 0);
	}
	rfs_cache_stats(c, &s);
	CHECK(s.used <= 8 * MIB);
	CHECK(s.evicted > 0);
	/* every byte stored is either still there or counted as evicted */
	CHECK_U64(s.used + s.evicted, (uint64_t)nfiles * bs);
	CHECK_U64(s.used, (uint64_t)survivors * bs);
	CHECK_U64(s.files, survivors);
	CHECK_U64(s.dropped, 0);
	CHECK_INT(hot, 2);
	CHECK(cold < hot);
	CHECK_INT(cold_old, 0);
	CHECK(survivors >= 6 && survivors <= 7);
	rfs_cache_close(c);
}

static void test_lru(const char *dir)
{
	lru_with(dir, false);
}

static void test_lru_staged(const char *dir)
{
	lru_with(dir, true);
}

/* ---- pins ---- */

#define PIN_BS (64 * KIB)

/* Files @from..@to-1, one block each, flushed every 8. */
static void pressure(struct rfs_cache *c, uint32_t from, uint32_t to)
{
	struct rfs_cache_file f = { PIN_BS, "", "user.unit:pressure", NULL };
	struct rfs_cache_id id;

	for (uint32_t n = from; n < to; n++) {
		file_id(&id, n);
		CHECK_INT(put_file(c, &id, &f, n, PIN_BS), 0);
		if (n % 8 == 7)
			rfs_cache_flush(c);
	}
	rfs_cache_flush(c);
}

static void test_pin(const char *dir)
{
	struct rfs_cache_file fp = { 4 * PIN_BS, "", "user.unit:file.200",
				     NULL };
	struct rfs_cache_file fq = { 2 * PIN_BS, "", "user.unit:file.201",
				     NULL };
	struct rfs_cache_file fr = { 32 * PIN_BS, "", "user.unit:file.202",
				     NULL };
	struct rfs_cache_stats s, saved;
	struct rfs_cache_id p, q, r;
	struct rfs_cache *c;
	bool pinned = false;

	file_id(&p, 200);
	file_id(&q, 201);
	file_id(&r, 202);
	c = open_at(dir, MIB, PIN_BS);
	if (!c)
		return;
	/* pinned before any block is stored: the blocks count as pinned */
	CHECK_INT(rfs_cache_pin(c, &p, &fp, true), 0);
	CHECK_U64(stored_blocks(c, &p, &pinned), 0);
	CHECK(pinned);
	CHECK_INT(put_file(c, &p, &fp, 200, PIN_BS), 0);
	rfs_cache_flush(c);
	CHECK_U64(stored_blocks(c, &p, &pinned), 4);
	CHECK(pinned);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 4 * PIN_BS);
	CHECK_U64(s.used, 4 * PIN_BS);
	CHECK_U64(s.files, 1);

	/* pinned after its blocks: they count from then on, until unpinned */
	CHECK_INT(put_file(c, &q, &fq, 201, PIN_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_pin(c, &q, &fq, true), 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 6 * PIN_BS);
	CHECK_INT(rfs_cache_pin(c, &q, &fq, true), 0); /* twice: no change */
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 6 * PIN_BS);
	CHECK_INT(rfs_cache_pin(c, &q, &fq, false), 0);
	CHECK_U64(stored_blocks(c, &q, &pinned), 2);
	CHECK(!pinned);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 4 * PIN_BS);

	/* 2.5 MiB through a 1 MiB cache */
	pressure(c, 210, 250);
	CHECK_INT(count_file(c, &p, 200, fp.size, PIN_BS), 4);
	rfs_cache_stats(c, &s);
	CHECK(s.used <= s.quota);
	CHECK(s.evicted > 0);
	CHECK_U64(s.pinned, 4 * PIN_BS);
	saved = s;
	rfs_cache_close(c);

	c = open_at(dir, MIB, PIN_BS);
	if (!c)
		return;
	CHECK_U64(stored_blocks(c, &p, &pinned), 4);
	CHECK(pinned);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 4 * PIN_BS);
	CHECK_U64(s.used, saved.used);
	CHECK_U64(s.files, saved.files);
	pressure(c, 250, 290);
	CHECK_INT(count_file(c, &p, 200, fp.size, PIN_BS), 4);

	/* unpinned, then older than everything that follows: evicted */
	CHECK_INT(rfs_cache_pin(c, &p, &fp, false), 0);
	CHECK_U64(stored_blocks(c, &p, &pinned), 4);
	CHECK(!pinned);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 0);
	sleep(1);
	pressure(c, 290, 330);
	CHECK_U64(stored_blocks(c, &p, NULL), 0);
	CHECK_INT(count_file(c, &p, 200, fp.size, PIN_BS), 0);

	/* pinned bytes above the quota stay; eviction gives up, not hangs */
	CHECK_INT(rfs_cache_pin(c, &r, &fr, true), 0);
	CHECK_INT(put_file(c, &r, &fr, 202, PIN_BS), 0);
	rfs_cache_flush(c);
	pressure(c, 330, 340);
	CHECK_INT(count_file(c, &r, 202, fr.size, PIN_BS), 32);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.pinned, 32 * PIN_BS);
	CHECK(s.used >= s.pinned);
	rfs_cache_close(c);
}

/* ---- evict ---- */

/*
 * Tiny blocks, so that each file's blocks span many LMDB leaf pages and
 * the eviction cursor has to cross page boundaries.
 */
static void test_evict(const char *dir)
{
	const uint32_t bs = 64, nblk = 600;
	struct rfs_cache_file f = { (uint64_t)nblk * bs, "", "user.unit:ev",
				    NULL };
	struct rfs_cache *c = open_at(dir, 64 * MIB, bs);
	struct rfs_cache_id id[3], none;
	struct rfs_cache_stats s;
	static const int order[3] = { 1, 0, 2 };

	if (!c)
		return;
	for (int i = 0; i < 3; i++) {
		file_id(&id[i], 300 + i);
		CHECK_INT(put_file(c, &id[i], &f, 300 + i, bs), 0);
	}
	rfs_cache_flush(c);
	file_id(&none, 399);
	CHECK_INT(rfs_cache_evict(c, &none), 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, 3 * f.size);
	CHECK_U64(s.evicted, 0);

	for (int step = 0; step < 3; step++) {
		int e = order[step];

		CHECK_INT(rfs_cache_evict(c, &id[e]), 0);
		CHECK_U64(stored_blocks(c, &id[e], NULL), 0);
		CHECK_INT(count_file(c, &id[e], 300 + e, f.size, bs), 0);
		for (int j = step + 1; j < 3; j++) {
			int o = order[j];

			CHECK_U64(stored_blocks(c, &id[o], NULL), nblk);
			CHECK_INT(count_file(c, &id[o], 300 + o, f.size, bs),
				  nblk);
		}
		rfs_cache_stats(c, &s);
		CHECK_U64(s.used, (2 - step) * f.size);
		CHECK_U64(s.files, 2 - step);
		CHECK_U64(s.evicted, (step + 1) * f.size);
	}
	/* evicted, then stored again: a fresh file */
	CHECK_INT(put_file(c, &id[0], &f, 300, bs), 0);
	rfs_cache_flush(c);
	CHECK_INT(count_file(c, &id[0], 300, f.size, bs), nblk);
	rfs_cache_close(c);
}

/* ---- whole-file adler32 ---- */

#define ADLER_BS 4096u

static void adler_of(char out[9], uint32_t n, uint64_t size)
{
	unsigned char buf[ADLER_BS];
	uint32_t a = 1;

	for (uint64_t i = 0; i < nblocks_of(size, ADLER_BS); i++) {
		size_t len = block_len(size, ADLER_BS, i);

		fill(buf, len, n, i);
		a = ref_adler32(a, buf, len);
	}
	snprintf(out, 9, "%08x", a);
}

static int put_block(struct rfs_cache *c, const struct rfs_cache_id *id,
		     const struct rfs_cache_file *f, uint32_t n, uint64_t idx)
{
	unsigned char buf[ADLER_BS];
	size_t len = block_len(f->size, ADLER_BS, idx);

	fill(buf, len, n, idx);
	return rfs_cache_put(c, id, f, idx, buf, len);
}

/*
 * The store never judges a whole file itself (the md5 needs the bytes in
 * file order, which only the read path has): a complete file with a
 * wrong adler32 is kept, never handed out whole until the read path says
 * it matched; a mark on an incomplete file does nothing; a dropped block
 * undoes a mark; a file dropped whole keeps its record and its pin.
 */
static void test_verified(const char *dir)
{
	const uint64_t size = 3 * ADLER_BS - 100;
	struct rfs_cache_file good = { size, "", "user.unit:file.400",
				       "0123456789abcdef0123456789abcdef" };
	struct rfs_cache_file bad = { size, "", "user.unit:file.401", NULL };
	struct rfs_cache *c = open_at(dir, 256 * MIB, ADLER_BS);
	struct rfs_cache_info ci;
	struct rfs_cache_id g, b;
	unsigned int v;

	if (!c)
		return;
	adler_of(good.adler32, 400, size);
	adler_of(bad.adler32, 401, size);
	sscanf(bad.adler32, "%x", &v);
	snprintf(bad.adler32, sizeof(bad.adler32), "%08x", v ^ 1);
	file_id(&g, 400);
	file_id(&b, 401);

	/* out of order, as parallel reads store them; marked too early */
	CHECK_INT(put_block(c, &g, &good, 400, 2), 0);
	CHECK_INT(put_block(c, &g, &good, 400, 0), 0);
	CHECK_INT(rfs_cache_mark_verified(c, &g, size), 0);
	CHECK_INT(put_block(c, &g, &good, 400, 1), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_file_info(c, &g, &ci), 0);
	CHECK(ci.whole && !ci.verified && ci.size == size);
	CHECK_STR(ci.md5, good.md5);
	CHECK_STR(ci.did, "user.unit:file.400");
	CHECK_INT(rfs_cache_open_whole(c, &g, size), -ENOENT);
	/* a mark with another size is not this file */
	CHECK_INT(rfs_cache_mark_verified(c, &g, size + 1), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_file_info(c, &g, &ci), 0);
	CHECK(!ci.verified);
	CHECK_INT(rfs_cache_mark_verified(c, &g, size), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_file_info(c, &g, &ci), 0);
	CHECK(ci.verified);

	/* complete with a wrong adler32: kept, not judged, not whole */
	CHECK_INT(put_file(c, &b, &bad, 401, ADLER_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(count_file(c, &b, 401, size, ADLER_BS), 3);
	CHECK_INT(rfs_cache_file_info(c, &b, &ci), 0);
	CHECK(ci.whole && !ci.verified && !ci.md5[0]);
	CHECK_INT(rfs_cache_open_whole(c, &b, size), -ENOENT);

	/* a dropped block undoes the mark */
	rfs_cache_drop_block(c, &g, 1);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_file_info(c, &g, &ci), 0);
	CHECK(!ci.whole && !ci.verified && ci.nblocks == 2);

	/* dropped whole: no block left, the record and its pin stay */
	CHECK_INT(rfs_cache_pin(c, &b, &bad, true), 0);
	CHECK_INT(rfs_cache_drop_file(c, &b), 0);
	CHECK_INT(rfs_cache_file_info(c, &b, &ci), 0);
	CHECK(ci.pinned && ci.nblocks == 0 && !ci.whole);
	CHECK_U64(stored_blocks(c, &b, NULL), 0);
	CHECK_INT(count_file(c, &b, 401, size, ADLER_BS), 0);
	CHECK_INT(count_file(c, &g, 400, size, ADLER_BS), 2);
	rfs_cache_close(c);
}

/* Every file of a batch that many marks complete is marked and sealed. */
static int count_verified(void *arg, const struct rfs_cache_id *id)
{
	struct rfs_cache *c = ((void **)arg)[0];
	int *n = ((void **)arg)[1];
	struct rfs_cache_info ci;

	if (rfs_cache_file_info(c, id, &ci) == 0 && ci.verified)
		(*n)++;
	return 0;
}

static void test_verified_many(const char *dir)
{
	const uint32_t nfiles = 200, big = 16 * MIB;
	struct rfs_cache_file fb = { big, "", "user.unit:file.499", NULL };
	struct rfs_cache *c = open_at(dir, 256 * MIB, big);
	unsigned char *buf = malloc(big);
	struct rfs_cache_id id;
	int marked = 0;
	void *arg[2] = { c, &marked };

	if (!c || !buf)
		goto out;
	file_id(&id, 499);
	fill(buf, big, 499, 0);
	CHECK_INT(rfs_cache_put(c, &id, &fb, 0, buf, big), 0);
	for (uint32_t n = 500; n < 500 + nfiles; n++) {
		struct rfs_cache_file f = { ADLER_BS, "", "user.unit:many",
					    NULL };

		file_id(&id, n);
		CHECK_INT(put_block(c, &id, &f, n, 0), 0);
		CHECK_INT(rfs_cache_mark_verified(c, &id, ADLER_BS), 0);
	}
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_foreach(c, count_verified, arg), 0);
	CHECK_INT(marked, (int)nfiles);
out:
	free(buf);
	rfs_cache_close(c);
}

/*
 * An update LMDB refuses (a meta key longer than LMDB's 511-byte limit,
 * an empty key) fails alone: the blocks queued with it are stored. A big
 * block first keeps the writer busy, so that the rest form one batch.
 */
static void test_bad_meta(const char *dir)
{
	const uint32_t big = 16 * MIB;
	struct rfs_cache_file f = { 2 * BASIC_BS, "", "user.unit:file.600",
				    NULL };
	struct rfs_cache_file fb = { big, "", "user.unit:file.601", NULL };
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	unsigned char *buf = malloc(big);
	struct rfs_cache_id id, bid;
	struct rfs_cache_stats s;
	char key[600];

	if (!c || !buf)
		goto out;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	file_id(&id, 600);
	file_id(&bid, 601);
	fill(buf, big, 601, 0);
	CHECK_INT(rfs_cache_put(c, &bid, &fb, 0, buf, big), 0);
	CHECK_INT(put_block(c, &id, &f, 600, 0), 0);
	rfs_cache_meta_put(c, key, "v", 1);
	rfs_cache_meta_put(c, "", "v", 1);
	CHECK_INT(put_block(c, &id, &f, 600, 1), 0);
	rfs_cache_flush(c);
	CHECK_INT(count_file(c, &id, 600, f.size, BASIC_BS), 2);
	CHECK_INT(get_cmp(c, &bid, 601, 0, big), 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, f.size + big);
out:
	free(buf);
	rfs_cache_close(c);
}

/* ---- a full disk ---- */

/* Where the store of a test run by run_in_child() lives. */
static const char *child_dir;

/*
 * A 4 MiB tmpfs under a 64 MiB quota: the disk fills long before the
 * quota. Stores fail quietly (dropped, or evicted to make room), what was
 * stored reads back exactly, and the cache goes on storing new blocks.
 */
static void fulldisk_body(void)
{
	const uint32_t bs = 64 * KIB, nfiles = 120;
	struct rfs_cache_file f = { bs, "", "user.unit:full", NULL };
	struct rfs_cache *c = open_at(child_dir, 64 * MIB, bs);
	struct rfs_cache_stats s;
	struct rfs_cache_id id;
	int stored = 0, rc;

	if (!c)
		return;
	for (uint32_t n = 1000; n < 1000 + nfiles; n++) {
		file_id(&id, n);
		rc = put_file(c, &id, &f, n, bs);
		CHECK(rc == 0 || rc == 1); /* 0, or one -ENOSPC */
		if (n % 8 == 7)
			rfs_cache_flush(c);
	}
	rfs_cache_flush(c);
	for (uint32_t n = 1000; n < 1000 + nfiles; n++) {
		file_id(&id, n);
		stored += count_file(c, &id, n, bs, bs);
	}
	rfs_cache_stats(c, &s);
	printf("# full disk: %d of %u blocks kept, dropped %llu, evicted "
	       "%llu bytes\n",
	       stored, nfiles, (unsigned long long)s.dropped,
	       (unsigned long long)s.evicted);
	CHECK(stored > 0);
	CHECK(stored < (int)nfiles);
	CHECK(s.dropped > 0 || s.evicted > 0);
	CHECK_U64(s.used, (uint64_t)stored * bs);
	/* "blocks that could not be stored": nothing was evicted here */
	if (s.evicted == 0)
		CHECK_U64(s.dropped, nfiles - (uint64_t)stored);

	/* after the disk filled up: still storing (room made by eviction) */
	file_id(&id, 1999);
	CHECK_INT(put_file(c, &id, &f, 1999, bs), 0);
	rfs_cache_flush(c);
	CHECK_INT(count_file(c, &id, 1999, bs, bs), 1);
	rfs_cache_close(c);

	/* and it opens again */
	c = open_at(child_dir, 64 * MIB, bs);
	if (c) {
		rfs_cache_stats(c, &s);
		CHECK(s.used <= 4 * MIB);
		rfs_cache_close(c);
	}
}

static void test_full_disk(const char *dir)
{
	char *cache;

	if (mkdir(dir, 0700) ||
	    mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m")) {
		UNIT_SKIP("full disk (cannot mount a tmpfs: %s)",
			  strerror(errno));
		return;
	}
	cache = path_in(dir, "cache");
	child_dir = cache;
	if (cache)
		run_in_child(fulldisk_body);
	child_dir = NULL;
	CHECK_INT(umount2(dir, MNT_DETACH), 0);
	free(cache);
}

/* ---- concurrency ---- */

#define CONC_THREADS 4
#define CONC_BLOCKS 256
#define CONC_BS 4096u
#define CONC_SHARED 800u

struct worker {
	pthread_t thread;
	struct rfs_cache *c;
	uint32_t n; /* its own file */
	unsigned int seed;
	long gets, lost, wrong, badrc;
	unsigned char own[CONC_BLOCKS]; /* 1: a put of it was accepted */
	unsigned char shared[CONC_BLOCKS];
};

static const struct rfs_cache_file conc_file = {
	(uint64_t)CONC_BLOCKS * CONC_BS, "", "user.unit:conc", NULL
};

/* One get of a block of file @n: 0 exact, -ENOENT, or counted as bad. */
static void conc_get(struct worker *w, const struct rfs_cache_id *id,
		     uint32_t n, uint64_t idx, bool must)
{
	int rc = get_cmp(w->c, id, n, idx, CONC_BS);

	w->gets++;
	if (rc == 1)
		w->wrong++;
	else if (rc == -ENOENT && must)
		w->lost++;
	else if (rc && rc != -ENOENT)
		w->badrc++;
}

static void *conc_main(void *arg)
{
	struct worker *w = arg;
	struct rfs_cache_id own, shared;
	unsigned char buf[CONC_BS];
	struct timespec t0, t;
	int rc;

	file_id(&own, w->n);
	file_id(&shared, CONC_SHARED);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long it = 0;; it++) {
		uint64_t i = (uint64_t)rand_r(&w->seed) % CONC_BLOCKS;
		uint64_t j = (uint64_t)rand_r(&w->seed) % CONC_BLOCKS;

		/* a put is readable from the moment it returns */
		fill(buf, CONC_BS, w->n, i);
		rc = rfs_cache_put(w->c, &own, &conc_file, i, buf, CONC_BS);
		if (rc == 0) {
			w->own[i] = 1;
			conc_get(w, &own, w->n, i, true);
		} else if (rc != -ENOSPC) {
			w->badrc++;
		}
		/* the same bytes stored by several threads at once */
		fill(buf, CONC_BS, CONC_SHARED, j);
		rc = rfs_cache_put(w->c, &shared, &conc_file, j, buf, CONC_BS);
		if (rc == 0)
			w->shared[j] = 1;
		else if (rc != -ENOSPC)
			w->badrc++;
		conc_get(w, &shared, CONC_SHARED,
			 (uint64_t)rand_r(&w->seed) % CONC_BLOCKS, false);
		if (it % 1024 == 1023) {
			struct rfs_cache_stats s;

			rfs_cache_flush(w->c);
			rfs_cache_stats(w->c, &s);
			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec - t0.tv_sec >= 2 || it > 200000)
				break;
		}
	}
	return NULL;
}

/*
 * Flushing all the time makes the writer commit many small batches: a
 * get racing with a commit is then common, not rare.
 */
static bool conc_stop;

static void *conc_flusher(void *arg)
{
	while (!__atomic_load_n(&conc_stop, __ATOMIC_ACQUIRE))
		rfs_cache_flush(arg);
	return NULL;
}

static void conc_body(void)
{
	pthread_t flusher;
	bool flushing;
	struct rfs_cache *c = open_at(child_dir, 256 * MIB, CONC_BS);
	struct worker w[CONC_THREADS];
	unsigned char shared[CONC_BLOCKS] = { 0 };
	long gets = 0, lost = 0, wrong = 0, badrc = 0;
	uint64_t distinct = 0, want;
	struct rfs_cache_id id;
	struct rfs_cache_stats s;
	int started = 0;

	if (!c)
		return;
	memset(w, 0, sizeof(w));
	__atomic_store_n(&conc_stop, false, __ATOMIC_RELEASE);
	flushing = pthread_create(&flusher, NULL, conc_flusher, c) == 0;
	CHECK(flushing);
	for (int t = 0; t < CONC_THREADS; t++) {
		w[t].c = c;
		w[t].n = CONC_SHARED + 1 + (uint32_t)t;
		w[t].seed = 12345u + (unsigned int)t;
		if (pthread_create(&w[t].thread, NULL, conc_main, &w[t]) == 0)
			started++;
		else
			break;
	}
	CHECK_INT(started, CONC_THREADS);
	for (int t = 0; t < started; t++)
		pthread_join(w[t].thread, NULL);
	__atomic_store_n(&conc_stop, true, __ATOMIC_RELEASE);
	if (flushing)
		pthread_join(flusher, NULL);
	rfs_cache_flush(c);

	for (int t = 0; t < started; t++) {
		gets += w[t].gets;
		lost += w[t].lost;
		wrong += w[t].wrong;
		badrc += w[t].badrc;
		want = 0;
		for (int i = 0; i < CONC_BLOCKS; i++) {
			want += w[t].own[i];
			shared[i] |= w[t].shared[i];
		}
		distinct += want;
		file_id(&id, w[t].n);
		CHECK_U64(stored_blocks(c, &id, NULL), want);
		for (int i = 0; i < CONC_BLOCKS; i++)
			if (w[t].own[i])
				CHECK_INT(get_cmp(c, &id, w[t].n, i, CONC_BS),
					  0);
		gets += (long)want;
	}
	want = 0;
	file_id(&id, CONC_SHARED);
	for (int i = 0; i < CONC_BLOCKS; i++) {
		if (!shared[i])
			continue;
		want++;
		CHECK_INT(get_cmp(c, &id, CONC_SHARED, i, CONC_BS), 0);
	}
	gets += (long)want;
	distinct += want;
	CHECK_U64(stored_blocks(c, &id, NULL), want);
	printf("# concurrency: %ld gets, %llu distinct blocks\n", gets,
	       (unsigned long long)distinct);
	CHECK(gets > 1000);
	CHECK_INT(lost, 0);
	CHECK_INT(wrong, 0);
	CHECK_INT(badrc, 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, distinct * CONC_BS);
	CHECK_U64(s.files, CONC_THREADS + 1);
	CHECK_U64(s.hits + s.misses, gets);
	CHECK_U64(s.corrupt, 0);
	rfs_cache_close(c);
}

static void test_concurrency(const char *dir)
{
	child_dir = dir;
	run_in_child(conc_body);
	child_dir = NULL;
}

/* ---- the cache directory ---- */

static void test_check_dir(const char *dir)
{
	char err[512] = "", *deep = path_in(dir, "a/b/c");
	char *file = unit_write(scratch, "plain", "x", 0600), *under;
	struct stat st;

	if (!deep || !file) {
		CHECK(false);
		goto out;
	}
	/* parents made too; existing is fine */
	CHECK_INT(rfs_cache_check_dir(deep, err, sizeof(err)), 0);
	CHECK(stat(deep, &st) == 0 && S_ISDIR(st.st_mode));
	CHECK_INT(rfs_cache_check_dir(deep, err, sizeof(err)), 0);
	under = path_in(file, "cache");
	if (under) {
		CHECK_INT(rfs_cache_check_dir(under, err, sizeof(err)),
			  -ENOTDIR);
		CHECK(strstr(err, under) != NULL);
	}
	free(under);
out:
	free(deep);
	free(file);
}

/* Grows LMDB's file by 8 MiB of pages that are free again. */
static int ballast(MDB_env *env, MDB_dbi dbi)
{
	static const char key[] = "ballast";
	MDB_val k = { sizeof(key) - 1, (void *)key }, v = { 8 * MIB, NULL };
	MDB_txn *txn;
	int rc = mdb_txn_begin(env, NULL, 0, &txn);

	if (!rc)
		rc = mdb_put(txn, dbi, &k, &v, MDB_RESERVE);
	if (!rc)
		memset(v.mv_data, 7, v.mv_size);
	rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_del(txn, dbi, &k, NULL);
	return rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
}

/* @dir's LMDB environment, opened behind the cache's back. */
static int open_env(const char *dir, MDB_env **env)
{
	int rc = mdb_env_create(env);

	if (rc)
		return rc;
	mdb_env_set_maxdbs(*env, 8);
	mdb_env_set_mapsize(*env, 64 * MIB);
	rc = mdb_env_open(*env, dir, 0, 0600);
	if (rc)
		mdb_env_close(*env);
	return rc;
}

/* Writes the block-size record as layout 1 (8 bytes, no layout) did. */
static int set_layout_1(const char *dir, uint32_t bs)
{
	static const char key[] = "\001block_size";
	unsigned char val[8];
	MDB_val k = { sizeof(key) - 1, (void *)key }, v = { sizeof(val), val };
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	int rc;

	for (int i = 0; i < 8; i++)
		val[i] = (unsigned char)((uint64_t)bs >> (56 - 8 * i));
	rc = open_env(dir, &env);
	if (rc)
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, "meta", 0, &dbi);
		if (!rc)
			rc = mdb_put(txn, dbi, &k, &v, 0);
		rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	}
	/* an old cache's file is as large as the blocks it held */
	if (!rc)
		rc = ballast(env, dbi);
	mdb_env_close(env);
	return rc;
}

/*
 * A cache is kept across restarts with the same block size and layout,
 * and emptied when either changed: blocks of another size or header
 * would all read as corrupt.
 */
static void test_layout(const char *dir)
{
	struct rfs_cache_file f = { 3 * BASIC_BS, "", "user.unit:file.500",
				    NULL };
	struct rfs_cache_id id;
	struct rfs_cache_stats s;
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	char *blocks = NULL, *mdb = path_in(dir, "data.mdb");
	struct stat st;

	if (!c || !mdb)
		goto out;
	file_id(&id, 500);
	blocks = block_file(dir, &id);
	CHECK_INT(put_file(c, &id, &f, 500, BASIC_BS), 0);
	rfs_cache_close(c);
	c = open_at(dir, 64 * MIB, BASIC_BS);
	if (!c)
		goto out;
	CHECK_INT(count_file(c, &id, 500, f.size, BASIC_BS), 3);
	rfs_cache_close(c);

	CHECK_INT(access(blocks, F_OK), 0);

	CHECK_INT(set_layout_1(dir, BASIC_BS), 0);
	CHECK(stat(mdb, &st) == 0 && st.st_size > 8 * MIB);
	c = open_at(dir, 64 * MIB, BASIC_BS);
	if (!c)
		goto out;
	/* compacted: the old file's free pages are given back */
	CHECK(stat(mdb, &st) == 0 && st.st_size < 1 * MIB);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, 0);
	CHECK_INT(count_file(c, &id, 500, f.size, BASIC_BS), 0);
	/* the emptied cache's block files went too */
	CHECK(access(blocks, F_OK) != 0 && errno == ENOENT);
	CHECK_INT(put_file(c, &id, &f, 500, BASIC_BS), 0);
	rfs_cache_close(c);

	c = open_at(dir, 64 * MIB, BASIC_BS * 2);
	if (!c)
		goto out;
	rfs_cache_stats(c, &s);
	CHECK_U64(s.used, 0);
	rfs_cache_close(c);
out:
	free(mdb);
	free(blocks);
}

/*
 * A header whose bytes are gone (the block file removed behind the
 * cache's back, as a crash between a sync of the index and one of the
 * file could) reads as absent, is dropped, and is stored again.
 */
static void test_lost_bytes(const char *dir)
{
	struct rfs_cache_file f = { 2 * BASIC_BS, "", "user.unit:file.600",
				    NULL };
	struct rfs_cache_stats s;
	struct rfs_cache_id id;
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	char *blocks;

	if (!c)
		return;
	file_id(&id, 600);
	blocks = block_file(dir, &id);
	CHECK_INT(put_file(c, &id, &f, 600, BASIC_BS), 0);
	rfs_cache_flush(c);
	CHECK(blocks && unlink(blocks) == 0);
	CHECK_INT(get_cmp(c, &id, 600, 0, BASIC_BS), -ENOENT);
	rfs_cache_flush(c);
	CHECK_U64(stored_blocks(c, &id, NULL), 1);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.corrupt, 0);
	CHECK_U64(s.used, BASIC_BS);
	CHECK_INT(get_cmp(c, &id, 600, 1, BASIC_BS), -ENOENT);
	rfs_cache_flush(c);
	CHECK_U64(stored_blocks(c, &id, NULL), 0);
	CHECK_INT(put_file(c, &id, &f, 600, BASIC_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(count_file(c, &id, 600, f.size, BASIC_BS), 2);
	rfs_cache_close(c);
	free(blocks);
}

/* How many names in @dir start with @prefix. */
static int count_named(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, prefix, strlen(prefix));
	if (d)
		closedir(d);
	return n;
}

/* Overwrites @len bytes of @path from its start with junk, or cuts the
 * file to that much junk. */
static int scribble(const char *path, size_t len, bool cut)
{
	unsigned char junk[8192];
	int fd = open(path, O_WRONLY | (cut ? O_TRUNC : 0));
	bool ok;

	memset(junk, 0xa5, sizeof(junk));
	ok = fd >= 0 && len <= sizeof(junk) &&
	     pwrite(fd, junk, len, 0) == (ssize_t)len;
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/*
 * An index LMDB finds corrupt (its meta pages overwritten, or a file cut
 * short) is moved aside, kept, and the cache starts empty: it opens, the
 * block files no record names are swept, and blocks are stored again.
 */
static void test_corrupt_index(const char *dir)
{
	struct rfs_cache_file f = { 2 * BASIC_BS, "", "user.unit:file.700",
				    NULL };
	struct rfs_cache_stats s;
	struct rfs_cache_id id;
	char *mdb = path_in(dir, "data.mdb"), *blocks;
	struct rfs_cache *c;
	struct stat st;

	file_id(&id, 700);
	blocks = block_file(dir, &id);
	for (int round = 0; round < 2; round++) {
		c = open_at(dir, 64 * MIB, BASIC_BS);
		if (!c)
			break;
		CHECK_INT(put_file(c, &id, &f, 700, BASIC_BS), 0);
		rfs_cache_flush(c);
		CHECK_INT(count_file(c, &id, 700, f.size, BASIC_BS), 2);
		rfs_cache_close(c);
		CHECK(blocks && stat(blocks, &st) == 0);
		CHECK_INT(scribble(mdb, round ? 100 : 8192, round), 0);

		c = open_at(dir, 64 * MIB, BASIC_BS);
		if (!c)
			break;
		CHECK_INT(count_named(dir, "data.mdb.corrupt-"), round + 1);
		rfs_cache_stats(c, &s);
		CHECK_U64(s.files, 0);
		CHECK_U64(s.used, 0);
		CHECK(blocks && stat(blocks, &st) != 0); /* swept */
		CHECK_INT(count_file(c, &id, 700, f.size, BASIC_BS), 0);
		CHECK_INT(put_file(c, &id, &f, 700, BASIC_BS), 0);
		rfs_cache_flush(c);
		CHECK_INT(count_file(c, &id, 700, f.size, BASIC_BS), 2);
		/* the next one, of the same second, has a name of its own */
		rfs_cache_close(c);
	}
	free(mdb);
	free(blocks);
}

#define PART_BS (64 * KIB)

/* rfs_cache_get_part of @n bytes at @off of block @idx of file @file. */
static int part_cmp(struct rfs_cache *c, const struct rfs_cache_id *id,
		    uint32_t file, uint64_t idx, size_t blen, size_t off,
		    size_t n)
{
	unsigned char *want = malloc(blen), *got = malloc(n);
	int rc = -ENOMEM;

	if (want && got) {
		fill(want, blen, file, idx);
		memset(got, 0xee, n);
		rc = rfs_cache_get_part(c, id, idx, blen, off, got, n);
		if (rc == 0 && memcmp(got, want + off, n))
			rc = -EILSEQ;
	}
	free(want);
	free(got);
	return rc;
}

/*
 * A part of a block reads only its pages, checked on their own: exact
 * bytes from the queue and from disk at every alignment, and a bad page
 * fails only the reads that include it (then the block is dropped).
 */
static void test_part(const char *dir)
{
	static const size_t cuts[][2] = {
		{ 0, 1 },     { 4095, 2 },    { 100, 20000 }, { 4096, 4096 },
		{ 8192, 13 }, { 0, PART_BS }, { 65535, 1 },
	};
	struct rfs_cache_file f = { 2 * PART_BS + 5000, "",
				    "user.unit:file.700", NULL };
	struct rfs_cache *c = open_at(dir, 64 * MIB, PART_BS);
	struct rfs_cache_id id;
	char *blocks;
	int fd;

	if (!c)
		return;
	file_id(&id, 700);
	blocks = block_file(dir, &id);
	CHECK_INT(put_file(c, &id, &f, 700, PART_BS), 0);
	for (int pass = 0; pass < 2; pass++) { /* queued, then stored */
		for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
			CHECK_INT(part_cmp(c, &id, 700, 1, PART_BS, cuts[i][0],
					   cuts[i][1]),
				  0);
		CHECK_INT(part_cmp(c, &id, 700, 2, 5000, 4000, 1000), 0);
		CHECK_INT(part_cmp(c, &id, 700, 2, 5000, 4095, 905), 0);
		CHECK_INT(part_cmp(c, &id, 700, 2, 5000, 4000, 1001), -EINVAL);
		/* another length: refused, queued or stored */
		CHECK_INT(part_cmp(c, &id, 700, 2, 4999, 0, 1), -EINVAL);
		rfs_cache_flush(c);
	}
	/* one byte of page 3 of block 0, behind the cache's back */
	fd = blocks ? open(blocks, O_RDWR) : -1;
	CHECK(fd >= 0 && pwrite(fd, "\x5a", 1, 3 * 4096 + 17) == 1);
	if (fd >= 0)
		close(fd);
	CHECK_INT(part_cmp(c, &id, 700, 0, PART_BS, 0, 3 * 4096), 0);
	CHECK_INT(part_cmp(c, &id, 700, 0, PART_BS, 4 * 4096, 100), 0);
	CHECK_INT(part_cmp(c, &id, 700, 0, PART_BS, 3 * 4096 + 17, 1),
		  -EBADMSG);
	rfs_cache_flush(c);
	CHECK_INT(part_cmp(c, &id, 700, 0, PART_BS, 0, 1), -ENOENT);
	CHECK_U64(stored_blocks(c, &id, NULL), 2);
	rfs_cache_close(c);
	free(blocks);
}

/* Cuts 4 bytes off the first block header in @dir's LMDB: malformed. */
static int cut_first_header(const char *dir)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_dbi dbi;
	MDB_val k, v, nv;
	unsigned char keep[4096];
	int rc = open_env(dir, &env);

	if (rc)
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc) {
		rc = mdb_dbi_open(txn, "blk", 0, &dbi);
		if (!rc)
			rc = mdb_cursor_open(txn, dbi, &cur);
		if (!rc) {
			rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
			if (!rc && (v.mv_size < 8 || v.mv_size > sizeof(keep)))
				rc = EINVAL;
			if (!rc) {
				memcpy(keep, v.mv_data, v.mv_size);
				nv = (MDB_val){ v.mv_size - 4, keep };
				rc = mdb_cursor_put(cur, &k, &nv, MDB_CURRENT);
			}
			mdb_cursor_close(cur);
		}
		rc = rc ? (mdb_txn_abort(txn), rc) : mdb_txn_commit(txn);
	}
	mdb_env_close(env);
	return rc;
}

/*
 * A malformed block header fails the read, and is dropped like a bad
 * page is, so the refetched block can be stored (the writer keeps a
 * stored header over a new one).
 */
static void test_bad_header(const char *dir)
{
	struct rfs_cache_file f = { BASIC_BS, "", "user.unit:file.800", NULL };
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS);
	struct rfs_cache_id id;
	char *got = malloc(BASIC_BS);

	if (!c || !got) {
		free(got);
		return;
	}
	file_id(&id, 800);
	CHECK_INT(put_file(c, &id, &f, 800, BASIC_BS), 0);
	rfs_cache_close(c);
	CHECK_INT(cut_first_header(dir), 0);
	c = open_at(dir, 64 * MIB, BASIC_BS);
	if (c) {
		CHECK_INT(rfs_cache_get(c, &id, 0, got, BASIC_BS), -EBADMSG);
		rfs_cache_flush(c);
		CHECK(!rfs_cache_has(c, &id, 0));
		CHECK_INT(put_file(c, &id, &f, 800, BASIC_BS), 0);
		rfs_cache_flush(c);
		CHECK_INT(get_cmp(c, &id, 800, 0, BASIC_BS), 0);
		rfs_cache_close(c);
	}
	free(got);
}

/* One daemon per directory: a second opening waits, then gives up. */
static void test_lock(const char *dir)
{
	struct rfs_cache *c = open_at(dir, 64 * MIB, BASIC_BS), *d = NULL;
	struct rfs_cache_conf conf = { dir, 64 * MIB, BASIC_BS };

	if (!c)
		return;
	CHECK_INT(rfs_cache_open(&d, &conf), -EBUSY);
	rfs_cache_close(c);
	c = open_at(dir, 64 * MIB, BASIC_BS);
	CHECK(c != NULL);
	rfs_cache_close(c);
}

#define STAGE_BS (1 * MIB)

/*
 * Staged blocks come from memory, checked when they were read: whole
 * reads take them, partial ones leave them; a bad page drops its block
 * at staging, which says which one; at most 32 MiB is staged, and what nobody took within two
 * seconds makes room.
 */
static void test_stage(const char *dir)
{
	struct rfs_cache_file f = { 2 * PART_BS + 5000, "",
				    "user.unit:file.800", NULL };
	struct rfs_cache_file g = { 2 * PART_BS, "", "user.unit:file.801",
				    NULL };
	struct rfs_cache_file h = { 40 * STAGE_BS, "", "user.unit:file.802",
				    NULL };
	struct rfs_cache_file m = { 4 * STAGE_BS, "", "user.unit:file.803",
				    NULL };
	struct rfs_cache_id id, jd, kd;
	struct rfs_cache_stats s;
	struct rfs_cache *c = open_at(dir, 64 * MIB, PART_BS);
	uint64_t bad = 0;
	char *blocks = NULL;
	int fd, got;

	if (!c)
		return;
	file_id(&id, 800);
	file_id(&jd, 801);
	CHECK_INT(put_file(c, &id, &f, 800, PART_BS), 0);
	CHECK_INT(put_file(c, &jd, &g, 801, PART_BS), 0);
	rfs_cache_flush(c);
	CHECK_U64(rfs_cache_stage(c, &id, 0, 8, f.size, &bad), 0);
	/* from here on the bytes are only in memory (truncated: a reader
	 * may keep the file open) */
	blocks = block_file(dir, &id);
	CHECK(blocks && truncate(blocks, 0) == 0);
	free(blocks);
	CHECK_INT(part_cmp(c, &id, 800, 1, PART_BS, 100, 200), 0);
	CHECK_INT(part_cmp(c, &id, 800, 1, PART_BS, 0, 1), 0);
	CHECK_INT(part_cmp(c, &id, 800, 2, 4999, 0, 1), -EINVAL);
	for (uint64_t i = 0; i < 2; i++)
		CHECK_INT(get_cmp(c, &id, 800, i, PART_BS), 0);
	CHECK_INT(part_cmp(c, &id, 800, 2, 5000, 0, 5000), 0);
	/* taken: now the disk is asked, and the bytes are gone there */
	CHECK_INT(get_cmp(c, &id, 800, 1, PART_BS), -ENOENT);

	/* one byte of block 1 of the other file, behind the cache's back */
	blocks = block_file(dir, &jd);
	fd = blocks ? open(blocks, O_RDWR) : -1;
	CHECK(fd >= 0 && pwrite(fd, "\x5a", 1, PART_BS + 17) == 1);
	if (fd >= 0)
		close(fd);
	free(blocks);
	CHECK_U64(rfs_cache_stage(c, &jd, 0, 2, g.size, &bad), 1);
	CHECK_U64(bad, 1);
	rfs_cache_flush(c);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.corrupt, 1);
	CHECK_U64(stored_blocks(c, &jd, NULL), 1);
	CHECK_INT(get_cmp(c, &jd, 801, 0, PART_BS), 0);
	CHECK_INT(get_cmp(c, &jd, 801, 1, PART_BS), -ENOENT);
	rfs_cache_close(c);

	/* the bound: 32 of 40 blocks of 1 MiB, then room once stale */
	c = open_at(dir, 64 * MIB, STAGE_BS);
	if (!c)
		return;
	for (uint32_t n = 802; n < 805; n++) {
		file_id(&kd, n);
		CHECK_INT(put_file(c, &kd, n == 802 ? &h : &m, n, STAGE_BS), 0);
	}
	rfs_cache_flush(c);
	for (uint32_t n = 802; n < 805; n++) {
		file_id(&kd, n);
		if (n == 804)
			sleep(3); /* 802's blocks, read in part, go stale */
		CHECK_U64(rfs_cache_stage(c, &kd, 0, 40,
					  n == 802 ? h.size : m.size, &bad),
			  0);
		blocks = block_file(dir, &kd);
		CHECK(blocks && truncate(blocks, 0) == 0);
		free(blocks);
		got = 0;
		for (uint64_t i = 0; i < (n == 802 ? 40 : 4); i++)
			got += part_cmp(c, &kd, n, i, STAGE_BS, 5, 10) == 0;
		/* 803 found no room; 804 did, once 802's were stale */
		CHECK_INT(got, n == 802 ? 32 : n == 803 ? 0 : 4);
	}
	rfs_cache_close(c);
}

/* Whether every block of @id, a file of @size bytes, is stored. */
static bool all_stored(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t size)
{
	struct rfs_cache_info ci;

	return rfs_cache_file_info(c, id, &ci) == 0 && ci.whole &&
	       ci.size == size;
}

/* What file 810's blocks read as, after staging and losing them. */
static void check_gone(struct rfs_cache *c, const struct rfs_cache_id *id,
		       uint64_t size)
{
	struct rfs_cache_stats s;

	rfs_cache_stats(c, &s);
	CHECK_U64(s.staged, 0);
	CHECK(!all_stored(c, id, size));
	for (uint64_t i = 0; i < nblocks_of(size, STAGE_BS); i++)
		CHECK_INT(get_cmp(c, id, 810, i, STAGE_BS), -ENOENT);
}

/* File 810 stored again and staged whole. */
static void store_and_stage(struct rfs_cache *c, const struct rfs_cache_id *id,
			    const struct rfs_cache_file *f)
{
	struct rfs_cache_stats s;
	uint64_t bad = 0;

	CHECK_INT(put_file(c, id, f, 810, STAGE_BS), 0);
	rfs_cache_flush(c);
	CHECK(all_stored(c, id, f->size));
	CHECK_U64(rfs_cache_stage(c, id, 0, 8, f->size, &bad), 0);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.staged, f->size);
}

/*
 * Staged copies leave the memory with their blocks, whether a block is
 * dropped, a file dropped (its bytes found wrong), evicted on request or
 * to make room: a block the store no longer has is never served, nor
 * counted as there, from a copy read ahead before.
 */
static void test_stage_gone(const char *dir)
{
	struct rfs_cache_file f = { 8 * STAGE_BS, "", "user.unit:file.810",
				    NULL };
	struct rfs_cache_file g = { 8 * STAGE_BS, "", "user.unit:file.811",
				    NULL };
	struct rfs_cache *c = open_at(dir, 12 * MIB, STAGE_BS);
	struct rfs_cache_id id, jd;
	struct rfs_cache_stats s;

	if (!c)
		return;
	file_id(&id, 810);
	file_id(&jd, 811);
	store_and_stage(c, &id, &f);
	rfs_cache_drop_block(c, &id, 3);
	rfs_cache_flush(c);
	rfs_cache_stats(c, &s);
	CHECK_U64(s.staged, f.size - STAGE_BS);
	CHECK_INT(get_cmp(c, &id, 810, 3, STAGE_BS), -ENOENT);
	CHECK_INT(rfs_cache_drop_file(c, &id), 0);
	check_gone(c, &id, f.size);

	store_and_stage(c, &id, &f);
	CHECK_INT(rfs_cache_evict(c, &id), 0);
	check_gone(c, &id, f.size);

	/* the least recently used file makes room for a newer one */
	store_and_stage(c, &id, &f);
	sleep(1);
	CHECK_INT(put_file(c, &jd, &g, 811, STAGE_BS), 0);
	rfs_cache_flush(c);
	CHECK(all_stored(c, &jd, g.size));
	check_gone(c, &id, f.size);
	rfs_cache_close(c);
}

/* The bytes of file @n, @size bytes in ADLER_BS blocks, as @fd has them. */
static int whole_cmp(int fd, uint32_t n, uint64_t size)
{
	unsigned char want[ADLER_BS], got[ADLER_BS + 1];
	uint64_t nb = nblocks_of(size, ADLER_BS);
	struct stat st;

	if (fstat(fd, &st) || (uint64_t)st.st_size != size)
		return -1;
	for (uint64_t i = 0; i < nb; i++) {
		size_t len = block_len(size, ADLER_BS, i);
		ssize_t expect =
			i + 1 < nb ? (ssize_t)sizeof(got) : (ssize_t)len;

		fill(want, len, n, i);
		if (pread(fd, got, sizeof(got), (off_t)(i * ADLER_BS)) !=
			    expect ||
		    memcmp(got, want, len))
			return -1;
	}
	return 0;
}

static void check_whole(struct rfs_cache *c, const struct rfs_cache_id *id,
			uint32_t n, uint64_t size)
{
	int fd = rfs_cache_open_whole(c, id, size);

	CHECK(fd >= 0 && whole_cmp(fd, n, size) == 0);
	if (fd >= 0)
		close(fd);
}

/* Changes one byte of @id's block file behind the cache's back. */
static void change_byte(const char *dir, const struct rfs_cache_id *id,
			off_t off)
{
	char *blocks = block_file(dir, id);
	int fd = blocks ? open(blocks, O_RDWR) : -1;
	unsigned char b = 0;

	CHECK(fd >= 0 && pread(fd, &b, 1, off) == 1);
	b ^= 0x5a;
	CHECK(fd >= 0 && pwrite(fd, &b, 1, off) == 1);
	if (fd >= 0)
		close(fd);
	free(blocks);
}

/*
 * Whole files for the kernel to read: only once every block is stored
 * and the whole matched its adler32, cut to the exact size; refused once
 * the block file changed behind the cache's back or a block was dropped;
 * handed out again once the file is whole and checked again.
 */
static void test_whole(const char *dir)
{
	const uint64_t size = 3 * ADLER_BS - 100;
	struct rfs_cache_file f = { size, "", "user.unit:file.900", NULL };
	struct rfs_cache_file u = { size, "", "user.unit:file.901", NULL };
	struct rfs_cache *c = open_at(dir, 256 * MIB, ADLER_BS);
	unsigned char buf[ADLER_BS];
	struct rfs_cache_id id, ud;

	if (!c)
		return;
	if (setxattr(dir, "user.probe", "1", 1, 0) && errno == ENOTSUP) {
		UNIT_SKIP("whole files (no user xattrs here)");
		rfs_cache_close(c);
		return;
	}
	adler_of(f.adler32, 900, size);
	file_id(&id, 900);
	file_id(&ud, 901);
	CHECK_INT(put_block(c, &id, &f, 900, 2), 0);
	CHECK_INT(put_block(c, &id, &f, 900, 0), 0);
	CHECK_INT(put_file(c, &ud, &u, 901, ADLER_BS), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_open_whole(c, &id, size), -ENOENT);
	/* whole but never checked by the read path: not handed out */
	CHECK_INT(rfs_cache_open_whole(c, &ud, size), -ENOENT);
	CHECK_INT(put_block(c, &id, &f, 900, 1), 0);
	rfs_cache_flush(c);
	/* whole, but not handed out before the read path checked it */
	CHECK_INT(rfs_cache_open_whole(c, &id, size), -ENOENT);
	CHECK_INT(rfs_cache_mark_verified(c, &id, size), 0);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_open_whole(c, &id, size + 1), -ENOENT);
	check_whole(c, &id, 900, size);
	/* the seal outlives the process */
	rfs_cache_close(c);
	c = open_at(dir, 256 * MIB, ADLER_BS);
	if (!c)
		return;
	check_whole(c, &id, 900, size);

	usleep(20 * 1000); /* a tick later: file times are coarse */
	change_byte(dir, &id, ADLER_BS + 17);
	CHECK_INT(rfs_cache_open_whole(c, &id, size), -ESTALE);
	/* read block by block, the change is found and the block dropped */
	CHECK_INT(rfs_cache_get(c, &id, 1, buf, ADLER_BS), -EBADMSG);
	rfs_cache_flush(c);
	CHECK_INT(rfs_cache_open_whole(c, &id, size), -ENOENT);
	/* fetched again: whole, checked and sealed again */
	CHECK_INT(put_block(c, &id, &f, 900, 1), 0);
	CHECK_INT(rfs_cache_mark_verified(c, &id, size), 0);
	rfs_cache_flush(c);
	check_whole(c, &id, 900, size);
	rfs_cache_close(c);
}

/* ---- main ---- */

struct store_test {
	const char *dir;
	void (*fn)(const char *dir);
};

static const struct store_test store_tests[] = {
	{ "basic", test_put_get },
	{ "basic", test_meta },
	{ "basic", test_persistence },
	{ "lookups", test_lookups_count_nothing },
	{ "wronglen", test_wrong_len },
	{ "puttake", test_put_take },
	{ "corrupt", test_corruption },
	{ "evict", test_evict },
	{ "verified", test_verified },
	{ "verifiedmany", test_verified_many },
	{ "badmeta", test_bad_meta },
	{ "pin", test_pin },
	{ "lru", test_lru },
	{ "lru_staged", test_lru_staged },
	{ "concurrency", test_concurrency },
	{ "fulldisk", test_full_disk },
	{ "checkdir", test_check_dir },
	{ "layout", test_layout },
	{ "lostbytes", test_lost_bytes },
	{ "lock", test_lock },
	{ "part", test_part },
	{ "badheader", test_bad_header },
	{ "stage", test_stage },
	{ "stagegone", test_stage_gone },
	{ "whole", test_whole },
	{ "corruptindex", test_corrupt_index },
};

int main(void)
{
	struct timespec t0, t1;

	/* a hang in the store fails the test instead of the whole run */
	alarm(600);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	child_counts = mmap(NULL, sizeof(*child_counts), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (child_counts == MAP_FAILED)
		child_counts = NULL;

	test_crc32c_first_use();
	test_crc32c();
	test_adler32();
	test_id_of();

	scratch = unit_mkdtemp("cache");
	CHECK(scratch != NULL);
	for (size_t i = 0;
	     scratch && i < sizeof(store_tests) / sizeof(store_tests[0]); i++) {
		char *dir = path_in(scratch, store_tests[i].dir);

		if (dir)
			store_tests[i].fn(dir);
		free(dir);
	}
	unit_rmtree(scratch);
	free(scratch);
	if (child_counts)
		munmap(child_counts, sizeof(*child_counts));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("# %.1f s\n", (double)(t1.tv_sec - t0.tv_sec) +
				     (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return unit_done("cache");
}
