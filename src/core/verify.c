/*
 * Whole-file checks (see verify.h). The sums run on VERIFY_WORKERS
 * threads that read each file's blocks back from the cache in file order
 * as they arrive: a reader never sums, and md5 (the slower sum, about 0.8
 * GB/s a core) runs beside the network rather than in front of it.
 * Without a cache, readers hand their bytes to the worker, which keeps
 * those read ahead of its place until it reaches them.
 *
 * Locks: verify_lock (the table of verifiers, their refs, the workers'
 * queue) and each verifier's lock are leaves, never held together, never
 * across I/O or a sum.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/uio.h>

#include <openssl/evp.h>

#include "authz/cred.h"
#include "core/core.h"
#include "core/file.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/meta.h"
#include "core/verify.h"
#include "util/log.h"
#include "util/str.h"
#include "util/banned.h"

#define VERIFY_WORKERS 2
#define VT_BUCKETS 256
/* a worker sums this much of one file before it lets another go first */
#define PASS_BYTES (64u << 20)
/* bytes fetched or read ahead of a file's sums, kept in memory for them
 * (so they are not read back from the disk the cache just wrote) */
#define PIECES_MAX (32u << 20)
/* verifiers kept with no handle because they remember a liar */
#define KEEP_MAX 4096
/* replicas a mismatch is traced to, one by one, before all are blamed */
#define SUSPECTS_MAX 8
/* distinct replicas remembered per file (the block map is 16 bits) */
#define SOURCES_MAX 65000

enum vstate {
	V_SUMMING,  /* summing the current generation */
	V_GOOD,	    /* it matched */
	V_CHECKING, /* it did not: finding the replica that lied */
};

struct piece {
	uint64_t off;
	size_t len;
	struct piece *next;
	char data[];
};

struct rfs_verifier {
	struct rfs_verifier *hnext; /* table chain, under verify_lock */
	struct rfs_verifier *qnext; /* the workers' queue, under verify_lock */
	unsigned refs;		    /* handles, jobs, the queue; verify_lock */
	bool queued;		    /* under verify_lock */
	unsigned kept_seq;	    /* when kept without handles */

	/* fixed at creation */
	struct rfs_cache_id cid;
	uint64_t size;
	uint32_t bs; /* fs->bs, for the code that has only @v */
	char adler32[9];
	char md5[33];
	char did[520];

	pthread_mutex_t lock; /* what follows; a leaf */
	pthread_cond_t cv;
	enum vstate state;
	unsigned gen;	  /* generation of the bytes being summed */
	unsigned bad_gen; /* the last generation found wrong, 0: none */
	bool busy;	  /* a worker sums it now */
	bool poked;	  /* more came while it was busy */
	bool restart;	  /* the worker starts the sums anew */
	bool stalled;	  /* the block at @next is neither stored nor coming */
	bool stale_pages; /* the kernel may hold a wrong generation's pages */
	bool given_up;	  /* this generation cannot be summed whole */
	unsigned reading; /* without a cache: reads under way (atomic) */
	uint64_t next;	  /* bytes summed */
	EVP_MD_CTX *md;	  /* the worker's alone while busy */
	uint32_t adler;	  /* idem */
	uint16_t *src;	  /* per block: 1 + index into urls, 0: unknown */
	char **urls, **rses;
	size_t nurls;
	struct demotion {
		char *url;
		time_t when;
	} * demoted; /* lied about this file: tried last */
	size_t ndemoted;
	struct rfs_did_rec rec;	   /* for private handles (finding a liar) */
	struct rfs_cred *who;	   /* whom they fetch for: its first opener */
	struct rfs_replicas *reps; /* the latest replica set seen */
	struct piece *pieces;	   /* without a cache: read ahead of @next */
	size_t piece_bytes;
};

struct rfs_verify {
	pthread_t workers[VERIFY_WORKERS];
	int nworkers;
	bool stop;
	pthread_cond_t wake;
	struct rfs_verifier *head, *tail; /* the queue */
	struct rfs_verifier *table[VT_BUCKETS];
	size_t nkept;
	unsigned kept_seq;
	uint64_t good, bad;
};

/* ---- the table ---- */

static unsigned bucket_of(const struct rfs_cache_id *id)
{
	return (id->b[0] | id->b[1] << 8) % VT_BUCKETS;
}

static void free_pieces(struct rfs_verifier *v)
{
	while (v->pieces) {
		struct piece *p = v->pieces;

		v->pieces = p->next;
		free(p);
	}
	v->piece_bytes = 0;
}

static void free_strv(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

static void free_verifier(struct rfs_verifier *v)
{
	EVP_MD_CTX_free(v->md);
	free(v->src);
	free_strv(v->urls, v->nurls);
	free_strv(v->rses, v->nurls);
	for (size_t i = 0; i < v->ndemoted; i++)
		free(v->demoted[i].url);
	free(v->demoted);
	free_pieces(v);
	rfs_did_rec_release(&v->rec);
	rfs_cred_put(v->who);
	if (v->reps)
		rfs_replicas_put(v->reps);
	pthread_cond_destroy(&v->cv);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* Under verify_lock. */
static void unlink_verifier(struct rfs_verify *vp, struct rfs_verifier *v)
{
	struct rfs_verifier **pp = &vp->table[bucket_of(&v->cid)];

	while (*pp && *pp != v)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = v->hnext;
}

/* Under verify_lock: the oldest verifier kept with no handle goes. */
static void drop_oldest_kept(struct rfs_verify *vp)
{
	struct rfs_verifier *old = NULL;

	for (size_t b = 0; b < VT_BUCKETS; b++)
		for (struct rfs_verifier *v = vp->table[b]; v; v = v->hnext)
			if (!v->refs && (!old || v->kept_seq < old->kept_seq))
				old = v;
	if (!old)
		return;
	unlink_verifier(vp, old);
	vp->nkept--;
	free_verifier(old);
}

static void put_verifier(struct rfs_fs *fs, struct rfs_verifier *v)
{
	struct rfs_verify *vp = fs->verify;
	bool keep;

	pthread_mutex_lock(&fs->verify_lock);
	if (--v->refs) {
		pthread_mutex_unlock(&fs->verify_lock);
		return;
	}
	/* a file whose liar is known keeps that knowledge a while (read
	 * without v->lock: the two locks are never held together) */
	keep = __atomic_load_n(&v->ndemoted, __ATOMIC_RELAXED) > 0;
	if (keep) {
		v->kept_seq = ++vp->kept_seq;
		if (++vp->nkept > KEEP_MAX)
			drop_oldest_kept(vp);
		pthread_mutex_unlock(&fs->verify_lock);
		return;
	}
	unlink_verifier(vp, v);
	pthread_mutex_unlock(&fs->verify_lock);
	free_verifier(v);
}

static struct rfs_verifier *new_verifier(struct rfs_fs *fs,
					 const struct rfs_file *f)
{
	struct rfs_verifier *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->md = EVP_MD_CTX_new();
	if (!v->md || rfs_did_rec_copy(&v->rec, &f->t.did)) {
		EVP_MD_CTX_free(v->md);
		free(v);
		return NULL;
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cv, NULL);
	v->cid = f->t.cid;
	v->size = f->t.reps->size;
	v->bs = (uint32_t)fs->bs;
	memcpy(v->adler32, f->t.did.adler32, sizeof(v->adler32));
	memcpy(v->md5, f->t.did.md5, sizeof(v->md5));
	snprintf(v->did, sizeof(v->did), "%s", f->t.didstr);
	v->who = f->t.who ? rfs_cred_get(f->t.who) : NULL;
	v->gen = 1;
	v->restart = true;
	return v;
}

/* Under verify_lock: the verifier of @id, with one more ref. */
static struct rfs_verifier *find_verifier(struct rfs_verify *vp,
					  const struct rfs_cache_id *id)
{
	struct rfs_verifier *v = vp->table[bucket_of(id)];

	while (v && memcmp(v->cid.b, id->b, sizeof(id->b)))
		v = v->hnext;
	if (v && !v->refs++)
		vp->nkept--;
	return v;
}

/* ---- the workers' queue ---- */

/* Has a worker sum what is new of @v (once, however often asked). */
static void poke(struct rfs_fs *fs, struct rfs_verifier *v)
{
	struct rfs_verify *vp = fs->verify;

	pthread_mutex_lock(&v->lock);
	if (v->busy)
		v->poked = true;
	v->stalled = false;
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_lock(&fs->verify_lock);
	if (!v->queued && !vp->stop) {
		v->queued = true;
		v->refs++;
		v->qnext = NULL;
		if (vp->tail)
			vp->tail->qnext = v;
		else
			vp->head = v;
		vp->tail = v;
		pthread_cond_signal(&vp->wake);
	}
	pthread_mutex_unlock(&fs->verify_lock);
}

/* ---- summing ---- */

/* Under v->lock: the sums start anew for a new generation of bytes. */
static void new_generation(struct rfs_verifier *v)
{
	v->gen++;
	v->next = 0;
	v->restart = true;
	v->stalled = false;
	v->given_up = false;
	free_pieces(v);
	if (v->src)
		memset(v->src, 0,
		       ((v->size + v->bs - 1) / v->bs) * sizeof(*v->src));
}

static uint32_t hex32(const char *s)
{
	return (uint32_t)strtoul(s, NULL, 16);
}

static void md5_hex(EVP_MD_CTX *md, char out[33])
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	EVP_DigestFinal_ex(md, d, &n);
	for (unsigned i = 0; i < n && i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	out[32] = '\0';
}

/* What a whole sum says against the catalogue's @adler32 and @md5 ("":
 * none); fills @why if wrong. */
static bool sums_match(const char *adler32, const char *md5, uint32_t adler,
		       EVP_MD_CTX *md, char *why, size_t len)
{
	char got[33] = "";
	bool ok = true;

	why[0] = '\0';
	if (adler32[0] && hex32(adler32) != adler) {
		snprintf(why, len, "adler32 %08x, the catalogue says %s", adler,
			 adler32);
		ok = false;
	}
	if (md5[0]) {
		md5_hex(md, got);
		if (strcasecmp(got, md5)) {
			snprintf(why + strlen(why), len - strlen(why),
				 "%smd5 %s, the catalogue says %s",
				 ok ? "" : ", ", got, md5);
			ok = false;
		}
	}
	return ok;
}

static bool sum_init(EVP_MD_CTX *md, uint32_t *adler)
{
	*adler = 1;
	return EVP_DigestInit_ex(md, EVP_md5(), NULL) == 1;
}

static void sum_add(EVP_MD_CTX *md, uint32_t *adler, const void *p, size_t n)
{
	EVP_DigestUpdate(md, p, n);
	*adler = rfs_adler32(*adler, p, n);
}

static void mismatch(struct rfs_fs *fs, struct rfs_verifier *v, unsigned gen,
		     const char *why);

/* Generation @gen matched the catalogue's sums. */
static void matched(struct rfs_fs *fs, struct rfs_verifier *v, unsigned gen)
{
	pthread_mutex_lock(&v->lock);
	if (v->gen == gen && v->state == V_SUMMING)
		v->state = V_GOOD;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->lock);
	if (fs->cache)
		rfs_cache_mark_verified(fs->cache, &v->cid, v->size);
}

/* The whole generation @gen summed: its verdict. */
static void conclude(struct rfs_fs *fs, struct rfs_verifier *v, unsigned gen,
		     uint32_t adler)
{
	char why[256] = "";
	bool ok =
		sums_match(v->adler32, v->md5, adler, v->md, why, sizeof(why));

	pthread_mutex_lock(&fs->verify_lock);
	*(ok ? &fs->verify->good : &fs->verify->bad) += 1;
	pthread_mutex_unlock(&fs->verify_lock);
	if (ok)
		matched(fs, v, gen);
	else
		mismatch(fs, v, gen, why);
}

/*
 * A read that ends the file, with everything before it summed already
 * (a small file read at once, or a stream whose sums kept pace): the
 * rest is summed here, and a match concluded, with no hand-over to a
 * worker. A mismatch goes to a worker, which sums the file again from
 * the cache and looks for the liar. False when this could not be done.
 */
static bool sum_here(struct rfs_fs *fs, struct rfs_verifier *v, uint64_t off,
		     const char *buf, size_t len)
{
	char why[256] = "";
	uint64_t pos;
	unsigned gen;
	bool ok;

	pthread_mutex_lock(&v->lock);
	if (v->busy || v->restart || v->state != V_SUMMING || v->given_up ||
	    v->next < off || v->next > off + len) {
		pthread_mutex_unlock(&v->lock);
		return false;
	}
	v->busy = true;
	gen = v->gen;
	pos = v->next;
	pthread_mutex_unlock(&v->lock);
	sum_add(v->md, &v->adler, buf + (pos - off), off + len - pos);
	ok = sums_match(v->adler32, v->md5, v->adler, v->md, why, sizeof(why));
	pthread_mutex_lock(&v->lock);
	v->busy = false;
	if (v->gen == gen && !v->restart)
		v->next = ok || !fs->cache ? v->size : 0;
	v->restart = v->restart || (!ok && fs->cache);
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_lock(&fs->verify_lock);
	if (ok || !fs->cache)
		*(ok ? &fs->verify->good : &fs->verify->bad) += 1;
	pthread_mutex_unlock(&fs->verify_lock);
	if (ok)
		matched(fs, v, gen);
	else if (!fs->cache) /* nothing to sum again from, nor a liar to seek */
		mismatch(fs, v, gen, why);
	return ok || !fs->cache;
}

/*
 * The next block of @v from the cache into @buf: its length, 0 when it
 * is not there (*@coming: it is being fetched).
 */
static size_t next_block(struct rfs_fs *fs, struct rfs_verifier *v,
			 uint64_t pos, char *buf, bool *coming)
{
	uint64_t idx = pos / v->bs;
	size_t len = v->size - pos < v->bs ? (size_t)(v->size - pos) : v->bs;

	*coming = false;
	if (rfs_cache_peek(fs->cache, &v->cid, idx, buf, len) == 0)
		return len;
	*coming = rfs_blocks_in_flight(fs, &v->cid, idx);
	return 0;
}

/* The piece handed over that holds byte @pos, taken off the list. */
static struct piece *take_piece(struct rfs_verifier *v, uint64_t pos)
{
	struct piece **pp = &v->pieces, *p;

	for (; (p = *pp); pp = &p->next) {
		if (p->off + p->len <= pos) { /* summed already */
			*pp = p->next;
			v->piece_bytes -= p->len;
			free(p);
			return take_piece(v, pos);
		}
		if (p->off <= pos) {
			*pp = p->next;
			v->piece_bytes -= p->len;
			return p;
		}
	}
	return NULL;
}

/*
 * Under v->lock, and it stays held but for the sums: at most PASS_BYTES
 * of @v from where its sums are. Returns true if it should go on.
 */
static bool sum_some(struct rfs_fs *fs, struct rfs_verifier *v, char *buf)
{
	unsigned gen = v->gen;
	uint64_t pos = v->next, done = 0;
	bool coming = false;

	while (pos < v->size && done < PASS_BYTES) {
		struct piece *p = take_piece(v, pos);
		const char *data = buf;
		size_t n;

		pthread_mutex_unlock(&v->lock);
		if (p) { /* handed over as it was fetched or read */
			n = (size_t)(p->off + p->len - pos);
			data = p->data + (pos - p->off);
			coming = true;
		} else if (fs->cache) {
			n = next_block(fs, v, pos, buf, &coming);
		} else {
			n = 0; /* a read under way may still bring it */
			coming = __atomic_load_n(&v->reading, __ATOMIC_RELAXED);
		}
		if (n)
			sum_add(v->md, &v->adler, data, n);
		free(p);
		pthread_cond_broadcast(&v->cv); /* room for handing over */
		pthread_mutex_lock(&v->lock);
		if (!n || v->gen != gen || v->restart)
			break;
		pos += n;
		done += n;
		v->next = pos;
	}
	if (v->gen != gen || v->restart)
		return true;
	v->stalled = pos < v->size && !coming;
	return pos < v->size && done >= PASS_BYTES;
}

/* One turn of a worker on @v. */
static void work_on(struct rfs_fs *fs, struct rfs_verifier *v, char *buf)
{
	bool more;
	unsigned gen;

	pthread_mutex_lock(&v->lock);
	if (v->busy || v->state != V_SUMMING || v->given_up) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	v->busy = true;
	do {
		v->poked = false;
		if (v->restart) {
			v->restart = false;
			v->next = 0;
			sum_init(v->md, &v->adler);
		}
		more = sum_some(fs, v, buf);
	} while (more || v->poked || v->restart);
	gen = v->gen;
	more = v->state == V_SUMMING && v->next == v->size;
	pthread_mutex_unlock(&v->lock);
	/* still busy: no other worker concludes it twice */
	if (more)
		conclude(fs, v, gen, v->adler);
	pthread_mutex_lock(&v->lock);
	v->busy = false;
	more = v->poked && v->state == V_SUMMING;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->lock);
	if (more)
		poke(fs, v);
}

static void *worker_main(void *arg)
{
	struct rfs_fs *fs = arg;
	struct rfs_verify *vp = fs->verify;
	char *buf = rfs_cache_buf_alloc(fs->bs);

	pthread_setname_np(pthread_self(), "rfs-verify");
	pthread_mutex_lock(&fs->verify_lock);
	while (buf) {
		struct rfs_verifier *v;

		while (!vp->head && !vp->stop)
			pthread_cond_wait(&vp->wake, &fs->verify_lock);
		if (vp->stop)
			break;
		v = vp->head;
		vp->head = v->qnext;
		if (!vp->head)
			vp->tail = NULL;
		v->queued = false;
		pthread_mutex_unlock(&fs->verify_lock);
		work_on(fs, v, buf);
		put_verifier(fs, v);
		pthread_mutex_lock(&fs->verify_lock);
	}
	pthread_mutex_unlock(&fs->verify_lock);
	rfs_cache_buf_free(buf);
	return NULL;
}

/* ---- a mismatch ---- */

/* Under v->lock: @url lied about this file (once). */
static void demote(struct rfs_verifier *v, const char *url, time_t when)
{
	struct demotion *nd;

	for (size_t i = 0; i < v->ndemoted; i++)
		if (!strcmp(v->demoted[i].url, url))
			return;
	nd = realloc(v->demoted, (v->ndemoted + 1) * sizeof(*nd));
	if (!nd)
		return;
	v->demoted = nd;
	v->demoted[v->ndemoted].url = strdup(url);
	v->demoted[v->ndemoted].when = when;
	if (v->demoted[v->ndemoted].url)
		__atomic_store_n(&v->ndemoted, v->ndemoted + 1,
				 __ATOMIC_RELEASE);
}

/* A liar stays known across remounts this long (seconds): a storage
 * endpoint may be repaired. */
#define DEMOTED_KEEP (24 * 3600)

/* Keeps @v's liars in the cache's metadata, "when url" a line. */
static void save_demotions(struct rfs_fs *fs, struct rfs_verifier *v)
{
	struct rfs_buf b;
	int rc = 0;

	if (!fs->cache)
		return;
	rfs_buf_init(&b, 1 << 20);
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->ndemoted && !rc; i++)
		rc = rfs_buf_printf(&b, "%lld %s\n",
				    (long long)v->demoted[i].when,
				    v->demoted[i].url);
	pthread_mutex_unlock(&v->lock);
	if (!rc)
		rfs_meta_store(fs, 'D', &v->rec, &b);
	rfs_buf_release(&b);
}

/* The liars of @v's file an earlier mount found, still recent. */
static void load_demotions(struct rfs_fs *fs, struct rfs_verifier *v)
{
	time_t now = time(NULL);
	char *val, *line, *save = NULL;
	size_t len;

	if (rfs_meta_load(fs, 'D', &v->rec, &val, &len))
		return;
	pthread_mutex_lock(&v->lock);
	for (line = strtok_r(val, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *url = strchr(line, ' ');
		long long when = strtoll(line, NULL, 10);

		if (url && url[1] && when > 0 && now - when < DEMOTED_KEEP)
			demote(v, url + 1, (time_t)when);
	}
	pthread_mutex_unlock(&v->lock);
	free(val);
}

/* A source as a log line names it: "RSE (url)". */
static void name_source(char *out, size_t len, const struct rfs_verifier *v,
			size_t i)
{
	char url[256];

	rfs_url_for_log(url, sizeof(url), v->urls[i]);
	snprintf(out, len, "%s (%s)", v->rses[i], url);
}

/* Under v->lock: how many blocks each source served (@count[nurls]),
 * and whether some came from before this mount (unknown source). */
static bool count_sources(const struct rfs_verifier *v, size_t *count)
{
	uint64_t nb = (v->size + v->bs - 1) / v->bs;
	bool unknown = !v->src && nb;

	memset(count, 0, v->nurls * sizeof(*count));
	for (uint64_t i = 0; v->src && i < nb; i++) {
		if (v->src[i])
			count[v->src[i] - 1]++;
		else
			unknown = true;
	}
	return unknown;
}

/* A private handle on @v's file, for fetches of its own. */
static int private_file(struct rfs_fs *fs, struct rfs_verifier *v,
			struct rfs_file **out)
{
	struct rfs_replicas *reps;
	int rc;

	pthread_mutex_lock(&v->lock);
	reps = v->reps ? rfs_replicas_get(v->reps) : NULL;
	pthread_mutex_unlock(&v->lock);
	if (!reps)
		return -ENOENT;
	/* it finds @v in the table, and holds it like any handle */
	rc = rfs_fs_file_of(fs, v->who, &v->rec, reps, out);
	rfs_replicas_put(reps);
	return rc;
}

/*
 * The @size bytes of @id the cache holds, summed in order through @buf
 * (a block's room) against @adler32 and @md5: 0, -EBADMSG (@why says
 * how), -ENOENT when a block is missing.
 */
static int sum_cached(struct rfs_fs *fs, const struct rfs_cache_id *id,
		      uint64_t size, const char *adler32, const char *md5,
		      char *buf, char *why, size_t len)
{
	uint32_t bs = (uint32_t)fs->bs, adler;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int rc = md && sum_init(md, &adler) ? 0 : -ENOMEM;

	for (uint64_t pos = 0; !rc && pos < size;) {
		size_t n = size - pos < bs ? (size_t)(size - pos) : bs;

		rc = rfs_cache_peek(fs->cache, id, pos / bs, buf, n);
		/* a block that failed its CRC32Cs was dropped: damaged */
		rc = rc == -EBADMSG ? -EIO : rc == -EINVAL ? -ENOENT : rc;
		if (!rc)
			sum_add(md, &adler, buf, n);
		pos += n;
	}
	if (!rc && !sums_match(adler32, md5, adler, md, why, len))
		rc = -EBADMSG;
	EVP_MD_CTX_free(md);
	return rc;
}

static bool cache_matches(struct rfs_fs *fs, struct rfs_verifier *v, char *buf)
{
	char why[256];

	return sum_cached(fs, &v->cid, v->size, v->adler32, v->md5, buf, why,
			  sizeof(why)) == 0;
}

/*
 * The hypothesis that source @s lied: its blocks are dropped and fetched
 * again from the other replicas; if the whole then matches, it did.
 */
static bool test_suspect(struct rfs_fs *fs, struct rfs_verifier *v,
			 struct rfs_file *f, size_t s, char *buf)
{
	uint64_t nb = (v->size + v->bs - 1) / v->bs;
	struct rfs_how how = { .pick = RFS_PICK_BEST, .background = true };
	int rc = 0;

	for (uint64_t i = 0; i < nb; i++) {
		pthread_mutex_lock(&v->lock);
		rc = v->src && v->src[i] == s + 1;
		pthread_mutex_unlock(&v->lock);
		if (rc)
			rfs_cache_drop_block(fs->cache, &v->cid, i);
	}
	rfs_cache_flush(fs->cache);
	how.exclude = v->urls[s];
	rc = 0;
	for (uint64_t i = 0; !rc && i < nb; i++) {
		if (rfs_cache_has(fs->cache, &v->cid, i))
			continue;
		how.deadline = rfs_mono_now() + fs->conf->read_timeout;
		rc = rfs_blocks_fetch_retry(fs, &f->t, i, 1, buf, &how);
		rc = rc < 0 ? rc : 0;
	}
	rfs_cache_flush(fs->cache);
	return !rc && cache_matches(fs, v, buf);
}

/*
 * Which of several sources lied: each suspect in turn (the one that served
 * most first) has its blocks fetched again from the others. Returns the
 * liar's index, or -1 when no single one explains it.
 */
static int find_liar(struct rfs_fs *fs, struct rfs_verifier *v,
		     const size_t *count)
{
	char *buf = rfs_cache_buf_alloc(v->bs);
	bool *tried = calloc(v->nurls ? v->nurls : 1, sizeof(*tried));
	struct rfs_file *f = NULL;
	int liar = -1;

	if (!buf || !tried || private_file(fs, v, &f))
		goto out;
	for (int round = 0; round < SUSPECTS_MAX && liar < 0; round++) {
		size_t best = v->nurls;

		for (size_t i = 0; i < v->nurls; i++)
			if (count[i] && !tried[i] &&
			    (best == v->nurls || count[i] > count[best]))
				best = i;
		if (best == v->nurls)
			break;
		tried[best] = true;
		if (test_suspect(fs, v, f, best, buf))
			liar = (int)best;
	}
out:
	if (f)
		rfs_fs_release(fs, f);
	free(tried);
	rfs_cache_buf_free(buf);
	return liar;
}

/* The sources of @v's blocks, for a log line. */
static void list_sources(char *out, size_t len, const struct rfs_verifier *v,
			 const size_t *count, bool unknown)
{
	char one[300];

	out[0] = '\0';
	for (size_t i = 0; i < v->nurls; i++) {
		if (!count[i])
			continue;
		name_source(one, sizeof(one), v, i);
		snprintf(out + strlen(out), len - strlen(out), "%s%s",
			 out[0] ? ", " : "", one);
	}
	if (unknown)
		snprintf(out + strlen(out), len - strlen(out), "%s%s",
			 out[0] ? ", " : "", "the cache (fetched earlier)");
}

/*
 * What a mismatch leaves: who is blamed, what is dropped. True when the
 * liar was found and its blocks replaced: the cache then holds a file
 * that matches.
 */
static bool settle(struct rfs_fs *fs, struct rfs_verifier *v,
		   const size_t *count, bool unknown, const char *why)
{
	char srcs[1024], liar[300];
	size_t nsrc = 0, one = 0;
	int found = -1;

	for (size_t i = 0; i < v->nurls; i++)
		if (count[i]) {
			nsrc++;
			one = i;
		}
	list_sources(srcs, sizeof(srcs), v, count, unknown);
	if (nsrc == 1 && !unknown) {
		found = (int)one;
	} else if (nsrc && nsrc + unknown > 1 && fs->cache) {
		rfs_event(LOG_ERR, "checksum-mismatch",
			  "'%s' does not match the catalogue (%s); its blocks "
			  "came from %s: finding which replica lied",
			  v->did, why, srcs);
		found = find_liar(fs, v, count);
		if (found >= 0) {
			name_source(liar, sizeof(liar), v, (size_t)found);
			pthread_mutex_lock(&v->lock);
			demote(v, v->urls[found], time(NULL));
			pthread_mutex_unlock(&v->lock);
			save_demotions(fs, v);
			rfs_log(LOG_ERR,
				"verify '%s': %s lied: its blocks, fetched "
				"again from the other replicas, make the file "
				"match; it is tried last for this file",
				v->did, liar);
			return true;
		}
	}
	if (found >= 0) {
		name_source(liar, sizeof(liar), v, (size_t)found);
		rfs_event(LOG_ERR, "checksum-mismatch",
			  "'%s' does not match the catalogue (%s); served by "
			  "%s: its blocks are dropped and it is tried last for "
			  "this file",
			  v->did, why, liar);
	} else if (!nsrc) {
		rfs_event(LOG_ERR, "checksum-mismatch",
			  "'%s' does not match the catalogue (%s); its blocks "
			  "were fetched before this mount: they are dropped "
			  "and fetched again",
			  v->did, why);
	} else {
		rfs_event(LOG_ERR, "checksum-mismatch",
			  "'%s' does not match the catalogue (%s); blocks from "
			  "%s; no single replica explains it: the file's "
			  "blocks are dropped and those replicas tried last "
			  "for this file",
			  v->did, why, srcs);
	}
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nurls; i++)
		if (count[i] && (found < 0 || (size_t)found == i))
			demote(v, v->urls[i], time(NULL));
	pthread_mutex_unlock(&v->lock);
	save_demotions(fs, v);
	if (fs->cache)
		rfs_cache_drop_file(fs->cache, &v->cid);
	return false;
}

static void mismatch(struct rfs_fs *fs, struct rfs_verifier *v, unsigned gen,
		     const char *why)
{
	size_t *count;
	bool unknown, healed = false;

	pthread_mutex_lock(&v->lock);
	if (v->gen != gen || v->state != V_SUMMING) {
		pthread_mutex_unlock(&v->lock);
		return;
	}
	/* from now on the readers of this generation fail */
	v->state = V_CHECKING;
	v->bad_gen = gen;
	v->stale_pages = true;
	pthread_cond_broadcast(&v->cv);
	count = calloc(v->nurls ? v->nurls : 1, sizeof(*count));
	unknown = count ? count_sources(v, count) : true;
	pthread_mutex_unlock(&v->lock);
	if (count)
		healed = settle(fs, v, count, unknown, why);
	else if (fs->cache)
		rfs_cache_drop_file(fs->cache, &v->cid);
	free(count);
	/* the file that matches now is for the next reader, not for those
	 * of the generation that did not */
	if (healed)
		rfs_cache_mark_verified(fs->cache, &v->cid, v->size);
	pthread_mutex_lock(&v->lock);
	new_generation(v);
	v->state = healed ? V_GOOD : V_SUMMING;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->lock);
}

/* ---- the handles' side ---- */

int rfs_verify_attach(struct rfs_fs *fs, struct rfs_file *f)
{
	struct rfs_verify *vp = fs->verify;
	struct rfs_cache_info ci;
	struct rfs_verifier *v, *made = NULL;
	bool fresh = false;

	f->t.v = NULL;
	if (!vp || (!f->t.did.adler32[0] && !f->t.did.md5[0]))
		return 0;
	for (;;) {
		pthread_mutex_lock(&fs->verify_lock);
		v = find_verifier(vp, &f->t.cid);
		if (!v && made) {
			v = made;
			v->refs = 1;
			v->hnext = vp->table[bucket_of(&v->cid)];
			vp->table[bucket_of(&v->cid)] = v;
			made = NULL;
			fresh = true;
		}
		pthread_mutex_unlock(&fs->verify_lock);
		if (v)
			break;
		made = new_verifier(fs, f);
		if (!made)
			return -ENOMEM;
	}
	if (made)
		free_verifier(made);
	pthread_mutex_lock(&v->lock);
	if (v->reps != f->t.reps && f->t.reps->n) {
		if (v->reps)
			rfs_replicas_put(v->reps);
		v->reps = rfs_replicas_get(f->t.reps);
	}
	pthread_mutex_unlock(&v->lock);
	f->t.v = v;
	if (fresh && fs->cache)
		load_demotions(fs, v);
	if (!fresh || !fs->cache ||
	    rfs_cache_file_info(fs->cache, &f->t.cid, &ci))
		return 0;
	/* checked before (this mount or an earlier one): nothing to sum;
	 * stored whole but not checked (an older version's cache): now */
	if (ci.verified) {
		pthread_mutex_lock(&v->lock);
		v->state = V_GOOD;
		pthread_mutex_unlock(&v->lock);
	} else if (ci.whole) {
		poke(fs, v);
	}
	return 0;
}

void rfs_verify_share(struct rfs_fs *fs, struct rfs_target *to,
		      const struct rfs_target *from)
{
	to->v = from->v;
	if (!to->v)
		return;
	/* @from holds it: it is in the table, with refs */
	pthread_mutex_lock(&fs->verify_lock);
	to->v->refs++;
	pthread_mutex_unlock(&fs->verify_lock);
}

void rfs_verify_unshare(struct rfs_fs *fs, struct rfs_target *t)
{
	if (t->v)
		put_verifier(fs, t->v);
	t->v = NULL;
}

void rfs_verify_detach(struct rfs_fs *fs, struct rfs_file *f)
{
	rfs_verify_unshare(fs, &f->t);
	free(f->seen);
	f->seen = NULL;
}

/* Blocks of a file of @size in blocks of @bs: a handle's map of them. */
static uint64_t *seen_map(uint64_t size, uint32_t bs)
{
	uint64_t nb = (size + bs - 1) / bs;

	/* past 2^24 blocks (16 TiB of 1 MiB) the map is not kept: such
	 * a reader's holes are not filled for the sums */
	return nb && nb <= (1u << 24) ? calloc((nb + 63) / 64, 8) : NULL;
}

static void note_seen(struct rfs_file *f, uint64_t first, uint64_t last);

int rfs_verify_before_read(struct rfs_fs *fs, struct rfs_file *f, uint64_t off,
			   size_t len, double deadline)
{
	struct rfs_verifier *v = f->t.v;
	int rc = 0;

	if (!v)
		return 0;
	pthread_mutex_lock(&v->lock);
	while (v->state == V_CHECKING && !rc)
		rc = rfs_cond_wait_until(&v->cv, &v->lock, deadline);
	if (f->vgen && f->vgen <= v->bad_gen)
		rc = -EIO;
	else if (!f->vgen)
		f->vgen = v->gen;
	if (!rc && !f->seen)
		f->seen = seen_map(v->size, v->bs);
	pthread_mutex_unlock(&v->lock);
	if (rc)
		return -EIO;
	/* noted before the bytes come: a read that ends the file may
	 * be answered first, and must know this one is coming */
	if (len)
		note_seen(f, off / v->bs, (off + len - 1) / v->bs);
	if (!fs->cache)
		__atomic_add_fetch(&v->reading, 1, __ATOMIC_RELAXED);
	return 0;
}

/* Notes blocks [@first, @last] as served to @f. */
static void note_seen(struct rfs_file *f, uint64_t first, uint64_t last)
{
	for (uint64_t b = first; f->seen && b <= last; b++) {
		uint64_t bit = 1ull << (b % 64);

		if (!(__atomic_fetch_or(&f->seen[b / 64], bit,
					__ATOMIC_RELAXED) &
		      bit))
			__atomic_add_fetch(&f->nseen, 1, __ATOMIC_RELAXED);
	}
}

static bool saw(const struct rfs_file *f, uint64_t b)
{
	return f->seen &&
	       (__atomic_load_n(&f->seen[b / 64], __ATOMIC_RELAXED) >>
		(b % 64)) &
		       1;
}

/* Without a cache: @len bytes at @off for the worker, once it needs
 * them; waits for room (the sums keep pace) until @deadline. */
static void hand_over(struct rfs_fs *fs, struct rfs_verifier *v, uint64_t off,
		      const void *buf, size_t len, double deadline, bool wait)
{
	struct piece *p;

	pthread_mutex_lock(&v->lock);
	/* room comes as the sums go on (not while they wait for a block):
	 * a background fetch keeps pace with them, a reader does not wait */
	while (wait && !v->given_up && !v->stalled && v->state == V_SUMMING &&
	       off + len > v->next &&
	       (v->piece_bytes + len > PIECES_MAX ||
		off >= v->next + PIECES_MAX))
		if (rfs_cond_wait_until(&v->cv, &v->lock, deadline))
			wait = false;
	/* only what the sums need soon: a copy far ahead is read back
	 * from the cache when they get there */
	if (v->given_up || v->state != V_SUMMING || off + len <= v->next ||
	    off >= v->next + PIECES_MAX || v->piece_bytes + len > PIECES_MAX) {
		/* without a cache, a copy not kept cannot be summed */
		if (!fs->cache && off + len > v->next && v->state == V_SUMMING)
			v->given_up = true;
		pthread_mutex_unlock(&v->lock);
		return;
	}
	p = malloc(sizeof(*p) + len);
	if (p) {
		p->off = off;
		p->len = len;
		memcpy(p->data, buf, len);
		p->next = v->pieces;
		v->pieces = p;
		v->piece_bytes += len;
	} else if (!fs->cache) {
		v->given_up = true;
	}
	pthread_mutex_unlock(&v->lock);
	poke(fs, v);
}

void rfs_verify_offer(struct rfs_fs *fs, struct rfs_target *f, uint64_t off,
		      const struct iovec *iov, int n, bool wait,
		      double deadline)
{
	for (int i = 0; f->v && i < n; i++) {
		if (iov[i].iov_len)
			hand_over(fs, f->v, off, iov[i].iov_base,
				  iov[i].iov_len, deadline, wait);
		off += iov[i].iov_len;
	}
}

/* Fetches block @idx of @f again (served, but its copy never reached
 * the cache) so the sums can go on. */
static int refill(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		  double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST,
			       .deadline = deadline,
			       .background = true };
	char *buf = rfs_cache_buf_alloc(f->t.v->bs);
	int rc = buf ? rfs_blocks_fetch_retry(fs, &f->t, idx, 1, buf, &how)
		     : -ENOMEM;

	rfs_cache_buf_free(buf);
	return rc < 0 ? rc : 0;
}

/*
 * Waits for the verdict on the generation @f was served: 0 when it
 * matched or cannot be summed whole by what this reader read, -EIO when
 * it did not match. Progress is what is waited for: no sum moving for
 * read_timeout is an error.
 */
static int await_verdict(struct rfs_fs *fs, struct rfs_file *f)
{
	struct rfs_verifier *v = f->t.v;
	double limit = rfs_mono_now() + fs->conf->read_timeout;
	uint64_t seen_next = UINT64_MAX;
	int rc = 1;

	pthread_mutex_lock(&v->lock);
	while (rc == 1) {
		bool idle = !v->busy;

		if (f->vgen <= v->bad_gen) {
			rc = -EIO;
		} else if (v->state == V_GOOD || v->given_up) {
			rc = 0;
		} else if (v->state == V_SUMMING && idle && v->stalled &&
			   fs->cache && saw(f, v->next / v->bs)) {
			uint64_t idx = v->next / v->bs;

			pthread_mutex_unlock(&v->lock);
			rc = refill(fs, f, idx, limit) ? -EIO : 1;
			poke(fs, v);
			pthread_mutex_lock(&v->lock);
		} else if (v->state == V_SUMMING && idle && v->stalled) {
			rc = 0; /* this reader did not read it all */
		} else {
			if (v->next != seen_next) {
				seen_next = v->next;
				limit = rfs_mono_now() + fs->conf->read_timeout;
			}
			if (rfs_cond_wait_until(&v->cv, &v->lock, limit))
				rc = -ETIMEDOUT;
		}
	}
	pthread_mutex_unlock(&v->lock);
	if (rc == -ETIMEDOUT)
		rfs_log_limited(LOG_ERR, v->did,
				"verify '%s': the check of the whole file made "
				"no progress for %.0f s; the read fails",
				v->did, fs->conf->read_timeout);
	return rc ? -EIO : 0;
}

/* The verdict if it is in already (0 or -EIO), else RFS_WOULD_BLOCK. */
static int verdict_now(struct rfs_file *f)
{
	struct rfs_verifier *v = f->t.v;
	int rc = RFS_WOULD_BLOCK;

	pthread_mutex_lock(&v->lock);
	if (f->vgen <= v->bad_gen)
		rc = -EIO;
	else if (v->state == V_GOOD || v->given_up)
		rc = 0;
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int rfs_verify_after_read(struct rfs_fs *fs, struct rfs_file *f, uint64_t off,
			  const void *buf, size_t len, double deadline,
			  bool nowait)
{
	struct rfs_verifier *v = f->t.v;

	if (!v)
		return 0;
	if (!fs->cache && len)
		hand_over(fs, v, off, buf, len, deadline, true);
	if (!fs->cache)
		__atomic_sub_fetch(&v->reading, 1, __ATOMIC_RELAXED);
	if (!len || off + len < v->size)
		return 0;
	if (!sum_here(fs, v, off, buf, len))
		poke(fs, v);
	return nowait ? verdict_now(f) : await_verdict(fs, f);
}

/* Whether @f's verifier is in @state now (@none: when it has none). */
static bool in_state(const struct rfs_file *f, enum vstate state, bool none)
{
	struct rfs_verifier *v = f->t.v;
	bool yes;

	if (!v)
		return none;
	pthread_mutex_lock(&v->lock);
	yes = v->state == state;
	pthread_mutex_unlock(&v->lock);
	return yes;
}

bool rfs_verify_busy(const struct rfs_file *f)
{
	return in_state(f, V_CHECKING, false);
}

bool rfs_verify_is_good(const struct rfs_file *f)
{
	return in_state(f, V_GOOD, true);
}

/* Under v->lock: the index of @s among @v's sources, added if new. */
static uint16_t source_index(struct rfs_verifier *v, const struct rfs_source *s)
{
	char **nu, **nr;

	for (size_t i = 0; i < v->nurls; i++)
		if (!strcmp(v->urls[i], s->url))
			return (uint16_t)(i + 1);
	if (v->nurls >= SOURCES_MAX)
		return 0;
	nu = realloc(v->urls, (v->nurls + 1) * sizeof(*nu));
	if (nu)
		v->urls = nu;
	nr = realloc(v->rses, (v->nurls + 1) * sizeof(*nr));
	if (nr)
		v->rses = nr;
	if (!nu || !nr)
		return 0;
	v->urls[v->nurls] = strdup(s->url);
	v->rses[v->nurls] = strdup(s->rse);
	if (!v->urls[v->nurls] || !v->rses[v->nurls]) {
		free(v->urls[v->nurls]);
		free(v->rses[v->nurls]);
		return 0;
	}
	return (uint16_t)++v->nurls;
}

/* Under v->lock: blocks @idx..@idx + @n - 1 came from @src. */
static void note_source(struct rfs_verifier *v, uint64_t idx, size_t n,
			const struct rfs_source *src)
{
	uint64_t nb = (v->size + v->bs - 1) / v->bs;
	uint16_t s;

	if (!v->src && nb)
		v->src = calloc(nb, sizeof(*v->src));
	s = src ? source_index(v, src) : 0;
	for (uint64_t i = idx; v->src && i < idx + n && i < nb; i++)
		v->src[i] = s;
}

void rfs_verify_source(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
		       size_t n, const struct rfs_source *src)
{
	struct rfs_verifier *v = f->v;

	(void)fs;
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	/* a checked file's next generation starts in rfs_verify_fetched */
	if (v->state != V_GOOD)
		note_source(v, idx, n, src);
	pthread_mutex_unlock(&v->lock);
}

void rfs_verify_fetched(struct rfs_fs *fs, struct rfs_target *f, uint64_t idx,
			size_t n, const struct rfs_source *src)
{
	struct rfs_verifier *v = f->v;

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	/* checked, then a block came again (evicted, dropped): a new
	 * generation of bytes, checked anew */
	if (v->state == V_GOOD) {
		new_generation(v);
		v->state = V_SUMMING;
	}
	note_source(v, idx, n, src);
	pthread_mutex_unlock(&v->lock);
	poke(fs, v);
}

bool rfs_verify_demoted(const struct rfs_target *f, const char *url)
{
	struct rfs_verifier *v = f->v;
	bool yes = false;

	if (!v || !__atomic_load_n(&v->ndemoted, __ATOMIC_RELAXED))
		return false;
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->ndemoted && !yes; i++)
		yes = !strcmp(v->demoted[i].url, url);
	pthread_mutex_unlock(&v->lock);
	return yes;
}

bool rfs_verify_keep_pages(struct rfs_fs *fs, struct rfs_file *f)
{
	struct rfs_verifier *v = f->t.v;
	bool keep;

	if (!v)
		return true;
	pthread_mutex_lock(&v->lock);
	keep = !v->stale_pages;
	v->stale_pages = false;
	pthread_mutex_unlock(&v->lock);
	return keep;
}

/* Every block of @f not cached, fetched (spread over the replicas). */
static int fetch_all(struct rfs_fs *fs, struct rfs_file *f)
{
	uint64_t bs = fs->bs;
	uint64_t nb = rfs_nblocks(fs, f->t.reps->size);
	struct rfs_how how = { .pick = RFS_PICK_SPREAD, .background = true };
	char *buf = rfs_cache_buf_alloc(RFS_RUN_MAX * bs);
	int rc = buf ? 0 : -ENOMEM;

	for (uint64_t i = 0; !rc && i < nb;) {
		bool stored;
		size_t n = rfs_blocks_run(fs, &f->t, i, RFS_RUN_MAX, SIZE_MAX,
					  &stored, NULL);

		if (stored) {
			i += n;
			continue;
		}
		how.deadline = rfs_mono_now() + fs->conf->read_timeout;
		rc = rfs_blocks_fetch_retry(fs, &f->t, i, n, buf, &how);
		i += rc > 0 ? (uint64_t)rc : 0;
		rc = rc < 0 ? rc : 0;
	}
	rfs_cache_buf_free(buf);
	return rc;
}

int rfs_verify_whole(struct rfs_fs *fs, struct rfs_file *f)
{
	struct rfs_verifier *v = f->t.v;
	int rc = 0;

	if (!v || !fs->cache)
		return 0;
	/* each round that fails demotes a liar; one more than the
	 * replicas is enough for every one of them to have been tried */
	for (size_t round = 0; round <= f->t.reps->n; round++) {
		pthread_mutex_lock(&v->lock);
		while (v->state == V_CHECKING)
			pthread_cond_wait(&v->cv, &v->lock);
		f->vgen = v->gen;
		rc = v->state == V_GOOD ? 1 : 0;
		pthread_mutex_unlock(&v->lock);
		if (rc)
			return 0;
		rc = fetch_all(fs, f);
		if (rc)
			return rc;
		/* the sums fill a hole only where the waiting handle saw
		 * the block: this one sees them all */
		if (!f->seen)
			f->seen = seen_map(v->size, v->bs);
		note_seen(f, 0, (v->size + v->bs - 1) / v->bs - 1);
		poke(fs, v);
		rc = await_verdict(fs, f);
		if (!rc)
			return 0;
	}
	rfs_log_limited(LOG_ERR, v->did,
			"verify '%s': no replica gives bytes that match the "
			"catalogue's checksums",
			v->did);
	return -EIO;
}

void rfs_verify_counts(struct rfs_fs *fs, uint64_t *good, uint64_t *bad)
{
	*good = *bad = 0;
	if (!fs->verify)
		return;
	pthread_mutex_lock(&fs->verify_lock);
	*good = fs->verify->good;
	*bad = fs->verify->bad;
	pthread_mutex_unlock(&fs->verify_lock);
}

int rfs_verify_start(struct rfs_fs *fs)
{
	struct rfs_verify *vp = calloc(1, sizeof(*vp));

	if (!vp)
		return -ENOMEM;
	pthread_cond_init(&vp->wake, NULL);
	fs->verify = vp;
	for (; vp->nworkers < VERIFY_WORKERS; vp->nworkers++)
		if (pthread_create(&vp->workers[vp->nworkers], NULL,
				   worker_main, fs))
			break;
	return vp->nworkers ? 0 : -EAGAIN;
}

void rfs_verify_stop(struct rfs_fs *fs)
{
	struct rfs_verify *vp = fs->verify;

	if (!vp)
		return;
	pthread_mutex_lock(&fs->verify_lock);
	vp->stop = true;
	pthread_cond_broadcast(&vp->wake);
	pthread_mutex_unlock(&fs->verify_lock);
	for (int i = 0; i < vp->nworkers; i++)
		pthread_join(vp->workers[i], NULL);
	for (size_t b = 0; b < VT_BUCKETS; b++)
		while (vp->table[b]) {
			struct rfs_verifier *v = vp->table[b];

			vp->table[b] = v->hnext;
			free_verifier(v);
		}
	pthread_cond_destroy(&vp->wake);
	free(vp);
	fs->verify = NULL;
}

int rfs_verify_cached(struct rfs_fs *fs, const struct rfs_cache_id *id,
		      uint64_t size, const char *adler32, const char *md5,
		      char *why, size_t len)
{
	char *buf = rfs_cache_buf_alloc(fs->bs);
	int rc = buf ? sum_cached(fs, id, size, adler32, md5, buf, why, len)
		     : -ENOMEM;

	rfs_cache_buf_free(buf);
	return rc;
}

void rfs_verify_forget(struct rfs_fs *fs, const struct rfs_cache_id *id)
{
	struct rfs_verifier *v;

	if (!fs->verify)
		return;
	pthread_mutex_lock(&fs->verify_lock);
	v = find_verifier(fs->verify, id);
	pthread_mutex_unlock(&fs->verify_lock);
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	if (v->state == V_GOOD) {
		new_generation(v);
		v->state = V_SUMMING;
	}
	v->stale_pages = true;
	pthread_mutex_unlock(&v->lock);
	put_verifier(fs, v);
}
