/*
 * Read-ahead for sequential readers: a first or random read fetches only
 * its own block (one round trip, nothing more); each block that follows
 * the previous one doubles a window of blocks (up to PF_WINDOW_MAX) that
 * a few workers fetch in parallel, on their own kept-alive connections,
 * into the cache. A reader that reaches a block being fetched waits for
 * that fetch instead of starting another (blocks.c). Memory is bounded:
 * at most PF_QUEUE_MAX blocks queued or in flight for all files.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fs_int.h"
#include "util/log.h"
#include "util/banned.h"

#define PF_WORKERS 4
#define PF_WINDOW_MAX 16 /* blocks: 16 MiB with 1 MiB blocks */
#define PF_QUEUE_MAX 64

struct pf_job {
	struct rfs_file f; /* a private handle: replicas ref, DID copy */
	uint64_t idx;
	size_t len;
	struct pf_job *next;
};

struct rfs_prefetch {
	pthread_t workers[PF_WORKERS];
	int nworkers;
	/* lock guards the queue; a leaf lock, never held during a fetch */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pf_job *head, *tail;
	int pending; /* queued and running */
	bool stop;
};

static void free_job(struct pf_job *j)
{
	rfs_replicas_put(j->f.reps);
	rfs_did_rec_release(&j->f.did);
	free(j);
}

static void *worker_main(void *arg)
{
	struct rfs_fs *fs = arg;
	struct rfs_prefetch *pf = fs->prefetch;
	char *buf = malloc(fs->conf->block_size);

	pthread_mutex_lock(&pf->lock);
	while (buf) {
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
		if (!rfs_cache_has(fs->cache, &j->f.cid, j->idx))
			rfs_blocks_fetch(fs, &j->f, j->idx, buf, j->len);
		free_job(j);
		pthread_mutex_lock(&pf->lock);
		pf->pending--;
	}
	pthread_mutex_unlock(&pf->lock);
	free(buf);
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
		free_job(j);
	}
	pthread_cond_destroy(&pf->wake);
	pthread_mutex_destroy(&pf->lock);
	free(pf);
	fs->prefetch = NULL;
}

/* Queues block @idx of @f unless the queue is full; false then. */
static bool enqueue(struct rfs_fs *fs, struct rfs_file *f, uint64_t idx,
		    size_t len)
{
	struct rfs_prefetch *pf = fs->prefetch;
	struct pf_job *j;
	bool full;

	pthread_mutex_lock(&pf->lock);
	full = pf->pending >= PF_QUEUE_MAX || pf->stop;
	if (!full)
		pf->pending++; /* reserved before the allocation */
	pthread_mutex_unlock(&pf->lock);
	if (full)
		return false;
	j = calloc(1, sizeof(*j));
	if (!j || rfs_did_rec_copy(&j->f.did, &f->did)) {
		free(j);
		pthread_mutex_lock(&pf->lock);
		pf->pending--;
		pthread_mutex_unlock(&pf->lock);
		return false;
	}
	j->f.reps = rfs_replicas_get(f->reps);
	j->f.cid = f->cid;
	memcpy(j->f.didstr, f->didstr, sizeof(j->f.didstr));
	j->idx = idx;
	j->len = len;
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

void rfs_prefetch_after(struct rfs_fs *fs, struct rfs_file *f, uint64_t first,
			uint64_t last)
{
	uint64_t bs = fs->conf->block_size, size = f->reps->size;
	uint64_t nblocks = (size + bs - 1) / bs, from, to;

	if (!fs->prefetch || f->reps->n == 0)
		return;
	pthread_mutex_lock(&f->pf_lock);
	if (first == f->pf_next || first + 1 == f->pf_next)
		f->pf_run += last >= f->pf_next ? last + 1 - f->pf_next : 0;
	else
		f->pf_run = 0; /* a seek: back to fetching only what is read */
	f->pf_next = last + 1;
	/* 0 for a first read; 1, 2, 4... blocks once reads follow on */
	f->pf_window = f->pf_run ? f->pf_window ? f->pf_window * 2 : 1 : 0;
	if (f->pf_window > PF_WINDOW_MAX)
		f->pf_window = PF_WINDOW_MAX;
	from = f->pf_ahead > last ? f->pf_ahead + 1 : last + 1;
	to = last + f->pf_window < nblocks ? last + f->pf_window : nblocks - 1;
	for (uint64_t b = from; f->pf_window && b <= to; b++) {
		size_t len = (size_t)(size - b * bs < bs ? size - b * bs : bs);

		if (!rfs_cache_has(fs->cache, &f->cid, b) &&
		    !enqueue(fs, f, b, len))
			break;
		f->pf_ahead = b;
	}
	pthread_mutex_unlock(&f->pf_lock);
}
