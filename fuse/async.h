/*
 * Requests that must wait on the network, answered from threads of their
 * own: libfuse's workers answer what is at hand (cached listings and
 * blocks) at once and hand the rest here, so that a slow catalogue or
 * storage endpoint never holds every worker while cached data waits.
 * One pool per kind of wait (listings, opens, reads): a storm of one
 * kind does not queue another behind it. Threads are started on demand,
 * up to a cap per kind, and end after a while idle.
 */
#ifndef RFS_FUSE_ASYNC_H
#define RFS_FUSE_ASYNC_H

enum rfs_async_kind {
	RFS_ASYNC_LIST, /* lookup, opendir: catalogue listings */
	RFS_ASYNC_OPEN, /* open, getxattr: replica lists, whole-file checks */
	RFS_ASYNC_READ, /* reads that miss the cache */
	RFS_ASYNC_KINDS,
};

/* One request to answer: embedded first in the caller's own struct. */
struct rfs_job {
	struct rfs_job *next;
	/* answers the request and frees the job */
	void (*run)(struct rfs_job *j);
	/* at unmount, for a job never run: answers an error and frees it */
	void (*drop)(struct rfs_job *j);
};

struct rfs_async;

/* At most @max threads of each kind. */
int rfs_async_new(struct rfs_async **out, unsigned max);
/*
 * Takes @j and runs it on a thread of kind @k; when no thread can be had
 * at all, runs it here (the request is answered either way).
 */
void rfs_async_run(struct rfs_async *a, enum rfs_async_kind k,
		   struct rfs_job *j);
/* After the session loop: waits for running jobs, drops queued ones. */
void rfs_async_free(struct rfs_async *a);

#endif
