/*
 * Sparse reads grouped into vector reads. FUSE hands the daemon one read
 * per thread, so a sparse reader (ROOT's TTreeCache, or many threads of
 * one job) shows up as many small misses, far apart, at once. Each miss
 * of an open file that must go to the network joins the file's batch:
 * the first one in leads it, the others wait for it. The leader sends at
 * once when it is alone (a lone random reader pays nothing); when other
 * misses of the file are pending it waits until as many have come as
 * were pending when the last batch went, or GATHER_WAIT at most: the
 * threads a batch's answer wakes come back together, and a wave of
 * readers rides in one batch. It never waits for a batch to land (that
 * costs a round trip, which ungrouped reads would not pay). The batch goes
 * out as one vector read to one replica, failing over like any read;
 * where the replica cannot take one, every miss is read on its own, in
 * its own thread, as before.
 *
 * Only the asked pages travel, not whole cache blocks: with 1 MiB blocks
 * a sparse reader wants a few KiB of each, and fetching whole blocks
 * would move hundreds of times the bytes asked. As for any such small
 * read (readpath.c), nothing is stored: the block's next read fetches it
 * whole, verified and kept.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/file.h"
#include "core/gather.h"
#include "core/replicas.h"
#include "util/banned.h"

/* seconds a leader waits at most for company, and at most this share of
 * what the file's batches took lately: on a fast link waiting must not
 * cost more than a round trip saves */
#define GATHER_WAIT 0.0005
#define GATHER_WAIT_SHARE 0.25
/* misses in one batch at most */
#define GATHER_MAX 256

/* One waiting miss, on its thread's stack until done. */
struct gitem {
	uint64_t off;
	size_t len;
	char *buf;
	int rc;
	bool done;
	struct gitem *next;
};

/* An open file's misses, under fs->gather_lock. */
struct rfs_gather {
	const struct rfs_file *file;
	struct gitem *head; /* the batch being filled */
	size_t n;
	bool open;	  /* its leader is waiting */
	unsigned sending; /* batches on the wire */
	size_t on_wire;	  /* misses in them */
	size_t peak;	  /* most misses pending at once lately */
	unsigned users;	  /* threads in here */
	/* its leader waits on @joined, signalled by each who joins; the
	 * others on @landed: no thread is woken for another's reason */
	pthread_cond_t joined, landed;
	struct rfs_gather *next;
};

/* Under gather_lock; NULL when out of memory. */
static struct rfs_gather *gather_get(struct rfs_fs *fs,
				     const struct rfs_file *file)
{
	struct rfs_gather *g = fs->gathers;

	while (g && g->file != file)
		g = g->next;
	if (!g) {
		g = calloc(1, sizeof(*g));
		if (!g)
			return NULL;
		g->file = file;
		pthread_cond_init(&g->joined, NULL);
		pthread_cond_init(&g->landed, NULL);
		g->next = fs->gathers;
		fs->gathers = g;
	}
	g->users++;
	return g;
}

/* Under gather_lock. */
static void gather_put(struct rfs_fs *fs, struct rfs_gather *g)
{
	struct rfs_gather **pp = &fs->gathers;

	if (--g->users)
		return;
	while (*pp != g)
		pp = &(*pp)->next;
	*pp = g->next;
	pthread_cond_destroy(&g->joined);
	pthread_cond_destroy(&g->landed);
	free(g);
}

/* The miss on its own: one range request, as every read did before. */
static int read_alone(struct rfs_fs *fs, struct rfs_file *file,
		      struct gitem *it, double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	struct iovec iov = { it->buf, it->len };
	ssize_t got =
		rfs_replicas_readv(fs, &file->t, &iov, 1, it->off, &how, NULL);

	return got == (ssize_t)it->len ? 0 : got < 0 ? (int)got : -EIO;
}

static int by_off(const void *a, const void *b)
{
	const struct gitem *x = *(struct gitem *const *)a;
	const struct gitem *y = *(struct gitem *const *)b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/*
 * The @n sorted misses of @v as segments into @segs: overlapping or
 * touching ones merged (two threads may want the same page), each into a
 * buffer of its own. Returns how many segments, 0 when out of memory.
 */
static size_t make_segs(struct gitem **v, size_t n, struct rfs_tseg *segs)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t end = v[i]->off + v[i]->len;
		struct rfs_tseg *s = k ? &segs[k - 1] : NULL;

		if (s && v[i]->off <= s->off + s->len) {
			if (end > s->off + s->len)
				s->len = (size_t)(end - s->off);
			continue;
		}
		segs[k++] = (struct rfs_tseg){ v[i]->off, v[i]->len, NULL };
	}
	for (size_t i = 0; i < k; i++) {
		segs[i].buf = malloc(segs[i].len);
		if (!segs[i].buf) {
			while (i--)
				free(segs[i].buf);
			return 0;
		}
	}
	return k;
}

/* Each miss's bytes from the segment that holds them. */
static void scatter(struct gitem **v, size_t n, const struct rfs_tseg *segs)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		while (v[i]->off >= segs[k].off + segs[k].len)
			k++;
		memcpy(v[i]->buf,
		       (char *)segs[k].buf + (v[i]->off - segs[k].off),
		       v[i]->len);
	}
}

/* The batch @head of @n misses as one vector read; no lock held. */
static int fetch_batch(struct rfs_fs *fs, struct rfs_file *file,
		       struct gitem *head, size_t n, double deadline)
{
	struct rfs_how how = { .pick = RFS_PICK_BEST, .deadline = deadline };
	struct gitem **v = calloc(n, sizeof(*v));
	struct rfs_tseg *segs = calloc(n, sizeof(*segs));
	size_t k = 0, total = 0;
	ssize_t got = -ENOMEM;

	for (size_t i = 0; v && head; head = head->next)
		v[i++] = head;
	if (v && segs) {
		qsort(v, n, sizeof(*v), by_off);
		k = make_segs(v, n, segs);
	}
	for (size_t i = 0; i < k; i++)
		total += segs[i].len;
	if (k)
		got = rfs_replicas_read_segs(fs, &file->t, segs, k, &how);
	if (k && got == (ssize_t)total)
		scatter(v, n, segs);
	for (size_t i = 0; i < k; i++)
		free(segs[i].buf);
	free(segs);
	free(v);
	/* out of memory: each reads alone, as before */
	return got == (ssize_t)total && k ? 0
	       : got == -ENOMEM		  ? -EOPNOTSUPP
	       : got < 0		  ? (int)got
					  : -EIO;
}

/* Under gather_lock: whether the leader of @g sends its batch now. */
static bool batch_ready(struct rfs_gather *g, double *until, double deadline)
{
	double now = rfs_mono_now(), wait = GATHER_WAIT;
	double secs = g->file->gather_secs * GATHER_WAIT_SHARE;

	if (g->n >= GATHER_MAX || (deadline && now >= deadline))
		return true;
	if (!g->sending && g->peak <= 1)
		return true; /* a lone reader: no one to wait for */
	if (g->peak > 1 && g->n + g->on_wire >= g->peak)
		return true; /* every reader pending last time is in */
	if (!*until)
		*until = now + (secs > 0 && secs < wait ? secs : wait);
	return now >= *until;
}

/*
 * Under gather_lock, which it drops while the batch is on the wire: the
 * leader's part. Waits for company as batch_ready says, sends the batch,
 * and marks every miss in it done.
 */
static void lead(struct rfs_fs *fs, struct rfs_file *file, struct rfs_gather *g,
		 double deadline)
{
	double until = 0, t0;
	struct gitem *head;
	size_t n;
	int rc;

	while (!batch_ready(g, &until, deadline))
		rfs_cond_wait_until(&g->joined, &fs->gather_lock, until);
	/* what was pending when the batch went: the next one's measure,
	 * so it grows with the readers and falls when they go */
	g->peak = g->n + g->on_wire;
	head = g->head;
	n = g->n;
	g->head = NULL;
	g->n = 0;
	g->open = false; /* the next miss leads the next batch */
	g->sending++;
	g->on_wire += n;
	pthread_mutex_unlock(&fs->gather_lock);

	t0 = rfs_mono_now();
	rc = n == 1 ? read_alone(fs, file, head, deadline)
		    : fetch_batch(fs, file, head, n, deadline);

	pthread_mutex_lock(&fs->gather_lock);
	t0 = rfs_mono_now() - t0;
	file->gather_secs =
		file->gather_secs > 0 ? 0.7 * file->gather_secs + 0.3 * t0 : t0;
	g->sending--;
	g->on_wire -= n;
	for (; head; head = head->next) {
		head->rc = rc;
		head->done = true;
	}
	pthread_cond_broadcast(&g->landed);
}

int rfs_gather_read(struct rfs_fs *fs, struct rfs_file *file, char *buf,
		    uint64_t off, size_t len, double deadline)
{
	struct gitem me = { .off = off, .len = len, .buf = buf };
	struct rfs_gather *g = NULL;
	int rc;

	if (fs->conf->vector_reads && rfs_replicas_can_vector(file->t.reps)) {
		pthread_mutex_lock(&fs->gather_lock);
		g = gather_get(fs, file);
		if (!g)
			pthread_mutex_unlock(&fs->gather_lock);
	}
	if (!g)
		return read_alone(fs, file, &me, deadline);
	me.next = g->head;
	g->head = &me;
	g->n++;
	if (g->open) {
		/* its leader counts again; the wait is bounded by the
		 * leader's deadline, which every fetch honours */
		pthread_cond_signal(&g->joined);
		while (!me.done)
			pthread_cond_wait(&g->landed, &fs->gather_lock);
	} else {
		g->open = true;
		lead(fs, file, g, deadline);
	}
	rc = me.rc;
	gather_put(fs, g);
	pthread_mutex_unlock(&fs->gather_lock);
	/* no replica whose turn it was takes vector reads */
	return rc == -EOPNOTSUPP ? read_alone(fs, file, &me, deadline) : rc;
}
