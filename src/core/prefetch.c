/*
 * Read-ahead for sequential readers: a first or random read fetches only
 * its own blocks (one round trip, nothing more); each read that follows
 * the previous one doubles a window ahead of the reader (up to
 * PF_WINDOW_MAX bytes), cut into runs of consecutive missing blocks of up
 * to PF_RUN_BYTES that a few workers fetch in parallel, one range request
 * per run, on their own kept-alive connections, from replicas drawn by
 * speed. A reader that reaches a block being fetched waits for that fetch
 * instead of starting another (blocks.c). Blocks of the window that are
 * stored already are staged instead: the same workers read them from the
 * disk into memory, a run per read, since readers read the cache's block
 * files directly, without the kernel's read-ahead (cache/stage.c).
 * Memory is bounded: at most PF_QUEUE_BYTES queued or in flight for all
 * files.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/file.h"
#include "core/prefetch.h"
#include "core/readpath.h"
#include "core/replicas.h"
#include "core/verify.h"
#include "util/banned.h"

#define PF_WORKERS 4
#define PF_WINDOW_MAX (32u << 20)
#define PF_RUN_BYTES (4u << 20)
#define PF_QUEUE_BYTES (64u << 20)

struct pf_job {
	struct rfs_target t; /* its own: references taken */
	uint64_t idx;	     /* a run of @n blocks from @idx */
	size_t n;
	size_t bytes;
	bool disk; /* stored: staged from the disk, not fetched */
	struct pf_job *next;
};

struct rfs_prefetch {
	pthread_t workers[PF_WORKERS];
	int nworkers;
	/* lock guards the queue; a leaf (taken inside a file's pf_lock),
	 * never held during a fetch */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pf_job *head, *tail;
	size_t pending; /* bytes queued and running */
	bool stop;
};

static void free_job(struct rfs_fs *fs, struct pf_job *j)
{
	rfs_target_release(fs, &j->t);
	free(j);
}

/* Fetches what of the job's run is neither cached nor being fetched. */
static void run_job(struct rfs_fs *fs, struct pf_job *j)
{
	uint64_t idx = j->idx, end = j->idx + j->n;
	struct rfs_how how = { .pick = RFS_PICK_SPREAD,
			       .deadline =
				       rfs_mono_now() + fs->conf->read_timeout,
			       .background = true };

	if (j->disk) {
		uint64_t bad;

		if (rfs_cache_stage(fs->cache, &j->t.cid, j->idx, j->n,
				    j->t.reps->size, &bad))
			rfs_blocks_say_corrupt(&j->t, bad);
		return;
	}
	while (idx < end) {
		int got = 1;

		if (!rfs_cache_has(fs->cache, &j->t.cid, idx))
			got = rfs_blocks_fetch(fs, &j->t, idx,
					       (size_t)(end - idx), NULL, &how);
		if (got < 0)
			break; /* the reader will meet the error itself */
		idx += (uint64_t)got;
	}
}

static void *worker_main(void *arg)
{
	struct rfs_fs *fs = arg;
	struct rfs_prefetch *pf = fs->prefetch;

	pthread_setname_np(pthread_self(), "rfs-fetch");
	pthread_mutex_lock(&pf->lock);
	for (;;) {
		struct pf_job *j;

		while (!pf->head && !pf->stop)
			pthread_cond_wait(&pf->wake, &pf->lock);
		if (pf->stop)
			break;
		j = pf->head;
		pf->head = j->next;
		if (!pf->head)
			pf->tail = NULL;
		pthread_mutex_unlock(&pf->lock);
		run_job(fs, j);
		pthread_mutex_lock(&pf->lock);
		pf->pending -= j->bytes;
		free_job(fs, j);
	}
	pthread_mutex_unlock(&pf->lock);
	return NULL;
}

int rfs_prefetch_start(struct rfs_fs *fs)
{
	struct rfs_prefetch *pf = calloc(1, sizeof(*pf));

	if (!pf)
		return -ENOMEM;
	pthread_mutex_init(&pf->lock, NULL);
	pthread_cond_init(&pf->wake, NULL);
	fs->prefetch = pf;
	for (; pf->nworkers < PF_WORKERS; pf->nworkers++)
		if (pthread_create(&pf->workers[pf->nworkers], NULL,
				   worker_main, fs))
			break;
	return pf->nworkers ? 0 : -EAGAIN;
}

void rfs_prefetch_stop(struct rfs_fs *fs)
{
	struct rfs_prefetch *pf = fs->prefetch;
	struct pf_job *j;

	if (!pf)
		return;
	pthread_mutex_lock(&pf->lock);
	pf->stop = true;
	pthread_cond_broadcast(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	for (int i = 0; i < pf->nworkers; i++)
		pthread_join(pf->workers[i], NULL);
	while ((j = pf->head)) {
		pf->head = j->next;
		free_job(fs, j);
	}
	pthread_cond_destroy(&pf->wake);
	pthread_mutex_destroy(&pf->lock);
	free(pf);
	fs->prefetch = NULL;
}

/* Queues the run of @n blocks from @idx of @f (@bytes) unless the queue
 * is full; false then. */
static bool enqueue(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		    size_t n, size_t bytes, bool disk)
{
	struct rfs_prefetch *pf = fs->prefetch;
	struct pf_job *j;
	bool full;

	pthread_mutex_lock(&pf->lock);
	full = pf->pending + bytes > PF_QUEUE_BYTES || pf->stop;
	if (!full)
		pf->pending += bytes; /* reserved before the allocation */
	pthread_mutex_unlock(&pf->lock);
	if (full)
		return false;
	j = calloc(1, sizeof(*j));
	if (!j || rfs_target_copy(&j->t, &f->t)) {
		free(j);
		pthread_mutex_lock(&pf->lock);
		pf->pending -= bytes;
		pthread_mutex_unlock(&pf->lock);
		return false;
	}
	rfs_verify_share(fs, &j->t, &f->t);
	j->idx = idx;
	j->n = n;
	j->bytes = bytes;
	j->disk = disk;
	pthread_mutex_lock(&pf->lock);
	if (pf->tail)
		pf->tail->next = j;
	else
		pf->head = j;
	pf->tail = j;
	pthread_cond_signal(&pf->wake);
	pthread_mutex_unlock(&pf->lock);
	return true;
}

/* Queues blocks @from..@to of @f as runs: those stored to be staged,
 * the others to be fetched. The last queued. */
static uint64_t queue_runs(struct rfs_fs *fs, struct rfs_file *f, uint64_t from,
			   uint64_t to)
{
	uint64_t bs = fs->bs;
	uint64_t run_max = PF_RUN_BYTES / bs ? PF_RUN_BYTES / bs : 1;
	uint64_t b = from, queued = from - 1;

	if (run_max > RFS_RUN_MAX)
		run_max = RFS_RUN_MAX;
	while (b <= to) {
		bool stored;
		size_t bytes;
		uint64_t n = rfs_blocks_run(
			fs, &f->t, b,
			(size_t)(to - b + 1 < run_max ? to - b + 1 : run_max),
			SIZE_MAX, &stored, &bytes);

		if (!enqueue(fs, f, b, (size_t)n, bytes, stored))
			break;
		b += n;
		queued = b - 1;
	}
	return queued;
}

void rfs_prefetch_after(struct rfs_fs *fs, struct rfs_file *f, uint64_t first,
			uint64_t last)
{
	uint64_t bs = fs->bs, size = f->t.reps->size;
	uint64_t nblocks = rfs_nblocks(fs, size), from, to;
	uint64_t max = PF_WINDOW_MAX / bs ? PF_WINDOW_MAX / bs : 1;

	if (!fs->prefetch || f->t.reps->n == 0)
		return;
	pthread_mutex_lock(&f->pf_lock);
	if (first == f->pf_next || first + 1 == f->pf_next)
		f->pf_run += last >= f->pf_next ? last + 1 - f->pf_next : 0;
	else
		f->pf_run = 0; /* a seek: back to fetching only what is read */
	f->pf_next = last + 1;
	/* 0 for a first read; then the read's size, doubling with each
	 * read that follows on */
	if (!f->pf_run)
		f->pf_window = 0;
	else if (!f->pf_window)
		f->pf_window = last - first + 1;
	else
		f->pf_window *= 2;
	if (f->pf_window > max)
		f->pf_window = max;
	from = f->pf_ahead > last ? f->pf_ahead + 1 : last + 1;
	to = last + f->pf_window < nblocks ? last + f->pf_window : nblocks - 1;
	if (f->pf_window && from <= to)
		f->pf_ahead = queue_runs(fs, f, from, to);
	pthread_mutex_unlock(&f->pf_lock);
}

bool rfs_prefetch_wants_little(struct rfs_file *f, uint64_t idx)
{
	size_t n = sizeof(f->pf_little) / sizeof(f->pf_little[0]);
	bool little;

	pthread_mutex_lock(&f->pf_lock);
	little = idx != f->pf_next && idx + 1 != f->pf_next;
	for (size_t i = 0; little && i < n; i++)
		little = f->pf_little[i] != idx + 1;
	if (little)
		f->pf_little[f->pf_nlittle++ % n] = idx + 1;
	pthread_mutex_unlock(&f->pf_lock);
	return little;
}
