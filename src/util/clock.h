#ifndef RFS_UTIL_CLOCK_H
#define RFS_UTIL_CLOCK_H

#include <errno.h>
#include <pthread.h>
#include <time.h>

/* Seconds on the monotonic clock: for intervals, never for dates. */
static inline double rfs_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * pthread_cond_wait until @deadline (rfs_mono_now() seconds; 0: none).
 * Returns 0 when woken, -ETIMEDOUT once the deadline has passed. The
 * condition variables use the wall clock: the wait is converted to it.
 */
static inline int rfs_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *m,
				      double deadline)
{
	double left = deadline - rfs_mono_now();
	struct timespec until;

	if (deadline <= 0)
		return pthread_cond_wait(cv, m) ? -EINVAL : 0;
	if (left <= 0)
		return -ETIMEDOUT;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += (time_t)left;
	until.tv_nsec += (long)((left - (double)(time_t)left) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(cv, m, &until);
	return rfs_mono_now() >= deadline ? -ETIMEDOUT : 0;
}

#endif
