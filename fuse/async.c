/*
 * The pools of fuse/async.h. Locks: one per pool, a leaf, never held
 * while a job runs.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "fuse/async.h"
#include "util/log.h"
#include "util/banned.h"

/* an idle thread ends after this long */
#define IDLE_SECONDS 10

struct pool {
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_cond_t gone; /* a thread ended */
	struct rfs_job *head, *tail;
	unsigned queued; /* jobs in the queue */
	unsigned threads, idle, max;
	bool stop;
	const char *name;
};

struct rfs_async {
	struct pool p[RFS_ASYNC_KINDS];
};

static const char *const names[RFS_ASYNC_KINDS] = {
	"rfs-list",
	"rfs-open",
	"rfs-read",
};

/* Under p->lock: the next job, waiting up to IDLE_SECONDS; NULL: end. */
static struct rfs_job *next_job(struct pool *p)
{
	struct timespec until;
	struct rfs_job *j;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += IDLE_SECONDS;
	p->idle++;
	while (!p->head && !p->stop)
		if (pthread_cond_timedwait(&p->work, &p->lock, &until))
			break;
	p->idle--;
	j = p->head;
	if (j) {
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
	}
	return j;
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct rfs_job *j;

	pthread_setname_np(pthread_self(), p->name);
	pthread_mutex_lock(&p->lock);
	while ((j = next_job(p))) {
		pthread_mutex_unlock(&p->lock);
		j->run(j);
		pthread_mutex_lock(&p->lock);
	}
	p->threads--;
	pthread_cond_broadcast(&p->gone);
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Under p->lock: one more thread, if the pool may have it. */
static bool grow(struct pool *p)
{
	pthread_attr_t attr;
	pthread_t t;
	bool ok;

	if (p->threads >= p->max)
		return false;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ok = pthread_create(&t, &attr, worker_main, p) == 0;
	pthread_attr_destroy(&attr);
	if (ok)
		p->threads++;
	return ok;
}

void rfs_async_run(struct rfs_async *a, enum rfs_async_kind k,
		   struct rfs_job *j)
{
	struct pool *p = a ? &a->p[k] : NULL;
	bool queued = false;

	if (p) {
		pthread_mutex_lock(&p->lock);
		/* a thread each, up to the cap; past it, they queue */
		if (!p->stop &&
		    (p->queued < p->idle || grow(p) || p->threads)) {
			j->next = NULL;
			p->queued++;
			if (p->tail)
				p->tail->next = j;
			else
				p->head = j;
			p->tail = j;
			pthread_cond_signal(&p->work);
			queued = true;
		}
		pthread_mutex_unlock(&p->lock);
	}
	if (!queued) {
		rfs_log_limited(LOG_WARNING, "async",
				"no thread for a request that waits on the "
				"network: answered by a FUSE worker");
		j->run(j);
	}
}

int rfs_async_new(struct rfs_async **out, unsigned max)
{
	struct rfs_async *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	for (int k = 0; k < RFS_ASYNC_KINDS; k++) {
		pthread_mutex_init(&a->p[k].lock, NULL);
		pthread_cond_init(&a->p[k].work, NULL);
		pthread_cond_init(&a->p[k].gone, NULL);
		a->p[k].max = max ? max : 1;
		a->p[k].name = names[k];
	}
	*out = a;
	return 0;
}

void rfs_async_free(struct rfs_async *a)
{
	if (!a)
		return;
	for (int k = 0; k < RFS_ASYNC_KINDS; k++) {
		struct pool *p = &a->p[k];
		struct rfs_job *j;

		pthread_mutex_lock(&p->lock);
		p->stop = true;
		j = p->head;
		p->head = p->tail = NULL;
		p->queued = 0;
		pthread_cond_broadcast(&p->work);
		while (p->threads)
			pthread_cond_wait(&p->gone, &p->lock);
		pthread_mutex_unlock(&p->lock);
		while (j) {
			struct rfs_job *next = j->next;

			j->drop(j);
			j = next;
		}
		pthread_cond_destroy(&p->gone);
		pthread_cond_destroy(&p->work);
		pthread_mutex_destroy(&p->lock);
	}
	free(a);
}
