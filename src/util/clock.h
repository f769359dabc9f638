#ifndef RFS_UTIL_CLOCK_H
#define RFS_UTIL_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock: for intervals, never for dates. */
static inline double rfs_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
